"""A simulated Pycom LoPy/LoPy4: virtual flash, NVS, RTC, pins and the firmware's life cycle.

A `Board` is the hardware that outlives a CPU run: the flash directory, NVS, RTC memory and
clock, MAC address, position, the levels the outside world drives on its pins and UART lines.
A `Session` is one CPU run, from a reset to the next: the firmware's RAM. It owns the board's
module table (`sys.modules`), builtins, tasks (main, `_thread`s, the "IRQs" task), timers,
sockets and open files. Ending a session (deep sleep, reset, watchdog, power cut) kills its
tasks, cancels its timers and closes its sockets; anything a killed task still holds raises
`PowerOff` when used, so `finally:` blocks cannot perform I/O.

Isolation: each session imports the firmware from its board's flash through its own
`__import__`, with its own builtins dict (`open` into the flash, `print` into the console) and
fresh instances of the emulated Pycom modules. Code objects compiled from the same file contents
are shared between boards, so a hundred boards running the same image compile it once.

Time: the scheduler's virtual time is the truth. A board's local clocks (CPU µs counter since
boot, RTC) run at 1 + ppm·10⁻⁶ of it (clock-drift fault); firmware durations are local and
converted to virtual time before blocking.
"""

import builtins as _host_builtins
import collections
import errno
import os
import posixpath
import random
import shutil
import traceback
import types

import greenlet

from .clock import Signal, SimulationError

# machine.reset_cause() / wake_reason() values (Pycom esp32/util/mpsleep.h).
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

IRQ_QUEUE_LEN = 32  # Pycom INTERRUPTS_QUEUE_LEN
SCHEDULE_DEPTH = 4  # MicroPython 1.11 MICROPY_SCHEDULER_DEPTH
RTC_MEMORY_MAX = 2048  # Pycom machrtc.c MEM_USER_MAXLEN
POLL_COST_US = 20  # virtual CPU time charged to a polling call (ticks_*, isconnected, any...)

PIN_IDS = tuple("P%d" % i for i in range(24))
INPUT_ONLY_PINS = frozenset("P%d" % i for i in range(13, 19))
WAKE_PINS = frozenset(
    ["P2", "P3", "P4", "P6", "P8", "P9", "P10"] + ["P%d" % i for i in range(13, 24)]
)

_CAUSE_NAMES = {
    PWRON_RESET: "PWRON_RESET",
    HARD_RESET: "HARD_RESET",
    WDT_RESET: "WDT_RESET",
    DEEPSLEEP_RESET: "DEEPSLEEP_RESET",
    SOFT_RESET: "SOFT_RESET",
    BROWN_OUT_RESET: "BROWN_OUT_RESET",
}


class BoardHalt(BaseException):
    """Unwinds firmware code when its CPU stops; not an Exception, so `except Exception` passes it."""


class PowerOff(BoardHalt):
    """A hardware call from firmware whose board session has ended (power cut, reset, sleep)."""


class DeepSleepUnwind(BoardHalt):
    """Raised by machine.deepsleep(): the CPU stops here and the board boots again later."""


class ResetUnwind(BoardHalt):
    """Raised by machine.reset() and a soft reset: the board boots again at once."""


_TIMEOUT = object()
_SCHEDULE = object()


def oserror(code):
    """OSError as MicroPython shows it: OSError: [Errno 11] EAGAIN."""
    return OSError(code, errno.errorcode.get(code, str(code)))


def unsupported(what):
    """The error for a Pycom call the simulator does not reproduce (it must fail loudly)."""
    return NotImplementedError("simulator: %s not supported" % what)


