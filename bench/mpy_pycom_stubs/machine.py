"""Pycom's machine module for the bench (ARCHITECTURE.md section 11), on the virtual clock.

Pin levels are set by the bench (Pin.drive), which also runs the pin's callback as Pycom's IRQ
thread would; Timer.Alarm fires as virtual time passes; UART reads what the bench fed it;
deepsleep() and reset() raise _harness.Reset (the board would restart there).
"""

import _harness

PWRON_RESET = 0
HARD_RESET = 1
WDT_RESET = 2
DEEPSLEEP_RESET = 3
SOFT_RESET = 4
BROWN_OUT_RESET = 5
PWRON_WAKE = 0
PIN_WAKE = 1
RTC_WAKE = 2
ULP_WAKE = 3
WAKEUP_ALL_LOW = 0
WAKEUP_ANY_HIGH = 1

state = {"reset_cause": PWRON_RESET, "wake_reason": (PWRON_WAKE, None), "unique_id": None}
_rng = [0x2545F491]


def unique_id():
    return state["unique_id"] or b"\x24\x0a\xc4\x01\x02\x03"


def rng():
    """24 random bits (a fixed xorshift sequence: runs are repeatable)."""
    x = _rng[0]
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    _rng[0] = x
    return x & 0xFFFFFF


def reset_cause():
    return state["reset_cause"]


def wake_reason():
    return state["wake_reason"]


def reset():
    raise _harness.Reset("reset")


def deepsleep(ms=0):
    raise _harness.Reset("deepsleep", ms)


def sleep(ms=0, resume_wifi_ble=False):
    _harness.idle(ms * 1000)


def idle():
    _harness.idle(1000)


def pin_sleep_wakeup(pins, mode, enable_pull=False):
    state["wake_pins"] = (list(pins), mode, enable_pull)


def freq():
    return 160000000


class Pin:
    IN = 1
    OUT = 2
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2
    IRQ_LOW_LEVEL = 4
    IRQ_HIGH_LEVEL = 5
    pins = {}  # id -> the newest Pin object for it

    def __init__(self, id, mode=IN, pull=None, value=None, alt=None):
        self._id = id
        self.mode = mode
        self.pull = pull
        old = Pin.pins.get(id)
        if old is not None:
            self.level = old.level
        else:
            self.level = 0 if pull == Pin.PULL_DOWN else 1
        if value is not None:
            self.level = 1 if value else 0
        self.trigger = 0
        self.handler = None
        self.arg = None
        Pin.pins[id] = self

    def id(self):
        return self._id

    def value(self, level=None):
        if level is None:
            return self.level
        self.level = 1 if level else 0
        return None

    def __call__(self, level=None):
        return self.value(level)

    def callback(self, trigger, handler=None, arg=None):
        self.trigger = trigger
        self.handler = handler
        self.arg = arg

    def drive(self, level):
        """The bench sets the line level; an armed edge callback runs (IRQ thread)."""
        level = 1 if level else 0
        if level == self.level:
            return
        self.level = level
        edge = Pin.IRQ_RISING if level else Pin.IRQ_FALLING
        if self.handler is not None and self.trigger & edge:
            _harness.irq(self.handler, self if self.arg is None else self.arg)


