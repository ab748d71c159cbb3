"""The JavaScript codecs (tools/codecs/) against the Python codec (lib/meterpayload.py).

One node run (tests/host/js_codec_check.mjs) evaluates the codec as a plain script, in node's
`vm` and in QuickJS (ChirpStack v4's engine, npm quickjs-emscripten) when installed, on: the
spec's worked examples, 1,200 seeded random valid frames, 1,200 malformed ones, 400 random
downlink command lists and 300 invalid ones. decodeUplink must give the very JSON text the Python
decode gives (same keys, order, values and types) or, when Python rejects, the same one-line
message in `errors`; encodeDownlink must give Python's bytes or its error message.
"""

import base64
import json
import random
import shutil
import subprocess
from functools import cache
from pathlib import Path

import meterpayload as mp
import pytest
from errors import PayloadError

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "host" / "js_codec_check.mjs"
CODEC = ROOT / "tools" / "codecs" / "openenergy.js"
THINGSBOARD = ROOT / "tools" / "codecs" / "thingsboard-uplink.js"
SEED = 20240917
U32 = 0xFFFFFFFF

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is needed")

WORKED_EXAMPLES = [  # docs/payload-format.md section 9
    "11 0100 04d2 0384 10 04 0001e240 000a 0005 0000 000f 22 05f0 02 0045b352 0012d687",
    "11 0000 0028 0384 10 01 000003e8 000a 11 02 00011170 0002 0008",
    "11 0000 0001 003c 10 02 00000005 0003 0004",
    "12 02 81 0004 04d8 00011166",
    "13 01 010200 0000 04d2 0384 04 25 0e42 01 01 00 09c4 0030 0000",
    "1a 01 0258 03 00 0001e240 07",
    "110000000103841002000000010001",  # section 7: cut short
]

SECTION_8_REJECTS = [  # one frame per rule of docs/payload-format.md section 8
    "",
    "21",
    "1b",
    "110000",
    "11 0000 0001 0000",
    "11 0000 0001 003c 30",
    "11 0000 0001 003c 10 02 00000005 0003",
    "11 0000 0001 003c 11 00 00000005 10 00 00000005",
    "11 0000 0001 003c 10 00 00000005 10 00 00000005",
    "11 0000 0001 003c 20 0000 00 10 00 00000005",
    "11 0000 0001 003c 20 0000 00 20 0000 00",
    "11 0000 0001 003c 21 0000 02 00000001",
    "12 02 81 0004 04d8 000111",
    "12 10 81 0004 04d8 00011166",
    "12 02 91 0004 04d8 00011166",
    "13 01 010200 0000 04d2 0384 04 25 0e42 01 01 00 09c4 0030",
    "13 01 010200 0000 04d2 0384 04 25 0e42 01 11",
    "13 04 010200 0000 04d2 0384 04 25 0e42 01 00",
    "13 01 010200 0000 04d2 0000 04 25 0e42 01 00",
    "13 01 010200 0000 04d2 0384 04 a5 0e42 01 00",
    "13 01 010200 0000 04d2 0384 04 65 0e42 01 00",
    "13 01 010200 0000 04d2 0384 04 25 0e42 03 00",
    "13 01 010200 0000 04d2 0384 04 25 0e42 01 02 01 0000 0000 0000 01 0000 0000 0000",
    "13 01 010200 0000 04d2 0384 04 25 0e42 01 01 10 0000 0000 0000",
    "1a",
    "1a 09",
    "1a 03 00 0001",
    "1a 01 0000",
    "1a 03 10 00000001",
    "1a 04 10 0000 0000 0000",
    "1a 05 20",
    "1a 06 03",
]


# ---------------------------------------------------------------- random frames


def random_report(rng):
    seq = rng.getrandbits(16)
    channels = []
    for channel in sorted(rng.sample(range(16), rng.choice((0, 1, 1, 2, 2, 3, 5)))):
        indexes = [rng.choice((rng.getrandbits(32), rng.getrandbits(8), U32))]
        for _ in range(rng.choice((0, 1, 4, rng.randrange(0, 40)))):
            step = rng.choice((0, rng.getrandbits(4), rng.getrandbits(16)))
            indexes.append((indexes[-1] - step) & U32)
        channels.append((channel, indexes))
    tic = None
    if rng.random() < 0.4 or not channels:
        periods = rng.randrange(0, 16)
        index_wh = [rng.getrandbits(32) for _ in range(periods)]
        tic = (rng.getrandbits(16), rng.randrange(0, periods + 1), index_wh)
    status = rng.choice((0, rng.getrandbits(16), 1 << rng.randrange(16)))
    interval = rng.choice((60, 900, rng.randrange(1, 0x10000)))
    return mp.encode_report(seq, interval, channels, status, tic)


