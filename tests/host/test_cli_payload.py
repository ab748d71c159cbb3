"""`openenergy payload decode|encode`: exact round trip, output shape, exit status 2 on bad input."""

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openenergy import cli

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "lib"), str(ROOT / "tools")]))
# Only the payload command is loaded, so these tests do not depend on the other sub-commands.
RUNNER = "import sys; from openenergy import cli; cli.COMMAND_MODULES = ('payload',); sys.exit(cli.main(sys.argv[1:]))"

REPORT = "11010004d2038410040001e240000a00050000000f2205f0020045b3520012d687"
ALARM = "120281000404d800011166"
STATUS = "1301010200000004d2038404250e4201010009c400300000"
COMMANDS = "1a01025803000001e24007"


def run(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-c", RUNNER, "payload", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=ENV,
        cwd=ROOT,
        timeout=60,
    )


def assert_usage_error(proc, field=None):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("openenergy payload: error: ")
    if field:
        assert lines[0].startswith("openenergy payload: error: " + field + ":"), lines[0]


def test_decode_prints_one_json_object_on_one_line():
    proc = run("decode", REPORT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1
    frame = json.loads(proc.stdout)
    assert frame["kind"] == "report" and frame["seq"] == 1234 and frame["status"] == ["backlog"]
    assert [r["index"] for r in frame["channels"][0]["readings"]] == [
        123456,
        123446,
        123441,
        123441,
        123426,
    ]
    assert frame["tic"] == {"papp_va": 1520, "tariff": 2, "index_wh": [4567890, 1234567]}


@pytest.mark.parametrize("hexframe", [REPORT, ALARM, STATUS, COMMANDS, "11000000010001"])
def test_exact_round_trip(hexframe):
    decoded = run("decode", hexframe)
    assert decoded.returncode == 0, decoded.stderr
    encoded = run("encode", decoded.stdout.strip())
    assert encoded.returncode == 0, encoded.stderr
    assert encoded.stdout == hexframe + "\n"


def test_round_trip_through_a_shell_substitution():
    if shutil.which("sh") is None:
        pytest.skip("no sh")
    script = 'oe() { "$PY" -c "$RUNNER" "$@"; }; oe payload encode "$(oe payload decode "$HEX")"'
    env = dict(ENV, PY=sys.executable, RUNNER=RUNNER, HEX=ALARM)
    proc = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )
    assert proc.stdout == ALARM + "\n", proc.stderr


def test_decode_accepts_spaces_uppercase_and_0x():
    spaced = "0x" + " ".join(ALARM[i : i + 2] for i in range(0, len(ALARM), 2)).upper()
    proc = run("decode", spaced)
    assert proc.returncode == 0, proc.stderr
    assert run("encode", proc.stdout).stdout == ALARM + "\n"


def test_fport_option():
    assert json.loads(run("decode", ALARM, "--fport", "2").stdout)["kind"] == "alarm"
    assert_usage_error(run("decode", ALARM, "--fport", "1"), "fport")


def test_with_fport_and_base64():
    frame = json.loads(run("decode", COMMANDS).stdout)
    proc = run("encode", json.dumps(frame), "--with-fport")
    assert proc.stdout == "10 " + COMMANDS + "\n"
    b64 = base64.b64encode(bytes.fromhex(COMMANDS)).decode()
    assert run("encode", json.dumps(frame), "--base64").stdout == b64 + "\n"
    assert json.loads(run("decode", "--base64", b64).stdout) == frame
    assert_usage_error(run("decode", "--base64", "***"), "HEX")


def test_encode_reads_stdin():
    proc = run(
        "encode", "-", stdin=json.dumps({"kind": "command", "commands": [{"cmd": "rejoin"}]})
    )
    assert proc.stdout == "1a08\n"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("decode", "zz"), "HEX"),
        (("decode", "123"), "HEX"),
        (("decode", ""), "HEX"),
        (("decode", "21"), "version"),
        (("decode", "1100"), "header"),
        (("decode", "11000000010384ff"), "block"),
        (("decode", ALARM + "00"), "alarm"),
        (("decode", "1a"), "commands"),
        (("encode", "{"), "JSON"),
        (("encode", "[]"), "frame"),
        (("encode", '{"kind": "report"}'), "seq"),
        (("encode", '{"kind": "report", "seq": 1, "interval_s": 0}'), "interval_s"),
        (("encode", '{"kind": "command", "commands": [{"cmd": "launch"}]}'), "commands[0].cmd"),
    ],
)
def test_errors_exit_2_with_one_line(args, field):
    assert_usage_error(run(*args), field)


def test_missing_arguments_exit_2():
    assert run("decode").returncode == 2
    assert run("frobnicate").returncode == 2


def test_real_entry_point_registers_payload():
    exe = Path(sys.executable).with_name("openenergy")
    if not exe.exists():
        pytest.skip("openenergy entry point not installed")
    proc = subprocess.run(
        [str(exe), "payload", "decode", ALARM], capture_output=True, text=True, env=ENV, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["alarm"] == "leak"


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 0xFFFF),
    st.integers(1, 0xFFFF),
    st.lists(st.integers(0, 0xFFFF), max_size=8),
    st.integers(0, 0xFFFFFFFF),
)
def test_in_process_round_trip_of_random_reports(seq, interval_s, deltas, newest):
    import meterpayload

    indexes = [newest]
    for d in deltas:
        indexes.append((indexes[-1] - d) & 0xFFFFFFFF)
    hexframe = meterpayload.encode_report(seq, interval_s, [(0, indexes)]).hex()
    saved = cli.COMMAND_MODULES
    cli.COMMAND_MODULES = ("payload",)
    try:
        out = []
        real_stdout = sys.stdout

        class Collect:
            def write(self, text):
                out.append(text)

            def flush(self):
                pass

        sys.stdout = Collect()
        try:
            assert cli.main(["payload", "decode", hexframe]) == 0
            decoded = "".join(out)
            out.clear()
            assert cli.main(["payload", "encode", decoded]) == 0
        finally:
            sys.stdout = real_stdout
    finally:
        cli.COMMAND_MODULES = saved
    assert "".join(out) == hexframe + "\n"
