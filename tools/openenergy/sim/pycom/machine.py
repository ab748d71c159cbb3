"""`machine` of a simulated Pycom board: Pin, Timer.Alarm/Chrono, UART, RTC, WDT, ADC, sleep.

Behaviour and messages follow pycom-micropython-sigfox (esp32/mods/machpin.c, machtimer_alarm.c,
machuart.c, machrtc.c, machwdt.c, modmachine.c, util/mpsleep.c) for firmware 1.20.x.
"""

import random
import time as _host_time

from ..board import (
    DEEPSLEEP_RESET,
    HARD_RESET,
    INPUT_ONLY_PINS,
    PIN_IDS,
    PIN_WAKE,
    RTC_MEMORY_MAX,
    RTC_WAKE,
    WAKE_PINS,
    WAKEUP_ALL_LOW,
    WAKEUP_ANY_HIGH,
    ResetUnwind,
    char_bits,
    unsupported,
)
from . import bind, new_module, unsupported_class

ALARM_MAX = 16  # machtimer_alarm.c ALARM_HEAP_MAX_ELEMENTS
NTP_RETRY_US = 15_000_000  # lwIP SNTP_RETRY_TIMEOUT
NTP_REPLY_US = 30_000  # request to reply on a LAN
CPU_HZ = 160_000_000
ADC_PINS = frozenset("P%d" % i for i in range(13, 21))
ADC_FULL_SCALE_MV = {0: 1100, 1: 1500, 2: 2200, 3: 3900}


def _pin_id(pin):
    if isinstance(pin, Pin):
        return pin._id
    if isinstance(pin, str) and pin in PIN_IDS:
        return pin
    raise ValueError("invalid pin: %r" % (pin,))


# -- Pin ----------------------------------------------------------------------------------------
class _PinState:
    __slots__ = ("mode", "pull", "out", "trigger", "handler", "arg", "obj")

    def __init__(self):
        self.mode = Pin.IN
        self.pull = None
        self.out = 0
        self.trigger = 0
        self.handler = None
        self.arg = None
        self.obj = None


class Pins:
    """Pin configuration of one board run (RAM) against the board's external levels."""

    def __init__(self, session):
        self.s = session
        self.board = session.board
        self.states = {}

    def state(self, pin_id):
        st = self.states.get(pin_id)
        if st is None:
            st = self.states[pin_id] = _PinState()
        return st

    def idle_level(self, pin_id):
        st = self.states.get(pin_id)
        if st is not None and st.pull == Pin.PULL_UP:
            return 1
        return 0

    def level(self, pin_id):
        st = self.states.get(pin_id)
        if st is not None:
            if st.mode == Pin.OUT:
                return st.out
            if st.mode == Pin.OPEN_DRAIN and st.out == 0:
                return 0
        external = self.board.pin_levels.get(pin_id)
        if external is not None:
            return external
        return self.idle_level(pin_id)

    def external_changed(self, pin_id, before):
        after = self.level(pin_id)
        st = self.states.get(pin_id)
        if st is not None and st.handler is not None and before != after:
            trigger = st.trigger
            if trigger in (Pin.IRQ_LOW_LEVEL, Pin.IRQ_HIGH_LEVEL):
                fire = after == (1 if trigger == Pin.IRQ_HIGH_LEVEL else 0)
            else:
                fire = (trigger & Pin.IRQ_RISING and after == 1) or (
                    trigger & Pin.IRQ_FALLING and after == 0
                )
            if fire:
                self.s.post_irq(st.handler, st.obj if st.arg is None else st.arg)


def _pins(session):
    return session.device("pins", Pins)


