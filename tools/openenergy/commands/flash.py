"""`openenergy flash`: write an image and its configuration to a LoPy over USB, verified.

The work is done by openenergy.flashing (plan: validate + compile, no board; flash: write,
verify, reset) over openenergy.boardlink (mpremote's serial transport); this module parses
options and shows progress with rich. Keys are never printed.
"""

import argparse
import os

from openenergy import boardlink, flashing
from openenergy.cli import CliError

EPILOG = """\
examples:
  # the sensor image and its configuration, board found by USB id
  openenergy flash sensor --port auto --config credentials/config/boiler-room.toml

  # what would be written, without a board (the configuration is validated, files compiled)
  openenergy flash nanogateway --config gateway.toml --dry-run

  # an image folder (with its manifest.json), board on a given port, keep its configuration
  openenergy flash ./my-image --port /dev/ttyACM0

what it does:
  1. validates the configuration (refused before the board is touched) and compiles the
     image's modules with mpy-cross 1.11 (boot.py and main.py stay .py)
  2. stops the firmware (Ctrl-C, raw REPL, soft reboot) and checks the board: MicroPython
     v1.11 (Pycom 1.20.x), room on /flash, a configuration (given or already on the board)
  3. removes the other form of each module (app.py when writing app.mpy), writes the files
     and /flash/config.json
  4. reads every file back (size + sha256 computed on the board) and compares
  5. resets the board: the new firmware starts

--port auto finds a Pycom expansion board (Pysense, Pytrack, Pyscan, Expansion Board 3,
Pygate) by its USB id; with several plugged in it asks which one (or fails, when not run from a
terminal). Exit status: 0 flashed, 2 nothing or not all was written (one line says why).
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "flash",
        help="write an image (sensor, nanogateway) and its configuration to a board, verified",
        description="Compile an image with mpy-cross 1.11, copy it to a LoPy with mpremote, "
        "write its configuration (/flash/config.json), verify by reading back, reset.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "image", metavar="IMAGE", help="sensor, nanogateway, or a folder with a manifest.json"
    )
    parser.add_argument(
        "--port",
        metavar="PORT",
        help="serial port of the board (/dev/ttyACM0, COM3, a virtual board's /dev/pts/N), or "
        "auto: found by USB id (not needed with --dry-run)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="device configuration (TOML, like examples/sensor.toml), validated then written as "
        "/flash/config.json (default: keep the board's)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be written; touch no board"
    )
    parser.add_argument(
        "--no-compile",
        action="store_true",
        help="copy .py sources instead of .mpy (debugging; the simulator only runs sources)",
    )
    parser.add_argument(
        "--no-reset", action="store_true", help="leave the board at its REPL afterwards"
    )
    parser.set_defaults(func=run)


def run(args):
    if not args.dry_run and args.port is None:
        raise CliError("--port: missing (a serial port, or auto; not needed with --dry-run)")
    plan = flashing.build_plan(args.image, args.config, compile=not args.no_compile)
    port = None if args.dry_run else boardlink.resolve_port(args.port)
    out = _console()
    out.print(_plan_line(plan))
    if args.dry_run:
        for item in plan.files:
            out.print("  would write %s" % _file_line(item))
        if plan.config is None:
            out.print("  would keep the board's %s (refused if it has none)" % flashing.CONFIG_PATH)
        out.print("dry run: no board touched")
        return 0
    progress = RichProgress(out)
    with boardlink.open_board(port) as board:
        try:
            report = flashing.flash(plan, board, progress, reset=not args.no_reset)
        finally:
            progress.close()
    out.print(
        "flashed %s to %s: %d files, %d bytes, verified, in %.1f s%s"
        % (
            plan.image.name,
            board.port,
            len(report.written),
            plan.total_bytes,
            report.seconds,
            "" if report.reset else " (board left at its REPL: --no-reset)",
        )
    )
    return 0


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _plan_line(plan):
    kind = ".mpy from mpy-cross 1.11" if plan.compiled else ".py sources"
    text = "image %s: %d files, %d bytes (%s)" % (
        plan.image.name,
        len(plan.files),
        plan.total_bytes,
        kind,
    )
    if plan.config is not None:
        text += "; config %s: %s image, DevEUI %s" % (
            plan.config_source,
            plan.config["image"],
            _dev_eui(plan.config),
        )
    return text


def _dev_eui(config):
    value = config.get("dev_eui") or config.get("gateway_eui")
    return value.hex().upper() if value else "from the LoRa MAC"


def _file_line(item):
    if item.is_config:
        return "%s (%d bytes, keys not shown)" % (item.board_path, item.size)
    source = os.path.relpath(item.source)
    if source.startswith(".."):
        source = item.source
    return "%s (%d bytes, from %s)" % (item.board_path, item.size, source)


class RichProgress(flashing.Progress):
    """A byte progress bar per file on a terminal; one line per file otherwise."""

    def __init__(self, console):
        self.console = console
        self._bar = None
        self._task = None
        if console.is_terminal:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                console=console,
                transient=True,
            )
            self._bar.start()

    def step(self, text):
        self.console.print(text)

    def file_started(self, item):
        if self._bar is not None:
            self._task = self._bar.add_task("write %s" % item.board_path, total=item.size)

    def file_progress(self, done, total):
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done)

    def file_done(self, item):
        if self._bar is not None and self._task is not None:
            self._bar.remove_task(self._task)
            self._task = None
        self.console.print("wrote %s" % _file_line(item))

    def close(self):
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
