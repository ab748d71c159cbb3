"""Semtech UDP v2 codec: every packet type both ways, exact frequencies and times, strict decoding.

Portable: runs under CPython (pytest) and MicroPython (tests/mpy/run_lib_tests.mjs).
"""

import semtech
from errors import SemtechError
from testkit import h, hx, raises

EUI = h("b827ebfffe6c1a2b")
TIME = (2026, 11, 24, 10, 0, 0, 123)


def _rxpk(**changes):
    args = {
        "tmst": 3512348611,
        "freq_hz": 868100000,
        "datr": "SF7BW125",
        "codr": "4/5",
        "rssi": -35,
        "lsnr_x10": -75,
        "data": h("40112233448000010197d1b2"),
        "time": semtech.rxpk_time(TIME),
        "chan": 0,
        "rfch": 0,
        "stat": 1,
    }
    args.update(changes)
    return semtech.format_rxpk(**args)


def _stat(**changes):
    args = {
        "time": semtech.stat_time(TIME),
        "rxnb": 12,
        "rxok": 10,
        "rxfw": 10,
        "ackr_x10": 1000,
        "dwnb": 3,
        "txnb": 2,
    }
    args.update(changes)
    return semtech.format_stat(**args)


def _push_data(body):
    return b"\x02\x34\x12\x00" + EUI + body.encode()


def _pull_resp(txpk_json):
    return b"\x02\x99\x00\x03" + ('{"txpk":%s}' % txpk_json).encode()


def _txpk_json(**fields):
    base = {
        "imme": "false",
        "tmst": "1000000",
        "freq": "868.1",
        "rfch": "0",
        "powe": "14",
        "modu": '"LORA"',
        "datr": '"SF7BW125"',
        "codr": '"4/5"',
        "ipol": "true",
        "size": "3",
        "data": '"AQID"',
    }
    base.update(fields)
    return "{" + ",".join('"%s":%s' % (k, v) for k, v in base.items() if v is not None) + "}"


def _decode_txpk(**fields):
    return semtech.decode(_pull_resp(_txpk_json(**fields)), semtech.PULL_RESP).txpk


def _rejects(datagram, field):
    exc = raises(SemtechError, semtech.decode, datagram)
    assert field in str(exc), "%r does not name %r" % (str(exc), field)
    assert "\n" not in str(exc)
    return exc


# --- constants and header --------------------------------------------------------------------


def test_packet_types_and_version():
    assert semtech.PROTOCOL_VERSION == 2
    assert (semtech.PUSH_DATA, semtech.PUSH_ACK, semtech.PULL_DATA) == (0, 1, 2)
    assert (semtech.PULL_RESP, semtech.PULL_ACK, semtech.TX_ACK) == (3, 4, 5)
    assert semtech.TYPE_NAMES[semtech.TX_ACK] == "TX_ACK"


def test_tx_ack_error_names():
    names = semtech.TX_ACK_ERRORS
    for name in (
        "NONE",
        "TOO_LATE",
        "TOO_EARLY",
        "COLLISION_PACKET",
        "COLLISION_BEACON",
        "TX_FREQ",
    ):
        assert name in names
    for name in (
        "TX_POWER",
        "GPS_UNLOCKED",
        "QUEUE_FULL",
        "INTERNAL_ERROR",
        "DUTY_CYCLE_OVERFLOW",
        "IGNORED",
    ):
        assert name in names
    assert len(names) == 12
    assert semtech.ERR_DUTY_CYCLE_OVERFLOW == "DUTY_CYCLE_OVERFLOW"


def test_header_token_little_endian_and_eui_msb_first():
    datagram = semtech.encode_pull_data(0xABCD, EUI)
    assert hx(datagram) == "02cdab02" + "b827ebfffe6c1a2b"
    packet = semtech.decode(datagram)
    assert packet.token == 0xABCD
    assert packet.eui == EUI
    assert packet.version == 2


def test_write_header_into_preallocated_buffer():
    buf = bytearray(16)
    semtech.write_header(buf, 0x0102, semtech.PUSH_ACK)
    assert hx(buf[:4]) == "02020101"
    assert hx(buf[4:]) == "00" * 12
    raises(SemtechError, semtech.write_header, buf, 0x10000, semtech.PUSH_ACK)


