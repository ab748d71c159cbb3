"""What ChirpStack's gateway bridge (internal/backend/semtechudp/packets) refuses, decode() refuses.

Rule by rule, then as a property against a Python model of the bridge's Go unmarshalling
(push_data.go / packets.go field types), then the nano-gateway mistakes of ARCHITECTURE §6.
"""

import base64
import json
import re
import struct

import pytest
import semtech
from errors import SemtechError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EUI = bytes.fromhex("b827ebfffe6c1a2b")
PAYLOAD = bytes.fromhex("40112233448000010197d1b2")


def rxpk_dict(**changes):
    text = semtech.format_rxpk(
        3512348611,
        868100000,
        "SF7BW125",
        "4/5",
        -35,
        -75,
        PAYLOAD,
        time="2026-11-24T10:00:00.000123Z",
    )
    obj = json.loads(text)
    obj.update(changes)
    return obj


def stat_dict(**changes):
    obj = json.loads(semtech.format_stat("2026-11-24 10:00:00 GMT", 12, 10, 10, 1000, 3, 2))
    obj.update(changes)
    return obj


def push_data(body, version=2):
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    return bytes([version, 0x34, 0x12, 0x00]) + EUI + text.encode()


def rejected(datagram, field):
    with pytest.raises(SemtechError) as info:
        semtech.decode(datagram)
    message = str(info.value)
    assert field in message, message
    assert "\n" not in message
    return message


def accepted(datagram):
    return semtech.decode(datagram)


# --- header and lengths (packets.go, pull_data.go, push_data.go, pull_resp.go, tx_ack.go) -------


@pytest.mark.parametrize("version", [0, 3, 0x10, 0xFF])
def test_only_protocol_versions_1_and_2(version):
    rejected(bytes([version, 0, 0, 2]) + EUI, "version")
    rejected(push_data({"rxpk": [rxpk_dict()]}, version), "version")


@pytest.mark.parametrize("version", [1, 2])
def test_versions_1_and_2_accepted(version):
    assert accepted(bytes([version, 0, 0, 2]) + EUI).version == version
    assert accepted(push_data({"rxpk": [rxpk_dict()]}, version)).version == version


def test_unknown_packet_type():
    rejected(b"\x02\x00\x00\x06" + EUI, "type")
    rejected(b"\x02\x00\x00\xff", "type")


@pytest.mark.parametrize("size", [4, 11, 13, 20])
def test_pull_data_exactly_12_bytes(size):
    datagram = (b"\x02\x01\x00\x02" + EUI + b"\x00" * 16)[:size]
    rejected(datagram, "length")


@pytest.mark.parametrize("ptype", [semtech.PUSH_ACK, semtech.PULL_ACK])
def test_acks_exactly_4_bytes(ptype):
    assert accepted(bytes([2, 1, 0, ptype])).type == ptype
    rejected(bytes([2, 1, 0, ptype, 0]), "length")
    rejected(bytes([2, 1, 0, ptype]) + EUI, "length")


def test_push_data_at_least_13_bytes_and_a_json_object():
    rejected(b"\x02\x00\x00\x00" + EUI, "length")
    rejected(push_data("["), "body")
    rejected(push_data("null"), "body")
    rejected(push_data('{"rxpk":[]} x'), "body")
    rejected(push_data('{"rxpk":[]}\x00'), "body")
    assert accepted(push_data("{}")).rxpk == []


def test_pull_resp_at_least_5_bytes():
    rejected(b"\x02\x00\x00\x03", "length")


def test_tx_ack_at_least_12_bytes():
    rejected(b"\x02\x00\x00\x05" + EUI[:7], "length")
    assert accepted(b"\x02\x00\x00\x05" + EUI).error == "NONE"


# --- PUSH_DATA field types (push_data.go RXPK / Stat) -----------------------------------------


def test_rssi_float_rejected():
    rejected(push_data({"rxpk": [rxpk_dict(rssi=-35.0)]}), "rxpk[0].rssi")
    rejected(push_data({"rxpk": [rxpk_dict(rssi=-35.5)]}), "rxpk[0].rssi")
    rejected(push_data({"rxpk": [rxpk_dict(rssi=40000)]}), "rxpk[0].rssi")  # int16


