"""Duty-cycle accountant (off-time rule per sub-band) and the LoRaWAN 1.0.2 join back-off."""

import dutycycle
from dutycycle import DutyCycle, JoinBackoff
from errors import RegionError
from testkit import raises

H = 3600000
F1 = 868100000  # 1 % sub-band M
F2 = 868300000  # same sub-band
RX2 = 869525000  # 10 %
G2 = 868800000  # 0.1 %


def test_one_second_in_one_percent_waits_99_s_after_tx():
    dc = DutyCycle()
    assert dc.wait_ms(0, F1, 1000) == 0
    assert dc.record(0, F1, 1000) == 100000
    assert dc.wait_ms(1000, F1, 1000) == 99000  # Toff = ToA * (100 - 1) after TX end
    assert dc.wait_ms(1000, F2, 50) == 99000  # whole sub-band closed
    assert dc.wait_ms(99999, F1, 1) == 1
    assert dc.wait_ms(100000, F1, 1000) == 0
    assert dc.wait_ms(10**15, F1, 1000) == 0


def test_sub_bands_are_independent():
    dc = DutyCycle()
    dc.record(0, F1, 1000)
    assert dc.wait_ms(1000, RX2, 1000) == 0
    dc.record(1000, RX2, 1000)
    assert dc.wait_ms(2000, RX2, 10) == 9000  # 10 %: 1000 * 10 - 1000 after TX end
    dc.record(5000, G2, 100)
    assert dc.wait_ms(5100, G2, 10) == 99900  # 0.1 %: 100 * 1000 - 100
    assert dc.wait_ms(5100, 865000000, 10) == 0  # sub-band L untouched
    assert dc.wait_ms(5100, 868000000, 10) == 0  # L holds 868.0 MHz exactly


def test_pycom_like_sequence():
    dc = DutyCycle()
    t = 0
    airtime = 1156  # 13 B at SF12, rounded up
    for _ in range(5):
        t += dc.wait_ms(t, F1, airtime)
        assert dc.wait_ms(t, F1, airtime) == 0
        dc.record(t, F1, airtime)
    assert t == 4 * airtime * 100


def test_large_clock_values():
    dc = DutyCycle()
    big = 2**40 + 12345
    dc.record(big, F1, 50)
    assert dc.wait_ms(big + 50, F1, 50) == 4950
    assert dc.save(big + 50)[2] == 4950


def test_float_airtime_rounds_up():
    dc = DutyCycle()
    dc.record(0, F1, 46.336)
    assert dc.wait_ms(0, F1, 1) == 4700


def test_recording_when_closed_accumulates():
    dc = DutyCycle()
    dc.record(0, F1, 100)  # closed until 10000
    assert dc.record(5000, F1, 100) == 20000  # forced send: debt continues from 10000
    assert dc.wait_ms(5100, F1, 100) == 14900


def test_reset():
    dc = DutyCycle()
    dc.record(0, F1, 1000)
    dc.reset()
    assert dc.wait_ms(1, F1, 1000) == 0


def test_save_restore():
    dc = DutyCycle()
    dc.record(0, F1, 1000)
    dc.record(0, RX2, 100)
    state = dc.save(1000)
    assert len(state) == eu868_count() + 1
    assert state[2] == 99000 and state[6] == 0  # RX2 (10 %): 1000 ms, already open at t=1000
    for value in state:
        assert isinstance(value, int) and 0 <= value < 2**31
    other = DutyCycle()
    other.restore(7, state)  # clock restarted at 0, unknown sleep: conservative
    assert other.wait_ms(7, F1, 10) == 99000
    other.restore(7, state, slept_ms=60000)
    assert other.wait_ms(7, F1, 10) == 39000
    other.restore(7, state, slept_ms=200000)
    assert other.wait_ms(7, F1, 10) == 0
    raises(RegionError, other.restore, 0, state[:-1])
    raises(RegionError, other.restore, 0, (-1,) + state[1:])


def eu868_count():
    import eu868

    return eu868.SUB_BAND_COUNT


def test_aggregated_max_duty_cycle():
    dc = DutyCycle()
    dc.set_max_duty_cycle(10)  # 1/1024 over all sub-bands
    dc.record(0, F1, 100)
    assert dc.wait_ms(100, RX2, 10) == 102300
    assert dc.wait_ms(100, F1, 10) == 102300
    assert dc.save(100)[-1] == 102300
    dc.set_max_duty_cycle(0)
    dc.reset()
    dc.record(0, F1, 100)
    assert dc.wait_ms(100, RX2, 10) == 0
    raises(RegionError, dc.set_max_duty_cycle, 16)


def test_custom_bands():
    dc = DutyCycle(((100, 199, 2), (200, 299, 4)))
    dc.record(0, 150, 10)
    assert dc.wait_ms(10, 199, 10) == 10
    assert dc.wait_ms(10, 200, 10) == 0
    assert dc.band(250) == 1
    raises(RegionError, dc.wait_ms, 0, 300, 10)
    raises(RegionError, DutyCycle, ((200, 299, 4), (100, 199, 2)))
    raises(RegionError, DutyCycle, ((100, 99, 2),))
    raises(RegionError, DutyCycle, ((100, 199, 0),))
    raises(RegionError, DutyCycle, ())


