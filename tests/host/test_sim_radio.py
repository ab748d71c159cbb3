"""The radio medium against hand-computed cases, pure ALOHA, and determinism."""

import math
import random

import pytest
from openenergy.sim import radio as R
from openenergy.sim.clock import Scheduler
from openenergy.sim.trace import Trace

F = 868100000
BW = 125000
TS7 = 1024  # SF7/125 kHz symbol time, µs
NOISE_125 = -174 + 10 * math.log10(125000) + 6  # -117.0309 dBm


def medium(params=None, seed=1):
    s = Scheduler()
    trace = Trace(capture=True, clock=s)
    m = R.Medium(s, random.Random(seed), trace=trace, params=params)
    return s, m, trace


def send_at(s, radio, t, payload=b"0123456789", **kw):
    args = {"freq_hz": F, "sf": 7, "bw_hz": BW}
    args.update(kw)
    s.call_at(t, lambda: radio.transmit(payload, **args))


def outcomes(trace):
    """{(sender, receiver): outcome} over all frames."""
    return {
        (rec["sender"], rx["radio"]): rx["outcome"]
        for rec in trace.of_kind("radio_frame")
        for rx in rec["receivers"]
    }


def listener(m, name, pos, **kw):
    radio = m.add_radio(name, pos)
    frames = []
    args = {"iq": False}
    args.update(kw)
    sf = args.pop("sf", 7)
    freq = args.pop("freq_hz", F)
    radio.listen(freq, sf, BW, on_frame=frames.append, **args)
    return radio, frames


def test_rssi_and_snr_follow_lorasim_log_distance():
    s, m, trace = medium()
    gw, frames = listener(m, "gw", (0, 0), sf=12)
    a = m.add_radio("a", (40, 0))
    b = m.add_radio("b", (0, 400))
    send_at(s, a, 0, sf=12)
    send_at(s, b, 2_000_000, sf=12)
    s.run()
    assert [f.sender for f in frames] == ["a", "b"]
    # 14 dBm - 127.41 dB at d0 = 40 m
    assert frames[0].rssi_dbm == pytest.approx(-113.41, abs=1e-9)
    # 400 m: + 10 * 2.08 * log10(10) = 20.8 dB more
    assert frames[1].rssi_dbm == pytest.approx(-134.21, abs=1e-9)
    assert frames[0].snr_db == pytest.approx(-113.41 - NOISE_125, abs=1e-9)
    assert NOISE_125 == pytest.approx(-117.0309, abs=1e-4)
    assert frames[0].crc_ok is True and frames[0].payload == b"0123456789"


def test_max_range_per_sf_at_14_dbm():
    # 40 m * 10^((14 - S - 127.41) / 20.8), S = SX1272 sensitivity at 125 kHz
    assert R.max_range_m(7, BW) == pytest.approx(129.2, abs=0.05)
    assert R.max_range_m(12, BW) == pytest.approx(544.7, abs=0.05)


@pytest.mark.parametrize("sf,bw", sorted(R.SENSITIVITY_SX1272))
def test_sensitivity_edge_per_sf_and_bandwidth(sf, bw):
    edge_power = R.SENSITIVITY_SX1272[(sf, bw)] + 127.41  # RSSI = sensitivity at 40 m
    s, m, trace = medium()
    gw = m.add_radio("gw", (0, 0))
    got = []
    gw.listen(F, sf, bw, on_frame=got.append)
    a = m.add_radio("a", (40, 0))
    send_at(s, a, 0, sf=sf, bw_hz=bw, power_dbm=edge_power + 0.05)
    send_at(s, a, 5_000_000, sf=sf, bw_hz=bw, power_dbm=edge_power - 0.05)
    s.run()
    recs = trace.of_kind("radio_frame")
    assert [r["receivers"][0]["outcome"] for r in recs] == ["received", "too_weak"]
    assert len(got) == 1


def test_iq_mismatch_is_not_heard():
    s, m, trace = medium()
    gw, frames = listener(m, "gw", (0, 0), iq=False)
    node, node_frames = listener(m, "node", (20, 0), iq=True)
    a = m.add_radio("a", (10, 0))
    send_at(s, a, 0, iq=True)  # a downlink-style frame: only inverted-IQ receivers demodulate
    s.run()
    assert outcomes(trace) == {("a", "gw"): "iq_mismatch", ("a", "node"): "received"}
    assert frames == [] and len(node_frames) == 1


def test_sync_word_mismatch_is_not_heard():
    s, m, trace = medium()
    gw, frames = listener(m, "gw", (0, 0), sync_word=R.SYNC_PRIVATE)
    a = m.add_radio("a", (10, 0))
    send_at(s, a, 0)
    s.run()
    assert outcomes(trace) == {("a", "gw"): "sync_mismatch"} and frames == []


