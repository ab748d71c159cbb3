"""`usocket` and `uselect` of a simulated board (esp32/mods/modusocket.c, lwipsocket.c).

UDP sockets (AF_INET, SOCK_DGRAM) are real loopback sockets through the world's NetIO; TCP is
not simulated (fails loudly). AF_LORA raw sockets come from the radio helper's
`openenergy.sim.pycom.lora.lora_socket(board, family, type)`.

Pycom quirks reproduced: sockets block by default; settimeout(seconds) with 0 = non-blocking;
with a timeout, recv/recvfrom raise TimeoutError("timed out"); non-blocking recvfrom raises
OSError(EAGAIN) while non-blocking recv returns b''. Sending while the WiFi link is down fails
with OSError(EHOSTUNREACH) (lwIP ERR_RTE: no route). getaddrinfo() answers from the world's DNS
table ([(AF_INET, SOCK_STREAM, 0, '', (ip, port))]) and raises OSError(202) (EAI_FAIL) when the
name is unknown or the link is down. A board socket's receive queue holds 6 datagrams (lwIP
UDP recvmbox, ESP-IDF default); more are dropped.
"""

import errno
import importlib
import ipaddress

from ..board import oserror, unsupported
from . import bind, new_module

AF_INET = 2
AF_LORA = 0xA0
AF_SIGFOX = 0xA1
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
IPPROTO_IP = 0
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_RAW = 255
IP_ADD_MEMBERSHIP = 3
SOL_SOCKET = 0xFFF
SO_REUSEADDR = 4
SOL_LORA = 0xFFF05
SOL_SIGFOX = 0xFFF06
SO_CONFIRMED = 0xF0002
SO_DR = 0xF0003
SO_RX = 0xF0004
SO_TX_REPEAT = 0xF0005
SO_OOB = 0xF0006
SO_BIT = 0xF0007

EAI_FAIL = 202  # lwIP netdb.h
UDP_RECVMBOX = 6  # ESP-IDF CONFIG_LWIP_UDP_RECVMBOX_SIZE default
MAX_SOCKETS = 10  # ESP-IDF CONFIG_LWIP_MAX_SOCKETS default
DNS_LATENCY_US = 5_000
MAX_UDP_PAYLOAD = 65507

POLLIN = 0x0001
POLLOUT = 0x0004
POLLERR = 0x0008
POLLHUP = 0x0010


def _is_ipv4(text):
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _parse_addr(addr):
    try:
        host, port = addr
    except (TypeError, ValueError):
        raise TypeError("address must be a (host, port) tuple") from None
    if not isinstance(host, str):
        raise TypeError("host must be a string")
    if not _is_ipv4(host):
        raise oserror(errno.EINVAL)
    return host, int(port)


def _lora_socket(board, family, type_):
    try:
        lora = importlib.import_module("openenergy.sim.pycom.lora")
    except ModuleNotFoundError as exc:
        if exc.name != "openenergy.sim.pycom.lora":
            raise
        raise unsupported("usocket AF_LORA sockets (no radio model installed)") from None
    return lora.lora_socket(board, family, type_)