def test_argument_errors():
    dc = DutyCycle()
    assert str(raises(RegionError, dc.wait_ms, 0, 915000000, 10)).startswith("freq_hz:")
    assert str(raises(RegionError, dc.wait_ms, 0, 868.1e6, 10)).startswith("freq_hz:")
    assert str(raises(RegionError, dc.wait_ms, 0.5, F1, 10)).startswith("now_ms:")
    assert str(raises(RegionError, dc.record, 0, F1, -1)).startswith("airtime_ms:")
    assert str(raises(RegionError, dc.record, 0, F1, float("nan"))).startswith("airtime_ms:")
    assert str(raises(RegionError, dc.record, 0, F1, "10")).startswith("airtime_ms:")


def test_join_budget_first_hour():
    jb = JoinBackoff(1000)
    t = 1000
    for _ in range(24):  # 24 * 1500 ms = 36 s
        assert jb.wait_ms(t, 1500) == 0
        jb.record(t, 1500)
        t += 10000
    assert jb.used_ms(t) == 36000
    assert jb.wait_ms(t, 1) == 1000 + H - t  # wait for hour 1
    assert jb.wait_ms(1000 + H, 1500) == 0
    assert jb.used_ms(1000 + H) == 0


def test_join_budget_hours_1_to_11():
    jb = JoinBackoff(0)
    t = H
    for _ in range(36):
        assert jb.wait_ms(t, 1000) == 0
        jb.record(t, 1000)
        t += 60000
    assert jb.wait_ms(t, 1000) == 11 * H - t
    assert jb.wait_ms(11 * H - 1, 1000) == 1
    assert jb.wait_ms(11 * H, 1000) == 0


def test_join_budget_after_11_hours():
    jb = JoinBackoff(0)
    t = 11 * H
    for _ in range(8):
        assert jb.wait_ms(t, 1000) == 0
        jb.record(t, 1000)
        t += 1000
    assert jb.wait_ms(t, 700) == 0  # 8.7 s exactly is allowed
    assert jb.wait_ms(t, 701) == 35 * H - t
    jb.record(t, 700)
    assert jb.wait_ms(t, 1) == 35 * H - t
    assert jb.wait_ms(35 * H, 1000) == 0
    jb.record(35 * H, 1000)
    assert jb.used_ms(35 * H + 5) == 1000
    assert jb.wait_ms(35 * H, 8000) == 24 * H  # next day


def test_join_frame_too_long():
    jb = JoinBackoff(0)
    assert jb.wait_ms(0, 9000) == 0  # fits the first hour
    assert jb.wait_ms(H, 9000) == 0  # and the 36 s of hours 1-11
    jb.record(H, 30000)
    assert str(raises(RegionError, jb.wait_ms, H, 9000)).startswith("airtime_ms:")
    assert str(raises(RegionError, jb.wait_ms, 11 * H, 8701)).startswith("airtime_ms:")
    assert str(raises(RegionError, jb.wait_ms, 0, 37000)).startswith("airtime_ms:")


def test_join_before_start_is_safe():
    jb = JoinBackoff(10000)
    jb.record(10000, 36000)
    w = jb.wait_ms(5000, 100)
    assert jb.wait_ms(5000 + w, 100) == 0


def test_join_save_restore():
    jb = JoinBackoff(0)
    jb.record(100, 30000)
    state = jb.save(1000)
    assert state == (1000, 30000)
    other = JoinBackoff(0)
    other.restore(50, state)  # clock restarted; unknown sleep
    assert other.wait_ms(50, 6000) == 0
    assert other.wait_ms(50, 6001) == H - 1000
    other.restore(50, state, slept_ms=H)  # slept into the next period: budget renewed
    assert other.used_ms(50) == 0
    assert other.wait_ms(50, 36000) == 0
    # day periods are reduced so the ints stay small
    late = JoinBackoff(0)
    late.record(11 * H + 100 * 24 * H + 5, 2000)
    state = late.save(11 * H + 100 * 24 * H + 10)
    assert state == (11 * H + 10, 2000)
    back = JoinBackoff(0)
    back.restore(0, state)
    assert back.wait_ms(0, 6700) == 0
    assert back.wait_ms(0, 6701) == 24 * H - 10
    raises(RegionError, back.restore, 0, (1, 2, 3))
    raises(RegionError, back.restore, 0, (-1, 2))


class _Seq:
    def __init__(self, values):
        self.values = list(values)

    def __call__(self):
        return self.values.pop(0)


def test_retry_delay():
    assert dutycycle.retry_delay_ms(0, _Seq([0])) == 4000
    assert dutycycle.retry_delay_ms(0, _Seq([4000])) == 8000
    assert dutycycle.retry_delay_ms(0, _Seq([4001])) == 4000
    assert dutycycle.retry_delay_ms(3, _Seq([0])) == 32000
    assert dutycycle.retry_delay_ms(100, _Seq([0])) == 1800000  # capped at max_ms
    assert dutycycle.retry_delay_ms(100, _Seq([1800000])) == 3600000
    # deterministic for a deterministic source, spread for a varying one
    seen = set()
    state = [12345]

    def lcg():
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return state[0] >> 7

    for attempt in range(6):
        for _ in range(20):
            d = dutycycle.retry_delay_ms(attempt, lcg)
            window = min(8000 << attempt, 3600000)
            assert window // 2 <= d <= window
            seen.add(d)
    assert len(seen) > 100
    assert dutycycle.retry_delay_ms(0, lcg, 1000, 1000) in range(500, 1001)
    assert str(raises(RegionError, dutycycle.retry_delay_ms, -1, lcg)).startswith("attempt:")
    assert str(raises(RegionError, dutycycle.retry_delay_ms, 0, lcg, 0)).startswith("base_ms:")
    assert str(raises(RegionError, dutycycle.retry_delay_ms, 0, lcg, 10, 5)).startswith("max_ms:")
