"""Semtech UDP packet-forwarder protocol v2 codec (Lora-net/packet_forwarder PROTOCOL.TXT).

Used by the nano gateway (MicroPython 1.11, 32-bit floats), the simulator's network-server
emulator and the host sniff tool.

Wire conventions:
- header: version, token (bytes 1..2), type; the token is read and written as a little-endian
  uint16, as ChirpStack's gateway bridge does, so a token echoed byte for byte matches;
- gateway EUI: the 8 bytes MSB first, as printed on the gateway label;
- frequencies are integer Hz: encoders render MHz with six decimals from int Hz, and decode()
  reads every "freq" literal from the JSON text itself (a float32 holds 868.1 MHz as 868099968);
- a TX_ACK for NONE carries no JSON body, like the reference lora_pkt_fwd; the bridge reads an
  empty ack (or error "NONE") as success.

decode() is one strict validator for all parties: it applies the bridge's Go unmarshalling rules
field by field (types and integer ranges, version 1 or 2, PULL_DATA exactly 12 bytes, datr
SF<n>BW<n>, codr from the bridge's list) and rejects some values the bridge takes silently but
gets wrong: rxpk.time must carry six microsecond digits, stat.time must end in GMT, datr must be
the whole string, data must be padded base64 of exactly `size` bytes, the required fields of
the reference forwarder must be present.
"""

from errors import SemtechError

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


try:
    import ubinascii as binascii
except ImportError:
    import binascii

try:
    import ujson as json
except ImportError:
    import json

PROTOCOL_VERSION = const(2)

PUSH_DATA = const(0)
PUSH_ACK = const(1)
PULL_DATA = const(2)
PULL_RESP = const(3)
PULL_ACK = const(4)
TX_ACK = const(5)
TYPE_NAMES = ("PUSH_DATA", "PUSH_ACK", "PULL_DATA", "PULL_RESP", "PULL_ACK", "TX_ACK")

ERR_NONE = "NONE"
ERR_TOO_LATE = "TOO_LATE"
ERR_TOO_EARLY = "TOO_EARLY"
ERR_COLLISION_PACKET = "COLLISION_PACKET"
ERR_COLLISION_BEACON = "COLLISION_BEACON"
ERR_TX_FREQ = "TX_FREQ"
ERR_TX_POWER = "TX_POWER"
ERR_GPS_UNLOCKED = "GPS_UNLOCKED"
ERR_QUEUE_FULL = "QUEUE_FULL"
ERR_INTERNAL_ERROR = "INTERNAL_ERROR"
ERR_DUTY_CYCLE_OVERFLOW = "DUTY_CYCLE_OVERFLOW"
ERR_IGNORED = "IGNORED"
TX_ACK_ERRORS = (
    ERR_NONE,
    ERR_TOO_LATE,
    ERR_TOO_EARLY,
    ERR_COLLISION_PACKET,
    ERR_COLLISION_BEACON,
    ERR_TX_FREQ,
    ERR_TX_POWER,
    ERR_GPS_UNLOCKED,
    ERR_QUEUE_FULL,
    ERR_INTERNAL_ERROR,
    ERR_DUTY_CYCLE_OVERFLOW,
    ERR_IGNORED,
)

# Coding rates the bridge maps (anything else: "invalid CodR").
CODR = (
    "4/5",
    "4/6",
    "4/7",
    "4/8",
    "3/8",
    "1/3",
    "2/6",
    "1/4",
    "1/6",
    "5/6",
    "4/5LI",
    "4/6LI",
    "4/8LI",
)

HEADER_SIZE = const(4)
HEADER_EUI_SIZE = const(12)

_U32_MAX = 0xFFFFFFFF
_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1
_DIGITS = "0123456789"
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# decode() rewrites each "freq" value before the JSON parser sees it: a number literal becomes
# the string "=<literal>", a string value gets "!" in front, so no other value passes for a number.
_NUMBER_MARK = "="
_STRING_MARK = "!"
_NUMBER_CHARS = "-+.0123456789eE"


def _reject_constant(name):
    raise ValueError("%s is not JSON" % name)


def _finite_float(text):
    value = float(text)
    if value - value != 0:
        raise ValueError("number out of range")
    return value


def _unique_keys(pairs):
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


try:
    # CPython: refuse NaN/Infinity and overflowing numbers as Go's encoding/json does, and
    # duplicate keys (Go would check every copy; Python keeps only the last one).
    json.loads(
        "0",
        parse_constant=_reject_constant,
        parse_float=_finite_float,
        object_pairs_hook=_unique_keys,
    )

    def _json_loads(text):
        return json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )

except TypeError:  # MicroPython: ujson.loads takes no keyword arguments
    _json_loads = json.loads