class Pin:
    """machine.Pin(id, mode=Pin.IN, pull=None, *, value=None, alt=-1)."""

    IN = 1
    OUT = 2
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2
    IRQ_LOW_LEVEL = 4
    IRQ_HIGH_LEVEL = 5
    LOW_POWER = 0
    MED_POWER = 1
    HIGH_POWER = 2
    _s = None

    def __init__(self, id, mode=IN, pull=None, *, value=None, alt=-1):
        self._s.check()
        self._id = _pin_id(id)
        self._pins = _pins(self._s)
        self.init(mode, pull, value=value, alt=alt)

    @classmethod
    def _existing(cls, pin_id):
        pin = cls.__new__(cls)
        pin._id = pin_id
        pin._pins = _pins(cls._s)
        return pin

    def init(self, mode=IN, pull=None, *, value=None, alt=-1):
        self._s.check()
        if mode not in (Pin.IN, Pin.OUT, Pin.OPEN_DRAIN):
            raise ValueError("invalid pin mode: %r" % (mode,))
        if pull not in (None, Pin.PULL_UP, Pin.PULL_DOWN):
            raise ValueError("invalid pull value: %r" % (pull,))
        if mode != Pin.IN and self._id in INPUT_ONLY_PINS:
            raise ValueError("pin %s is input only" % self._id)
        if alt != -1:
            raise unsupported("machine.Pin alternate functions (alt=%r)" % (alt,))
        st = self._pins.state(self._id)
        if value is not None:
            st.out = 1 if value else 0
        st.mode = mode
        st.pull = pull
        return None

    def id(self):
        return self._id

    def value(self, *args):
        s = self._s
        st = self._pins.state(self._id)
        if args:
            s.check()
            st.out = 1 if args[0] else 0
            return None
        s.poll_yield()
        return self._pins.level(self._id)

    __call__ = value

    def toggle(self):
        self._s.check()
        st = self._pins.state(self._id)
        st.out ^= 1

    def mode(self, *args):
        st = self._pins.state(self._id)
        if not args:
            return st.mode
        return self.init(args[0], st.pull)

    def pull(self, *args):
        st = self._pins.state(self._id)
        if not args:
            return st.pull
        return self.init(st.mode, args[0])

    def drive(self, *args):
        if args:
            self._s.check()
            return None
        return Pin.MED_POWER

    def hold(self, *args):
        raise unsupported("machine.Pin.hold()")

    def callback(self, trigger, handler=None, arg=None):
        self._s.check()
        if trigger not in (1, 2, 3, 4, 5):
            raise ValueError("invalid trigger: %r" % (trigger,))
        st = self._pins.state(self._id)
        st.trigger = trigger
        st.handler = handler
        st.arg = arg
        st.obj = self
        return None

    def __repr__(self):
        st = self._pins.state(self._id)
        names = {1: "Pin.IN", 2: "Pin.OUT", 7: "Pin.OPEN_DRAIN"}
        pulls = {None: "None", 1: "Pin.PULL_UP", 2: "Pin.PULL_DOWN"}
        return "Pin('%s', mode=%s, pull=%s, alt=-1)" % (self._id, names[st.mode], pulls[st.pull])

    def __eq__(self, other):
        return isinstance(other, Pin) and other._id == self._id

    def __hash__(self):
        return hash(self._id)


# -- Timer.Alarm, Timer.Chrono ------------------------------------------------------------------
class Alarm:
    """machine.Timer.Alarm(handler, s=None, *, ms=0, us=0, arg=None, periodic=False)."""

    _s = None

    def __init__(self, handler, s=None, *, ms=0, us=0, arg=None, periodic=False):
        session = self._s
        session.check()
        seconds = float(s) if s is not None else 0.0
        if (seconds != 0.0) + (ms != 0) + (us != 0) != 1:
            raise ValueError("please provide a single duration")
        if seconds < 0 or ms < 0 or us < 0:
            raise ValueError("please provide a positive number")
        self._interval_us = round(seconds * 1e6) + int(ms) * 1000 + int(us)
        self._periodic = bool(periodic)
        self._event = None
        self._handler = None
        self._harg = None
        self.callback(handler, arg=arg)

    def callback(self, handler, *, arg=None):
        session = self._s
        session.check()
        self._handler = handler
        self._harg = self if arg is None else arg
        active = session.devices.setdefault("alarms", set())
        if handler is None:
            self._stop(active)
            return None
        if self._event is None:
            if len(active) >= ALARM_MAX:
                raise MemoryError("maximum number of %d alarms already reached" % ALARM_MAX)
            active.add(self)
            self._arm()
        return None

    def _arm(self):
        session = self._s
        delay = session.board.local_to_virtual(self._interval_us)
        self._event = session.call_later(delay, self._expire)

    def _expire(self):
        session = self._s
        self._event = None
        if self._periodic:
            self._arm()
        else:
            session.devices.get("alarms", set()).discard(self)
        session.post_irq(self._dispatch, None)

    def _dispatch(self, _):
        handler = self._handler
        if handler is not None:
            handler(self._harg)

    def _stop(self, active):
        if self._event is not None:
            self._event.cancel()
            self._s.events.discard(self._event)
            self._event = None
        active.discard(self)

    def cancel(self):
        self._s.check()
        self._stop(self._s.devices.setdefault("alarms", set()))


