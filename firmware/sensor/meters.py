"""Metering inputs of the sensor image: debounced S0 pulse counting and the Linky TIC reader.

PulseCounter holds the IRQ-side state of up to two S0 channels. A Pin callback on both edges
calls edge(channel, level, ticks_ms): a pulse counts when the line returns to idle after having
been active for at least debounce_ms (EN 62053-31: pulses >= 30 ms), so contact bounce at the
start or end of a pulse is never counted. edge() only compares and adds small ints: it allocates
nothing and cannot raise on valid input. The main loop moves the counts out with take().

TicInput reads a Linky on a UART (7E1; 9600 baud standard, 1200 baud historique, both tried in
"auto") with lib/linky's TicReader and turns a frame into the report's TIC block values.
"""

import linky
import utime

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_SMALL = const(0x3FFFFFFF)
ACTIVE_LOW = 0
ACTIVE_HIGH = 1


def active_level(pull):
    """Level of an active S0 pulse for a pull setting: a pull-up (or an external one, "none")
    idles high and the meter's transistor pulls the line low; a pull-down idles low."""
    return ACTIVE_HIGH if pull == "down" else ACTIVE_LOW


class PulseCounter:
    """Debounced pulse counts of `len(debounce_ms)` channels (see the module docstring).

    Each list has one writer, so the IRQ thread and the main loop never race on a value: edge()
    alone writes `counted` (kept below 2^30, MicroPython's small-int range) and the state; the
    main loop alone writes `taken` and `extra`.
    """

    def __init__(self, debounce_ms, active_levels):
        n = len(debounce_ms)
        self.debounce = list(debounce_ms)
        self.active = list(active_levels)
        self.counted = [0] * n  # pulses counted by edge(), modulo 2^30
        self.taken = [0] * n  # value of counted at the last take()
        self.extra = [0] * n  # pulses added by the main loop
        self.state = [0] * n  # 1 while the line is active
        self.since = [0] * n  # ticks_ms of the edge into the active level
        self.bounces = [0] * n  # active spans shorter than the debounce time

    def edge(self, channel, level, now):
        if level == self.active[channel]:
            if not self.state[channel]:
                self.state[channel] = 1
                self.since[channel] = now
        elif self.state[channel]:
            self.state[channel] = 0
            if utime.ticks_diff(now, self.since[channel]) >= self.debounce[channel]:
                self.counted[channel] = (self.counted[channel] + 1) & _SMALL
            else:
                self.bounces[channel] += 1

    def add(self, channel, pulses):
        """Count pulses seen otherwise (the pulse that woke the board from deep sleep)."""
        self.extra[channel] += pulses

    def take(self, channel):
        """Pulses counted on channel since the last take()."""
        counted = self.counted[channel]
        count = ((counted - self.taken[channel]) & _SMALL) + self.extra[channel]
        self.taken[channel] = counted
        self.extra[channel] = 0
        return count

    def active_ms(self, channel, now):
        """How long the line has been held active (0 when idle)."""
        if not self.state[channel]:
            return 0
        return utime.ticks_diff(now, self.since[channel])


class S0Inputs:
    """The configured S0 channels on their pins, counted by a PulseCounter from Pin IRQs."""

    def __init__(self, machine, inputs):
        self.count = len(inputs)
        self.names = [entry["pin"] for entry in inputs]
        self.levels = [active_level(entry["pull"]) for entry in inputs]
        self.counter = PulseCounter([entry["debounce_ms"] for entry in inputs], self.levels)
        pin_cls = machine.Pin
        pulls = {"up": pin_cls.PULL_UP, "down": pin_cls.PULL_DOWN, "none": None}
        self.pins = [
            pin_cls(entry["pin"], mode=pin_cls.IN, pull=pulls[entry["pull"]]) for entry in inputs
        ]
        self._handler = self._irq
        self._trigger = pin_cls.IRQ_FALLING | pin_cls.IRQ_RISING

    def _irq(self, channel):
        # Runs on Pycom's IRQ thread: an exception escaping here would stop every later callback.
        try:
            self.counter.edge(channel, self.pins[channel].value(), utime.ticks_ms())
        except Exception:
            pass

    def start(self, skip=()):
        """Arm the IRQs; a line found already active starts its pulse now, except on the
        channels in skip (their pulse woke the board and was counted already)."""
        now = utime.ticks_ms()
        for ch in range(self.count):
            if ch not in skip:
                self.counter.edge(ch, self.pins[ch].value(), now)
            self.pins[ch].callback(self._trigger, self._handler, ch)

    def stop(self):
        for pin in self.pins:
            pin.callback(self._trigger, None)

    def is_active(self, channel):
        return self.pins[channel].value() == self.levels[channel]

    def wake_mode(self, machine):
        """(pins, mode) for machine.pin_sleep_wakeup, or None when the channels cannot share one
        wake mode: active-high lines wake with WAKEUP_ANY_HIGH (one or two channels); an
        active-low line only with WAKEUP_ALL_LOW, so only as the single channel."""
        if not self.count:
            return None
        if all(level == ACTIVE_HIGH for level in self.levels):
            return (self.names, machine.WAKEUP_ANY_HIGH)
        if self.count == 1:
            return (self.names, machine.WAKEUP_ALL_LOW)
        return None


