"""The JSON report of a scenario run, and its plot of consumption per meter.

build(runner) -> dict (docs/scenario.md, "The report"): seed, simulated_s, wall_s; `server`
(the emulator's counters; None with --lns); `devices` keyed by DevEUI (lowercase hex) with the
device-side counts (board and LoRaWAN-mode stats, radio frames) beside the server-side ones
(NetworkServer.report()), the readings (expected: taken by the device more than SETTLE_US before
the end; received: distinct reading numbers the server decoded, from each report's seq and
deltas) and the meter indexes (truth at the instant the device took the reading the server
received last, against what the server decoded for it; S0 meters split the difference into
pulses_unseen, ended while the board was off or booting after a power cut, and pulses_lost, the
rest); `gateways` keyed by gateway EUI; `totals`; `radio`; `faults`. Everything but wall_s is
a function of the scenario and seed.

plot(runner, path) draws, per meter, the true load (W) and the mean power of each reading
interval as the server decoded it, over the run (matplotlib, Agg backend).
"""

import bisect
import json
import os

from .runner import SETTLE_US

S_US = 1_000_000
_SERVER_KEYS = (
    "uplinks",
    "joins",
    "join_requests",
    "mic_failures",
    "fcnt_replays",
    "fcnt_gap",
    "retransmissions",
    "duplicates",
    "downlinks_sent",
    "downlinks_failed",
    "tx_ack",
    "tx_ack_timeouts",
    "rejected_datagrams",
    "payload_errors",
    "dropped_offline",
    "unknown_devices",
)
_FAULT_LIST_MAX = 100


def _unwrap(seq16, high):
    """The full reading number for a 16-bit seq, closest to high (the highest seen so far)."""
    base = high - (high & 0xFFFF)
    best = None
    for candidate in (base - 0x10000 + seq16, base + seq16, base + 0x10000 + seq16):
        if candidate < 0:
            continue
        if best is None or abs(candidate - high) < abs(best - high):
            best = candidate
    return best


def server_readings(record, meters):
    """From a device's server record: ({seq: time_us of the first frame carrying it},
    [{seq: server value} per meter], [(time_us, seq) of each report])."""
    seen = {}
    values = [{} for _ in meters]
    reports = []
    high = 0
    for entry in record.get("payloads", ()):
        decoded = entry.get("decoded")
        if entry.get("fport") != 1 or not decoded or decoded.get("kind") != "report":
            continue
        seq = _unwrap(decoded["seq"], high)
        high = max(high, seq)
        t = entry["time_us"]
        reports.append((t, seq))
        seen.setdefault(seq, t)
        for channel in decoded.get("channels") or ():
            for reading in channel["readings"]:
                s = seq - (decoded["seq"] - reading["seq"]) % 0x10000
                seen.setdefault(s, t)
        for m, meter in enumerate(meters):
            found = meter.server_value(decoded)
            if found is None:
                continue
            if meter.kind == "tic":
                values[m].setdefault(seq, meter.index_of(found))
            else:
                for reading in found["readings"]:
                    s = seq - (decoded["seq"] - reading["seq"]) % 0x10000
                    values[m].setdefault(s, meter.index_of(reading))
    return seen, values, reports


def pulses_unseen(meter, cuts, until_us):
    """Pulses of an S0 meter that ended (the instant the sensor counts one) by until_us while
    its board had no power or was booting after a power cut: cuts is [[cut µs, boot µs or
    None]] (Runner.power_cuts)."""
    releases = meter.releases
    unseen = 0
    for cut, boot in cuts:
        if cut > until_us:
            break
        end = until_us if boot is None or boot > until_us else boot
        unseen += bisect.bisect_right(releases, end) - bisect.bisect_left(releases, cut)
    return unseen