class Chrono:
    """machine.Timer.Chrono(): a stopwatch on the board's µs clock."""

    _s = None

    def __init__(self):
        self._s.check()
        self._start = None
        self._elapsed = 0

    def _now(self):
        return self._s.board.local_us()

    def start(self):
        self._s.check()
        if self._start is None:
            self._start = self._now()

    def stop(self):
        self._s.check()
        if self._start is not None:
            self._elapsed += self._now() - self._start
            self._start = None

    def reset(self):
        self._s.check()
        self._elapsed = 0
        if self._start is not None:
            self._start = self._now()

    def read_us(self):
        self._s.poll_yield()
        running = self._now() - self._start if self._start is not None else 0
        return self._elapsed + running

    def read_ms(self):
        return self.read_us() / 1000.0

    def read(self):
        return self.read_us() / 1e6


def _make_timer(session):
    def sleep_us(us):
        session.sleep_local(int(us))

    return type(
        "Timer",
        (),
        {
            "Alarm": bind(Alarm, session),
            "Chrono": bind(Chrono, session),
            "sleep_us": staticmethod(sleep_us),
            "__module__": __name__,
        },
    )


# -- UART ---------------------------------------------------------------------------------------
class UartDevice:
    """Receiver of one UART in one board run: pulls bytes from the board's line as they arrive."""

    def __init__(self, session, uart_id):
        self.s = session
        self.board = session.board
        self.uart_id = uart_id
        self.config = None
        self.buffer = bytearray()
        self.rx_signal = None
        self.seg_index = 0
        self.offset = 0
        self.overflows = 0

    def open(self, config):
        from ..clock import Signal

        self.config = config
        self.rx_signal = Signal(self.s.scheduler)
        self.buffer = bytearray()
        now = self.s.scheduler.now_us()
        line = self.board.uart_lines.setdefault(self.uart_id, [])
        # Bytes that arrived before the receiver existed are gone.
        self.seg_index = 0
        self.offset = 0
        while self.seg_index < len(line):
            seg = line[self.seg_index]
            self.offset = seg.arrived(now)
            if self.offset < len(seg.data):
                break
            self.seg_index += 1
            self.offset = 0
        del line[: self.seg_index]
        self.seg_index = 0
        for seg in line:
            self.line_fed(seg)

    def close(self):
        self.config = None
        self.buffer = bytearray()

    def session_ended(self):
        self.close()

    def char_us(self):
        cfg = self.config
        return char_bits(cfg["bits"], cfg["parity"], cfg["stop"]) * 1e6 / cfg["baudrate"]

    def line_fed(self, seg):
        if self.config is None:
            return
        self.s.call_at(seg.arrival(0), self._arrived)

    def _arrived(self):
        self.rx_signal.fire(True)
        self.s.notify_io()

    def _pull(self):
        line = self.board.uart_lines.get(self.uart_id)
        if not line:
            return
        now = self.s.scheduler.now_us()
        while self.seg_index < len(line):
            seg = line[self.seg_index]
            n = seg.arrived(now)
            if n > self.offset:
                self.buffer += self._transform(seg, self.offset, n)
                self.offset = n
            if n < len(seg.data):
                break
            self.seg_index += 1
            self.offset = 0
        if self.seg_index:
            del line[: self.seg_index]
            self.seg_index = 0
        limit = self.config["rx_buffer_size"]
        if len(self.buffer) > limit:
            self.overflows += len(self.buffer) - limit
            self.board.stats["uart_overflow_bytes"] += len(self.buffer) - limit
            del self.buffer[limit:]

    def _transform(self, seg, start, end):
        cfg = self.config
        chunk = seg.data[start:end]
        baud = cfg["baudrate"]
        if abs(seg.baud - baud) > 0.03 * baud:
            rng = random.Random(seg.seed * 65537 + start)
            return bytes(rng.getrandbits(8) for _ in chunk)
        if (seg.bits, seg.parity) == (cfg["bits"], cfg["parity"]):
            return chunk
        out = bytearray()
        for byte in chunk:
            frame = [(byte >> i) & 1 for i in range(seg.bits)]
            if seg.parity is not None:
                ones = sum(frame) & 1
                frame.append(ones if seg.parity == UART.EVEN else ones ^ 1)
            frame += [1, 1, 1]
            value = 0
            for i in range(cfg["bits"]):
                value |= frame[i] << i
            out.append(value)
        return bytes(out)

    def _next_segment(self):
        line = self.board.uart_lines.get(self.uart_id)
        if line and self.seg_index < len(line):
            return line[self.seg_index]
        return None

    def wait_more(self, want, newline, timeout_vt):
        """Wait for more bytes as uart_rx_wait() does (up to timeout between characters); jump
        straight to the byte that completes the request while a segment is streaming."""
        s = self.s
        now = s.scheduler.now_us()
        seg = self._next_segment()
        if seg is None or seg.arrival(self.offset) > now + timeout_vt:
            before = len(self.buffer)
            s.block(timeout_vt, self.rx_signal)
            self._pull()
            return len(self.buffer) > before
        index = (
            self.offset + max(0, want - len(self.buffer) - 1)
            if want is not None
            else len(seg.data) - 1
        )
        if newline:
            found = seg.data.find(b"\n", self.offset)
            if found >= 0:
                index = min(index, found)
        index = min(index, len(seg.data) - 1)
        target = seg.arrival(index)
        if target > now:
            s.block(target - now)
        self._pull()
        return True