def random_alarm(rng):
    buf = bytearray(mp.ALARM_SIZE)
    mp.encode_alarm_into(
        buf,
        rng.randrange(16),
        rng.random() < 0.5,
        rng.randrange(16),
        rng.getrandbits(16),
        rng.getrandbits(16),
        rng.getrandbits(32),
    )
    return bytes(buf)


def random_status(rng):
    count = rng.randrange(0, 17)
    thresholds = [
        (ch, rng.getrandbits(16), rng.getrandbits(16), rng.getrandbits(16))
        for ch in sorted(rng.sample(range(16), count))
    ]
    buf = bytearray(mp.STATUS_HEADER_SIZE + mp.THRESHOLD_SIZE * count)
    mp.encode_status_into(
        buf,
        rng.randrange(4),
        (rng.randrange(256), rng.randrange(256), rng.randrange(256)),
        rng.getrandbits(16),
        rng.getrandbits(16),
        rng.randrange(1, 0x10000),
        rng.randrange(256),
        rng.randrange(16),
        rng.random() < 0.5,
        rng.randrange(3),
        rng.getrandbits(16),
        rng.randrange(3),
        thresholds,
    )
    return bytes(buf)


def random_command(rng):
    name = rng.choice(sorted(mp._COMMAND_FIELDS))
    cmd = {"cmd": name}
    if name == "set_interval":
        cmd["interval_s"] = rng.randrange(1, 0x10000)
    elif name == "set_history":
        cmd["history"] = rng.randrange(256)
    elif name == "preset_counter":
        cmd.update(channel=rng.randrange(16), index=rng.choice((rng.getrandbits(32), U32, 0)))
    elif name == "set_thresholds":
        cmd.update(
            channel=rng.randrange(16),
            flow_high=rng.getrandbits(16),
            no_pulse_h=rng.getrandbits(16),
            leak_h=rng.getrandbits(16),
        )
    elif name == "set_dr":
        cmd.update(dr=rng.randrange(16), adr=rng.random() < 0.5)
    elif name == "set_confirmed":
        cmd["confirmed"] = rng.choice(mp.CONFIRMED_POLICIES)
    return cmd


def random_commands(rng):
    return [random_command(rng) for _ in range(rng.randrange(1, 6))]


def random_valid_frame(rng):
    maker = rng.choice((random_report, random_report, random_alarm, random_status))
    if rng.random() < 0.15:
        return mp.encode_commands(random_commands(rng))
    return maker(rng)


def malformed(rng, frame):
    """A frame broken in one of the ways section 8 lists (or in a random way)."""
    data = bytearray(frame)
    how = rng.randrange(7)
    if how == 0 and len(data) > 1:
        del data[rng.randrange(1, len(data)) :]
    elif how == 1:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif how == 2:
        data += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))
    elif how == 3:
        data[0] = rng.choice((0x01, 0x21, 0x14, 0x1F, 0x10, 0xF1))
    elif how == 4 and len(data) > 2:
        data[rng.randrange(1, len(data))] = rng.choice((0x00, 0xFF, 0x80, 0x30, 0x11))
    elif how == 5:
        data = bytearray([data[0]]) + bytearray(rng.randbytes(rng.randrange(0, 30)))
    else:
        data = bytearray()
    return bytes(data)


def invalid_commands(rng):
    """A valid command list with one thing wrong; None when the mutation left it valid."""
    commands = random_commands(rng)
    target = commands[rng.randrange(len(commands))]
    args = list(mp._COMMAND_FIELDS[target["cmd"]])
    how = rng.randrange(6)
    if how == 0 and args:
        target[rng.choice(args)] = rng.choice((-1, 70000, 1 << 32, "12", True, None, 1.5))
    elif how == 1:
        target["extra"] = 1
    elif how == 2 and args:
        del target[rng.choice(args)]
    elif how == 3:
        target["cmd"] = rng.choice(("set_interval_s", "", None, 7, "GET_CONFIG"))
    elif how == 4:
        return rng.choice(([], [[]], [None], ["get_config"]))
    else:
        if "channel" not in target:
            return None
        target["channel"] = 16
    return commands


# ---------------------------------------------------------------- the node run


def python_decode(fport, data):
    try:
        return {"data": json.dumps(mp.decode(fport, data))}
    except PayloadError as exc:
        return {"error": str(exc)}


def python_encode(commands):
    try:
        return {"hex": mp.encode_commands(commands).hex()}
    except PayloadError as exc:
        return {"error": str(exc)}