class Packet:
    """One decoded datagram.

    type, version, token (int), eui (8 bytes, or None for PUSH_ACK/PULL_RESP/PULL_ACK);
    PUSH_DATA: rxpk (list of dicts) and stat (dict or None); PULL_RESP: txpk (dict);
    TX_ACK: error (a TX_ACK_ERRORS name, NONE when the ack has no body) and warn (name or None).
    """

    def __init__(self, ptype, version, token):
        self.type = ptype
        self.version = version
        self.token = token
        self.eui = None
        self.rxpk = None
        self.stat = None
        self.txpk = None
        self.error = None
        self.warn = None

    @property
    def name(self):
        return TYPE_NAMES[self.type]

    def __repr__(self):
        return "<Packet %s v%d token=0x%04x>" % (TYPE_NAMES[self.type], self.version, self.token)


# --- small helpers ---------------------------------------------------------------------------


def _is_digits(text):
    return text != "" and text.strip(_DIGITS) == ""


def _show(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)
    if kind is dict:
        return "an object"
    if kind is list:
        return "an array"
    text = repr(value)
    if len(text) > 32:
        text = text[:29] + "..."
    return text


def _bad(where, key, expected, value):
    raise SemtechError("%s.%s: expected %s, got %s" % (where, key, expected, _show(value)))


def _missing(where, key, expected):
    raise SemtechError("%s.%s: missing, expected %s" % (where, key, expected))


def _get_int(obj, key, low, high, where, required):
    value = obj.get(key)
    if value is None:
        if required:
            _missing(where, key, "an integer %d..%d" % (low, high))
        return None
    if type(value) is not int or value < low or value > high:
        _bad(where, key, "an integer %d..%d" % (low, high), value)
    return value


def _get_number(obj, key, low, high, where, required):
    value = obj.get(key)
    if value is None:
        if required:
            _missing(where, key, "a number %d..%d" % (low, high))
        return None
    kind = type(value)
    if (kind is not int and kind is not float) or not low <= value <= high:
        _bad(where, key, "a number %d..%d" % (low, high), value)
    return value


def _get_bool(obj, key, where):
    value = obj.get(key)
    if value is None:
        return False
    if type(value) is not bool:
        _bad(where, key, "true or false", value)
    return value


def _get_str(obj, key, where, required):
    value = obj.get(key)
    if value is None:
        if required:
            _missing(where, key, "a string")
        return None
    if type(value) is not str:
        _bad(where, key, "a string", value)
    return value


# --- frequencies, times, data rates, payloads -----------------------------------------------