class UART:
    """machine.UART(bus, baudrate=9600, bits=8, parity=None, stop=1, *, timeout_chars=2,
    pins=None, rx_buffer_size=4096)."""

    EVEN = 2
    ODD = 3
    RX_ANY = 1
    _s = None

    def __init__(self, bus, *args, **kwargs):
        session = self._s
        session.check()
        if bus not in (0, 1, 2):
            raise ValueError("UART(%r) does not exist" % (bus,))
        self._id = bus
        self._dev = session.device("uart%d" % bus, UartDevice, bus)
        if args or kwargs or self._dev.config is None:
            self.init(*args, **kwargs)

    def init(
        self,
        baudrate=9600,
        bits=8,
        parity=None,
        stop=1,
        *,
        timeout_chars=2,
        pins=None,
        rx_buffer_size=4096,
    ):
        self._s.check()
        if baudrate <= 0:
            raise ValueError("invalid baudrate: %r" % (baudrate,))
        if bits not in (5, 6, 7, 8):
            raise ValueError("invalid data bits: %r" % (bits,))
        if parity not in (None, UART.EVEN, UART.ODD):
            raise ValueError("invalid parity: %r" % (parity,))
        if stop not in (1, 1.5, 2):
            raise ValueError("invalid stop bits: %r" % (stop,))
        if rx_buffer_size <= 0:
            raise ValueError("invalid rx_buffer_size: %r" % (rx_buffer_size,))
        self._dev.open(
            {
                "baudrate": int(baudrate),
                "bits": bits,
                "parity": parity,
                "stop": stop,
                "timeout_chars": int(timeout_chars),
                "pins": pins,
                "rx_buffer_size": int(rx_buffer_size),
            }
        )

    def deinit(self):
        self._s.check()
        self._dev.close()

    def _ready(self):
        self._s.check()
        if self._dev.config is None:
            raise OSError("UART not initialized")
        return self._dev

    def _timeout_vt(self, dev):
        local = dev.config["timeout_chars"] * dev.char_us()
        return self._s.board.local_to_virtual(max(1, round(local)))

    def any(self):
        dev = self._ready()
        self._s.poll_yield()
        dev._pull()
        return len(dev.buffer)

    def _read(self, want, newline):
        dev = self._ready()
        dev._pull()
        timeout = self._timeout_vt(dev)
        if not dev.buffer and not dev.wait_more(want, newline, timeout):
            return None
        out = bytearray()
        while True:
            buf = dev.buffer
            take = len(buf) if want is None else min(len(buf), want - len(out))
            if newline:
                cut = buf.find(b"\n", 0, take)
                if cut >= 0:
                    take = cut + 1
                    out += buf[:take]
                    del buf[:take]
                    return bytes(out)
            out += buf[:take]
            del buf[:take]
            if want is not None and len(out) >= want:
                return bytes(out)
            if not dev.wait_more(None if want is None else want - len(out), newline, timeout):
                return bytes(out) if out else None

    def read(self, nbytes=None):
        if nbytes is not None and nbytes <= 0:
            self._ready()
            return b""
        return self._read(nbytes, False)

    def readall(self):
        return self._read(None, False)

    def readline(self):
        return self._read(None, True)

    def readinto(self, buf, nbytes=None):
        want = len(buf) if nbytes is None else min(nbytes, len(buf))
        data = self._read(want, False)
        if data is None:
            return None
        buf[: len(data)] = data
        return len(data)

    def write(self, buf):
        self._ready()
        if isinstance(buf, str):
            buf = buf.encode("utf-8")
        data = bytes(buf)
        board = self._s.board
        board.uart_written.setdefault(self._id, bytearray()).extend(data)
        if self._id == 0:
            board._console_write(data.decode("utf-8", "replace"))
        for callback in list(board.on_uart_write):
            callback(board, self._id, data)
        return len(data)

    def wait_tx_done(self, timeout_ms):
        self._ready()
        return True

    def sendbreak(self):
        self._ready()

    def irq(self, *args, **kwargs):
        raise unsupported("machine.UART.irq()")

    def __repr__(self):
        cfg = self._dev.config
        if cfg is None:
            return "UART(%d)" % self._id
        parity = {None: "None", 2: "UART.EVEN", 3: "UART.ODD"}[cfg["parity"]]
        return "UART(%d, baudrate=%d, bits=%d, parity=%s, stop=%s)" % (
            self._id,
            cfg["baudrate"],
            cfg["bits"],
            parity,
            cfg["stop"],
        )


