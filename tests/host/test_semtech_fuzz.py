"""Fuzzing the Semtech UDP codec: only SemtechError escapes decode(); encode -> decode round trips."""

import json

import pytest
import semtech
from errors import SemtechError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EUI = bytes.fromhex("b827ebfffe6c1a2b")
FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSON_FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUND_TRIP = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode_or_semtech_error(datagram):
    """decode(); a SemtechError is fine, any other exception fails the test."""
    try:
        packet = semtech.decode(datagram)
    except SemtechError as exc:
        message = str(exc)
        assert message and "\n" not in message
        return None
    assert packet.type in range(6)
    return packet


def valid_datagrams():
    rx = semtech.format_rxpk(
        3512348611,
        868100000,
        "SF7BW125",
        "4/5",
        -35,
        -75,
        b"\x40\x11\x22",
        time="2026-11-24T10:00:00.000123Z",
    )
    stat = semtech.format_stat("2026-11-24 10:00:00 GMT", 1, 1, 1, 1000, 0, 0, 46.24, 3.25, 145)
    txpk = semtech.format_txpk(
        869525000, "SF12BW125", b"\x60\x01\x02\x03", tmst=123456789, prea=8, ncrc=True
    )
    return [
        semtech.encode_push_data(1, EUI, [rx, rx], stat),
        semtech.encode_push_ack(2),
        semtech.encode_pull_data(3, EUI),
        semtech.encode_pull_resp(4, txpk),
        semtech.encode_pull_ack(5),
        semtech.encode_tx_ack(6, EUI, "TOO_EARLY"),
        semtech.encode_tx_ack(7, EUI),
    ]


VALID = valid_datagrams()


def test_valid_corpus_decodes():
    for datagram in VALID:
        assert decode_or_semtech_error(datagram) is not None


@pytest.mark.parametrize("ptype", [0, 3, 5])
def test_deeply_nested_body(ptype):
    head = bytes([2, 0, 0, ptype]) + (EUI if ptype != 3 else b"")
    with pytest.raises(SemtechError, match="^body: "):
        semtech.decode(head + b'{"rxpk":' + b"[" * 100000 + b"]" * 100000 + b"}")


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(datagram):
    decode_or_semtech_error(datagram)


@FUZZ
@given(
    st.sampled_from([1, 2, 3]),
    st.integers(0, 6),
    st.binary(min_size=8, max_size=8),
    st.binary(max_size=200),
)
def test_valid_header_then_arbitrary_bytes(version, ptype, eui, body):
    decode_or_semtech_error(bytes([version, 0x11, 0x22, ptype]) + eui + body)


@FUZZ
@given(st.sampled_from([0, 3]), st.binary(min_size=8, max_size=8), st.text(max_size=200))
def test_valid_header_then_arbitrary_text(ptype, eui, body):
    head = bytes([2, 0, 0, ptype]) + (eui if ptype == 0 else b"")
    decode_or_semtech_error(head + body.encode("utf-8", "surrogatepass"))


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.sampled_from(b'"{}[]:,.-+eE019\\ \x00\xff'))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[at:]
        elif op == "dup":
            data[at:at] = data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_valid_datagrams(datagram):
    decode_or_semtech_error(datagram)


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def mutated_json(draw):
    datagram = draw(st.sampled_from([VALID[0], VALID[3], VALID[5]]))
    head = datagram[: 4 if datagram[3] == 3 else 12]
    root = json.loads(datagram[len(head) :])
    objs = [root]
    while objs:
        obj = objs.pop()
        for key in list(obj):
            if isinstance(obj[key], dict):
                objs.append(obj[key])
            elif isinstance(obj[key], list):
                objs.extend(item for item in obj[key] if isinstance(item, dict))
            if draw(st.integers(0, 5)) == 0:
                obj[key] = draw(json_values)
            elif draw(st.integers(0, 20)) == 0:
                del obj[key]
        if draw(st.integers(0, 10)) == 0:
            obj[draw(st.sampled_from(["freq", "tmst", "data", "Freq", "x"]))] = draw(json_values)
    return head + json.dumps(root, separators=(",", ":") if draw(st.booleans()) else None).encode()


@JSON_FUZZ
@given(mutated_json())
def test_mutated_json_fields(datagram):
    packet = decode_or_semtech_error(datagram)
    if packet is not None and packet.type == semtech.PULL_RESP:
        tx = packet.txpk
        assert type(tx["freq_hz"]) is int and type(tx["size"]) is int and type(tx["imme"]) is bool
        assert len(tx["data"]) == tx["size"]


# --- round trips ---------------------------------------------------------------------------------

freqs = st.integers(1, 2**32 - 1)
datrs = st.builds("SF{}BW{}".format, st.integers(5, 12), st.sampled_from([125, 250, 500]))
times = st.builds(
    lambda y, mo, d, h, mi, s, us: (y, mo, d, h, mi, s, us),
    st.integers(1980, 2100),
    st.integers(1, 12),
    st.integers(1, 28),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.integers(0, 999999),
)


@st.composite
def rxpk_args(draw):
    return {
        "tmst": draw(st.integers(0, 2**32 - 1)),
        "freq_hz": draw(freqs),
        "datr": draw(datrs),
        "codr": draw(st.sampled_from(semtech.CODR)),
        "rssi": draw(st.integers(-32768, 32767)),
        "lsnr_x10": draw(st.integers(-1000, 1000)),
        "data": draw(st.binary(max_size=255)),
        "time": draw(st.none() | times.map(semtech.rxpk_time)),
        "chan": draw(st.integers(0, 255)),
        "rfch": draw(st.integers(0, 255)),
        "stat": draw(st.sampled_from([-1, 0, 1])),
    }