def freq_text(freq_hz, short=False):
    """MHz text of an integer Hz frequency with six decimals: 868100000 -> "868.100000".

    short=True drops trailing zeros as Go's encoding/json (ChirpStack) renders the float:
    "868.1", "869.525", "868". Raises SemtechError naming freq outside 1..4294967295 Hz.
    """
    if type(freq_hz) is not int or freq_hz < 1 or freq_hz > _U32_MAX:
        raise SemtechError("freq: expected integer Hz 1..4294967295, got %s" % _show(freq_hz))
    text = "%d.%06d" % (freq_hz // 1000000, freq_hz % 1000000)
    if short:
        text = text.rstrip("0").rstrip(".")
    return text


def parse_freq(text, field="freq"):
    """Integer Hz of a JSON number literal in MHz, without float rounding.

    "868.1", "868.100000", "8.681e2" -> 868100000. At most Hz precision (digits past the sixth
    decimal must be zeros), positive, below 2^32 Hz; raises SemtechError naming field otherwise.
    """
    mantissa = text
    exponent = 0
    cut = text.find("e")
    if cut < 0:
        cut = text.find("E")
    if cut >= 0:
        mantissa = text[:cut]
        exp_text = text[cut + 1 :]
        negative = exp_text[:1] == "-"
        if exp_text[:1] in ("-", "+"):
            exp_text = exp_text[1:]
        if not _is_digits(exp_text) or len(exp_text) > 3:
            raise SemtechError("%s: expected a JSON number in MHz, got %s" % (field, _show(text)))
        exponent = -int(exp_text) if negative else int(exp_text)
    if mantissa[:1] == "-":
        raise SemtechError(
            "%s: expected a positive frequency in MHz, got %s" % (field, _show(text))
        )
    dot = mantissa.find(".")
    whole = mantissa if dot < 0 else mantissa[:dot]
    fraction = "" if dot < 0 else mantissa[dot + 1 :]
    if (
        not _is_digits(whole)
        or (whole[0] == "0" and len(whole) > 1)
        or (dot >= 0 and not _is_digits(fraction))
    ):
        raise SemtechError("%s: expected a JSON number in MHz, got %s" % (field, _show(text)))
    digits = (whole + fraction).lstrip("0")
    shift = 6 + exponent - len(fraction)
    if shift < 0:
        zeros = len(digits) - len(digits.rstrip("0"))
        drop = zeros if zeros < -shift else -shift
        digits = digits[: len(digits) - drop]
        shift += drop
        if shift < 0 and digits:
            raise SemtechError(
                "%s: expected MHz with at most 6 decimals (Hz), got %s" % (field, _show(text))
            )
    if not digits or len(digits) + shift > 10:
        hz = 0
    else:
        hz = int(digits) * 10**shift
    if hz < 1 or hz > _U32_MAX:
        raise SemtechError("%s: expected 0.000001..4294.967295 MHz, got %s" % (field, _show(text)))
    return hz


def _quote_freqs(text):
    # One pass from string to string (the find()s run in C): a key "freq" followed by ':' gets
    # its value marked, so the JSON parser never turns the frequency into a float.
    if text.find('"freq"') < 0:
        return text
    parts = []
    done = 0
    pos = 0
    size = len(text)
    while True:
        start = text.find('"', pos)
        if start < 0:
            break
        end = start
        while True:
            end = text.find('"', end + 1)
            if end < 0:
                return text  # unterminated string: the JSON parser reports it
            back = end - 1
            while text[back] == "\\":
                back -= 1
            if (end - 1 - back) % 2 == 0:
                break
        pos = end + 1
        if end - start != 5 or text[start + 1 : end] != "freq":
            continue
        at = pos
        while at < size and text[at] in " \t\r\n":
            at += 1
        if at >= size or text[at] != ":":
            continue  # a "freq" value, not a key
        at += 1
        while at < size and text[at] in " \t\r\n":
            at += 1
        stop = at
        while stop < size and text[stop] in _NUMBER_CHARS:
            stop += 1
        if stop > at:
            parts.append(text[done:at])
            parts.append('"' + _NUMBER_MARK)
            parts.append(text[at:stop])
            parts.append('"')
            done = pos = stop
        elif at < size and text[at] == '"':
            parts.append(text[done : at + 1])
            parts.append(_STRING_MARK)
            done = at + 1
            pos = at
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def _check_key_case(obj, where, known):
    # Go's encoding/json also binds "RSSI" or "Rssi" to the rssi field: refuse such keys.
    for key in obj:
        if key not in known:
            lower = key.lower()
            if lower != key and lower in known:
                raise SemtechError(
                    "%s.%s: expected the key in lower case (%s)" % (where, key, lower)
                )


def _get_freq(obj, where):
    value = obj.get("freq")
    if type(value) is str:
        if value[:1] == _NUMBER_MARK:
            return parse_freq(value[1:], where + ".freq")
        value = value[1:]  # the string as sent, without its _STRING_MARK
    elif value is None:
        _missing(where, "freq", "a number in MHz")
    _bad(where, "freq", "a plain JSON number in MHz", value)


def _number(text, start, end):
    part = text[start:end]
    return int(part) if _is_digits(part) else -1


def _is_date_time(text, sep):
    # text[0:19] == "YYYY-MM-DD<sep>HH:MM:SS" with a real calendar date, as Go's time.Parse checks.
    if text[4] != "-" or text[7] != "-" or text[10] != sep or text[13] != ":" or text[16] != ":":
        return False
    year = _number(text, 0, 4)
    month = _number(text, 5, 7)
    day = _number(text, 8, 10)
    if year < 0 or not 1 <= month <= 12 or not 0 <= _number(text, 11, 13) <= 23:
        return False
    if not 0 <= _number(text, 14, 16) <= 59 or not 0 <= _number(text, 17, 19) <= 59:
        return False
    days = _DAYS_IN_MONTH[month - 1]
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        days = 29
    return 1 <= day <= days


def is_rxpk_time(text):
    """True for ISO 8601 compact UTC with 6 microsecond digits: "2026-11-24T10:00:00.000123Z"."""
    return (
        type(text) is str
        and len(text) == 27
        and text[19] == "."
        and text[26] == "Z"
        and _is_digits(text[20:26])
        and _is_date_time(text, "T")
    )


def is_stat_time(text):
    """True for the stat 'expanded' time: "2026-11-24 10:00:00 GMT"."""
    return (
        type(text) is str and len(text) == 23 and text[19:] == " GMT" and _is_date_time(text, " ")
    )


def rxpk_time(t):
    """rxpk.time text of t = (year, month, day, hour, minute, second, microsecond, ...).

    Pycom's machine.RTC().now() has this layout; utime.gmtime() does not (item 6 is weekday).
    """
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (t[0], t[1], t[2], t[3], t[4], t[5], t[6])


def stat_time(t):
    """stat.time text of t = (year, month, day, hour, minute, second, ...): "... GMT"."""
    return "%04d-%02d-%02d %02d:%02d:%02d GMT" % (t[0], t[1], t[2], t[3], t[4], t[5])


def parse_datr(text, field="datr"):
    """(spreading factor, bandwidth Hz) of a LoRa datr: "SF7BW125" -> (7, 125000).

    The whole string must be SF<5..12>BW<125|250|500>; raises SemtechError naming field.
    Region rules (which SF/BW a region allows) belong to eu868, not here.
    """
    if type(text) is str and text[:2] == "SF":
        cut = text.find("BW")
        sf_text = text[2:cut]
        bw_text = text[cut + 2 :]
        if (
            cut > 2
            and len(sf_text) <= 2
            and len(bw_text) <= 3
            and _is_digits(sf_text)
            and _is_digits(bw_text)
        ):
            sf = int(sf_text)
            bw = int(bw_text)
            if 5 <= sf <= 12 and (bw == 125 or bw == 250 or bw == 500):
                return sf, bw * 1000
    raise SemtechError(
        "%s: expected LoRa data rate SF<5..12>BW<125|250|500>, got %s" % (field, _show(text))
    )


def _b64encode(data):
    return str(binascii.b2a_base64(data)[:-1], "ascii")


def _b64decode(value, where, key, padded):
    if type(value) is not str:
        if value is None:
            _missing(where, key, "base64 text")
        _bad(where, key, "base64 text", value)
    text = value
    rest = len(text) % 4
    if rest:
        if padded or rest == 1:
            _bad(where, key, "padded base64 text" if padded else "base64 text", value)
        text = text + "=" * (4 - rest)
    try:
        data = binascii.a2b_base64(text)
        canonical = binascii.b2a_base64(data)[:-1] == text.encode()
    except ValueError:
        canonical = False
    if not canonical:
        _bad(where, key, "base64 text", value)
    return data


def _tenths(value):
    sign = "-" if value < 0 else ""
    value = -value if value < 0 else value
    return "%s%d.%d" % (sign, value // 10, value % 10)


def _check_int(name, value, low, high):
    if type(value) is not int or value < low or value > high:
        raise SemtechError(
            "%s: expected an integer %d..%d, got %s" % (name, low, high, _show(value))
        )


def _check_codr(codr):
    if codr not in CODR:
        raise SemtechError("codr: expected one of %s, got %s" % (" ".join(CODR), _show(codr)))


# --- tokens, headers, datagrams --------------------------------------------------------------


def next_token(prev):
    """The token after prev, wrapping at 16 bits."""
    return (prev + 1) & 0xFFFF


def random_token(urandom):
    """A token from urandom(2) (os.urandom on the board and host, a seeded fake in the simulator)."""
    raw = urandom(2)
    return raw[0] | (raw[1] << 8)


def write_header(buf, token, ptype, version=PROTOCOL_VERSION):
    """Write the 4-byte header (version, token little-endian, type) into buf[0:4]."""
    _check_int("token", token, 0, 0xFFFF)
    buf[0] = version
    buf[1] = token & 0xFF
    buf[2] = token >> 8
    buf[3] = ptype


def pack(buf, ptype, token, eui=None, body=None):
    """Write a whole datagram into the preallocated bytearray buf; return its length.

    eui: 8 bytes (for PUSH_DATA, PULL_DATA, TX_ACK); body: JSON text (str or bytes) or None.
    """
    write_header(buf, token, ptype)
    size = HEADER_SIZE
    if eui is not None:
        if len(eui) != 8:
            raise SemtechError("eui: expected 8 bytes, got %d" % len(eui))
        buf[4:12] = eui
        size = HEADER_EUI_SIZE
    if body:
        if type(body) is str:
            body = body.encode()
        end = size + len(body)
        if end > len(buf):
            raise SemtechError("body: %d bytes do not fit a %d-byte buffer" % (end, len(buf)))
        buf[size:end] = body
        size = end
    return size


def encode(ptype, token, eui=None, body=None):
    """A datagram as bytes (see pack)."""
    if type(body) is str:
        body = body.encode()
    buf = bytearray(HEADER_SIZE + (8 if eui is not None else 0) + (len(body) if body else 0))
    pack(buf, ptype, token, eui, body)
    return bytes(buf)


def format_rxpk(tmst, freq_hz, datr, codr, rssi, lsnr_x10, data, time=None, chan=0, rfch=0, stat=1):
    """JSON text of one LoRa rxpk object, formatted by hand (no float anywhere).

    tmst: uint32 µs of RX done; freq_hz: int Hz -> "868.100000"; datr "SF7BW125"; codr "4/5";
    rssi: int dBm; lsnr_x10: SNR in tenths of dB (-75 -> -7.5); data: the PHY payload bytes;
    time: rxpk_time() text or None when the clock is not synced (then omitted).
    """
    _check_int("tmst", tmst, 0, _U32_MAX)
    freq = freq_text(freq_hz)
    parse_datr(datr)
    _check_codr(codr)
    _check_int("rssi", rssi, -32768, 32767)
    _check_int("lsnr_x10", lsnr_x10, -1000, 1000)
    _check_int("chan", chan, 0, 255)
    _check_int("rfch", rfch, 0, 255)
    _check_int("stat", stat, -1, 1)
    _check_int("size", len(data), 0, 0xFFFF)
    if time is None:
        head = "{"
    elif is_rxpk_time(time):
        head = '{"time":"%s",' % time
    else:
        raise SemtechError("time: expected YYYY-MM-DDTHH:MM:SS.ffffffZ, got %s" % _show(time))
    return (
        '%s"tmst":%d,"chan":%d,"rfch":%d,"freq":%s,"stat":%d,"modu":"LORA","datr":"%s",'
        '"codr":"%s","rssi":%d,"lsnr":%s,"size":%d,"data":"%s"}'
        % (
            head,
            tmst,
            chan,
            rfch,
            freq,
            stat,
            datr,
            codr,
            rssi,
            _tenths(lsnr_x10),
            len(data),
            _b64encode(data),
        )
    )


def format_stat(time, rxnb, rxok, rxfw, ackr_x10, dwnb, txnb, lati=None, long=None, alti=None):
    """JSON text of the stat object.

    time: stat_time() text; counters: uint32; ackr_x10: acknowledged upstream datagrams in
    tenths of a percent (1000 -> 100.0); lati/long: degrees (rendered with 5 decimals) and
    alti: int metres, all three or none.
    """
    if not is_stat_time(time):
        raise SemtechError("time: expected YYYY-MM-DD HH:MM:SS GMT, got %s" % _show(time))
    for name, value in (
        ("rxnb", rxnb),
        ("rxok", rxok),
        ("rxfw", rxfw),
        ("dwnb", dwnb),
        ("txnb", txnb),
    ):
        _check_int(name, value, 0, _U32_MAX)
    _check_int("ackr_x10", ackr_x10, 0, 1000)
    location = ""
    if lati is not None or long is not None or alti is not None:
        for name, value in (("lati", lati), ("long", long)):
            if (type(value) is not float and type(value) is not int) or value - value != 0:
                raise SemtechError(
                    "%s: expected degrees as a number, got %s" % (name, _show(value))
                )
        _check_int("alti", alti, -(1 << 31), (1 << 31) - 1)
        location = '"lati":%.5f,"long":%.5f,"alti":%d,' % (lati, long, alti)
    return '{"time":"%s",%s"rxnb":%d,"rxok":%d,"rxfw":%d,"ackr":%s,"dwnb":%d,"txnb":%d}' % (
        time,
        location,
        rxnb,
        rxok,
        rxfw,
        _tenths(ackr_x10),
        dwnb,
        txnb,
    )


def format_txpk(
    freq_hz,
    datr,
    data,
    tmst=None,
    imme=False,
    tmms=None,
    rfch=0,
    powe=14,
    codr="4/5",
    ipol=True,
    prea=None,
    ncrc=None,
    fdev=None,
    modu="LORA",
):
    """JSON text of a txpk object laid out as ChirpStack's bridge sends it (freq as "868.1").

    datr: "SF7BW125" for LORA, bits/s int for FSK; data: PHY payload bytes; give imme=True, tmst
    (uint32) or tmms (GPS ms); prea, ncrc, fdev are left out when None.
    """
    if modu == "LORA":
        parse_datr(datr)
        _check_codr(codr)
        rate = '"datr":"%s","codr":"%s",' % (datr, codr)
    elif modu == "FSK":
        _check_int("datr", datr, 1, _U32_MAX)
        rate = '"datr":%d,' % datr
    else:
        raise SemtechError('modu: expected "LORA" or "FSK", got %s' % _show(modu))
    _check_int("rfch", rfch, 0, 255)
    _check_int("powe", powe, -128, 255)
    parts = [
        '{"imme":%s,"rfch":%d,"powe":%d,"ant":0,"brd":0,'
        % ("true" if imme else "false", rfch, powe)
    ]
    if tmst is not None:
        _check_int("tmst", tmst, 0, _U32_MAX)
        parts.append('"tmst":%d,' % tmst)
    if tmms is not None:
        _check_int("tmms", tmms, _I64_MIN, _I64_MAX)
        parts.append('"tmms":%d,' % tmms)
    if not imme and tmst is None and tmms is None:
        raise SemtechError("tmst: expected imme=True, tmst or tmms")
    parts.append('"freq":%s,"modu":"%s",%s' % (freq_text(freq_hz, True), modu, rate))
    if fdev is not None:
        _check_int("fdev", fdev, 0, 0xFFFF)
        parts.append('"fdev":%d,' % fdev)
    if ncrc:
        parts.append('"ncrc":true,')
    parts.append('"ipol":%s,' % ("true" if ipol else "false"))
    if prea is not None:
        _check_int("prea", prea, 0, 0xFFFF)
        parts.append('"prea":%d,' % prea)
    _check_int("size", len(data), 0, 0xFFFF)
    parts.append('"size":%d,"data":"%s"}' % (len(data), _b64encode(data)))
    return "".join(parts)


def push_data_body(rxpk=(), stat=None):
    """PUSH_DATA JSON text from rxpk texts (format_rxpk) and/or a stat text (format_stat)."""
    if not rxpk and stat is None:
        raise SemtechError("rxpk: expected at least one rxpk or a stat")
    parts = ['{"rxpk":[', ",".join(rxpk), "]"] if rxpk else ["{"]
    if stat is not None:
        parts.append(',"stat":' if rxpk else '"stat":')
        parts.append(stat)
    parts.append("}")
    return "".join(parts)


def tx_ack_body(error=ERR_NONE):
    """TX_ACK JSON text for an error name; None for NONE (the ack then has no body)."""
    if error not in TX_ACK_ERRORS:
        raise SemtechError(
            "error: expected one of %s, got %s" % (" ".join(TX_ACK_ERRORS), _show(error))
        )
    if error == ERR_NONE:
        return None
    return '{"txpk_ack":{"error":"%s"}}' % error


def encode_push_data(token, eui, rxpk=(), stat=None):
    return encode(PUSH_DATA, token, eui, push_data_body(rxpk, stat))


def encode_push_ack(token):
    return encode(PUSH_ACK, token)


def encode_pull_data(token, eui):
    return encode(PULL_DATA, token, eui)


def encode_pull_resp(token, txpk):
    """PULL_RESP datagram around a txpk text (format_txpk)."""
    return encode(PULL_RESP, token, None, '{"txpk":%s}' % txpk)


def encode_pull_ack(token):
    return encode(PULL_ACK, token)


def encode_tx_ack(token, eui, error=ERR_NONE):
    """TX_ACK datagram (type 0x05) with the PULL_RESP's token; NONE has no JSON body."""
    return encode(TX_ACK, token, eui, tx_ack_body(error))


# --- decoding --------------------------------------------------------------------------------


def _parse_body(datagram, start):
    try:
        root = _json_loads(_quote_freqs(str(datagram[start:], "utf-8")))
    except (ValueError, RuntimeError) as exc:  # RuntimeError: CPython's RecursionError
        raise SemtechError("body: expected a JSON object (%s)" % (str(exc).split("\n")[0][:60],))
    if type(root) is not dict:
        raise SemtechError("body: expected a JSON object, got %s" % _show(root))
    return root


_ROOT_KEYS = ("rxpk", "stat")
_RXPK_KEYS = (
    "time",
    "tmms",
    "tmst",
    "ftime",
    "aesk",
    "chan",
    "rfch",
    "stat",
    "freq",
    "brd",
    "rssi",
    "size",
)
_RXPK_KEYS += ("datr", "modu", "codr", "lsnr", "hpw", "data", "rsig")
_RSIG_KEYS = ("ant", "chan", "rssic", "lsnr", "etime")
_STAT_KEYS = ("time", "lati", "long", "alti", "rxnb", "rxok", "rxfw", "ackr", "dwnb", "txnb")


def _check_rsig(rsig, where):
    if type(rsig) is not list:
        _bad(where, "rsig", "an array", rsig)
    for index in range(len(rsig)):
        sig = rsig[index]
        at = "%s.rsig[%d]" % (where, index)
        if type(sig) is not dict:
            raise SemtechError("%s: expected an object, got %s" % (at, _show(sig)))
        _check_key_case(sig, at, _RSIG_KEYS)
        _get_int(sig, "ant", 0, 255, at, False)
        _get_int(sig, "chan", 0, 255, at, False)
        _get_int(sig, "rssic", -32768, 32767, at, False)
        _get_number(sig, "lsnr", -1000, 1000, at, False)
        if sig.get("etime") is not None:
            _b64decode(sig["etime"], at, "etime", True)


def _decode_rxpk(obj, where):
    if type(obj) is not dict:
        raise SemtechError("%s: expected an object, got %s" % (where, _show(obj)))
    _check_key_case(obj, where, _RXPK_KEYS)
    time = obj.get("time")
    if time == "":
        time = None
    if time is not None and not is_rxpk_time(time):
        _bad(where, "time", "YYYY-MM-DDTHH:MM:SS.ffffffZ", time)
    rx = {"time": time}
    rx["tmms"] = _get_int(obj, "tmms", _I64_MIN, _I64_MAX, where, False)
    rx["tmst"] = _get_int(obj, "tmst", 0, _U32_MAX, where, True)
    rx["freq_hz"] = _get_freq(obj, where)
    rx["chan"] = _get_int(obj, "chan", 0, 255, where, True)
    rx["rfch"] = _get_int(obj, "rfch", 0, 255, where, True)
    rx["stat"] = _get_int(obj, "stat", -1, 1, where, True)
    for key in ("brd", "ftime"):
        _get_int(obj, key, 0, _U32_MAX, where, False)
    for key in ("aesk", "hpw"):
        _get_int(obj, key, 0, 255, where, False)
    modu = rx["modu"] = _get_str(obj, "modu", where, True)
    lora = modu == "LORA"
    if lora:
        rx["datr"] = obj.get("datr")
        rx["sf"], rx["bw_hz"] = parse_datr(rx["datr"], where + ".datr")
    elif modu == "FSK":
        rx["datr"] = _get_int(obj, "datr", 1, _U32_MAX, where, True)
        rx["sf"] = rx["bw_hz"] = None
    else:
        _bad(where, "modu", '"LORA" or "FSK"', modu)
    codr = rx["codr"] = _get_str(obj, "codr", where, lora)
    if lora and codr not in CODR:
        _bad(where, "codr", "a coding rate like 4/5", codr)
    rx["rssi"] = _get_int(obj, "rssi", -32768, 32767, where, True)
    lsnr = rx["lsnr"] = _get_number(obj, "lsnr", -1000, 1000, where, lora)
    rx["lsnr_x10"] = None if lsnr is None else int(round(lsnr * 10))
    size = rx["size"] = _get_int(obj, "size", 0, 0xFFFF, where, True)
    data = rx["data"] = _b64decode(obj.get("data"), where, "data", True)
    if len(data) != size:
        _bad(where, "size", "the length of data (%d)" % len(data), size)
    if obj.get("rsig") is not None:
        _check_rsig(obj["rsig"], where)
    return rx


def _decode_stat(obj):
    where = "stat"
    if type(obj) is not dict:
        raise SemtechError("stat: expected an object, got %s" % _show(obj))
    _check_key_case(obj, where, _STAT_KEYS)
    time = obj.get("time")
    if not is_stat_time(time):
        if time is None:
            _missing(where, "time", "YYYY-MM-DD HH:MM:SS GMT")
        _bad(where, "time", "YYYY-MM-DD HH:MM:SS GMT", time)
    st = {"time": time}
    st["lati"] = _get_number(obj, "lati", -90, 90, where, False)
    st["long"] = _get_number(obj, "long", -180, 180, where, False)
    st["alti"] = _get_int(obj, "alti", -(1 << 31), (1 << 31) - 1, where, False)
    for key in ("rxnb", "rxok", "rxfw"):
        st[key] = _get_int(obj, key, 0, _U32_MAX, where, True)
    st["ackr"] = _get_number(obj, "ackr", 0, 100, where, True)
    for key in ("dwnb", "txnb"):
        st[key] = _get_int(obj, key, 0, _U32_MAX, where, True)
    return st


def _decode_txpk(obj):
    where = "txpk"
    if type(obj) is not dict:
        if obj is None:
            raise SemtechError("txpk: missing, expected an object")
        raise SemtechError("txpk: expected an object, got %s" % _show(obj))
    tx = {"imme": _get_bool(obj, "imme", where)}
    tx["tmst"] = _get_int(obj, "tmst", 0, _U32_MAX, where, False)
    tx["tmms"] = _get_int(obj, "tmms", _I64_MIN, _I64_MAX, where, False)
    tx["time"] = _get_str(obj, "time", where, False)
    if not tx["imme"] and tx["tmst"] is None and tx["tmms"] is None and tx["time"] is None:
        _missing(where, "tmst", "imme true, tmst or tmms")
    tx["freq_hz"] = _get_freq(obj, where)
    rfch = _get_int(obj, "rfch", 0, 255, where, False)
    tx["rfch"] = 0 if rfch is None else rfch
    tx["powe"] = _get_int(obj, "powe", -128, 255, where, False)
    modu = tx["modu"] = _get_str(obj, "modu", where, True)
    lora = modu == "LORA"
    if lora:
        tx["datr"] = obj.get("datr")
        tx["sf"], tx["bw_hz"] = parse_datr(tx["datr"], "txpk.datr")
    elif modu == "FSK":
        tx["datr"] = _get_int(obj, "datr", 1, _U32_MAX, where, True)
        tx["sf"] = tx["bw_hz"] = None
    else:
        _bad(where, "modu", '"LORA" or "FSK"', modu)
    codr = tx["codr"] = _get_str(obj, "codr", where, lora)
    if lora and codr not in CODR:
        _bad(where, "codr", "a coding rate like 4/5", codr)
    tx["fdev"] = _get_int(obj, "fdev", 0, 0xFFFF, where, False)
    tx["ipol"] = _get_bool(obj, "ipol", where)
    tx["prea"] = _get_int(obj, "prea", 0, 0xFFFF, where, False)
    size = tx["size"] = _get_int(obj, "size", 0, 0xFFFF, where, True)
    data = tx["data"] = _b64decode(obj.get("data"), where, "data", False)
    if len(data) != size:
        _bad(where, "size", "the length of data (%d)" % len(data), size)
    tx["ncrc"] = _get_bool(obj, "ncrc", where)
    return tx


def _check_length(ptype, size, low, high):
    if size < low or size > high:
        if low == high:
            expected = "exactly %d" % low
        else:
            expected = "at least %d" % low
        raise SemtechError(
            "length: %s must be %s bytes, got %d" % (TYPE_NAMES[ptype], expected, size)
        )


def decode(datagram, expect=None):
    """Decode and validate one datagram (bytes, bytearray or memoryview) into a Packet.

    expect: a packet type the datagram must have (e.g. TX_ACK on the server side, PULL_RESP on
    the gateway). Raises SemtechError, naming the field, on anything the ChirpStack gateway
    bridge would refuse and on the wrong values listed in the module docstring.
    """
    size = len(datagram)
    if size < HEADER_SIZE:
        raise SemtechError("length: expected at least 4 bytes (header), got %d" % size)
    version = datagram[0]
    if version != 1 and version != 2:
        raise SemtechError("version: expected 1 or 2, got %d" % version)
    ptype = datagram[3]
    if ptype > TX_ACK:
        raise SemtechError("type: expected 0x00..0x05, got 0x%02x" % ptype)
    if expect is not None and ptype != expect:
        raise SemtechError(
            "type: expected %s (0x%02x), got %s (0x%02x)"
            % (TYPE_NAMES[expect], expect, TYPE_NAMES[ptype], ptype)
        )
    packet = Packet(ptype, version, datagram[1] | (datagram[2] << 8))
    if ptype == PULL_RESP:
        _check_length(ptype, size, 5, 0x7FFFFFFF)
        packet.txpk = _decode_txpk(_parse_body(datagram, HEADER_SIZE).get("txpk"))
        return packet
    if ptype == PUSH_ACK or ptype == PULL_ACK:
        _check_length(ptype, size, 4, 4)
        return packet
    if ptype == PULL_DATA:
        _check_length(ptype, size, 12, 12)
    elif ptype == PUSH_DATA:
        _check_length(ptype, size, 13, 0x7FFFFFFF)
    else:
        _check_length(ptype, size, 12, 0x7FFFFFFF)
    packet.eui = bytes(datagram[4:12])
    if ptype == PUSH_DATA:
        root = _parse_body(datagram, HEADER_EUI_SIZE)
        _check_key_case(root, "body", _ROOT_KEYS)
        rxpk = root.get("rxpk")
        if rxpk is None:
            rxpk = []
        elif type(rxpk) is not list:
            raise SemtechError("rxpk: expected an array, got %s" % _show(rxpk))
        packet.rxpk = [_decode_rxpk(rxpk[i], "rxpk[%d]" % i) for i in range(len(rxpk))]
        stat = root.get("stat")
        packet.stat = None if stat is None else _decode_stat(stat)
    elif ptype == TX_ACK:
        packet.error = ERR_NONE
        # a lone NUL after the EUI is Kerlink iBTS's empty body; the bridge skips it too
        if size > 13 or (size == 13 and datagram[12] != 0):
            ack = _parse_body(datagram, HEADER_EUI_SIZE).get("txpk_ack")
            if type(ack) is not dict:
                if ack is None:
                    raise SemtechError("txpk_ack: missing, expected an object")
                raise SemtechError("txpk_ack: expected an object, got %s" % _show(ack))
            error = ack.get("error")
            if error is not None:
                if error not in TX_ACK_ERRORS:
                    _bad("txpk_ack", "error", "a TX_ACK error name (NONE, TOO_LATE, ...)", error)
                packet.error = error
            packet.warn = _get_str(ack, "warn", "txpk_ack", False)
    return packet


def check_push_data_strict(datagram):
    """The strict host-side check of a gateway's PUSH_DATA: decode(datagram, PUSH_DATA)."""
    return decode(datagram, PUSH_DATA)
