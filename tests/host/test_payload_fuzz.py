"""Fuzzing the meter payload codec: only PayloadError escapes, and what decodes re-encodes exactly."""

import json
import re
from pathlib import Path

import meterpayload as mp
from errors import PayloadError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HEADERS = st.sampled_from([0x11, 0x12, 0x13, 0x1A])
U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFFFFFF)


def check_decodes_or_rejects(fport, data):
    try:
        frame = mp.decode(fport, data)
    except PayloadError as exc:
        text = str(exc)
        assert text and "\n" not in text and ": " in text
        return None
    # JSON-able, and JSON text re-encodes to the very same bytes on the port of the kind.
    frame = json.loads(json.dumps(frame))
    fport_out, again = mp.encode(frame)
    assert again == bytes(data)
    assert fport_out == data[0] & 0x0F
    if fport is not None:
        assert fport_out == fport
    return frame


@FUZZ
@given(st.one_of(st.none(), st.integers(-5, 300)), st.binary(max_size=80))
def test_decode_arbitrary_bytes(fport, data):
    check_decodes_or_rejects(fport, data)


@FUZZ
@given(HEADERS, st.binary(max_size=60))
def test_decode_bytes_behind_a_valid_header(header, tail):
    check_decodes_or_rejects(None, bytes([header]) + tail)


@st.composite
def report_blocks(draw):
    """A report header followed by plausible blocks, some of them broken."""
    out = bytearray([0x11]) + draw(st.binary(min_size=6, max_size=6))
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            count = draw(st.integers(0, 6))
            out += bytes([0x10 | draw(st.integers(0, 15)), count]) + draw(
                st.binary(min_size=4, max_size=4)
            )
            out += draw(st.binary(min_size=max(0, 2 * count - 1), max_size=2 * count))
        else:
            periods = draw(st.integers(0, 4))
            out += bytes([0x20 | periods]) + draw(
                st.binary(min_size=3 + 4 * periods, max_size=3 + 4 * periods)
            )
    return bytes(out)


@FUZZ
@given(report_blocks())
def test_decode_structured_reports(data):
    check_decodes_or_rejects(1, data)


@st.composite
def commands_frame(draw):
    out = bytearray([0x1A])
    for _ in range(draw(st.integers(0, 5))):
        opcode = draw(st.integers(0, 9))
        size = mp.COMMANDS.get(opcode, ("", 1))[1]
        out += bytes([opcode]) + draw(st.binary(min_size=size - 1, max_size=size - 1))
    return bytes(out)


@FUZZ
@given(commands_frame())
def test_decode_structured_commands(data):
    check_decodes_or_rejects(10, data)


@st.composite
def channel_histories(draw):
    chans = sorted(draw(st.sets(st.integers(0, 15), max_size=4)))
    out = []
    for ch in chans:
        newest = draw(U32)
        deltas = draw(st.lists(U16, max_size=40))
        indexes = [newest]
        for d in deltas:
            indexes.append((indexes[-1] - d) & 0xFFFFFFFF)
        out.append((ch, indexes))
    return out


@FUZZ
@given(
    U16,
    st.integers(1, 0xFFFF),
    channel_histories(),
    U16,
    st.one_of(
        st.none(),
        st.lists(U32, max_size=15).flatmap(
            lambda idx: st.tuples(U16, st.integers(0, len(idx)), st.just(idx))
        ),
    ),
)
def test_random_reports_round_trip(seq, interval_s, channels, status, tic):
    data = mp.encode_report(seq, interval_s, channels, status, tic)
    frame = mp.decode(1, data)
    assert frame["seq"] == seq and frame["interval_s"] == interval_s
    assert mp.names_to_flags("status", frame["status"]) == status
    for (ch, indexes), decoded in zip(channels, frame["channels"], strict=True):
        assert decoded["channel"] == ch
        assert [r["index"] for r in decoded["readings"]] == indexes
        assert [r["seq"] for r in decoded["readings"]] == [
            (seq - i) & 0xFFFF for i in range(len(indexes))
        ]
    if tic is None:
        assert frame["tic"] is None
    else:
        assert (frame["tic"]["papp_va"], frame["tic"]["tariff"], frame["tic"]["index_wh"]) == tic
    assert mp.encode(frame) == (1, data)


