"""`openenergy tic decode`: a raw Linky TIC capture as JSON lines, one per group, checksum checked.

Uses lib/linky.py, the parser of the sensor image: what this prints is what the sensor accepts.
"""

import json
import os
import sys

import linky

from openenergy.cli import CliError

_MODES = (linky.AUTO, linky.HISTORIQUE, linky.STANDARD)
_CHUNK = 4096


def register(subparsers):
    parser = subparsers.add_parser(
        "tic",
        help="decode Linky TIC (teleinformation) captures",
        description="Linky TIC tools (Enedis-NOI-CPT_54E, historique and standard modes).",
    )
    sub = parser.add_subparsers(dest="tic_command", metavar="SUBCOMMAND")
    sub.required = True
    decode = sub.add_parser(
        "decode",
        help="print every group of a raw TIC capture as one JSON object per line",
        description="Read the raw bytes a serial adapter recorded from a Linky TIC output (STX/ETX "
        "framing included; a parity bit in bit 7 is ignored) and print one JSON object per group: "
        "label, value, timestamp (standard mode, else null), checksum_ok, frame (0-based index "
        "of the STX...ETX frame). A malformed group has label null and its raw text as value. "
        "Bytes before the first STX are skipped.",
    )
    decode.add_argument(
        "file",
        nargs="?",
        default="-",
        metavar="FILE",
        help="capture file, or - for standard input (default)",
    )
    decode.add_argument(
        "--mode",
        default=linky.AUTO,
        metavar="MODE",
        help="historique, standard or auto (default: auto, by each group's separator)",
    )
    decode.add_argument(
        "--stats",
        action="store_true",
        help="then print the reader's counters as one JSON object on stderr",
    )
    decode.set_defaults(func=run_decode)


def _open(path):
    if path == "-":
        return sys.stdin.buffer, False
    try:
        return open(path, "rb"), True
    except OSError as exc:
        raise CliError(f"FILE: cannot read {path!r}: {exc.strerror or exc}") from None


def run_decode(args):
    if args.mode not in _MODES:
        raise CliError(f"--mode: expected historique, standard or auto, got {args.mode!r}")
    stream, owned = _open(args.file)
    out = sys.stdout
    live = not owned  # flush each line when reading a live adapter on stdin
    reader = None

    def on_group(label, value, timestamp, checksum_ok):
        record = {
            "label": label,
            "value": value,
            "timestamp": timestamp,
            "checksum_ok": checksum_ok,
            "frame": reader.frame_index,
        }
        out.write(json.dumps(record) + "\n")
        if live:
            out.flush()

    reader = linky.TicReader(args.mode, on_group=on_group)
    try:
        while True:
            try:
                chunk = stream.read(_CHUNK)
            except OSError as exc:
                raise CliError(f"FILE: cannot read {args.file!r}: {exc.strerror or exc}") from None
            if not chunk:
                break
            reader.feed(chunk)
        out.flush()
    except BrokenPipeError:  # `| head`: whoever read our output left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        if owned:
            stream.close()
    if args.stats:
        counters = {
            name: getattr(reader, name)
            for name in (
                "frames_ok",
                "frames_bad",
                "frames_interrupted",
                "groups_ok",
                "groups_bad_checksum",
                "groups_malformed",
                "overruns",
                "stray_bytes",
            )
        }
        counters["mode"] = reader.detected
        print(json.dumps(counters), file=sys.stderr)
    return 0
