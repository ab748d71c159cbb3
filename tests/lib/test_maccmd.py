"""maccmd: EU868 Class A MAC commands, both directions, wire layouts checked by hand from the spec."""

import maccmd
from errors import FrameError, MacCommandError
from testkit import h, hx, raises, vectors

# (uplink, wire hex, decoded commands)
CASES = [
    (True, "02", [{"cid": 2, "name": "LinkCheckReq"}]),
    (False, "020a03", [{"cid": 2, "name": "LinkCheckAns", "margin": 10, "gw_cnt": 3}]),
    (
        False,
        "0351070001",
        [
            {
                "cid": 3,
                "name": "LinkADRReq",
                "data_rate": 5,
                "tx_power": 1,
                "ch_mask": 7,
                "ch_mask_cntl": 0,
                "nb_trans": 1,
            }
        ],
    ),
    (
        False,
        "030f0180 62".replace(" ", ""),
        [
            {
                "cid": 3,
                "name": "LinkADRReq",
                "data_rate": 0,
                "tx_power": 15,
                "ch_mask": 0x8001,
                "ch_mask_cntl": 6,
                "nb_trans": 2,
            }
        ],
    ),
    (
        True,
        "0307",
        [
            {
                "cid": 3,
                "name": "LinkADRAns",
                "power_ack": True,
                "data_rate_ack": True,
                "channel_mask_ack": True,
            }
        ],
    ),
    (
        True,
        "0302",
        [
            {
                "cid": 3,
                "name": "LinkADRAns",
                "power_ack": False,
                "data_rate_ack": True,
                "channel_mask_ack": False,
            }
        ],
    ),
    (False, "0407", [{"cid": 4, "name": "DutyCycleReq", "max_duty_cycle": 7}]),
    (True, "04", [{"cid": 4, "name": "DutyCycleAns"}]),
    (
        False,
        "0513d2ad84",
        [
            {
                "cid": 5,
                "name": "RXParamSetupReq",
                "rx1_dr_offset": 1,
                "rx2_data_rate": 3,
                "frequency": 869525000,
            }
        ],
    ),
    (
        True,
        "0505",
        [
            {
                "cid": 5,
                "name": "RXParamSetupAns",
                "rx1_dr_offset_ack": True,
                "rx2_data_rate_ack": False,
                "channel_ack": True,
            }
        ],
    ),
    (False, "06", [{"cid": 6, "name": "DevStatusReq"}]),
    (True, "06ff3b", [{"cid": 6, "name": "DevStatusAns", "battery": 255, "margin": -5}]),
    (True, "060014", [{"cid": 6, "name": "DevStatusAns", "battery": 0, "margin": 20}]),
    (
        False,
        "0703184f8450",
        [
            {
                "cid": 7,
                "name": "NewChannelReq",
                "ch_index": 3,
                "frequency": 867100000,
                "min_dr": 0,
                "max_dr": 5,
            }
        ],
    ),
    (
        False,
        "070400000000",
        [
            {
                "cid": 7,
                "name": "NewChannelReq",
                "ch_index": 4,
                "frequency": 0,
                "min_dr": 0,
                "max_dr": 0,
            }
        ],
    ),
    (
        True,
        "0703",
        [
            {
                "cid": 7,
                "name": "NewChannelAns",
                "data_rate_range_ok": True,
                "channel_frequency_ok": True,
            }
        ],
    ),
    (False, "0801", [{"cid": 8, "name": "RXTimingSetupReq", "delay": 1}]),
    (True, "08", [{"cid": 8, "name": "RXTimingSetupAns"}]),
    (
        False,
        "093d",
        [
            {
                "cid": 9,
                "name": "TxParamSetupReq",
                "downlink_dwell_time": True,
                "uplink_dwell_time": True,
                "max_eirp": 13,
            }
        ],
    ),
    (True, "09", [{"cid": 9, "name": "TxParamSetupAns"}]),
    (
        False,
        "0a00287684",
        [{"cid": 10, "name": "DlChannelReq", "ch_index": 0, "frequency": 868100000}],
    ),
    (
        True,
        "0a02",
        [
            {
                "cid": 10,
                "name": "DlChannelAns",
                "uplink_frequency_exists": True,
                "channel_frequency_ok": False,
            }
        ],
    ),
]


def test_each_command_decodes_and_encodes():
    for uplink, wire, cmds in CASES:
        assert maccmd.decode(h(wire), uplink) == cmds, wire
        assert hx(maccmd.encode(cmds, uplink)) == wire, wire


