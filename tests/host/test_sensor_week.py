"""The sensor image's acceptance week (issue 5, "Proof (in the simulator)"): examples/week.toml
run through the same Runner as `openenergy sim run`, the assertions made on its JSON report.

- The clean week (the file without its faults): every reading reaches the server and the
  server's indexes equal the meters' (S0 pulses and the Linky's Wh) exactly.
- The bad week (the file as it is: >= 1,000 power cuts at random instants, a 2-hour gateway
  WiFi outage, a 1-hour server outage): no reading lost, no FCnt replayed, no crash, every boot
  back in a working session; the Linky's index still exact, the S0 indexes short only of the
  pulses the sensor could not see (board off or booting) and of the bound of docs/sensor.md per
  cut (the pulses not yet copied to NVS and those of the last loop pass).

The two weeks are independent simulations: the clean one runs in a second process while this
one runs the bad one (about 1.5 minutes of wall time each on an idle core).
"""

import bisect
import multiprocessing
from pathlib import Path

import pytest
from openenergy.sim import scenario
from openenergy.sim.runner import SETTLE_US, Runner

S = 1_000_000
MIN = 60 * S
WEEK_READINGS = 7 * 96
WEEK = Path(__file__).resolve().parents[2] / "examples" / "week.toml"
PERSIST_PULSES = 10  # app.PERSIST_PULSES of the image
DUE_PERSIST_US = 60 * S  # app.DUE_PERSIST_MS: the NVS copy of the time left until a reading
INTERVAL_US = 15 * MIN
STAGGER_US = 2 * MIN  # devices power on within this (the scenario default)
LAST_PASS_US = 20 * S  # a loop pass: <= 5 s of sleep, plus the uplinks or join it blocks on
SESSION_CHECK_US = 16 * MIN  # a boot powered this long with the link up gets frames through
LINK_SETTLE_US = 5 * MIN  # after a gateway or server outage, before the link counts as back
LOG_LINES = {  # what the image logs (link.py) when it joins, and the two reasons to re-join
    "joined": "I sensor: joined (session ",
    "refused": "W sensor: saved session refused:",
    "dropped": "W sensor: session dropped:",
}


def link_outages(sc, runner):
    """[(start, end)] during which no uplink can reach the server: gateway power cuts (to its
    boot), its WiFi outage, the server outage, each followed by LINK_SETTLE_US."""
    spans = []
    for fault in sc.faults:
        if fault.kind in ("wifi_outage", "server_outage"):
            spans.append((fault.at_us, fault.at_us + fault.duration_us + LINK_SETTLE_US))
    for gateway in runner.board_plans("gateway"):
        for cut, boot in runner.power_cuts[gateway.name]:
            spans.append((cut, (boot or sc.duration_us) + LINK_SETTLE_US))
    return spans


def run_week(faults):
    """Run the week (without its faults unless faults); the report and, per device, what the
    checks need from the runner (plain data: this runs in a worker process too)."""
    sc = scenario.load(WEEK)
    if not faults:
        sc.faults = []
    with Runner(sc) as runner:
        report = runner.run()
        server = runner.server.report()["devices"]
        devices = {}
        for plan in runner.board_plans("device"):
            eui = plan.identity[0].hex()
            console = plan.board.console
            assert len(console) < plan.board.console_limit  # nothing dropped
            devices[eui] = {
                "log": {
                    key: sum(1 for _, line in console if text in line)
                    for key, text in LOG_LINES.items()
                },
                "cuts": runner.power_cuts[plan.name],
                "frames_us": sorted(p["time_us"] for p in server[eui]["payloads"]),
                "releases": [list(m.releases) if m.kind == "s0" else None for m in plan.meters],
            }
        return {
            "report": report,
            "devices": devices,
            "outages": link_outages(sc, runner),
            "durations": {f.kind: f.duration_us for f in sc.faults if f.kind != "power_cut"},
            "end_us": sc.duration_us,
        }


def show(name, week):
    report = week["report"]
    print("\n%s week: wall %.1f s, %d events" % (name, report["wall_s"], report["events"]))
    for dev in report["devices"].values():
        meters = [
            (
                m["kind"],
                m["index_truth"],
                m["index_server"],
                m.get("pulses_unseen"),
                m.get("pulses_lost"),
            )
            for m in dev["meters"]
        ]
        print(
            "  %s: readings %d/%d, joins %d (requests %d), boots %d, cuts %d, uplinks %d/%d, %s"
            % (
                dev["name"],
                dev["readings_received"],
                dev["readings_expected"],
                dev["joins"],
                dev["join_attempts"],
                dev["boots"],
                dev["power_cuts"],
                dev["uplinks_received"],
                dev["uplinks_sent"],
                meters,
            )
        )


@pytest.fixture(scope="module")
def weeks():
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        clean = pool.apply_async(run_week, (False,))
        bad = run_week(True)
        clean = clean.get(timeout=3600)
    show("clean", clean)
    show("bad", bad)
    return {"clean": clean, "bad": bad}


def check_health(report):
    assert report["server"]["fcnt_replays"] == 0
    assert report["server"]["mic_failures"] == 0
    for board in list(report["devices"].values()) + list(report["gateways"].values()):
        assert board["crashes"] == 0, (board["name"], board["first_crash"])
    kinds = set()
    for dev in report["devices"].values():
        assert dev["joined"] and dev["fcnt_replays"] == 0, dev["name"]
        kinds.update(m["kind"] for m in dev["meters"])
    assert kinds == {"s0", "tic"}