class socket:  # noqa: N801 - the MicroPython name
    """usocket.socket(af=AF_INET, type=SOCK_STREAM, proto=IPPROTO_TCP): UDP and LoRa only."""

    _s = None

    def __new__(cls, af=AF_INET, type=SOCK_STREAM, proto=IPPROTO_TCP, fileno=None):
        session = cls._s
        session.check()
        if af in (AF_LORA, AF_SIGFOX):
            if type != SOCK_RAW:
                raise OSError("incorrect socket type")
            if af == AF_SIGFOX:
                raise unsupported("usocket AF_SIGFOX sockets")
            sock = _lora_socket(session.board, af, type)
            if hasattr(sock, "_session_ended"):
                session.sockets.append(sock)  # closed with the run, like the UDP ones
            return sock
        if af != AF_INET:
            raise oserror(errno.EAFNOSUPPORT)
        if type == SOCK_STREAM:
            raise unsupported("usocket TCP sockets (SOCK_STREAM)")
        if type != SOCK_DGRAM:
            raise unsupported("usocket sockets of type %r" % (type,))
        if sum(1 for sock in session.sockets if isinstance(sock, socket)) >= MAX_SOCKETS:
            raise oserror(errno.ENFILE)
        return object.__new__(cls)

    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=IPPROTO_TCP, fileno=None):
        session = self._s
        board = session.board
        self._ep = board.world.netio.endpoint(board.name, board.ip, max_queue=UDP_RECVMBOX)
        self._ep.on_ready = session.notify_io
        self._ep.can_receive = self._link_ready
        self._timeout = None
        self._peer = None
        session.sockets.append(self)

    def _link_ready(self):
        wlan = self._s.devices.get("wlan")
        return wlan is not None and wlan.link_ready()

    def _session_ended(self):
        self._ep.close()

    def _open(self):
        self._s.check()
        if self._ep.closed:
            raise oserror(errno.EBADF)
        return self._ep

    # -- configuration -----------------------------------------------------------------------
    def bind(self, addr):
        ep = self._open()
        host, port = addr
        if host not in ("", "0.0.0.0") and not _is_ipv4(host):
            raise oserror(errno.EINVAL)
        if ep.real is not None:
            raise oserror(errno.EINVAL)
        ep.bind(int(port))

    def settimeout(self, value):
        self._open()
        self._timeout = None if value is None else int(1000 * float(value))

    def setblocking(self, flag):
        self.settimeout(None if flag else 0)

    def setsockopt(self, level, optname, value):
        self._open()

    def connect(self, addr):
        self._open()
        self._peer = _parse_addr(addr)

    def close(self):
        self._s.check()
        self._ep.close()
        if self in self._s.sockets:
            self._s.sockets.remove(self)

    def fileno(self):
        return 54 + self._s.sockets.index(self) if self in self._s.sockets else -1

    def makefile(self, *args, **kwargs):
        raise unsupported("usocket.socket.makefile()")

    # -- sending -----------------------------------------------------------------------------
    def sendto(self, data, addr):
        ep = self._open()
        dest = _parse_addr(addr)
        data = bytes(data)
        if len(data) > MAX_UDP_PAYLOAD:
            raise oserror(errno.EMSGSIZE)
        if not self._link_ready():
            raise oserror(errno.EHOSTUNREACH)
        ep.sendto(data, dest)
        return len(data)

    def send(self, data):
        if self._peer is None:
            self._open()
            raise oserror(errno.ENOTCONN)
        return self.sendto(data, self._peer)

    sendall = send
    write = send

    # -- receiving ---------------------------------------------------------------------------
    def _receive(self, nonblocking_empty):
        ep = self._open()
        session = self._s
        item = ep.take()
        if item is not None:
            return item
        if self._timeout == 0:
            if nonblocking_empty is None:
                raise oserror(errno.EAGAIN)
            return nonblocking_empty
        timeout_vt = None
        deadline = None
        now = session.scheduler.now_us
        if self._timeout is not None:
            timeout_vt = session.board.local_to_virtual(self._timeout * 1000)
            deadline = now() + timeout_vt
        while True:
            remaining = None if deadline is None else max(0, deadline - now())
            session.block(remaining, ep.signal)
            item = ep.take()
            if item is not None:
                return item
            if ep.closed:
                raise oserror(errno.EBADF)
            if deadline is not None and now() >= deadline:
                raise TimeoutError("timed out")

    def recvfrom(self, bufsize):
        data, src = self._receive(None)
        return data[: int(bufsize)], src

    def recv(self, bufsize):
        item = self._receive(b"")
        if item == b"":
            return b""
        return item[0][: int(bufsize)]

    def read(self, size=None):
        item = self._receive(None)
        return item[0] if size is None else item[0][:size]

    def readinto(self, buf, nbytes=None):
        data = self.recv(len(buf) if nbytes is None else nbytes)
        buf[: len(data)] = data
        return len(data)

    # -- uselect -----------------------------------------------------------------------------
    def _sim_poll(self, mask):
        ep = self._ep
        if ep.closed:
            return POLLHUP
        ready = 0
        if mask & POLLIN and ep.queue:
            ready |= POLLIN
        if mask & POLLOUT:
            ready |= POLLOUT
        return ready

    def __repr__(self):
        ep = self._ep
        return "<socket type=SOCK_DGRAM %s>" % ("%s:%d" % ep.addr if ep.addr else "unbound")


