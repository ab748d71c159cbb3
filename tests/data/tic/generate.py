"""Writes the sample TIC captures of this folder with lib/linky.py's encoder (deterministic).

Run from the repository root: .venv/bin/python tests/data/tic/generate.py
Meter identifiers are synthetic; label sets and value formats follow the public captures cited in
tests/lib/test_linky.py. README.md lists what each capture holds.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "lib"))

import linky  # noqa: E402

NOISE = b"\x00\x11\xfe\xff ~\r\n"  # no STX even with bit 7 masked


def with_parity(data):
    """What an 8N1 serial adapter records from a 7E1 line: the even parity bit lands in bit 7."""
    out = bytearray(data)
    for i, b in enumerate(out):
        if bin(b).count("1") & 1:
            out[i] = b | 0x80
    return bytes(out)


def historique_groups(base_wh, papp_va):
    return [
        ("ADCO", "012345678901"), ("OPTARIF", "BASE"), ("ISOUSC", "30"),
        ("BASE", f"{base_wh:09d}"), ("PTEC", "TH.."), ("IINST", "002"), ("IMAX", "090"),
        ("PAPP", f"{papp_va:05d}"), ("HHPHC", "A"), ("MOTDETAT", "000000"),
    ]  # fmt: skip


def standard_groups(second, east_wh, sinsts_va):
    return [
        ("ADSC", "012345678901"), ("VTIC", "02"), ("DATE", "", f"E2406071015{second:02d}"),
        ("NGTF", "H PLEINE/CREUSE "), ("LTARF", " HEURE  PLEINE  "), ("EAST", f"{east_wh:09d}"),
        ("EASF01", f"{east_wh - 23456:09d}"), ("EASF02", "000023456"),
        ("EASF03", "000000000"), ("EASF04", "000000000"), ("EASF05", "000000000"),
        ("EASF06", "000000000"), ("EASF07", "000000000"), ("EASF08", "000000000"),
        ("EASF09", "000000000"), ("EASF10", "000000000"), ("EASD01", f"{east_wh:09d}"),
        ("EASD02", "000000000"), ("EASD03", "000000000"), ("EASD04", "000000000"),
        ("IRMS1", "002"), ("URMS1", "231"), ("PREF", "06"), ("PCOUP", "06"),
        ("SINSTS", f"{sinsts_va:05d}"), ("SMAXSN", "00987", "E240607081234"),
        ("SMAXSN-1", "01234", "E240606193000"), ("CCASN", "00456", "E240607100000"),
        ("CCASN-1", "00400", "E240607093000"), ("UMOY1", "231", "E240607101000"),
        ("STGE", "003A0001"), ("MSG1", "PAS DE          MESSAGE         "),
        ("PRM", "01234567890123"), ("RELAIS", "000"), ("NTARF", "02"), ("NJOURF", "00"),
        ("NJOURF+1", "00"),
        ("PJOURF+1", "00004001 06004002 22004001 NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE "
                     "NONUTILE NONUTILE NONUTILE"),
    ]  # fmt: skip


def historique_capture():
    """Parity bits set; starts mid-frame; 5 frames: 0 good, 1 bad checksum (PAPP), 2 good,
    3 cut by EOT after 3 groups, 4 good; noise between frames."""
    h = linky.HISTORIQUE
    previous = linky.encode_frame(historique_groups(1234566, 440), h)
    bad = linky.encode_frame(historique_groups(1234567, 450), h)
    bad = bad.replace(b"PAPP 00450", b"PAPP 00460")  # the old checksum stays: it no longer fits
    cut = linky.encode_frame(historique_groups(1234568, 470), h)
    cut = cut[: cut.index(b"\nBASE ")] + b"\x04"
    data = (
        previous[25:]
        + linky.encode_frame(historique_groups(1234567, 450), h)
        + NOISE
        + bad
        + linky.encode_frame(historique_groups(1234568, 460), h)
        + NOISE
        + cut
        + linky.encode_frame(historique_groups(1234569, 480), h)
    )
    return with_parity(data)


def standard_capture():
    """No parity bit; 4 whole frames then a partial one: 0 good, 1 with one byte corrupted on the
    line (CCASN-1 -> CC@SN-1: bad checksum), 2 with a stray byte between two groups, 3 good,
    4 cut by the end of the capture."""
    s = linky.STANDARD
    corrupted = linky.encode_frame(standard_groups(12, 123457, 520), s)
    corrupted = corrupted.replace(b"CCASN-1", b"CC@SN-1")
    stray = linky.encode_frame(standard_groups(14, 123458, 530), s)
    stray = stray.replace(b"\r\nIRMS1", b"\r\x00\nIRMS1")
    tail = linky.encode_frame(standard_groups(18, 123460, 550), s)
    return (
        linky.encode_frame(standard_groups(10, 123456, 512), s)
        + corrupted
        + NOISE
        + stray
        + linky.encode_frame(standard_groups(16, 123459, 540), s)
        + tail[:200]
    )


def uart_reads():
    """Two good standard frames as successive UART reads of uneven sizes; "-" stands for a read
    that returned None, an empty line for b''. Groups, STX and ETX are split across reads."""
    data = linky.encode_frame(standard_groups(20, 123461, 560), linky.STANDARD)
    data += linky.encode_frame(standard_groups(22, 123462, 570), linky.STANDARD)
    sizes = (1, 7, None, 13, 64, 3, 0, 200, 2, 31, None, 97, 5, 150)
    lines = []
    pos = 0
    i = 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        i += 1
        if size is None:
            lines.append("-")
            continue
        lines.append(data[pos : pos + size].hex())
        pos += size
    return ("\n".join(lines) + "\n").encode()


def build():
    return {
        "historique.bin": historique_capture(),
        "standard.bin": standard_capture(),
        "standard_uart_reads.hex": uart_reads(),
    }


def main():
    for name, data in build().items():
        (HERE / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
