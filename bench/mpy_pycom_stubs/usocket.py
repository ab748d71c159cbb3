"""Pycom's usocket for the bench: AF_LORA sockets (network.py) and UDP sockets talking to a fake
Semtech UDP server that acknowledges what a gateway sends (PUSH_ACK, PULL_ACK), so the
forwarder's token matching and server-up state run as against a real bridge.

What the gateway sent is counted per packet type; the newest PUSH_DATA carrying rxpk is kept in
a preallocated buffer (last_rxpk), so nothing here grows with the traffic.

Outages, as lwIP on a Pycom board sees them: while the WiFi station is not connected
(network.set_wifi_link), sendto raises OSError(EHOSTUNREACH) (no route), getaddrinfo raises
OSError(202) (EAI_FAIL) and nothing arrives; with server["ack"] False the server is down:
datagrams go out and nothing answers. deliver() puts any datagram (garbage too) in the newest
UDP socket's inbox (udp[0]) as if it came from the server or from another address.
"""

import _harness
import network

AF_INET = 2
AF_LORA = 160
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
IPPROTO_UDP = 17
IPPROTO_TCP = 6
SOL_SOCKET = 0xFFF
SO_REUSEADDR = 4
SOL_LORA = network.SOL_LORA
SO_CONFIRMED = network.SO_CONFIRMED
SO_DR = network.SO_DR

SERVER_IP = "192.0.2.10"
EHOSTUNREACH = 113
EAI_FAIL = 202  # lwIP netdb.h
server = {"ack": True}  # the fake server answers PUSH_DATA and PULL_DATA
sent_types = [0] * 6  # datagrams sent, by Semtech packet type
sent = {"datagrams": 0, "bytes": 0, "rxpk": 0, "stat": 0, "other": 0, "refused": 0}
rxpk_acked = [0, 0]  # PUSH_DATA with rxpk the server acknowledged; virtual µs of the newest
pull_acked = [0, 0]  # PULL_DATA the server acknowledged; virtual µs of the newest
udp = [None]  # the newest UDP socket (a gateway has one at a time)
last_rxpk = bytearray(2048)
last_rxpk_len = [0]
_QUEUE_MAX = 16
_DATAGRAM_MAX = 2048
# Datagrams waiting for recvfrom sit in lwIP's buffers on a board, outside the MicroPython heap:
# here in slots allocated when this module loads (before the bench's base) and reused.
_inbox = [bytearray(_DATAGRAM_MAX) for _ in range(_QUEUE_MAX)]
_inbox_sizes = [0] * _QUEUE_MAX
_inbox_from = [None] * _QUEUE_MAX
_ZEROS = bytes(_DATAGRAM_MAX)
_SERVER = (SERVER_IP, 1700)


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    if not network.wifi_ready():
        raise OSError(EAI_FAIL)
    return [(AF_INET, SOCK_DGRAM, IPPROTO_UDP, "", (SERVER_IP, port))]


class _UdpSocket:
    """A UDP socket; one at a time owns the preallocated inbox (the gateway has one)."""

    def __init__(self):
        self.blocking = True
        self.closed = False
        self.peer = None
        self._first = 0
        self._waiting = 0

    def setblocking(self, flag):
        self.blocking = bool(flag)

    def settimeout(self, value):
        self.blocking = value is None or value > 0

    def setsockopt(self, level, option, value):
        pass

    def bind(self, addr):
        pass

    def connect(self, addr):
        self.peer = addr

    def sendto(self, buf, addr):
        if self.closed:
            raise OSError(9)  # EBADF
        if not network.wifi_ready():
            sent["refused"] += 1
            raise OSError(EHOSTUNREACH)
        n = len(buf)
        sent["datagrams"] += 1
        sent["bytes"] += n
        ptype = buf[3] if n > 3 else 255
        if ptype < len(sent_types):
            sent_types[ptype] += 1
        rxpk = False
        if ptype == 0 and n > 14:
            if buf[14] == 0x72:  # {"rxpk": ...
                rxpk = True
                sent["rxpk"] += 1
                last_rxpk[0:n] = buf
                last_rxpk_len[0] = n
            else:
                sent["stat"] += 1
        else:
            sent["other"] += 1
        if server["ack"] and (ptype == 0 or ptype == 2) and n >= 4:
            slot = self._slot()
            if slot is not None:
                ack = _inbox[slot]
                ack[0] = buf[0]
                ack[1] = buf[1]
                ack[2] = buf[2]
                ack[3] = ptype + (1 if ptype == 0 else 2)  # PUSH_ACK 1, PULL_ACK 4
                _inbox_sizes[slot] = 4
                _inbox_from[slot] = addr if addr[0] == SERVER_IP else _SERVER
                acked = rxpk_acked if rxpk else pull_acked if ptype == 2 else None
                if acked is not None:
                    acked[0] += 1
                    acked[1] = _harness.now_us()
        return n

    def send(self, buf):
        return self.sendto(buf, self.peer)

    def _slot(self):
        if self.closed or self._waiting >= _QUEUE_MAX:
            return None
        slot = (self._first + self._waiting) % _QUEUE_MAX
        self._waiting += 1
        return slot

    def recvfrom(self, n):
        if not self._waiting:
            if self.blocking:
                _harness.idle(1000)
            raise OSError(11)  # EAGAIN
        slot = self._first
        size = _inbox_sizes[slot]
        data = bytes(memoryview(_inbox[slot])[: size if size < n else n])
        # lwIP frees the datagram's buffer; here the slot's bytes would stay in the heap,
        # where the collector reads them as possible pointers: wipe them
        memoryview(_inbox[slot])[:size] = memoryview(_ZEROS)[:size]
        self._first = (slot + 1) % _QUEUE_MAX
        self._waiting -= 1
        return (data, _inbox_from[slot])

    def recv(self, n):
        return self.recvfrom(n)[0]

    def deliver(self, data, addr=None):
        """The bench puts a datagram from the server (or from addr) in this socket's inbox;
        False when it is lost (no WiFi, socket closed, inbox full)."""
        if not network.wifi_ready():
            return False
        slot = self._slot()
        if slot is None:
            return False
        size = len(data) if len(data) < _DATAGRAM_MAX else _DATAGRAM_MAX
        _inbox[slot][0:size] = data[0:size]
        _inbox_sizes[slot] = size
        _inbox_from[slot] = addr or _SERVER
        return True

    def close(self):
        self.closed = True
        self._waiting = 0

    def _readable(self):
        return self._waiting > 0


def socket(af=AF_INET, type=SOCK_STREAM, proto=0):
    if af == AF_LORA:
        return network._LoRaSocket()
    if type != SOCK_DGRAM:
        raise OSError(95)  # EOPNOTSUPP: only UDP on the bench
    sock = _UdpSocket()
    udp[0] = sock
    return sock


def last_push_data():
    """The newest PUSH_DATA with rxpk that the gateway sent (bytes), or None."""
    n = last_rxpk_len[0]
    return bytes(last_rxpk[0:n]) if n else None
