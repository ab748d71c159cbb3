"""Every portable lib test module (tests/lib/test_*.py) also passes under real MicroPython (wasm)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tests" / "mpy" / "run_lib_tests.mjs"
LIB_TESTS = sorted((ROOT / "tests" / "lib").glob("test_*.py"))


def run_on_micropython(test_file):
    proc = subprocess.run(
        ["node", str(RUNNER), str(test_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    marker = [line for line in proc.stdout.splitlines() if line.startswith("@@RESULT@@")]
    assert marker, "no result from MicroPython:\n%s\n%s" % (
        proc.stdout[-3000:],
        proc.stderr[-3000:],
    )
    return json.loads(marker[-1][len("@@RESULT@@") :]), proc.stdout


@pytest.mark.skipif(shutil.which("node") is None, reason="node is required (make test installs it)")
@pytest.mark.parametrize("test_file", LIB_TESTS, ids=lambda p: p.stem)
def test_lib_module_passes_on_micropython(test_file):
    result, output = run_on_micropython(test_file)
    assert not result["failed"], "failed under MicroPython: %s\n%s" % (
        result["failed"],
        output[-4000:],
    )
    assert result["passed"], "no test ran under MicroPython"
