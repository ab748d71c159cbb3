"""Nano gateway in the simulator: forward latency per frame and downlink timing error.

Runs examples/building.toml (one nano gateway, four sensor images) for a simulated day with a
trace, then measures from the trace:
- forward latency: from the end of a frame on the air (radio_frame.end_us, the instant the
  gateway's radio has it) to the PUSH_DATA datagram carrying it (udp, gateway -> server);
- downlink timing error, two ways: as the image logs it ("timing error N us": its µs clock
  against tmst after the spin) and as the radio medium saw it (the frame's start on the air
  against tmst on the gateway's clock, whose origin is the gateway's boot).

Run: .venv/bin/python bench/bench_gateway.py [--quick]   (--quick: 6 simulated hours)
"""

import base64
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENARIO = ROOT / "examples" / "building.toml"
GATEWAY = "gateway"
_WRAP_US = 1 << 32
_LOGGED = re.compile(r"downlink 0x[0-9a-f]+ sent at tmst (\d+): timing error (-?\d+) us")


def run_trace(until, trace_path):
    cmd = [
        str(Path(sys.executable).with_name("openenergy")),
        "sim",
        "run",
        str(SCENARIO),
        "--until",
        until,
        "--trace",
        str(trace_path),
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return "openenergy sim run %s --until %s --trace TRACE" % (SCENARIO.relative_to(ROOT), until)


def _push_data_payloads(hex_data):
    """The rxpk `data` (bytes) of a PUSH_DATA datagram, or [] for any other datagram."""
    raw = bytes.fromhex(hex_data)
    if len(raw) < 12 or raw[3] != 0x00:
        return []
    body = json.loads(raw[12:])
    return [base64.b64decode(p["data"]) for p in body.get("rxpk", [])]


def measure(trace_path):
    boot_us = None
    heard = {}  # frame bytes -> end of the frame on the air (frames the gateway received)
    latencies = []
    logged = []
    on_air = {}  # gateway frame start on the air (its own TX)
    tmsts = []
    for line in open(trace_path):
        r = json.loads(line)
        kind = r["kind"]
        if kind == "boot" and r.get("board") == GATEWAY and boot_us is None:
            boot_us = r["t"]
        elif kind == "radio_frame":
            if r["sender"] == GATEWAY:
                on_air[r["start_us"]] = r
            elif any(x["radio"] == GATEWAY and x["outcome"] == "received" for x in r["receivers"]):
                heard[bytes.fromhex(r["data"])] = r["end_us"]
        elif kind == "udp" and r.get("sender") == GATEWAY:
            for data in _push_data_payloads(r["data"]):
                end = heard.pop(data, None)
                if end is not None:
                    latencies.append(r["t"] - end)
        elif kind == "console" and r.get("board") == GATEWAY:
            m = _LOGGED.search(r["line"])
            if m:
                tmsts.append((int(m.group(1)), r["t"]))
                logged.append(int(m.group(2)))
    starts = sorted(on_air)
    measured = []
    for tmst, logged_at in tmsts:
        # tmst is the gateway's 32-bit µs clock (wraps every 71.6 min), started at its boot
        want = boot_us + tmst
        want += ((logged_at - want) // _WRAP_US) * _WRAP_US
        if logged_at - want > _WRAP_US // 2:
            want += _WRAP_US
        nearest = min(starts, key=lambda s: abs(s - want)) if starts else None
        if nearest is not None and abs(nearest - want) < 100000:
            measured.append(nearest - want)
    return {
        "latency_us": latencies,
        "logged_error_us": logged,
        "air_error_us": measured,
        "unmatched_frames": len(heard),
    }


def _summary(values, unit_div, unit):
    if not values:
        return "none"
    q = statistics.quantiles(values, n=20) if len(values) >= 2 else [values[0]] * 19
    return "n %d, min %.1f, median %.1f, p95 %.1f, max %.1f %s" % (
        len(values),
        min(values) / unit_div,
        statistics.median(values) / unit_div,
        q[18] / unit_div,
        max(values) / unit_div,
        unit,
    )


def _histogram(values):
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return ", ".join("%+d us: %d" % (k, counts[k]) for k in sorted(counts))


def main():
    quick = "--quick" in sys.argv
    until = "6h" if quick else "1d"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.jsonl"
        cmd = run_trace(until, trace)
        m = measure(trace)
    print("Nano gateway in the simulator (%s, real images, %s simulated)" % (SCENARIO.name, until))
    print("  forward latency (frame end on the air -> PUSH_DATA sent):")
    print("    " + _summary(m["latency_us"], 1000.0, "ms"))
    print("  downlink timing error, as the image logs it: " + _histogram(m["logged_error_us"]))
    print("  downlink timing error, on the air vs tmst:   " + _histogram(m["air_error_us"]))
    print("  received frames never forwarded: %d" % m["unmatched_frames"])
    print("    reproduce: .venv/bin/%s (then bench/bench_gateway.py's measure())" % cmd)
    print("  (%.1f s)" % (time.perf_counter() - started))


if __name__ == "__main__":
    main()