def test_pack_whole_datagram_into_buffer_and_reuse_it():
    buf = bytearray(512)
    n = semtech.pack(buf, semtech.PUSH_DATA, 1, EUI, semtech.push_data_body([_rxpk()]))
    assert bytes(buf[:n]) == semtech.encode_push_data(1, EUI, [_rxpk()])
    n = semtech.pack(buf, semtech.TX_ACK, 2, EUI, semtech.tx_ack_body("TOO_LATE"))
    assert semtech.decode(memoryview(buf)[:n]).error == "TOO_LATE"
    exc = raises(SemtechError, semtech.pack, bytearray(20), semtech.PUSH_DATA, 1, EUI, _rxpk())
    assert "body" in str(exc)
    exc = raises(SemtechError, semtech.pack, buf, semtech.PULL_DATA, 1, EUI[:7])
    assert "eui" in str(exc)


def test_next_token_wraps_at_16_bits():
    assert semtech.next_token(0) == 1
    assert semtech.next_token(0xFFFE) == 0xFFFF
    assert semtech.next_token(0xFFFF) == 0


def test_random_token_from_callers_source():
    assert semtech.random_token(lambda n: b"\x34\x12") == 0x1234
    assert 0 <= semtech.random_token(lambda n: b"\xff\xff") <= 0xFFFF


# --- frequencies -----------------------------------------------------------------------------


def test_freq_text_from_integer_hz():
    assert semtech.freq_text(868100000) == "868.100000"
    assert semtech.freq_text(869525000) == "869.525000"
    assert semtech.freq_text(867900000) == "867.900000"
    assert semtech.freq_text(868100001) == "868.100001"
    assert semtech.freq_text(868100000, True) == "868.1"
    assert semtech.freq_text(869525000, True) == "869.525"
    assert semtech.freq_text(868000000, True) == "868"
    raises(SemtechError, semtech.freq_text, 0)
    raises(SemtechError, semtech.freq_text, 868.1)


def test_parse_freq_exact_without_float():
    assert semtech.parse_freq("868.100000") == 868100000
    assert semtech.parse_freq("868.1") == 868100000
    assert semtech.parse_freq("869.525") == 869525000
    assert semtech.parse_freq("867.9") == 867900000
    assert semtech.parse_freq("868") == 868000000
    assert semtech.parse_freq("864.123456") == 864123456
    assert semtech.parse_freq("8.681e2") == 868100000
    assert semtech.parse_freq("868.1000000000") == 868100000


def test_parse_freq_rejects_sub_hz_negative_and_junk():
    for text in (
        "868.1000001",
        "-868.1",
        "868.",
        ".5",
        "08.1",
        "8e",
        "868.1.2",
        "",
        "0",
        "4294.967296",
    ):
        exc = raises(SemtechError, semtech.parse_freq, text)
        assert str(exc).startswith("freq:"), str(exc)


def test_rxpk_freq_round_trip_exact():
    for hz in (868100000, 869525000, 867900000, 868300000, 868500000, 867100000):
        datagram = semtech.encode_push_data(5, EUI, [_rxpk(freq_hz=hz)])
        assert (semtech.freq_text(hz) + ",").encode() in datagram
        assert semtech.decode(datagram).rxpk[0]["freq_hz"] == hz


def test_txpk_freq_from_json_text_short_and_long():
    assert _decode_txpk(freq="868.1")["freq_hz"] == 868100000
    assert _decode_txpk(freq="868.100000")["freq_hz"] == 868100000
    assert _decode_txpk(freq="869.525")["freq_hz"] == 869525000
    assert _decode_txpk(freq="867.9")["freq_hz"] == 867900000
    assert _decode_txpk(freq=" 869.525 ")["freq_hz"] == 869525000


def test_freq_inside_a_string_is_not_taken_for_the_key():
    txpk = _decode_txpk(note='"\\"freq\\":1.5"', other='"freq"', freq="869.525")
    assert txpk["freq_hz"] == 869525000