# -- RTC ----------------------------------------------------------------------------------------
def _datetime_us(datetime):
    items = tuple(datetime)
    if not 3 <= len(items) <= 8:
        raise ValueError("invalid argument(s) value")
    year, month, day = items[0], items[1], items[2]
    hour = items[3] if len(items) > 3 else 0
    minute = items[4] if len(items) > 4 else 0
    second = items[5] if len(items) > 5 else 0
    micro = items[6] if len(items) > 6 else 0
    import calendar

    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return seconds * 1_000_000 + int(micro)


class RtcDevice:
    """The SNTP client of one board run."""

    def __init__(self, session):
        self.s = session
        self.server = None
        self.period_us = 3600 * 1_000_000
        self.synced = False
        self.event = None

    def start(self, server, period_s):
        self.synced = False
        if self.event is not None:
            self.event.cancel()
            self.event = None
        self.server = server
        if server is not None:
            self.event = self.s.call_later(NTP_REPLY_US, self.attempt)

    def attempt(self):
        s = self.s
        board = s.board
        wlan = s.devices.get("wlan")
        self.event = None
        if wlan is not None and wlan.link_ready() and board.world.ntp_reachable(self.server):
            board.set_rtc_us(board.world.utc_us())
            self.synced = True
            board._trace("ntp_sync", server=self.server)
            delay = board.local_to_virtual(self.period_us)
        else:
            delay = board.local_to_virtual(NTP_RETRY_US)
        self.event = s.call_later(delay, self.attempt)


