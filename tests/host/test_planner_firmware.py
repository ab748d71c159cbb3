"""The planner's firmware engine: the real images in the simulator against the model, the CLI."""

import json
import re
from pathlib import Path

import airtime
import numpy as np
import pytest
from errors import ConfigError
from openenergy.cli import main
from openenergy.planner import firmware_engine as fe
from openenergy.planner import model
from openenergy.sim.radio import max_range_m

ROOT = Path(__file__).resolve().parents[2]


def settings(interval_s=60.0, sf=7, payload=21, **extra):
    """The dict `openenergy plan` builds (commands/plan.py _scenario()), radius left to the
    engine."""
    phy = payload + model.LORAWAN_OVERHEAD
    base = {
        "engine": "firmware",
        "gateways": 1,
        "interval_s": interval_s,
        "sf": sf,
        "bw_hz": 125000,
        "cr": 1,
        "payload": payload,
        "phy_len": phy,
        "airtime_ms": airtime.time_on_air_us(sf, 125000, phy, 1, 8) / 1e3,
        "radius_m": None,
        "traffic": model.POISSON,
        "capture": True,
        "downlink_ratio": 0.0,
        "seed": 1,
    }
    base.update(extra)
    return base


# ---------------------------------------------------------------- what the image can honour


def test_prepare_maps_the_settings_onto_the_sensor_image():
    s = fe.prepare(settings(interval_s=900.0, payload=21))
    assert s["history"] == 4 and s["confirmed"] == "never"
    assert s["traffic"] == model.PERIODIC and s["interval_s"] == 900.0
    assert s["power_dbm"] == 13.0  # 16 dBm EIRP (TXPower 0) - 2.15 dBi, rounded down
    assert s["radius_m"] == pytest.approx(max_range_m(7, 125000, 13.0))
    assert s["measure_s"] == fe.MEASURE_S
    assert fe.prepare(settings(radius_m=50.0))["radius_m"] == 50.0
    assert fe.prepare(settings(payload=13))["history"] == 0
    assert fe.prepare(settings(downlink_ratio=1.0))["confirmed"] == "always"
    assert fe.prepare(s) == s  # idempotent: run() prepares again


@pytest.mark.parametrize(
    "extra, option",
    [
        ({"bw_hz": 250000}, "--bw"),
        ({"cr": 2}, "--cr"),
        ({"interval_s": 30.0}, "--interval"),
        ({"interval_s": 90.5}, "--interval"),
        ({"payload": 20}, "--payload"),
        ({"payload": 11}, "--payload"),
        ({"sf": 12, "payload": 47}, "--payload"),  # 46 bytes of room at SF12 (51 - 5)
        ({"downlink_ratio": 0.5}, "--downlinks"),
    ],
)
def test_prepare_refuses_what_the_image_cannot_do(extra, option):
    with pytest.raises(ConfigError, match=f"^{option}: ") as info:
        fe.prepare(settings(**extra))
    assert "\n" not in str(info.value)
    assert fe.prepare(settings(sf=12, payload=45))["history"] == 16


def test_building_follows_the_model_deployment():
    s = fe.prepare(settings(interval_s=60.0))
    data, placed = fe.building(s, 40, seed=3)
    again = model.deployment(fe.model_scenario(s, 40), 3)
    assert np.array_equal(placed.phases_s, again.phases_s)
    devices = data["device"]
    assert len(devices) == 40 and len(data["gateway"]) == 1
    span = fe.power_on_span_s(s, 40)
    for device, phase, xy in zip(devices, placed.phases_s, placed.positions, strict=True):
        on = device["power_on"]
        assert 0 <= on < span + 60.0
        assert (on + fe.BOOT_OFFSET_S - phase) % 60.0 == pytest.approx(0.0, abs=1e-5) or (
            on + fe.BOOT_OFFSET_S - phase
        ) % 60.0 == pytest.approx(60.0, abs=1e-5)
        assert device["position"] == [pytest.approx(xy[0]), pytest.approx(xy[1])]
        assert device["config"]["confirmed"] == "never"
        assert device["config"]["history"] == 4
    gateway = data["gateway"][0]["config"]
    assert gateway["sf"] == 7 and gateway["bw_khz"] == 125


