"""`openenergy board info`: what a LoPy is and holds, read over USB (keys never shown).

Firmware (os.uname()), the LoRa MAC Pycom gives the board (its default DevEUI), free flash and
heap, and a summary of /flash/config.json with every key replaced by ***. Reading stops the
firmware (Ctrl-C, raw REPL); the board is reset afterwards so the firmware runs again
(--no-reset leaves it at its REPL).
"""

import argparse
import json

import devconfig
from errors import ConfigError

from openenergy import boardlink, flashing

EPILOG = """\
examples:
  openenergy board info --port auto
  openenergy board info --port /dev/ttyACM0 --json

output:
  port        /dev/ttyACM0
  firmware    Pycom 1.20.2.r4, MicroPython v1.11-06dfad0 on 2021-01-12, LoPy4 with ESP32
  LoRa MAC    70B3D5FFFE98E5A2 (the board's own DevEUI)
  free flash  3980 KiB
  free heap   2545080 bytes
  config      /flash/config.json: sensor image
    dev_eui = 70B3D57ED0000001
    app_key = ***
    ...
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "board",
        help="look at a board over USB (board info)",
        description="Commands for a board on a serial port.",
    )
    sub = parser.add_subparsers(dest="board_command", metavar="SUBCOMMAND")
    sub.required = True
    info = sub.add_parser(
        "info",
        help="firmware, DevEUI, free flash and heap, configuration summary (keys hidden)",
        description="Read a board's firmware version, LoRa MAC (DevEUI), free flash and heap, and "
        "its /flash/config.json with the keys hidden.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument(
        "--port", required=True, metavar="PORT", help="serial port of the board, or auto"
    )
    info.add_argument("--json", action="store_true", help="one JSON object (for scripts)")
    info.add_argument(
        "--no-reset", action="store_true", help="leave the board at its REPL afterwards"
    )
    info.set_defaults(func=run_info)


def read_config(board):
    """(status, redacted dict or None): status 'ok', 'missing' or 'invalid: <why>'."""
    entries = board.ls("/flash") or []
    if not any(e.name == "config.json" and not e.is_dir for e in entries):
        return "missing", None
    text = board.get(flashing.CONFIG_PATH).decode("utf-8", "replace")
    try:
        config = devconfig.from_json(text)
    except ConfigError as exc:
        return "invalid: %s" % exc, None
    return "ok", config.redacted()


def run_info(args):
    with boardlink.open_board(args.port) as board:
        info = board.info()
        status, config = read_config(board)
        if not args.no_reset:
            board.reset()
    mac = info.lora_mac.hex().upper() if info.lora_mac else None
    if args.json:
        print(
            json.dumps(
                {
                    "port": board.port,
                    "sysname": info.sysname,
                    "release": info.release,
                    "micropython": info.version,
                    "machine": info.machine,
                    "lorawan": info.lorawan,
                    "lora_mac": mac,
                    "free_flash_kib": info.free_flash_kib,
                    "free_heap": info.free_heap,
                    "config_status": status,
                    "config": config,
                    "reset": not args.no_reset,
                },
                sort_keys=True,
            )
        )
        return 0
    rows = [
        ("port", board.port),
        ("firmware", "Pycom %s, MicroPython %s, %s" % (info.release, info.version, info.machine)),
        ("LoRaWAN", info.lorawan or "unknown"),
        ("LoRa MAC", "%s (the board's own DevEUI)" % mac if mac else "unknown"),
        ("free flash", "%s KiB" % info.free_flash_kib if info.free_flash_kib is not None else "?"),
        ("free heap", "%d bytes" % info.free_heap),
    ]
    if config is None:
        rows.append(("config", "%s: %s" % (flashing.CONFIG_PATH, status)))
    else:
        rows.append(("config", "%s: %s image" % (flashing.CONFIG_PATH, config.get("image"))))
    for name, value in rows:
        print("%-11s %s" % (name, value))
    for key, value in (config or {}).items():
        if key == "image" or value is None:
            continue
        shown = value if isinstance(value, str) else json.dumps(value)
        print("  %s = %s" % (key, shown))
    if args.no_reset:
        print("the board is left at its REPL (--no-reset): reset it to run the firmware")
    return 0
