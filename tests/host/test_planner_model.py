"""The capacity model: pure ALOHA, the simulator's medium frame by frame, LoRaSim's figures, CLI."""

import json
import math
import random
from dataclasses import replace

import numpy as np
import pytest
from openenergy.cli import main
from openenergy.planner import model, report
from openenergy.sim import radio as R
from openenergy.sim.clock import Scheduler

# ---------------------------------------------------------------- pure ALOHA


def aloha_scenario(load, **kw):
    """1000 equidistant sensors (equal powers: capture never helps), SF7, 20-byte frames,
    interval chosen for offered load `load`."""
    base = model.Scenario(sensors=1000, interval_s=1.0, sf=7, phy_len=20, placement=model.EQUAL)
    interval = base.sensors * base.airtime_s() / load
    return replace(base, interval_s=interval, min_frames=200000, **kw)


def tolerance(der, frames):
    # collisions remove frames in pairs: ~sqrt(2) times the binomial deviation; 4.5 of those
    return 4.5 * math.sqrt(2.0) * math.sqrt(der * (1.0 - der) / frames)


@pytest.mark.parametrize("load", [0.05, 0.2, 0.5])
def test_no_capture_equal_power_is_pure_aloha(load):
    r = model.simulate(aloha_scenario(load, capture=False, timing_rule=False), seed=7)
    assert r.offered_load == pytest.approx(load)
    assert r.sent > 190000 and r.too_weak == 0
    # finite population: a sensor never collides with itself, (1 - 2T/I)^(n-1) = e^(-2G(n-1)/n)
    expected = math.exp(-2.0 * load * 999 / 1000)
    assert abs(r.der - expected) < tolerance(expected, r.sent)
    assert abs(r.der - math.exp(-2.0 * load)) < tolerance(expected, r.sent) + 0.002


def test_equal_powers_capture_changes_nothing():
    plain = model.simulate(aloha_scenario(0.5, capture=False, timing_rule=False), seed=3)
    capture = model.simulate(aloha_scenario(0.5, capture=True, timing_rule=False), seed=3)
    assert capture.der == plain.der


def test_timing_rule_shrinks_the_vulnerable_period():
    # frames collide only when their starts are less than T - 3Ts apart (the earlier one must
    # not end within the later one's first 3 preamble symbols): vulnerable period 2(T - 3Ts)
    s = aloha_scenario(0.5, capture=False, timing_rule=True)
    r = model.simulate(s, seed=5)
    shrink = 1.0 - 3.0 * s.symbol_s() / s.airtime_s()
    expected = math.exp(-2.0 * 0.5 * shrink * 999 / 1000)
    assert abs(r.der - expected) < tolerance(expected, r.sent)
    assert r.der - math.exp(-1.0) > 3 * tolerance(expected, r.sent)  # distinguishable


def test_survivors_rules_on_hand_made_frames():
    air, crit = 1.0, 0.1
    starts = np.array([0.0, 0.5, 3.0, 3.95, 6.0, 6.2, 6.4])
    rssi = np.array([-100.0, -103.0, -100.0, -120.0, -90.0, -100.0, -110.0])
    got = model.survivors(starts, rssi, air, crit, capture_db=6.0)
    # 0/1 within 6 dB: both lost; 2 ends in 3's first 0.1 s: no collision;
    # 4 is >= 6 dB above 5 and 6, so it survives; 5 and 6 both lose
    assert got.tolist() == [False, False, True, True, True, False, False]
    assert model.survivors(starts, rssi, air, crit, capture_db=None).tolist() == [
        False,
        False,
        True,
        True,
        False,
        False,
        False,
    ]
    # exactly 6 dB is enough (LoRaSim: the weaker is lost when the gap is not < 6 dB)
    two = model.survivors(np.array([0.0, 0.5]), np.array([-100.0, -106.0]), air, crit)
    assert two.tolist() == [True, False]
    # LoRaSim rev. 218 forgot a frame's own collision at its arrival: the later frame survives
    bug = model.survivors(np.array([0.0, 0.5]), np.array([-100.0, -102.0]), air, crit, 6.0, True)
    assert bug.tolist() == [False, True]


