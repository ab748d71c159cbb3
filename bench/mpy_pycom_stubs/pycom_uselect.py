"""select/uselect.poll for the stub sockets (registered as `uselect` by _harness.install()).

poll(timeout_ms) returns at once when a registered socket has a datagram (or a radio frame)
waiting; otherwise virtual time passes in slices of at most SLICE_MS (the bench hooks run after
each) and the poll returns as soon as a socket is readable, as a real poll wakes on arrival.
When the hooks said when they next act (_harness.wake_at), a slice lasts up to that instant.
"""

import _harness

POLLIN = 0x0001
POLLOUT = 0x0004
POLLERR = 0x0008
POLLHUP = 0x0010
SLICE_MS = 10


class _Poll:
    def __init__(self):
        self._socks = []

    def register(self, sock, mask=POLLIN):
        self.unregister(sock)
        self._socks.append((sock, mask))

    def unregister(self, sock):
        for i in range(len(self._socks)):
            if self._socks[i][0] is sock:
                self._socks.pop(i)
                return

    def modify(self, sock, mask):
        self.register(sock, mask)

    def _ready(self):
        found = []
        for sock, mask in self._socks:
            if mask & POLLIN and sock._readable():
                found.append((sock, POLLIN))
        return found

    def poll(self, timeout_ms=-1):
        ready = self._ready()
        if ready or timeout_ms == 0:
            return ready
        left_ms = timeout_ms if timeout_ms > 0 else 1000
        while True:
            step = SLICE_MS
            quiet = _harness.quiet_ms()
            if quiet is not None and quiet > step:
                step = quiet
            if left_ms < step:
                step = left_ms
            _harness.idle(step * 1000)
            left_ms -= step
            ready = self._ready()
            if ready or left_ms <= 0:
                return ready

    def ipoll(self, timeout_ms=-1, flags=0):
        return iter(self.poll(timeout_ms))


def poll():
    return _Poll()
