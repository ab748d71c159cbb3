"""meterpayload: worked examples of docs/payload-format.md, round trips, fitting, and every reject rule."""

import meterpayload as mp
from errors import PayloadError
from testkit import h, hx, raises

# docs/payload-format.md section 9
EXAMPLE_REPORT = "11010004d2038410040001e240000a00050000000f2205f0020045b3520012d687"
EXAMPLE_REPORT_JSON = {
    "kind": "report",
    "version": 1,
    "status": ["backlog"],
    "seq": 1234,
    "interval_s": 900,
    "channels": [
        {
            "channel": 0,
            "readings": [
                {"seq": 1234, "index": 123456},
                {"seq": 1233, "index": 123446},
                {"seq": 1232, "index": 123441},
                {"seq": 1231, "index": 123441},
                {"seq": 1230, "index": 123426},
            ],
        }
    ],
    "tic": {"papp_va": 1520, "tariff": 2, "index_wh": [4567890, 1234567]},
}
EXAMPLE_TWO_CHANNELS = "110000002803841001000003e8000a11020001117000020008"
EXAMPLE_WRAP = "1100000001003c10020000000500030004"
EXAMPLE_ALARM = "120281000404d800011166"
EXAMPLE_ALARM_JSON = {
    "kind": "alarm",
    "version": 1,
    "alarm": "leak",
    "raised": True,
    "channel": 1,
    "status": ["leak"],
    "seq": 1240,
    "value": 69990,
}
EXAMPLE_STATUS = "1301010200000004d2038404250e4201010009c400300000"
EXAMPLE_STATUS_JSON = {
    "kind": "status",
    "version": 1,
    "trigger": "request",
    "firmware": "1.2.0",
    "status": [],
    "seq": 1234,
    "interval_s": 900,
    "history": 4,
    "dr": 5,
    "adr": False,
    "confirmed": "alarms",
    "battery_mv": 3650,
    "tic_mode": "historique",
    "thresholds": [{"channel": 0, "flow_high": 2500, "no_pulse_h": 48, "leak_h": 0}],
}
EXAMPLE_COMMANDS = "1a01025803000001e24007"
EXAMPLE_COMMANDS_JSON = {
    "kind": "command",
    "version": 1,
    "commands": [
        {"cmd": "set_interval", "interval_s": 600},
        {"cmd": "preset_counter", "channel": 0, "index": 123456},
        {"cmd": "get_config"},
    ],
}


def roundtrip(hexframe):
    data = h(hexframe)
    frame = mp.decode(None, data)
    fport, again = mp.encode(frame)
    assert hx(again) == hexframe, (hx(again), hexframe)
    assert fport == data[0] & 0x0F
    return frame


def message(exc_type, func, *args):
    return str(raises(exc_type, func, *args))


# ---------------------------------------------------------------- worked examples


def test_example_report_decodes_as_documented():
    assert len(h(EXAMPLE_REPORT)) == 33
    assert mp.decode(1, h(EXAMPLE_REPORT)) == EXAMPLE_REPORT_JSON
    assert roundtrip(EXAMPLE_REPORT) == EXAMPLE_REPORT_JSON


def test_example_report_encodes_from_json():
    assert mp.encode(EXAMPLE_REPORT_JSON) == (1, h(EXAMPLE_REPORT))


def test_example_report_from_the_device_encoder():
    buf = bytearray(51)
    n = mp.encode_report_into(
        buf,
        1234,
        900,
        [(0, [123456, 123446, 123441, 123441, 123426])],
        mp.FLAG_BACKLOG,
        (1520, 2, [4567890, 1234567]),
    )
    assert hx(buf[:n]) == EXAMPLE_REPORT


def test_example_two_channels():
    frame = roundtrip(EXAMPLE_TWO_CHANNELS)
    assert frame["channels"][0]["readings"] == [
        {"seq": 40, "index": 1000},
        {"seq": 39, "index": 990},
    ]
    assert [r["index"] for r in frame["channels"][1]["readings"]] == [70000, 69998, 69990]
    assert [r["seq"] for r in frame["channels"][1]["readings"]] == [40, 39, 38]
    assert frame["tic"] is None
    assert (
        hx(mp.encode_report(40, 900, [(0, [1000, 990]), (1, [70000, 69998, 69990])]))
        == EXAMPLE_TWO_CHANNELS
    )