def least_readings(week, eui):
    """Readings a device must have taken: one per interval of powered time, each power cut
    costing its time without power plus at most DUE_PERSIST_US of schedule (docs/sensor.md)."""
    lost = sum(
        (boot or week["end_us"]) - cut + DUE_PERSIST_US
        for cut, boot in week["devices"][eui]["cuts"]
    )
    return (week["end_us"] - SETTLE_US - STAGGER_US - lost) // INTERVAL_US


def check_every_reading(week):
    for eui, dev in week["report"]["devices"].items():
        name = dev["name"]
        least = least_readings(week, eui)
        print("%s: %d readings taken, at least %d due" % (name, dev["readings_expected"], least))
        assert least <= dev["readings_expected"] <= WEEK_READINGS, (name, dev["readings_expected"])
        assert dev["readings_received"] == dev["readings_expected"], (name, dev["readings_missing"])
        assert dev["readings_missing"] == []


@pytest.mark.slow
def test_clean_week_every_reading_and_every_index_exact(weeks):
    report = weeks["clean"]["report"]
    assert report["simulated_s"] == 7 * 86400 and report["faults"]["count"] == {}
    check_health(report)
    # a reading every 15 min from power-on (< 2 min), minus the last 5 min still on their way
    assert [least_readings(weeks["clean"], eui) for eui in report["devices"]] == [671, 671]
    check_every_reading(weeks["clean"])
    for eui, dev in report["devices"].items():
        assert dev["joins"] == 1 and dev["boots"] == 1 and dev["power_cuts"] == 0, dev["name"]
        assert weeks["clean"]["devices"][eui]["log"] == {"joined": 1, "refused": 0, "dropped": 0}
        for meter in dev["meters"]:
            assert meter["reading_seq"] == dev["readings_expected"]
            assert meter["index_truth"] == meter["index_server"] > 0, (dev["name"], meter)
            if meter["kind"] == "s0":
                assert meter["pulses_unseen"] == meter["pulses_lost"] == 0
                assert meter["kwh_truth"] > 50  # a week of a real load, not a few pulses
        assert dev["meter_index_truth"] == dev["meter_index_server"]


@pytest.mark.slow
def test_bad_week_no_reading_lost_no_replay_every_session_back(weeks):
    week = weeks["bad"]
    report = week["report"]
    assert week["durations"] == {"wifi_outage": 120 * MIN, "server_outage": 60 * MIN}
    boards = list(report["devices"].values()) + list(report["gateways"].values())
    assert sum(board["power_cuts"] for board in boards) >= 1000
    check_health(report)
    # the reading schedule survives the cuts (each delays it by the time without power)
    check_every_reading(week)
    end = week["end_us"] - SETTLE_US
    for eui, dev in report["devices"].items():
        facts = week["devices"][eui]
        cuts = facts["cuts"]
        assert dev["power_cuts"] == len(cuts) >= 450, dev["name"]
        assert dev["boots"] == dev["power_cuts"] + 1
        # a boot re-joins only for a reason the image logs: an uplink cut in flight (its
        # session refused) or a link check that failed (dropped); otherwise the session resumes
        log = facts["log"]
        print("%s: %s" % (dev["name"], log))
        assert 1 <= log["joined"] <= 1 + log["refused"] + log["dropped"], (dev["name"], log)
        # every boot ends up in a working session: each one powered for SESSION_CHECK_US with
        # the link up gets frames to the server (a restored session, or a new join)
        frames = facts["frames_us"]
        checked = 0
        for k, (_cut, boot) in enumerate(cuts):
            nxt = cuts[k + 1][0] if k + 1 < len(cuts) else end
            if boot is None or nxt - boot < SESSION_CHECK_US:
                continue
            if any(a < boot + SESSION_CHECK_US and boot < b for a, b in week["outages"]):
                continue
            checked += 1
            first = bisect.bisect_left(frames, boot)
            assert first < len(frames) and frames[first] < boot + SESSION_CHECK_US, (
                dev["name"],
                "no frame after the boot at %.0f s" % (boot / S),
            )
        print("%s: %d boots checked for a session" % (dev["name"], checked))
        assert checked >= 100, (dev["name"], checked)
        assert frames[-1] > cuts[-1][0] + 2 * S  # frames after the last cut
        for releases, meter in zip(facts["releases"], dev["meters"], strict=True):
            assert meter["reading_seq"] == dev["readings_expected"]
            if meter["kind"] == "tic":  # absolute indexes from the meter: exact
                assert meter["index_truth"] == meter["index_server"] > 0, meter
                continue
            # S0: truth = server + unseen (board off or booting) + lost (counted, not yet in
            # NVS at the cut); lost per cut < PERSIST_PULSES + the pulses of the last loop pass
            unseen, lost = meter["pulses_unseen"], meter["pulses_lost"]
            assert meter["index_truth"] == meter["index_server"] + unseen + lost
            assert unseen > 0
            recent = sum(
                bisect.bisect_right(releases, cut)
                - bisect.bisect_left(releases, cut - LAST_PASS_US)
                for cut, _ in cuts
            )
            bound = len(cuts) * (PERSIST_PULSES - 1) + recent
            print(
                "%s S0 %d: %d pulses lost, bound %d" % (dev["name"], meter["channel"], lost, bound)
            )
            assert 0 <= lost <= bound, (dev["name"], meter["channel"], lost, bound)