def test_freq_as_string_rejected():
    exc = raises(SemtechError, _decode_txpk, freq='"868.1"')
    assert "txpk.freq" in str(exc)
    exc = raises(SemtechError, _decode_txpk, freq='"=868.1"')
    assert "txpk.freq" in str(exc)
    exc = raises(SemtechError, _decode_txpk, freq="true")
    assert "txpk.freq" in str(exc)
    exc = raises(SemtechError, _decode_txpk, freq=None)
    assert "txpk.freq: missing" in str(exc)


# --- times and tenths ------------------------------------------------------------------------


def test_rxpk_time_zero_padded_microseconds():
    assert semtech.rxpk_time((2026, 11, 24, 10, 0, 0, 123)) == "2026-11-24T10:00:00.000123Z"
    assert semtech.rxpk_time((2026, 1, 2, 3, 4, 5, 7, None)) == "2026-01-02T03:04:05.000007Z"
    assert semtech.is_rxpk_time("2026-11-24T10:00:00.000123Z")
    assert not semtech.is_rxpk_time("2026-11-24T10:00:00.123Z")
    assert not semtech.is_rxpk_time("2026-02-29T10:00:00.000000Z")
    assert semtech.is_rxpk_time("2028-02-29T10:00:00.000000Z")


def test_stat_time_format():
    assert semtech.stat_time((2026, 1, 2, 3, 4, 5)) == "2026-01-02 03:04:05 GMT"
    assert semtech.is_stat_time("2014-01-12 08:59:28 GMT")
    assert not semtech.is_stat_time("2014-01-12T08:59:28 GMT")
    assert not semtech.is_stat_time("2014-01-12 08:59:28 UTC")
    assert not semtech.is_stat_time("2014-13-12 08:59:28 GMT")


def test_lsnr_rendered_from_tenths():
    for tenths, text in ((-75, "-7.5"), (-5, "-0.5"), (0, "0.0"), (95, "9.5"), (-200, "-20.0")):
        rx = _rxpk(lsnr_x10=tenths)
        assert ('"lsnr":%s,' % text) in rx, rx
        packet = semtech.decode(semtech.encode_push_data(1, EUI, [rx]))
        assert packet.rxpk[0]["lsnr_x10"] == tenths


def test_ackr_rendered_from_tenths():
    assert '"ackr":100.0,' in _stat(ackr_x10=1000)
    assert '"ackr":66.7,' in _stat(ackr_x10=667)
    assert '"ackr":0.0,' in _stat(ackr_x10=0)


# --- round trips of every type ---------------------------------------------------------------


def test_push_data_round_trip():
    datagram = semtech.encode_push_data(0x1234, EUI, [_rxpk(), _rxpk(rssi=-120, chan=2)], _stat())
    packet = semtech.decode(datagram)
    assert packet.type == semtech.PUSH_DATA and packet.name == "PUSH_DATA"
    assert packet.token == 0x1234 and packet.eui == EUI
    rx = packet.rxpk[0]
    assert rx["time"] == "2026-11-24T10:00:00.000123Z"
    assert rx["tmst"] == 3512348611
    assert rx["freq_hz"] == 868100000
    assert (rx["chan"], rx["rfch"], rx["stat"]) == (0, 0, 1)
    assert (rx["modu"], rx["datr"], rx["sf"], rx["bw_hz"], rx["codr"]) == (
        "LORA",
        "SF7BW125",
        7,
        125000,
        "4/5",
    )
    assert rx["rssi"] == -35 and rx["lsnr_x10"] == -75
    assert rx["size"] == 12 and rx["data"] == h("40112233448000010197d1b2")
    assert packet.rxpk[1]["rssi"] == -120 and packet.rxpk[1]["chan"] == 2
    st = packet.stat
    assert st["time"] == "2026-11-24 10:00:00 GMT"
    assert (st["rxnb"], st["rxok"], st["rxfw"], st["dwnb"], st["txnb"]) == (12, 10, 10, 3, 2)
    assert st["ackr"] == 100
    assert st["lati"] is None and st["alti"] is None