class RTC:
    """machine.RTC(id=0, datetime=None, source=None)."""

    INTERNAL_RC = 0
    XTAL_32KHZ = 1
    _s = None

    def __init__(self, id=0, datetime=None, source=None):
        self._s.check()
        if id != 0:
            raise OSError("resource not available")
        self._dev = self._s.device("rtc", RtcDevice)
        if datetime is not None:
            self.init(datetime)

    def init(self, datetime=None, source=None):
        self._s.check()
        if datetime is not None:
            self._s.board.set_rtc_us(_datetime_us(datetime))

    def now(self):
        self._s.poll_yield()
        us = self._s.board.rtc_us()
        t = _host_time.gmtime(us // 1_000_000)
        return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, us % 1_000_000, None)

    def ntp_sync(self, server, update_period=3600, backup_server=None):
        self._s.check()
        if update_period * 1000 < 15000:
            raise ValueError("update period cannot be shorter than 15 s")
        self._dev.period_us = int(update_period) * 1_000_000
        self._dev.start(server, update_period)

    def synced(self):
        self._s.poll_yield()
        return self._dev.synced

    def memory(self, *args):
        board = self._s.board
        self._s.check()
        if not args:
            return bytes(board.rtc_memory)
        data = bytes(args[0])
        if len(data) > RTC_MEMORY_MAX:
            raise ValueError("buffer too long")
        board.rtc_memory = data
        return None


# -- WDT ----------------------------------------------------------------------------------------
class WdtDevice:
    def __init__(self, session, timeout_ms):
        self.s = session
        self.timeout_vt = 0
        self.deadline = 0
        self.event = None
        self.set_timeout(timeout_ms)

    def set_timeout(self, timeout_ms):
        self.timeout_vt = self.s.board.local_to_virtual(int(timeout_ms) * 1000)
        self.feed()

    def feed(self):
        self.deadline = self.s.scheduler.now_us() + self.timeout_vt
        if self.event is None:
            self.event = self.s.call_at(self.deadline, self.expire)

    def expire(self):
        self.event = None
        now = self.s.scheduler.now_us()
        if now < self.deadline:
            self.event = self.s.call_at(self.deadline, self.expire)
            return
        board = self.s.board
        board._trace("wdt_expired")
        board.restart(2, "wdt")


def start_wdt(session, timeout_ms):
    dev = session.devices.get("wdt")
    if dev is not None:
        dev.set_timeout(timeout_ms)
    return session.device("wdt", WdtDevice, timeout_ms)


class WDT:
    """machine.WDT(id=0, timeout=ms): once started it cannot be stopped; feed() in time."""

    _s = None

    def __init__(self, id=0, timeout=None):
        self._s.check()
        if id != 0:
            raise ValueError("WDT(%r) does not exist" % (id,))
        if timeout is None or timeout <= 0:
            raise ValueError("WDT timeout must be > 0 ms")
        self._dev = start_wdt(self._s, timeout)

    def init(self, timeout):
        self._s.check()
        self._dev.set_timeout(timeout)

    def feed(self):
        self._s.check()
        self._dev.feed()


# -- ADC ----------------------------------------------------------------------------------------
class ADCChannel:
    _s = None

    def __init__(self, pin_id, attn, bits):
        self._pin = pin_id
        self._attn = attn
        self._bits = bits

    def _mv(self):
        self._s.poll_yield()
        mv = self._s.board.analog_mv.get(self._pin, 0.0)
        return max(0.0, min(mv, float(ADC_FULL_SCALE_MV[self._attn])))

    def value(self):
        full = (1 << self._bits) - 1
        return int(round(self._mv() / ADC_FULL_SCALE_MV[self._attn] * full))

    __call__ = value

    def voltage(self):
        return int(round(self._mv()))

    def value_to_voltage(self, value):
        full = (1 << self._bits) - 1
        return int(round(value * ADC_FULL_SCALE_MV[self._attn] / full))

    def init(self):
        self._s.check()

    def deinit(self):
        self._s.check()