# ---------------------------------------------------------------- against the simulator's medium

F = 868100000
BW = 125000


def medium_outcomes(starts_us, sensor, positions, params, phy_len, downlinks_us=()):
    """Run the frames through sim/radio.py's Medium; returns (received mask, rssi per frame)."""
    sched = Scheduler()
    medium = R.Medium(sched, random.Random(1), params=params)
    gw = medium.add_radio("gw", (0.0, 0.0))
    received = set()

    def on_frame(frame):
        received.add(frame.tx_id)

    def listen(_tx=None):
        gw.listen(F, 7, BW, on_frame=on_frame)

    listen()
    radios = [medium.add_radio(f"s{i}", xy) for i, xy in enumerate(positions)]
    ids = []
    for t, i in zip(starts_us, sensor, strict=True):
        ids.append(radios[i].transmit(bytes(phy_len), F, 7, BW, at_us=int(t)).id)
    for t in downlinks_us:
        gw.transmit(bytes(12), F, 7, BW, iq=True, crc=False, at_us=int(t), on_done=listen)
    sched.run()
    rssi = np.array([14.0 - medium.path_loss_db(radios[i], gw) for i in sensor])
    return np.array([tx_id in received for tx_id in ids]), rssi


@pytest.mark.parametrize(
    "capture, timing_rule, downlinks",
    [(True, True, False), (False, True, False), (False, False, False), (True, True, True)],
)
def test_model_rules_equal_the_medium_frame_by_frame(capture, timing_rule, downlinks):
    rng = np.random.default_rng(11)
    n, phy_len = 40, 20
    air_us = R.airtime.time_on_air_us(7, BW, phy_len)
    starts, sensor = model._poisson_starts(rng, n, 80 * air_us / 1e6, air_us / 1e6, 0.0, 100.0)
    order = np.argsort(starts)
    starts_us = np.round(starts[order] * 1e6).astype(np.int64)
    sensor = sensor[order]
    radius = 1.2 * R.max_range_m(7, BW)  # some sensors out of range
    r = radius * np.sqrt(rng.uniform(size=n))
    a = rng.uniform(0, 2 * math.pi, size=n)
    positions = list(zip(r * np.cos(a), r * np.sin(a), strict=True))
    params = R.MediumParams()
    if not capture:
        params.capture_threshold_db = 1000.0
    if not timing_rule:
        params.lock_preamble_symbols = 8
    dl_air = R.airtime.time_on_air_us(7, BW, 12, crc=False)
    tx_windows = []
    if downlinks:
        tx_windows = sorted(rng.choice(starts_us, size=60, replace=False) + 200000)
        tx_windows = [
            t for k, t in enumerate(tx_windows) if k == 0 or t - tx_windows[k - 1] > 2 * dl_air
        ]
    got, rssi = medium_outcomes(starts_us, sensor, positions, params, phy_len, tx_windows)

    s = starts_us / 1e6
    crit = (8 - params.lock_preamble_symbols) * R.airtime.symbol_time_us(7, BW) / 1e6
    heard = rssi >= params.sensitivity_dbm[(7, BW)]
    expected = np.zeros(len(s), dtype=bool)
    sub = np.flatnonzero(heard)
    expected[sub] = model.survivors(s[sub], rssi[sub], air_us / 1e6, crit, 6.0 if capture else None)
    before = expected.copy()
    for t in tx_windows:
        expected[model.deaf_span(s, air_us / 1e6, crit, t / 1e6, (t + dl_air) / 1e6)] = False
    assert (before & ~expected).any() == downlinks
    assert 0 < (~heard).sum() < len(s)
    assert 0.1 < expected.mean() < 0.8  # G = 0.5: a busy channel, many collisions to agree on
    assert got.tolist() == expected.tolist()


# ---------------------------------------------------------------- LoRaSim (Bor et al., MSWiM 2016)

# loraDir.py: maxDist = d0·e^((Ptx − sensi[5,2] − Lpld0)/(10γ)) with sensi[5,2] = −132.25 dBm
LORASIM_MAXDIST = 40.0 * math.exp((14.0 + 132.25 - 127.41) / 20.8)
LORASIM_SEEDS = range(8)


