// ThingsBoard uplink data converter for openenergy sensors (JavaScript converter).
//
// Paste this whole file as the converter's "Decoder" function body (Integrations center >
// Data converters > Add > Uplink, type JavaScript). It takes the uplink event JSON of ChirpStack
// v4 (HTTP or MQTT integration, with or without a device-profile codec) or of The Things Stack
// (uplink_message), decodes the FRMPayload with the openenergy codec and returns
// {deviceName, deviceType, attributes, telemetry}:
// - report: one telemetry entry per reading, at the time of its interval (the uplink time minus
//   ((seq - s) mod 65536) * interval_s), keys ch<N>_index; the newest entry also carries seq,
//   the status flags (low_battery, leak, ... as booleans) and the TIC values (tic_papp_va,
//   tic_tariff, tic_index_wh_<p>). Catch-up reports (status "backlog") go out as one entry
//   with backlog_channels (JSON text), to be placed by seq in a rule chain;
// - alarm: alarm, alarm_raised, alarm_channel, alarm_value and the status flags;
// - status: battery_mv as telemetry; firmware, interval_s, history, dr, adr, confirmed,
//   tic_mode, thresholds (JSON text) as attributes;
// - a frame the codec rejects: telemetry decode_error with the codec's one-line message.
//
// The section between the BEGIN and END markers is a copy of tools/codecs/openenergy.js
// (tests/host/test_js_codec.py checks that they are the same).

// ---- BEGIN openenergy codec core ----
var OE_VERSION = 1;
var OE_KINDS = { 1: "report", 2: "alarm", 3: "status", 10: "command" };
var OE_FLAG_NAMES = ["low_battery", "no_pulse", "leak", "flow_high", "tamper", "tic_checksum",
  "tic_missing", "counter_overflow", "backlog", "rebooted"];
var OE_TRIGGERS = ["boot", "request", "changed", "rejected"];
var OE_CONFIRMED = ["never", "alarms", "always"];
var OE_TIC_MODES = ["none", "historique", "standard"];
// opcode -> [name, total size with the opcode, argument fields]
var OE_COMMANDS = {
  1: ["set_interval", 3, ["interval_s"]],
  2: ["set_history", 2, ["history"]],
  3: ["preset_counter", 6, ["channel", "index"]],
  4: ["set_thresholds", 8, ["channel", "flow_high", "no_pulse_h", "leak_h"]],
  5: ["set_dr", 2, ["dr", "adr"]],
  6: ["set_confirmed", 2, ["confirmed"]],
  7: ["get_config", 1, []],
  8: ["rejoin", 1, []]
};
var OE_U16 = 0xFFFF;
var OE_U32 = 4294967295;

function OePayloadError(message) {
  this.name = "PayloadError";
  this.message = message;
}

function oeFail(field, text) {
  throw new OePayloadError(field + ": " + text);
}

// Python's repr() for the simple values an error message shows (str, int, float, bool, None).
function oeShort(value) {
  var text;
  if (value === null || value === undefined) {
    text = "None";
  } else if (value === true) {
    text = "True";
  } else if (value === false) {
    text = "False";
  } else if (typeof value === "string") {
    text = value.indexOf("'") >= 0 && value.indexOf('"') < 0 ? '"' + value + '"' : "'" + value + "'";
  } else if (typeof value === "number") {
    text = String(value);
  } else {
    text = JSON.stringify(value);
  }
  if (text.length > 40) {
    text = text.substring(0, 37) + "...";
  }
  return text;
}

function oeHex2(n) {
  return (n < 16 ? "0" : "") + n.toString(16);
}

function oeU16(b, pos) {
  return (b[pos] << 8) | b[pos + 1];
}

function oeU32(b, pos) {
  return b[pos] * 16777216 + ((b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3]);
}

function oeFlagName(bit) {
  return bit < OE_FLAG_NAMES.length ? OE_FLAG_NAMES[bit] : "bit" + bit;
}

function oeFlagsToNames(flags) {
  var names = [];
  for (var bit = 0; bit < 16; bit++) {
    if (flags & (1 << bit)) {
      names.push(oeFlagName(bit));
    }
  }
  return names;
}

function oeNeed(b, pos, size, field) {
  if (pos + size > b.length) {
    oeFail(field, "frame ends at byte " + b.length + ", " + (pos + size - b.length) +
      " more bytes needed");
  }
}