def test_model_takes_a_deployment():
    s = model.Scenario(sensors=30, interval_s=60.0, traffic=model.PERIODIC, jitter=0.0)
    placed = model.deployment(s, 5)
    r = model.simulate(s, 5, placed)
    assert r.sent == pytest.approx(30 * 1440, abs=30)
    assert model.simulate(s, 9, placed).der == r.der  # same building, same frames
    with pytest.raises(ConfigError, match="deployment"):
        model.simulate(model.Scenario(sensors=31, interval_s=60.0), 5, placed)


# ---------------------------------------------------------------- the CLI, end to end


def test_cli_default_engine_end_to_end(capsys, tmp_path):
    out_json = tmp_path / "plan.json"
    argv = ["plan", "--sensors", "5,10", "--interval", "60", "--json", str(out_json)]
    code = main(argv)
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert "(firmware engine)" in out and "model, same sensors" in out
    assert "note: each row is one building" in out
    assert "one gateway serves" in out.strip().splitlines()[-1]
    entries = json.loads(out_json.read_text())
    assert [e["sensors"] for e in entries] == [5, 10]
    for e in entries:
        assert 0.9 <= e["der"] <= 1.0 and e["engine"] == "firmware"
        assert e["traffic"] == "periodic" and e["history"] == 4
        # one report a minute, each after a random delay: 59..61 frames start in the hour
        assert abs(e["sent"] - 60 * e["sensors"]) <= e["sensors"] and e["joined"] == e["sensors"]
        assert e["join_frames"] == 0 and e["downlinks"] == 0


def test_cli_unusable_setting_is_one_line_exit_2(capsys):
    code = main(["plan", "--sensors", "5", "--interval", "30s"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == (
        "openenergy plan: error: --interval: the sensor image reports every 60..65535 whole "
        "seconds, got 30 s (use --model)\n"
    )


# ---------------------------------------------------------------- against the model

# Light, medium and heavy load at SF7 (21-byte report, 77.1 ms), one report a minute, one hour
# measured after the joins: G = 0.026, 0.077, 0.19.
LOADS = [20, 60, 150]


@pytest.fixture(scope="module")
def runs():
    s = settings(interval_s=60.0)
    return {n: fe.run_one(s, n, seed=1) for n in LOADS}


@pytest.mark.slow
@pytest.mark.parametrize("sensors", LOADS)
def test_firmware_engine_agrees_with_the_model(runs, sensors):
    r = runs[sensors]
    assert r["joined"] == sensors and abs(r["sent"] - 60 * sensors) <= sensors
    # the window is data traffic: a sensor whose reports keep colliding may re-join (its
    # backlog asks for an ACK that never comes), a few frames in thousands
    assert r["join_frames"] + r["downlinks"] <= 0.001 * r["sent"] and r["not_forwarded"] == 0
    assert 34 in r["phy_lens"] and r["power_dbm"] == 13.0  # routine reports (+ a few drains)
    # the model on the building that ran: same positions, the phases the frames show
    assert abs(r["der"] - r["model_der"]) <= 0.03
    # ... and the model over buildings of such sensors (periodic, the image's random delay)
    sc = fe.model_scenario(fe.prepare(settings(interval_s=60.0)), sensors)
    assert sc.jitter == pytest.approx(0.05)  # a 6 s spread at one report a minute
    draws = [model.simulate(sc, k, model.deployment(sc, k)).der for k in range(100, 300)]
    assert abs(r["der"] - np.mean(draws)) <= 0.03
    low, high = r["model_der_range"]
    assert low < np.mean(draws) < high


def test_report_spread_is_the_images():
    source = (ROOT / "firmware" / "sensor" / "app.py").read_text()
    assert re.search(r"^SPREAD_MAX_MS = const\((\d+)\)", source, re.M).group(1) == "%d" % (
        fe.REPORT_SPREAD_MAX_S * 1000
    )
    assert "window = interval // %d" % round(1 / fe.REPORT_SPREAD_FRACTION) in source
    assert fe.report_spread_s(60) == 6.0 and fe.report_spread_s(900) == 30.0


@pytest.mark.slow
def test_heavy_load_is_well_below_ninety_percent(runs):
    assert runs[150]["der"] < 0.8
    assert runs[20]["der"] > runs[60]["der"] > runs[150]["der"]