# Per historique tariff option (OPTARIF / the labels present), the index labels in the meter's
# order and the PTEC value of each period (docs/payload-format.md section 3.2).
_HISTORIQUE_OPTIONS = (
    (("BASE",), ("TH",)),
    (("HCHC", "HCHP"), ("HC", "HP")),
    (("EJPHN", "EJPHPM"), ("HN", "PM")),
    (
        ("BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR"),
        ("HCJB", "HPJB", "HCJW", "HPJW", "HCJR", "HPJR"),
    ),
)
_STANDARD_INDEXES = (
    "EASF01", "EASF02", "EASF03", "EASF04", "EASF05",
    "EASF06", "EASF07", "EASF08", "EASF09", "EASF10",
)  # fmt: skip
KEEP_LABELS = linky.ENERGY_LABELS + ("NTARF",)


def _number(text):
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text or not text.isdigit():
        return None
    return int(text)


def tic_block(frame):
    """(papp_va, tariff, [index_wh...]) for the report's TIC block from a TIC frame dict, or None
    when the frame holds no energy index. Standard meters list EASF01..10; unused trailing
    periods (zero) are left out, keeping at least the current one."""
    papp = linky.power_va(frame)
    if papp is None:
        papp = 0
    if "EASF01" in frame:
        values = []
        for label in _STANDARD_INDEXES:
            wh = _number(frame.get(label))
            if wh is None:
                break
            values.append(wh)
        tariff = _number(frame.get("NTARF"))
        if tariff is None or tariff > len(values):
            tariff = 0
        while len(values) > 1 and len(values) > tariff and values[-1] == 0:
            values.pop()
        return (papp, tariff, values) if values else None
    period = linky.tariff_period(frame) or ""
    for labels, periods in _HISTORIQUE_OPTIONS:
        if labels[0] in frame:
            values = []
            for label in labels:
                wh = _number(frame.get(label))
                if wh is None:
                    return None
                values.append(wh)
            tariff = 0
            for i in range(len(periods)):
                if period.startswith(periods[i]):
                    tariff = i + 1
                    break
            return (papp, tariff, values)
    total = linky.index_wh(frame)
    if total is not None:  # EAST without EASF: one total index
        return (papp, 0, [total])
    return None


class TicInput:
    """A Linky on UART `uart_id` (receive pin `pin`), mode "historique", "standard" or "auto".

    poll() moves whatever the UART holds into the parser (call it often enough for the UART
    buffer: 4 KiB last 4 s at 9600 baud); the newest good frame and the time it came are kept.
    """

    def __init__(self, machine, uart_id, pin, mode, baud_index=0):
        self.mode = mode
        self.reader = linky.TicReader(mode=linky.AUTO, keep=KEEP_LABELS)
        if mode == "auto":
            self.bauds = (linky.BAUDRATE[linky.STANDARD], linky.BAUDRATE[linky.HISTORIQUE])
        else:
            self.bauds = (linky.BAUDRATE[mode],)
        self._machine = machine
        self._uart_id = uart_id
        self._pin = pin
        self._baud_index = baud_index if 0 <= baud_index < len(self.bauds) else 0
        self._buf = bytearray(256)
        self._mv = memoryview(self._buf)
        self.frame = None  # newest good frame (dict)
        self.frame_ticks = None  # ticks_ms when it completed
        self.uart = None
        self._open()

    def _open(self):
        uart_cls = self._machine.UART
        self.uart = uart_cls(
            self._uart_id,
            baudrate=self.bauds[self._baud_index],
            bits=7,
            parity=uart_cls.EVEN,
            stop=1,
            pins=(None, self._pin),
            rx_buffer_size=4096,
        )
        self.reader.reset()

    @property
    def baudrate(self):
        return self.bauds[self._baud_index]

    @property
    def baud_index(self):
        return self._baud_index

    def next_baudrate(self):
        """In auto mode, switch to the other speed (after a silent or garbled window)."""
        if len(self.bauds) > 1:
            self._baud_index = (self._baud_index + 1) % len(self.bauds)
            self._open()

    def poll(self):
        """Feed the UART's pending bytes to the parser; True when a good frame completed."""
        got = False
        uart = self.uart
        while True:
            n = uart.any()
            if not n:
                return got
            n = uart.readinto(self._buf, n if n < len(self._buf) else len(self._buf))
            if not n:
                return got
            if self.reader.feed(self._mv[:n]):
                frame = self.reader.frame()
                if frame is not None:
                    self.frame = frame
                    self.frame_ticks = utime.ticks_ms()
                    got = True

    def wait_frame(self, timeout_ms, feed=None):
        """Poll until a new good frame arrives or timeout_ms passes (auto mode tries the other
        baud rate after half the time); feed() is called between polls (watchdog)."""
        start = utime.ticks_ms()
        switched = len(self.bauds) == 1
        while True:
            if self.poll():
                return True
            elapsed = utime.ticks_diff(utime.ticks_ms(), start)
            if elapsed >= timeout_ms:
                return False
            if not switched and elapsed >= timeout_ms // 2 and self.reader.groups_ok == 0:
                self.next_baudrate()
                switched = True
            if feed is not None:
                feed()
            utime.sleep_ms(50)

    def detected(self):
        """0 nothing seen yet, 1 historique, 2 standard (the status frame's tic_mode code)."""
        if self.reader.detected == linky.HISTORIQUE:
            return 1
        if self.reader.detected == linky.STANDARD:
            return 2
        return 0