def _device(runner, plan, server_record, end_us):
    board = plan.board
    stats = board.stats
    lorawan = any(key.startswith("lorawan_") for key in stats)
    medium = runner.medium
    entry = {"name": plan.name, "image": plan.image.name}
    if lorawan:
        entry["joined"] = stats["lorawan_joins"] > 0
        entry["join_attempts"] = stats["lorawan_join_requests"]
        entry["uplinks_sent"] = stats["lorawan_uplinks"]
        entry["transmissions"] = stats["lorawan_transmissions"]
    else:
        entry["joined"] = bool(server_record and server_record["joined"])
        entry["join_attempts"] = server_record["join_requests"] if server_record else None
        entry["uplinks_sent"] = medium.sent.get(plan.name, 0)
        entry["transmissions"] = medium.sent.get(plan.name, 0)
    if server_record is not None:
        entry["joins"] = server_record["joins"]
        entry["uplinks_received"] = server_record["uplinks_received"]
        entry["fcnt_replays"] = server_record["fcnt_replays"]
        entry["mic_failures"] = server_record["mic_failures"]
        entry["downlinks_sent"] = server_record["downlinks_sent"]
        entry["dev_addr"] = server_record["dev_addr"]
    else:
        for key in ("joins", "uplinks_received", "fcnt_replays", "mic_failures"):
            entry[key] = None
        entry["downlinks_sent"] = None
        entry["dev_addr"] = None
    sent = entry["uplinks_sent"]
    got = entry["uplinks_received"]
    entry["pdr"] = round(got / sent, 4) if sent and got is not None else None

    times = runner.reading_times.get(plan.name, {})
    meters = plan.meters
    if server_record is not None:
        seen, values, _ = server_readings(server_record, meters)
    else:
        seen, values = {}, [{} for _ in meters]
    expected = [seq for seq, t in times.items() if t <= end_us - SETTLE_US]
    last = max(expected) if expected else None
    if times or plan.uses_devconfig:  # the sensor image numbers its readings in NVS
        entry["readings_expected"] = last or 0
        received = [s for s in seen if 1 <= s <= (last or 0)]
        entry["readings_received"] = len(received) if server_record is not None else None
        missing = sorted(set(range(1, (last or 0) + 1)) - set(received))
        entry["readings_missing"] = missing[:20] if server_record is not None else None
    else:
        entry["readings_expected"] = None
        entry["readings_received"] = len(seen) if server_record is not None else None
        entry["readings_missing"] = None
    meter_entries = []
    for meter, vals in zip(meters, values, strict=True):
        info = meter.describe()
        usable = [s for s in vals if last is None or s <= last]
        seq = max(usable) if usable else None
        server_value = vals[seq] if seq is not None else None
        when = times.get(seq) if seq is not None else (times.get(last) if last else None)
        truth = meter.truth_at(when) if when is not None else meter.truth()
        info["reading_seq"] = seq
        info["index_truth"] = truth
        info["index_server"] = server_value
        info["kwh_truth"] = round(meter.kwh(truth), 3) if truth is not None else None
        info["kwh_server"] = round(meter.kwh(server_value), 3) if server_value is not None else None
        if meter.kind == "s0":
            cuts = getattr(runner, "power_cuts", {}).get(plan.name, ())
            unseen = pulses_unseen(meter, cuts, when if when is not None else end_us)
            info["pulses_unseen"] = unseen
            info["pulses_lost"] = (
                truth - unseen - server_value
                if truth is not None and server_value is not None
                else None
            )
        meter_entries.append(info)
    first = meter_entries[0] if meter_entries else {}
    entry["meter_index_truth"] = first.get("index_truth")
    entry["meter_index_server"] = first.get("index_server")
    entry["meter_unit"] = first.get("unit")
    entry["meters"] = meter_entries
    entry.update(_board_health(board))
    return entry


def _board_health(board):
    crash = board.crashes[0][2] if board.crashes else None
    return {
        "boots": board.stats["boots"],
        "power_cuts": board.stats["power_cuts"],
        "crashes": len(board.crashes),
        "first_crash": crash,
    }


def _gateway(runner, plan, server_record):
    entry = {
        "name": plan.name,
        "image": plan.image.name,
        "rx_frames": runner.medium.received.get(plan.name, 0),
        "forwarded": server_record["rxpk"] if server_record else (0 if runner.server else None),
        "tx_frames": runner.medium.sent.get(plan.name, 0),
        "tx_ack": dict(sorted(server_record["tx_ack"].items())) if server_record else {},
        "push_data": server_record["push_data"] if server_record else None,
        "pull_data": server_record["pull_data"] if server_record else None,
    }
    entry.update(_board_health(plan.board))
    return entry


def _faults(scenario):
    counts = {}
    for fault in scenario.faults:
        counts[fault.kind] = counts.get(fault.kind, 0) + 1
    listed = []
    for fault in scenario.faults[:_FAULT_LIST_MAX]:
        item = {
            "kind": fault.kind,
            "target": fault.target,
            "at_s": fault.at_us / S_US,
            "duration_s": fault.duration_us / S_US,
        }
        if fault.kind == "radio_loss":
            item["probability"] = fault.probability
        if fault.kind == "clock_drift":
            item["ppm"] = fault.ppm
        listed.append(item)
    return {"count": counts, "list": listed, "listed_all": len(scenario.faults) <= _FAULT_LIST_MAX}


