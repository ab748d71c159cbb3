"""A simulated LoPy on a pseudo-terminal, speaking the REPL of Pycom firmware 1.20.x (MicroPython 1.11).

    $ openenergy sim board --pty --flash-dir lopy-flash
    /dev/pts/7
    $ mpremote connect /dev/pts/7 fs ls
    $ openenergy flash sensor --port /dev/pts/7 --config site.toml --no-compile

The pty path is printed once the board has booted. A fresh flash holds Pycom's default boot.py
and main.py (the REPL is free); `--image` installs an image's sources first (the sensor image
without a /flash/config.json deep-sleeps an hour after a 1 s window, as on a real board).

The board behind the pty is the simulator's (openenergy.sim.board): its flash directory, NVS,
LoRa MAC and emulated Pycom modules, running in a `World` in real-time mode. Its console (every
`print` of boot.py, main.py, threads, callbacks) goes to the pty with `\\n` sent as `\\r\\n`, as
the firmware's cooked UART output does. What arrives on the pty is read the way the firmware
reads its UART:

- while code runs (boot.py, main.py, a REPL command), bytes wait in the input buffer, except
  Ctrl-C, which raises KeyboardInterrupt in the main task at its next blocking call; bytes sent
  while the board reboots are held and delivered when it runs (so `mpremote` right after a
  reset works; mpremote never times out on a pty), bytes sent during deep sleep are lost;
- the friendly REPL (banner, `>>> `, `... ` with auto-indent, Ctrl-E paste mode) echoes what is
  typed and runs each complete statement, printing expression values;
- Ctrl-A enters the raw REPL (`raw REPL; CTRL-B to exit\\r\\n>`); there Ctrl-D runs the buffered
  code (`OK`, stdout, `\\x04`, traceback, `\\x04`, `>`), Ctrl-D on an empty buffer soft-reboots
  (`OK\\r\\nPYB: soft reboot\\r\\n`; boot.py runs, main.py does not, back to the raw REPL), Ctrl-B
  returns to the friendly REPL, Ctrl-C clears the buffer;
- there is no raw-paste mode, as in MicroPython 1.11: `\\x05A\\x01` lands in the buffer and the
  Ctrl-A resets it, so the board answers with the raw REPL banner and mpremote falls back;
- Ctrl-D at an empty friendly prompt soft-reboots (boot.py and main.py run again);
  `machine.reset()` reboots from the ROM (`rst:0xc (SW_CPU_RESET)`) into the friendly REPL.

REPL commands run in the main task of the board's current run (scheduled the way
`micropython.schedule` callbacks are), in the `__main__` namespace boot.py and main.py used, with
the board's builtins: `import os, uhashlib, ubinascii, gc, machine`, `network.LoRa().mac()`,
files under /flash all work as the firmware sees them. The simulator's limits apply: `.mpy` files
cannot be imported, a command that computes without ever blocking cannot be interrupted, and
`mpremote mount` (which needs `sys.stdin.buffer` on the board) is not supported.

Tests use `PtyBoard` directly (`start()` runs it in a thread; `corrupt()` is the hook that damages
a file after it is written, to prove that flashing verifies what it wrote).
"""

import ast
import codeop
import fcntl
import os
import select
import signal
import sys
import termios
import threading
import time
import tty

import greenlet

from .board import BoardHalt, compile_firmware, format_exception
from .world import World

FRIENDLY = "friendly"
RAW = "raw"
PASTE = "paste"

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
SOFT_REBOOT = b"PYB: soft reboot\r\n"  # Pycom esp32/mptask.c (mainline MicroPython says MPY:)
PASTE_BANNER = b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== "
# A main script off the flash: Session.run_script() skips it (raw REPL soft reboots skip main.py).
NO_MAIN = "/nowhere/main.py"
# What a fresh Pycom file system holds (esp32/mptask.c creates them when missing).
FRESH_FILES = {
    "/flash/boot.py": "# boot.py -- run on boot-up\n",
    "/flash/main.py": "# main.py -- put your code here!\n",
}
FRESH_DIRS = ("lib", "sys", "cert")
# First lines of the ESP32 ROM bootloader after each kind of reset (board.py reset causes).
_ROM_RESET = {
    0: b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)",
    1: b"rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)",
    2: b"rst:0x7 (TG0WDT_SYS_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)",
    3: b"rst:0x5 (DEEPSLEEP_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)",
    5: b"rst:0xf (RTCWDT_BROWN_OUT_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)",
}
SOFT_RESET_CAUSE = 4
_STDIN = "<stdin>"
_ECHO_NAME = "__repl_echo__"
READY_AFTER_US = 5_000_000  # announce the pty by then even if boot.py is still running
TICK_US = 20_000  # the REPL looks at the pty and the board at least this often (virtual µs)
BOOT_HOLD_BYTES = 256  # input kept while the board reboots (the USB-serial bridge's buffer)
UNREAD_DROP_S = 0.25  # output nobody reads for this long is dropped, as a UART without a host does