def test_example_seq_and_counter_wrap():
    frame = roundtrip(EXAMPLE_WRAP)
    readings = frame["channels"][0]["readings"]
    assert readings == [
        {"seq": 1, "index": 5},
        {"seq": 0, "index": 2},
        {"seq": 65535, "index": 4294967294},
    ]
    assert hx(mp.encode_report(1, 60, [(0, [5, 2, 4294967294])])) == EXAMPLE_WRAP


def test_example_alarm():
    assert mp.decode(2, h(EXAMPLE_ALARM)) == EXAMPLE_ALARM_JSON
    roundtrip(EXAMPLE_ALARM)
    buf = bytearray(mp.ALARM_SIZE)
    assert mp.encode_alarm_into(buf, 2, True, 1, mp.FLAG_LEAK, 1240, 69990) == 11
    assert hx(buf) == EXAMPLE_ALARM


def test_example_status():
    assert mp.decode(3, h(EXAMPLE_STATUS)) == EXAMPLE_STATUS_JSON
    roundtrip(EXAMPLE_STATUS)
    buf = bytearray(40)
    n = mp.encode_status_into(
        buf, 1, (1, 2, 0), 0, 1234, 900, 4, 5, False, 1, 3650, 1, [(0, 2500, 48, 0)]
    )
    assert hx(buf[:n]) == EXAMPLE_STATUS


def test_example_commands():
    assert mp.decode(10, h(EXAMPLE_COMMANDS)) == EXAMPLE_COMMANDS_JSON
    assert mp.encode(EXAMPLE_COMMANDS_JSON) == (10, h(EXAMPLE_COMMANDS))


# ---------------------------------------------------------------- round trips


def test_every_command_round_trips():
    commands = [
        {"cmd": "set_interval", "interval_s": 65535},
        {"cmd": "set_history", "history": 255},
        {"cmd": "preset_counter", "channel": 15, "index": 4294967295},
        {"cmd": "set_thresholds", "channel": 1, "flow_high": 1, "no_pulse_h": 2, "leak_h": 3},
        {"cmd": "set_dr", "dr": 3, "adr": True},
        {"cmd": "set_confirmed", "confirmed": "always"},
        {"cmd": "get_config"},
        {"cmd": "rejoin"},
    ]
    fport, data = mp.encode({"kind": "command", "commands": commands})
    assert fport == mp.FPORT_COMMAND
    assert hx(data) == "1a01ffff02ff030fffffffff04010001000200030513060207" + "08"
    assert mp.decode(10, data)["commands"] == commands


def test_status_flags_by_name_and_unassigned_bits():
    frame = roundtrip("11ffff00010e10")
    assert frame["status"] == list(mp.FLAG_NAMES) + [
        "bit10",
        "bit11",
        "bit12",
        "bit13",
        "bit14",
        "bit15",
    ]
    assert frame["channels"] == [] and frame["tic"] is None
    assert (
        mp.names_to_flags("status", ["rebooted", "low_battery"])
        == mp.FLAG_REBOOTED | mp.FLAG_LOW_BATTERY
    )


def test_status_frame_flags_and_radio_byte():
    frame = dict(EXAMPLE_STATUS_JSON)
    frame.update(
        {
            "adr": True,
            "dr": 15,
            "confirmed": "always",
            "trigger": "rejected",
            "firmware": "255.0.10",
        }
    )
    frame.update({"tic_mode": "standard", "thresholds": [], "status": ["tamper"]})
    fport, data = mp.encode(frame)
    assert fport == 3 and len(data) == mp.STATUS_HEADER_SIZE
    assert data[12] == 0x0F | 0x10 | (2 << 5)
    assert mp.decode(None, data) == frame


def test_report_with_sixteen_channels_and_full_tic():
    channels = [(c, [c * 1000 + 7, c * 1000]) for c in range(16)]
    tic = (65535, 15, list(range(15)))
    data = mp.encode_report(7, 1, channels, 0, tic)
    frame = mp.decode(1, data)
    assert len(frame["channels"]) == 16 and frame["tic"]["tariff"] == 15
    assert mp.encode(frame)[1] == data