def test_push_data_without_time_and_stat_only():
    rx = _rxpk(time=None)
    assert '"time"' not in rx
    packet = semtech.decode(semtech.encode_push_data(1, EUI, [rx]))
    assert packet.rxpk[0]["time"] is None and packet.stat is None
    packet = semtech.decode(
        semtech.encode_push_data(2, EUI, (), _stat(lati=46.24, long=3.2523, alti=145))
    )
    assert packet.rxpk == []
    assert packet.stat["alti"] == 145
    assert abs(packet.stat["lati"] - 46.24) < 1e-4 and abs(packet.stat["long"] - 3.2523) < 1e-4
    raises(SemtechError, semtech.push_data_body, (), None)


def test_push_ack_pull_ack_round_trip():
    for encoder, ptype in (
        (semtech.encode_push_ack, semtech.PUSH_ACK),
        (semtech.encode_pull_ack, semtech.PULL_ACK),
    ):
        datagram = encoder(0xBEEF)
        assert len(datagram) == 4 and datagram[3] == ptype
        packet = semtech.decode(datagram)
        assert (packet.type, packet.token, packet.eui) == (ptype, 0xBEEF, None)


def test_pull_data_round_trip():
    datagram = semtech.encode_pull_data(7, EUI)
    assert len(datagram) == 12
    packet = semtech.decode(datagram, semtech.PULL_DATA)
    assert (packet.type, packet.token, packet.eui) == (semtech.PULL_DATA, 7, EUI)


def test_pull_resp_round_trip():
    payload = h("60040302010000000a1b2c3d")
    txpk = semtech.format_txpk(
        869525000, "SF12BW125", payload, tmst=4294967295, powe=27, codr="4/5"
    )
    assert '"freq":869.525,' in txpk
    packet = semtech.decode(semtech.encode_pull_resp(0x4242, txpk))
    assert packet.type == semtech.PULL_RESP and packet.token == 0x4242 and packet.eui is None
    tx = packet.txpk
    assert tx["imme"] is False and tx["tmst"] == 4294967295 and tx["tmms"] is None
    assert tx["freq_hz"] == 869525000 and tx["powe"] == 27 and tx["rfch"] == 0
    assert (tx["modu"], tx["datr"], tx["sf"], tx["bw_hz"], tx["codr"]) == (
        "LORA",
        "SF12BW125",
        12,
        125000,
        "4/5",
    )
    assert tx["ipol"] is True and tx["ncrc"] is False and tx["prea"] is None
    assert tx["size"] == len(payload) and tx["data"] == payload


def test_pull_resp_optional_fields_and_immediate():
    txpk = semtech.format_txpk(
        868100000, "SF9BW125", b"\x01", imme=True, prea=8, ncrc=True, ipol=False
    )
    tx = semtech.decode(semtech.encode_pull_resp(1, txpk)).txpk
    assert tx["imme"] is True and tx["tmst"] is None
    assert tx["prea"] == 8 and tx["ncrc"] is True and tx["ipol"] is False
    fsk = semtech.format_txpk(868800000, 50000, b"\x01\x02", imme=True, modu="FSK", fdev=25000)
    tx = semtech.decode(semtech.encode_pull_resp(1, fsk)).txpk
    assert (tx["modu"], tx["datr"], tx["fdev"], tx["sf"]) == ("FSK", 50000, 25000, None)


def test_tx_ack_round_trip_every_error():
    for name in semtech.TX_ACK_ERRORS:
        datagram = semtech.encode_tx_ack(0x0102, EUI, name)
        assert datagram[3] == 0x05 and datagram[1:3] == b"\x02\x01"
        packet = semtech.decode(datagram, semtech.TX_ACK)
        assert (packet.error, packet.token, packet.eui) == (name, 0x0102, EUI)
    raises(SemtechError, semtech.encode_tx_ack, 1, EUI, "LATE")


def test_tx_ack_none_has_no_body():
    datagram = semtech.encode_tx_ack(9, EUI)
    assert len(datagram) == 12
    assert semtech.tx_ack_body("NONE") is None
    body = b'{"txpk_ack":{"error":"NONE"}}'
    assert semtech.decode(datagram[:12] + body).error == "NONE"
    assert semtech.decode(datagram[:12] + b"\x00").error == "NONE"  # Kerlink iBTS trailing NUL