def test_other_channel_or_sf_is_not_even_a_candidate():
    s, m, trace = medium()
    gw, frames = listener(m, "gw", (0, 0))
    a = m.add_radio("a", (10, 0))
    send_at(s, a, 0, freq_hz=868300000)
    send_at(s, a, 1_000_000, sf=9)
    send_at(s, a, 2_000_000, freq_hz=F + 20000)  # within LoRaSim's 30 kHz tolerance
    s.run()
    recs = trace.of_kind("radio_frame")
    assert [r["receivers"] for r in recs[:2]] == [[], []]
    assert recs[2]["receivers"][0]["outcome"] == "received"


def test_different_sf_do_not_collide():
    s, m, trace = medium()
    gw7, f7 = listener(m, "gw7", (0, 0), sf=7)
    gw9, f9 = listener(m, "gw9", (0, 1), sf=9)
    a = m.add_radio("a", (30, 0))
    b = m.add_radio("b", (-30, 0))
    send_at(s, a, 0, sf=7)
    send_at(s, b, 500, sf=9)
    s.run()
    assert outcomes(trace) == {("a", "gw7"): "received", ("b", "gw9"): "received"}


def test_same_sf_equal_power_both_lost():
    s, m, trace = medium()
    gw, frames = listener(m, "gw", (0, 0))
    a = m.add_radio("a", (30, 0))
    b = m.add_radio("b", (-30, 0))
    send_at(s, a, 0)
    send_at(s, b, 10_000)
    s.run()
    assert outcomes(trace) == {("a", "gw"): "collided", ("b", "gw"): "collided"}
    assert frames == []


@pytest.mark.parametrize(
    "power_b,expected",
    [
        (8.0, {("a", "gw"): "received", ("b", "gw"): "collided"}),  # exactly 6 dB: a captures
        (8.1, {("a", "gw"): "collided", ("b", "gw"): "collided"}),  # 5.9 dB: both lost
        (20.0, {("a", "gw"): "collided", ("b", "gw"): "received"}),  # later, 6 dB stronger
        (19.9, {("a", "gw"): "collided", ("b", "gw"): "collided"}),
    ],
)
def test_six_db_power_capture(power_b, expected):
    s, m, trace = medium()
    gw, frames = listener(m, "gw", (0, 0))
    a = m.add_radio("a", (30, 0))
    b = m.add_radio("b", (-30, 0))  # same distance: RSSI difference = power difference
    send_at(s, a, 0, power_dbm=14)
    send_at(s, b, 20_000, power_dbm=power_b)  # b starts in a's payload
    s.run()
    assert outcomes(trace) == expected
    assert len(frames) == sum(1 for v in expected.values() if v == "received")


def test_stronger_late_frame_takes_over_the_receiver():
    s, m, trace = medium()
    gw, frames = listener(m, "gw", (0, 0))
    a = m.add_radio("a", (100, 0))
    b = m.add_radio("b", (10, 0))
    send_at(s, a, 0)
    send_at(s, b, 30_000)
    s.run()
    assert [f.sender for f in frames] == ["b"]


@pytest.mark.parametrize(
    "offset_us,collide",
    [
        (3 * TS7, False),  # a ends exactly where b's last 5 preamble symbols begin
        (3 * TS7 - 1, False),
        (3 * TS7 + 1, True),
        (10 * TS7, True),
    ],
)
def test_preamble_timing_rule(offset_us, collide):
    """The later frame survives if only its first (preamble - 5) = 3 symbols overlap."""
    s, m, trace = medium()
    gw, frames = listener(m, "gw", (0, 0))
    a = m.add_radio("a", (30, 0))
    b = m.add_radio("b", (-30, 0))
    toa = R.airtime.time_on_air_us(7, BW, 10)
    send_at(s, a, 0)
    send_at(s, b, toa - offset_us)  # b starts offset_us before a ends
    s.run()
    if collide:
        assert outcomes(trace) == {("a", "gw"): "collided", ("b", "gw"): "collided"}
    else:
        # both received: the receiver finishes a, then locks on b's remaining preamble
        assert [f.sender for f in frames] == ["a", "b"]


def test_preamble_timing_rule_uses_the_later_frames_preamble():
    s, m, trace = medium()
    gw, frames = listener(m, "gw", (0, 0))
    a = m.add_radio("a", (30, 0))
    b = m.add_radio("b", (-30, 0))
    toa = R.airtime.time_on_air_us(7, BW, 10)
    send_at(s, a, 0)
    send_at(s, b, toa - 10 * TS7, preamble=16)  # 11 grace symbols with a 16-symbol preamble
    s.run()
    assert [f.sender for f in frames] == ["a", "b"]