def test_decode_accepts_bytearray_and_memoryview():
    data = h(EXAMPLE_ALARM)
    assert mp.decode(2, bytearray(data)) == mp.decode(2, memoryview(data)) == EXAMPLE_ALARM_JSON


def test_reading_seq_may_be_omitted_in_encode():
    frame = {
        "kind": "report",
        "seq": 3,
        "interval_s": 60,
        "channels": [{"channel": 0, "readings": [{"index": 9}, {"index": 4}]}],
    }
    fport, data = mp.encode(frame)
    assert mp.decode(fport, data)["channels"][0]["readings"] == [
        {"seq": 3, "index": 9},
        {"seq": 2, "index": 4},
    ]


# ---------------------------------------------------------------- device encoder: fitting


def test_history_fits_each_dr():
    long_history = [100000 - 3 * i for i in range(300)]
    for max_size, one, two in ((51, 19, 8), (115, 51, 24), (242, 114, 55)):
        assert mp.max_deltas(max_size, 1) == one and mp.max_deltas(max_size, 2) == two
        data = mp.encode_report(9, 900, [(0, long_history)], max_size=max_size)
        assert len(mp.decode(1, data)["channels"][0]["readings"]) == one + 1
        assert len(data) <= max_size
        data = mp.encode_report(9, 900, [(0, long_history), (1, long_history)], max_size=max_size)
        counts = [len(c["readings"]) - 1 for c in mp.decode(1, data)["channels"]]
        # An odd delta left over goes to channel 0.
        assert counts in ([two, two], [two + 1, two]), counts
        assert max_size - 2 < len(data) <= max_size


def test_tic_only_standard_fills_dr0_exactly():
    assert mp.report_size([], 10) == 51
    assert mp.max_deltas(51, 0, 10) == 0 and mp.max_deltas(51, 1, 10) == -1
    assert len(mp.encode_report(1, 60, [], 0, (100, 1, [1] * 10), 51)) == 51
    assert "max_size" in message(
        PayloadError, mp.encode_report, 1, 60, [(0, [1])], 0, (100, 1, [1] * 10), 51
    )


def test_short_channel_leaves_its_share():
    data = mp.encode_report(5, 900, [(0, list(range(1000, 900, -1))), (1, [5, 4])], max_size=51)
    frame = mp.decode(1, data)
    assert [len(c["readings"]) for c in frame["channels"]] == [16, 2]
    assert len(data) == 51


def test_history_cap_and_stop_at_a_delta_too_big():
    data = mp.encode_report(5, 900, [(0, [10, 9, 8, 7, 6])], history=2)
    assert [r["index"] for r in mp.decode(1, data)["channels"][0]["readings"]] == [10, 9, 8]
    data = mp.encode_report(5, 900, [(0, [200000, 199999, 100000, 99999])])
    assert [r["index"] for r in mp.decode(1, data)["channels"][0]["readings"]] == [200000, 199999]


def test_apparent_power_saturates_on_the_device_only():
    data = mp.encode_report(5, 900, [], 0, (70000, 0, [1]))
    assert mp.decode(1, data)["tic"]["papp_va"] == 65535
    frame = {
        "kind": "report",
        "seq": 1,
        "interval_s": 60,
        "tic": {"papp_va": 70000, "tariff": 0, "index_wh": []},
    }
    assert message(PayloadError, mp.encode, frame).startswith("tic.papp_va:")


def test_device_buffer_is_reused():
    buf = bytearray(242)
    n1 = mp.encode_report_into(buf, 1, 900, [(0, [50, 40, 30])])
    first = bytes(buf[:n1])
    n2 = mp.encode_report_into(buf, 2, 900, [(0, [60])])
    assert n2 == 13 and mp.decode(1, buf[:n2])["seq"] == 2
    assert mp.decode(1, first)["channels"][0]["readings"][2]["index"] == 30