def test_tx_ack_warning_of_sx1302_forwarders():
    packet = semtech.decode(
        semtech.encode_tx_ack(1, EUI)[:12] + b'{"txpk_ack":{"warn":"TX_POWER","value":14}}'
    )
    assert packet.error == "NONE" and packet.warn == "TX_POWER"


# --- txpk typing for the gateway -------------------------------------------------------------


def test_txpk_typed_fields():
    tx = _decode_txpk(imme="false", tmst="3000000", prea="10", ncrc="false", powe="16", rfch="1")
    assert tx["imme"] is False and tx["tmst"] == 3000000 and tx["prea"] == 10
    assert tx["powe"] == 16 and tx["rfch"] == 1 and tx["ncrc"] is False


def test_txpk_gps_time_and_unknown_fields():
    tx = _decode_txpk(tmst=None, tmms="1234567890123", brd="0", ant="0", future='{"x":[1,2]}')
    assert tx["tmms"] == 1234567890123 and tx["tmst"] is None


def test_txpk_data_padding_optional():
    assert _decode_txpk(size="4", data='"AQIDBA"')["data"] == b"\x01\x02\x03\x04"
    assert _decode_txpk(size="4", data='"AQIDBA=="')["data"] == b"\x01\x02\x03\x04"


def test_txpk_wrong_types_name_the_field():
    cases = (
        ("imme", {"imme": "1"}),
        ("ipol", {"ipol": '"true"'}),
        ("ncrc", {"ncrc": "0"}),
        ("tmst", {"tmst": "-1"}),
        ("tmst", {"tmst": "4294967296"}),
        ("tmst", {"tmst": "1000.5"}),
        ("tmst", {"tmst": None}),
        ("powe", {"powe": "14.0"}),
        ("rfch", {"rfch": "256"}),
        ("prea", {"prea": '"8"'}),
        ("modu", {"modu": '"LoRa"'}),
        ("datr", {"datr": '"SF7"'}),
        ("datr", {"datr": "7"}),
        ("codr", {"codr": '"4/9"'}),
        ("codr", {"codr": None}),
        ("size", {"size": "4"}),
        ("data", {"data": '"AQ!D"'}),
        ("data", {"data": "null"}),
        ("fdev", {"fdev": "-1"}),
    )
    for field, fields in cases:
        exc = raises(SemtechError, _decode_txpk, **fields)
        assert ("txpk.%s" % field) in str(exc), "%s: %s" % (field, exc)


def test_pull_resp_without_txpk():
    _rejects(b'\x02\x00\x00\x03{"rxpk":[]}', "txpk")
    _rejects(b'\x02\x00\x00\x03{"txpk":[1]}', "txpk")


# --- strict rejection of the header and body -------------------------------------------------


def test_rejects_short_header_version_and_type():
    _rejects(b"\x02\x00", "length")
    _rejects(b"\x03\x00\x00\x02" + EUI, "version")
    _rejects(b"\x00\x00\x00\x02" + EUI, "version")
    _rejects(b"\x02\x00\x00\x06", "type")
    assert semtech.decode(b"\x01\x00\x00\x02" + EUI).version == 1


def test_rejects_wrong_lengths():
    _rejects(b"\x02\x00\x00\x02" + EUI + b"\x00", "length")
    _rejects(b"\x02\x00\x00\x02" + EUI[:7], "length")
    _rejects(b"\x02\x00\x00\x01\x00", "length")
    _rejects(b"\x02\x00\x00\x04" + EUI, "length")
    _rejects(b"\x02\x00\x00\x00" + EUI, "length")
    _rejects(b"\x02\x00\x00\x05" + EUI[:7], "length")
    _rejects(b"\x02\x00\x00\x03", "length")


def test_expect_names_the_type():
    exc = raises(SemtechError, semtech.decode, semtech.encode_pull_ack(1), semtech.TX_ACK)
    assert "type: expected TX_ACK" in str(exc) and "PULL_ACK" in str(exc)


