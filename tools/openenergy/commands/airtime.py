"""`openenergy airtime`: LoRa time on air of one frame, in ms with 3 decimals (exact)."""

import airtime as toa
import eu868

from openenergy.cli import CliError

_BW_KHZ = {"125": 125000, "250": 250000, "500": 500000}


def register(subparsers):
    parser = subparsers.add_parser(
        "airtime",
        help="time on air of one LoRa frame",
        description="Print the time on air of one LoRa frame in milliseconds (Semtech SX1276 "
        "formula; low data rate optimisation on when a symbol lasts >= 16 ms).",
    )
    parser.add_argument("--sf", metavar="N", help="spreading factor, 6..12 (required)")
    parser.add_argument("--bw", metavar="KHZ", help="bandwidth in kHz: 125, 250 or 500 (required)")
    parser.add_argument(
        "--size", metavar="BYTES", help="PHY payload length in bytes, 0..255 (required)"
    )
    parser.add_argument("--cr", default="4/5", help="coding rate 4/5..4/8 (default 4/5)")
    parser.add_argument(
        "--preamble", default="8", metavar="SYMBOLS", help="preamble symbols, 6..65535 (default 8)"
    )
    parser.add_argument("--no-crc", action="store_true", help="payload CRC off (LoRaWAN downlinks)")
    parser.add_argument("--implicit-header", action="store_true", help="implicit header mode")
    parser.set_defaults(func=run)


def _int_option(name, text, low, high):
    if text is None:
        raise CliError(f"{name}: required (an integer {low}..{high})")
    try:
        value = int(text, 10)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise CliError(f"{name}: expected an integer {low}..{high}, got {text!r}")
    return value


def run(args):
    sf = _int_option("--sf", args.sf, 6, 12)
    if args.bw is None:
        raise CliError("--bw: required (125, 250 or 500 kHz)")
    bw_hz = _BW_KHZ.get(args.bw.strip())
    if bw_hz is None:
        raise CliError(f"--bw: expected 125, 250 or 500 (kHz), got {args.bw!r}")
    size = _int_option("--size", args.size, 0, 255)
    try:
        cr = eu868.parse_codr(args.cr)
    except ValueError:
        raise CliError(f"--cr: expected 4/5, 4/6, 4/7 or 4/8, got {args.cr!r}") from None
    preamble = _int_option("--preamble", args.preamble, 6, 65535)
    us = toa.time_on_air_us(
        sf,
        bw_hz,
        size,
        cr=cr,
        preamble=preamble,
        crc=not args.no_crc,
        implicit_header=args.implicit_header,
    )
    whole, frac = divmod(us, 1000)
    print(f"{whole}.{frac:03d}")
    return 0