class ADC:
    """machine.ADC(id=0, *, bits=12): channels on P13..P20 read the board's analog levels."""

    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    _s = None

    def __init__(self, id=0, *, bits=12):
        self._s.check()
        if id != 0:
            raise ValueError("ADC(%r) does not exist" % (id,))
        self.init(bits=bits)

    def init(self, *, bits=12):
        if bits not in (9, 10, 11, 12):
            raise ValueError("invalid number of bits: %r" % (bits,))
        self._bits = bits

    def deinit(self):
        self._s.check()

    def channel(self, id=None, *, pin=None, attn=ATTN_0DB):
        self._s.check()
        pin_id = _pin_id(pin if pin is not None else id)
        if pin_id not in ADC_PINS:
            raise ValueError("invalid ADC pin: %s" % pin_id)
        if attn not in ADC_FULL_SCALE_MV:
            raise ValueError("invalid attenuation: %r" % (attn,))
        return bind(ADCChannel, self._s)(pin_id, attn, self._bits)

    def vref(self, *args):
        raise unsupported("machine.ADC.vref()")

    def vref_to_pin(self, *args):
        raise unsupported("machine.ADC.vref_to_pin()")


# -- light sleep --------------------------------------------------------------------------------
class LightSleep:
    def __init__(self, session, wake):
        from ..clock import Signal

        self.s = session
        self.wake = wake
        self.signal = Signal(session.scheduler)

    def check_pins(self):
        if self.wake is None:
            return
        pin_ids, mode = self.wake
        board = self.s.board
        levels = [board.pin_level(p) for p in pin_ids]
        if (mode == WAKEUP_ANY_HIGH and any(levels)) or (
            mode == WAKEUP_ALL_LOW and not any(levels)
        ):
            self.signal.fire(True)


# -- module functions ---------------------------------------------------------------------------
class _Functions:
    def __init__(self, session):
        self.s = session

    def reset(self):
        s = self.s
        s.check()
        s.board.restart(HARD_RESET, "reset")
        raise ResetUnwind()

    def reset_cause(self):
        self.s.check()
        return self.s.reset_cause

    def wake_reason(self):
        s = self.s
        s.check()
        pins = None
        if s.wake_reason == PIN_WAKE:
            pin_cls = _machine_module(s).Pin
            pins = [pin_cls._existing(p) for p in s.wake_pins or ()]
        return (s.wake_reason, pins)

    def remaining_sleep_time(self):
        self.s.check()
        return self.s.board.remaining_sleep_ms

    def deepsleep(self, time_ms=None):
        s = self.s
        s.check()
        s.board.enter_deepsleep(s, time_ms, s.devices.get("wake"))

    def pin_sleep_wakeup(self, pins, mode, enable_pull=False):
        s = self.s
        s.check()
        if mode not in (WAKEUP_ALL_LOW, WAKEUP_ANY_HIGH):
            raise ValueError("invalid wakeup mode %d" % mode)
        ids = []
        for pin in pins:
            pin_id = _pin_id(pin)
            if pin_id not in WAKE_PINS:
                raise ValueError("deepsleep wake up is not supported on the selected pin(s)")
            ids.append(pin_id)
        s.devices["wake"] = (tuple(ids), mode) if ids else None

    def sleep(self, time_ms=None, resume_wifi_ble=True):
        s = self.s
        s.check()
        board = s.board
        light = LightSleep(s, s.devices.get("wake"))
        s.devices["light_sleep"] = light
        board._trace("light_sleep", ms=time_ms)
        try:
            light.check_pins()
            timeout = None if time_ms is None else board.local_to_virtual(int(time_ms) * 1000)
            s.block(timeout, light.signal)
        finally:
            s.devices.pop("light_sleep", None)
        if not resume_wifi_ble:
            wlan = s.devices.get("wlan")
            if wlan is not None:
                wlan.deinit()
        for callback in list(board.on_light_sleep):
            callback(board, time_ms)

    def idle(self):
        self.s.poll_yield()

    def unique_id(self):
        self.s.check()
        return bytes(self.s.board.mac)

    def freq(self):
        return CPU_HZ

    def rng(self):
        self.s.check()
        return self.s.rng.getrandbits(24)

    def disable_irq(self):
        return 1

    def enable_irq(self, state=None):
        return None

    def info(self):
        self.s.console_write(
            "---------------------------------------------\n"
            "System memory info (in bytes)\n"
            "---------------------------------------------\n"
            "MPTask stack water mark: 7200\n"
            "ServersTask stack water mark: 1200\n"
            "LoRaTask stack water mark: 3400\n"
            "TimerTask stack water mark: 2100\n"
            "IdleTask stack water mark: 600\n"
            "System free heap: 310000\n"
            "---------------------------------------------\n"
        )

    def temperature(self):
        self.s.check()
        return 125

    def main(self, filename):
        if not isinstance(filename, str):
            raise TypeError("expecting a string file name")
        self.s.main_file = filename.lstrip("/").removeprefix("flash/")

    def flash_encrypt(self):
        return 0

    def secure_boot(self):
        return 0


