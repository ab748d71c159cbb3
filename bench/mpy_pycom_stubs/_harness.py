"""The bench world behind the Pycom stubs (MicroPython only): a virtual clock, Timer alarms,
Pycom's IRQ callbacks, idle hooks, and heap snapshots.

Time is virtual: it moves only when the firmware waits (utime.sleep*, poll, a blocking LoRa send)
or a hook advances it, so a week of readings runs in seconds and every run is the same.
While the firmware waits, due Timer alarms fire and then every idle hook runs: hooks are how a
bench injects radio frames, S0 pulses or datagrams, and how it interrupts the firmware by raising
Stop (a BaseException, so the firmware's `except Exception` lets it through).

Heap figures need care on the npm wasm build (the pyscript variant): its gc.collect() only marks
a collection as pending, and the collection runs when JavaScript next enters MicroPython at the
top level (no C stack to scan then). Within one runPython call gc.mem_alloc() keeps counting
garbage. So a bench calls request(label) (which also calls gc.collect()) and returns to
JavaScript; the next top-level call starts with take_pending(), which reads gc.mem_alloc()
right after the real collection. mpy_image_harness.mjs runs spec.repeat again and again for that.

QSTR_NOTE: interned names (qstrs) live in pools that MicroPython allocates in doubling sizes
(7 bytes an entry here), so whether a module's names land in spare room of a pool allocated
before the base, or pay for a new one of several KB, depends on what ran before it. Each
snapshot therefore also prints micropython.qstr_info() after a "@@QSTR@@label" line, so that
the host can count the names at 7 bytes each instead of the pools' spare capacity.

install() registers the stubs under the names the firmware imports. It is needed for `utime`
and `uselect`: MicroPython >= 1.21 maps a u-name to its built-in (time, select) before it looks
at sys.path, so those two stubs live in pycom_utime.py / pycom_uselect.py and go straight into
sys.modules.
"""

import gc
import sys

EPOCH_S = 1704067200  # the RTC at power-up: 2024-01-01 00:00:00 UTC
MASK32 = 0xFFFFFFFF


class Stop(BaseException):
    """Raised by a hook to end the run (passes every `except Exception` of the firmware)."""


class Reset(BaseException):
    """machine.reset() or machine.deepsleep(): the board would restart here."""

    def __init__(self, kind, ms=0):
        BaseException.__init__(self, kind)
        self.kind = kind
        self.ms = ms


_clock = [0]  # virtual µs since power-up
_alarms = []  # Timer.Alarm objects, armed or not
_hooks = []
_base = [0]
idle_calls = [0]
# Snapshots in preallocated slots (label, bytes above the base, node CPU ms at the request):
# storing them allocates nothing, so the bench does not add to the growth it measures.
SLOTS = 64
_labels = [None] * SLOTS
_heap = [0] * SLOTS
_cpu = [0] * SLOTS
_count = [0]


def cpu_ms():
    """CPU time of the process in whole ms (node's cpuUsage under wasm)."""
    try:
        import js

        usage = js.process.cpuUsage()
        return int((usage.user + usage.system) // 1000)
    except ImportError:
        import time

        return time.ticks_ms()


def now_us():
    return _clock[0]


def install():
    """Put every stub in sys.modules under its Pycom name (call before the firmware imports)."""
    import _thread  # noqa: F401

    import crypto  # noqa: F401
    import machine  # noqa: F401
    import network  # noqa: F401
    import pycom  # noqa: F401
    import pycom_uselect
    import pycom_utime
    import usocket

    sys.modules["utime"] = pycom_utime
    sys.modules["uselect"] = pycom_uselect
    sys.modules["socket"] = usocket


def advance(us):
    """Move the clock forward by us, firing the Timer alarms that fall due on the way."""
    target = _clock[0] + us
    while True:
        due = None
        for alarm in _alarms:
            if alarm.armed and alarm.due <= target and (due is None or alarm.due < due.due):
                due = alarm
        if due is None:
            break
        if due.due > _clock[0]:
            _clock[0] = due.due
        due.fire()
    if target > _clock[0]:
        _clock[0] = target


def idle(us):
    """The firmware waits us: time passes, then the hooks run (they may raise Stop)."""
    advance(us)
    idle_calls[0] += 1
    for hook in _hooks:
        hook(us)


def add_hook(hook):
    """hook(us_just_waited) runs at every wait of the firmware."""
    _hooks.append(hook)


# A hook that knows when it next acts (injects, delivers, stops) may set wake_at[0] to that
# virtual µs: until then nothing but Timer alarms can happen, so a poll may wait in one step
# instead of SLICE_MS slices (a long run then costs per main-loop pass, not per 10 ms).
# None (the default): the hooks run after every slice.
wake_at = [None]


def quiet_ms():
    """Whole ms (rounded up) until the hooks next act, or None when they did not say."""
    wake = wake_at[0]
    if wake is None:
        return None
    left = wake - _clock[0]
    return -(-left // 1000) if left > 0 else 0


irq_dead = [None]  # why Pycom's IRQ thread died (no callback runs after that), or None


def irq(handler, arg):
    """Run a Pycom callback as the IRQ thread would: an exception escaping it kills the thread,
    and no callback of any kind runs afterwards."""
    if irq_dead[0] is not None:
        return
    try:
        handler(arg)
    except Exception as exc:
        print("Unhandled exception in callback handler")
        sys.print_exception(exc)
        irq_dead[0] = "%s: %s" % (type(exc).__name__, exc)


_pending = [None]
_pending_cpu = [0]


def request(label):
    """Ask for a heap snapshot named label at the start of the next top-level call ("base" sets
    the zero of every later one); notes the CPU time now and calls gc.collect()."""
    _pending[0] = label
    _pending_cpu[0] = cpu_ms()
    gc.collect()


def take_pending():
    """Call first thing in a top-level call: stores the snapshot request()ed before and returns
    its label (None when there was none)."""
    label = _pending[0]
    if label is None:
        return None
    _pending[0] = None
    used = gc.mem_alloc()
    _qstr_info(label)
    if label == "base":
        _base[0] = used
        return label
    i = _count[0]
    if i < SLOTS:
        _labels[i] = label
        _heap[i] = used - _base[0]
        _cpu[i] = _pending_cpu[0]
        _count[0] = i + 1
    return label


def _qstr_info(label):
    # The interned-name pools at this snapshot, for the host side (see QSTR_NOTE).
    try:
        import micropython

        print("@@QSTR@@" + str(label))
        micropython.qstr_info()
    except (ImportError, AttributeError):
        pass


def heap(label, default=None):
    """Bytes above the base of the latest snapshot named label."""
    for i in range(_count[0] - 1, -1, -1):
        if _labels[i] == label:
            return _heap[i]
    return default


def snapshots():
    """[(label, bytes above the base, CPU ms)] in the order taken."""
    return [(_labels[i], _heap[i], _cpu[i]) for i in range(_count[0])]
