"""`openenergy provision`: identities, credentials files, TR005 QR codes, CSV batches, no key leaks."""

import json
import os
import re
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import devconfig
import pytest
from openenergy import cli, provisioning, qr

ROOT = Path(__file__).resolve().parents[2]
TR005 = re.compile(r"^LW:D0:[0-9A-F]{16}:[0-9A-F]{16}:[0-9A-F]{8}$")
KEY = "2B7E151628AED2A6ABF7158809CF4F3C"
OTHER_KEY = "000102030405060708090A0B0C0D0E0F"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys, *argv):
    code = cli.main(["provision", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def key_forms(key_hex):
    key = bytes.fromhex(key_hex)
    return {key_hex.upper(), key_hex.lower(), repr(key)[2:-1], key.hex()[:16], key.hex()[16:]}


def assert_no_key(text, *keys):
    for key in keys:
        for form in key_forms(key):
            assert form.lower() not in text.lower(), f"a key leaked: {form}"


def load(path):
    with open(path, "rb") as f:
        return tomllib.load(f)


def decode_png(path):
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    return [r.text for r in zxingcpp.read_barcodes(Image.open(path))]


# ---------------------------------------------------------------- one board


def test_generated_identity_file_mode_and_qr(workdir, capsys):
    code, out, err = run(capsys, "--name", "chaufferie", "--qr", "chaufferie.png")
    assert code == 0, err
    path = workdir / "credentials" / "chaufferie.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    data = load(path)
    assert set(data) == {"name", "dev_eui", "join_eui", "app_key", "profile_id", "qr"}
    dev_eui = bytes.fromhex(data["dev_eui"])
    assert dev_eui[0] & 0x03 == 0x02  # locally administered, unicast
    assert data["join_eui"] == "0000000000000000" and data["profile_id"] == "00000000"
    expected = f"LW:D0:0000000000000000:{data['dev_eui']}:00000000"
    assert TR005.match(expected) and data["qr"] == expected
    assert f"QR       {expected}" in out
    assert decode_png(workdir / "chaufferie.png") == [expected]
    assert_no_key(out + err, data["app_key"])
    assert not list(path.parent.glob(".*.tmp"))


def test_terminal_qr_scans(workdir, capsys):
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    code, out, _ = run(capsys, "--name", "a", "--dev-eui", "70B3D57ED0000001")
    assert code == 0
    rows = [line for line in out.splitlines() if line and set(line) <= set(" \u2580\u2584\u2588")]
    # Each character is two modules: top and bottom half; block = light module.
    halves = {" ": (0, 0), "\u2580": (255, 0), "\u2584": (0, 255), "\u2588": (255, 255)}
    width = len(rows[0])
    image = Image.new("L", (width, 2 * len(rows)))
    for y, line in enumerate(rows):
        for x, ch in enumerate(line):
            top, bottom = halves[ch]
            image.putpixel((x, 2 * y), top)
            image.putpixel((x, 2 * y + 1), bottom)
    image = image.resize((width * 8, len(rows) * 16), Image.NEAREST)
    texts = [r.text for r in zxingcpp.read_barcodes(image)]
    assert texts == ["LW:D0:0000000000000000:70B3D57ED0000001:00000000"]


def test_given_identity_is_normalised_and_kept(workdir, capsys):
    code, out, err = run(
        capsys,
        "--name", "compteur-eau",
        "--dev-eui", "70-b3-d5-7e-d0-00-00-02",
        "--join-eui", "70B3D57ED0000000",
        "--app-key", KEY.lower(),
        "--profile-id", "FFFF0001",
        "--no-terminal-qr",
    )  # fmt: skip
    assert code == 0, err
    data = load(workdir / "credentials" / "compteur-eau.toml")
    assert data["dev_eui"] == "70B3D57ED0000002" and data["app_key"] == KEY
    assert data["qr"] == "LW:D0:70B3D57ED0000000:70B3D57ED0000002:FFFF0001"
    assert qr.parse_tr005(data["qr"])["profile_id"] == bytes.fromhex("FFFF0001")
    assert "(given)" in out and "AppKey   given" in out
    assert_no_key(out + err, KEY)


def test_rerun_keeps_keys_and_refuses_other_keys_without_force(workdir, capsys):
    assert run(capsys, "--name", "b", "--dev-eui", "70B3D57ED0000003", "--no-terminal-qr")[0] == 0
    path = workdir / "credentials" / "b.toml"
    first = load(path)
    code, out, _ = run(capsys, "--name", "b", "--no-terminal-qr")
    assert code == 0 and "already in" in out and load(path) == first
    code, out, err = run(capsys, "--name", "b", "--app-key", OTHER_KEY, "--no-terminal-qr")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "app_key differs" in err and "--force" in err
    assert "Traceback" not in err
    assert_no_key(err, OTHER_KEY, first["app_key"])
    assert load(path) == first
    code, out, err = run(
        capsys, "--name", "b", "--app-key", OTHER_KEY, "--force", "--no-terminal-qr"
    )
    assert code == 0 and "replaced" in out
    assert load(path)["app_key"] == OTHER_KEY and load(path)["dev_eui"] == first["dev_eui"]
    assert_no_key(out + err, OTHER_KEY, first["app_key"])


def test_name_defaults_to_the_dev_eui_and_reruns_cleanly(workdir, capsys):
    for _ in range(2):
        code, out, err = run(capsys, "--dev-eui", "70B3D57ED0000004", "--no-terminal-qr")
        assert code == 0, err
    assert (workdir / "credentials" / "70b3d57ed0000004.toml").exists()


def test_same_dev_eui_under_another_name_is_refused(workdir, capsys):
    assert run(capsys, "--name", "c", "--dev-eui", "70B3D57ED0000005", "--no-terminal-qr")[0] == 0
    code, _, err = run(capsys, "--name", "d", "--dev-eui", "70B3D57ED0000005", "--no-terminal-qr")
    assert (
        code == 2
        and "already provisioned as c" in err
        and err.startswith("openenergy provision: error: dev_eui:")
    )


@pytest.mark.parametrize(
    "args, field",
    [
        (["--dev-eui", "70B3D57ED000001"], "dev_eui"),
        (["--dev-eui", "70B3D57ED00000ZZ"], "dev_eui"),
        (["--dev-eui", "0000000000000000"], "dev_eui"),
        (["--join-eui", "12"], "join_eui"),
        (["--app-key", KEY[:-1] + "G"], "app_key"),
        (["--app-key", KEY + "00"], "app_key"),
        (["--app-key", "0" * 32], "app_key"),
        (["--profile-id", "1234"], "profile_id"),
        (["--name", "bad/name"], "name"),
        (["--name", "x" * 65], "name"),
        (["--port", "/dev/ttyUSB0"], "--port"),
        (["--csv", "boards.csv", "--dev-eui", "70B3D57ED0000001"], "--dev-eui"),
        (["--config", "missing.toml"], "config"),
    ],
)
def test_errors_name_the_field_on_one_line(workdir, capsys, args, field):
    code, out, err = run(capsys, *args, "--no-terminal-qr")
    assert code == 2 and out == ""
    assert err.startswith(f"openenergy provision: error: {field}:"), err
    assert err.count("\n") == 1
    assert_no_key(err, KEY)
    assert KEY[:-1] + "G" not in err
    assert not (workdir / "credentials").exists() or not list((workdir / "credentials").iterdir())


def test_config_is_validated_with_the_identity(workdir, capsys):
    base = (ROOT / "examples" / "sensor.toml").read_text()
    (workdir / "good.toml").write_text(base)
    (workdir / "bad.toml").write_text(base.replace('pin = "P13"', 'pin = "P5"'))
    (workdir / "gw.toml").write_text((ROOT / "examples" / "nanogateway.toml").read_text())
    code, out, err = run(capsys, "--name", "e", "--config", "good.toml", "--no-terminal-qr")
    assert code == 0, err
    written = workdir / "credentials" / "config" / "e.toml"
    assert f"config   {Path('credentials') / 'config' / 'e.toml'} (mode 0600)" in out
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    creds = provisioning.load_credentials(workdir / "credentials" / "e.toml")
    config = devconfig.load_toml(written)
    with open(workdir / "good.toml", "rb") as f:
        expected = devconfig.validate(provisioning.merge_into_config(tomllib.load(f), creds))
    assert config == expected and config["app_key"] == creds.app_key
    assert_no_key(out + err, creds.app_key.hex())
    code, _, err = run(capsys, "--name", "f", "--config", "bad.toml", "--no-terminal-qr")
    assert code == 2 and err.startswith("openenergy provision: error: s0[0].pin: P5 is used by")
    code, _, err = run(capsys, "--name", "g", "--config", "gw.toml", "--no-terminal-qr")
    assert code == 2 and "error: image:" in err


def test_board_seam_reads_the_dev_eui(workdir, capsys, monkeypatch):
    ports = []

    def fake_mac(port):
        ports.append(port)
        return bytes.fromhex("70B3D54990000001")

    monkeypatch.setattr(provisioning, "read_lora_mac", fake_mac)
    code, out, _ = run(capsys, "--name", "h", "--port", "/dev/ttyACM0", "--no-terminal-qr")
    assert code == 0 and ports == ["/dev/ttyACM0"]
    assert "70B3D54990000001 (read from the board on /dev/ttyACM0)" in out


def test_credentials_feed_a_sensor_config(workdir, capsys):
    run(capsys, "--name", "i", "--app-key", KEY, "--dev-eui", "70B3D57ED0000009")
    creds = provisioning.load_credentials(workdir / "credentials" / "i.toml")
    assert KEY not in repr(creds) and KEY.lower() not in repr(creds) and "***" in repr(creds)
    with open(ROOT / "examples" / "sensor.toml", "rb") as f:
        config = devconfig.validate(provisioning.merge_into_config(tomllib.load(f), creds))
    assert config["app_key"] == bytes.fromhex(KEY)
    assert config["dev_eui"] == bytes.fromhex("70B3D57ED0000009")


def test_a_tampered_credentials_file_is_refused(workdir, capsys):
    run(capsys, "--name", "j", "--no-terminal-qr")
    path = workdir / "credentials" / "j.toml"
    path.write_text(path.read_text().replace('app_key = "', 'app_key = "Z'))
    code, _, err = run(capsys, "--name", "j", "--no-terminal-qr")
    assert code == 2 and "app_key:" in err and "--force" in err


def test_help_teaches_with_examples(capsys):
    with pytest.raises(SystemExit):
        cli.main(["provision", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "--csv boards.csv" in out and "TR005" in out


def test_entry_point_prints_no_traceback(workdir):
    proc = subprocess.run(
        [sys.executable, "-m", "openenergy", "provision", "--dev-eui", "xyz"],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=dict(os.environ, PYTHONPATH=f"{ROOT / 'lib'}{os.pathsep}{ROOT / 'tools'}"),
        timeout=60,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("openenergy provision: error: dev_eui:")


# ---------------------------------------------------------------- CSV batches

CSV = """\
name,dev_eui,join_eui,app_key,profile_id
chaufferie,70B3D57ED0000011,,,
compteur-eau,70B3D57ED00000ZZ,,,
sous-station,,70B3D57ED0000000,{key},FFFF0002
chaufferie,70B3D57ED0000012,,,

atelier,,,,
"""


def test_batch_reports_each_row_and_resumes_after_a_fix(workdir, capsys):
    csv_path = workdir / "boards.csv"
    csv_path.write_text(CSV.format(key=KEY))
    code, out, err = run(capsys, "--csv", "boards.csv")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("line 2 (chaufferie): done: credentials written")
    assert lines[1] == (
        "line 3 (compteur-eau): error: dev_eui: expected 16 hex digits, "
        "got a non-hex character at position 15"
    )
    assert lines[2].startswith("line 4 (sous-station): done")
    assert lines[3] == "line 5 (chaufferie): error: name: 'chaufferie' is already used on line 2"
    assert lines[4].startswith("line 7 (atelier): done")
    assert lines[5].startswith("5 rows: 3 done, 0 skipped, 2 failed")
    assert "2 row(s) failed" in err
    creds_dir = workdir / "credentials"
    assert sorted(p.name for p in creds_dir.iterdir()) == [
        "atelier.png", "atelier.toml", "chaufferie.png", "chaufferie.toml",
        "sous-station.png", "sous-station.toml",
    ]  # fmt: skip
    before = {p.name: load(p) for p in creds_dir.glob("*.toml")}
    assert before["sous-station.toml"]["qr"] == "LW:D0:70B3D57ED0000000:" + (
        before["sous-station.toml"]["dev_eui"] + ":FFFF0002"
    )
    assert decode_png(creds_dir / "chaufferie.png") == [before["chaufferie.toml"]["qr"]]
    state = json.loads((workdir / "boards.csv.state.json").read_text())
    assert sorted(state["done"]) == ["atelier", "chaufferie", "sous-station"]

    # The technician fixes the bad rows and runs the very same command again.
    fixed = CSV.format(key=KEY).replace("70B3D57ED00000ZZ", "70B3D57ED0000013")
    csv_path.write_text(
        fixed.replace("chaufferie,70B3D57ED0000012", "local-technique,70B3D57ED0000012")
    )
    code, out, err = run(capsys, "--csv", "boards.csv")
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0].startswith("line 2 (chaufferie): skipped: done in an earlier run")
    assert lines[1].startswith("line 3 (compteur-eau): done")
    assert lines[2].startswith("line 4 (sous-station): skipped")
    assert lines[3].startswith("line 5 (local-technique): done")
    assert lines[4].startswith("line 7 (atelier): skipped")
    assert lines[5].startswith("5 rows: 2 done, 3 skipped, 0 failed")
    after = {p.name: load(p) for p in creds_dir.glob("*.toml")}
    for name, data in before.items():
        assert after[name] == data  # nothing regenerated
    keys = [d["app_key"] for d in after.values()]
    assert len(set(keys)) == len(keys) == 5
    state_text = (workdir / "boards.csv.state.json").read_text()
    assert_no_key(out + err + state_text, *keys)
    for path in creds_dir.glob("*.toml"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_batch_resumes_after_an_interruption(workdir, capsys, monkeypatch):
    (workdir / "b.csv").write_text("name\nun\ndeux\ntrois\n")
    real_write = provisioning.write_atomic
    calls = []

    def crash_on_second_state_write(path, text, mode=0o600):
        if str(path).endswith(".state.json"):
            calls.append(path)
            if len(calls) == 2:
                raise KeyboardInterrupt
        return real_write(path, text, mode)

    monkeypatch.setattr(provisioning, "write_atomic", crash_on_second_state_write)
    assert run(capsys, "--csv", "b.csv")[0] == 130  # interrupted after "deux"'s credentials
    monkeypatch.setattr(provisioning, "write_atomic", real_write)
    deux = load(workdir / "credentials" / "deux.toml")
    code, out, _ = run(capsys, "--csv", "b.csv")
    assert code == 0
    assert out.splitlines()[:3] == [
        out.splitlines()[0],
        f"line 3 (deux): done: credentials already there (DevEUI {deux['dev_eui']}, "
        f"{Path('credentials') / 'deux.toml'})",
        out.splitlines()[2],
    ]
    assert "skipped" in out.splitlines()[0] and "(trois): done: credentials written" in out
    assert load(workdir / "credentials" / "deux.toml") == deux


def test_batch_semicolons_bom_and_header_errors(workdir, capsys):
    (workdir / "excel.csv").write_bytes(
        "\ufeffName;DEV_EUI\r\nbureau;70:B3:D5:7E:D0:00:00:21\r\n".encode()
    )
    code, out, _ = run(capsys, "--csv", "excel.csv")
    assert code == 0 and "line 2 (bureau): done" in out
    assert load(workdir / "credentials" / "bureau.toml")["dev_eui"] == "70B3D57ED0000021"
    (workdir / "typo.csv").write_text("name,deveui\nx,70B3D57ED0000001\n")
    code, out, err = run(capsys, "--csv", "typo.csv")
    assert code == 2 and out == ""
    assert err == (
        "openenergy provision: error: --csv: unknown column 'deveui' on line 1 "
        "(expected name, dev_eui, join_eui, app_key, profile_id)\n"
    )
    code, _, err = run(capsys, "--csv", "nothere.csv")
    assert code == 2 and "--csv: cannot read" in err


def test_batch_with_a_config_writes_one_device_config_per_row(workdir, capsys):
    (workdir / "sensor.toml").write_text((ROOT / "examples" / "sensor.toml").read_text())
    (workdir / "b.csv").write_text("name,dev_eui\nun,70B3D57ED0000031\ndeux,70B3D57ED0000032\n")
    code, out, err = run(capsys, "--csv", "b.csv", "--config", "sensor.toml")
    assert code == 0, err
    for name, dev_eui in (("un", "70B3D57ED0000031"), ("deux", "70B3D57ED0000032")):
        config = devconfig.load_toml(workdir / "credentials" / "config" / f"{name}.toml")
        assert config["dev_eui"] == bytes.fromhex(dev_eui)
        creds = provisioning.load_credentials(workdir / "credentials" / f"{name}.toml")
        assert config["app_key"] == creds.app_key
        assert_no_key(out + err, creds.app_key.hex())


@pytest.mark.parametrize("doc", ["technician.md", "guide-technicien.md"])
def test_the_guides_csv_example_runs(workdir, capsys, doc):
    text = (ROOT / "docs" / doc).read_text()
    block = next(b for b in text.split("```")[1::2] if b.lstrip().startswith("name"))
    (workdir / "boards.csv").write_text(block.lstrip("\n"))
    code, out, err = run(capsys, "--csv", "boards.csv")
    assert code == 0, out + err
    assert out.splitlines()[-1].startswith("3 rows: 3 done, 0 skipped, 0 failed")


def test_an_unwritable_out_dir_is_one_line(workdir, capsys):
    (workdir / "blocked").write_text("a file, not a folder")
    code, out, err = run(capsys, "--name", "k", "--out-dir", "blocked/sub", "--no-terminal-qr")
    assert code == 2 and out == ""
    assert err.startswith("openenergy provision: error: --out-dir: cannot write in blocked/sub")
    assert err.count("\n") == 1