class _Unsupported:
    def __init__(self, what):
        self._what = what

    def __getitem__(self, key):
        raise unsupported(self._what)

    def __setitem__(self, key, value):
        raise unsupported(self._what)


def _machine_module(session):
    return session.emulated_module("machine")


def make(session):
    f = _Functions(session)
    attrs = {
        "reset": f.reset,
        "reset_cause": f.reset_cause,
        "wake_reason": f.wake_reason,
        "remaining_sleep_time": f.remaining_sleep_time,
        "deepsleep": f.deepsleep,
        "pin_sleep_wakeup": f.pin_sleep_wakeup,
        "pin_deepsleep_wakeup": f.pin_sleep_wakeup,
        "sleep": f.sleep,
        "idle": f.idle,
        "unique_id": f.unique_id,
        "freq": f.freq,
        "rng": f.rng,
        "disable_irq": f.disable_irq,
        "enable_irq": f.enable_irq,
        "info": f.info,
        "temperature": f.temperature,
        "main": f.main,
        "flash_encrypt": f.flash_encrypt,
        "secure_boot": f.secure_boot,
        "mem8": _Unsupported("machine.mem8"),
        "mem16": _Unsupported("machine.mem16"),
        "mem32": _Unsupported("machine.mem32"),
        "PWRON_RESET": 0,
        "HARD_RESET": 1,
        "WDT_RESET": 2,
        "DEEPSLEEP_RESET": DEEPSLEEP_RESET,
        "SOFT_RESET": 4,
        "BROWN_OUT_RESET": 5,
        "PWRON_WAKE": 0,
        "PIN_WAKE": PIN_WAKE,
        "RTC_WAKE": RTC_WAKE,
        "ULP_WAKE": 3,
        "WAKEUP_ALL_LOW": WAKEUP_ALL_LOW,
        "WAKEUP_ANY_HIGH": WAKEUP_ANY_HIGH,
    }
    lazy = {
        "Pin": lambda: bind(Pin, session),
        "UART": lambda: bind(UART, session),
        "Timer": lambda: _make_timer(session),
        "RTC": lambda: bind(RTC, session),
        "WDT": lambda: bind(WDT, session),
        "ADC": lambda: bind(ADC, session),
    }
    lazy.update(_UNSUPPORTED_CLASSES)
    return new_module("umachine", attrs, lazy)


_UNSUPPORTED_CLASSES = {
    name: (lambda n: lambda: unsupported_class("machine." + n))(name)
    for name in ("SPI", "I2C", "PWM", "DAC", "SD", "CAN", "RMT", "Touch")
}


__all__ = ["make", "start_wdt", "Pin", "UART", "RTC", "WDT", "ADC", "Alarm", "Chrono"]
