"""Time on air: published vectors, ARCHITECTURE checks, an independent float formula, validation."""

import airtime
from errors import RegionError
from testkit import raises, vectors


def _reference_ms(sf, bw_hz, pl, cr, preamble, crc, ih, de):
    # Straight transcription of the SX1276 datasheet formula in floats.
    ts = (2.0**sf) / bw_hz * 1000.0
    num = 8.0 * pl - 4.0 * sf + 28 + 16 * (1 if crc else 0) - 20 * (1 if ih else 0)
    q = num / (4.0 * (sf - 2 * (1 if de else 0)))
    c = int(q)
    if c < q:
        c += 1
    n = 8 + max(c * (cr + 4), 0)
    return (preamble + 4.25) * ts + n * ts


def test_published_vectors():
    for v in vectors("airtime_ms"):
        us = airtime.time_on_air_us(v["sf"], v["bw"] * 1000, v["size"])
        assert us == int(round(v["expect"] * 1000)), (v, us)
        assert abs(airtime.time_on_air_ms(v["sf"], v["bw"] * 1000, v["size"]) - v["expect"]) < 1e-9


def test_architecture_checks():
    assert airtime.time_on_air_us(7, 125000, 13) == 46336
    assert airtime.time_on_air_us(12, 125000, 13) == 1155072
    assert airtime.time_on_air_us(12, 125000, 51) == 2465792


def test_ttn_console_value():
    # TTN console: 4 B payload + 13 B overhead at SF12BW125 = 1318.9 ms
    assert airtime.time_on_air_us(12, 125000, 17) == 1318912


def test_symbol_time():
    assert airtime.symbol_time_us(7, 125000) == 1024
    assert airtime.symbol_time_us(12, 125000) == 32768
    assert airtime.symbol_time_us(7, 250000) == 512
    assert airtime.symbol_time_us(6, 500000) == 128


def test_low_dr_opt_auto():
    assert airtime.low_dr_opt_auto(12, 125000)
    assert airtime.low_dr_opt_auto(11, 125000)
    assert not airtime.low_dr_opt_auto(10, 125000)
    assert airtime.low_dr_opt_auto(12, 250000)  # 16.384 ms symbols
    assert not airtime.low_dr_opt_auto(11, 250000)
    # 51 B at SF12/250 kHz: 11 blocks with DE, 9 without
    on = airtime.time_on_air_us(12, 250000, 51, low_dr_opt=True)
    off = airtime.time_on_air_us(12, 250000, 51, low_dr_opt=False)
    assert airtime.time_on_air_us(12, 250000, 51) == on
    assert on - off == 2 * 5 * 16384
    # forcing it on at SF7 lengthens the frame
    assert airtime.time_on_air_us(7, 125000, 51, low_dr_opt=True) > airtime.time_on_air_us(
        7, 125000, 51
    )


def test_against_float_formula():
    for sf in range(6, 13):
        for bw in (125000, 250000, 500000):
            de = (2**sf) * 1000 // (bw // 1000) >= 16000
            for pl in (0, 1, 13, 23, 51, 222, 255):
                for cr in (1, 2, 3, 4):
                    for flags in ((True, False), (False, False), (True, True), (False, True)):
                        crc, ih = flags
                        us = airtime.time_on_air_us(sf, bw, pl, cr, 8, crc, ih)
                        ref = _reference_ms(sf, bw, pl, cr, 8, crc, ih, de)
                        assert abs(us / 1000.0 - ref) < 1e-6, (sf, bw, pl, cr, crc, ih, us, ref)


def test_preamble_and_options():
    base = airtime.time_on_air_us(7, 125000, 13)
    assert airtime.time_on_air_us(7, 125000, 13, preamble=10) == base + 2 * 1024
    assert airtime.time_on_air_us(7, 125000, 13, crc=False) < base
    assert airtime.time_on_air_us(7, 125000, 13, implicit_header=True) < base
    assert airtime.time_on_air_us(7, 125000, 13, cr=4) > base
    # tiny payload at high SF: the max(..., 0) clamp leaves 8 symbols + preamble 12.25
    assert (
        airtime.time_on_air_us(12, 125000, 0, crc=False, implicit_header=True)
        == (8 + 12.25) * 32768
    )
    assert airtime.payload_symbols(12, 125000, 0, 1, False, True) == 8


def test_ms_variants():
    assert airtime.time_on_air_ms(7, 125000, 13) == 46.336
    assert airtime.time_on_air_ms_ceil(7, 125000, 13) == 47
    assert airtime.time_on_air_ms_ceil(6, 500000, 0, implicit_header=True) == 3  # 2592 us


def test_validation_names_the_field():
    e = raises(RegionError, airtime.time_on_air_us, 13, 125000, 10)
    assert str(e).startswith("sf:")
    e = raises(RegionError, airtime.time_on_air_us, 5, 125000, 10)
    assert str(e).startswith("sf:")
    e = raises(RegionError, airtime.time_on_air_us, 7, 125, 10)
    assert str(e).startswith("bw_hz:")
    e = raises(RegionError, airtime.time_on_air_us, 7, 125000.0, 10)
    assert str(e).startswith("bw_hz:")
    e = raises(RegionError, airtime.time_on_air_us, 7, 125000, 256)
    assert str(e).startswith("payload_len:")
    e = raises(RegionError, airtime.time_on_air_us, 7, 125000, -1)
    assert str(e).startswith("payload_len:")
    e = raises(RegionError, airtime.time_on_air_us, 7, 125000, 10, 0)
    assert str(e).startswith("cr:")
    e = raises(RegionError, airtime.time_on_air_us, 7, 125000, 10, 5)
    assert str(e).startswith("cr:")
    e = raises(RegionError, airtime.time_on_air_us, 7, 125000, 10, 1, 5)
    assert str(e).startswith("preamble:")
    e = raises(RegionError, airtime.symbol_time_us, "7", 125000)
    assert str(e).startswith("sf:")
    assert isinstance(e, ValueError)