def make(session):
    board = session.board

    def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
        session.check()
        if not isinstance(host, str):
            raise TypeError("host must be a string")
        if _is_ipv4(host):
            ip = host
        else:
            if session.current_task() is not None:
                session.block(DNS_LATENCY_US)
            wlan = session.devices.get("wlan")
            ip = board.world.dns.get(host) if wlan is not None and wlan.link_ready() else None
            if ip is None:
                board._trace("dns_fail", host=host)
                raise oserror(EAI_FAIL)
        return [(AF_INET, SOCK_STREAM, 0, "", (ip, int(port)))]

    def dnsserver(*args):
        if args[1:]:
            return None
        if args:
            return (args[0], "127.0.0.1")
        return ("127.0.0.1", "0.0.0.0")

    attrs = {
        "getaddrinfo": getaddrinfo,
        "dnsserver": dnsserver,
        "error": OSError,
        "timeout": TimeoutError,
    }
    for name, value in globals().items():
        if (
            name.isupper()
            and name
            not in ("EAI_FAIL", "UDP_RECVMBOX", "MAX_SOCKETS", "DNS_LATENCY_US", "MAX_UDP_PAYLOAD")
            and not name.startswith("POLL")
        ):
            attrs[name] = value
    return new_module("usocket", attrs, {"socket": lambda: bind(socket, session)})


# -- uselect ------------------------------------------------------------------------------------
def _poll_object(obj, mask):
    poller = getattr(obj, "_sim_poll", None)
    if poller is not None:
        return poller(mask)
    dev = getattr(obj, "_dev", None)
    if dev is not None and hasattr(dev, "_pull"):  # machine.UART
        if dev.config is None:
            return POLLERR
        dev._pull()
        ready = POLLOUT & mask
        if mask & POLLIN and dev.buffer:
            ready |= POLLIN
        return ready
    raise unsupported("uselect on %s objects" % type(obj).__name__)


class _Poll:
    def __init__(self, session):
        self._s = session
        self._entries = {}

    def register(self, obj, eventmask=POLLIN | POLLOUT):
        _poll_object(obj, 0)
        self._entries[id(obj)] = (obj, eventmask)

    def modify(self, obj, eventmask):
        if id(obj) not in self._entries:
            raise oserror(errno.ENOENT)
        self._entries[id(obj)] = (obj, eventmask)

    def unregister(self, obj):
        self._entries.pop(id(obj), None)

    def _ready(self):
        out = []
        for obj, mask in list(self._entries.values()):
            events = _poll_object(obj, mask)
            if events:
                out.append((obj, events))
        return out

    def poll(self, timeout=-1):
        session = self._s
        session.check()
        ready = self._ready()
        if ready or timeout == 0:
            if not ready:
                session.poll_yield()
            return ready
        deadline = None
        if timeout is not None and timeout >= 0:
            deadline = session.scheduler.now_us() + session.board.local_to_virtual(
                int(timeout) * 1000
            )
        while True:
            remaining = None if deadline is None else max(0, deadline - session.scheduler.now_us())
            session.block(remaining, session.io_signal)
            ready = self._ready()
            if ready or (deadline is not None and session.scheduler.now_us() >= deadline):
                return ready

    def ipoll(self, timeout=-1, flags=0):
        return iter(self.poll(timeout))


def make_select(session):
    def poll():
        session.check()
        return _Poll(session)

    def select(rlist, wlist, xlist, timeout=None):
        p = _Poll(session)
        for obj in rlist:
            p.register(obj, POLLIN)
        for obj in wlist:
            mask = POLLOUT | (p._entries.get(id(obj), (None, 0))[1])
            p.register(obj, mask)
        ready = p.poll(-1 if timeout is None else int(float(timeout) * 1000))
        readable = [o for o, ev in ready if ev & POLLIN and o in rlist]
        writable = [o for o, ev in ready if ev & POLLOUT and o in wlist]
        errored = [o for o, ev in ready if ev & (POLLERR | POLLHUP) and o in xlist]
        return readable, writable, errored

    return new_module(
        "uselect",
        {
            "poll": poll,
            "select": select,
            "POLLIN": POLLIN,
            "POLLOUT": POLLOUT,
            "POLLERR": POLLERR,
            "POLLHUP": POLLHUP,
        },
    )