def test_device_encoder_errors_name_the_field():
    buf = bytearray(51)
    cases = (
        ("seq:", (buf, 65536, 900, [])),
        ("interval_s:", (buf, 1, 0, [])),
        ("channels[0].channel:", (buf, 1, 60, [(16, [1])])),
        ("channels[1].channel:", (buf, 1, 60, [(1, [1]), (1, [1])])),
        ("channels[0].indexes:", (buf, 1, 60, [(0, [])])),
        ("channels[0].indexes[1]:", (buf, 1, 60, [(0, [5, -1])])),
        ("channels[0].indexes[0]:", (buf, 1, 60, [(0, [1 << 32])])),
        ("tic.tariff:", (buf, 1, 60, [], 0, (1, 2, [1]))),
        ("tic.index_wh[0]:", (buf, 1, 60, [], 0, (1, 1, [-5]))),
        ("max_size:", (bytearray(12), 1, 60, [(0, [1])])),
    )
    for prefix, args in cases:
        text = message(PayloadError, mp.encode_report_into, *args)
        assert text.startswith(prefix), (prefix, text)
    assert message(
        PayloadError, mp.encode_alarm_into, bytearray(11), 16, True, 0, 0, 0, 0
    ).startswith("alarm:")
    assert message(PayloadError, mp.encode_alarm_into, bytearray(11), 1, 1, 0, 0, 0, 0).startswith(
        "raised:"
    )
    assert message(
        PayloadError, mp.encode_alarm_into, bytearray(5), 1, True, 0, 0, 0, 0
    ).startswith("buf:")
    status_args = [
        bytearray(40),
        0,
        (1, 0, 0),
        0,
        0,
        900,
        4,
        5,
        False,
        1,
        0,
        0,
        [(0, 0, 0, 0), (0, 0, 0, 0)],
    ]
    assert message(PayloadError, mp.encode_status_into, *status_args).startswith(
        "thresholds[1].channel:"
    )
    status_args[2] = (1, 0, 256)
    assert message(PayloadError, mp.encode_status_into, *status_args).startswith("firmware:")
    status_args[2] = 5
    assert message(PayloadError, mp.encode_status_into, *status_args).startswith("firmware:")
    status_args[2] = (1, 0, 0)
    status_args[12] = 5
    assert message(PayloadError, mp.encode_status_into, *status_args).startswith("thresholds:")
    status_args[12] = [5]
    assert message(PayloadError, mp.encode_status_into, *status_args).startswith("thresholds[0]:")
    status_args[12] = [(0, 1, 2, 3), (1, 0, 70000, 0)]
    text = message(PayloadError, mp.encode_status_into, *status_args)
    assert text == "thresholds[1].no_pulse_h: expected an integer 0..65535, got 70000", text
    for channels, prefix in (
        ([5], "channels[0]:"),
        ([(0, 5)], "channels[0].indexes:"),
        ([(0, [])], "channels[0].indexes:"),
    ):
        assert message(PayloadError, mp.encode_report_into, buf, 1, 60, channels).startswith(prefix)
    assert message(PayloadError, mp.encode_report_into, buf, 1, 60, [], 0, 5).startswith("tic:")
    text = message(PayloadError, mp.encode_report_into, buf, 1, 60, [], 0, (1, 0, 5))
    assert text.startswith("tic.index_wh:")


# ---------------------------------------------------------------- decode: reject rules (spec section 8)


def test_reject_header_rules():
    assert message(PayloadError, mp.decode, None, b"").startswith("header:")
    assert message(PayloadError, mp.decode, None, h("210000000103")).startswith("version:")
    assert message(PayloadError, mp.decode, None, h("0100")).startswith("version:")
    assert message(PayloadError, mp.decode, None, h("14")).startswith("kind:")
    assert message(PayloadError, mp.decode, 2, h(EXAMPLE_REPORT)).startswith("fport:")
    assert message(PayloadError, mp.decode, 0, h(EXAMPLE_REPORT)).startswith("fport:")
    assert message(PayloadError, mp.decode, None, "1100").startswith("data:")


def test_reject_report_rules():
    cases = (
        ("header:", "110000000100"),
        ("interval_s:", "11000000010000"),
        ("block:", "1100000001038430"),
        ("channels[0]:", "110000000103841000000001"),
        ("channels[0].deltas:", "110000000103841002000000010001"),
        ("channels[1].channel:", "11000000010384100000000001100000000001"),
        ("channels[1].channel:", "11000000010384110000000001100000000001"),
        ("tic:", "110000000103842000000000100000000001"),
        ("tic:", "11000000010384200000000000"),
        ("tic:", "1100000001038421000000"),
        ("tic.tariff:", "110000000103842100000200000001"),
    )
    for prefix, hexframe in cases:
        text = message(PayloadError, mp.decode, 1, h(hexframe))
        assert text.startswith(prefix), (prefix, hexframe, text)