function oeBytes(bytes) {
  if (bytes === null || bytes === undefined || typeof bytes.length !== "number") {
    oeFail("data", "expected bytes, got " + (bytes === null ? "null" : typeof bytes));
  }
  var out = [];
  for (var i = 0; i < bytes.length; i++) {
    var v = bytes[i];
    if (typeof v !== "number" || v % 1 !== 0 || v < 0 || v > 255) {
      oeFail("data", "expected bytes 0..255, got " + oeShort(v) + " at index " + i);
    }
    out.push(v);
  }
  return out;
}

function oeHeader(fport, b) {
  if (b.length === 0) {
    oeFail("header", "empty frame");
  }
  var version = b[0] >> 4;
  var kind = b[0] & 0x0F;
  if (version !== OE_VERSION) {
    oeFail("version", "unsupported version " + version + " (this codec knows " + OE_VERSION + ")");
  }
  if (!OE_KINDS.hasOwnProperty(kind)) {
    oeFail("kind", "unknown frame kind " + kind);
  }
  if (fport !== null && fport !== undefined) {
    if (typeof fport !== "number" || fport % 1 !== 0 || fport < 1 || fport > 223) {
      oeFail("fport", "expected an application port 1..223, got " + oeShort(fport));
    }
    if (fport !== kind) {
      oeFail("fport", "port " + fport + " does not carry a " + OE_KINDS[kind] +
        " frame (it goes on port " + kind + ")");
    }
  }
  return kind;
}

function oeDecodeReport(b) {
  oeNeed(b, 0, 7, "header");
  var status = oeU16(b, 1);
  var seq = oeU16(b, 3);
  var intervalS = oeU16(b, 5);
  if (intervalS === 0) {
    oeFail("interval_s", "expected an integer 1..65535, got 0");
  }
  var channels = [];
  var tic = null;
  var pos = 7;
  var last = -1;
  while (pos < b.length) {
    var block = b[pos] >> 4;
    var low = b[pos] & 0x0F;
    if (tic !== null) {
      oeFail("tic", "the TIC block must be the last block (byte " + pos + ")");
    }
    if (block === 1) {
      var field = "channels[" + channels.length + "]";
      if (low <= last) {
        oeFail(field + ".channel", "channels must be ascending and distinct (byte " + pos + ")");
      }
      last = low;
      oeNeed(b, pos, 6, field);
      var count = b[pos + 1];
      var index = oeU32(b, pos + 2);
      pos += 6;
      oeNeed(b, pos, 2 * count, field + ".deltas");
      var readings = [{ seq: seq, index: index }];
      for (var j = 0; j < count; j++) {
        index -= oeU16(b, pos);
        if (index < 0) {
          index += 4294967296;
        }
        pos += 2;
        readings.push({ seq: (seq - j - 1) & OE_U16, index: index });
      }
      channels.push({ channel: low, readings: readings });
    } else if (block === 2) {
      oeNeed(b, pos, 4 + 4 * low, "tic");
      var papp = oeU16(b, pos + 1);
      var tariff = b[pos + 3];
      if (tariff > low) {
        oeFail("tic.tariff", "expected 0.." + low + " (the number of indexes), got " + tariff);
      }
      pos += 4;
      var indexWh = [];
      for (var k = 0; k < low; k++) {
        indexWh.push(oeU32(b, pos));
        pos += 4;
      }
      tic = { papp_va: papp, tariff: tariff, index_wh: indexWh };
    } else {
      oeFail("block", "unknown block type " + block + " at byte " + pos);
    }
  }
  return { kind: "report", version: OE_VERSION, status: oeFlagsToNames(status), seq: seq,
    interval_s: intervalS, channels: channels, tic: tic };
}

function oeDecodeAlarm(b) {
  if (b.length !== 11) {
    oeFail("alarm", "expected 11 bytes, got " + b.length);
  }
  var alarm = b[1];
  var event = b[2];
  if (alarm > 15) {
    oeFail("alarm", "unknown alarm code " + alarm);
  }
  if (event & 0x70) {
    oeFail("raised", "reserved bits 4..6 of the event byte are set");
  }
  return { kind: "alarm", version: OE_VERSION, alarm: oeFlagName(alarm), raised: (event & 0x80) !== 0,
    channel: event & 0x0F, status: oeFlagsToNames(oeU16(b, 3)), seq: oeU16(b, 5), value: oeU32(b, 7) };
}

