"""EU868 region tables (LoRaWAN Regional Parameters 1.0.2rB / RP002, LoRaMac-node RegionEU868)."""

import eu868
from errors import RegionError
from testkit import raises


def test_dr_table():
    expected = [
        (12, 125000),
        (11, 125000),
        (10, 125000),
        (9, 125000),
        (8, 125000),
        (7, 125000),
        (7, 250000),
    ]
    for dr in range(7):
        assert eu868.dr_to_sf_bw(dr) == expected[dr]
        assert eu868.sf_bw_to_dr(expected[dr][0], expected[dr][1]) == dr
        assert eu868.is_lora_dr(dr)
    assert not eu868.is_lora_dr(7)
    assert not eu868.is_lora_dr(-1)
    assert not eu868.is_lora_dr("5")


def test_dr_errors():
    e = raises(RegionError, eu868.dr_to_sf_bw, 7)
    assert str(e).startswith("dr:") and "FSK" in str(e)
    assert str(raises(RegionError, eu868.dr_to_sf_bw, 8)).startswith("dr:")
    assert str(raises(RegionError, eu868.dr_to_sf_bw, -1)).startswith("dr:")
    assert str(raises(RegionError, eu868.dr_to_sf_bw, True)).startswith("dr:")
    raises(RegionError, eu868.sf_bw_to_dr, 8, 250000)
    raises(RegionError, eu868.sf_bw_to_dr, 7, 500000)
    raises(RegionError, eu868.sf_bw_to_dr, 6, 125000)
    raises(RegionError, eu868.sf_bw_to_dr, 7.0, 125000)


def test_payload_sizes():
    assert [eu868.max_app_payload(dr) for dr in range(8)] == [51, 51, 51, 115, 242, 242, 242, 242]
    assert [eu868.max_mac_payload(dr) for dr in range(8)] == [59, 59, 59, 123, 250, 250, 250, 250]
    assert [eu868.max_app_payload(dr, True) for dr in range(8)] == [
        51,
        51,
        51,
        115,
        222,
        222,
        222,
        222,
    ]
    raises(RegionError, eu868.max_app_payload, 8)


def test_channels_and_windows():
    assert eu868.DEFAULT_CHANNELS == (868100000, 868300000, 868500000)
    assert eu868.JOIN_CHANNELS == eu868.DEFAULT_CHANNELS
    for freq in eu868.DEFAULT_CHANNELS:
        assert isinstance(freq, int)
        assert eu868.rx1_frequency(freq) == freq
    assert eu868.RX2_FREQUENCY_HZ == 869525000 and eu868.RX2_DR == 0
    assert eu868.RECEIVE_DELAY1_MS == 1000 and eu868.RECEIVE_DELAY2_MS == 2000
    assert eu868.JOIN_ACCEPT_DELAY1_MS == 5000 and eu868.JOIN_ACCEPT_DELAY2_MS == 6000
    assert (eu868.DEFAULT_DR_MIN, eu868.DEFAULT_DR_MAX) == (0, 5)


def test_rx1_dr():
    assert eu868.rx1_dr(5, 0) == 5
    assert eu868.rx1_dr(5, 1) == 4
    assert eu868.rx1_dr(5, 5) == 0
    assert eu868.rx1_dr(0, 3) == 0
    assert eu868.rx1_dr(2, 5) == 0
    assert eu868.rx1_dr(6, 2) == 4
    assert eu868.rx1_dr(7, 0) == 7
    for up in range(8):
        for off in range(6):
            assert eu868.rx1_dr(up, off) == max(up - off, 0)
    assert str(raises(RegionError, eu868.rx1_dr, 5, 6)).startswith("offset:")
    assert str(raises(RegionError, eu868.rx1_dr, 5, -1)).startswith("offset:")
    assert str(raises(RegionError, eu868.rx1_dr, 8, 0)).startswith("up_dr:")


def test_check_frequency():
    assert eu868.check_frequency(863000000) == 863000000
    assert eu868.check_frequency(870000000) == 870000000
    assert str(raises(RegionError, eu868.check_frequency, 862999999)).startswith("freq_hz:")
    assert str(raises(RegionError, eu868.check_frequency, 870000001)).startswith("freq_hz:")
    assert str(raises(RegionError, eu868.check_frequency, 868.1e6)).startswith("freq_hz:")
    raises(RegionError, eu868.check_frequency, "868100000")
    raises(RegionError, eu868.rx1_frequency, 915000000)