def test_reject_alarm_rules():
    assert message(PayloadError, mp.decode, 2, h(EXAMPLE_ALARM[:-2])).startswith("alarm:")
    assert message(PayloadError, mp.decode, 2, h(EXAMPLE_ALARM + "00")).startswith("alarm:")
    assert message(PayloadError, mp.decode, 2, h("1210" + EXAMPLE_ALARM[4:])).startswith("alarm:")
    assert message(PayloadError, mp.decode, 2, h("1202c1" + EXAMPLE_ALARM[6:])).startswith(
        "raised:"
    )


def test_reject_status_rules():
    good = EXAMPLE_STATUS
    cases = (
        ("status:", good[:32]),
        ("thresholds:", good[:-2]),
        ("thresholds:", good + "00"),
        ("trigger:", good[:2] + "04" + good[4:]),
        ("interval_s:", good[:18] + "0000" + good[22:]),
        ("dr:", good[:24] + "a5" + good[26:]),
        ("confirmed:", good[:24] + "65" + good[26:]),
        ("tic_mode:", good[:30] + "03" + good[32:]),
        ("thresholds:", good[:32] + "11" + good[34:]),
        ("thresholds[0].channel:", good[:34] + "10" + good[36:]),
        ("thresholds[1].channel:", good[:32] + "02" + good[34:] + good[34:]),
    )
    for prefix, hexframe in cases:
        text = message(PayloadError, mp.decode, 3, h(hexframe))
        assert text.startswith(prefix), (prefix, hexframe, text)


def test_reject_command_rules():
    cases = (
        ("commands:", "1a"),
        ("commands[0].cmd:", "1a09"),
        ("commands[1].cmd:", "1a0700"),
        ("commands[0]:", "1a0102"),
        ("commands[1]:", "1a07030000"),
        ("commands[0].interval_s:", "1a010000"),
        ("commands[0].channel:", "1a031000000000"),
        ("commands[0].channel:", "1a0410000000000000"),
        ("commands[0].dr:", "1a0520"),
        ("commands[0].confirmed:", "1a0603"),
    )
    for prefix, hexframe in cases:
        text = message(PayloadError, mp.decode, 10, h(hexframe))
        assert text.startswith(prefix), (prefix, hexframe, text)


# ---------------------------------------------------------------- encode from dicts: errors