function oeDecodeStatus(b) {
  oeNeed(b, 0, 17, "status");
  var trigger = b[1];
  var intervalS = oeU16(b, 9);
  var radio = b[12];
  var ticMode = b[15];
  var count = b[16];
  if (trigger >= OE_TRIGGERS.length) {
    oeFail("trigger", "unknown trigger code " + trigger);
  }
  if (intervalS === 0) {
    oeFail("interval_s", "expected an integer 1..65535, got 0");
  }
  if (radio & 0x80) {
    oeFail("dr", "reserved bit 7 of the radio byte is set");
  }
  var confirmed = (radio >> 5) & 0x03;
  if (confirmed >= OE_CONFIRMED.length) {
    oeFail("confirmed", "unknown policy code " + confirmed);
  }
  if (ticMode >= OE_TIC_MODES.length) {
    oeFail("tic_mode", "unknown TIC mode code " + ticMode);
  }
  if (count > 16) {
    oeFail("thresholds", "expected at most 16 channels, got " + count);
  }
  if (b.length !== 17 + 7 * count) {
    oeFail("thresholds", "expected " + (17 + 7 * count) + " bytes for " + count +
      " channels, got " + b.length);
  }
  var thresholds = [];
  var last = -1;
  for (var i = 0; i < count; i++) {
    var pos = 17 + 7 * i;
    var channel = b[pos];
    if (channel > 15 || channel <= last) {
      oeFail("thresholds[" + i + "].channel", "expected ascending distinct channels 0..15, got " +
        channel);
    }
    last = channel;
    thresholds.push({ channel: channel, flow_high: oeU16(b, pos + 1), no_pulse_h: oeU16(b, pos + 3),
      leak_h: oeU16(b, pos + 5) });
  }
  return { kind: "status", version: OE_VERSION, trigger: OE_TRIGGERS[trigger],
    firmware: b[2] + "." + b[3] + "." + b[4], status: oeFlagsToNames(oeU16(b, 5)), seq: oeU16(b, 7),
    interval_s: intervalS, history: b[11], dr: radio & 0x0F, adr: (radio & 0x10) !== 0,
    confirmed: OE_CONFIRMED[confirmed], battery_mv: oeU16(b, 13), tic_mode: OE_TIC_MODES[ticMode],
    thresholds: thresholds };
}

function oeDecodeCommands(b) {
  var commands = [];
  var pos = 1;
  if (b.length < 2) {
    oeFail("commands", "expected at least one command");
  }
  while (pos < b.length) {
    var field = "commands[" + commands.length + "]";
    var opcode = b[pos];
    if (!OE_COMMANDS.hasOwnProperty(opcode)) {
      oeFail(field + ".cmd", "unknown opcode 0x" + oeHex2(opcode) + " at byte " + pos);
    }
    var spec = OE_COMMANDS[opcode];
    oeNeed(b, pos, spec[1], field);
    var cmd = { cmd: spec[0] };
    if (opcode === 1) {
      cmd.interval_s = oeU16(b, pos + 1);
      if (cmd.interval_s === 0) {
        oeFail(field + ".interval_s", "expected an integer 1..65535, got 0");
      }
    } else if (opcode === 2) {
      cmd.history = b[pos + 1];
    } else if (opcode === 3 || opcode === 4) {
      if (b[pos + 1] > 15) {
        oeFail(field + ".channel", "expected an integer 0..15, got " + b[pos + 1]);
      }
      cmd.channel = b[pos + 1];
      if (opcode === 3) {
        cmd.index = oeU32(b, pos + 2);
      } else {
        cmd.flow_high = oeU16(b, pos + 2);
        cmd.no_pulse_h = oeU16(b, pos + 4);
        cmd.leak_h = oeU16(b, pos + 6);
      }
    } else if (opcode === 5) {
      if (b[pos + 1] & 0xE0) {
        oeFail(field + ".dr", "reserved bits 5..7 are set");
      }
      cmd.dr = b[pos + 1] & 0x0F;
      cmd.adr = (b[pos + 1] & 0x10) !== 0;
    } else if (opcode === 6) {
      if (b[pos + 1] >= OE_CONFIRMED.length) {
        oeFail(field + ".confirmed", "unknown policy code " + b[pos + 1]);
      }
      cmd.confirmed = OE_CONFIRMED[b[pos + 1]];
    }
    commands.push(cmd);
    pos += spec[1];
  }
  return { kind: "command", version: OE_VERSION, commands: commands };
}