@pytest.mark.parametrize("tmst", [2**32, -1, 1.5, "1", True])
def test_tmst_must_be_uint32(tmst):
    rejected(push_data({"rxpk": [rxpk_dict(tmst=tmst)]}), "rxpk[0].tmst")


def test_tmst_uint32_limits_accepted():
    for tmst in (0, 2**32 - 1):
        assert accepted(push_data({"rxpk": [rxpk_dict(tmst=tmst)]})).rxpk[0]["tmst"] == tmst


@pytest.mark.parametrize(
    "field, value",
    [
        ("chan", 256),
        ("rfch", -1),
        ("size", 70000),
        ("brd", -1),
        ("aesk", 256),
        ("hpw", 300),
        ("tmms", 1.0),
    ],
)
def test_unsigned_and_sized_integers(field, value):
    rejected(push_data({"rxpk": [rxpk_dict(**{field: value})]}), f"rxpk[0].{field}")


@pytest.mark.parametrize(
    "time",
    [
        "2014-01-12T08:59:28Z",
        "2014-01-12 08:59:28",
        "2014-01-12 08:59:28 gmt",
        "2014-02-30 08:59:28 GMT",
        "2014-01-12 24:00:00 GMT",
        1389517168,
        None,
    ],
)
def test_bad_stat_time_rejected(time):
    rejected(push_data({"stat": stat_dict(time=time)}), "stat.time")


@pytest.mark.parametrize(
    "time",
    [
        "2026-11-24T10:00:00Z",
        "2026-11-24 10:00:00.000123Z",
        "2026-11-24T10:00:00.000123",
        5,
        "2026-11-24T10:00:00.000123+01:00",
        "2026-11-24T10:00:00.123Z",
    ],
)
def test_bad_rxpk_time_rejected(time):
    rejected(push_data({"rxpk": [rxpk_dict(time=time)]}), "rxpk[0].time")


@pytest.mark.parametrize("time", ["", None])
def test_empty_or_null_rxpk_time_means_no_time(time):
    assert accepted(push_data({"rxpk": [rxpk_dict(time=time)]})).rxpk[0]["time"] is None


@pytest.mark.parametrize(
    "datr", ["SF7", "SF7BW", "BW125", "sf7bw125", "SF7BW125 ", "SF7BW12.5", 7, None]
)
def test_lora_datr_must_match_sf_bw(datr):
    rejected(push_data({"rxpk": [rxpk_dict(datr=datr)]}), "rxpk[0].datr")


def test_fsk_datr_is_a_number():
    fsk = rxpk_dict(modu="FSK", datr=50000)
    del fsk["codr"], fsk["lsnr"]
    assert accepted(push_data({"rxpk": [fsk]})).rxpk[0]["datr"] == 50000
    rejected(push_data({"rxpk": [dict(fsk, datr="50000")]}), "rxpk[0].datr")


@pytest.mark.parametrize("codr", ["4/9", "4/4", "5/4", "", "4/5 ", 45, None])
def test_codr_outside_the_bridge_list_rejected(codr):
    rejected(push_data({"rxpk": [rxpk_dict(codr=codr)]}), "rxpk[0].codr")


@pytest.mark.parametrize("codr", semtech.CODR)
def test_codr_of_the_bridge_list_accepted(codr):
    assert accepted(push_data({"rxpk": [rxpk_dict(codr=codr)]})).rxpk[0]["codr"] == codr


@pytest.mark.parametrize("lsnr, tenths", [(5, 50), (-7.5, -75), (13.8, 138)])
def test_lsnr_int_or_float_accepted(lsnr, tenths):
    assert accepted(push_data({"rxpk": [rxpk_dict(lsnr=lsnr)]})).rxpk[0]["lsnr_x10"] == tenths


@pytest.mark.parametrize("data", ["QAEC!", "QAE", "QAEC====", 12, "", None])
def test_data_must_be_padded_base64_of_size_bytes(data):
    rejected(push_data({"rxpk": [rxpk_dict(data=data)]}), "rxpk[0]")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_rejected_anywhere(literal):
    body = '{"rxpk":[' + json.dumps(rxpk_dict()) + '],"extra":' + literal + "}"
    rejected(push_data(body), "body")


