"""Benchmark the lib's LoRaWAN crypto paths on CPython and on MicroPython (wasm, through node).

Prints AES-128 blocks/s, MICs/s (CMAC over B0 + a 33-byte frame), data frames built/s (20-byte
payload: encryption + MIC), frames received/s (decode + MIC check + decryption), and the heap
each lib module keeps after import under MicroPython. Figures only, no asserts; ~20 s.
Rates are per second of CPU time (process_time on CPython, node's cpuUsage under wasm), so a
busy machine does not skew them much.

`measure()` runs unchanged under MicroPython: bench/mpy_bench.mjs imports this file there.
Run: .venv/bin/python bench/bench_lib.py [--quick]
"""

import sys
import time

if sys.implementation.name == "micropython":
    import js  # the webassembly port's bridge to node: CPU time of the node process

    def _cpu_ms():
        usage = js.process.cpuUsage()
        return (usage.user + usage.system) / 1000

else:

    def _cpu_ms():
        return time.process_time() * 1000.0


METRICS = (
    ("aes_blocks", "AES-128 blocks/s (encrypt_into)"),
    ("mic", "MIC/s (CMAC, 33-byte frame)"),
    ("build_session", "data frames built/s, session ciphers"),
    ("build_raw_keys", "data frames built/s, raw keys"),
    ("receive", "frames received/s (decode+MIC+decrypt)"),
    ("join_keys", "session key derivations/s"),
)


def _rate(fn, seconds):
    # Calls per second of fn, measured over at least `seconds`.
    fn()
    budget = seconds * 1000
    calls = 0
    start = _cpu_ms()
    while True:
        for _ in range(8):
            fn()
        calls += 8
        elapsed = _cpu_ms() - start
        if elapsed >= budget:
            return calls * 1000.0 / elapsed


def measure(pure, seconds):
    """Rates of every METRICS entry as a dict; pure=True forces the pure-Python AES."""
    import aes128
    import lorawan
    import otaa

    make = aes128.PureAES if pure else aes128.AES
    nwk_key = bytes(range(16))
    app_key = bytes(range(16, 32))
    nwk = make(nwk_key)
    app = make(app_key)
    block = bytearray(16)
    msg = bytes(33)
    payload = bytes(range(20))
    dev_addr = 0x26011234
    phy = lorawan.build_data(2, dev_addr, 7, nwk, app, 1, payload)

    def aes():
        nwk.encrypt_into(block, block)

    def mic():
        lorawan.compute_mic(nwk, msg, True, dev_addr, 7)

    def build_session():
        lorawan.build_data(2, dev_addr, 7, nwk, app, 1, payload)

    def build_raw():
        if pure:
            lorawan.build_data(2, dev_addr, 7, make(nwk_key), make(app_key), 1, payload)
        else:
            lorawan.build_data(2, dev_addr, 7, nwk_key, app_key, 1, payload)

    def receive():
        frame = lorawan.decode(phy)
        lorawan.verify_mic(frame, nwk)
        lorawan.decrypt_frm_payload(frame, nwk, app)

    def join_keys():
        otaa.derive_session_keys(nwk, 0x123456, 0x13, 42)

    return {
        "backend": "pure" if pure else aes128.BACKEND,
        "aes_blocks": _rate(aes, seconds),
        "mic": _rate(mic, seconds),
        "build_session": _rate(build_session, seconds),
        "build_raw_keys": _rate(build_raw, seconds),
        "receive": _rate(receive, seconds),
        "join_keys": _rate(join_keys, seconds),
    }


def _run_micropython(seconds):
    import json
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if shutil.which("node") is None:
        return None, "node not found"
    proc = subprocess.run(
        ["node", str(root / "bench" / "mpy_bench.mjs"), str(seconds)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("@@BENCH@@")]
    if proc.returncode != 0 or not lines:
        return None, (proc.stderr or proc.stdout)[-500:]
    return json.loads(lines[-1][len("@@BENCH@@") :]), None


def main():
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
    quick = "--quick" in sys.argv
    seconds = 0.2 if quick else 0.6
    started = time.perf_counter()
    host = measure(False, seconds)
    host_pure = measure(True, seconds)
    mpy, problem = _run_micropython(0.5 if quick else 1.5)

    columns = ["CPython (" + host["backend"] + ")", "CPython (pure)", "MicroPython wasm (pure)"]
    print("metric".ljust(42) + "".join(c.rjust(26) for c in columns))
    for key, label in METRICS:
        cells = [host[key], host_pure[key], mpy["speed"][key] if mpy else None]
        print(label.ljust(42) + "".join(_number(v).rjust(26) for v in cells))
    if problem:
        print("\nMicroPython run failed: " + problem)
    if mpy:
        print(
            "\nMicroPython "
            + mpy["version"]
            + " heap kept after import (gc.mem_alloc delta, each reading after a collection run\n"
            + "between runPython calls; sources with docstrings, as-is):"
        )
        print("module".ljust(16) + "own bytes".rjust(12) + "with lib deps".rjust(16) + "  lib deps")
        for row in mpy["heap"]:
            if row.get("error"):
                print(
                    row["module"].ljust(16) + "error".rjust(12) + "".rjust(16) + "  " + row["error"]
                )
                continue
            deps = ", ".join(row["deps"]) or "-"
            print(
                row["module"].ljust(16)
                + _number(row["own"]).rjust(12)
                + _number(row["with_deps"]).rjust(16)
                + "  "
                + deps
            )
    print("\n(total " + format(time.perf_counter() - started, ".1f") + " s)")


def _number(value):
    return "n/a" if value is None else format(value, ",.0f")


if __name__ == "__main__":
    main()