def build(runner):
    """The report dict of a finished run (see the module docstring)."""
    sc = runner.scenario
    world = runner.world
    end_us = world.scheduler.now_us()
    server_report = runner.server.report() if runner.server is not None else None
    report = {
        "scenario": os.path.basename(sc.source) if sc.source else None,
        "seed": sc.seed,
        "start_time": sc.start_time,
        "simulated_s": end_us / S_US,
        "wall_s": round(runner.wall_s, 3) if runner.wall_s is not None else None,
        "events": runner.events_run,
        "lns": None if runner.server is not None else "udp://%s:%d" % runner.lns_address,
    }
    if server_report is not None:
        stats = server_report["server"]
        server = {key: stats[key] for key in _SERVER_KEYS if key in stats}
        server["tx_ack"] = dict(sorted(stats["tx_ack"].items()))
        report["server"] = server
    else:
        report["server"] = None
    devices = {}
    totals = {
        "devices": 0,
        "joined": 0,
        "uplinks_sent": 0,
        "uplinks_received": 0,
        "readings_expected": 0,
        "readings_received": 0,
    }
    for plan in runner.board_plans("device"):
        key = plan.identity[0].hex()
        record = server_report["devices"].get(key) if server_report is not None else None
        entry = _device(runner, plan, record, end_us)
        devices[key] = entry
        totals["devices"] += 1
        totals["joined"] += 1 if entry["joined"] else 0
        totals["uplinks_sent"] += entry["uplinks_sent"] or 0
        totals["uplinks_received"] += entry["uplinks_received"] or 0
        totals["readings_expected"] += entry["readings_expected"] or 0
        totals["readings_received"] += entry["readings_received"] or 0
    report["devices"] = devices
    gateways = {}
    for plan in runner.board_plans("gateway"):
        key = plan.eui.hex()
        record = server_report["gateways"].get(key) if server_report is not None else None
        gateways[key] = _gateway(runner, plan, record)
    report["gateways"] = gateways
    sent = totals["uplinks_sent"]
    totals["pdr"] = (
        round(totals["uplinks_received"] / sent, 4) if sent and server_report is not None else None
    )
    expected = totals["readings_expected"]
    totals["readings_ratio"] = (
        round(totals["readings_received"] / expected, 4)
        if expected and server_report is not None
        else None
    )
    report["totals"] = totals
    report["radio"] = {
        "frames": runner.medium.frames,
        "outcomes": dict(sorted(runner.medium.counts.items())),
    }
    report["faults"] = _faults(sc)
    return report


def without_wall(report):
    """A copy of a report without its wall-clock field (to compare two runs)."""
    copy = dict(report)
    copy.pop("wall_s", None)
    return copy


def write_json(report, path):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")


# -- the plot --------------------------------------------------------------------------------
def plot_series(runner):
    """Per meter: (title, unit, [(hours, watts)] truth steps, [(hours, watts)] server steps)."""
    series = []
    end_us = runner.world.scheduler.now_us()
    server_report = runner.server.report() if runner.server is not None else None
    for plan in runner.board_plans("device"):
        record = None
        if server_report is not None:
            record = server_report["devices"].get(plan.identity[0].hex())
        if record is not None:
            _, values, reports = server_readings(record, plan.meters)
        else:
            values, reports = [{} for _ in plan.meters], []
        first_seen = {}
        for t, seq in reports:
            first_seen.setdefault(seq, t)
        times = runner.reading_times.get(plan.name, {})
        for meter, vals in zip(plan.meters, values, strict=True):
            profile = meter.profile
            truth = [(0.0, 0.0)]
            t = min(meter.start_us, end_us)
            while t < end_us:
                truth.append((t / 3.6e9, profile.power_w(t)))
                t = profile.segment_end(t)
            truth.append((end_us / 3.6e9, truth[-1][1]))
            server = []
            seqs = sorted(vals)
            for a, b in zip(seqs, seqs[1:], strict=False):
                if b != a + 1:
                    continue
                ta = times.get(a, first_seen.get(a))
                tb = times.get(b, first_seen.get(b))
                if ta is None or tb is None or tb <= ta:
                    continue
                wh = meter.kwh(vals[b] - vals[a]) * 1000.0
                server.append((ta / 3.6e9, tb / 3.6e9, wh * 3.6e9 / (tb - ta)))
            title = "%s: %s meter (%s)" % (plan.name, meter.kind.upper(), meter.profile.name)
            series.append((title, truth, server))
    return series


def plot(runner, path):
    """Write a PNG of consumption per meter over the run: truth vs server-decoded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = plot_series(runner)
    rows = max(1, len(series))
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.4 * rows + 0.6), sharex=True, squeeze=False)
    for ax, (title, truth, server) in zip(axes[:, 0], series, strict=False):
        if truth:
            xs = [p[0] for p in truth]
            ys = [p[1] for p in truth]
            ax.step(xs, ys, where="post", color="0.6", linewidth=1.0, label="meter load (truth)")
        for i, (t0, t1, watts) in enumerate(server):
            ax.plot(
                [t0, t1],
                [watts, watts],
                color="tab:blue",
                linewidth=2.0,
                label="server-decoded (mean per reading)" if i == 0 else None,
            )
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_ylabel("W")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=7)
    if not series:
        axes[0, 0].text(0.5, 0.5, "no meters in this scenario", ha="center", va="center")
    axes[-1, 0].set_xlabel("hours since %s" % runner.scenario.start_time)
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