def lorasim(nodes, cr, full_collision, rev218=False):
    """loraDir.py <nodes> 1000000 <experiment> <simtime> <full_collision>: SF12/125 kHz, 20-byte
    packets, preamble 8, one gateway; experiment 0 = CR4/8, experiment 4 = CR4/5 (LoRaWAN).
    LoRaSim waits Exp(avgSendTime) after each packet ends: mean start spacing 1000 s + airtime.
    Its simplified check (full_collision 0) is pure ALOHA; the full check adds the timing rule and
    capture. Mean DER over several node placements, five simulated days each."""
    params = R.MediumParams()
    params.sensitivity_dbm = dict(params.sensitivity_dbm)
    params.sensitivity_dbm[(12, BW)] = -133.25  # LoRaSim's measured SF12/125 kHz sensitivity
    s = model.Scenario(
        sensors=nodes,
        interval_s=1000.0,
        sf=12,
        phy_len=20,
        cr=cr,
        radius_m=LORASIM_MAXDIST,
        capture=full_collision,
        timing_rule=full_collision,
        flag_reset_bug=rev218,
        duration_s=5 * model.DAY_S,
        medium=params,
    )
    s = replace(s, interval_s=1000.0 + s.airtime_s())
    results = [model.simulate(s, seed) for seed in LORASIM_SEEDS]
    assert all(r.too_weak == 0 for r in results)  # maxDist is inside the range
    return float(np.mean([r.der for r in results]))


def lorasim_loop(starts, rssi, air, crit, full_collision, rev218=False):
    """loraDir.py's transmit()/checkcollision() re-stated literally, one packet at a time:
    an arriving packet is checked against every packet still at the base station, the caller
    then overwrites its flag with checkcollision()'s return value, and it joins the list."""
    collided = [False] * len(starts)
    at_bs = []
    for i, now in enumerate(starts):
        at_bs = [j for j in at_bs if starts[j] + air > now]
        col = False
        for j in at_bs:
            if not full_collision:
                collided[i] = collided[j] = col = True
            elif now + crit < starts[j] + air:  # timingCollision(): p1_cs < p2_end
                diff = rssi[i] - rssi[j]
                casualties = (i, j) if abs(diff) < 6 else (i,) if diff < 6 else (j,)
                for p in casualties:
                    collided[p] = True
                    if p == i and not rev218:  # revision 218 lacks this line
                        col = True
        collided[i] = col
        at_bs.append(i)
    return ~np.array(collided)


@pytest.mark.parametrize("full_collision, rev218", [(False, False), (True, False), (True, True)])
def test_vectorised_rules_equal_lorasim_loop(full_collision, rev218):
    rng = np.random.default_rng(5)
    s = model.Scenario(sensors=200, interval_s=1000.0, sf=12, phy_len=20, cr=4)
    air, crit = s.airtime_s(), 3 * s.symbol_s()
    starts, sensor = model._poisson_starts(rng, 200, 1000.0 + air, air, 0.0, 2 * model.DAY_S)
    order = np.argsort(starts)
    starts, sensor = starts[order], sensor[order]
    distance = LORASIM_MAXDIST * np.sqrt(rng.uniform(size=200))
    rssi = (14.0 - 127.41 - 20.8 * np.log10(distance / 40.0))[sensor]
    expected = lorasim_loop(starts, rssi, air, crit, full_collision, rev218)
    got = model.survivors(
        starts,
        rssi,
        air,
        crit if full_collision else 0.0,
        6.0 if full_collision else None,
        flag_reset_bug=rev218,
    )
    assert len(starts) > 30000 and 0.4 < got.mean() < 0.8
    assert got.tolist() == expected.tolist()


def test_lorasim_max_dist():
    assert LORASIM_MAXDIST == pytest.approx(98.95, abs=0.01)


def test_lorasim_sf12_cr48_200_nodes_without_capture():
    # "with SF12/CR4/8 at 200 nodes, DER is 0.51 without capture"
    der = lorasim(200, 4, full_collision=False)
    assert abs(der - 0.51) <= 0.03
    assert der == pytest.approx(math.exp(-2 * 200 * 1.712128 / 1001.712128), abs=0.006)


