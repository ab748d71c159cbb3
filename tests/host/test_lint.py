"""The code style is enforced: ruff's lint rules and its formatter, on every Python file."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ["lib", "firmware", "tools", "bench", "tests"]


def _ruff(*args):
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *FOLDERS],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_ruff_lint_passes():
    proc = _ruff("check", "--no-cache")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_ruff_format_leaves_every_file_unchanged():
    proc = _ruff("format", "--check", "--no-cache")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