compile_firmware("", _STDIN)  # REPL frames then show in MicroPython-style tracebacks


class _EchoExpressions(ast.NodeTransformer):
    """The friendly REPL's single-input mode: values of expression statements are printed."""

    def visit_Expr(self, node):
        call = ast.Call(
            func=ast.Name(id=_ECHO_NAME, ctx=ast.Load()), args=[node.value], keywords=[]
        )
        return ast.copy_location(ast.Expr(value=call), node)

    def _skip(self, node):
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _skip


def _syntax_error_text(exc):
    line = exc.lineno or 1
    return 'Traceback (most recent call last):\n  File "%s", line %d\nSyntaxError: %s\n' % (
        _STDIN,
        line,
        exc.msg or "invalid syntax",
    )


def _cooked(text):
    """Console text as the firmware's UART sends it: UTF-8, each \\n as \\r\\n."""
    return text.replace("\n", "\r\n").encode("utf-8", "replace")


class PtyBoard:
    """One simulated board whose console is a pseudo-terminal.

    image: 'sensor', 'nanogateway' or an image folder, installed (as .py sources) on the flash
    at start; flash_dir: the board's flash (kept after stop; default: a temporary folder removed
    at stop). `path` is the pty to connect to; `board` the simulated Board while running.
    """

    def __init__(
        self,
        image=None,
        flash_dir=None,
        seed=0,
        name="lopy",
        model="LoPy4",
        boot_time_us=150_000,
        echo=None,
    ):
        self.image = image
        self.flash_dir = os.path.abspath(flash_dir) if flash_dir is not None else None
        self.seed = seed
        self.name = name
        self.model = model
        self.boot_time_us = boot_time_us
        self.echo = echo  # echo(bytes) gets a copy of everything sent to the pty (debugging)
        self.path = None
        self.world = None
        self.board = None
        self.stats = {"raw_entries": 0, "execs": 0, "soft_resets": 0, "boots": 0, "interrupts": 0}
        self.error = None
        self._master = self._slave = None
        self._wake_r = self._wake_w = None
        self._thread = None
        self._ready = threading.Event()
        self._on_ready = None
        self._announced = False
        self._stopping = False
        self._corrupt = {}
        self._lock = threading.Lock()
        # REPL state (touched only by the simulation thread)
        self.mode = FRIENDLY
        self.busy = "boot"  # "boot": firmware boots/runs main.py; "exec": a REPL command runs
        self._phase = 0
        self._rx = bytearray()
        self._held = b""
        self._line = bytearray()
        self._lines = []
        self._paste = bytearray()
        self._escape = 0
        self._last_cr = False
        self._out = bytearray()
        self._unread = (None, 0.0)

    # -- life cycle ---------------------------------------------------------------------------
    @property
    def lora_mac(self):
        """The LoRa MAC (DevEUI) `network.LoRa().mac()` returns on this board."""
        return self.board.lora_mac if self.board is not None else None

    def start(self, timeout=10.0):
        """Run the board in a background thread; returns the pty path once it has booted."""
        self._thread = threading.Thread(target=self._thread_main, name="pty-board", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("virtual board did not start within %g s" % timeout)
        if self.error is not None:
            raise self.error
        return self.path

    def stop(self, timeout=10.0):
        """Stop the board (from any thread) and wait for its thread."""
        self._stopping = True
        with self._lock:
            if self._wake_w is not None:
                try:
                    os.write(self._wake_w, b"x")
                except OSError:
                    pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("virtual board did not stop within %g s" % timeout)

    def wait_running(self, timeout=10.0):
        """Wait until the board runs main.py or sits at its REPL (after boot); True if so."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            board = self.board
            session = board.session if board is not None else None
            if session is not None and session.alive and session.state in ("main", "repl"):
                return True
            time.sleep(0.02)
        return False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _thread_main(self):
        try:
            self.run()
        except BaseException as exc:  # noqa: BLE001 - reported to start() / the caller
            self.error = exc
            self._ready.set()

    def run(self, on_ready=None):
        """Run the board in this thread until stop(); on_ready(self) once it has booted (the
        moment to tell a client the pty path)."""
        self._open_pty()
        try:
            self.world = World(
                seed=self.seed,
                realtime=True,
                boot_time_us=self.boot_time_us,
                echo_console=False,
            )
            try:
                self._setup_board()
                self._on_ready = on_ready
                scheduler = self.world.scheduler
                scheduler.idle_hook = self._idle
                scheduler.call_later(TICK_US, self._tick)
                self.world.run(until_us=1 << 62)
                if self.board.powered:
                    self.board.power_cut()  # unwinds the board's tasks in this thread
            finally:
                self.world.close()
        finally:
            self._close_pty()

    def _open_pty(self):
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing, no \n -> \r\n by the line discipline
        flags = fcntl.fcntl(self._master, fcntl.F_GETFL)
        fcntl.fcntl(self._master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self._wake_r, self._wake_w = os.pipe()
        self.path = os.ttyname(self._slave)

    def _close_pty(self):
        with self._lock:
            for fd in (self._master, self._slave, self._wake_r, self._wake_w):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._master = self._slave = self._wake_r = self._wake_w = None

    def _setup_board(self):
        files = {}
        if self.image is not None:
            from openenergy import images

            for board_path, host in images.resolve(self.image).board_files().items():
                with open(host, "rb") as f:
                    files[board_path] = f.read()
        board = self.world.add_board(self.name, None, model=self.model, flash_dir=self.flash_dir)
        self.board = board
        for name in FRESH_DIRS:
            os.makedirs(os.path.join(board.flash_dir, name), exist_ok=True)
        for board_path, text in FRESH_FILES.items():
            if board_path not in files and not os.path.exists(board.host_path(board_path)):
                files[board_path] = text
        board.install_files(files)
        board.console_taps.append(lambda text: self._send(_cooked(text)))
        board.on_boot.append(self._on_boot)
        board.on_power_off.append(self._on_power_off)

    # -- the test hook --------------------------------------------------------------------------
    def corrupt(self, board_path):
        """Flip one byte of board_path each time a REPL command has finished writing it."""
        with self._lock:
            self._corrupt[board_path] = None

    def _apply_corruption(self):
        session = self.board.session
        for board_path, done in list(self._corrupt.items()):
            host = self.board.host_path(board_path)
            try:
                st = os.stat(host)
            except OSError:
                continue
            if done == (st.st_size, st.st_mtime_ns) or st.st_size == 0:
                continue
            if session is not None and any(
                not f.closed and os.path.abspath(f.name) == host for f in session.files
            ):
                continue  # still being written
            with open(host, "r+b") as f:
                first = f.read(1)
                f.seek(0)
                f.write(bytes([first[0] ^ 0x20]))
            st = os.stat(host)
            self._corrupt[board_path] = (st.st_size, st.st_mtime_ns)

    # -- pty I/O ------------------------------------------------------------------------------
    def _send(self, data):
        if not data or self._master is None:
            return
        if self.echo is not None:
            self.echo(bytes(data))
        self._out += data
        self._flush_out()

    def _flush_out(self):
        while self._out:
            try:
                n = os.write(self._master, self._out)
            except BlockingIOError:
                return
            except OSError:
                self._out.clear()
                return
            del self._out[:n]

    def _check_unread(self):
        """Nobody reads the pty (its input queue is full and stays so): drop what waits, as a
        UART with no host loses it, so the firmware never blocks on its console."""
        if not self._out:
            self._unread = (None, 0.0)
            return
        try:
            queued = int.from_bytes(
                fcntl.ioctl(self._slave, termios.FIONREAD, b"\0\0\0\0"), sys.byteorder
            )
        except OSError:
            return
        now = time.monotonic()
        if queued != self._unread[0]:
            self._unread = (queued, now)
        elif now - self._unread[1] > UNREAD_DROP_S:
            self._out.clear()
            termios.tcflush(self._slave, termios.TCIFLUSH)
            self._unread = (None, 0.0)

    def _read_input(self, timeout):
        fds = [self._master, self._wake_r]
        wfds = [self._master] if self._out else []
        try:
            readable, writable, _ = select.select(fds, wfds, [], max(0.0, timeout))
        except InterruptedError:
            return
        if self._wake_r in readable:
            os.read(self._wake_r, 64)
        if writable:
            self._flush_out()
        if self._master in readable:
            try:
                data = os.read(self._master, 4096)
            except (BlockingIOError, OSError):
                return
            self._feed(data)

    def _feed(self, data):
        board = self.board
        session = board.session
        if session is None or not session.alive:
            if board.powered and not board.asleep:
                # Rebooting: kept for the next run (a client connecting right after a reset
                # would otherwise lose its Ctrl-C and, on a pty, mpremote waits forever).
                self._held = (self._held + data)[-BOOT_HOLD_BYTES:]
            return  # off or in deep sleep: nobody listens on the UART
        for byte in data:
            if byte == 0x03 and self._code_running():
                self._interrupt()
            else:
                self._rx.append(byte)

    def _code_running(self):
        session = self.board.session
        if session is None or not session.alive:
            return False
        return self.busy == "exec" or (self.busy == "boot" and session.state in ("boot", "main"))

    def _interrupt(self):
        """Ctrl-C while code runs: KeyboardInterrupt at the main task's next blocking call."""
        session = self.board.session
        self.stats["interrupts"] += 1
        try:
            session.schedule(self._raise_interrupt, self._phase)
        except RuntimeError:
            pass  # the schedule queue is full: the interrupt is lost, as on the board

    def _raise_interrupt(self, phase):
        if phase == self._phase and self.busy is not None:
            raise KeyboardInterrupt()

    # -- the scheduler's side -----------------------------------------------------------------
    def _idle(self, seconds):
        """Scheduler idle hook (real-time mode): wait for the pty up to `seconds`."""
        if self._stopping:
            self.world.scheduler.call_at(self.world.scheduler.now_us(), self.world.scheduler.stop)
            return
        self._read_input(min(seconds, 0.05))
        self._pump()

    def _tick(self):
        scheduler = self.world.scheduler
        if self._stopping:
            scheduler.stop()
            return
        self._read_input(0)
        self._check_unread()
        self._pump()
        scheduler.call_later(TICK_US, self._tick)

    def _later(self, func):
        scheduler = self.world.scheduler
        scheduler.call_at(scheduler.wall_now_us(), func)

    def _announce(self):
        """Ready once the first boot is through (main.py runs, or the REPL waits), or after
        READY_AFTER_US if boot.py takes long: a client connecting earlier loses its Ctrl-C."""
        session = self.board.session
        booted = session is not None and session.alive and session.state in ("main", "repl")
        if booted or self.world.scheduler.now_us() >= READY_AFTER_US:
            self._announced = True
            if self._on_ready is not None:
                self._on_ready(self)
            self._ready.set()

    def _pump(self):
        """Follow the board (booted into its REPL?) and process input when the REPL waits."""
        if not self._announced:
            self._announce()
        if self._corrupt:
            with self._lock:
                self._apply_corruption()
        if self.busy == "boot":
            session = self.board.session
            if session is not None and session.alive and session.state == "repl":
                self._phase += 1
                self.busy = None
                self._enter_repl()
        while self.busy is None and self._rx:
            byte = self._rx.pop(0)
            if self.mode == RAW:
                self._raw_char(byte)
            elif self.mode == PASTE:
                self._paste_char(byte)
            else:
                self._friendly_char(byte)

    def _on_boot(self, board):
        session = board.session
        self.stats["boots"] += 1
        if session.reset_cause != SOFT_RESET_CAUSE:
            self.mode = FRIENDLY
            rom = _ROM_RESET.get(session.reset_cause)
            if rom is not None:
                self._send(b"ets Jun  8 2016 00:22:57\r\n\r\n" + rom + b"\r\n")
        if self.mode == RAW:
            session.main_file = NO_MAIN
        self._phase += 1
        self.busy = "boot"
        held, self._held = self._held, b""
        self._feed(held)

    def _on_power_off(self, board, reason):
        self._phase += 1
        self.busy = "boot"
        self._rx.clear()
        self._line.clear()
        self._lines = []

    def _soft_reset(self):
        self.stats["soft_resets"] += 1
        self._send(SOFT_REBOOT)
        self._phase += 1
        self.busy = "boot"
        self.board.restart(SOFT_RESET_CAUSE, "soft_reset")

    # -- the REPLs ----------------------------------------------------------------------------
    def _banner(self):
        uname = self.board.session.emulated_module("uos").uname()
        version, _, built = uname.version.partition(" on ")
        return (
            "Pycom MicroPython %s [%s] on %s; %s with ESP32\r\n"
            "Pybytes Version: %s\r\n"
            'Type "help()" for more information.\r\n'
            % (uname.release, version, built, uname.sysname, uname.pybytes)
        ).encode()

    def _enter_repl(self):
        if self.mode == RAW:
            self._send(RAW_BANNER + b">")
        else:
            self.mode = FRIENDLY
            self._send(self._banner() + b">>> ")

    def _raw_char(self, byte):
        if byte == 0x01:
            self.stats["raw_entries"] += 1
            self._line.clear()
            self._send(RAW_BANNER + b">")
        elif byte == 0x02:
            self._line.clear()
            self.mode = FRIENDLY
            self._send(b"\r\n" + self._banner() + b">>> ")
        elif byte == 0x03:
            self._line.clear()
        elif byte == 0x04:
            self._send(b"OK")
            if not self._line:
                self._send(b"\r\n")
                self._soft_reset()
            else:
                source = bytes(self._line)
                self._line.clear()
                self._start_exec(source, "raw")
        else:
            self._line.append(byte)

    def _paste_char(self, byte):
        if byte == 0x03:
            self._paste.clear()
            self.mode = FRIENDLY
            self._send(b"\r\n>>> ")
        elif byte == 0x04:
            source = bytes(self._paste)
            self._paste.clear()
            self.mode = FRIENDLY
            self._send(b"\r\n")
            self._start_exec(source, "file")
        elif byte == 0x0D or (byte == 0x0A and not self._last_cr):
            self._paste += b"\n"
            self._send(b"\r\n=== ")
        elif byte != 0x0A:
            self._paste.append(byte)
            self._send(bytes([byte]))
        self._last_cr = byte == 0x0D

    def _friendly_char(self, byte):
        last_cr, self._last_cr = self._last_cr, byte == 0x0D
        if self._escape:
            # VT100 sequences (arrow keys...): ESC [ params final, ESC O x; ignored.
            if self._escape == 1:
                self._escape = 2 if byte in (0x5B, 0x4F) else 0
            elif 0x40 <= byte <= 0x7E:
                self._escape = 0
            return
        empty = not self._line and not self._lines
        if byte == 0x1B:
            self._escape = 1
        elif byte == 0x01 and empty:
            self.stats["raw_entries"] += 1
            self.mode = RAW
            self._send(b"\r\n" + RAW_BANNER + b">")
        elif byte == 0x02 and empty:
            self._send(b"\r\n" + self._banner() + b">>> ")
        elif byte == 0x04 and empty:
            self._send(b"\r\n")
            self._soft_reset()
        elif byte == 0x05 and empty:
            self.mode = PASTE
            self._paste.clear()
            self._send(PASTE_BANNER)
        elif byte == 0x03:
            self._line.clear()
            self._lines = []
            self._send(b"\r\n>>> ")
        elif byte in (0x08, 0x7F):
            if self._line:
                del self._line[-1]
                while self._line and (self._line[-1] & 0xC0) == 0x80:
                    del self._line[-1]  # the rest of a UTF-8 character
                self._send(b"\b \b")
        elif byte == 0x0D or (byte == 0x0A and not last_cr):
            self._send(b"\r\n")
            self._enter_line()
        elif byte >= 0x20 or byte == 0x09:
            self._line.append(byte)
            self._send(bytes([byte]))

    def _enter_line(self):
        text = self._line.decode("utf-8", "replace")
        self._line.clear()
        if self._lines:
            if text.strip():
                self._lines.append(text)
                self._continue_prompt()
                return
            source = "\n".join(self._lines) + "\n"
            self._lines = []
            self._start_exec(source.encode(), "single")
            return
        if not text.strip():
            self._send(b">>> ")
            return
        try:
            incomplete = codeop.compile_command(text, _STDIN, "single") is None
        except (SyntaxError, ValueError, OverflowError):
            incomplete = False
        if incomplete:
            self._lines = [text]
            self._continue_prompt()
        else:
            self._start_exec(text.encode(), "single")

    def _continue_prompt(self):
        last = self._lines[-1]
        indent = len(last) - len(last.lstrip(" "))
        if last.rstrip().endswith(":"):
            indent += 4
        self._line += b" " * indent
        self._send(b"... " + b" " * indent)

    # -- running a command on the board -------------------------------------------------------
    def _start_exec(self, source, kind):
        session = self.board.session
        self._phase += 1
        self.busy = "exec"
        self.stats["execs"] += 1
        try:
            session.schedule(self._exec_in_board, (self._phase, source, kind))
        except RuntimeError as exc:
            self._exec_done(self._phase, kind, "RuntimeError: %s\n" % exc, False)

    def _exec_in_board(self, job):
        """Runs in the board's main task (a scheduled callback at its REPL)."""
        phase, source, kind = job
        session = self.board.session
        error, forced_exit = "", False
        try:
            code = self._compile(source, kind)
            namespace = session.main_globals
            if kind == "single" and _ECHO_NAME not in session.builtins:
                session.builtins[_ECHO_NAME] = self._make_echo(session)
            exec(code, namespace)
        except SystemExit:
            forced_exit = True
        except (BoardHalt, greenlet.GreenletExit):
            raise
        except SyntaxError as exc:
            error = _syntax_error_text(exc)
        except BaseException as exc:  # noqa: BLE001 - shown as the board shows it
            error = format_exception(exc)
        self._exec_done(phase, kind, error, forced_exit)

    @staticmethod
    def _compile(source, kind):
        text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
        if kind == "single":
            tree = ast.fix_missing_locations(_EchoExpressions().visit(ast.parse(text, _STDIN)))
            return compile(tree, _STDIN, "exec", dont_inherit=True)
        return compile(text, _STDIN, "exec", dont_inherit=True)

    @staticmethod
    def _make_echo(session):
        def echo(value):
            if value is not None:
                session.console_write(repr(value) + "\n")

        return echo

    def _exec_done(self, phase, kind, error, forced_exit):
        if phase != self._phase:
            return  # the run ended meanwhile (reset, power cut)
        if kind == "raw":
            self._send(b"\x04" + _cooked(error) + b"\x04")
        elif error:
            self._send(_cooked(error))
        self._phase += 1
        self.busy = None
        if forced_exit:
            self.busy = "exec"
            self._later(self._soft_reset)
            return
        self._send(b">" if kind == "raw" else b">>> ")
        self._later(self._pump)


# -- the command line ----------------------------------------------------------------------------
def add_arguments(parser):
    """Options of `openenergy sim board` (registered by openenergy.commands.sim)."""
    parser.add_argument(
        "--pty",
        action="store_true",
        help="serve the board's console on a pseudo-terminal (printed on stdout) for mpremote, "
        "`openenergy flash` and `openenergy board info`",
    )
    parser.add_argument(
        "--image",
        metavar="IMAGE",
        help="install an image first: sensor, nanogateway or an image folder (.py sources)",
    )
    parser.add_argument(
        "--flash-dir",
        metavar="DIR",
        help="the board's flash as a folder, kept afterwards (default: a temporary folder)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="simulation seed: the board's MACs derive from it"
    )
    parser.add_argument("--name", default="lopy", help="board name (default: lopy)")
    parser.add_argument(
        "--model", choices=("LoPy4", "LoPy"), default="LoPy4", help="board model (default: LoPy4)"
    )


def main(args):
    """Run the virtual board in the foreground until Ctrl-C / SIGTERM; returns an exit status."""
    if not getattr(args, "pty", True):
        from openenergy.cli import CliError

        raise CliError("--pty: the virtual board only has a pseudo-terminal console for now")
    if args.image is not None:
        from openenergy import images

        images.resolve(args.image)  # a bad image is reported before anything starts
    board = PtyBoard(
        image=args.image,
        flash_dir=args.flash_dir,
        seed=args.seed,
        name=getattr(args, "name", "lopy"),
        model=getattr(args, "model", "LoPy4"),
    )

    def ready(pty_board):
        print(pty_board.path, flush=True)
        print(
            "virtual %s %r: LoRa MAC (DevEUI) %s, flash %s\n"
            "connect with: mpremote connect %s repl   (stop: Ctrl-C)"
            % (
                pty_board.model,
                pty_board.name,
                pty_board.lora_mac.hex().upper(),
                pty_board.board.flash_dir,
                pty_board.path,
            ),
            file=sys.stderr,
            flush=True,
        )

    def stop(signum, frame):
        board.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        board.run(on_ready=ready)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    import argparse

    _parser = argparse.ArgumentParser(
        prog="python -m openenergy.sim.pty_board", description="A simulated LoPy on a pty."
    )
    add_arguments(_parser)
    _parser.set_defaults(pty=True)
    sys.exit(main(_parser.parse_args()))
