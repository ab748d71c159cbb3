"""Simulator throughput: 100 sensors (the real sensor image) and one nano gateway, one day.

Prints simulated board-hours per wall second and uplinks per wall second of the firmware engine
(`openenergy sim run`), and the same figures for the planner's model engine at 100 and 1,000
sensors. Figures only. Run: .venv/bin/python bench/bench_sim.py [--quick]  (--quick: 2 h)
"""

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "scenarios" / "hundred-sensors.toml"


def model_run(model, sensors):
    """One simulated day of the planner's model; returns (DER, uplinks simulated)."""
    result = model.simulate(model.Scenario(sensors=sensors, interval_s=900.0, sf=7), seed=1)
    return result.der, result.sent


def main():
    from openenergy.planner import model
    from openenergy.sim import runner, scenario

    quick = "--quick" in sys.argv
    duration = "2h" if quick else "1d"
    sc = scenario.load(SCENARIO, duration=duration)
    boards = len(sc.boards())
    started = time.perf_counter()
    report = runner.run_scenario(sc)
    wall = time.perf_counter() - started
    sim_h = report["simulated_s"] / 3600.0
    uplinks = sum(d["uplinks_sent"] for d in report["devices"].values())
    print(
        "firmware engine: %d boards (1 nano gateway + %d sensors), %s simulated"
        % (boards, len(sc.devices), duration)
    )
    print("  wall time                 %8.1f s" % wall)
    print("  board-hours / wall second %8.1f" % (boards * sim_h / wall))
    print(
        "  uplinks / wall second     %8.1f  (%d uplinks sent, %d received by the server)"
        % (uplinks / wall, uplinks, report["server"]["uplinks"])
    )
    print(
        "  reproduce: .venv/bin/openenergy sim run %s --until %s"
        % (SCENARIO.relative_to(HERE.parent), duration)
    )
    print()
    print(
        "model engine (planner): SF7, 34-byte frames every 15 min (Poisson), >= one simulated day"
    )
    for sensors in (100, 1000):
        started = time.perf_counter()
        der, frames = model_run(model, sensors)
        wall = time.perf_counter() - started
        print(
            "  %5d sensors: DER %.3f, %.2f s wall, %.0f uplinks / wall second"
            % (sensors, der, wall, frames / wall)
        )
    print("  reproduce: .venv/bin/openenergy plan --model --sensors 100,1000 --interval 15m --sf 7")


if __name__ == "__main__":
    main()
