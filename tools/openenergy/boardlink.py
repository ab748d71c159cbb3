"""Talking to a board's MicroPython REPL from the host: one `BoardLink` interface, one class per link.

    with open_board("/dev/ttyACM0") as board:      # or "auto": found by USB id
        board.put("/flash/main.py", data)
        print(board.info().lora_mac.hex())
        board.reset()

`BoardLink` is the seam the host tools use (flashing, provisioning, `board info`), shaped like
mpremote's Transport: `exec` (run code in the raw REPL, return its stdout) and `put`/`get` are
the link's own; `eval`, `ls`, `hashes`, `rm`, `mkdir`, `info`, `lora_mac` are built on `exec`
with snippets that run on Pycom firmware 1.20.x (MicroPython 1.11) and in the simulator alike.

`SerialBoard` is the one link today: a USB serial port (or the virtual board's pty) driven by
mpremote *as a library* (`mpremote.transport_serial.SerialTransport`), not its CLI: one
connection and one soft reset for a whole flash instead of one per command, failures as
exceptions instead of text to parse, and our own snippets in the same session. mpremote does
the protocol: interrupt, raw REPL with its fallback when raw-paste is missing (Pycom's 1.11),
soft reset, chunked file writes and reads.

Every failure is a `BoardError` with one line naming the port or the file; what the board
raised is reduced to its last traceback line (`OSError: [Errno 2] ENOENT`). Nothing here prints,
and file contents (a config holds keys) never appear in a message.
"""

import abc
import ast
import contextlib
import errno
import io
import os
import sys
import time
from dataclasses import dataclass

import serial
from errors import OpenEnergyError
from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport
from serial.tools import list_ports

# Pycom expansion boards in normal (application) mode: USB vendor Microchip, one product id each
# (Pycom docs, "Updating Expansion Board Firmware"). In DFU (update) mode they show other ids and
# no serial port.
PYCOM_VID = 0x04D8
PYCOM_PIDS = {
    0xF012: "Pysense",
    0xF013: "Pytrack",
    0xEF38: "Pyscan",
    0xEF98: "Expansion Board 3",
    0xED14: "Pygate",
}
PYCOM_DFU_PIDS = {
    0xF011: "Pysense",
    0xF014: "Pytrack",
    0xEF37: "Pyscan",
    0xEF99: "Expansion Board 3",
    0xED15: "Pygate",
}
BAUDRATE = 115200
WRITE_CHUNK = 256  # bytes per raw-REPL write command (mpremote's default, safe on a LoPy heap)
EXEC_TIMEOUT_S = 10
ENTER_TIMEOUT_S = 10
PROMPT_WAIT_S = 5


class BoardError(OpenEnergyError):
    """A board that cannot be reached or refused an operation (one line, never file contents)."""


class BoardExecError(BoardError):
    """Code run on the board raised; `board_error` is its last traceback line."""

    def __init__(self, message, board_error):
        super().__init__(message)
        self.board_error = board_error


@dataclass(frozen=True)
class Entry:
    """A directory entry on the board."""

    name: str
    is_dir: bool
    size: int


@dataclass(frozen=True)
class BoardInfo:
    """What `board info` shows: os.uname(), the LoRa MAC, free flash (KiB) and heap (bytes)."""

    sysname: str
    release: str
    version: str
    machine: str
    lorawan: str
    lora_mac: bytes
    free_flash_kib: int
    free_heap: int

    @property
    def micropython(self):
        """'v1.11-06dfad0' from os.uname().version ('v1.11-06dfad0 on 2021-01-12')."""
        return self.version.split(" on ")[0]


# -- snippets run on the board (MicroPython 1.11 and the simulator) ------------------------------
_INFO = """\
import os, gc
def _oe_info():
    u = os.uname()
    try:
        from network import LoRa
        mac = LoRa().mac()
    except Exception:
        mac = None
    try:
        free = os.getfree('/flash')
    except Exception:
        free = None
    gc.collect()
    return (u[0], u[2], u[3], u[4], getattr(u, 'lorawan', None), mac, free, gc.mem_free())
print(repr(_oe_info()))
del _oe_info
"""

_LORA_MAC = """\
from network import LoRa
print(repr(LoRa().mac()))
"""

_HASHES = """\
import os, uhashlib, ubinascii
def _oe_sum(p):
    try:
        size = os.stat(p)[6]
    except OSError:
        return None
    h = uhashlib.sha256()
    with open(p, 'rb') as f:
        while True:
            b = f.read(512)
            if not b:
                break
            h.update(b)
    return (size, ubinascii.hexlify(h.digest()))
print(repr([_oe_sum(p) for p in %r]))
del _oe_sum
"""