def test_duplicate_and_case_folded_keys_rejected():
    good = json.dumps(rxpk_dict())
    duplicate = good.replace('"rssi": -35', '"rssi": -35.0, "rssi": -35')
    rejected(push_data('{"rxpk":[' + duplicate + "]}"), "body")
    folded = good.replace('"rssi": -35', '"rssi": -35, "RSSI": -35.0')
    rejected(push_data('{"rxpk":[' + folded + "]}"), "RSSI")
    rejected(push_data('{"RXPK":[' + good + "]}"), "RXPK")


def test_one_bad_rxpk_rejects_the_whole_datagram():
    rejected(push_data({"rxpk": [rxpk_dict(), rxpk_dict(rssi=1.5), rxpk_dict()]}), "rxpk[1].rssi")


def test_crc_status_is_decoded_for_the_caller_to_skip():
    # The bridge forwards stat == 1 only; decode() returns every frame with its stat.
    packet = accepted(
        push_data({"rxpk": [rxpk_dict(stat=1), rxpk_dict(stat=-1), rxpk_dict(stat=0)]})
    )
    assert [rx["stat"] for rx in packet.rxpk] == [1, -1, 0]
    rejected(push_data({"rxpk": [rxpk_dict(stat=2)]}), "rxpk[0].stat")


def test_rsig_fields_typed():
    sig = {"ant": 0, "chan": 1, "rssic": -40, "lsnr": 5.5, "etime": "AAAAAAAAAAA="}
    assert accepted(push_data({"rxpk": [rxpk_dict(rsig=[sig])]}))
    rejected(push_data({"rxpk": [rxpk_dict(rsig=[dict(sig, ant=256)])]}), "rxpk[0].rsig[0].ant")
    rejected(push_data({"rxpk": [rxpk_dict(rsig=[dict(sig, etime="x")])]}), "rxpk[0].rsig[0].etime")
    rejected(push_data({"rxpk": [rxpk_dict(rsig={})]}), "rxpk[0].rsig")


def test_stat_counters_uint32_and_ackr_number():
    rejected(push_data({"stat": stat_dict(rxnb=-1)}), "stat.rxnb")
    rejected(push_data({"stat": stat_dict(dwnb=2**32)}), "stat.dwnb")
    rejected(push_data({"stat": stat_dict(ackr="100")}), "stat.ackr")
    rejected(push_data({"stat": stat_dict(alti=1.5)}), "stat.alti")
    assert accepted(push_data({"stat": stat_dict(ackr=100)})).stat["ackr"] == 100


# --- property: the Go model of the bridge refuses => decode() refuses --------------------------