def test_lorasim_typical_lorawan_64_nodes():
    # "SF12/BW125, 20 B, one frame per 16.7 min: a single gateway keeps DER > 0.9 up to about
    # 64 nodes" (experiment 4, full collision check): DER at 64 nodes within 0.03 of 0.9
    der = lorasim(64, 1, full_collision=True)
    assert abs(der - 0.90) <= 0.03
    assert 0.86 < der < 0.89  # measured 0.875; the 0.9 crossing is near 51 nodes


def test_lorasim_sf12_cr48_200_nodes_with_capture():
    # "... and 0.64 with it": LoRaSim 0.2.1's rules give 0.586 here (the simulator's medium,
    # independently, 0.580; docs/radio-model.md section 6). Not reproduced: skipped, not faked.
    der = lorasim(200, 4, full_collision=True)
    assert 0.56 < der < 0.61
    if abs(der - 0.64) > 0.03:
        pytest.skip(
            f"published 0.64 not reproduced: LoRaSim 0.2.1 rules give {der:.3f} at 200 nodes "
            "SF12/CR4/8 (rev. 218 flag-reset bug: 0.76; CR4/5: 0.66); see docs/planner.md"
        )


def test_lorasim_flag_reset_bug_inflates_capture():
    # revision 218 forgot an arriving packet's own collision: 0.766 in docs/radio-model.md
    buggy = lorasim(200, 4, full_collision=True, rev218=True)
    assert abs(buggy - 0.766) <= 0.03
    assert buggy - lorasim(200, 4, full_collision=True) > 0.1


# ---------------------------------------------------------------- model behaviour


def test_out_of_range_sensors_are_lost():
    s = model.Scenario(sensors=300, interval_s=900.0, sf=7, min_frames=50000)
    far = replace(s, radius_m=2.0 * s.range_m())
    r = model.simulate(far, seed=2)
    # uniform over a disc twice the range: 3/4 of the sensors cannot be heard
    assert r.too_weak / r.sent == pytest.approx(0.75, abs=0.06)
    assert model.simulate(s, seed=2).too_weak == 0


def test_deterministic_and_seeded():
    s = model.Scenario(sensors=500, interval_s=900.0, sf=9)
    assert model.simulate(s, seed=4) == model.simulate(s, seed=4)
    assert model.simulate(s, seed=4).der != model.simulate(s, seed=5).der


def test_periodic_traffic_has_the_same_mean_der():
    s = model.Scenario(sensors=2000, interval_s=900.0, sf=8, min_frames=300000)
    poisson = model.simulate(s, seed=1)
    periodic = model.simulate(replace(s, traffic=model.PERIODIC), seed=1)
    assert periodic.sent == pytest.approx(poisson.sent, rel=0.01)
    assert periodic.der == pytest.approx(poisson.der, abs=0.01)


def test_downlinks_make_the_gateway_deaf():
    s = model.Scenario(sensors=400, interval_s=900.0, sf=7, min_frames=100000)
    quiet = model.simulate(s, seed=1)
    talking = model.simulate(replace(s, downlink_ratio=0.5), seed=1)
    assert quiet.half_duplex == 0 and quiet.downlinks == 0
    assert talking.downlinks == pytest.approx(0.5 * talking.received, rel=0.05)
    assert talking.half_duplex > 0
    assert talking.der < quiet.der


def test_two_gateways_deliver_more():
    s = model.Scenario(sensors=1500, interval_s=900.0, sf=7, radius_m=100.0)
    one = model.simulate(s, seed=1)
    two = model.simulate(replace(s, gateways=2), seed=1)
    assert two.der > one.der + 0.02


def test_capacity_is_the_last_count_above_the_target():
    s = model.Scenario(sensors=1, interval_s=900.0, sf=10, min_frames=50000)
    n = model.capacity(s, 0.9, seed=3)
    assert model.simulate(replace(s, sensors=n), 3).der >= 0.9
    assert model.simulate(replace(s, sensors=n + 1), 3).der < 0.9
    assert model.capacity(s, 0.99, seed=3) < n