// decode(fport or null, bytes) -> the frame object; throws OePayloadError (like meterpayload.decode).
function oeDecode(fport, bytes) {
  var b = oeBytes(bytes);
  var kind = oeHeader(fport, b);
  if (kind === 1) {
    return oeDecodeReport(b);
  }
  if (kind === 2) {
    return oeDecodeAlarm(b);
  }
  if (kind === 3) {
    return oeDecodeStatus(b);
  }
  return oeDecodeCommands(b);
}

function oeIsList(value) {
  return Object.prototype.toString.call(value) === "[object Array]";
}

function oeIsObject(value) {
  return value !== null && typeof value === "object" && !oeIsList(value);
}

function oeKeyName(key) {
  return /^[A-Za-z0-9_]{1,40}$/.test(key) ? key : oeShort(key);
}

function oeCheckKeys(field, value, allowed, required) {
  if (!oeIsObject(value)) {
    oeFail(field, "expected an object, got " + oeShort(value));
  }
  for (var key in value) {
    if (value.hasOwnProperty(key) && allowed.indexOf(key) < 0) {
      oeFail((field ? field + "." : "") + oeKeyName(key), "unknown field");
    }
  }
  for (var i = 0; i < required.length; i++) {
    if (!value.hasOwnProperty(required[i])) {
      oeFail((field ? field + "." : "") + required[i], "missing");
    }
  }
  return value;
}

function oeInt(field, value, lo, hi) {
  if (typeof value !== "number" || value % 1 !== 0 || value < lo || value > hi) {
    oeFail(field, "expected an integer " + lo + ".." + hi + ", got " + oeShort(value));
  }
  return value;
}

function oeBool(field, value) {
  if (value !== true && value !== false) {
    oeFail(field, "expected true or false, got " + oeShort(value));
  }
  return value;
}

// encodeCommands(list of command objects) -> bytes of the FPort 10 frame (like encode_commands).
function oeEncodeCommands(commands) {
  if (!oeIsList(commands)) {
    oeFail("commands", "expected a list, got " + oeShort(commands));
  }
  if (commands.length === 0) {
    oeFail("commands", "expected at least one command");
  }
  var names = [];
  var byName = {};
  for (var opcode in OE_COMMANDS) {
    if (OE_COMMANDS.hasOwnProperty(opcode)) {
      names.push(OE_COMMANDS[opcode][0]);
      byName[OE_COMMANDS[opcode][0]] = parseInt(opcode, 10);
    }
  }
  names.sort();
  var out = [(OE_VERSION << 4) | 10];
  for (var i = 0; i < commands.length; i++) {
    var field = "commands[" + i + "]";
    var cmd = commands[i];
    if (!oeIsObject(cmd)) {
      oeFail(field, "expected an object, got " + oeShort(cmd));
    }
    var name = cmd.cmd;
    if (typeof name !== "string" || !byName.hasOwnProperty(name)) {
      oeFail(field + ".cmd", "expected one of " + names.join("|") + ", got " + oeShort(name));
    }
    var code = byName[name];
    var args = OE_COMMANDS[code][2];
    oeCheckKeys(field, cmd, ["cmd"].concat(args), args);
    out.push(code);
    if (code === 1) {
      var interval = oeInt(field + ".interval_s", cmd.interval_s, 1, OE_U16);
      out.push(interval >> 8, interval & 0xFF);
    } else if (code === 2) {
      out.push(oeInt(field + ".history", cmd.history, 0, 255));
    } else if (code === 3) {
      out.push(oeInt(field + ".channel", cmd.channel, 0, 15));
      var index = oeInt(field + ".index", cmd.index, 0, OE_U32);
      out.push(Math.floor(index / 16777216), (index >> 16) & 0xFF, (index >> 8) & 0xFF, index & 0xFF);
    } else if (code === 4) {
      out.push(oeInt(field + ".channel", cmd.channel, 0, 15));
      var names4 = ["flow_high", "no_pulse_h", "leak_h"];
      var values = [];
      for (var k = 0; k < 3; k++) {
        values.push(oeInt(field + "." + names4[k], cmd[names4[k]], 0, OE_U16));
      }
      for (k = 0; k < 3; k++) {
        out.push(values[k] >> 8, values[k] & 0xFF);
      }
    } else if (code === 5) {
      var dr = oeInt(field + ".dr", cmd.dr, 0, 15);
      var adr = oeBool(field + ".adr", cmd.adr);
      out.push(dr | (adr ? 0x10 : 0));
    } else if (code === 6) {
      var policy = OE_CONFIRMED.indexOf(cmd.confirmed);
      if (typeof cmd.confirmed !== "string" || policy < 0) {
        oeFail(field + ".confirmed", "expected one of " + OE_CONFIRMED.join("|") + ", got " +
          oeShort(cmd.confirmed));
      }
      out.push(policy);
    }
  }
  return out;
}

