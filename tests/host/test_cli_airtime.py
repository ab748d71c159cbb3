"""`openenergy airtime`: exact output with 3 decimals, one-line errors naming the option, exit 2."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from openenergy.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv):
    code = main(["airtime", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--sf", "7", "--bw", "125", "--size", "13"], "46.336"),
        (["--sf", "12", "--bw", "125", "--size", "13"], "1155.072"),
        (["--sf", "12", "--bw", "125", "--size", "51"], "2465.792"),
        (["--sf", "7", "--bw", "125", "--size", "51"], "102.656"),
        (["--sf", "12", "--bw", "125", "--size", "17"], "1318.912"),
        (["--sf", "7", "--bw", "250", "--size", "13"], "23.168"),
        (["--sf", "12", "--bw", "125", "--size", "51", "--cr", "4/8"], "3547.136"),
        (["--sf", "7", "--bw", "125", "--size", "13", "--preamble", "10"], "48.384"),
        (["--sf", "7", "--bw", "125", "--size", "13", "--no-crc"], "41.216"),
        (["--sf", "6", "--bw", "500", "--size", "0", "--implicit-header", "--no-crc"], "2.592"),
        (["--sf", "9", "--bw", "500", "--size", "255", "--cr", "4/6"], "370.944"),
    ],
)
def test_output(capsys, argv, expected):
    code, out, err = run(capsys, *argv)
    assert (code, out, err) == (0, expected + "\n", "")


def test_output_matches_lib(capsys):
    import airtime

    for sf in (7, 9, 12):
        for size in (0, 1, 100, 255):
            code, out, _ = run(capsys, "--sf", str(sf), "--bw", "125", "--size", str(size))
            us = airtime.time_on_air_us(sf, 125000, size)
            assert code == 0
            assert out == f"{us // 1000}.{us % 1000:03d}\n"
            assert abs(float(out) - us / 1000) < 1e-9


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--sf", "13", "--bw", "125", "--size", "13"], "--sf"),
        (["--sf", "5", "--bw", "125", "--size", "13"], "--sf"),
        (["--sf", "seven", "--bw", "125", "--size", "13"], "--sf"),
        (["--sf", "7.0", "--bw", "125", "--size", "13"], "--sf"),
        (["--bw", "125", "--size", "13"], "--sf"),
        (["--sf", "7", "--bw", "200", "--size", "13"], "--bw"),
        (["--sf", "7", "--bw", "125000", "--size", "13"], "--bw"),
        (["--sf", "7", "--size", "13"], "--bw"),
        (["--sf", "7", "--bw", "125", "--size", "256"], "--size"),
        (["--sf", "7", "--bw", "125", "--size", "-1"], "--size"),
        (["--sf", "7", "--bw", "125"], "--size"),
        (["--sf", "7", "--bw", "125", "--size", "13", "--cr", "4/9"], "--cr"),
        (["--sf", "7", "--bw", "125", "--size", "13", "--cr", "5"], "--cr"),
        (["--sf", "7", "--bw", "125", "--size", "13", "--preamble", "5"], "--preamble"),
        (["--sf", "7", "--bw", "125", "--size", "13", "--preamble", "x"], "--preamble"),
    ],
)
def test_errors(capsys, argv, option):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("openenergy airtime: error: " + option + ":")


def test_installed_entry_point():
    env = dict(os.environ)
    # lib/ on the path: the editable install lists lib modules only as of its last (re)install.
    env["PYTHONPATH"] = str(ROOT / "lib") + os.pathsep + env.get("PYTHONPATH", "")
    script = Path(sys.executable).with_name("openenergy")
    ok = subprocess.run(
        [str(script), "airtime", "--sf", "7", "--bw", "125", "--size", "13"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "46.336\n", "")
    bad = subprocess.run(
        [str(script), "airtime", "--sf", "7", "--bw", "124", "--size", "13"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("openenergy airtime: error: --bw:") and bad.stderr.count("\n") == 1