def test_bad_scenarios_name_the_field():
    with pytest.raises(model.ConfigError, match="interval_s"):
        model.check(model.Scenario(sensors=1, interval_s=0.05))
    with pytest.raises(model.ConfigError, match="sensors"):
        model.check(model.Scenario(sensors=0, interval_s=900.0))
    with pytest.raises(model.ConfigError, match="traffic"):
        model.check(model.Scenario(sensors=1, interval_s=900.0, traffic="bursty"))


def test_ten_thousand_sensors_for_a_day_is_fast():
    import time

    s = model.Scenario(sensors=10000, interval_s=900.0, sf=7)
    t0 = time.perf_counter()
    r = model.simulate(s, seed=1)
    elapsed = time.perf_counter() - t0
    assert r.sent == pytest.approx(960000, rel=0.01)
    assert elapsed < 5.0  # ~0.5 s here; generous for slow CI machines


# ---------------------------------------------------------------- report and CLI


def test_capacity_from_curve():
    recs = [
        {"sensors": 10, "der": 0.995},
        {"sensors": 100, "der": 0.985},
        {"sensors": 1000, "der": 0.8},
    ]
    kind, n = report.capacity_from_curve(recs, 0.99)
    assert kind == "about" and 10 < n < 100
    assert report.capacity_from_curve(recs, 0.5) == ("at least", 1000)
    assert report.capacity_from_curve(recs, 0.999) == ("fewer than", 10)


def plan(capsys, *argv):
    code = main(["plan", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_model_table_sentence_json_png(capsys, tmp_path):
    js, png = tmp_path / "plan.json", tmp_path / "plan.png"
    argv = ["--model", "--sensors", "20,200", "--json", str(js), "--png", str(png), "--seed", "3"]
    code, out, err = plan(capsys, *argv)
    assert (code, err) == (0, "")
    assert "SF7/125 kHz, a 21-byte payload (34-byte frame, 77.1 ms) every 15 min" in out
    last = out.strip().splitlines()[-1]
    assert "one gateway serves up to" in last and "sensors at ≥ 99 % delivery" in last
    assert "at ≥ 90 %" in last
    entries = json.loads(js.read_text())
    assert [e["sensors"] for e in entries] == [20, 200]
    assert all(0.9 < e["der"] <= 1.0 and e["engine"] == "model" for e in entries)
    assert entries[0]["aloha_der"] == pytest.approx(math.exp(-2 * entries[0]["offered_load"]))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_firmware_engine_missing(capsys, monkeypatch):
    from openenergy.commands import plan as plan_command

    find_spec = plan_command.importlib.util.find_spec
    monkeypatch.setattr(
        plan_command.importlib.util,
        "find_spec",
        lambda name, *a: None if name == plan_command._FIRMWARE_ENGINE else find_spec(name, *a),
    )
    code, out, err = plan(capsys, "--sensors", "10..100")
    assert code == 2 and out == ""
    assert err == (
        "openenergy plan: error: the firmware engine needs the simulator (openenergy sim); "
        "use --model\n"
    )


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--sensors", "100..10"], "--sensors"),
        (["--sensors", "ten"], "--sensors"),
        (["--sensors", "0,5"], "--sensors"),
        (["--interval", "soon"], "--interval"),
        (["--interval", "0.01s"], "--interval"),
        (["--sf", "13"], "--sf"),
        (["--sf", "12", "--payload", "52"], "--payload"),
        (["--gateways", "0"], "--gateways"),
        (["--downlinks", "2"], "--downlinks"),
        (["--bw", "250", "--sf", "8"], "--sf/--bw"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(capsys, argv, option):
    code, out, err = plan(capsys, "--model", *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"openenergy plan: error: {option}") and err.count("\n") == 1


def test_sensor_ranges_and_intervals():
    from openenergy.commands.plan import parse_interval, parse_sensors

    assert parse_sensors("10..1000") == [10, 17, 28, 46, 77, 129, 215, 359, 599, 1000]
    assert parse_sensors("1..3") == [1, 2, 3]
    assert parse_sensors("200,64,100,64") == [64, 100, 200]
    assert [parse_interval(t) for t in ("900", "90s", "15m", "1.5h", "1d")] == [
        900.0,
        90.0,
        900.0,
        5400.0,
        86400.0,
    ]
