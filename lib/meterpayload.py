"""Meter payload codec, version 1: reports, alarms, status answers and downlink commands.

Byte-level spec: docs/payload-format.md. Big-endian. Byte 0 of every frame is
(version << 4) | kind, and the kind equals the FPort the frame travels on:
1 report, 2 alarm, 3 status (uplinks), 10 command (downlink).

Two faces:
- device: encode_report_into / encode_alarm_into / encode_status_into write into a caller's
  preallocated bytearray from plain ints and return the length;
- host and JSON: decode(fport, data) -> dict and encode(dict) -> (fport, bytes), exact inverses
  for every frame decode accepts.
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


try:
    import ustruct as struct
except ImportError:
    import struct

from errors import PayloadError

VERSION = const(1)

FPORT_REPORT = const(1)
FPORT_ALARM = const(2)
FPORT_STATUS = const(3)
FPORT_COMMAND = const(10)

KINDS = {
    FPORT_REPORT: "report",
    FPORT_ALARM: "alarm",
    FPORT_STATUS: "status",
    FPORT_COMMAND: "command",
}

# Status flags (u16). An alarm code is the bit number of the flag it concerns.
FLAG_LOW_BATTERY = const(0x0001)
FLAG_NO_PULSE = const(0x0002)
FLAG_LEAK = const(0x0004)
FLAG_FLOW_HIGH = const(0x0008)
FLAG_TAMPER = const(0x0010)
FLAG_TIC_CHECKSUM = const(0x0020)
FLAG_TIC_MISSING = const(0x0040)
FLAG_COUNTER_OVERFLOW = const(0x0080)
FLAG_BACKLOG = const(0x0100)
FLAG_REBOOTED = const(0x0200)

FLAG_NAMES = (
    "low_battery",
    "no_pulse",
    "leak",
    "flow_high",
    "tamper",
    "tic_checksum",
    "tic_missing",
    "counter_overflow",
    "backlog",
    "rebooted",
)

TRIGGERS = ("boot", "request", "changed", "rejected")
CONFIRMED_POLICIES = ("never", "alarms", "always")
TIC_MODES = ("none", "historique", "standard")

# Downlink command opcodes (FPort 10) and their total length, opcode included.
CMD_SET_INTERVAL = const(0x01)
CMD_SET_HISTORY = const(0x02)
CMD_PRESET_COUNTER = const(0x03)
CMD_SET_THRESHOLDS = const(0x04)
CMD_SET_DR = const(0x05)
CMD_SET_CONFIRMED = const(0x06)
CMD_GET_CONFIG = const(0x07)
CMD_REJOIN = const(0x08)

COMMANDS = {
    CMD_SET_INTERVAL: ("set_interval", 3),
    CMD_SET_HISTORY: ("set_history", 2),
    CMD_PRESET_COUNTER: ("preset_counter", 6),
    CMD_SET_THRESHOLDS: ("set_thresholds", 8),
    CMD_SET_DR: ("set_dr", 2),
    CMD_SET_CONFIRMED: ("set_confirmed", 2),
    CMD_GET_CONFIG: ("get_config", 1),
    CMD_REJOIN: ("rejoin", 1),
}

_BLOCK_PULSE = const(0x1)
_BLOCK_TIC = const(0x2)

REPORT_HEADER_SIZE = const(7)
PULSE_BLOCK_SIZE = const(6)  # tag, count, u32 index; then 2 bytes per delta
TIC_BLOCK_SIZE = const(4)  # tag, u16 VA, tariff; then 4 bytes per period
ALARM_SIZE = const(11)
STATUS_HEADER_SIZE = const(17)
THRESHOLD_SIZE = const(7)

MAX_CHANNEL = const(15)
MAX_TIC_PERIODS = const(15)
MAX_DELTAS = const(255)

_U16 = const(0xFFFF)
_U32 = 0xFFFFFFFF
_WRAP = 0x100000000  # u32 counters wrap: a negative step is taken modulo 2^32

_SEQUENCES = (tuple, list)
_THRESHOLD_NAMES = ("channel", "flow_high", "no_pulse_h", "leak_h")
_available = [0] * (MAX_CHANNEL + 1)  # per-channel usable history, reused by encode_report_into


def _fail(field, text):
    raise PayloadError("%s: %s" % (field, text))


def _short(value):
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return text


def _int(field, value, lo, hi):
    if type(value) is not int or value < lo or value > hi:
        _fail(field, "expected an integer %d..%d, got %s" % (lo, hi, _short(value)))
    return value


def _bad(value, lo, hi):
    return type(value) is not int or value < lo or value > hi


def _bool(field, value):
    if value is not True and value is not False:
        _fail(field, "expected true or false, got %s" % _short(value))
    return value


def _list(field, value):
    if not isinstance(value, _SEQUENCES):
        _fail(field, "expected a list, got %s" % _short(value))
    return value


def _name_code(field, value, names):
    for code in range(len(names)):
        if names[code] == value:
            return code
    _fail(field, "expected one of %s, got %s" % ("|".join(names), _short(value)))


def flag_name(bit):
    """Name of status bit `bit` (0..15); bits without a v1 meaning are named 'bitN'."""
    if bit < len(FLAG_NAMES):
        return FLAG_NAMES[bit]
    return "bit%d" % bit


def flag_code(field, name):
    """Bit number of a status flag name (as produced by flag_name)."""
    if type(name) is str:
        for bit in range(16):
            if flag_name(bit) == name:
                return bit
    _fail(
        field,
        "expected a status flag name (low_battery, leak, ... or bit10..bit15), got %s"
        % _short(name),
    )


def flags_to_names(flags):
    """The names of the bits set in a u16 status word, lowest bit first."""
    return [flag_name(bit) for bit in range(16) if flags & (1 << bit)]


def names_to_flags(field, names):
    flags = 0
    names = _list(field, names)
    for i in range(len(names)):
        bit = 1 << flag_code("%s[%d]" % (field, i), names[i])
        if flags & bit:
            _fail("%s[%d]" % (field, i), "flag %s listed twice" % names[i])
        flags |= bit
    return flags


# ---------------------------------------------------------------- sizes


def report_size(channel_deltas, tic_periods=None):
    """Bytes of a report with one pulse block per entry of channel_deltas (its delta count)
    and, if tic_periods is not None, a TIC block with that many tariff indexes."""
    size = REPORT_HEADER_SIZE
    for deltas in channel_deltas:
        size += PULSE_BLOCK_SIZE + 2 * deltas
    if tic_periods is not None:
        size += TIC_BLOCK_SIZE + 4 * tic_periods
    return size


def max_deltas(max_size, channels, tic_periods=None):
    """Deltas per channel that fit in max_size bytes with `channels` pulse channels (-1 if even
    the blocks without deltas do not fit)."""
    room = max_size - report_size([0] * channels, tic_periods)
    if room < 0:
        return -1
    if channels == 0:
        return 0
    return min(MAX_DELTAS, room // (2 * channels))


# ---------------------------------------------------------------- device encoders


def encode_report_into(
    buf, seq, interval_s, channels=(), status=0, tic=None, max_size=0, history=MAX_DELTAS
):
    """Write a report into buf, return its length.

    channels: sequence of (channel, indexes), channels ascending 0..15, indexes the channel's
    absolute u32 counter at the newest reading first, then at each earlier reading. tic: None or
    (apparent_power_va, tariff, index_wh) with tariff 1-based into index_wh (0 unknown).
    The history is cut to fit max_size (0: len(buf)) and `history` deltas per channel, the same
    depth for every channel where possible; a channel's history also stops at the first delta
    above 65535. Apparent power above 65535 VA is sent as 65535. Allocates nothing (it reuses a
    module-level scratch list, so it is not re-entrant: call it from one thread).
    """
    _int("seq", seq, 0, _U16)
    _int("interval_s", interval_s, 1, _U16)
    _int("status", status, 0, _U16)
    _int("history", history, 0, MAX_DELTAS)
    limit = len(buf)
    if max_size and max_size < limit:
        limit = max_size
    nch = len(channels)
    if nch > MAX_CHANNEL + 1:
        _fail("channels", "expected at most %d channels, got %d" % (MAX_CHANNEL + 1, nch))
    available = _available
    most = 0
    last = -1
    for i in range(nch):
        entry = channels[i]
        if not isinstance(entry, _SEQUENCES) or len(entry) != 2:
            _fail("channels[%d]" % i, "expected (channel, indexes)")
        channel, indexes = entry
        if _bad(channel, 0, MAX_CHANNEL) or channel <= last:
            _int("channels[%d].channel" % i, channel, 0, MAX_CHANNEL)
            _fail("channels[%d].channel" % i, "channels must be ascending and distinct")
        last = channel
        try:
            count = len(indexes)
        except TypeError:
            count = 0
        if count < 1:
            _fail("channels[%d].indexes" % i, "expected a sequence with the newest reading first")
        newer = indexes[0]
        if _bad(newer, 0, _U32):
            _int("channels[%d].indexes[0]" % i, newer, 0, _U32)
        k = 0
        top = count - 1
        if top > history:
            top = history
        while k < top:
            older = indexes[k + 1]
            if _bad(older, 0, _U32):
                _int("channels[%d].indexes[%d]" % (i, k + 1), older, 0, _U32)
            step = newer - older
            if step < 0:
                step += _WRAP
            if step > _U16:
                break
            newer = older
            k += 1
        available[i] = k
        if k > most:
            most = k
    size = REPORT_HEADER_SIZE + PULSE_BLOCK_SIZE * nch
    if tic is not None:
        if not isinstance(tic, _SEQUENCES) or len(tic) != 3:
            _fail("tic", "expected (apparent_power_va, tariff, index_wh)")
        papp, tariff, index_wh = tic
        _int("tic.papp_va", papp, 0, _U32)
        if not isinstance(index_wh, _SEQUENCES):
            _fail("tic.index_wh", "expected a list of u32 indexes")
        tic_periods = len(index_wh)
        if tic_periods > MAX_TIC_PERIODS:
            _fail(
                "tic.index_wh",
                "expected at most %d tariff indexes, got %d" % (MAX_TIC_PERIODS, tic_periods),
            )
        _int("tic.tariff", tariff, 0, tic_periods)
        for j in range(tic_periods):
            if _bad(index_wh[j], 0, _U32):
                _int("tic.index_wh[%d]" % j, index_wh[j], 0, _U32)
        size += TIC_BLOCK_SIZE + 4 * tic_periods
    if size > limit:
        _fail(
            "max_size",
            "a report with these blocks needs %d bytes, only %d available" % (size, limit),
        )
    room = (limit - size) // 2
    room_left = room
    depth = 0
    while depth < most:
        need = 0
        for i in range(nch):
            need += available[i] if available[i] <= depth else depth + 1
        if need > room:
            break
        depth += 1
        room_left = room - need
    # Room left over at the common depth goes one delta each to the first channels that have more.
    struct.pack_into(">BHHH", buf, 0, (VERSION << 4) | FPORT_REPORT, status, seq, interval_s)
    pos = REPORT_HEADER_SIZE
    for i in range(nch):
        channel, indexes = channels[i]
        k = available[i] if available[i] < depth else depth
        if available[i] > depth and room_left > 0:
            k += 1
            room_left -= 1
        struct.pack_into(">BBI", buf, pos, (_BLOCK_PULSE << 4) | channel, k, indexes[0])
        pos += PULSE_BLOCK_SIZE
        for j in range(k):
            step = indexes[j] - indexes[j + 1]
            if step < 0:
                step += _WRAP
            struct.pack_into(">H", buf, pos, step)
            pos += 2
    if tic is not None:
        if papp > _U16:
            papp = _U16
        struct.pack_into(">BHB", buf, pos, (_BLOCK_TIC << 4) | tic_periods, papp, tariff)
        pos += TIC_BLOCK_SIZE
        for j in range(tic_periods):
            struct.pack_into(">I", buf, pos, index_wh[j])
            pos += 4
    return pos


def encode_alarm_into(buf, alarm, raised, channel, status, seq, value):
    """Write an alarm frame (11 bytes) into buf, return its length. alarm: the status bit
    number the alarm concerns (0..15); value: alarm-specific u32 (see the spec)."""
    _int("alarm", alarm, 0, 15)
    _bool("raised", raised)
    _int("channel", channel, 0, MAX_CHANNEL)
    _int("status", status, 0, _U16)
    _int("seq", seq, 0, _U16)
    _int("value", value, 0, _U32)
    if len(buf) < ALARM_SIZE:
        _fail("buf", "needs %d bytes, has %d" % (ALARM_SIZE, len(buf)))
    event = (0x80 if raised else 0) | channel
    struct.pack_into(
        ">BBBHHI", buf, 0, (VERSION << 4) | FPORT_ALARM, alarm, event, status, seq, value
    )
    return ALARM_SIZE


def encode_status_into(
    buf,
    trigger,
    firmware,
    status,
    seq,
    interval_s,
    history,
    dr,
    adr,
    confirmed,
    battery_mv,
    tic_mode,
    thresholds=(),
):
    """Write a status frame into buf, return its length.

    trigger, confirmed, tic_mode: codes (indexes into TRIGGERS, CONFIRMED_POLICIES, TIC_MODES);
    firmware: (major, minor, patch); thresholds: sequence of
    (channel, flow_high, no_pulse_h, leak_h), channels ascending.
    """
    _int("trigger", trigger, 0, len(TRIGGERS) - 1)
    if not isinstance(firmware, _SEQUENCES) or len(firmware) != 3:
        _fail("firmware", "expected (major, minor, patch)")
    for i in range(3):
        _int("firmware", firmware[i], 0, 255)
    _int("status", status, 0, _U16)
    _int("seq", seq, 0, _U16)
    _int("interval_s", interval_s, 1, _U16)
    _int("history", history, 0, MAX_DELTAS)
    _int("dr", dr, 0, 15)
    _bool("adr", adr)
    _int("confirmed", confirmed, 0, len(CONFIRMED_POLICIES) - 1)
    _int("battery_mv", battery_mv, 0, _U16)
    _int("tic_mode", tic_mode, 0, len(TIC_MODES) - 1)
    if not isinstance(thresholds, _SEQUENCES):
        _fail("thresholds", "expected a list of (channel, flow_high, no_pulse_h, leak_h)")
    count = len(thresholds)
    if count > MAX_CHANNEL + 1:
        _fail("thresholds", "expected at most %d channels, got %d" % (MAX_CHANNEL + 1, count))
    size = STATUS_HEADER_SIZE + THRESHOLD_SIZE * count
    if len(buf) < size:
        _fail("buf", "needs %d bytes, has %d" % (size, len(buf)))
    radio = dr | (0x10 if adr else 0) | (confirmed << 5)
    struct.pack_into(
        ">BBBBB",
        buf,
        0,
        (VERSION << 4) | FPORT_STATUS,
        trigger,
        firmware[0],
        firmware[1],
        firmware[2],
    )
    struct.pack_into(
        ">HHHBBHBB", buf, 5, status, seq, interval_s, history, radio, battery_mv, tic_mode, count
    )
    pos = STATUS_HEADER_SIZE
    last = -1
    for i in range(count):
        entry = thresholds[i]
        if not isinstance(entry, _SEQUENCES) or len(entry) != 4:
            _fail("thresholds[%d]" % i, "expected (channel, flow_high, no_pulse_h, leak_h)")
        channel = entry[0]
        if _bad(channel, 0, MAX_CHANNEL) or channel <= last:
            _int("thresholds[%d].channel" % i, channel, 0, MAX_CHANNEL)
            _fail("thresholds[%d].channel" % i, "channels must be ascending and distinct")
        last = channel
        for j in range(1, 4):
            if _bad(entry[j], 0, _U16):
                _int("thresholds[%d].%s" % (i, _THRESHOLD_NAMES[j]), entry[j], 0, _U16)
        struct.pack_into(">BHHH", buf, pos, channel, entry[1], entry[2], entry[3])
        pos += THRESHOLD_SIZE
    return pos


def encode_report(seq, interval_s, channels=(), status=0, tic=None, max_size=0, history=MAX_DELTAS):
    """encode_report_into with a fresh buffer: the report as bytes (see encode_report_into)."""
    if not max_size:
        max_size = REPORT_HEADER_SIZE + len(channels) * (PULSE_BLOCK_SIZE + 2 * MAX_DELTAS)
        max_size += TIC_BLOCK_SIZE + 4 * MAX_TIC_PERIODS
    buf = bytearray(max_size)
    return bytes(
        buf[: encode_report_into(buf, seq, interval_s, channels, status, tic, max_size, history)]
    )


# ---------------------------------------------------------------- decoding


def _header(fport, data):
    if not isinstance(data, (bytes, bytearray, memoryview)):
        _fail("data", "expected bytes, got %s" % type(data).__name__)
    if len(data) == 0:
        _fail("header", "empty frame")
    version = data[0] >> 4
    kind = data[0] & 0x0F
    if version != VERSION:
        _fail("version", "unsupported version %d (this codec knows %d)" % (version, VERSION))
    if kind not in KINDS:
        _fail("kind", "unknown frame kind %d" % kind)
    if fport is not None:
        if type(fport) is not int or fport < 1 or fport > 223:
            _fail("fport", "expected an application port 1..223, got %s" % _short(fport))
        if fport != kind:
            _fail(
                "fport",
                "port %d does not carry a %s frame (it goes on port %d)"
                % (fport, KINDS[kind], kind),
            )
    return kind


def _need(data, pos, size, field):
    if pos + size > len(data):
        _fail(
            field,
            "frame ends at byte %d, %d more bytes needed" % (len(data), pos + size - len(data)),
        )


def _decode_report(data):
    _need(data, 0, REPORT_HEADER_SIZE, "header")
    status, seq, interval_s = struct.unpack_from(">HHH", data, 1)
    if interval_s == 0:
        _fail("interval_s", "expected an integer 1..65535, got 0")
    channels = []
    tic = None
    pos = REPORT_HEADER_SIZE
    last = -1
    while pos < len(data):
        block = data[pos] >> 4
        low = data[pos] & 0x0F
        if tic is not None:
            _fail("tic", "the TIC block must be the last block (byte %d)" % pos)
        if block == _BLOCK_PULSE:
            field = "channels[%d]" % len(channels)
            if low <= last:
                _fail(field + ".channel", "channels must be ascending and distinct (byte %d)" % pos)
            last = low
            _need(data, pos, PULSE_BLOCK_SIZE, field)
            count, index = struct.unpack_from(">BI", data, pos + 1)
            pos += PULSE_BLOCK_SIZE
            _need(data, pos, 2 * count, field + ".deltas")
            readings = [{"seq": seq, "index": index}]
            for j in range(count):
                index = (index - struct.unpack_from(">H", data, pos)[0]) & _U32
                pos += 2
                readings.append({"seq": (seq - j - 1) & _U16, "index": index})
            channels.append({"channel": low, "readings": readings})
        elif block == _BLOCK_TIC:
            _need(data, pos, TIC_BLOCK_SIZE + 4 * low, "tic")
            papp, tariff = struct.unpack_from(">HB", data, pos + 1)
            if tariff > low:
                _fail(
                    "tic.tariff", "expected 0..%d (the number of indexes), got %d" % (low, tariff)
                )
            pos += TIC_BLOCK_SIZE
            index_wh = []
            for j in range(low):
                index_wh.append(struct.unpack_from(">I", data, pos)[0])
                pos += 4
            tic = {"papp_va": papp, "tariff": tariff, "index_wh": index_wh}
        else:
            _fail("block", "unknown block type %d at byte %d" % (block, pos))
    return {
        "kind": "report",
        "version": VERSION,
        "status": flags_to_names(status),
        "seq": seq,
        "interval_s": interval_s,
        "channels": channels,
        "tic": tic,
    }


def _decode_alarm(data):
    if len(data) != ALARM_SIZE:
        _fail("alarm", "expected %d bytes, got %d" % (ALARM_SIZE, len(data)))
    alarm, event, status, seq, value = struct.unpack_from(">BBHHI", data, 1)
    if alarm > 15:
        _fail("alarm", "unknown alarm code %d" % alarm)
    if event & 0x70:
        _fail("raised", "reserved bits 4..6 of the event byte are set")
    return {
        "kind": "alarm",
        "version": VERSION,
        "alarm": flag_name(alarm),
        "raised": bool(event & 0x80),
        "channel": event & 0x0F,
        "status": flags_to_names(status),
        "seq": seq,
        "value": value,
    }


def _decode_status(data):
    _need(data, 0, STATUS_HEADER_SIZE, "status")
    (
        trigger,
        major,
        minor,
        patch,
        status,
        seq,
        interval_s,
        history,
        radio,
        battery_mv,
        tic_mode,
        count,
    ) = struct.unpack_from(">BBBBHHHBBHBB", data, 1)
    if trigger >= len(TRIGGERS):
        _fail("trigger", "unknown trigger code %d" % trigger)
    if interval_s == 0:
        _fail("interval_s", "expected an integer 1..65535, got 0")
    if radio & 0x80:
        _fail("dr", "reserved bit 7 of the radio byte is set")
    confirmed = (radio >> 5) & 0x03
    if confirmed >= len(CONFIRMED_POLICIES):
        _fail("confirmed", "unknown policy code %d" % confirmed)
    if tic_mode >= len(TIC_MODES):
        _fail("tic_mode", "unknown TIC mode code %d" % tic_mode)
    if count > MAX_CHANNEL + 1:
        _fail("thresholds", "expected at most %d channels, got %d" % (MAX_CHANNEL + 1, count))
    if len(data) != STATUS_HEADER_SIZE + THRESHOLD_SIZE * count:
        _fail(
            "thresholds",
            "expected %d bytes for %d channels, got %d"
            % (STATUS_HEADER_SIZE + THRESHOLD_SIZE * count, count, len(data)),
        )
    thresholds = []
    pos = STATUS_HEADER_SIZE
    last = -1
    for i in range(count):
        channel, flow_high, no_pulse_h, leak_h = struct.unpack_from(">BHHH", data, pos)
        if channel > MAX_CHANNEL or channel <= last:
            _fail(
                "thresholds[%d].channel" % i,
                "expected ascending distinct channels 0..15, got %d" % channel,
            )
        last = channel
        thresholds.append(
            {"channel": channel, "flow_high": flow_high, "no_pulse_h": no_pulse_h, "leak_h": leak_h}
        )
        pos += THRESHOLD_SIZE
    return {
        "kind": "status",
        "version": VERSION,
        "trigger": TRIGGERS[trigger],
        "firmware": "%d.%d.%d" % (major, minor, patch),
        "status": flags_to_names(status),
        "seq": seq,
        "interval_s": interval_s,
        "history": history,
        "dr": radio & 0x0F,
        "adr": bool(radio & 0x10),
        "confirmed": CONFIRMED_POLICIES[confirmed],
        "battery_mv": battery_mv,
        "tic_mode": TIC_MODES[tic_mode],
        "thresholds": thresholds,
    }


def _decode_commands(data):
    commands = []
    pos = 1
    if len(data) < 2:
        _fail("commands", "expected at least one command")
    while pos < len(data):
        field = "commands[%d]" % len(commands)
        opcode = data[pos]
        if opcode not in COMMANDS:
            _fail(field + ".cmd", "unknown opcode 0x%02x at byte %d" % (opcode, pos))
        name, size = COMMANDS[opcode]
        _need(data, pos, size, field)
        cmd = {"cmd": name}
        if opcode == CMD_SET_INTERVAL:
            cmd["interval_s"] = struct.unpack_from(">H", data, pos + 1)[0]
            if cmd["interval_s"] == 0:
                _fail(field + ".interval_s", "expected an integer 1..65535, got 0")
        elif opcode == CMD_SET_HISTORY:
            cmd["history"] = data[pos + 1]
        elif opcode == CMD_PRESET_COUNTER:
            channel, index = struct.unpack_from(">BI", data, pos + 1)
            if channel > MAX_CHANNEL:
                _fail(field + ".channel", "expected an integer 0..15, got %d" % channel)
            cmd["channel"] = channel
            cmd["index"] = index
        elif opcode == CMD_SET_THRESHOLDS:
            channel, flow_high, no_pulse_h, leak_h = struct.unpack_from(">BHHH", data, pos + 1)
            if channel > MAX_CHANNEL:
                _fail(field + ".channel", "expected an integer 0..15, got %d" % channel)
            cmd["channel"] = channel
            cmd["flow_high"] = flow_high
            cmd["no_pulse_h"] = no_pulse_h
            cmd["leak_h"] = leak_h
        elif opcode == CMD_SET_DR:
            value = data[pos + 1]
            if value & 0xE0:
                _fail(field + ".dr", "reserved bits 5..7 are set")
            cmd["dr"] = value & 0x0F
            cmd["adr"] = bool(value & 0x10)
        elif opcode == CMD_SET_CONFIRMED:
            if data[pos + 1] >= len(CONFIRMED_POLICIES):
                _fail(field + ".confirmed", "unknown policy code %d" % data[pos + 1])
            cmd["confirmed"] = CONFIRMED_POLICIES[data[pos + 1]]
        commands.append(cmd)
        pos += size
    return {"kind": "command", "version": VERSION, "commands": commands}


def decode(fport, data):
    """Decode a frame into a JSON-able dict (see the spec); fport None: taken from byte 0."""
    kind = _header(fport, data)
    if kind == FPORT_REPORT:
        return _decode_report(data)
    if kind == FPORT_ALARM:
        return _decode_alarm(data)
    if kind == FPORT_STATUS:
        return _decode_status(data)
    return _decode_commands(data)


# ---------------------------------------------------------------- encoding from dicts

_FIELDS = {
    "report": ("kind", "version", "status", "seq", "interval_s", "channels", "tic"),
    "alarm": ("kind", "version", "alarm", "raised", "channel", "status", "seq", "value"),
    "status": (
        "kind",
        "version",
        "trigger",
        "firmware",
        "status",
        "seq",
        "interval_s",
        "history",
        "dr",
        "adr",
        "confirmed",
        "battery_mv",
        "tic_mode",
        "thresholds",
    ),
    "command": ("kind", "version", "commands"),
}

_COMMAND_FIELDS = {
    "set_interval": ("interval_s",),
    "set_history": ("history",),
    "preset_counter": ("channel", "index"),
    "set_thresholds": ("channel", "flow_high", "no_pulse_h", "leak_h"),
    "set_dr": ("dr", "adr"),
    "set_confirmed": ("confirmed",),
    "get_config": (),
    "rejoin": (),
}


def _dict(field, value, allowed, required):
    if not isinstance(value, dict):
        _fail(field, "expected an object, got %s" % _short(value))
    for key in value:
        if key not in allowed:
            name = _short(key)
            if type(key) is str and 0 < len(key) <= 40:
                name = key
                for ch in key:
                    if not (ch.isalpha() or ch.isdigit() or ch == "_") or ord(ch) > 0x7E:
                        name = _short(key)
                        break
            _fail((field + "." if field else "") + name, "unknown field")
    for key in required:
        if key not in value:
            _fail((field + "." if field else "") + key, "missing")
    return value


def _firmware(value):
    if type(value) is not str:
        _fail("firmware", "expected 'major.minor.patch', got %s" % _short(value))
    parts = value.split(".")
    if len(parts) != 3:
        _fail("firmware", "expected 'major.minor.patch', got %s" % _short(value))
    numbers = []
    for part in parts:
        if not part or len(part) > 3 or not part.isdigit() or (len(part) > 1 and part[0] == "0"):
            _fail(
                "firmware",
                "expected 'major.minor.patch' with numbers 0..255, got %s" % _short(value),
            )
        number = int(part)
        if number > 255:
            _fail("firmware", "expected numbers 0..255, got %s" % _short(value))
        numbers.append(number)
    return numbers


def _encode_report(d):
    _dict("", d, _FIELDS["report"], ("seq", "interval_s"))
    seq = _int("seq", d["seq"], 0, _U16)
    interval_s = _int("interval_s", d["interval_s"], 1, _U16)
    status = names_to_flags("status", d.get("status", []))
    raw = _list("channels", d.get("channels", []))
    channels = []
    depth = 0
    for i in range(len(raw)):
        field = "channels[%d]" % i
        entry = _dict(field, raw[i], ("channel", "readings"), ("channel", "readings"))
        readings = _list(field + ".readings", entry["readings"])
        if not readings:
            _fail(field + ".readings", "expected at least the newest reading")
        if len(readings) > MAX_DELTAS + 1:
            _fail(
                field + ".readings",
                "expected at most %d readings, got %d" % (MAX_DELTAS + 1, len(readings)),
            )
        indexes = []
        for j in range(len(readings)):
            rfield = "%s.readings[%d]" % (field, j)
            reading = _dict(rfield, readings[j], ("seq", "index"), ("index",))
            if "seq" in reading and reading["seq"] != (seq - j) & _U16:
                _fail(
                    rfield + ".seq",
                    "expected %d (frame seq - %d), got %s"
                    % ((seq - j) & _U16, j, _short(reading["seq"])),
                )
            index = _int(rfield + ".index", reading["index"], 0, _U32)
            if j and (indexes[-1] - index) & _U32 > _U16:
                _fail(
                    rfield + ".index",
                    "the step to the newer reading is %d, at most 65535 fits"
                    % ((indexes[-1] - index) & _U32),
                )
            indexes.append(index)
        channels.append((entry["channel"], indexes))
        if len(indexes) - 1 > depth:
            depth = len(indexes) - 1
    tic = d.get("tic")
    tic_periods = None
    if tic is not None:
        _dict("tic", tic, ("papp_va", "tariff", "index_wh"), ("papp_va", "tariff", "index_wh"))
        index_wh = _list("tic.index_wh", tic["index_wh"])
        tic_periods = len(index_wh)
        tic = (_int("tic.papp_va", tic["papp_va"], 0, _U16), tic["tariff"], index_wh)
    size = report_size([len(c[1]) - 1 for c in channels], tic_periods)
    buf = bytearray(size)
    # Every channel keeps its whole history: the buffer is exactly the size of the report.
    n = encode_report_into(buf, seq, interval_s, channels, status, tic, size, MAX_DELTAS)
    if n != size:
        _fail("channels", "readings lost in encoding")  # pragma: no cover - guarded above
    return bytes(buf)


def _encode_alarm(d):
    _dict("", d, _FIELDS["alarm"], ("alarm", "raised", "seq", "value"))
    buf = bytearray(ALARM_SIZE)
    encode_alarm_into(
        buf,
        flag_code("alarm", d["alarm"]),
        d["raised"],
        d.get("channel", 0),
        names_to_flags("status", d.get("status", [])),
        d["seq"],
        d["value"],
    )
    return bytes(buf)


def _encode_status(d):
    required = (
        "trigger",
        "firmware",
        "seq",
        "interval_s",
        "history",
        "dr",
        "adr",
        "confirmed",
        "battery_mv",
        "tic_mode",
    )
    _dict("", d, _FIELDS["status"], required)
    thresholds = []
    raw = _list("thresholds", d.get("thresholds", []))
    for i in range(len(raw)):
        entry = _dict("thresholds[%d]" % i, raw[i], _THRESHOLD_NAMES, _THRESHOLD_NAMES)
        thresholds.append(
            (entry["channel"], entry["flow_high"], entry["no_pulse_h"], entry["leak_h"])
        )
    buf = bytearray(STATUS_HEADER_SIZE + THRESHOLD_SIZE * len(thresholds))
    encode_status_into(
        buf,
        _name_code("trigger", d["trigger"], TRIGGERS),
        _firmware(d["firmware"]),
        names_to_flags("status", d.get("status", [])),
        d["seq"],
        d["interval_s"],
        d["history"],
        d["dr"],
        d["adr"],
        _name_code("confirmed", d["confirmed"], CONFIRMED_POLICIES),
        d["battery_mv"],
        _name_code("tic_mode", d["tic_mode"], TIC_MODES),
        thresholds,
    )
    return bytes(buf)


def encode_commands(commands):
    """Downlink commands (list of dicts as decode prints them) -> FPort 10 frame bytes."""
    commands = _list("commands", commands)
    if not commands:
        _fail("commands", "expected at least one command")
    out = bytearray([(VERSION << 4) | FPORT_COMMAND])
    for i in range(len(commands)):
        field = "commands[%d]" % i
        cmd = commands[i]
        if not isinstance(cmd, dict):
            _fail(field, "expected an object, got %s" % _short(cmd))
        name = cmd.get("cmd")
        if type(name) is not str or name not in _COMMAND_FIELDS:
            _fail(
                field + ".cmd",
                "expected one of %s, got %s" % ("|".join(sorted(_COMMAND_FIELDS)), _short(name)),
            )
        args = _COMMAND_FIELDS[name]
        _dict(field, cmd, ("cmd",) + args, args)
        if name == "set_interval":
            out += struct.pack(
                ">BH", CMD_SET_INTERVAL, _int(field + ".interval_s", cmd["interval_s"], 1, _U16)
            )
        elif name == "set_history":
            out += struct.pack(
                ">BB", CMD_SET_HISTORY, _int(field + ".history", cmd["history"], 0, MAX_DELTAS)
            )
        elif name == "preset_counter":
            out += struct.pack(
                ">BBI",
                CMD_PRESET_COUNTER,
                _int(field + ".channel", cmd["channel"], 0, MAX_CHANNEL),
                _int(field + ".index", cmd["index"], 0, _U32),
            )
        elif name == "set_thresholds":
            out += struct.pack(
                ">BBHHH",
                CMD_SET_THRESHOLDS,
                _int(field + ".channel", cmd["channel"], 0, MAX_CHANNEL),
                _int(field + ".flow_high", cmd["flow_high"], 0, _U16),
                _int(field + ".no_pulse_h", cmd["no_pulse_h"], 0, _U16),
                _int(field + ".leak_h", cmd["leak_h"], 0, _U16),
            )
        elif name == "set_dr":
            dr = _int(field + ".dr", cmd["dr"], 0, 15)
            adr = _bool(field + ".adr", cmd["adr"])
            out += struct.pack(">BB", CMD_SET_DR, dr | (0x10 if adr else 0))
        elif name == "set_confirmed":
            code = _name_code(field + ".confirmed", cmd["confirmed"], CONFIRMED_POLICIES)
            out += struct.pack(">BB", CMD_SET_CONFIRMED, code)
        elif name == "get_config":
            out.append(CMD_GET_CONFIG)
        else:
            out.append(CMD_REJOIN)
    return bytes(out)


def encode(d):
    """Encode a dict shaped like decode's output; returns (fport, bytes)."""
    if not isinstance(d, dict):
        _fail("frame", "expected an object, got %s" % _short(d))
    kind = d.get("kind")
    if type(kind) is not str or kind not in _FIELDS:
        _fail("kind", "expected report|alarm|status|command, got %s" % _short(kind))
    if d.get("version", VERSION) != VERSION or type(d.get("version", VERSION)) is not int:
        _fail("version", "expected %d, got %s" % (VERSION, _short(d.get("version"))))
    if kind == "report":
        return FPORT_REPORT, _encode_report(d)
    if kind == "alarm":
        return FPORT_ALARM, _encode_alarm(d)
    if kind == "status":
        return FPORT_STATUS, _encode_status(d)
    _dict("", d, _FIELDS["command"], ("commands",))
    return FPORT_COMMAND, encode_commands(d["commands"])