@FUZZ
@given(channel_histories(), st.sampled_from([51, 115, 242]), st.integers(0, 255))
def test_fitted_reports_respect_the_size_and_keep_the_newest_readings(channels, max_size, history):
    if mp.report_size([0] * len(channels)) > max_size:
        return
    data = mp.encode_report(1, 900, channels, 0, None, max_size, history)
    assert len(data) <= max_size
    frame = mp.decode(1, data)
    depths = [len(c["readings"]) - 1 for c in frame["channels"]]
    for (_, indexes), decoded, depth in zip(channels, frame["channels"], depths, strict=True):
        assert [r["index"] for r in decoded["readings"]] == indexes[: depth + 1]
        assert depth <= history
    # A channel whose history was cut had no room left: one more delta would overflow, and
    # the depths of cut channels differ by at most one (the room is shared evenly).
    cut = [
        d for (_, idx), d in zip(channels, depths, strict=True) if d < min(len(idx) - 1, history)
    ]
    if cut:
        assert len(data) + 2 > max_size
        assert max(cut) - min(cut) <= 1
        assert max(depths) <= min(cut) + 1


frames = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("alarm"),
            "alarm": st.sampled_from(list(mp.FLAG_NAMES) + ["bit12"]),
            "raised": st.booleans(),
            "channel": st.integers(0, 15),
            "status": st.lists(st.sampled_from(mp.FLAG_NAMES), unique=True),
            "seq": U16,
            "value": U32,
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("status"),
            "trigger": st.sampled_from(mp.TRIGGERS),
            "firmware": st.tuples(*[st.integers(0, 255)] * 3).map(lambda v: ".".join(map(str, v))),
            "status": st.lists(st.sampled_from(mp.FLAG_NAMES), unique=True),
            "seq": U16,
            "interval_s": st.integers(1, 0xFFFF),
            "history": st.integers(0, 255),
            "dr": st.integers(0, 15),
            "adr": st.booleans(),
            "confirmed": st.sampled_from(mp.CONFIRMED_POLICIES),
            "battery_mv": U16,
            "tic_mode": st.sampled_from(mp.TIC_MODES),
            "thresholds": st.sets(st.integers(0, 15), max_size=3)
            .map(sorted)
            .flatmap(
                lambda chans: st.tuples(*[st.tuples(st.just(c), U16, U16, U16) for c in chans])
            )
            .map(
                lambda recs: [
                    {"channel": c, "flow_high": f, "no_pulse_h": n, "leak_h": lk}
                    for c, f, n, lk in recs
                ]
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("command"),
            "commands": st.lists(
                st.one_of(
                    st.builds(
                        lambda v: {"cmd": "set_interval", "interval_s": v}, st.integers(1, 0xFFFF)
                    ),
                    st.builds(lambda v: {"cmd": "set_history", "history": v}, st.integers(0, 255)),
                    st.builds(
                        lambda c, v: {"cmd": "preset_counter", "channel": c, "index": v},
                        st.integers(0, 15),
                        U32,
                    ),
                    st.builds(
                        lambda c, f, n, lk: {
                            "cmd": "set_thresholds",
                            "channel": c,
                            "flow_high": f,
                            "no_pulse_h": n,
                            "leak_h": lk,
                        },
                        st.integers(0, 15),
                        U16,
                        U16,
                        U16,
                    ),
                    st.builds(
                        lambda d, a: {"cmd": "set_dr", "dr": d, "adr": a},
                        st.integers(0, 15),
                        st.booleans(),
                    ),
                    st.builds(
                        lambda p: {"cmd": "set_confirmed", "confirmed": p},
                        st.sampled_from(mp.CONFIRMED_POLICIES),
                    ),
                    st.just({"cmd": "get_config"}),
                    st.just({"cmd": "rejoin"}),
                ),
                min_size=1,
                max_size=6,
            ),
        }
    ),
)