class DriftClock:
    """A local clock: value = anchor + (virtual elapsed) · (1 + ppm·10⁻⁶), integer µs."""

    __slots__ = ("anchor_vt", "anchor", "num")

    DEN = 1_000_000_000

    def __init__(self, now_vt, value=0, ppm=0.0):
        self.anchor_vt = now_vt
        self.anchor = value
        self.num = self.DEN + round(ppm * 1000)

    def value(self, now_vt):
        return self.anchor + (now_vt - self.anchor_vt) * self.num // self.DEN

    def set(self, now_vt, value):
        self.anchor_vt = now_vt
        self.anchor = int(value)

    def set_ppm(self, now_vt, ppm):
        self.anchor = self.value(now_vt)
        self.anchor_vt = now_vt
        self.num = self.DEN + round(ppm * 1000)

    def to_virtual(self, local_us):
        """Virtual duration for a local duration (rounded up: never wake early)."""
        return -(-int(local_us) * self.DEN // self.num)


# -- firmware code: compiling, tracebacks --------------------------------------------------------
_CODE_CACHE = {}
_FIRMWARE_FILES = set()


def compile_firmware(source, filename):
    """Compile firmware source with its on-board path as filename; cached by (path, contents)."""
    key = (filename, source)
    code = _CODE_CACHE.get(key)
    if code is None:
        code = compile(source, filename, "exec", dont_inherit=True)
        _CODE_CACHE[key] = code
        _FIRMWARE_FILES.add(filename)
    return code


_OSERROR_NAMES = {
    FileNotFoundError,
    FileExistsError,
    BlockingIOError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    InterruptedError,
    ConnectionError,
    ConnectionRefusedError,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
}


def format_exception(exc):
    """A MicroPython-style traceback of the firmware frames of exc (simulator frames left out)."""
    lines = ["Traceback (most recent call last):"]
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename in _FIRMWARE_FILES:
            lines.append(
                '  File "%s", line %d, in %s' % (code.co_filename, tb.tb_lineno, code.co_name)
            )
        tb = tb.tb_next
    name = "OSError" if type(exc) in _OSERROR_NAMES else type(exc).__name__
    text = str(exc)
    lines.append("%s: %s" % (name, text) if text else name)
    return "\n".join(lines) + "\n"


# -- the per-board importer ----------------------------------------------------------------------
# Names MicroPython/Pycom know but the simulator does not provide: importing them fails loudly.
KNOWN_UNPROVIDED = frozenset(
    "ussl ssl uctypes btree framebuf uzlib zlib uasyncio asyncio upip pyb esp esp32 ubluetooth"
    " bluetooth uqueue queue webrepl uwebsocket websocket sqnsupgrade pycoproc lte sigfox"
    " umqtt pybytes urequests requests uping uselect_epoll".split()
)


class _Importer:
    """`__import__` of one session: emulated modules first, then flash files, then weak links."""

    def __init__(self, session):
        self.s = session

    def __call__(self, name, globals=None, locals=None, fromlist=(), level=0):
        s = self.s
        if level > 0:
            package = _package_of(globals or {})
            parts = package.rsplit(".", level - 1)
            if len(parts) < level or not package:
                raise ImportError("attempted relative import beyond top-level package")
            base = parts[0]
            fullname = "%s.%s" % (base, name) if name else base
        else:
            if not name:
                raise ValueError("empty module name")
            fullname = name
        module = self.load(fullname)
        if fromlist:
            if hasattr(module, "__path__"):
                for item in fromlist:
                    if item != "*" and not hasattr(module, item):
                        try:
                            self.load("%s.%s" % (module.__name__, item))
                        except ImportError:
                            pass
            return module
        if level == 0:
            return s.modules[fullname.partition(".")[0]]
        if not name:
            return module
        cut = len(fullname) - len(name) + len(name.partition(".")[0])
        return s.modules[fullname[:cut]]

    def load(self, fullname):
        s = self.s
        module = s.modules.get(fullname)
        if module is not None:
            return module
        s.check()
        parent, _, child = fullname.rpartition(".")
        if parent:
            parent_module = self.load(parent)
            path = getattr(parent_module, "__path__", None)
            if path is None:
                raise ImportError("no module named '%s'" % fullname)
            module = self._load_from(fullname, child, path, relative_to_cwd=False)
            if module is None:
                raise ImportError("no module named '%s'" % fullname)
            setattr(parent_module, child, module)
            return module
        from . import pycom as emulated

        canonical = emulated.builtin_name(fullname)
        if canonical is None:
            module = self._load_from(fullname, fullname, s.sys_path, relative_to_cwd=True)
            if module is not None:
                return module
            canonical = emulated.weak_link(fullname)
        if canonical is not None:
            module = s.emulated_module(canonical)
            s.modules[fullname] = module
            return module
        if fullname in KNOWN_UNPROVIDED:
            raise ImportError("simulator does not provide module %s" % fullname)
        raise ImportError("no module named '%s'" % fullname)

    def _load_from(self, fullname, leaf, path, relative_to_cwd):
        s = self.s
        board = s.board
        for entry in list(path):
            entry = str(entry)
            if entry == "" and relative_to_cwd:
                shown_dir, real_dir = "", s.cwd
            else:
                shown_dir, real_dir = entry, entry
            try:
                host_dir = board.host_path(real_dir, s.cwd)
            except OSError:
                continue
            listing = s.listing(host_dir)
            base = os.path.join(host_dir, leaf)
            shown = posixpath.join(shown_dir, leaf) if shown_dir else leaf
            if listing.get(leaf + ".py") is False:
                return s.exec_module(fullname, base + ".py", shown + ".py", None)
            if listing.get(leaf) is True:
                init = os.path.join(base, "__init__.py")
                package_path = posixpath.join(real_dir, leaf)
                if os.path.isfile(init):
                    return s.exec_module(fullname, init, shown + "/__init__.py", package_path)
                return s.exec_module(fullname, None, shown, package_path)
            if listing.get(leaf + ".mpy") is False:
                raise ImportError(
                    "simulator: cannot run compiled %s.mpy; put the .py source on the flash" % shown
                )
        return None


def _package_of(globals_):
    package = globals_.get("__package__")
    if package is not None:
        return package
    name = globals_.get("__name__", "")
    return name if "__path__" in globals_ else name.rpartition(".")[0]


class _ConsoleStream:
    """sys.stdout / sys.stderr of a board: writes go to its console."""

    def __init__(self, session):
        self._s = session

    def write(self, text):
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "replace")
        self._s.console_write(text)
        return len(text)

    def flush(self):
        pass


