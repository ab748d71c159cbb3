"""UDP between simulated boards and host-side parties through real loopback sockets, deterministically.

Every simulated UDP socket (a board's `usocket`, or a host party's `udp_socket()`) owns a real
non-blocking UDP socket on loopback. Boards get their own loopback address (127.0.x.y), so the
address a board binds is its real address and port numbers are allocated deterministically
(49152 upward per address, as lwIP's ephemeral range), never by the kernel.

A datagram to an address owned by another simulated socket is sent for real, then the hub waits
(select, capped at `drain_cap_s` of wall time) until the kernel has it, reads it and makes it
readable at virtual now + `latency_us`. The kernel's timing therefore never shows in the
simulation: the same seed and scenario give the same trace. A datagram to an unknown address
(a real ChirpStack gateway bridge) is only sent; what real peers send back is picked up while
the scheduler waits for the wall clock in real-time mode (the idle hook) and stamped with the
virtual instant it arrived, or by an explicit `poll()`.

Faults: an endpoint's `can_send` / `can_receive` predicates (a board's WiFi link) and owner-wide
outages (`set_owner_down`, the server emulator's outage): a datagram from or to a down party is
dropped and traced with the reason.
"""

import collections
import errno
import select
import socket
import time

from .clock import Signal

EPHEMERAL_FIRST = 49152
EPHEMERAL_LAST = 65535


class NetIO:
    """The loopback UDP hub of one world."""

    def __init__(self, scheduler, trace, latency_us=1000, drain_cap_s=1.0):
        self.scheduler = scheduler
        self.trace = trace
        self.latency_us = int(latency_us)
        self.drain_cap_s = drain_cap_s
        self.by_addr = {}  # simulated address -> endpoint
        self.by_real = {}  # address of its real socket -> endpoint
        self.by_fd = {}
        self.down_owners = set()
        self._next_port = {}
        self.stats = collections.Counter()
        if scheduler.realtime:
            scheduler.idle_hook = self._idle

    # -- endpoints -------------------------------------------------------------------------
    def endpoint(self, owner, ip="127.0.0.1", max_queue=None):
        """A simulated UDP socket of `owner` on address ip (bound on first bind/sendto)."""
        return Endpoint(self, owner, ip, max_queue)

    def udp_socket(self, owner_name, ip="127.0.0.1"):
        """Host-side socket for the server emulator and other host parties (see HostUdpSocket)."""
        return HostUdpSocket(self, owner_name, ip)

    def set_owner_down(self, owner, down=True):
        """Outage of every socket of owner: what it sends and what is sent to it is dropped."""
        if down:
            self.down_owners.add(owner)
        else:
            self.down_owners.discard(owner)
        if self.trace.enabled:
            self.trace.emit("net_outage" if down else "net_restored", owner=owner)

    def _allocate(self, ep, ip, port):
        """Bind ep: its simulated address (ip, port), and a real socket, at the same port when the
        host has it free. Simulated ports never depend on the host: when another process holds
        the port (another simulation, a real gateway bridge), the real socket takes any port and
        the hub translates, so the trace stays the same."""
        if port:
            if (ip, port) in self.by_addr:
                raise OSError(errno.EADDRINUSE, "EADDRINUSE")
        else:
            candidate = self._next_port.get(ip, EPHEMERAL_FIRST)
            for _ in range(EPHEMERAL_LAST - EPHEMERAL_FIRST + 1):
                if (ip, candidate) not in self.by_addr:
                    break
                candidate = candidate + 1 if candidate < EPHEMERAL_LAST else EPHEMERAL_FIRST
            else:
                raise OSError(errno.EADDRINUSE, "EADDRINUSE")
            port = candidate
            self._next_port[ip] = candidate + 1 if candidate < EPHEMERAL_LAST else EPHEMERAL_FIRST
        real = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            try:
                real.bind((ip, port))
            except OSError:
                real.bind((ip, 0))
                self.stats["real_port_differs"] += 1
        except OSError as exc:
            real.close()
            code = exc.errno or errno.EADDRNOTAVAIL
            raise OSError(code, errno.errorcode.get(code, "EADDRNOTAVAIL")) from None
        real.setblocking(False)
        addr = (ip, port)
        ep.real_addr = real.getsockname()
        self.by_addr[addr] = ep
        self.by_real[ep.real_addr] = ep
        self.by_fd[real.fileno()] = ep
        return real, addr

    def _release(self, ep):
        if ep.real is not None:
            self.by_fd.pop(ep.real.fileno(), None)
            self.by_addr.pop(ep.addr, None)
            self.by_real.pop(ep.real_addr, None)
            ep.real.close()
            ep.real = None

    def close(self):
        for ep in list(self.by_addr.values()):
            ep.close()
        if self.scheduler.idle_hook == self._idle:
            self.scheduler.idle_hook = None

    # -- sending ---------------------------------------------------------------------------
    def send(self, ep, data, dest):
        """Send data from endpoint ep to dest (ip, port); True if it left (False: dropped)."""
        dest = (str(dest[0]), int(dest[1]))
        target = self.by_addr.get(dest)
        trace = self.trace
        if trace.enabled:
            trace.emit(
                "udp",
                src="%s:%d" % ep.addr,
                dst="%s:%d" % dest,
                sender=ep.owner,
                receiver=target.owner if target is not None else None,
                size=len(data),
                data=data,
            )
        self.stats["sent"] += 1
        if ep.owner in self.down_owners:
            self._dropped("sender_down", ep.addr, dest)
            return False
        try:
            ep.real.sendto(data, dest if target is None else target.real_addr)
        except OSError as exc:
            self._dropped(
                "host_error_%s" % errno.errorcode.get(exc.errno, exc.errno), ep.addr, dest
            )
            return False
        if target is None:
            self.stats["external"] += 1
            return True
        self._drain(target, (ep.real_addr, data), ep.addr)
        return True

    def _dropped(self, reason, src, dst):
        self.stats["dropped_" + reason] += 1
        if self.trace.enabled:
            self.trace.emit("udp_drop", reason=reason, src="%s:%d" % src, dst="%s:%d" % dst)

    def _drain(self, target, expected, src):
        """Wait (real time, capped) until the kernel has the datagram for target; read all."""
        deadline = time.monotonic() + self.drain_cap_s
        while True:
            if self._read_all(target, expected):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._dropped("lost_by_host", src, target.addr)
                return
            select.select([target.real], [], [], remaining)

    def _read_all(self, target, expected=None):
        """Read every datagram the kernel holds for target; True if `expected` was among them."""
        found = False
        real = target.real
        while real is not None:
            try:
                data, src = real.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            if expected is not None and not found and src == expected[0] and data == expected[1]:
                found = True
            sender = self.by_real.get(src)
            if sender is not None:
                src = sender.addr
                at = self.scheduler.now_us() + self.latency_us
            else:
                self.stats["from_external"] += 1
                at = self.scheduler.wall_now_us()
            self.scheduler.call_at(at, target._deliver, data, src)
        return found

    # -- outside peers ---------------------------------------------------------------------
    def poll(self, timeout_s=0.0):
        """Read what real peers sent to any endpoint (waiting up to timeout_s); count read."""
        endpoints = [ep for ep in self.by_addr.values() if ep.real is not None]
        if not endpoints:
            if timeout_s:
                time.sleep(timeout_s)
            return 0
        readable, _, _ = select.select([ep.real for ep in endpoints], [], [], max(0.0, timeout_s))
        for real in readable:
            ep = self.by_fd.get(real.fileno())
            if ep is not None:
                self._read_all(ep)
        return len(readable)

    def _idle(self, seconds):
        self.poll(min(seconds, 0.5))


