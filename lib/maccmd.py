"""LoRaWAN 1.0.x MAC commands for EU868 Class A: decode and encode FOpts / FPort-0 payloads.

A command is a dict: ``{'cid': 3, 'name': 'LinkADRReq', <fields>}``. The CID's meaning depends
on the direction: uplink (device -> server) carries answers (and LinkCheckReq), downlink carries
requests (and LinkCheckAns). Frequencies are integer Hz (the wire has 24 bits x 100 Hz).
Field names and ranges per command:

  LinkCheckReq (up, 0x02)      -
  LinkCheckAns (down, 0x02)    margin 0..255 (dB above demodulation floor), gw_cnt 0..255
  LinkADRReq (down, 0x03)      data_rate 0..15, tx_power 0..15, ch_mask 0..0xFFFF (bit i =
                               channel i), ch_mask_cntl 0..7, nb_trans 0..15 (0 = keep)
  LinkADRAns (up, 0x03)        power_ack, data_rate_ack, channel_mask_ack (bools)
  DutyCycleReq (down, 0x04)    max_duty_cycle 0..15 (aggregated duty cycle 1 / 2**n)
  DutyCycleAns (up, 0x04)      -
  RXParamSetupReq (down, 0x05) rx1_dr_offset 0..7, rx2_data_rate 0..15, frequency (Hz)
  RXParamSetupAns (up, 0x05)   rx1_dr_offset_ack, rx2_data_rate_ack, channel_ack (bools)
  DevStatusReq (down, 0x06)    -
  DevStatusAns (up, 0x06)      battery 0..255 (0 external power, 255 unknown), margin -32..31 dB
  NewChannelReq (down, 0x07)   ch_index 0..255, frequency (Hz, 0 disables), min_dr, max_dr 0..15
  NewChannelAns (up, 0x07)     data_rate_range_ok, channel_frequency_ok (bools)
  RXTimingSetupReq (down, 0x08) delay 0..15 (seconds to RX1; 0 means 1)
  RXTimingSetupAns (up, 0x08)  -
  TxParamSetupReq (down, 0x09) downlink_dwell_time, uplink_dwell_time (bools), max_eirp 0..15
                               (index into MAX_EIRP_DBM)
  TxParamSetupAns (up, 0x09)   -
  DlChannelReq (down, 0x0A)    ch_index 0..255, frequency (Hz)
  DlChannelAns (up, 0x0A)      uplink_frequency_exists, channel_frequency_ok (bools)

Errors: ``errors.MacCommandError`` (unknown CID, truncated command, bad field).
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from errors import MacCommandError

LINK_CHECK = const(0x02)
LINK_ADR = const(0x03)
DUTY_CYCLE = const(0x04)
RX_PARAM_SETUP = const(0x05)
DEV_STATUS = const(0x06)
NEW_CHANNEL = const(0x07)
RX_TIMING_SETUP = const(0x08)
TX_PARAM_SETUP = const(0x09)
DL_CHANNEL = const(0x0A)

# CID -> (uplink name, uplink payload length, downlink name, downlink payload length)
COMMANDS = {
    LINK_CHECK: ("LinkCheckReq", 0, "LinkCheckAns", 2),
    LINK_ADR: ("LinkADRAns", 1, "LinkADRReq", 4),
    DUTY_CYCLE: ("DutyCycleAns", 0, "DutyCycleReq", 1),
    RX_PARAM_SETUP: ("RXParamSetupAns", 1, "RXParamSetupReq", 4),
    DEV_STATUS: ("DevStatusAns", 2, "DevStatusReq", 0),
    NEW_CHANNEL: ("NewChannelAns", 1, "NewChannelReq", 5),
    RX_TIMING_SETUP: ("RXTimingSetupAns", 0, "RXTimingSetupReq", 1),
    TX_PARAM_SETUP: ("TxParamSetupAns", 0, "TxParamSetupReq", 1),
    DL_CHANNEL: ("DlChannelAns", 1, "DlChannelReq", 4),
}

MAX_EIRP_DBM = (8, 10, 12, 13, 14, 16, 18, 20, 21, 24, 26, 27, 29, 30, 33, 36)

_STATUS_BITS = {
    "LinkADRAns": ("channel_mask_ack", "data_rate_ack", "power_ack"),
    "RXParamSetupAns": ("channel_ack", "rx2_data_rate_ack", "rx1_dr_offset_ack"),
    "NewChannelAns": ("channel_frequency_ok", "data_rate_range_ok"),
    "DlChannelAns": ("channel_frequency_ok", "uplink_frequency_exists"),
}


def _freq_from(data, i):
    return (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16)) * 100


def decode(data, uplink):
    """Decode concatenated MAC commands -> list of dicts (see the module docstring).

    data: FOpts or an FPort-0 FRMPayload (plaintext). uplink: True for device -> server.
    Raises MacCommandError on an unknown CID or a truncated command.
    """
    if not isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data)
        except (TypeError, ValueError):
            raise MacCommandError("mac commands: expected bytes")
    out = []
    n = len(data)
    i = 0
    while i < n:
        cid = data[i]
        entry = COMMANDS.get(cid)
        if entry is None:
            raise MacCommandError(
                "CID 0x%02x: unknown MAC command (%s)" % (cid, "uplink" if uplink else "downlink")
            )
        if uplink:
            name = entry[0]
            size = entry[1]
        else:
            name = entry[2]
            size = entry[3]
        i += 1
        if i + size > n:
            raise MacCommandError("%s: truncated, needs %d bytes, %d left" % (name, size, n - i))
        cmd = {"cid": cid, "name": name}
        _decode_fields(name, data, i, cmd)
        out.append(cmd)
        i += size
    return out


def _decode_fields(name, d, i, cmd):
    bits = _STATUS_BITS.get(name)
    if bits is not None:
        status = d[i]
        for bit in range(len(bits)):
            cmd[bits[bit]] = bool(status & (1 << bit))
    elif name == "LinkCheckAns":
        cmd["margin"] = d[i]
        cmd["gw_cnt"] = d[i + 1]
    elif name == "LinkADRReq":
        cmd["data_rate"] = d[i] >> 4
        cmd["tx_power"] = d[i] & 0x0F
        cmd["ch_mask"] = d[i + 1] | (d[i + 2] << 8)
        cmd["ch_mask_cntl"] = (d[i + 3] >> 4) & 0x07
        cmd["nb_trans"] = d[i + 3] & 0x0F
    elif name == "DutyCycleReq":
        cmd["max_duty_cycle"] = d[i] & 0x0F
    elif name == "RXParamSetupReq":
        cmd["rx1_dr_offset"] = (d[i] >> 4) & 0x07
        cmd["rx2_data_rate"] = d[i] & 0x0F
        cmd["frequency"] = _freq_from(d, i + 1)
    elif name == "DevStatusAns":
        cmd["battery"] = d[i]
        margin = d[i + 1] & 0x3F
        if margin & 0x20:
            margin -= 64
        cmd["margin"] = margin
    elif name == "NewChannelReq":
        cmd["ch_index"] = d[i]
        cmd["frequency"] = _freq_from(d, i + 1)
        cmd["max_dr"] = d[i + 4] >> 4
        cmd["min_dr"] = d[i + 4] & 0x0F
    elif name == "RXTimingSetupReq":
        cmd["delay"] = d[i] & 0x0F
    elif name == "TxParamSetupReq":
        cmd["downlink_dwell_time"] = bool(d[i] & 0x20)
        cmd["uplink_dwell_time"] = bool(d[i] & 0x10)
        cmd["max_eirp"] = d[i] & 0x0F
    elif name == "DlChannelReq":
        cmd["ch_index"] = d[i]
        cmd["frequency"] = _freq_from(d, i + 1)


def _field(cmd, name, field, minimum, maximum):
    value = cmd.get(field)
    if value is None:
        raise MacCommandError("%s.%s: missing" % (name, field))
    if not isinstance(value, int) or value < minimum or value > maximum:
        raise MacCommandError(
            "%s.%s: expected an int %d..%d, got %r" % (name, field, minimum, maximum, value)
        )
    return value


def _freq_bytes(cmd, name):
    hz = _field(cmd, name, "frequency", 0, 0xFFFFFF * 100)
    if hz % 100:
        raise MacCommandError("%s.frequency: expected a multiple of 100 Hz, got %d" % (name, hz))
    step = hz // 100
    return bytes((step & 0xFF, (step >> 8) & 0xFF, step >> 16))


def _lookup(cmd, uplink):
    if not isinstance(cmd, dict):
        raise MacCommandError("mac command: expected a dict, got %s" % type(cmd).__name__)
    name = cmd.get("name")
    cid = cmd.get("cid")
    if name is None:
        entry = COMMANDS.get(cid)
        if entry is None:
            raise MacCommandError("cid: unknown MAC command %r" % (cid,))
        return cid, entry[0] if uplink else entry[2]
    for known_cid in COMMANDS:
        entry = COMMANDS[known_cid]
        if name == (entry[0] if uplink else entry[2]):
            if cid is not None and cid != known_cid:
                raise MacCommandError("%s: cid %r does not match 0x%02x" % (name, cid, known_cid))
            return known_cid, name
    raise MacCommandError(
        "%s: not a MAC command in the %s direction" % (name, "uplink" if uplink else "downlink")
    )


def encode(commands, uplink):
    """Encode a list of command dicts (each with 'name' or 'cid', plus its fields) -> bytes.

    uplink: True for device -> server (answers), False for server -> device (requests).
    Boolean fields default to False; every other field is required. The caller checks the
    15-byte FOpts limit (lorawan.build_data does).
    """
    out = bytearray()
    for cmd in commands:
        cid, name = _lookup(cmd, uplink)
        out.append(cid)
        bits = _STATUS_BITS.get(name)
        if bits is not None:
            status = 0
            for bit in range(len(bits)):
                if cmd.get(bits[bit]):
                    status |= 1 << bit
            out.append(status)
        elif name == "LinkCheckAns":
            out.append(_field(cmd, name, "margin", 0, 255))
            out.append(_field(cmd, name, "gw_cnt", 0, 255))
        elif name == "LinkADRReq":
            out.append(
                (_field(cmd, name, "data_rate", 0, 15) << 4) | _field(cmd, name, "tx_power", 0, 15)
            )
            mask = _field(cmd, name, "ch_mask", 0, 0xFFFF)
            out.append(mask & 0xFF)
            out.append(mask >> 8)
            out.append(
                (_field(cmd, name, "ch_mask_cntl", 0, 7) << 4)
                | _field(cmd, name, "nb_trans", 0, 15)
            )
        elif name == "DutyCycleReq":
            out.append(_field(cmd, name, "max_duty_cycle", 0, 15))
        elif name == "RXParamSetupReq":
            out.append(
                (_field(cmd, name, "rx1_dr_offset", 0, 7) << 4)
                | _field(cmd, name, "rx2_data_rate", 0, 15)
            )
            out.extend(_freq_bytes(cmd, name))
        elif name == "DevStatusAns":
            out.append(_field(cmd, name, "battery", 0, 255))
            out.append(_field(cmd, name, "margin", -32, 31) & 0x3F)
        elif name == "NewChannelReq":
            out.append(_field(cmd, name, "ch_index", 0, 255))
            out.extend(_freq_bytes(cmd, name))
            out.append(
                (_field(cmd, name, "max_dr", 0, 15) << 4) | _field(cmd, name, "min_dr", 0, 15)
            )
        elif name == "RXTimingSetupReq":
            out.append(_field(cmd, name, "delay", 0, 15))
        elif name == "TxParamSetupReq":
            value = _field(cmd, name, "max_eirp", 0, 15)
            if cmd.get("downlink_dwell_time"):
                value |= 0x20
            if cmd.get("uplink_dwell_time"):
                value |= 0x10
            out.append(value)
        elif name == "DlChannelReq":
            out.append(_field(cmd, name, "ch_index", 0, 255))
            out.extend(_freq_bytes(cmd, name))
    return bytes(out)
