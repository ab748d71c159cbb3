"""The virtual board on a pty: the Pycom 1.20.x / MicroPython 1.11 REPL byte for byte as mpremote
sees it (raw REPL, no raw-paste, soft reboot, Ctrl-C), checked with pyserial and with the real
mpremote command line."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
from openenergy.sim.pty_board import PtyBoard

ROOT = Path(__file__).resolve().parents[2]
MPREMOTE = [sys.executable, "-m", "mpremote"]
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
MAIN_LOOP = "import utime\nprint('main running')\nwhile True:\n    utime.sleep_ms(50)\n"


def make_image(folder, main=MAIN_LOOP, boot="print('boot ran')\n", extra=None):
    folder.mkdir(parents=True, exist_ok=True)
    files = {"boot.py": boot, "main.py": main}
    files.update(extra or {})
    for name, text in files.items():
        (folder / name).write_text(text)
    (folder / "manifest.json").write_text(
        '{"files": [%s], "lib": ["errors"]}' % ", ".join('"%s"' % n for n in files)
    )
    return folder


@pytest.fixture
def vboard(tmp_path):
    """A running virtual board (main.py loops) and a way to start others."""
    started = []

    def start(main=MAIN_LOOP, **kwargs):
        image = make_image(tmp_path / ("img%d" % len(started)), main=main)
        board = PtyBoard(
            image=str(image), flash_dir=str(tmp_path / ("flash%d" % len(started))), **kwargs
        )
        started.append(board)
        board.start()
        assert board.wait_running(10)
        return board

    yield start
    for board in started:
        board.stop()


class Console:
    """The host end: pyserial on the pty, with reads that wait for an expected ending."""

    def __init__(self, path):
        self.port = serial.Serial(path, 115200, timeout=0.05)

    def send(self, data):
        self.port.write(data)

    def until(self, ending, timeout=5.0):
        data = b""
        deadline = time.monotonic() + timeout
        while not data.endswith(ending):
            if time.monotonic() > deadline:
                raise AssertionError("waited for %r, got %r" % (ending, data[-300:]))
            data += self.port.read(4096)
        return data

    def close(self):
        self.port.close()


@pytest.fixture
def console_for():
    opened = []

    def open_(board):
        console = Console(board.path)
        opened.append(console)
        return console

    yield open_
    for console in opened:
        console.close()


def friendly(console):
    """Interrupt main.py and get to the friendly prompt."""
    console.send(b"\r\x03")
    return console.until(b">>> ")


def test_ctrl_c_stops_main_py_and_the_friendly_repl_answers(vboard, console_for):
    board = vboard()
    console = console_for(board)
    got = friendly(console)
    assert b"KeyboardInterrupt" in got
    assert b"Pycom MicroPython 1.20.2.r4 [v1.11-" in got and b"; LoPy4 with ESP32\r\n" in got
    assert b'Type "help()" for more information.\r\n>>> ' in got
    console.send(b"1 + 2\r")
    assert console.until(b">>> ") == b"1 + 2\r\n3\r\n>>> "
    console.send(b"for i in range(2):\r")
    assert console.until(b"...     ").endswith(b"\r\n...     ")
    console.send(b"print(i * 10)\r\r")
    assert console.until(b">>> ").endswith(b"0\r\n10\r\n>>> ")
    console.send(b"undefined_name\r")
    assert b"NameError" in console.until(b">>> ")


def test_raw_repl_protocol_as_micropython_1_11(vboard, console_for):
    board = vboard()
    console = console_for(board)
    friendly(console)
    console.send(b"\x01")
    assert console.until(RAW_BANNER).endswith(b"\r\n" + RAW_BANNER)
    console.send(b"print('out')\x04")
    assert console.until(b">") == b"OKout\r\n\x04\x04>"
    console.send(b"import os\nos.stat('/flash/missing')\x04")
    got = console.until(b"\x04>")
    assert got.startswith(b"OK\x04Traceback (most recent call last):\r\n")
    assert b"OSError: [Errno 2] ENOENT\r\n\x04>" in got
    console.send(b"x = (\x04")
    assert b"SyntaxError" in console.until(b"\x04>")
    # Ctrl-C clears the raw buffer
    console.send(b"print('lost')\x03print('kept')\x04")
    assert console.until(b">") == b"OKkept\r\n\x04\x04>"
    # no raw-paste mode: the probe is answered with the raw REPL banner, as by firmware 1.11
    console.send(b"\x05A\x01")
    assert console.until(RAW_BANNER) == RAW_BANNER
    console.send(b"\x02")
    assert console.until(b">>> ").startswith(b"\r\nPycom MicroPython")
    assert board.stats["raw_entries"] == 2


def test_raw_soft_reboot_runs_boot_py_but_not_main_py(vboard, console_for):
    board = vboard()
    console = console_for(board)
    friendly(console)
    console.send(b"\x01")
    console.until(RAW_BANNER)
    console.send(b"marker = 1\x04")
    console.until(b"\x04\x04>")
    console.send(b"\x04")
    got = console.until(RAW_BANNER)
    assert got.startswith(b"OK\r\nPYB: soft reboot\r\n")
    assert b"boot ran" in got and b"main running" not in got
    console.send(b"print('marker' in globals())\x04")
    assert console.until(b">") == b"OKFalse\r\n\x04\x04>"  # a fresh namespace
    # Ctrl-D at the friendly prompt: soft reboot with main.py
    console.send(b"\x02")
    console.until(b">>> ")
    console.send(b"\x04")
    got = console.until(b"main running\r\n")
    assert b"PYB: soft reboot\r\n" in got
    assert board.stats["soft_resets"] == 2


def test_ctrl_c_interrupts_a_blocking_repl_command(vboard, console_for):
    board = vboard()
    console = console_for(board)
    friendly(console)
    console.send(b"import utime\rutime.sleep(60)\r")
    time.sleep(0.3)
    console.send(b"\x03")
    got = console.until(b">>> ", timeout=3)
    assert b"KeyboardInterrupt" in got
    console.send(b"print('alive')\r")
    assert console.until(b">>> ").endswith(b"alive\r\n>>> ")


def test_pycom_modules_answer_through_the_simulator(vboard, console_for):
    board = vboard()
    console = console_for(board)
    friendly(console)
    console.send(b"\x01")
    console.until(RAW_BANNER)
    code = (
        b"import os, gc, ubinascii, uhashlib\n"
        b"from network import LoRa\n"
        b"print(os.uname().release, os.uname().version.split()[0])\n"
        b"print(ubinascii.hexlify(LoRa().mac()))\n"
        b"print(os.getfree('/flash') > 0, gc.mem_free() > 0)\n"
        b"print(ubinascii.hexlify(uhashlib.sha256(b'abc').digest()))\n"
        b"print(sorted(os.listdir('/flash')))\x04"
    )
    console.send(code)
    out = console.until(b"\x04>").decode()
    lines = out[2:].split("\x04")[0].split("\r\n")
    assert lines[0] == "1.20.2.r4 v1.11-06dfad0"
    assert lines[1] == "b'%s'" % board.lora_mac.hex()
    assert lines[2] == "True True"
    assert lines[3] == "b'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'"
    assert lines[4] == "['boot.py', 'cert', 'lib', 'main.py', 'sys']"
    assert board.lora_mac[3:5] == b"\xff\xfe"  # Pycom: WiFi MAC[0:3] FFFE MAC[3:6]


def test_real_mpremote_commands(vboard, tmp_path):
    board = vboard()
    local = tmp_path / "hello.txt"
    local.write_bytes(b"hello\x00\xffworld\n" * 50)

    def mpremote(*args):
        proc = subprocess.run(
            MPREMOTE + ["connect", board.path, *args], capture_output=True, text=True, timeout=30
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert mpremote("exec", "print(6 * 7)").strip() == "42"
    assert mpremote("eval", "1 + 1").strip() == "2"
    mpremote("fs", "cp", str(local), ":hello.txt")
    assert (Path(board.board.flash_dir) / "hello.txt").read_bytes() == local.read_bytes()
    listing = mpremote("fs", "ls")
    assert "hello.txt" in listing and "lib/" in listing
    import hashlib

    assert hashlib.sha256(local.read_bytes()).hexdigest() in mpremote(
        "fs", "sha256sum", ":hello.txt"
    )
    mpremote("fs", "cp", ":hello.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_bytes() == local.read_bytes()
    assert mpremote("fs", "cat", ":boot.py") == "print('boot ran')\n"
    resets = board.stats["soft_resets"]
    assert mpremote("resume", "exec", "print('resumed')").strip() == "resumed"
    assert board.stats["soft_resets"] == resets  # resume: no soft reboot
    mpremote("fs", "rm", ":hello.txt")
    assert not (Path(board.board.flash_dir) / "hello.txt").exists()
    boots = board.stats["boots"]
    mpremote("reset")  # soft reboot into the raw REPL, then machine.reset()
    deadline = time.monotonic() + 5
    while board.stats["boots"] < boots + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert board.stats["boots"] == boots + 2
    assert board.board.session.reset_cause == 1  # HARD_RESET
    assert board.wait_running(5) and board.mode == "friendly"


def test_output_nobody_reads_is_dropped_and_the_board_keeps_running(vboard, console_for):
    chatty = "import utime\nn = 0\nwhile True:\n    n += 1\n    print('x' * 200, n)\n    utime.sleep_ms(2)\n"
    board = vboard(main=chatty)
    time.sleep(2.5)  # far more than the pty holds
    console = console_for(board)
    console.send(b"\r\x03")
    stale = console.until(b">>> ", timeout=5)
    assert len(stale) < 64_000  # at 100 bytes/ms, 2.5 s of output would be 250 kB
    console.send(b"print(n > 200)\r")
    assert console.until(b">>> ").endswith(b"True\r\n>>> ")


def test_sim_board_pty_prints_the_path_and_stops_on_sigterm(tmp_path):
    image = make_image(tmp_path / "img")
    env = dict(os.environ)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openenergy",
            "sim",
            "board",
            "--pty",
            "--image",
            str(image),
            "--flash-dir",
            str(tmp_path / "flash"),
            "--seed",
            "7",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/")
        out = subprocess.run(
            MPREMOTE + ["connect", path, "exec", "import os; print(sorted(os.listdir()))"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "'main.py'" in out.stdout, out.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        err = proc.stderr.read()
        assert "LoRa MAC (DevEUI) 70B3D5" in err and path in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (tmp_path / "flash" / "main.py").read_text() == MAIN_LOOP