class Endpoint:
    """A simulated UDP socket: bound address, queue of delivered datagrams, wake-up signal."""

    def __init__(self, netio, owner, ip, max_queue):
        self.netio = netio
        self.owner = owner
        self.ip = ip
        self.max_queue = max_queue
        self.addr = None
        self.real = None
        self.real_addr = None
        self.queue = collections.deque()
        self.signal = Signal(netio.scheduler)
        self.on_datagram = None
        self.on_ready = None
        self.can_receive = None
        self.closed = False
        self.dropped = 0

    def bind(self, port=0):
        if self.closed:
            raise OSError(errno.EBADF, "EBADF")
        if self.real is not None:
            raise OSError(errno.EINVAL, "EINVAL")
        self.real, self.addr = self.netio._allocate(self, self.ip, int(port))
        return self.addr

    def sendto(self, data, dest):
        if self.closed:
            raise OSError(errno.EBADF, "EBADF")
        if self.real is None:
            self.bind(0)
        return self.netio.send(self, bytes(data), dest)

    def _deliver(self, data, src):
        netio = self.netio
        if self.closed:
            netio._dropped("closed", src, self.addr or ("0.0.0.0", 0))
            return
        if self.owner in netio.down_owners:
            netio._dropped("receiver_down", src, self.addr)
            return
        if self.can_receive is not None and not self.can_receive():
            netio._dropped("receiver_link_down", src, self.addr)
            return
        netio.stats["delivered"] += 1
        if self.on_datagram is not None:
            self.on_datagram(data, src)
            return
        if self.max_queue is not None and len(self.queue) >= self.max_queue:
            self.dropped += 1
            netio._dropped("queue_full", src, self.addr)
            return
        self.queue.append((data, src))
        self.signal.fire(True)
        if self.on_ready is not None:
            self.on_ready()

    def take(self):
        return self.queue.popleft() if self.queue else None

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.queue.clear()
        self.netio._release(self)
        self.signal.fire(False)


class HostUdpSocket:
    """UDP socket for host-side code running as scheduler tasks (the network-server emulator).

    bind((ip, port)); sendto(data, (ip, port)); recvfrom(timeout_us=None) -> (data, (ip, port))
    or None on timeout (blocks the calling scheduler task on virtual time); recv_nowait();
    on_datagram = callable(data, addr) to be called at delivery instead of queueing;
    set_down(True/False): an outage of this socket's owner.
    """

    def __init__(self, netio, owner, ip="127.0.0.1"):
        self.netio = netio
        self.owner = owner
        self._ep = netio.endpoint(owner, ip)

    @property
    def addr(self):
        return self._ep.addr

    @property
    def on_datagram(self):
        return self._ep.on_datagram

    @on_datagram.setter
    def on_datagram(self, callback):
        self._ep.on_datagram = callback

    def bind(self, addr):
        ip, port = addr
        if ip not in ("", "0.0.0.0"):
            self._ep.ip = ip
        return self._ep.bind(port)

    def sendto(self, data, addr):
        return self._ep.sendto(data, addr)

    def recv_nowait(self):
        return self._ep.take()

    def recvfrom(self, timeout_us=None):
        ep = self._ep
        deadline = None if timeout_us is None else self.netio.scheduler.now_us() + int(timeout_us)
        while True:
            item = ep.take()
            if item is not None or ep.closed:
                return item
            remaining = None
            if deadline is not None:
                remaining = deadline - self.netio.scheduler.now_us()
                if remaining <= 0:
                    return None
            ep.signal.wait(remaining, timeout_value=False)

    def set_down(self, down=True):
        self.netio.set_owner_down(self.owner, down)

    def close(self):
        self._ep.close()
