"""`openenergy payload decode|encode`: the meter payload codec (lib/meterpayload.py) on the command line.

decode HEX [--fport N] prints one JSON object on one line. Without --fport the port is read from
the frame's first byte (its low nibble is the FPort: 1 report, 2 alarm, 3 status, 10 command);
with --fport a frame that does not belong on that port is an error.
encode JSON prints the frame as lowercase hex on one line, so
`openenergy payload encode "$(openenergy payload decode HEX)"` prints HEX again (lowercased).
--with-fport prefixes the port ("10 1a07"); --base64 switches either side to base64, the form
ChirpStack uses in its MQTT events and downlink queue.
"""

import base64
import binascii
import json
import sys

import meterpayload

from openenergy.cli import CliError


def register(subparsers):
    parser = subparsers.add_parser(
        "payload",
        help="decode or encode meter payloads (docs/payload-format.md)",
        description="Decode or encode openenergy meter payloads (docs/payload-format.md).",
    )
    actions = parser.add_subparsers(dest="payload_action", metavar="ACTION")
    actions.required = True

    dec = actions.add_parser("decode", help="frame (hex) -> JSON")
    dec.add_argument("data", metavar="HEX", help="the FRMPayload in hex (spaces allowed)")
    dec.add_argument("--fport", type=int, default=None, help="the LoRaWAN FPort it arrived on")
    dec.add_argument("--base64", action="store_true", help="HEX is base64 instead")
    dec.set_defaults(func=decode_command)

    enc = actions.add_parser("encode", help="JSON (as decode prints it) -> frame (hex)")
    enc.add_argument("json", metavar="JSON", help="the frame as a JSON object, or - for stdin")
    enc.add_argument("--with-fport", action="store_true", help='print "FPORT HEX"')
    enc.add_argument("--base64", action="store_true", help="print base64 instead of hex")
    enc.set_defaults(func=encode_command)


def parse_hex(text):
    compact = "".join(text.split())
    if compact[:2].lower() == "0x":
        compact = compact[2:]
    if not compact:
        raise CliError("HEX: empty")
    if len(compact) % 2:
        raise CliError(f"HEX: odd number of hex digits ({len(compact)})")
    try:
        return bytes.fromhex(compact)
    except ValueError:
        raise CliError("HEX: not hexadecimal") from None


def parse_base64(text):
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise CliError("HEX: not valid base64 (--base64)") from None


def decode_command(args):
    data = parse_base64(args.data) if args.base64 else parse_hex(args.data)
    print(json.dumps(meterpayload.decode(args.fport, data)))
    return 0


def encode_command(args):
    text = sys.stdin.read() if args.json == "-" else args.json
    try:
        frame = json.loads(text)
    except ValueError as exc:
        raise CliError(f"JSON: {exc}") from None
    fport, data = meterpayload.encode(frame)
    out = base64.b64encode(data).decode() if args.base64 else data.hex()
    print(f"{fport} {out}" if args.with_fport else out)
    return 0
