"""Simulator throughput: the planner's firmware and model engines at 100 and 1,000 sensors, and
`openenergy sim run` of a 100-sensor building.

Figures: uplinks per wall second and simulated board-days per wall second.
- Firmware engine (`openenergy plan` without --model): the real sensor and nano gateway images in
  the simulator, SF7, the 21-byte report every 15 minutes; the warm-up (power-on spread so the
  gateway's duty cycle lets the JoinAccepts through, joins, the report history filling) and the
  measured window. Uplinks: data frames the sensors sent over the whole run; board-days: the
  time each board was powered.
- Model engine: model.simulate() as `openenergy plan --model` runs each point (>= 100,000
  uplinks); board-days: sensors x simulated time.
- `openenergy sim run bench/scenarios/hundred-sensors.toml`: 100 sensors with S0 meters, 1 day.
Figures only. Run: .venv/bin/python bench/bench_sim.py [--quick]
(--quick: firmware engine at 100 sensors with 15 minutes measured, sim run for 2 h.)
"""

import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "scenarios" / "hundred-sensors.toml"
DAY_S = 86400.0


def firmware_engine(sensors, measure):
    """`openenergy plan --sensors N --interval 15m --measure M`: its record and the command."""
    from openenergy.cli import main

    argv = ["plan", "--sensors", str(sensors), "--interval", "15m", "--measure", measure]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plan.json"
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(argv + ["--json", str(path)])
        command_wall = time.perf_counter() - started
        if code != 0:
            raise SystemExit("openenergy %s failed (%d)" % (" ".join(argv), code))
        record = json.loads(path.read_text())[0]
    return record, command_wall, ".venv/bin/openenergy " + " ".join(argv)


def print_firmware(record, command_wall, command):
    wall = record["wall_s"]
    print(
        "  %5d sensors: %5.1f h simulated (%.2f h warm-up, %.2f h measured), %6.1f s wall"
        % (
            record["sensors"],
            record["simulated_s"] / 3600.0,
            record["warmup_s"] / 3600.0,
            record["duration_s"] / 3600.0,
            wall,
        )
    )
    print(
        "                 %8.1f uplinks / wall second (%d uplinks), %6.2f board-days / wall "
        "second (%.1f board-days)"
        % (
            record["uplinks_all"] / wall,
            record["uplinks_all"],
            record["board_days"] / wall,
            record["board_days"],
        )
    )
    print(
        "                 DER %.3f (model, same sensors %.3f; model mean %.3f); whole command "
        "%.1f s" % (record["der"], record["model_der"], record["model_mean_der"], command_wall)
    )
    print("    reproduce: %s" % command)


def model_engine(sensors, repeat=5):
    """model.simulate() of one `plan --model` point; best wall time of `repeat` runs."""
    from openenergy.commands.plan import DEFAULT_PAYLOAD, MIN_FRAMES
    from openenergy.planner import model

    scenario = model.Scenario(
        sensors=sensors,
        interval_s=900.0,
        sf=7,
        phy_len=DEFAULT_PAYLOAD + model.LORAWAN_OVERHEAD,
        min_frames=MIN_FRAMES,
    )
    best = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = model.simulate(scenario, seed=1)
        wall = time.perf_counter() - started
        best = wall if best is None else min(best, wall)
    return result, best


def main():
    from openenergy.sim import runner, scenario

    quick = "--quick" in sys.argv
    print("firmware engine (openenergy plan): 1 nano gateway + N sensors, real images, SF7,")
    print("the 21-byte report every 15 min")
    points = [(100, "15m")] if quick else [(100, "1h"), (1000, "15m")]
    for sensors, measure in points:
        print_firmware(*firmware_engine(sensors, measure))
    print()

    print("model engine (openenergy plan --model): SF7, 34-byte frames every 15 min (Poisson),")
    print(">= 100,000 uplinks per point (best of 5)")
    for sensors in (100, 1000):
        result, wall = model_engine(sensors)
        board_days = sensors * result.duration_s / DAY_S
        print(
            "  %5d sensors: %.1f simulated days, %d uplinks, DER %.3f, %.3f s wall: "
            "%.0f uplinks / wall second, %.0f board-days / wall second"
            % (
                sensors,
                result.duration_s / DAY_S,
                result.sent,
                result.der,
                wall,
                result.sent / wall,
                board_days / wall,
            )
        )
    print("    reproduce: .venv/bin/openenergy plan --model --sensors 100,1000 --interval 15m")
    print()

    duration = "2h" if quick else "6h"
    sc = scenario.load(SCENARIO, duration=duration)
    boards = len(sc.boards())
    started = time.perf_counter()
    report = runner.run_scenario(sc)
    wall = time.perf_counter() - started
    sim_days = report["simulated_s"] / DAY_S
    uplinks = sum(d["uplinks_sent"] for d in report["devices"].values())
    print(
        "openenergy sim run: %d boards (1 nano gateway + %d sensors with S0 meters), %s simulated"
        % (boards, len(sc.devices), duration)
    )
    print(
        "  %.1f s wall, %.1f uplinks / wall second (%d sent, %d received by the server), "
        "%.2f board-days / wall second"
        % (wall, uplinks / wall, uplinks, report["server"]["uplinks"], boards * sim_days / wall)
    )
    print(
        "    reproduce: .venv/bin/openenergy sim run %s --until %s"
        % (SCENARIO.relative_to(HERE.parent), duration)
    )


if __name__ == "__main__":
    main()