@FUZZ
@given(frames)
def test_random_frames_round_trip_through_json(frame):
    fport, data = mp.encode(frame)
    decoded = mp.decode(fport, data)
    expected = dict(frame, version=1)
    if "status" in expected:
        expected["status"] = sorted(
            expected["status"], key=lambda name: mp.flag_code("status", name)
        )
    assert decoded == expected
    assert mp.encode(json.loads(json.dumps(decoded))) == (fport, data)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
frame_keys = st.sampled_from(
    [
        "kind",
        "version",
        "status",
        "seq",
        "interval_s",
        "channels",
        "tic",
        "alarm",
        "raised",
        "channel",
        "value",
        "trigger",
        "firmware",
        "history",
        "dr",
        "adr",
        "confirmed",
        "battery_mv",
        "tic_mode",
        "thresholds",
        "commands",
    ]
)


@FUZZ
@given(
    st.sampled_from(["report", "alarm", "status", "command"]),
    st.dictionaries(frame_keys, json_values, max_size=10),
)
def test_encode_arbitrary_dicts_raises_only_payload_error(kind, frame):
    frame["kind"] = kind
    try:
        fport, data = mp.encode(frame)
    except PayloadError as exc:
        assert "\n" not in str(exc)
        return
    assert mp.encode(mp.decode(fport, data)) == (fport, data)


@FUZZ
@given(json_values)
def test_encode_arbitrary_json_raises_only_payload_error(value):
    try:
        mp.encode(value)
    except PayloadError:
        pass


junk = st.one_of(
    st.none(),
    st.integers(-5, 2**33),
    st.booleans(),
    st.text(max_size=3),
    st.lists(st.integers(-5, 2**33), max_size=4),
    st.tuples(st.integers(-2, 17), st.lists(st.integers(-5, 2**33), max_size=4)),
)


@FUZZ
@given(
    st.integers(-2, 70000),
    st.integers(-2, 70000),
    st.lists(junk, max_size=3),
    st.integers(-2, 70000),
    st.one_of(
        junk,
        st.tuples(
            st.integers(-2, 70000),
            st.integers(-2, 20),
            st.lists(st.integers(-5, 2**33), max_size=16),
        ),
    ),
    st.integers(0, 300),
    st.integers(-2, 300),
)
def test_device_report_encoder_raises_only_payload_error(
    seq, interval_s, channels, status, tic, max_size, history
):
    buf = bytearray(242)
    try:
        n = mp.encode_report_into(buf, seq, interval_s, channels, status, tic, max_size, history)
    except PayloadError as exc:
        assert "\n" not in str(exc)
        return
    assert n <= (max_size or 242)
    frame = mp.decode(1, bytes(buf[:n]))
    assert mp.encode(frame) == (1, bytes(buf[:n]))


@FUZZ
@given(st.lists(junk, min_size=13, max_size=13))
def test_device_alarm_and_status_encoders_raise_only_payload_error(args):
    for encoder, count in ((mp.encode_alarm_into, 6), (mp.encode_status_into, 12)):
        buf = bytearray(200)
        try:
            n = encoder(buf, *args[:count])
        except PayloadError:
            continue
        assert mp.encode(mp.decode(None, bytes(buf[:n])))[1] == bytes(buf[:n])


def test_every_hex_example_of_the_spec_decodes_and_round_trips():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "payload-format.md").read_text()
    examples = re.findall(r"^Hex(?: \((\d+) bytes\))?: `([0-9a-f ]+)`", doc, re.M)
    assert len(examples) >= 6
    kinds = set()
    for size, spaced in examples:
        data = bytes.fromhex(spaced.replace(" ", ""))
        if size:
            assert len(data) == int(size), spaced
        frame = check_decodes_or_rejects(None, data)
        assert frame is not None, spaced
        kinds.add(frame["kind"])
    assert kinds == {"report", "alarm", "status", "command"}
