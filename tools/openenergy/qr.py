"""LoRa Alliance TR005 device identification QR codes (never carrying a key), drawn with segno.

TR005 schema D0: ``LW:D0:<JoinEUI>:<DevEUI>:<ProfileID>`` — 16, 16 and 8 uppercase hex digits;
ProfileID = VendorID (2 bytes, assigned by the LoRa Alliance; 0000 when none) followed by the
vendor's profile ID (2 bytes). Optional extensions (``:O`` owner token, ``:S`` serial number,
``:P`` proprietary, ``:C`` checksum) are not written. Uppercase hex keeps the whole text in the
QR alphanumeric character set, so the code stays small. ChirpStack, The Things Stack and most
installer apps scan it to fill in the device identifiers; the AppKey is never in it.
"""

import io

from errors import ConfigError

PREFIX = "LW:D0:"
_HEX = "0123456789ABCDEF"


def _hex(field, value, size):
    if not isinstance(value, (bytes, bytearray)) or len(value) != size:
        raise ConfigError(f"{field}: expected {size} bytes")
    return bytes(value).hex().upper()


def tr005_text(join_eui, dev_eui, profile_id):
    """The QR content for 8-byte EUIs and a 4-byte ProfileID (bytes, most significant first)."""
    return "%s%s:%s:%s" % (
        PREFIX,
        _hex("join_eui", join_eui, 8),
        _hex("dev_eui", dev_eui, 8),
        _hex("profile_id", profile_id, 4),
    )


def parse_tr005(text):
    """{"join_eui", "dev_eui", "profile_id"} (bytes) from a TR005 D0 text; extensions ignored."""
    parts = text.split(":")
    if len(parts) < 5 or parts[0] != "LW" or parts[1] != "D0":
        raise ConfigError("qr: expected LW:D0:<JoinEUI>:<DevEUI>:<ProfileID>")
    out = {}
    for name, part, digits in (
        ("join_eui", parts[2], 16),
        ("dev_eui", parts[3], 16),
        ("profile_id", parts[4], 8),
    ):
        if len(part) != digits or any(ch not in _HEX for ch in part):
            raise ConfigError(f"qr.{name}: expected {digits} uppercase hex digits")
        out[name] = bytes.fromhex(part)
    return out


def make(text):
    """The segno QR code of a TR005 text (error correction M, the smallest version that fits)."""
    try:
        import segno
    except ImportError:
        raise ConfigError("qr: the QR codes need the segno package (pip install segno)") from None
    return segno.make_qr(text, error="m")


def save_png(text, path, scale=8):
    """Write the QR code as a PNG (black on white, 4-module quiet zone)."""
    make(text).save(str(path), kind="png", scale=scale, border=4)


def terminal_text(text):
    """The QR code as text for a terminal (segno's compact form: two modules per character with
    half blocks, light modules drawn, so it scans from a dark-background terminal)."""
    out = io.StringIO()
    make(text).terminal(out=out, compact=True)
    return out.getvalue().rstrip("\n")