# -- a CPU run -----------------------------------------------------------------------------------
class Session:
    """One run of the firmware, from a reset to the next: the board's RAM."""

    def __init__(self, board, number, reset_cause, wake_reason, wake_pins):
        self.board = board
        self.scheduler = board.scheduler
        self.number = number
        self.alive = True
        self.reset_cause = reset_cause
        self.wake_reason = wake_reason
        self.wake_pins = wake_pins
        self.state = "boot"
        self.modules = {}
        self._emulated = {}
        self.sys_path = ["", "/flash", "/flash/lib"]
        self.cwd = "/flash"
        self.main_file = "main.py"
        self.tasks = []
        self.main_task = None
        self.main_blocked = False
        self.sched_queue = []
        self.irq_queue = collections.deque()
        self.irq_task = None
        self.irq_waiting = False
        self.irq_dead = False
        self.irq_dropped = 0
        self.events = set()
        self.files = []
        self.sockets = []
        self.devices = {}  # per-run peripheral state of the emulated modules (pins, uarts, wlan...)
        self.io_signal = Signal(board.scheduler)
        self.cpu = DriftClock(board.scheduler.now_us(), 0, board.drift_ppm)
        self.rng = random.Random(board.rng.getrandbits(64))
        self.stdout = _ConsoleStream(self)
        self.builtins = self._make_builtins()
        self.importer = self.builtins["__import__"]
        self.main_globals = None
        self._listings = {}

    # -- builtins and modules --------------------------------------------------------------
    def _make_builtins(self):
        table = dict(_host_builtins.__dict__)
        for name in ("exit", "quit", "copyright", "credits", "license", "breakpoint"):
            table.pop(name, None)
        table["__import__"] = _Importer(self)
        table["open"] = self.open_file
        table["print"] = self._print
        table["input"] = self._input
        table["help"] = self._help
        return table

    def _print(self, *args, sep=" ", end="\n", file=None, flush=False):
        if file is not None and file is not self.stdout and not isinstance(file, _ConsoleStream):
            _host_builtins.print(*args, sep=sep, end=end, file=file)
            return
        sep = " " if sep is None else sep
        end = "\n" if end is None else end
        self.console_write(sep.join(str(a) for a in args) + end)

    def _input(self, prompt=""):
        raise unsupported("input() (no REPL on a simulated board)")

    def _help(self, *args):
        self.console_write("Welcome to MicroPython! (simulated Pycom board)\n")

    def device(self, key, factory, *args):
        """The run's peripheral state `key`, created with factory(self, *args) on first use."""
        dev = self.devices.get(key)
        if dev is None:
            dev = self.devices[key] = factory(self, *args)
        return dev

    def emulated_module(self, canonical):
        """The session's instance of an emulated module (created on first import)."""
        module = self._emulated.get(canonical)
        if module is None:
            from . import pycom as emulated

            module = emulated.create(canonical, self)
            self._emulated[canonical] = module
        return module

    def exec_module(self, fullname, host_file, shown_file, package_path):
        module = types.ModuleType(fullname)
        namespace = module.__dict__
        namespace["__builtins__"] = self.builtins
        if package_path is not None:
            module.__path__ = [package_path]
            namespace["__package__"] = fullname
        else:
            namespace["__package__"] = fullname.rpartition(".")[0]
        self.modules[fullname] = module
        if host_file is None:
            return module
        namespace["__file__"] = shown_file
        try:
            with open(host_file, "rb") as f:
                source = f.read()
            exec(compile_firmware(source, shown_file), namespace)
        except BaseException:
            if self.modules.get(fullname) is module:
                del self.modules[fullname]
            raise
        return self.modules.get(fullname, module)

    # -- files -----------------------------------------------------------------------------
    def listing(self, host_dir):
        """{name: is_dir} of a flash directory, cached until the firmware changes the flash."""
        cache = self._listings
        entries = cache.get(host_dir)
        if entries is None:
            entries = {}
            try:
                with os.scandir(host_dir) as it:
                    for entry in it:
                        entries[entry.name] = entry.is_dir()
            except OSError:
                pass
            cache[host_dir] = entries
        return entries

    def fs_changed(self):
        self._listings.clear()

    def open_file(self, file, mode="r", buffering=-1, encoding=None, errors=None, newline=None):
        """open() of the firmware: paths on the board's flash ('/flash/x', or relative to cwd)."""
        self.check()
        if not isinstance(file, str):
            raise TypeError("open() expects a path string on a simulated board")
        host = self.board.host_path(file, self.cwd)
        if os.path.isdir(host):
            raise oserror(errno.EISDIR)
        if "r" in mode and "+" not in mode and not os.path.exists(host):
            raise oserror(errno.ENOENT)
        if "b" not in mode and encoding is None:
            encoding = "utf-8"
        try:
            handle = _host_builtins.open(host, mode, buffering, encoding, errors, newline)
        except FileNotFoundError:
            raise oserror(errno.ENOENT) from None
        except IsADirectoryError:
            raise oserror(errno.EISDIR) from None
        if any(c in mode for c in "wax+"):
            self.fs_changed()
            self.files = [f for f in self.files if not f.closed]
            self.files.append(handle)
        return handle

    # -- console ---------------------------------------------------------------------------
    def console_write(self, text):
        self.check()
        self.board._console_write(text)

    # -- liveness --------------------------------------------------------------------------
    def check(self):
        """Raise PowerOff if this run has ended (every emulated hardware call does this)."""
        if not self.alive:
            self.halted()

    def halted(self):
        task = self.scheduler.current_task
        if task is not None and getattr(task, "session", None) is self:
            task.halt_count = getattr(task, "halt_count", 0) + 1
            if task.halt_count > 8 and greenlet.getcurrent() is task.glet:
                # The firmware keeps swallowing the unwinding: park the task for good.
                self.scheduler.hub.switch()
        raise PowerOff(
            "board %s: the CPU is not running (session %d ended)" % (self.board.name, self.number)
        )

    # -- tasks -----------------------------------------------------------------------------
    def spawn(self, func, *args, name):
        task = self.scheduler.spawn(func, *args, name="%s:%s" % (self.board.name, name))
        task.session = self
        self.tasks.append(task)
        task.on_exit.append(self._task_exit)
        return task

    def _task_exit(self, task):
        if task in self.tasks:
            self.tasks.remove(task)

    def current_task(self):
        """The calling firmware task of this session, or None (hub, other boards, host code)."""
        task = self.scheduler.current_task
        if task is not None and getattr(task, "session", None) is self:
            if greenlet.getcurrent() is task.glet:
                return task
        return None

    def call_later(self, delay_vt, func, *args):
        """A hub event owned by this run: cancelled when the run ends, skipped if it has."""
        holder = []
        event = self.scheduler.call_later(delay_vt, self._run_event, holder, func, args)
        holder.append(event)
        self.events.add(event)
        return event

    def call_at(self, time_vt, func, *args):
        return self.call_later(time_vt - self.scheduler.now_us(), func, *args)

    def _run_event(self, holder, func, args):
        self.events.discard(holder[0])
        if self.alive:
            func(*args)

    # -- blocking --------------------------------------------------------------------------
    def block(self, timeout_vt=None, signal=None):
        """Suspend the calling firmware task until signal fires (its value) or timeout (None).

        The main task runs pending micropython.schedule() callbacks when it blocks and while
        blocked, so they run at its blocking-call boundaries.
        """
        scheduler = self.scheduler
        task = scheduler.current_task
        if task is None or greenlet.getcurrent() is not task.glet:
            raise SimulationError("blocking call outside a board task")
        self.check()
        is_main = task is self.main_task
        if is_main and self.sched_queue:
            self.run_scheduled()
        deadline = None if timeout_vt is None else scheduler.now_us() + max(0, int(timeout_vt))
        waiters = signal._waiters if signal is not None else None
        if waiters is not None:
            waiters.append(task)
        if is_main:
            self.main_blocked = True
        try:
            while True:
                remaining = None if deadline is None else max(0, deadline - scheduler.now_us())
                value = scheduler.suspend(remaining, _TIMEOUT)
                if not self.alive:
                    self.halted()
                if value is _SCHEDULE:
                    if waiters is not None and task in waiters:
                        waiters.remove(task)
                    self.main_blocked = False
                    self.run_scheduled()
                    self.main_blocked = True
                    if deadline is not None and scheduler.now_us() >= deadline:
                        return None
                    if waiters is not None:
                        waiters.append(task)
                    continue
                return None if value is _TIMEOUT else value
        finally:
            if is_main:
                self.main_blocked = False
            if waiters is not None and task in waiters:
                waiters.remove(task)

    def sleep_local(self, local_us):
        """Block the calling task for local_us of this board's clock."""
        self.block(self.board.local_to_virtual(local_us))

    def poll_yield(self):
        """Charge a polling call a little CPU time so busy-wait loops let virtual time advance."""
        if self.current_task() is not None:
            self.block(POLL_COST_US)
        else:
            self.check()

    def notify_io(self):
        """Readiness of a stream/socket may have changed: wake uselect pollers."""
        self.io_signal.fire(True)

    # -- micropython.schedule ----------------------------------------------------------------
    def schedule(self, func, arg):
        self.check()
        if len(self.sched_queue) >= SCHEDULE_DEPTH:
            raise RuntimeError("schedule stack full")
        self.sched_queue.append((func, arg))
        main = self.main_task
        if self.main_blocked and main is not None and not main.done:
            pending = main._wake_event
            if pending is None or pending.time_us > self.scheduler.now_us():
                self.scheduler.wake(main, _SCHEDULE)
        return None

    def run_scheduled(self):
        while self.sched_queue:
            func, arg = self.sched_queue.pop(0)
            func(arg)

    # -- callbacks (the "IRQs" thread) ----------------------------------------------------------
    def post_irq(self, handler, arg):
        """Queue handler(arg) for the IRQs task; False when dropped (queue full, task dead)."""
        if not self.alive or self.irq_dead or len(self.irq_queue) >= IRQ_QUEUE_LEN:
            self.irq_dropped += 1
            self.board.stats["irq_dropped"] += 1
            return False
        self.irq_queue.append((handler, arg))
        if self.irq_task is None:
            self.irq_task = self.spawn(self._irq_loop, name="IRQs")
        elif self.irq_waiting:
            self.irq_waiting = False
            self.scheduler.wake(self.irq_task)
        return True

    def _irq_loop(self):
        queue = self.irq_queue
        while True:
            if not queue:
                self.irq_waiting = True
                self.scheduler.suspend()
                self.check()
                continue
            handler, arg = queue.popleft()
            try:
                handler(arg)
            except SystemExit:
                pass
            except (BoardHalt, greenlet.GreenletExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - this is what kills the IRQs task on Pycom
                text = format_exception(exc)
                self.console_write("Unhandled exception in callback handler\n" + text)
                self.irq_dead = True
                self.board._record_crash("callback", text, exc)
                return

    # -- the main task ---------------------------------------------------------------------
    def run_main(self):
        board = self.board
        self.main_globals = {"__name__": "__main__", "__builtins__": self.builtins}
        try:
            self.run_script("boot.py")
            self.state = "main"
            self.run_script(self.main_file)
            self.state = "repl"
            board._trace("repl")
            while True:
                try:
                    self.block()
                except (BoardHalt, greenlet.GreenletExit):
                    raise
                except BaseException as exc:  # noqa: BLE001 - a scheduled callback failed at the REPL
                    self.console_write(format_exception(exc))
        except BoardHalt:
            return

    def run_script(self, filename):
        """Run /flash/<filename> in the shared __main__ namespace, as pyexec_file() does."""
        board = self.board
        try:
            host = board.host_path(filename, "/flash")
        except OSError:
            return
        if not os.path.isfile(host):
            return
        with open(host, "rb") as f:
            source = f.read()
        try:
            exec(compile_firmware(source, filename), self.main_globals)
        except SystemExit:
            board._trace("soft_reset", file=filename)
            board._console_write("PYB: soft reboot\n")
            board.restart(SOFT_RESET, "soft_reset")
            raise ResetUnwind() from None
        except (BoardHalt, greenlet.GreenletExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - firmware crash: traceback, then carry on
            text = format_exception(exc)
            self.console_write(text)
            board._record_crash(filename, text, exc)
            if filename == "boot.py":
                return
            self.state = "repl"

    # -- teardown --------------------------------------------------------------------------
    def end(self, reason):
        """The CPU stops: timers, sockets, files and tasks of this run go (the caller's task
        unwinds by the exception its caller raises)."""
        if not self.alive:
            return
        self.alive = False
        self.state = "halted"
        board = self.board
        for event in self.events:
            event.cancel()
        self.events.clear()
        for sock in list(self.sockets):
            sock._session_ended()
        self.sockets = []
        for handle in self.files:
            try:
                handle.close()
            except OSError:
                pass
        self.files = []
        for hook in list(self.devices.values()):
            ender = getattr(hook, "session_ended", None)
            if ender is not None:
                ender()
        current = self.scheduler.current_task
        for task in list(self.tasks):
            if task is not current:
                task.kill()
        for callback in list(board.on_power_off):
            callback(board, reason)


# -- UART lines driven by the outside world -------------------------------------------------------
class UartSegment:
    """Bytes sent by the meter side on a UART line, one every char_vt from start_vt."""

    __slots__ = ("start_vt", "data", "char_vt", "baud", "bits", "parity", "stop", "seed")

    def arrival(self, index):
        return self.start_vt + (index + 1) * self.char_vt

    def end_vt(self):
        return self.start_vt + len(self.data) * self.char_vt

    def arrived(self, now_vt):
        if now_vt < self.start_vt + self.char_vt:
            return 0
        return min(len(self.data), (now_vt - self.start_vt) // self.char_vt)


def char_bits(bits, parity, stop):
    return 1 + bits + (1 if parity is not None else 0) + stop


# -- the board -----------------------------------------------------------------------------------
class Board:
    """A simulated LoPy/LoPy4 (hardware and persistent state)."""

    def __init__(
        self,
        world,
        name,
        flash_dir,
        position=(0.0, 0.0),
        mac=None,
        model="LoPy4",
        nvs_strict=True,
        ip=None,
    ):
        self.world = world
        self.scheduler = world.scheduler
        self.name = name
        self.flash_dir = os.path.abspath(flash_dir)
        os.makedirs(self.flash_dir, exist_ok=True)
        self.position = (float(position[0]), float(position[1]))
        self.model = model
        self.rng = random.Random("board:%s:%s" % (world.seed, name))
        self.mac = bytes(mac) if mac is not None else self.rng.randbytes(6)
        if len(self.mac) != 6:
            raise ValueError("mac: expected 6 bytes, got %d" % len(self.mac))
        self.ip = ip
        self.nvs = {}
        self.nvs_strict = nvs_strict
        self.rtc_memory = b""
        self.drift_ppm = 0.0
        self.rtc = DriftClock(self.scheduler.now_us(), 0, 0.0)
        self.config_block = {
            "heartbeat_on_boot": True,
            "wifi_on_boot": True,
            "wdt_on_boot": False,
            "wdt_on_boot_timeout": 0,
        }
        self.pin_levels = {}
        self.analog_mv = {}
        self.uart_lines = {}
        self.uart_written = {}
        self.on_uart_write = []
        self.wifi_link_up = True
        self.session = None
        self.powered = False
        self.alive = False
        self.asleep = False
        self.led = None
        self.heartbeat = True
        self.on_power_off = []
        self.on_light_sleep = []
        self.on_boot = []
        self.console_taps = []  # callables(text) that see every console write, e.g. a pty
        self.console = []
        self.console_limit = 20000
        self._console_partial = ""
        self.crashes = []
        self.stats = collections.Counter()
        self.remaining_sleep_ms = 0
        self._pending_boot = None
        self._sleep = None
        self._session_number = 0

    # -- identities ---------------------------------------------------------------------------
    @property
    def lora_mac(self):
        """LoRa DevEUI as Pycom derives it from the WiFi MAC: mac[0:3] + FFFE + mac[3:6]."""
        return self.mac[:3] + b"\xff\xfe" + self.mac[3:]

    def __repr__(self):
        return "<Board %s %s>" % (self.name, "alive" if self.alive else "off")

    # -- time -----------------------------------------------------------------------------
    def local_us(self):
        """µs since boot on this board's (drifting) CPU clock."""
        s = self.session
        return s.cpu.value(self.scheduler.now_us()) if s is not None else 0

    def ticks_cpu(self):
        """utime.ticks_cpu(): the CPU µs counter since boot, wrapping at 2**32."""
        return self.local_us() & 0xFFFFFFFF

    def rtc_us(self):
        """The board's RTC: µs since 1970-01-01 (0 at power-on until set or NTP-synced)."""
        return self.rtc.value(self.scheduler.now_us())

    def set_rtc_us(self, value):
        self.rtc.set(self.scheduler.now_us(), value)

    def local_to_virtual(self, local_us):
        """Virtual µs that pass while this board's clock counts local_us."""
        return self.rtc.to_virtual(local_us)

    def set_drift(self, ppm):
        """Clock-drift fault: from now on the board's clocks run ppm·10⁻⁶ fast (or slow)."""
        now = self.scheduler.now_us()
        self.drift_ppm = float(ppm)
        self.rtc.set_ppm(now, self.drift_ppm)
        if self.session is not None:
            self.session.cpu.set_ppm(now, self.drift_ppm)
        self._trace("clock_drift", ppm=self.drift_ppm)

    # -- flash ----------------------------------------------------------------------------
    def host_path(self, path, cwd="/flash"):
        """Host path of a board path ('/flash/...', or relative to cwd); OSError if off-flash."""
        if not path.startswith("/"):
            path = posixpath.join(cwd, path)
        path = posixpath.normpath(path)
        if path.startswith("//"):
            path = path[1:]
        if path == "/flash":
            return self.flash_dir
        if not path.startswith("/flash/"):
            raise oserror(errno.ENOENT)
        return os.path.join(self.flash_dir, *path[len("/flash/") :].split("/"))

    def install_files(self, files):
        """Put files on the flash: a directory (copied) or {board path: str | bytes}."""
        if isinstance(files, (str, os.PathLike)):
            shutil.copytree(os.fspath(files), self.flash_dir, dirs_exist_ok=True)
            return
        for path, content in files.items():
            host = self.host_path(path if path.startswith("/") else "/flash/" + path)
            os.makedirs(os.path.dirname(host), exist_ok=True)
            if isinstance(content, str):
                content = content.encode("utf-8")
            with open(host, "wb") as f:
                f.write(content)

    def read_file(self, path):
        """Bytes of a flash file (tests, reports)."""
        with open(self.host_path(path), "rb") as f:
            return f.read()

    # -- trace and console ----------------------------------------------------------------
    def _trace(self, kind, **fields):
        trace = self.world.trace
        if trace.enabled:
            trace.emit(kind, board=self.name, **fields)

    def _console_write(self, text):
        if not text:
            return
        for tap in self.console_taps:
            tap(text)
        text = self._console_partial + text
        lines = text.split("\n")
        self._console_partial = lines.pop()
        now = self.scheduler.now_us()
        echo = self.world.echo_console
        for line in lines:
            line = line.rstrip("\r")
            self.console.append((now, line))
            self._trace("console", line=line)
            if echo:
                _host_builtins.print("[%12.6f] %s: %s" % (now / 1e6, self.name, line))
        if len(self.console) > self.console_limit:
            del self.console[: len(self.console) - self.console_limit]

    def console_text(self):
        """Everything printed so far, as one string (lines joined by newlines)."""
        text = "\n".join(line for _, line in self.console)
        if self._console_partial:
            text = text + ("\n" if text else "") + self._console_partial
        return text

    def _record_crash(self, where, text, exc=None):
        """A firmware crash: (time, where, MicroPython traceback, full host traceback)."""
        host = "".join(traceback.format_exception(exc)) if exc is not None else text
        self.crashes.append((self.scheduler.now_us(), where, text, host))
        self.stats["crashes"] += 1
        self._trace("crash", where=where, traceback=text)

    # -- life cycle -----------------------------------------------------------------------
    def power_on(self, at_us=None):
        """Apply power (now or at virtual time at_us): the board boots with PWRON_RESET."""
        if at_us is not None and at_us > self.scheduler.now_us():
            self.scheduler.call_at(at_us, self.power_on)
            return
        if self.powered:
            return
        self.powered = True
        self._trace("power_on")
        self._schedule_boot(PWRON_RESET, PWRON_WAKE)

    def power_cut(self, duration_us=None):
        """Cut the power now (any instant): RAM, RTC and pending callbacks are lost; NVS and
        flash stay. With duration_us, power comes back after it (PWRON_RESET boot)."""
        if self.powered:
            self.powered = False
            self.stats["power_cuts"] += 1
            self._trace("power_off")
            self._cancel_sleep()
            self._cancel_boot()
            if self.session is not None and self.session.alive:
                self._end_session("power_cut")
            else:
                for callback in list(self.on_power_off):
                    callback(self, "power_cut")
            self.asleep = False
            self.rtc_memory = b""
        if duration_us is not None:
            self.scheduler.call_later(duration_us, self.power_on)

    def _end_session(self, reason):
        session = self.session
        self.alive = False
        session.end(reason)

    def _schedule_boot(self, cause, wake, pins=None):
        self._cancel_boot()
        delay = self.world.boot_time_us
        self._pending_boot = self.scheduler.call_later(delay, self._boot, cause, wake, pins)

    def _cancel_boot(self):
        if self._pending_boot is not None:
            self._pending_boot.cancel()
            self._pending_boot = None

    def restart(self, cause, reason):
        """End the current run and boot again (machine.reset, WDT, soft reset)."""
        self.stats["resets"] += 1
        self._trace("reset", cause=_CAUSE_NAMES[cause])
        if self.session is not None and self.session.alive:
            self._end_session(reason)
        self._schedule_boot(cause, PWRON_WAKE)

    def _boot(self, cause, wake, pins):
        self._pending_boot = None
        if not self.powered:
            return
        now = self.scheduler.now_us()
        if cause not in (DEEPSLEEP_RESET, SOFT_RESET):
            # rtc_init0() runs on every reset but a deep-sleep wake; the bootloader reloads the
            # RTC data segment (machine.RTC().memory()) on those resets too.
            self.rtc.set(now, 0)
            self.rtc_memory = b""
        self.asleep = False
        self._session_number += 1
        session = Session(self, self._session_number, cause, wake, pins)
        self.session = session
        self.alive = True
        self.stats["boots"] += 1
        self.heartbeat = self.config_block["heartbeat_on_boot"]
        self._trace(
            "boot", reset_cause=_CAUSE_NAMES[cause], wake_reason=wake, session=session.number
        )
        for callback in list(self.on_boot):
            callback(self)
        session.main_task = session.spawn(session.run_main, name="main")
        if self.config_block["wdt_on_boot"]:
            from .pycom import machine as machine_mod

            machine_mod.start_wdt(session, self.config_block["wdt_on_boot_timeout"])

    # -- deep sleep ------------------------------------------------------------------------
    def enter_deepsleep(self, session, ms, wake_pins):
        """machine.deepsleep(ms) from firmware: end the run, wake after ms (or on a pin)."""
        session.check()
        now = self.scheduler.now_us()
        self.stats["deepsleeps"] += 1
        self._trace("deepsleep", ms=ms)
        self._end_session("deepsleep")
        self.asleep = True
        sleep = {"pins": wake_pins, "expected_vt": None, "event": None}
        if ms is not None and ms >= 0:
            delay = self.local_to_virtual(int(ms) * 1000)
            sleep["expected_vt"] = now + delay
            sleep["event"] = self.scheduler.call_later(delay, self._wake, RTC_WAKE, None)
        self._sleep = sleep
        if wake_pins is not None:
            self._check_pin_wake()
        raise DeepSleepUnwind()

    def _wake(self, reason, pins):
        sleep = self._sleep
        self._cancel_sleep()
        if not self.powered:
            return
        expected = sleep["expected_vt"] if sleep else None
        now = self.scheduler.now_us()
        self.remaining_sleep_ms = max(0, (expected - now) // 1000) if expected is not None else 0
        self._schedule_boot(DEEPSLEEP_RESET, reason, pins)

    def _cancel_sleep(self):
        if self._sleep is not None:
            if self._sleep["event"] is not None:
                self._sleep["event"].cancel()
            self._sleep = None

    def _check_pin_wake(self):
        sleep = self._sleep
        if sleep is None or sleep["pins"] is None:
            return
        pin_ids, mode = sleep["pins"]
        levels = [self.pin_input_level(p) for p in pin_ids]
        if mode == WAKEUP_ANY_HIGH:
            fired = [p for p, level in zip(pin_ids, levels, strict=True) if level]
        else:
            fired = list(pin_ids) if not any(levels) else []
        if fired:
            sleep["event"] and sleep["event"].cancel()
            sleep["event"] = None
            sleep["pins"] = None
            self.scheduler.call_later(0, self._wake, PIN_WAKE, fired)

    # -- the outside world: pins, analog, UART --------------------------------------------
    def pin_input_level(self, pin_id):
        """Level the board reads on a pin: external drive, else its pull (0 when floating)."""
        level = self.pin_levels.get(pin_id)
        if level is not None:
            return level
        s = self.session
        if s is not None and s.alive:
            pins = s.devices.get("pins")
            if pins is not None:
                return pins.idle_level(pin_id)
        return 0

    def drive_pin(self, pin_id, level):
        """The outside world drives pin_id to level (0/1), or releases it (None)."""
        if pin_id not in PIN_IDS:
            raise ValueError("pin_id: expected P0..P23, got %r" % (pin_id,))
        s = self.session
        pins = s.devices.get("pins") if s is not None and s.alive else None
        before = pins.level(pin_id) if pins is not None else self.pin_input_level(pin_id)
        self.pin_levels[pin_id] = None if level is None else (1 if level else 0)
        if pins is not None:
            pins.external_changed(pin_id, before)
        if s is not None and s.alive:
            light = s.devices.get("light_sleep")
            if light is not None:
                light.check_pins()
        elif self.asleep:
            self._check_pin_wake()

    def pin_level(self, pin_id):
        """The level on a pin now (an output's driven value, or what an input reads)."""
        s = self.session
        pins = s.devices.get("pins") if s is not None and s.alive else None
        return pins.level(pin_id) if pins is not None else self.pin_input_level(pin_id)

    def set_wifi_link(self, up):
        """The board's WiFi link comes up or goes down (outage); its WiFi driver reacts."""
        self.wifi_link_up = bool(up)
        self._trace("wifi_link", up=bool(up))
        s = self.session
        if s is not None and s.alive:
            wlan = s.devices.get("wlan")
            if wlan is not None:
                wlan.link_changed()

    def set_analog(self, pin_id, millivolts):
        """Voltage the outside world applies to an ADC pin."""
        self.analog_mv[pin_id] = float(millivolts)

    def uart_feed(self, uart_id, data, baudrate=None, bits=None, parity=None, stop=None):
        """The meter side sends bytes on a UART line; they arrive one per character time.

        Line settings default to the board UART's (or 9600 8N1). A board UART configured
        differently receives garbage (wrong baud rate) or mangled characters (wrong framing).
        Returns the virtual time at which the last byte has arrived.
        """
        now = self.scheduler.now_us()
        s = self.session
        uart = None
        if s is not None and s.alive:
            uart = s.devices.get("uart%d" % uart_id)
        cfg = uart.config if uart is not None else None
        seg = UartSegment()
        if baudrate is None:
            cfg = cfg or {"baudrate": 9600, "bits": 8, "parity": None, "stop": 1}
            seg.baud, seg.bits, seg.parity, seg.stop = (
                cfg["baudrate"],
                cfg["bits"],
                cfg["parity"],
                cfg["stop"],
            )
        else:
            seg.baud = int(baudrate)
            seg.bits = 8 if bits is None else bits
            seg.parity = parity
            seg.stop = 1 if stop is None else stop
        seg.char_vt = max(1, round(char_bits(seg.bits, seg.parity, seg.stop) * 1e6 / seg.baud))
        line = self.uart_lines.setdefault(uart_id, [])
        start = now
        if line and line[-1].end_vt() > start:
            start = line[-1].end_vt()
        seg.start_vt = start
        seg.data = bytes(data)
        seg.seed = self.rng.getrandbits(32)
        if uart is None:
            del line[: sum(1 for x in line if x.end_vt() <= now)]
        line.append(seg)
        if uart is not None:
            uart.line_fed(seg)
        return seg.end_vt()

    def uart_output(self, uart_id):
        """Bytes the firmware wrote to a UART so far."""
        return bytes(self.uart_written.get(uart_id, b""))

    # -- services for the radio helper and others ----------------------------------------
    def check_alive(self):
        """Raise PowerOff unless the CPU runs and the caller is not a task of an ended run."""
        s = self.session
        if s is None or not s.alive:
            raise PowerOff("board %s: the CPU is not running" % self.name)
        task = self.scheduler.current_task
        owner = getattr(task, "session", None) if task is not None else None
        if owner is not None and owner is not s and owner.board is self:
            owner.halted()

    def post_irq(self, handler, arg):
        """Queue a callback the Pycom way (32 entries, one at a time on the IRQs task)."""
        s = self.session
        if s is None:
            return False
        return s.post_irq(handler, arg)

    def sleep_us(self, local_us):
        """Block the calling firmware task for local_us of the board's clock."""
        self._firmware_session().sleep_local(local_us)

    def wait(self, signal, timeout_local_us=None):
        """Block the calling firmware task on a clock.Signal; its value, or None on timeout."""
        s = self._firmware_session()
        timeout = None if timeout_local_us is None else self.local_to_virtual(timeout_local_us)
        return s.block(timeout, signal)

    def poll_yield(self):
        self._firmware_session().poll_yield()

    def notify_io(self):
        s = self.session
        if s is not None and s.alive:
            s.notify_io()

    def _firmware_session(self):
        task = self.scheduler.current_task
        owner = getattr(task, "session", None) if task is not None else None
        if owner is None or owner.board is not self:
            raise SimulationError("board %s: blocking call outside its firmware tasks" % self.name)
        owner.check()
        return owner

    # -- reports --------------------------------------------------------------------------
    def status(self):
        s = self.session
        return {
            "name": self.name,
            "alive": self.alive,
            "asleep": self.asleep,
            "state": s.state if s is not None else "off",
            "reset_cause": _CAUSE_NAMES[s.reset_cause] if s is not None else None,
            "crashes": len(self.crashes),
            "irq_dead": bool(s is not None and s.irq_dead),
            "stats": dict(self.stats),
        }


def cause_name(cause):
    return _CAUSE_NAMES.get(cause, str(cause))
