"""`openenergy tic decode` on the sample captures of tests/data/tic, plus the captures' own checks."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import linky
import pytest
from openenergy.cli import main

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "tic"
KEYS = ["label", "value", "timestamp", "checksum_ok", "frame"]


def decode(capsys, *argv):
    code = main(["tic", "decode", *argv])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def by_frame(records):
    frames = {}
    for r in records:
        frames.setdefault(r["frame"], []).append(r)
    return frames


def test_captures_are_what_the_generator_writes():
    sys.path.insert(0, str(DATA))
    try:
        import generate
    finally:
        sys.path.remove(str(DATA))
    for name, data in generate.build().items():
        assert (DATA / name).read_bytes() == data, name


def test_historique_capture(capsys):
    code, records, err = decode(capsys, str(DATA / "historique.bin"))
    assert (code, err) == (0, "")
    assert all(list(r) == KEYS for r in records)
    frames = by_frame(records)
    assert sorted(frames) == [0, 1, 2, 3, 4]  # the leading partial frame is skipped
    assert [len(frames[i]) for i in range(5)] == [10, 10, 10, 3, 10]
    bad = [r for r in records if not r["checksum_ok"]]
    assert bad == [
        {"label": "PAPP", "value": "00460", "timestamp": None, "checksum_ok": False, "frame": 1}
    ]
    assert all(r["timestamp"] is None for r in records)
    assert [r["value"] for r in records if r["label"] == "BASE"] == [
        "001234567",
        "001234567",
        "001234568",
        "001234569",
    ]


def test_historique_capture_has_parity_bits_which_change_nothing(capsys):
    data = (DATA / "historique.bin").read_bytes()
    assert max(data) >= 0x80
    _, with_parity, _ = decode(capsys, str(DATA / "historique.bin"))
    old = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(bytes(b & 0x7F for b in data)))
    try:
        _, without, _ = decode(capsys, "-")
    finally:
        sys.stdin = old
    assert with_parity == without


def test_standard_capture(capsys):
    code, records, err = decode(capsys, str(DATA / "standard.bin"), "--mode", "standard")
    assert (code, err) == (0, "")
    frames = by_frame(records)
    assert [len(frames[i]) for i in range(4)] == [38, 38, 38, 38] and 0 < len(frames[4]) < 38
    bad = [r for r in records if not r["checksum_ok"]]
    assert bad == [
        {
            "label": "CC@SN-1",
            "value": "00400",
            "timestamp": "E240607093000",
            "checksum_ok": False,
            "frame": 1,
        }
    ]
    date = [r for r in frames[0] if r["label"] == "DATE"][0]
    assert date == {
        "label": "DATE",
        "value": "",
        "timestamp": "E240607101510",
        "checksum_ok": True,
        "frame": 0,
    }
    ngtf = [r for r in frames[0] if r["label"] == "NGTF"][0]
    assert ngtf["value"] == "H PLEINE/CREUSE " and ngtf["timestamp"] is None
    assert sum(1 for r in frames[0] if r["timestamp"]) == 6
    _, auto, _ = decode(capsys, str(DATA / "standard.bin"))
    assert auto == records


def test_stats_counters(capsys):
    code, _, err = decode(capsys, str(DATA / "standard.bin"), "--stats")
    assert code == 0 and err.count("\n") == 1
    stats = json.loads(err)
    assert stats == {
        "frames_ok": 2,
        "frames_bad": 2,
        "frames_interrupted": 0,
        "groups_ok": 4 * 38 + 9 - 1,
        "groups_bad_checksum": 1,
        "groups_malformed": 0,
        "overruns": 0,
        "stray_bytes": 1,
        "mode": "standard",
    }
    _, _, err = decode(capsys, str(DATA / "historique.bin"), "--stats")
    stats = json.loads(err)
    assert (stats["frames_ok"], stats["frames_bad"], stats["frames_interrupted"]) == (3, 1, 1)
    assert (stats["groups_bad_checksum"], stats["mode"]) == (1, "historique")


def test_wrong_mode_reports_every_group_malformed(capsys):
    code, records, _ = decode(capsys, str(DATA / "standard.bin"), "--mode", "historique")
    assert code == 0 and records
    assert all(r["label"] is None and r["checksum_ok"] is False for r in records)
    assert records[0]["value"] == "ADSC\t012345678901\t;"


def test_cli_output_is_the_lib_parser(capsys):
    data = (DATA / "standard.bin").read_bytes()
    events = []
    reader = linky.TicReader(on_group=lambda *g: events.append(g + (reader.frame_index,)))
    reader.feed(data)
    _, records, _ = decode(capsys, str(DATA / "standard.bin"))
    assert [tuple(r[k] for k in KEYS) for r in records] == events


def test_uart_reads_fixture_decodes_two_good_frames():
    reads = []
    for line in (DATA / "standard_uart_reads.hex").read_text().splitlines():
        reads.append(None if line == "-" else bytes.fromhex(line))
    assert None in reads and b"" in reads
    joined = b"".join(r for r in reads if r)
    assert any(r and r.count(b"\n") != r.count(b"\r") for r in reads)  # a group split by a read
    frames = []
    reader = linky.TicReader(keep=linky.ENERGY_LABELS, on_frame=frames.append)
    completed = sum(reader.feed(r) for r in reads)
    assert completed == 2 and reader.frames_bad == 0 and reader.groups_bad_checksum == 0
    assert [linky.index_wh(f) for f in frames] == [123461, 123462]
    assert [linky.power_va(f) for f in frames] == [560, 570]
    assert [linky.tariff_period(f) for f in frames] == ["HEURE  PLEINE"] * 2
    assert linky.meter_id(frames[0]) == "012345678901"
    assert linky.tariff_indexes_wh(frames[1])["EASF01"] == 123462 - 23456
    whole = linky.TicReader(keep=linky.ENERGY_LABELS)
    assert whole.feed(joined) == 2 and whole.frame() == frames[1]


@pytest.mark.parametrize(
    "argv, start",
    [
        (["tic", "decode", "/nonexistent/capture.bin"], "openenergy tic: error: FILE: cannot read"),
        (["tic", "decode", str(DATA)], "openenergy tic: error: FILE: cannot read"),
        (
            ["tic", "decode", str(DATA / "standard.bin"), "--mode", "legacy"],
            "openenergy tic: error: --mode: expected historique, standard or auto",
        ),
    ],
)
def test_errors(capsys, argv, start):
    code = main(argv)
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith(start)


def test_installed_entry_point_reads_stdin():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "lib") + os.pathsep + env.get("PYTHONPATH", "")
    script = Path(sys.executable).with_name("openenergy")
    data = (DATA / "historique.bin").read_bytes()
    proc = subprocess.run(
        [str(script), "tic", "decode", "-"], input=data, capture_output=True, env=env
    )
    assert proc.returncode == 0 and proc.stderr == b""
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 43 and json.loads(lines[0])["label"] == "ADCO"
    missing = subprocess.run(
        [str(script), "tic", "decode", "/nonexistent"], capture_output=True, env=env, text=True
    )
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1