class RTC:
    _memory = [b""]
    _synced = [False]

    def __init__(self, id=0, datetime=None):
        pass

    def init(self, datetime=None, source=None):
        pass

    def now(self):
        """(Y, M, D, h, m, s, µs, None) of the virtual clock."""
        us = _harness.now_us()
        import time

        t = time.gmtime(_harness.EPOCH_S + us // 1000000)
        return (t[0], t[1], t[2], t[3], t[4], t[5], us % 1000000, None)

    def memory(self, data=None):
        if data is None:
            return RTC._memory[0]
        RTC._memory[0] = bytes(data)[:2048]
        return None

    def ntp_sync(self, server, update_period=3600, backup_server=None):
        RTC._synced[0] = True

    def synced(self):
        return RTC._synced[0]


class WDT:
    feeds = [0]

    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout

    def feed(self):
        WDT.feeds[0] += 1

    def init(self, timeout):
        self.timeout = timeout


class _Alarm:
    def __init__(self, handler, us, arg, periodic):
        self.handler = handler
        self.period = us
        self.arg = arg
        self.periodic = periodic
        self.due = _harness.now_us() + us
        self.armed = True
        _harness._alarms.append(self)

    def fire(self):
        if self.periodic:
            self.due += self.period if self.period > 0 else 1
        else:
            self.armed = False
            self._forget()
        if self.handler is not None:
            _harness.irq(self.handler, self if self.arg is None else self.arg)

    def callback(self, handler, arg=None):
        self.handler = handler
        self.arg = arg

    def cancel(self):
        self.armed = False
        self._forget()

    def _forget(self):
        alarms = _harness._alarms
        for i in range(len(alarms)):
            if alarms[i] is self:
                alarms.pop(i)
                return


class _Chrono:
    def __init__(self):
        self._start = None
        self._total = 0

    def start(self):
        if self._start is None:
            self._start = _harness.now_us()

    def stop(self):
        if self._start is not None:
            self._total += _harness.now_us() - self._start
            self._start = None

    def reset(self):
        self._total = 0
        if self._start is not None:
            self._start = _harness.now_us()

    def read_us(self):
        running = _harness.now_us() - self._start if self._start is not None else 0
        return self._total + running

    def read_ms(self):
        return self.read_us() / 1000

    def read(self):
        return self.read_us() / 1000000


class Timer:
    @staticmethod
    def Alarm(handler, s=None, ms=0, us=0, arg=None, periodic=False):
        total = us + ms * 1000 + (int(s * 1000000) if s is not None else 0)
        return _Alarm(handler, total, arg, periodic)

    @staticmethod
    def Chrono():
        return _Chrono()


_UART_RX_SIZE = 4096
# The RX buffers sit outside the MicroPython heap on a board (the IDF UART driver's ring): here
# they are allocated when this module loads, before the bench's base, and reused.
_uart_rx = {1: bytearray(_UART_RX_SIZE), 2: bytearray(_UART_RX_SIZE)}


class UART:
    EVEN = 2
    ODD = 3
    ports = {}  # id -> the newest UART object

    def __init__(self, id, baudrate=9600, bits=8, parity=None, stop=1, pins=None, **kwargs):
        self.id = id
        self._ring = _uart_rx.get(id) or bytearray(_UART_RX_SIZE)
        self._head = 0
        self._len = 0
        self.init(baudrate, bits, parity, stop, pins)
        UART.ports[id] = self

    def init(self, baudrate=9600, bits=8, parity=None, stop=1, pins=None, **kwargs):
        self.baudrate = baudrate
        self.bits = bits
        self.parity = parity
        self._len = 0

    def feed(self, data):
        """The bench puts received bytes in the RX buffer (4 KiB; what does not fit is lost)."""
        ring = self._ring
        size = len(ring)
        n = len(data)
        if n > size - self._len:
            n = size - self._len
        start = (self._head + self._len) % size
        first = n if n < size - start else size - start
        ring[start : start + first] = data[0:first]
        ring[0 : n - first] = data[first:n]
        self._len += n

    def any(self):
        return self._len

    def readinto(self, buf, nbytes=None):
        n = len(buf) if nbytes is None else nbytes
        if n > self._len:
            n = self._len
        if not n:
            return None
        ring = self._ring
        size = len(ring)
        head = self._head
        first = n if n < size - head else size - head
        buf[0:first] = memoryview(ring)[head : head + first]
        buf[first:n] = memoryview(ring)[0 : n - first]
        self._head = (head + n) % size
        self._len -= n
        return n

    def read(self, nbytes=None):
        n = self._len if nbytes is None or nbytes > self._len else nbytes
        if not n:
            return None
        buf = bytearray(n)
        self.readinto(buf, n)
        return bytes(buf)

    def write(self, data):
        return len(data)

    def deinit(self):
        self._len = 0


class _AdcChannel:
    def __init__(self, pin):
        self.pin = pin

    def voltage(self):
        return ADC.millivolts

    def value(self):
        return ADC.millivolts * 4095 // 3300

    def __call__(self):
        return self.value()


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    millivolts = 1800  # at the pin (the bench sets it)

    def __init__(self, id=0, bits=12):
        pass

    def channel(self, pin=None, attn=0, id=None):
        return _AdcChannel(pin)

    def vref(self, mv=None):
        return 1100