def test_sub_band_lookup_edges():
    cases = [
        (863000000, 0, 1000),
        (864999999, 0, 1000),
        (865000000, 1, 100),
        (868000000, 1, 100),
        (868000001, 2, 100),
        (868100000, 2, 100),
        (868500000, 2, 100),
        (868600000, 2, 100),
        (868600001, 3, 1000),
        (868699999, 3, 1000),
        (868700000, 4, 1000),
        (869200000, 4, 1000),
        (869200001, 5, 1000),
        (869399999, 5, 1000),
        (869400000, 6, 10),
        (869525000, 6, 10),
        (869650000, 6, 10),
        (869650001, 7, 1000),
        (869699999, 7, 1000),
        (869700000, 8, 100),
        (870000000, 8, 100),
    ]
    for freq, index, divisor in cases:
        assert eu868.sub_band(freq) == index, freq
        assert eu868.sub_band_divisor(index) == divisor
        assert eu868.duty_cycle_divisor(freq) == divisor
    raises(RegionError, eu868.sub_band, 862999999)
    raises(RegionError, eu868.sub_band, 870000001)
    raises(RegionError, eu868.sub_band_divisor, 9)


def test_sub_band_table_has_no_holes():
    bands = eu868.SUB_BANDS
    assert len(bands) == eu868.SUB_BAND_COUNT
    assert bands[0][0] == eu868.FREQ_MIN_HZ and bands[-1][1] == eu868.FREQ_MAX_HZ
    for i in range(1, len(bands)):
        assert bands[i][0] == bands[i - 1][1] + 1
    for lo, hi, divisor in bands:
        assert lo <= hi and divisor in (10, 100, 1000)


def test_tx_power():
    assert [eu868.tx_power_eirp(n) for n in range(8)] == [16, 14, 12, 10, 8, 6, 4, 2]
    assert eu868.MAX_EIRP_DBM == 16
    assert str(raises(RegionError, eu868.tx_power_eirp, 8)).startswith("tx_power:")


def test_datr():
    assert eu868.datr(7, 125000) == "SF7BW125"
    assert eu868.datr(12, 125000) == "SF12BW125"
    assert eu868.datr(7, 250000) == "SF7BW250"
    assert eu868.datr(9, 500000) == "SF9BW500"
    assert str(raises(RegionError, eu868.datr, 13, 125000)).startswith("sf:")
    assert str(raises(RegionError, eu868.datr, 7, 125)).startswith("bw_hz:")
    assert str(raises(RegionError, eu868.datr, 7, 125000.0)).startswith("bw_hz:")


def test_parse_datr():
    assert eu868.parse_datr("SF7BW125") == (7, 125000)
    assert eu868.parse_datr("SF12BW125") == (12, 125000)
    assert eu868.parse_datr("SF7BW250") == (7, 250000)
    for sf in range(6, 13):
        for bw in (125000, 250000, 500000):
            assert eu868.parse_datr(eu868.datr(sf, bw)) == (sf, bw)
    for bad in (
        "",
        "SF7",
        "SF7BW",
        "BW125",
        "SFBW125",
        "sf7bw125",
        "SF7 BW125",
        "SF7BW125 ",
        "SF-7BW125",
        "SF13BW125",
        "SF7BW200",
        "SF7BW125000",
        "FSK",
        "50000",
        None,
        7,
        b"SF7BW125",
        "SF\u0667BW125",
    ):
        e = raises(RegionError, eu868.parse_datr, bad)
        assert str(e).startswith("datr:"), bad


def test_codr():
    assert [eu868.codr(cr) for cr in (1, 2, 3, 4)] == ["4/5", "4/6", "4/7", "4/8"]
    for cr in (1, 2, 3, 4):
        assert eu868.parse_codr(eu868.codr(cr)) == cr
    assert eu868.parse_codr("2/3") == 2
    assert eu868.parse_codr("1/2") == 4
    assert str(raises(RegionError, eu868.codr, 0)).startswith("cr:")
    assert str(raises(RegionError, eu868.codr, 5)).startswith("cr:")
    for bad in ("4/9", "OFF", "", "4/5 ", None, 1, b"4/5"):
        assert str(raises(RegionError, eu868.parse_codr, bad)).startswith("codr:")