@ROUND_TRIP
@given(
    st.integers(0, 0xFFFF),
    st.binary(min_size=8, max_size=8),
    st.lists(rxpk_args(), min_size=1, max_size=4),
)
def test_rxpk_round_trip(token, eui, rxpks):
    packet = semtech.decode(
        semtech.encode_push_data(token, eui, [semtech.format_rxpk(**a) for a in rxpks])
    )
    assert (packet.token, packet.eui, packet.stat) == (token, eui, None)
    for args, rx in zip(rxpks, packet.rxpk, strict=True):
        for key, value in args.items():
            assert rx[key] == value, key
        assert rx["size"] == len(args["data"])
        assert (rx["sf"], rx["bw_hz"]) == semtech.parse_datr(args["datr"])


@ROUND_TRIP
@given(
    times,
    st.lists(st.integers(0, 2**32 - 1), min_size=5, max_size=5),
    st.integers(0, 1000),
    st.none()
    | st.tuples(st.integers(-90, 90), st.integers(-180, 180), st.integers(-(2**31), 2**31 - 1)),
)
def test_stat_round_trip(time, counters, ackr_x10, location):
    rxnb, rxok, rxfw, dwnb, txnb = counters
    lati, long, alti = location or (None, None, None)
    text = semtech.format_stat(
        semtech.stat_time(time), rxnb, rxok, rxfw, ackr_x10, dwnb, txnb, lati, long, alti
    )
    stat = semtech.decode(semtech.encode_push_data(1, EUI, (), text)).stat
    assert stat["time"] == semtech.stat_time(time)
    assert (stat["rxnb"], stat["rxok"], stat["rxfw"], stat["dwnb"], stat["txnb"]) == tuple(counters)
    assert round(stat["ackr"] * 10) == ackr_x10
    assert (stat["lati"], stat["long"], stat["alti"]) == (lati, long, alti)


@st.composite
def txpk_args(draw):
    args = {
        "freq_hz": draw(freqs),
        "data": draw(st.binary(max_size=255)),
        "rfch": draw(st.integers(0, 255)),
        "powe": draw(st.integers(-128, 255)),
        "ipol": draw(st.booleans()),
        "prea": draw(st.none() | st.integers(0, 0xFFFF)),
        "ncrc": draw(st.booleans()),
    }
    timing = draw(st.sampled_from(["imme", "tmst", "tmms"]))
    args["imme"] = timing == "imme"
    if timing == "tmst":
        args["tmst"] = draw(st.integers(0, 2**32 - 1))
    if timing == "tmms":
        args["tmms"] = draw(st.integers(-(2**63), 2**63 - 1))
    if draw(st.booleans()):
        args["datr"] = draw(datrs)
        args["codr"] = draw(st.sampled_from(semtech.CODR))
    else:
        args["modu"] = "FSK"
        args["datr"] = draw(st.integers(1, 2**32 - 1))
        args["fdev"] = draw(st.none() | st.integers(0, 0xFFFF))
    return args


@ROUND_TRIP
@given(st.integers(0, 0xFFFF), txpk_args())
def test_txpk_round_trip(token, args):
    packet = semtech.decode(
        semtech.encode_pull_resp(token, semtech.format_txpk(**args)), semtech.PULL_RESP
    )
    assert packet.token == token
    tx = packet.txpk
    for key, value in args.items():
        assert tx[key] == value, key
    assert tx["size"] == len(args["data"])
    for key in ("tmst", "tmms", "prea", "fdev"):
        assert tx[key] == args.get(key)


@ROUND_TRIP
@given(
    st.integers(0, 0xFFFF),
    st.binary(min_size=8, max_size=8),
    st.sampled_from(semtech.TX_ACK_ERRORS),
)
def test_tx_ack_round_trip(token, eui, error):
    packet = semtech.decode(semtech.encode_tx_ack(token, eui, error), semtech.TX_ACK)
    assert (packet.token, packet.eui, packet.error, packet.warn) == (token, eui, error, None)


@FUZZ
@given(freqs, st.booleans())
def test_freq_text_parse_freq_inverse(hz, short):
    assert semtech.parse_freq(semtech.freq_text(hz, short)) == hz


@FUZZ
@given(st.decimals(min_value=0, max_value=5000, allow_nan=False, allow_infinity=False, places=8))
def test_parse_freq_matches_exact_decimal_arithmetic(value):
    text = str(value)  # e.g. "868.10000000", "1E+3", "0E-8": all JSON number literals
    assert json.loads(text) == float(value)
    hz = value * 1000000
    if hz == hz.to_integral_value() and 1 <= hz <= 2**32 - 1:
        assert semtech.parse_freq(text) == hz
    else:
        with pytest.raises(SemtechError, match="^freq: "):
            semtech.parse_freq(text)


@pytest.mark.parametrize(
    "text, hz",
    [
        ("868.1", 868100000),
        ("8.681E2", 868100000),
        ("8681e-1", 868100000),
        ("0.8681e3", 868100000),
        ("868100000e-6", 868100000),
        ("1e-6", 1),
    ],
)
def test_parse_freq_exponents(text, hz):
    assert semtech.parse_freq(text) == hz


@ROUND_TRIP
@given(json_values)
def test_quote_freqs_changes_only_freq_values(value):
    doc = {"a": value, "freq": 868.1, "n": {"freq": "869.525", "x": [value, {"freq": 1}]}}
    text = json.dumps(doc)
    out = json.loads(semtech._quote_freqs(text))
    assert out["a"] == value and out["n"]["x"][0] == value
    assert out["freq"] == "=868.1"
    assert out["n"]["freq"] == "!869.525"
    assert out["n"]["x"][1]["freq"] == "=1"