def test_encode_rejects_bad_dicts_naming_the_field():
    report = {
        "kind": "report",
        "seq": 10,
        "interval_s": 60,
        "channels": [{"channel": 0, "readings": [{"index": 5}]}],
    }

    def variant(**changes):
        frame = dict(report)
        frame.update(changes)
        return frame

    cases = (
        ("frame:", [1, 2]),
        ("kind:", {"kind": "nope"}),
        ("version:", variant(version=2)),
        ("version:", variant(version=True)),
        ("colour:", variant(colour="red")),
        ("seq:", {"kind": "report", "interval_s": 60}),
        ("seq:", variant(seq=True)),
        ("seq:", variant(seq=1.0)),
        ("interval_s:", variant(interval_s=0)),
        ("status[0]:", variant(status=["nope"])),
        ("status[1]:", variant(status=["leak", "leak"])),
        ("status:", variant(status="leak")),
        ("channels:", variant(channels={})),
        ("channels[0].readings:", variant(channels=[{"channel": 0, "readings": []}])),
        ("channels[0].readings:", variant(channels=[{"channel": 0}])),
        (
            "channels[0].readings[0].seq:",
            variant(channels=[{"channel": 0, "readings": [{"seq": 9, "index": 1}]}]),
        ),
        (
            "channels[0].readings[1].index:",
            variant(channels=[{"channel": 0, "readings": [{"index": 70000}, {"index": 1}]}]),
        ),
        (
            "channels[0].readings[0].index:",
            variant(channels=[{"channel": 0, "readings": [{"index": "5"}]}]),
        ),
        (
            "channels[0].readings:",
            variant(channels=[{"channel": 0, "readings": [{"index": 1}] * 257}]),
        ),
        (
            "channels[1].channel:",
            variant(
                channels=[
                    {"channel": 1, "readings": [{"index": 1}]},
                    {"channel": 0, "readings": [{"index": 1}]},
                ]
            ),
        ),
        ("channels[0].channel:", variant(channels=[{"channel": 16, "readings": [{"index": 1}]}])),
        ("tic.tariff:", variant(tic={"papp_va": 1, "tariff": 3, "index_wh": [1]})),
        ("tic.index_wh:", variant(tic={"papp_va": 1, "tariff": 0, "index_wh": 5})),
        ("tic.index_wh:", variant(tic={"papp_va": 1, "tariff": 0, "index_wh": [1] * 16})),
        ("tic.papp_va:", variant(tic={"tariff": 0, "index_wh": []})),
        ("alarm:", {"kind": "alarm", "alarm": "fire", "raised": True, "seq": 1, "value": 1}),
        ("raised:", {"kind": "alarm", "alarm": "leak", "raised": 1, "seq": 1, "value": 1}),
        ("value:", {"kind": "alarm", "alarm": "leak", "raised": True, "seq": 1, "value": -1}),
        ("firmware:", dict(EXAMPLE_STATUS_JSON, firmware="1.2")),
        ("firmware:", dict(EXAMPLE_STATUS_JSON, firmware="1.02.3")),
        ("firmware:", dict(EXAMPLE_STATUS_JSON, firmware="1.256.3")),
        ("trigger:", dict(EXAMPLE_STATUS_JSON, trigger="whim")),
        ("dr:", dict(EXAMPLE_STATUS_JSON, dr=16)),
        ("confirmed:", dict(EXAMPLE_STATUS_JSON, confirmed="sometimes")),
        ("tic_mode:", dict(EXAMPLE_STATUS_JSON, tic_mode="auto")),
        (
            "thresholds[0].leak_h:",
            dict(EXAMPLE_STATUS_JSON, thresholds=[{"channel": 0, "flow_high": 0, "no_pulse_h": 0}]),
        ),
        ("commands:", {"kind": "command", "commands": []}),
        ("commands[0].cmd:", {"kind": "command", "commands": [{"cmd": "explode"}]}),
        ("commands[0].interval_s:", {"kind": "command", "commands": [{"cmd": "set_interval"}]}),
        ("commands[0].extra:", {"kind": "command", "commands": [{"cmd": "rejoin", "extra": 1}]}),
        (
            "commands[0].adr:",
            {"kind": "command", "commands": [{"cmd": "set_dr", "dr": 1, "adr": "yes"}]},
        ),
        (
            "commands[0].index:",
            {
                "kind": "command",
                "commands": [{"cmd": "preset_counter", "channel": 0, "index": 1 << 32}],
            },
        ),
    )
    for prefix, frame in cases:
        text = message(PayloadError, mp.encode, frame)
        assert text.startswith(prefix), (prefix, text)


def test_payload_error_is_a_value_error():
    assert isinstance(raises(ValueError, mp.decode, None, b""), PayloadError)


def test_device_encoders_allocate_nothing_on_micropython():
    import gc

    if not hasattr(gc, "mem_alloc"):
        return  # CPython: nothing to measure; the MicroPython run checks it
    buf = bytearray(242)
    channels = [(0, [100000 - 3 * i for i in range(20)]), (1, [5000, 4999, 4990])]
    tic = (1520, 1, [123456, 234567])
    thresholds = [(0, 2500, 48, 0)]
    firmware = (1, 2, 0)
    for _ in range(2):  # the first round warms up whatever is lazily created
        gc.collect()
        before = gc.mem_alloc()
        for seq in range(10):
            mp.encode_report_into(buf, seq, 900, channels, 0, tic, 51, 8)
            mp.encode_alarm_into(buf, 2, True, 1, mp.FLAG_LEAK, seq, 69990)
            mp.encode_status_into(
                buf, 1, firmware, 0, seq, 900, 4, 5, False, 1, 3650, 1, thresholds
            )
        used = gc.mem_alloc() - before
    assert used == 0, used