def test_half_duplex_transmitter_hears_nothing_and_loses_what_it_was_receiving():
    s, m, trace = medium()
    gw, frames = listener(m, "gw", (0, 0))
    a = m.add_radio("a", (30, 0))
    c = m.add_radio("c", (0, 30))
    send_at(s, a, 0)
    send_at(s, gw, 10_000)  # the gateway transmits while receiving a
    send_at(s, c, 40_000)  # gw is still transmitting: c's frame finds no listener
    s.run()
    recs = {r["sender"]: r["receivers"] for r in trace.of_kind("radio_frame")}
    assert recs["a"] == [dict(recs["a"][0], outcome="half_duplex")]
    assert recs["c"] == [] and frames == []


def test_gateway_locked_on_one_frame_misses_a_weaker_second():
    s, m, trace = medium()
    gw, frames = listener(m, "gw", (0, 0))
    near = m.add_radio("near", (20, 0))
    far = m.add_radio("far", (60, 0))  # 10 dB weaker
    send_at(s, near, 0)
    send_at(s, far, 5_000)
    s.run()
    assert outcomes(trace) == {("near", "gw"): "received", ("far", "gw"): "collided"}
    # a second gateway next to 'far' hears 'far' fine: the loss is local to the receiver
    s, m, trace = medium()
    gw, frames = listener(m, "gw", (0, 0))
    gw2, frames2 = listener(m, "gw2", (100, 0))  # far 6.3 dB stronger there
    near = m.add_radio("near", (20, 0))
    far = m.add_radio("far", (60, 0))
    send_at(s, near, 0)
    send_at(s, far, 5_000)
    s.run()
    assert [f.sender for f in frames] == ["near"] and [f.sender for f in frames2] == ["far"]


def test_rx_window_single_mode_and_timeout():
    s, m, trace = medium()
    node = m.add_radio("node", (0, 0))
    gw = m.add_radio("gw", (30, 0))
    got, timeouts = [], []
    s.call_at(
        0,
        lambda: node.listen(
            F,
            7,
            BW,
            iq=True,
            on_frame=got.append,
            timeout_us=20_000,
            single=True,
            on_timeout=lambda: timeouts.append(s.now_us()),
        ),
    )
    send_at(s, gw, 10_000, iq=True)  # starts inside the window, ends after it: still received
    send_at(s, gw, 200_000, iq=True)  # the radio is in standby by then
    s.call_at(
        400_000,
        lambda: node.listen(
            F, 7, BW, iq=True, timeout_us=5_000, on_timeout=lambda: timeouts.append(s.now_us())
        ),
    )
    s.run()
    assert [f.tx_id for f in got] == [0] and node.state == R.STANDBY
    assert timeouts == [405_000]


def test_listening_late_catches_a_preamble_only_with_five_symbols_left():
    s, m, trace = medium()
    a = m.add_radio("a", (30, 0))
    b = m.add_radio("b", (-30, 0))
    early, late = m.add_radio("early", (0, 0)), m.add_radio("late", (0, 1))
    got_early, got_late = [], []
    send_at(s, a, 0)
    send_at(s, b, 1_000_000)
    # joins with exactly 5 preamble symbols of a left: locks on it
    s.call_at(3 * TS7, lambda: early.listen(F, 7, BW, on_frame=got_early.append))
    # joins 1 µs too late for b
    s.call_at(1_000_000 + 3 * TS7 + 1, lambda: late.listen(F, 7, BW, on_frame=got_late.append))
    s.run()
    assert [f.sender for f in got_early] == ["a", "b"] and got_late == []
    assert outcomes(trace)[("a", "early")] == "received"
    assert outcomes(trace)[("b", "late")] == "missed_preamble"


def test_power_cut_truncates_a_frame():
    s, m, trace = medium()
    gw, frames = listener(m, "gw", (0, 0))
    a = m.add_radio("a", (30, 0))
    done = []
    s.call_at(0, lambda: a.transmit(b"abc", F, 7, BW, on_done=done.append))
    s.call_at(5_000, a.off)
    s.run()
    rec = trace.of_kind("radio_frame")[0]
    assert rec["truncated"] and rec["end_us"] == 5_000
    assert rec["receivers"][0]["outcome"] == "truncated" and frames == []
    assert a.state == R.OFF and done and done[0].sent