_LS = """\
import os
def _oe_ls(d):
    try:
        names = os.listdir(d)
    except OSError:
        return None
    out = []
    for n in names:
        s = os.stat(d + '/' + n)
        out.append((n, s[0] & 0x4000 != 0, s[6]))
    return out
print(repr(_oe_ls(%r)))
del _oe_ls
"""

_MKDIR = """\
import os
def _oe_mkdir(path):
    parts = path.strip('/').split('/')
    for i in range(1, len(parts) + 1):
        d = '/' + '/'.join(parts[:i])
        try:
            os.mkdir(d)
        except OSError:
            pass
    return os.stat(path)[0] & 0x4000 != 0
print(repr(_oe_mkdir(%r)))
del _oe_mkdir
"""

_RM = """\
import os
def _oe_rm(p):
    try:
        os.remove(p)
        return True
    except OSError:
        return False
print(repr(_oe_rm(%r)))
del _oe_rm
"""

_RESET = "import utime, machine\nutime.sleep_ms(50)\nmachine.reset()\n"


def last_line(traceback_text):
    """The last non-empty line of a board traceback: 'OSError: [Errno 2] ENOENT'."""
    lines = [line.strip() for line in traceback_text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "error"


class BoardLink(abc.ABC):
    """A connection to a board's MicroPython REPL (raw REPL entered, main.py stopped)."""

    port = None

    # -- the link's own operations ------------------------------------------------------------
    @abc.abstractmethod
    def exec(self, code, timeout=EXEC_TIMEOUT_S):
        """Run code in the raw REPL; its stdout as text. BoardExecError if it raises."""

    @abc.abstractmethod
    def put(self, path, data, progress=None):
        """Write bytes to a board file; progress(done, total) as it goes."""

    @abc.abstractmethod
    def get(self, path):
        """The bytes of a board file."""

    @abc.abstractmethod
    def reset(self):
        """Hard-reset the board (machine.reset()): the firmware starts again. Closes the link."""

    @abc.abstractmethod
    def close(self):
        """Leave the raw REPL and close the connection (the board stays at its REPL)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- built on exec ------------------------------------------------------------------------
    def eval(self, code, what="a value"):
        """Run code that prints one repr(); the value (Python literals only)."""
        text = self.exec(code).strip()
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise BoardError(
                "the board on %s sent an unexpected answer for %s" % (self.port, what)
            ) from None

    def info(self):
        """BoardInfo: firmware (os.uname()), LoRa MAC, free flash and heap."""
        values = self.eval(_INFO, "its identity (os.uname)")
        try:
            sysname, release, version, machine, lorawan, mac, free, heap = values
        except (TypeError, ValueError):
            raise BoardError(
                "the board on %s sent an unexpected answer for its identity" % self.port
            ) from None
        mac = bytes(mac) if mac is not None else None
        return BoardInfo(sysname, release, version, machine, lorawan, mac, free, heap)

    def lora_mac(self):
        """The LoRa MAC (8 bytes): the DevEUI Pycom gives the board."""
        mac = self.eval(_LORA_MAC, "its LoRa MAC")
        if not isinstance(mac, bytes) or len(mac) != 8:
            raise BoardError("the board on %s did not give an 8-byte LoRa MAC" % self.port)
        return mac

    def hashes(self, paths):
        """{path: (size, sha256 hex) or None when missing}, computed on the board (uhashlib)."""
        paths = list(paths)
        if not paths:
            return {}
        values = self.eval(_HASHES % (paths,), "file hashes")
        if not isinstance(values, list) or len(values) != len(paths):
            raise BoardError(
                "the board on %s sent an unexpected answer for file hashes" % self.port
            )
        out = {}
        for path, value in zip(paths, values, strict=True):
            if value is None:
                out[path] = None
            else:
                size, digest = value
                out[path] = (size, digest.decode() if isinstance(digest, bytes) else digest)
        return out

    def ls(self, directory):
        """[Entry] of a board directory, or None when it does not exist."""
        values = self.eval(_LS % (directory,), "a directory listing")
        if values is None:
            return None
        return [Entry(name, bool(is_dir), size) for name, is_dir, size in values]

    def mkdir(self, path):
        """Create a board directory and its parents (existing ones are fine)."""
        try:
            ok = self.eval(_MKDIR % (path,), "mkdir")
        except BoardExecError as exc:
            raise BoardError(
                "%s: cannot create the folder (%s)" % (path, exc.board_error)
            ) from None
        if not ok:
            raise BoardError("%s: exists on the board and is not a folder" % path)

    def rm(self, path):
        """Remove a board file; True if it existed."""
        return bool(self.eval(_RM % (path,), "rm"))


class SerialBoard(BoardLink):
    """A board on a serial port (USB, or the virtual board's pty), through mpremote's transport.

    Opening interrupts what runs (Ctrl-C), enters the raw REPL and soft-reboots (main.py does not
    run again in raw REPL mode), as `mpremote` does before its first command.
    """

    def __init__(self, port, chunk_size=WRITE_CHUNK, soft_reset=True, baudrate=BAUDRATE):
        self.port = port
        self.chunk_size = chunk_size
        self._transport = None
        try:
            transport = SerialTransport(port, baudrate=baudrate, timeout=2)
        except TransportError:
            raise BoardError(_open_failure(port)) from None
        except serial.SerialException as exc:
            raise BoardError("--port: cannot open %s (%s)" % (port, _reason(exc))) from None
        self._transport = transport
        try:
            self._enter(soft_reset)
        except BaseException:
            self._close_transport()
            raise

    def _enter(self, soft_reset):
        self._wait_for_prompt()
        captured = io.StringIO()
        try:
            with contextlib.redirect_stdout(captured):  # mpremote prints what it got
                self._transport.enter_raw_repl(
                    soft_reset=soft_reset, timeout_overall=ENTER_TIMEOUT_S
                )
            return
        except TransportError:
            last = captured.getvalue().strip()
        except (serial.SerialException, OSError) as exc:
            raise BoardError(
                "the connection to %s failed (%s)" % (self.port, _reason(exc))
            ) from None
        seen = (" (it sent %s)" % last[-60:]) if last and last != "b''" else " (it sent nothing)"
        raise BoardError(
            "the board on %s does not answer with a MicroPython prompt%s: check the port, "
            "close other programs using it; if the board deep-sleeps, hold the safe-boot button "
            "while pressing reset, then try again" % (self.port, seen)
        )

    def _wait_for_prompt(self):
        """Ctrl-C, Ctrl-B until the friendly prompt shows: a board that is still booting misses
        a single Ctrl-C (its UART starts with the firmware), and mpremote sends only one."""
        port = self._transport.serial
        seen = b""
        deadline = time.monotonic() + PROMPT_WAIT_S
        try:
            while time.monotonic() < deadline:
                port.write(b"\r\x03\x02")
                resend = time.monotonic() + 0.3
                while time.monotonic() < resend:
                    waiting = port.in_waiting
                    if waiting:
                        seen = (seen + port.read(waiting))[-64:]
                        if seen.endswith(b">>> "):
                            return True
                    else:
                        time.sleep(0.01)
        except (serial.SerialException, OSError) as exc:
            raise BoardError(
                "the connection to %s failed (%s)" % (self.port, _reason(exc))
            ) from None
        return False

    # -- BoardLink ----------------------------------------------------------------------------
    def exec(self, code, timeout=EXEC_TIMEOUT_S):
        transport = self._live()
        with self._errors("running code"):
            out, err = transport.exec_raw(code, timeout=timeout)
        if err:
            line = last_line(err.decode("utf-8", "replace"))
            raise BoardExecError("the board on %s raised %s" % (self.port, line), line)
        return out.decode("utf-8", "replace")

    def put(self, path, data, progress=None):
        transport = self._live()
        with self._errors("writing", path):
            transport.fs_writefile(
                path, bytes(data), chunk_size=self.chunk_size, progress_callback=progress
            )

    def get(self, path):
        transport = self._live()
        with self._errors("reading", path):
            return bytes(transport.fs_readfile(path, chunk_size=self.chunk_size))

    def reset(self):
        transport = self._live()
        try:
            with self._errors("resetting"):
                transport.exec_raw_no_follow(_RESET)
        finally:
            self._close_transport()

    @contextlib.contextmanager
    def _errors(self, doing, path=None):
        """mpremote's and pyserial's exceptions as one-line BoardErrors."""
        try:
            yield
        except TransportExecError as exc:  # the board raised
            line = last_line(exc.error_output)
            if path is None:
                raise BoardExecError(
                    "the board on %s raised %s" % (self.port, line), line
                ) from None
            raise BoardError("%s: %s failed on the board (%s)" % (path, doing, line)) from None
        except TransportError as exc:
            raise BoardError(
                "the board on %s stopped answering while %s%s (%s)"
                % (self.port, doing, " " + path if path else "", str(exc).split("\n")[0])
            ) from None
        except serial.SerialException as exc:
            raise BoardError(
                "the connection to %s was lost while %s (%s)" % (self.port, doing, _reason(exc))
            ) from None
        except OSError as exc:  # mpremote's translation of an OSError raised on the board
            reason = errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno else _reason(exc)
            target = path or "the board"
            raise BoardError("%s: %s failed on the board (%s)" % (target, doing, reason)) from None

    def close(self):
        if self._transport is None:
            return
        try:
            self._transport.exit_raw_repl()
        except (serial.SerialException, OSError):
            pass
        self._close_transport()

    def _live(self):
        if self._transport is None:
            raise BoardError("the connection to %s is closed" % self.port)
        return self._transport

    def _close_transport(self):
        transport, self._transport = self._transport, None
        if transport is not None:
            try:
                transport.close()
            except (serial.SerialException, OSError):
                pass


def _reason(exc):
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.split("\n")[0]


def _open_failure(port):
    if os.sep in port and not os.path.exists(port):
        return "--port: %s does not exist (is the board plugged in? try --port auto)" % port
    return (
        "--port: cannot open %s (in use by another program, or no permission: on Linux add "
        "yourself to the dialout group)" % port
    )


# -- finding the board ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """A serial port that looks like a Pycom board."""

    device: str
    board: str
    serial_number: str

    def __str__(self):
        extra = (" #" + self.serial_number) if self.serial_number else ""
        return "%s (%s%s)" % (self.device, self.board, extra)


def pycom_ports(comports=None):
    """(candidates, in_dfu): Pycom expansion boards by USB id; those in DFU (update) mode."""
    ports = list((comports or list_ports.comports)())
    found, dfu = [], []
    for port in sorted(ports, key=lambda p: p.device):
        if port.vid != PYCOM_VID:
            continue
        if port.pid in PYCOM_PIDS:
            found.append(Candidate(port.device, PYCOM_PIDS[port.pid], port.serial_number or ""))
        elif port.pid in PYCOM_DFU_PIDS:
            dfu.append(Candidate(port.device, PYCOM_DFU_PIDS[port.pid], port.serial_number or ""))
    return found, dfu


def resolve_port(port, comports=None, ask=None, interactive=None):
    """The serial port to use: `port` itself, or for 'auto' the one Pycom board plugged in.

    Several boards: ask(candidates) -> chosen device when interactive (a terminal on stdin;
    default ask: a numbered prompt), else BoardError listing them. Never guesses.
    """
    if port is None:
        raise BoardError("--port: missing (a serial port such as /dev/ttyACM0, COM3, or auto)")
    if port != "auto":
        return port
    found, dfu = pycom_ports(comports)
    if len(found) == 1:
        return found[0].device
    if not found:
        if dfu:
            raise BoardError(
                "--port auto: %s is in firmware-update (DFU) mode: unplug it and plug it in "
                "again without holding its button" % dfu[0]
            )
        seen = [p.device for p in (comports or list_ports.comports)()]
        raise BoardError(
            "--port auto: no Pycom expansion board found by USB id (%04X:%s); serial ports "
            "seen: %s; give the port with --port"
            % (PYCOM_VID, "/".join("%04X" % p for p in PYCOM_PIDS), ", ".join(seen) or "none")
        )
    if interactive is None:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    if not interactive:
        raise BoardError(
            "--port auto: %d Pycom boards found (%s): choose one with --port"
            % (len(found), ", ".join(str(c) for c in found))
        )
    chosen = (ask or _ask)(found)
    if chosen not in [c.device for c in found]:
        raise BoardError("--port auto: no board chosen")
    return chosen


def _ask(candidates):
    print("Several Pycom boards are plugged in:", file=sys.stderr)
    for number, candidate in enumerate(candidates, 1):
        print("  %d. %s" % (number, candidate), file=sys.stderr)
    try:
        answer = input("Which one (1-%d)? " % len(candidates)).strip()
    except EOFError:
        return None
    if answer.isdigit() and 1 <= int(answer) <= len(candidates):
        return candidates[int(answer) - 1].device
    return None


def open_board(port, **options):
    """A SerialBoard on `port` ('auto': found by USB id), raw REPL entered."""
    return SerialBoard(resolve_port(port), **options)