def test_rejects_bad_json_body():
    _rejects(_push_data('{"rxpk":['), "body")
    _rejects(_push_data("[]"), "body")
    _rejects(_push_data('{"rxpk":{}}'), "rxpk")
    _rejects(_push_data('{"rxpk":[1]}'), "rxpk[0]")
    _rejects(b"\x02\x00\x00\x00" + EUI + b'\xff{"rxpk":[]}', "body")


def test_rxpk_rejections_name_the_field():
    good = _rxpk()
    cases = (
        ("rssi", '"rssi":-35,', '"rssi":-35.0,'),
        ("tmst", '"tmst":3512348611,', '"tmst":4294967296,'),
        ("tmst", '"tmst":3512348611,', ""),
        ("time", ".000123Z", ".123Z"),
        ("chan", '"chan":0,', '"chan":-1,'),
        ("stat", '"stat":1,', '"stat":2,'),
        ("datr", '"SF7BW125"', '"SF7"'),
        ("codr", '"4/5"', '"4/9"'),
        ("modu", '"LORA"', '"lora"'),
        ("lsnr", '"lsnr":-7.5,', '"lsnr":"-7.5",'),
        ("size", '"size":12,', '"size":11,'),
        ("data", '"data":"', '"data":"!'),
        ("freq", '"freq":868.100000,', '"freq":-868.1,'),
    )
    for field, old, new in cases:
        assert old in good, old
        bad = good.replace(old, new)
        _rejects(_push_data('{"rxpk":[%s]}' % bad), "rxpk[0].%s" % field)
    _rejects(
        _push_data('{"rxpk":[%s,%s]}' % (good, good.replace('"rssi":-35', '"rssi":1e2'))),
        "rxpk[1].rssi",
    )


def test_stat_rejections_name_the_field():
    good = _stat()
    cases = (
        ("time", "2026-11-24 10:00:00 GMT", "2026-11-24T10:00:00Z"),
        ("rxnb", '"rxnb":12,', '"rxnb":-1,'),
        ("ackr", '"ackr":100.0,', '"ackr":"100",'),
        ("txnb", '"txnb":2', '"txnb":2.5'),
    )
    for field, old, new in cases:
        assert old in good, old
        _rejects(_push_data('{"stat":%s}' % good.replace(old, new)), "stat.%s" % field)


def test_tx_ack_rejections():
    head = semtech.encode_tx_ack(1, EUI)[:12]
    _rejects(head + b'{"txpk_ack":{"error":"LATE"}}', "txpk_ack.error")
    _rejects(head + b'{"txpk_ack":"TOO_LATE"}', "txpk_ack")
    _rejects(head + b'{"error":"TOO_LATE"}', "txpk_ack")
    _rejects(head + b"\x01", "body")


def test_encoders_refuse_values_the_bridge_would_reject():
    exc = raises(SemtechError, _rxpk, tmst=1 << 32)
    assert "tmst" in str(exc)
    exc = raises(SemtechError, _rxpk, rssi=-35.0)
    assert "rssi" in str(exc)
    exc = raises(SemtechError, _rxpk, datr="SF7")
    assert "datr" in str(exc)
    exc = raises(SemtechError, _rxpk, codr="4/9")
    assert "codr" in str(exc)
    exc = raises(SemtechError, _rxpk, time="2026-11-24T10:00:00.123Z")
    assert "time" in str(exc)
    exc = raises(SemtechError, _stat, time="2026-11-24 10:00:00")
    assert "time" in str(exc)
    exc = raises(SemtechError, semtech.format_txpk, 868100000, "SF7BW125", b"\x01")
    assert "tmst" in str(exc)


def test_parse_datr():
    assert semtech.parse_datr("SF12BW125") == (12, 125000)
    assert semtech.parse_datr("SF7BW250") == (7, 250000)
    for text in (
        "SF7",
        "SF7BW",
        "SFBW125",
        "SF13BW125",
        "SF7BW126",
        "xSF7BW125",
        "SF7BW125x",
        "SF07BW0125x",
        7,
    ):
        exc = raises(SemtechError, semtech.parse_datr, text)
        assert str(exc).startswith("datr:")