@cache
def batch():
    rng = random.Random(SEED)
    cases, expected = [], []

    def uplink(data, fport):
        cases.append({"op": "uplink", "hex": data.hex(), "fport": fport})
        expected.append(("decode", python_decode(fport, data)))

    for text in WORKED_EXAMPLES:
        data = bytes.fromhex(text.replace(" ", ""))
        uplink(data, data[0] & 0x0F)
        uplink(data, None)
    for _ in range(1200):
        data = random_valid_frame(rng)
        uplink(data, rng.choice((data[0] & 0x0F, data[0] & 0x0F, None)))
    for text in SECTION_8_REJECTS:
        data = bytes.fromhex(text.replace(" ", ""))
        uplink(data, data[0] & 0x0F if data else None)
    for _ in range(1200):
        data = malformed(rng, random_valid_frame(rng))
        if data and rng.random() < 0.8:
            fport = rng.choice((data[0] & 0x0F, None))
        else:
            fport = rng.choice((None, 1, 2, 3, 10, rng.randrange(1, 224), 0, 224))
        uplink(data, fport)
    for _ in range(100):  # decodeDownlink: port 10 by default
        data = mp.encode_commands(random_commands(rng))
        if rng.random() < 0.5:
            data = malformed(rng, data)
        cases.append({"op": "downlink", "hex": data.hex(), "fport": 10})
        expected.append(("decode", python_decode(10, data)))
    for i in range(400):
        commands = random_commands(rng)
        data = commands if i % 2 else {"kind": "command", "version": 1, "commands": commands}
        cases.append({"op": "encode", "data": data})
        expected.append(("encode", python_encode(commands)))
    invalid = 0
    while invalid < 300:
        commands = invalid_commands(rng)
        if commands is None:
            continue
        invalid += 1
        cases.append({"op": "encode", "data": {"commands": commands}})
        expected.append(("encode", python_encode(commands)))
    proc = subprocess.run(
        ["node", str(SCRIPT), "/dev/stdin"],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return cases, expected, json.loads(proc.stdout)


def compare(kind, want, got):
    if kind == "decode":
        if "error" in want:
            assert "data" not in got, want
            assert got["errors"] == [want["error"]]
        else:
            assert got.get("errors") == [], got
            assert json.dumps(got["data"]) == want["data"]
    else:
        if "error" in want:
            assert "bytes" not in got
            assert got["errors"] == [want["error"]]
        else:
            assert got["errors"] == []
            assert got["bytes"] == want["hex"]
            assert got["fport"] == 10


def test_node_decode_and_encode_equal_python():
    cases, expected, report = batch()
    results = report["engines"]["node"]
    assert len(results) == len(cases)
    for case, (kind, want), got in zip(cases, expected, results, strict=True):
        try:
            compare(kind, want, got)
        except AssertionError:
            pytest.fail(f"JS and Python differ on {case}: python {want}, js {got}")


def test_batch_covers_both_outcomes():
    _, expected, _ = batch()
    decoded = [w for k, w in expected if k == "decode"]
    encoded = [w for k, w in expected if k == "encode"]
    assert sum("data" in w for w in decoded) >= 1000
    assert sum("error" in w for w in decoded) >= 700
    assert len({w["error"].split(":")[0] for w in decoded if "error" in w}) >= 15
    assert sum("hex" in w for w in encoded) >= 400
    assert sum("error" in w for w in encoded) >= 250


def test_worked_examples_decode_as_the_spec_shows():
    cases, _, report = batch()
    results = report["engines"]["node"]
    first = results[0]["data"]
    assert first["channels"][0]["readings"][-1] == {"seq": 1230, "index": 123426}
    assert first["tic"] == {"papp_va": 1520, "tariff": 2, "index_wh": [4567890, 1234567]}
    wrap = results[4]["data"]["channels"][0]["readings"]
    assert wrap[-1] == {"seq": 65535, "index": 4294967294}
    start = 2 * len(WORKED_EXAMPLES) + 1200
    rejects = results[start : start + len(SECTION_8_REJECTS)]
    assert all("data" not in r for r in rejects), rejects
    assert results[12]["errors"] == [
        "channels[0].deltas: frame ends at byte 15, 2 more bytes needed"
    ]
    assert cases[12]["hex"] == "110000000103841002000000010001"


def test_quickjs_gives_the_same_results_as_node():
    _, _, report = batch()
    if report["engines"]["quickjs"] is None:
        pytest.skip("npm quickjs-emscripten is not installed")
    assert report["engines"]["quickjs"] == report["engines"]["node"]


def test_codecs_are_plain_es5():
    _, _, report = batch()
    if report["es5"] is None:
        pytest.skip("npm acorn is not installed")
    assert report["es5"] == {"openenergy.js": None, "thingsboard-uplink.js": None}


def _core(path):
    text = path.read_text()
    begin = text.index("// ---- BEGIN openenergy codec core ----")
    end = text.index("// ---- END openenergy codec core ----")
    return text[begin:end]


def test_thingsboard_converter_carries_the_same_codec_core():
    assert _core(THINGSBOARD) == _core(CODEC), (
        "tools/codecs/thingsboard-uplink.js must carry the section between the BEGIN and END "
        "markers of tools/codecs/openenergy.js unchanged: copy it over"
    )


# ---------------------------------------------------------------- ThingsBoard converter


def _chirpstack_event(hex_payload, fport, time="2024-05-01T10:00:00.250000+00:00"):
    return {
        "deduplicationId": "0b1c2d3e-0000-4000-8000-000000000001",
        "time": time,
        "deviceInfo": {
            "deviceName": "chaufferie-é",
            "deviceProfileName": "openenergy-sensor",
            "devEui": "70b3d57ed0000001",
        },
        "fCnt": 7,
        "fPort": fport,
        "data": base64.b64encode(bytes.fromhex(hex_payload)).decode(),
    }


def run_thingsboard(events):
    cases = [{"op": "thingsboard", "event": event} for event in events]
    proc = subprocess.run(
        ["node", str(SCRIPT), "/dev/stdin"],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    if report["engines"]["quickjs"] is not None:
        assert report["engines"]["quickjs"] == report["engines"]["node"]
    return report["engines"]["node"]


def test_thingsboard_converter_places_readings_in_time():
    t0 = 1714557600250  # 2024-05-01T10:00:00.250Z
    report_hex = "".join(WORKED_EXAMPLES[1].split())  # seq 40, 900 s, two channels, no backlog
    alarm_hex = "".join(WORKED_EXAMPLES[3].split())
    status_hex = "".join(WORKED_EXAMPLES[4].split())
    tts = {
        "end_device_ids": {"device_id": "compteur-eau", "dev_eui": "70B3D57ED0000002"},
        "uplink_message": {
            "f_port": 2,
            "frm_payload": base64.b64encode(bytes.fromhex(alarm_hex)).decode(),
            "received_at": "2024-05-01T12:00:00Z",
        },
    }
    report, alarm, status, bad, tts_alarm = run_thingsboard(
        [
            _chirpstack_event(report_hex, 1),
            _chirpstack_event(alarm_hex, 2),
            _chirpstack_event(status_hex, 3),
            _chirpstack_event("1100", 1),
            tts,
        ]
    )
    assert report["deviceName"] == "chaufferie-é"
    assert report["deviceType"] == "openenergy-sensor"
    newest, older, oldest = report["telemetry"]
    assert newest["ts"] == t0
    assert newest["values"]["ch0_index"] == 1000 and newest["values"]["ch1_index"] == 70000
    assert newest["values"]["seq"] == 40 and newest["values"]["leak"] is False
    assert older == {"ts": t0 - 900_000, "values": {"ch0_index": 990, "ch1_index": 69998}}
    assert oldest == {"ts": t0 - 1_800_000, "values": {"ch1_index": 69990}}
    values = alarm["telemetry"][0]["values"]
    assert values["alarm"] == "leak" and values["alarm_raised"] is True
    assert values["alarm_channel"] == 1 and values["alarm_value"] == 69990
    assert status["attributes"]["firmware"] == "1.2.0"
    assert json.loads(status["attributes"]["thresholds"])[0]["no_pulse_h"] == 48
    assert status["telemetry"][0]["values"]["battery_mv"] == 3650
    assert bad["telemetry"][0]["values"] == {
        "decode_error": "header: frame ends at byte 2, 5 more bytes needed"
    }
    assert tts_alarm["deviceName"] == "compteur-eau"
    assert tts_alarm["telemetry"][0]["ts"] == 1714564800000
    assert tts_alarm["telemetry"][0]["values"]["alarm"] == "leak"


def test_thingsboard_converter_keeps_backlog_readings_together():
    backlog_hex = "".join(WORKED_EXAMPLES[0].split())
    (result,) = run_thingsboard([_chirpstack_event(backlog_hex, 1)])
    (entry,) = result["telemetry"]
    assert entry["values"]["backlog"] is True
    assert entry["values"]["tic_index_wh_2"] == 1234567
    channels = json.loads(entry["values"]["backlog_channels"])
    assert channels == mp.decode(1, bytes.fromhex(backlog_hex))["channels"]