// encode(frame object as decode returns it, kind "command") -> bytes (like meterpayload.encode).
function oeEncodeDownlinkData(data) {
  if (oeIsList(data)) {
    return oeEncodeCommands(data);
  }
  if (!oeIsObject(data)) {
    oeFail("frame", "expected an object, got " + oeShort(data));
  }
  if (data.hasOwnProperty("kind") && data.kind !== "command") {
    oeFail("kind", "expected command (the only downlink frame), got " + oeShort(data.kind));
  }
  if (data.hasOwnProperty("version") && data.version !== OE_VERSION) {
    oeFail("version", "expected " + OE_VERSION + ", got " + oeShort(data.version));
  }
  oeCheckKeys("", data, ["kind", "version", "commands"], ["commands"]);
  return oeEncodeCommands(data.commands);
}

function oeErrorText(e) {
  if (e && e.name === "PayloadError") {
    return e.message;
  }
  return "internal error: " + (e && e.message ? e.message : String(e));
}
// ---- END openenergy codec core ----

// ---- ThingsBoard uplink converter ----
var OE_FLAG_COUNT = 10;

function oeUtf8(bytes) {
  var out = "";
  var i = 0;
  while (i < bytes.length) {
    var c = bytes[i++];
    if (c >= 0xC0 && c < 0xE0 && i < bytes.length) {
      c = ((c & 0x1F) << 6) | (bytes[i++] & 0x3F);
    } else if (c >= 0xE0 && c < 0xF0 && i + 1 < bytes.length) {
      c = ((c & 0x0F) << 12) | ((bytes[i++] & 0x3F) << 6) | (bytes[i++] & 0x3F);
    } else if (c >= 0xF0 && i + 2 < bytes.length) {
      c = ((c & 0x07) << 18) | ((bytes[i++] & 0x3F) << 12) | ((bytes[i++] & 0x3F) << 6) |
        (bytes[i++] & 0x3F);
      c -= 0x10000;
      out += String.fromCharCode(0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF));
      continue;
    }
    out += String.fromCharCode(c);
  }
  return out;
}

function oeBase64(text) {
  var alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  var out = [];
  var bits = 0;
  var value = 0;
  for (var i = 0; i < text.length; i++) {
    var c = text.charAt(i);
    if (c === "=") {
      break;
    }
    var v = alphabet.indexOf(c === "-" ? "+" : c === "_" ? "/" : c);
    if (v < 0) {
      oeFail("data", "not valid base64");
    }
    value = (value << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >> bits) & 0xFF);
    }
  }
  return out;
}

// Milliseconds since 1970 of an RFC 3339 time ("2024-05-01T10:00:00.123456Z", "...+02:00").
function oeTimeMs(text) {
  var m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$/.exec(text || "");
  if (!m) {
    return null;
  }
  var ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  if (m[7]) {
    ms += Math.floor(parseFloat(m[7]) * 1000);
  }
  if (m[8] && m[8] !== "Z") {
    var sign = m[8].charAt(0) === "-" ? -1 : 1;
    var digits = m[8].replace(":", "");
    ms -= sign * (parseInt(digits.substring(1, 3), 10) * 60 + parseInt(digits.substring(3, 5), 10)) *
      60000;
  }
  return ms;
}