def test_encode_by_name_only_or_cid_only():
    assert hx(maccmd.encode([{"name": "LinkCheckReq"}], True)) == "02"
    assert hx(maccmd.encode([{"cid": 6}], False)) == "06"
    assert hx(maccmd.encode([{"cid": 3, "power_ack": True}], True)) == "0304"
    assert (
        hx(maccmd.encode([{"name": "DlChannelAns", "channel_frequency_ok": True}], True)) == "0a01"
    )


def test_concatenated_list_round_trip():
    down = [c for uplink, _w, cmds in CASES if not uplink for c in cmds]
    wire = maccmd.encode(down, False)
    assert maccmd.decode(wire, False) == down
    up = [c for uplink, _w, cmds in CASES if uplink for c in cmds]
    assert maccmd.decode(maccmd.encode(up, True), True) == up


def test_fopts_vector_from_data_frames():
    v = [x for x in vectors("data") if x["name"] == "brocaar-fopts"][0]
    cmds = maccmd.decode(h(v["expect"]["fopts"]), True)
    assert [c["name"] for c in cmds] == ["LinkCheckReq", "LinkADRAns"]
    assert cmds[1]["power_ack"] and not cmds[1]["data_rate_ack"] and cmds[1]["channel_mask_ack"]


def test_direction_gives_the_meaning():
    assert maccmd.decode(h("06"), False)[0]["name"] == "DevStatusReq"
    raises(MacCommandError, maccmd.decode, h("06"), True)  # DevStatusAns needs 2 bytes
    assert maccmd.decode(h("02"), True)[0]["name"] == "LinkCheckReq"
    raises(MacCommandError, maccmd.decode, h("02"), False)  # LinkCheckAns needs 2 bytes


def test_decode_empty():
    assert maccmd.decode(b"", True) == []
    assert maccmd.decode(bytearray(), False) == []


def test_unknown_cid():
    for wire in ("01", "0b", "0d", "80", "ff", "020000ff"):
        exc = raises(MacCommandError, maccmd.decode, h(wire), False)
        assert "CID" in str(exc)
    raises(MacCommandError, maccmd.decode, h("01"), True)


def test_truncated():
    for uplink, wire in (
        (False, "0351"),
        (False, "05"),
        (False, "0703184f84"),
        (True, "06ff"),
        (True, "0203"),
    ):
        exc = raises(MacCommandError, maccmd.decode, h(wire), uplink)
        assert "truncated" in str(exc)


def test_mac_command_error_is_frame_error():
    raises(FrameError, maccmd.decode, h("ff"), True)


def test_encode_errors():
    raises(MacCommandError, maccmd.encode, [{"name": "LinkADRReq"}], True)  # wrong direction
    raises(MacCommandError, maccmd.encode, [{"name": "NoSuchCommand"}], False)
    raises(MacCommandError, maccmd.encode, [{"cid": 0x42}], False)
    raises(MacCommandError, maccmd.encode, [{"cid": 5, "name": "DevStatusReq"}], False)
    raises(MacCommandError, maccmd.encode, ["LinkCheckReq"], True)
    raises(MacCommandError, maccmd.encode, [{"name": "LinkCheckAns", "margin": 3}], False)
    raises(
        MacCommandError,
        maccmd.encode,
        [{"name": "LinkCheckAns", "margin": 256, "gw_cnt": 1}],
        False,
    )
    bad_adr = {
        "name": "LinkADRReq",
        "data_rate": 16,
        "tx_power": 0,
        "ch_mask": 1,
        "ch_mask_cntl": 0,
        "nb_trans": 1,
    }
    raises(MacCommandError, maccmd.encode, [bad_adr], False)
    raises(
        MacCommandError, maccmd.encode, [{"name": "DevStatusAns", "battery": 1, "margin": 32}], True
    )
    exc = raises(
        MacCommandError,
        maccmd.encode,
        [{"name": "DlChannelReq", "ch_index": 1, "frequency": 868100050}],
        False,
    )
    assert "frequency" in str(exc)
    raises(
        MacCommandError,
        maccmd.encode,
        [{"name": "DlChannelReq", "ch_index": 1, "frequency": 1677721600}],
        False,
    )
    raises(MacCommandError, maccmd.decode, "0302", True)


def test_frequency_is_integer_hz():
    cmds = maccmd.decode(h("0a00287684"), False)
    assert cmds[0]["frequency"] == 868100000
    assert isinstance(cmds[0]["frequency"], int)
    assert maccmd.MAX_EIRP_DBM[7] == 20 and len(maccmd.MAX_EIRP_DBM) == 16