def test_scheduled_transmission_and_channel_energy():
    s, m, trace = medium()
    a = m.add_radio("a", (40, 0))
    sensor = m.add_radio("sensor", (0, 0))
    levels = []
    a.transmit(b"x" * 20, F, 12, BW, at_us=50_000)
    s.call_at(10_000, lambda: levels.append(sensor.channel_rssi(F, BW)))
    s.call_at(60_000, lambda: levels.append(sensor.channel_rssi(F, BW)))
    s.call_at(60_000, lambda: levels.append(sensor.channel_rssi(868300000, BW)))
    s.run()
    assert levels[0] == pytest.approx(NOISE_125, abs=1e-9)
    expected = 10 * math.log10(10 ** (-11.341) + 10 ** (NOISE_125 / 10))
    assert levels[1] == pytest.approx(expected, abs=1e-9)
    assert levels[2] == pytest.approx(NOISE_125, abs=1e-9)  # 200 kHz away: no overlap
    assert trace.of_kind("radio_frame")[0]["start_us"] == 50_000


def test_collisions_can_corrupt_instead_of_destroy():
    params = R.MediumParams(collisions_corrupt=True)
    s, m, trace = medium(params)
    gw, frames = listener(m, "gw", (0, 0))
    a = m.add_radio("a", (30, 0))
    b = m.add_radio("b", (-30, 0))
    send_at(s, a, 0)
    send_at(s, b, 10_000)
    s.run()
    assert outcomes(trace) == {("a", "gw"): "crc_error", ("b", "gw"): "collided"}
    assert len(frames) == 1 and frames[0].crc_ok is False
    assert frames[0].payload != b"0123456789" and len(frames[0].payload) == 10


def test_corruption_hook_marks_a_heard_frame_bad():
    s, m, trace = medium()
    gw, frames = listener(m, "gw", (0, 0))
    m.corruption_hook = lambda arrival: arrival.tx.radio.name == "a"
    a = m.add_radio("a", (30, 0))
    b = m.add_radio("b", (-30, 0))
    send_at(s, a, 0, crc=False)
    send_at(s, b, 1_000_000)
    s.run()
    assert [(f.sender, f.crc_ok) for f in frames] == [("a", None), ("b", True)]
    assert outcomes(trace)[("a", "gw")] == "crc_error"


def test_capture_against_the_sum_of_interferers():
    # a at 14 dBm; b and c at 8 dBm each: 6 dB above each, 3 dB above their sum
    for mode, expected in (("each", "received"), ("sum", "collided")):
        s, m, trace = medium(R.MediumParams(capture_mode=mode))
        gw, frames = listener(m, "gw", (0, 0))
        a = m.add_radio("a", (30, 0))
        b = m.add_radio("b", (-30, 0))
        c = m.add_radio("c", (0, 30))
        send_at(s, a, 0, power_dbm=14)
        send_at(s, b, 5_000, power_dbm=8)
        send_at(s, c, 6_000, power_dbm=8)
        s.run()
        assert outcomes(trace)[("a", "gw")] == expected, mode


def test_radio_loss_probability():
    p, n = 0.3, 2000
    s, m, trace = medium(seed=7)
    gw, frames = listener(m, "gw", (0, 0))
    other, other_frames = listener(m, "other", (0, 10))
    a = m.add_radio("a", (30, 0))
    m.set_radio_loss(p, "gw")
    for i in range(n):
        send_at(s, a, i * 100_000)
    s.run()
    lost = n - len(frames)
    sigma = math.sqrt(n * p * (1 - p))  # binomial: 20.5 frames
    assert abs(lost - n * p) < 4.5 * sigma
    assert len(other_frames) == n  # the fault targets one radio
    assert outcomes(trace)[("a", "gw")] in ("received", "radio_loss")
    with pytest.raises(ValueError):
        m.set_radio_loss(1.5)


def _aloha(load, seed, frames_target=3000, senders=400, params=None):
    """Poisson traffic of total offered load `load` from equidistant senders to one receiver."""
    s = Scheduler()
    m = R.Medium(s, random.Random(seed), params=params)
    gw = m.add_radio("gw", (0, 0))
    received = []
    gw.listen(F, 7, BW, on_frame=received.append)
    rng = random.Random(seed + 1000)
    toa = R.airtime.time_on_air_us(7, BW, 20)
    rate = load / toa / senders  # frames per µs per sender
    duration = int(frames_target * toa / load)
    sent = []

    def fire(radio):
        if radio.state != R.TX:
            sent.append(radio.transmit(b"\x00" * 20, F, 7, BW))
        t = s.now_us() + max(1, int(rng.expovariate(rate)))
        if t < duration:
            s.call_at(t, fire, radio)

    for k in range(senders):
        angle = 2 * math.pi * k / senders
        radio = m.add_radio(f"n{k}", (50 * math.cos(angle), 50 * math.sin(angle)))
        s.call_at(int(rng.expovariate(rate)), fire, radio)
    s.run()
    return len(received), len(sent), toa, m