function oeStatusValues(values, status) {
  for (var bit = 0; bit < 16; bit++) {
    var name = oeFlagName(bit);
    if (bit < OE_FLAG_COUNT || status.indexOf(name) >= 0) {
      values[name] = status.indexOf(name) >= 0;
    }
  }
  return values;
}

// One uplink event of ChirpStack v4 (HTTP/MQTT integration JSON) or The Things Stack
// (uplink_message) -> {deviceName, deviceType, attributes, telemetry}.
function oeThingsBoardConvert(event, metadata) {
  var up = event.uplink_message || {};
  var ids = event.end_device_ids || {};
  var info = event.deviceInfo || {};
  var result = {
    deviceName: info.deviceName || ids.device_id || info.devEui || (ids.dev_eui || "unknown"),
    deviceType: info.deviceProfileName || "openenergy-sensor",
    attributes: { devEui: info.devEui || ids.dev_eui || null },
    telemetry: []
  };
  var fport = event.fPort !== undefined ? event.fPort : up.f_port;
  var ts = oeTimeMs(event.time || up.received_at || event.received_at);
  if (ts === null) {
    ts = metadata && metadata.ts ? parseInt(metadata.ts, 10) : new Date().getTime();
  }
  var frame;
  try {
    var raw = event.data !== undefined ? event.data : up.frm_payload;
    frame = oeDecode(fport, oeBase64(raw || ""));
  } catch (e) {
    result.telemetry.push({ ts: ts, values: { decode_error: oeErrorText(e) } });
    return result;
  }
  var values = oeStatusValues({ seq: frame.seq }, frame.status || []);
  if (frame.kind === "report") {
    var backlog = frame.status.indexOf("backlog") >= 0;
    values.backlog = backlog;
    if (frame.tic !== null) {
      values.tic_papp_va = frame.tic.papp_va;
      values.tic_tariff = frame.tic.tariff;
      for (var p = 0; p < frame.tic.index_wh.length; p++) {
        values["tic_index_wh_" + (p + 1)] = frame.tic.index_wh[p];
      }
    }
    if (backlog) {
      // Catch-up readings are placed by seq alone (payload-format.md 2.1): a rule chain that
      // remembers the latest seq does it; here they travel as one JSON value.
      values.backlog_channels = JSON.stringify(frame.channels);
      result.telemetry.push({ ts: ts, values: values });
      return result;
    }
    var bySeq = {};
    for (var c = 0; c < frame.channels.length; c++) {
      var readings = frame.channels[c].readings;
      for (var r = 0; r < readings.length; r++) {
        var age = (frame.seq - readings[r].seq) & 0xFFFF;
        if (r === 0) {
          values["ch" + frame.channels[c].channel + "_index"] = readings[r].index;
          continue;
        }
        if (!bySeq[age]) {
          bySeq[age] = { ts: ts - age * frame.interval_s * 1000, values: {} };
          result.telemetry.push(bySeq[age]);
        }
        bySeq[age].values["ch" + frame.channels[c].channel + "_index"] = readings[r].index;
      }
    }
    result.telemetry.unshift({ ts: ts, values: values });
  } else if (frame.kind === "alarm") {
    values.alarm = frame.alarm;
    values.alarm_raised = frame.raised;
    values.alarm_channel = frame.channel;
    values.alarm_value = frame.value;
    result.telemetry.push({ ts: ts, values: values });
  } else if (frame.kind === "status") {
    values.battery_mv = frame.battery_mv;
    result.telemetry.push({ ts: ts, values: values });
    var keys = ["trigger", "firmware", "interval_s", "history", "dr", "adr", "confirmed",
      "battery_mv", "tic_mode"];
    for (var k = 0; k < keys.length; k++) {
      result.attributes[keys[k]] = frame[keys[k]];
    }
    result.attributes.thresholds = JSON.stringify(frame.thresholds);
  } else {
    result.telemetry.push({ ts: ts, values: { decode_error: "fport: commands are downlinks" } });
  }
  return result;
}

// ThingsBoard runs this file as the body of Decoder(payload, metadata): payload is the bytes of
// the integration's JSON message.
var oeEvent = typeof payload === "string" ? JSON.parse(payload)
  : payload && payload.length !== undefined ? JSON.parse(oeUtf8(payload)) : payload;
return oeThingsBoardConvert(oeEvent, metadata);