_INT_RANGES = {
    "uint8": (0, 2**8 - 1),
    "int8": (-(2**7), 2**7 - 1),
    "uint16": (0, 2**16 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
GO_RXPK = {
    "time": "compacttime",
    "tmms": "int64",
    "tmst": "uint32",
    "ftime": "uint32",
    "aesk": "uint8",
    "chan": "uint8",
    "rfch": "uint8",
    "stat": "int8",
    "freq": "float64",
    "brd": "uint32",
    "rssi": "int16",
    "size": "uint16",
    "datr": "datr",
    "modu": "string",
    "codr": "string",
    "lsnr": "float64",
    "hpw": "uint8",
    "data": "bytes",
    "rsig": "rsig",
}
GO_RSIG = {"ant": "uint8", "chan": "uint8", "rssic": "int16", "lsnr": "float64", "etime": "bytes"}
GO_STAT = {
    "time": "expandedtime",
    "lati": "float64",
    "long": "float64",
    "alti": "int32",
    "rxnb": "uint32",
    "rxok": "uint32",
    "rxfw": "uint32",
    "ackr": "float64",
    "dwnb": "uint32",
    "txnb": "uint32",
}
BRIDGE_CODR = {
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
}


def _go_bytes_ok(value):
    if not isinstance(value, str):
        return False
    text = value.replace("\r", "").replace("\n", "")
    if len(text) % 4:
        return False
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        return False
    return True


def go_value_rejected(kind, value):
    """True when Go's encoding/json surely fails to unmarshal value into the field type."""
    if value is None:
        return kind == "expandedtime"  # UnmarshalJSON("null") fails to parse; pointers stay nil
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        return type(value) is not int or not low <= value <= high
    if kind == "float64":
        return type(value) not in (int, float)
    if kind == "string":
        return not isinstance(value, str)
    if kind in ("compacttime", "expandedtime"):
        return not isinstance(value, str)  # strings: time.Parse decides (not modelled)
    if kind == "bytes":
        return not _go_bytes_ok(value)
    if kind == "rsig":
        if not isinstance(value, list):
            return True
        return any(go_object_rejected(GO_RSIG, sig) for sig in value if sig is not None)
    return False  # datr: DatR.UnmarshalJSON accepts any value


def go_object_rejected(fields, obj):
    if not isinstance(obj, dict):
        return True
    for key, value in obj.items():
        kind = fields.get(key.lower())
        if kind and go_value_rejected(kind, value):
            return True
    return False


def go_rejects(root):
    """The bridge's UnmarshalBinary + GetUplinkFrames (v4: codr switch) on a decoded JSON root."""
    if not isinstance(root, dict):
        return root is not None
    rxpk = root.get("rxpk")
    if rxpk is not None:
        if not isinstance(rxpk, list):
            return True
        for obj in rxpk:
            if obj is None:
                continue
            if go_object_rejected(GO_RXPK, obj):
                return True
            if obj.get("stat") == 1:  # only CRC-ok frames reach getUplinkFrame
                datr = obj.get("datr")
                if isinstance(datr, str) and datr.startswith("SF"):
                    if not re.search(r"SF(\d+)BW(\d+)", datr) or obj.get("codr") not in BRIDGE_CODR:
                        return True
    stat = root.get("stat")
    return stat is not None and go_object_rejected(GO_STAT, stat)


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([0, 1, -1, 255, 256, 65535, 65536, 2**31, 2**32 - 1, 2**32, -(2**15) - 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(
        [
            "SF7BW125",
            "SF12BW500",
            "SF7",
            "xSF9BW125y",
            "M0CW137",
            "4/5",
            "4/9",
            "4/5LI",
            "LORA",
            "FSK",
            "QAEC",
            "QAE=",
            "2026-11-24T10:00:00.000123Z",
            "2026-11-24T10:00:00.5Z",
            "2026-11-24 10:00:00 GMT",
            "868.1",
            "",
        ]
    ),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def mutated_push_data_roots(draw):
    rx = rxpk_dict()
    for key in draw(st.lists(st.sampled_from(sorted(GO_RXPK) + ["RSSI", "Tmst"]), max_size=4)):
        rx[key] = draw(json_values)
    stat = stat_dict()
    for key in draw(st.lists(st.sampled_from(sorted(GO_STAT)), max_size=2)):
        stat[key] = draw(json_values)
    root = {"rxpk": [rx], "stat": stat}
    if draw(st.booleans()):
        root[draw(st.sampled_from(["rxpk", "stat"]))] = draw(json_values)
    return root


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_push_data_roots())
def test_whatever_the_bridge_refuses_decode_refuses(root):
    datagram = push_data(root)
    if go_rejects(root):
        with pytest.raises(SemtechError):
            semtech.decode(datagram)
    else:
        try:
            packet = semtech.decode(datagram)
        except SemtechError:
            return  # stricter than the bridge (documented in lib/semtech.py)
        for rx in packet.rxpk:
            assert (
                type(rx["tmst"]) is int and type(rx["rssi"]) is int and type(rx["freq_hz"]) is int
            )
            assert type(rx["data"]) is bytes and len(rx["data"]) == rx["size"]


def test_go_model_itself_rejects_the_known_cases():
    assert go_rejects({"rxpk": [rxpk_dict(rssi=-35.0)]})
    assert go_rejects({"rxpk": [rxpk_dict(tmst=2**32)]})
    assert go_rejects({"rxpk": [rxpk_dict(datr="SF7")]})
    assert go_rejects({"rxpk": [rxpk_dict(codr="4/9")]})
    assert go_rejects({"stat": stat_dict(time=5)})
    assert not go_rejects({"rxpk": [rxpk_dict()], "stat": stat_dict()})


# --- the nano-gateway mistakes of ARCHITECTURE §6 are detected --------------------------------


def test_tx_ack_sent_as_pull_ack_type_is_detected():
    good = semtech.encode_tx_ack(0x0A0B, EUI, "TOO_LATE")
    pycom = good[:3] + b"\x04" + good[4:]
    rejected(pycom, "length: PULL_ACK must be exactly 4 bytes")
    with pytest.raises(SemtechError, match="type: expected TX_ACK"):
        semtech.decode(pycom, semtech.TX_ACK)
    assert semtech.decode(good, semtech.TX_ACK).error == "TOO_LATE"


def test_tx_ack_carries_the_pull_resp_token():
    resp = semtech.encode_pull_resp(
        0xC0DE, semtech.format_txpk(869525000, "SF12BW125", b"\x01", tmst=5)
    )
    token = semtech.decode(resp).token
    ack = semtech.encode_tx_ack(token, EUI, "COLLISION_PACKET")
    assert ack[1:3] == resp[1:3]


def test_tmst_is_a_field_not_a_substring():
    # Pycom tested `"tmst" in data`: a txpk without tmst but with the word elsewhere passed.
    body = (
        '{"txpk":{"imme":false,"note":"tmst","freq":868.1,"modu":"LORA","datr":"SF7BW125",'
        '"codr":"4/5","size":1,"data":"AQ=="}}'
    )
    rejected(b"\x02\x00\x00\x03" + body.encode(), "txpk.tmst: missing")


def test_imme_false_is_not_immediate():
    tx = semtech.decode(
        semtech.encode_pull_resp(1, semtech.format_txpk(868100000, "SF7BW125", b"\x01", tmst=99))
    ).txpk
    assert tx["imme"] is False and tx["tmst"] == 99


def test_powe_ipol_codr_prea_ncrc_reach_the_gateway():
    txpk = semtech.format_txpk(
        869525000, "SF9BW125", b"\x01", tmst=1, powe=27, codr="4/8", ipol=True, prea=12, ncrc=True
    )
    tx = semtech.decode(semtech.encode_pull_resp(1, txpk)).txpk
    assert (tx["powe"], tx["codr"], tx["ipol"], tx["prea"], tx["ncrc"]) == (
        27,
        "4/8",
        True,
        12,
        True,
    )


def test_freq_keeps_all_decimals():
    rx = semtech.format_rxpk(1, 869525000, "SF12BW125", "4/5", -100, 0, b"\x01")
    assert '"freq":869.525000,' in rx  # Pycom rendered 869.5
    assert semtech.decode(semtech.encode_push_data(1, EUI, [rx])).rxpk[0]["freq_hz"] == 869525000


def test_rxpk_time_without_zero_padding_is_refused():
    # Pycom: "%d" microseconds -> 123 µs written ".123Z", which the bridge reads as 123 ms.
    rejected(push_data({"rxpk": [rxpk_dict(time="2026-11-24T10:00:00.123Z")]}), "rxpk[0].time")


def test_lsnr_keeps_tenths():
    rx = semtech.format_rxpk(1, 868100000, "SF7BW125", "4/5", -100, -75, b"\x01")
    assert '"lsnr":-7.5,' in rx  # Pycom rendered whole dB


def _float32(text):
    return struct.unpack("<f", struct.pack("<f", float(text)))[0]


def test_freq_exact_when_json_numbers_are_float32(monkeypatch):
    """On the ESP32, ujson parses numbers into 32-bit floats: freq must not go through them."""
    assert int(_float32("868.1") * 1e6) != 868100000  # what a float path gets on the board
    monkeypatch.setattr(semtech, "_json_loads", lambda text: json.loads(text, parse_float=_float32))
    for hz in (868100000, 869525000, 867900000, 864123456):
        txpk = semtech.format_txpk(hz, "SF7BW125", b"\x01", tmst=2**32 - 1)
        tx = semtech.decode(semtech.encode_pull_resp(1, txpk)).txpk
        assert tx["freq_hz"] == hz and tx["tmst"] == 2**32 - 1
        rx = semtech.format_rxpk(2**32 - 1, hz, "SF7BW125", "4/5", -35, -75, b"\x01")
        assert semtech.decode(semtech.encode_push_data(1, EUI, [rx])).rxpk[0]["freq_hz"] == hz