@pytest.mark.parametrize("load", [0.05, 0.2, 0.5])
def test_pure_aloha_delivery_ratio(load):
    """Without the preamble grace (lock needs the whole 8-symbol preamble), DER = e^(-2G)."""
    received, sent, toa, m = _aloha(load, seed=11, params=R.MediumParams(lock_preamble_symbols=8))
    p = math.exp(-2 * load)
    der = received / sent
    # Binomial sigma; collisions remove frames in pairs, which inflates the true sigma by
    # about sqrt(2): 4.5 binomial sigmas is ~3.2 true sigmas.
    sigma = math.sqrt(p * (1 - p) / sent)
    assert abs(der - p) < 4.5 * sigma, (der, p, sent)


def test_aloha_with_lorasim_timing_rule():
    """With the default rule the vulnerable period shrinks by 2 x 3 symbols."""
    load = 0.5
    received, sent, toa, m = _aloha(load, seed=5)
    p = math.exp(-2 * load * (1 - 3 * TS7 / toa))
    sigma = math.sqrt(p * (1 - p) / sent)
    assert abs(received / sent - p) < 4.5 * sigma
    assert received / sent > math.exp(-2 * load)


def _scenario(seed):
    s = Scheduler()
    trace = Trace(capture=True, clock=s)
    m = R.Medium(s, random.Random(seed), trace=trace, params=R.MediumParams(shadowing_sigma_db=6))
    gw = m.add_radio("gw", (0, 0))
    gw.listen(F, 9, BW)
    m.set_radio_loss(0.1)
    rng = random.Random(seed)
    for k in range(30):
        radio = m.add_radio(f"n{k}", (rng.uniform(-200, 200), rng.uniform(-200, 200)))
        for _j in range(10):
            at = rng.randrange(0, 20_000_000)
            s.call_at(at, lambda r=radio: r.transmit(b"p", F, 9, BW) if r.state != R.TX else None)
    s.run()
    return [(r["tx_id"], r["start_us"], r["receivers"]) for r in trace.of_kind("radio_frame")]


def test_same_seed_same_outcomes():
    first, second, other = _scenario(3), _scenario(3), _scenario(4)
    assert first == second
    assert first != other
    kinds = {rx["outcome"] for _, _, rxs in first for rx in rxs}
    assert "received" in kinds and len(kinds) > 1


def test_params_from_a_scenario_radio_table():
    from errors import ConfigError

    p = R.MediumParams.from_mapping({"shadowing_sigma_db": 4, "capture_mode": "sum", "gamma": 2.5})
    assert (p.shadowing_sigma_db, p.capture_mode, p.gamma, p.d0_m) == (4.0, "sum", 2.5, 40.0)
    assert R.MediumParams.from_mapping({"lock_preamble_symbols": 8}).lock_preamble_symbols == 8
    for table, message in (
        ({"gama": 2}, "radio.gama: unknown key"),
        ({"gamma": 0}, "radio.gamma: expected a number > 0, got 0"),
        ({"capture_mode": "max"}, "radio.capture_mode: expected 'each' or 'sum'"),
        ({"collisions_corrupt": 1}, "radio.collisions_corrupt: expected true or false"),
        ({"shadowing_sigma_db": float("nan")}, "radio.shadowing_sigma_db: expected a number >= 0"),
    ):
        with pytest.raises(ConfigError, match=message):
            R.MediumParams.from_mapping(table)


def test_rx_window_closes_after_a_lost_frame_with_on_timeout():
    s, m, trace = medium()
    node = m.add_radio("node", (0, 0))
    a = m.add_radio("a", (30, 0))
    b = m.add_radio("b", (-30, 0))
    events = []
    s.call_at(
        0,
        lambda: node.listen(
            F,
            7,
            BW,
            on_frame=lambda f: events.append(("frame", f.sender)),
            timeout_us=5_000,
            on_timeout=lambda: events.append(("timeout", s.now_us())),
        ),
    )
    send_at(s, a, 1_000)  # locked before the window ends...
    send_at(s, b, 20_000)  # ...and destroyed by an equal-power frame
    s.run()
    toa = R.airtime.time_on_air_us(7, BW, 10)
    assert events == [("timeout", 1_000 + toa)] and node.state == R.STANDBY
