"""Simulated boards: boot sequence, isolation, deep sleep, resets, power cuts, crashes, WDT, drift,
determinism, loud failures, and the 100-boards-for-a-day figure."""

import json
import time

import pytest
from openenergy.sim.board import PowerOff
from openenergy.sim.clock import Scheduler
from openenergy.sim.world import World
from simkit import BOOT, FIXTURES, MIN, S, out, run

lines = out


def test_boot_runs_boot_py_then_main_py_in_one_namespace():
    with World(seed=1) as world:
        board = world.add_board("a", FIXTURES / "isolation")
        world.run(until_us=S)
        assert [line for _, line in board.console] == ["boot 0", "main 0 2 LoPy4 True"]
        assert board.session.state == "repl"


def test_module_state_is_isolated_between_boards_running_the_same_files():
    with World(seed=1) as world:
        boards = [world.add_board(name, FIXTURES / "isolation") for name in ("a", "b", "c")]
        world.run(until_us=S)
        for board in boards:
            assert lines(board, "main") == ["main 0 2 LoPy4 True"]
        modules = [b.session.modules["counter"] for b in boards]
        assert len({id(m) for m in modules}) == 3
        assert len({id(b.session.builtins) for b in boards}) == 3


def test_firmware_cannot_reach_the_host_through_imports_or_open():
    image = {
        "main.py": (
            "try:\n"
            "    import subprocess\n"
            "except ImportError as e:\n"
            "    print('import', e)\n"
            "try:\n"
            "    open('/etc/passwd')\n"
            "except OSError as e:\n"
            "    print('open', e.args[0])\n"
            "try:\n"
            "    open('/flash/../../x', 'w')\n"
            "except OSError as e:\n"
            "    print('escape', e.args[0])\n"
            "with open('note.txt', 'w') as f:\n"
            "    f.write('hi')\n"
            "print(open('/flash/note.txt').read())\n"
        )
    }
    board = run(image, until_us=S, seed=1, name="a")
    assert [line for _, line in board.console] == [
        "import no module named 'subprocess'",
        "open 2",
        "escape 2",
        "hi",
    ]


def test_deepsleep_keeps_nvs_rtc_memory_flash_and_loses_ram():
    with World(seed=1) as world:
        board = world.add_board("s", FIXTURES / "sleeper")
        world.run(until_us=47 * MIN)
        assert lines(board, "wake") == [
            "wake 0 0 1 0 0",
            "wake 1 1 1 3 2",
            "wake 2 2 1 3 2",
            "wake 3 3 1 3 2",
        ]
        times = [t for t, line in board.console if line.startswith("wake")]
        assert [b - a for a, b in zip(times, times[1:], strict=False)] == [
            15 * MIN + world.boot_time_us
        ] * 3
        assert board.nvs == {"wakes": 4}
        assert board.stats["deepsleeps"] == 4 and not board.alive and board.asleep


def test_a_pin_wakes_the_board_early_with_pin_wake_and_the_pins():
    image = {
        "main.py": (
            "import machine\n"
            "print('wake', machine.wake_reason()[0], [p.id() for p in machine.wake_reason()[1] or []],"
            " machine.remaining_sleep_time())\n"
            "machine.pin_sleep_wakeup(['P13'], machine.WAKEUP_ANY_HIGH, False)\n"
            "machine.deepsleep(60000)\n"
        )
    }
    with World(seed=2) as world:
        board = world.add_board("p", image)
        world.scheduler.call_at(10 * S, board.drive_pin, "P13", 1)
        world.scheduler.call_at(10 * S + 5000, board.drive_pin, "P13", 0)
        world.run(until_us=12 * S)
        assert lines(board, "wake") == ["wake 0 [] 0", "wake 1 ['P13'] 50500"]


def test_pin_sleep_wakeup_refuses_pins_the_esp32_cannot_wake_on():
    image = {
        "main.py": (
            "import machine\n"
            "try:\n"
            "    machine.pin_sleep_wakeup(['P5'], machine.WAKEUP_ALL_LOW, True)\n"
            "except ValueError as e:\n"
            "    print('refused', e)\n"
        )
    }
    board = run(image, until_us=S, seed=2, name="p")
    assert lines(board, "refused") == [
        "refused deepsleep wake up is not supported on the selected pin(s)"
    ]


def test_machine_reset_reboots_with_hard_reset_and_clears_rtc_and_its_memory():
    image = {
        "main.py": (
            "import machine, pycom, time\n"
            "rtc = machine.RTC()\n"
            "n = pycom.nvs_get('n', 0)\n"
            "print('run', n, machine.reset_cause(), rtc.memory(), rtc.now()[0])\n"
            "pycom.nvs_set('n', n + 1)\n"
            "if n == 0:\n"
            "    rtc.init((2024, 5, 1, 12, 0, 0))\n"
            "    rtc.memory(b'keep?')\n"
            "    time.sleep(1)\n"
            "    machine.reset()\n"
            "    print('never')\n"
        )
    }
    with World(seed=3) as world:
        board = world.add_board("r", image, nvs_strict=True)
        world.run(until_us=5 * S)
        assert lines(board, "run") == ["run 0 0 b'' 1970", "run 1 1 b'' 1970"]
        assert not lines(board, "never")


@pytest.mark.parametrize("cut_ms", [0, 1, 2, 4, 5, 7, 8, 10, 13, 17, 19, 23, 29, 31, 37, 41])
def test_power_cut_at_any_instant_leaves_the_file_old_or_new_keeps_nvs_loses_ram(cut_ms):
    with World(seed=4) as world:
        board = world.add_board("w", FIXTURES / "writer")
        board.nvs["keep"] = 7
        cut_at = 800_000 + cut_ms * 1000
        world.power_cut(board, at_us=cut_at, duration_us=2 * S)
        world.run(until_us=cut_at)
        assert not board.alive and board.session.tasks == []
        state = json.loads(board.read_file("/flash/state.json"))
        assert len(state["pad"]) == 200
        if cut_ms == 1:  # cut between the two writes of the temp file
            assert len(board.read_file("/flash/state.tmp")) == 100
        world.run(until_us=4 * S)
        starts = lines(board, "start")
        assert starts[0] == "start 0" and starts[1] == "start %d" % state["generation"]
        assert board.nvs == {"keep": 7}
        assert board.session.reset_cause == 0 and board.stats["power_cuts"] == 1


def test_after_a_power_cut_firmware_finally_blocks_cannot_do_io():
    image = {
        "main.py": (
            "import time, pycom\n"
            "try:\n"
            "    time.sleep(10)\n"
            "finally:\n"
            "    pycom.nvs_set('finally', 1)\n"
        )
    }
    with World(seed=5) as world:
        board = world.add_board("f", image)
        world.power_cut(board, at_us=S)
        world.run(until_us=20 * S)
        assert board.nvs == {} and not board.alive and board.session.tasks == []
        with pytest.raises(PowerOff):
            board.check_alive()


def test_uncaught_exception_prints_a_micropython_traceback_and_drops_to_the_repl():
    image = {
        "main.py": (
            "import _thread, time\n"
            "import helper\n"
            "def worker():\n"
            "    while True:\n"
            "        time.sleep(1)\n"
            "        print('tick')\n"
            "_thread.start_new_thread(worker, ())\n"
            "time.sleep(1.5)\n"
            "helper.fail(3)\n"
        ),
        "lib/helper.py": "def fail(n):\n    raise ValueError('bad value %d' % n)\n",
    }
    board = run(image, until_us=4_600_000, seed=6, name="c")
    text = board.console_text()
    assert (
        "Traceback (most recent call last):\n"
        '  File "main.py", line 9, in <module>\n'
        '  File "/flash/lib/helper.py", line 2, in fail\n'
        "ValueError: bad value 3"
    ) in text
    assert board.session.state == "repl" and len(board.crashes) == 1
    assert len(lines(board, "tick")) == 4


def test_sys_exit_in_main_py_is_a_soft_reset():
    image = {
        "main.py": (
            "import machine, sys, pycom\n"
            "n = pycom.nvs_get('n', 0)\n"
            "pycom.nvs_set('n', n + 1)\n"
            "print('cause', machine.reset_cause())\n"
            "if n == 0:\n"
            "    sys.exit()\n"
        )
    }
    board = run(image, until_us=S, seed=7, name="x")
    assert lines(board, "cause") == ["cause 0", "cause 4"]
    assert "PYB: soft reboot" in board.console_text()


def test_watchdog_not_fed_in_time_resets_with_wdt_reset():
    image = {
        "main.py": (
            "import machine, time, pycom\n"
            "n = pycom.nvs_get('n', 0)\n"
            "pycom.nvs_set('n', n + 1)\n"
            "print('boot', machine.reset_cause(), time.ticks_ms())\n"
            "if n == 0:\n"
            "    wdt = machine.WDT(timeout=2000)\n"
            "    for i in range(5):\n"
            "        time.sleep_ms(1500)\n"
            "        wdt.feed()\n"
            "    print('stopped feeding')\n"
            "    time.sleep(60)\n"
        )
    }
    board = run(image, until_us=20 * S, seed=8, name="w")
    assert lines(board, "boot") == ["boot 0 0", "boot 2 0"]
    reboot_at = [t for t, line in board.console if line.startswith("boot")][1]
    boot = BOOT
    assert reboot_at == boot + 20 + 5 * 1_500_000 + 2_000_000 + boot + 20


def test_clock_drift_scales_the_board_clocks():
    image = {
        "main.py": "import time\nwhile True:\n    time.sleep(100)\n    print('slept', time.ticks_ms())\n"
    }
    with World(seed=9) as world:
        fast = world.add_board("fast", image)
        world.add_board("exact", image)
        world.clock_drift(fast, 100)
        world.run(until_us=301 * S)
        step = -(-100 * S * 1_000_000_000 // (1_000_000_000 + 100_000))
        assert step == 99_990_001
        assert [t for t, line in fast.console] == [
            world.boot_time_us + k * (step + 20) for k in (1, 2, 3)
        ]
        assert fast.local_us() > fast.scheduler.now_us() - world.boot_time_us


def _run_traced(seed, path):
    with World(seed=seed, trace=str(path)) as world:
        for name in ("a", "b"):
            world.add_board(name, FIXTURES / "sleeper")
        world.add_board("c", FIXTURES / "callbacks")
        world.dns["echo.sim"] = "127.0.0.9"
        server = world.netio.udp_socket("server")
        server.bind(("127.0.0.9", 9999))
        server.on_datagram = lambda data, addr: server.sendto(b"echo " + data, addr)
        world.add_board("d", FIXTURES / "udp_echo")
        world.power_cut("a", at_us=17 * MIN + 123, duration_us=MIN)
        world.wifi_outage("d", at_us=BOOT + 2_500_000, duration_us=S)
        world.run(until_us=40 * MIN)
    return path.read_bytes()


def test_two_runs_with_the_same_seed_write_byte_identical_traces(tmp_path):
    first = _run_traced(11, tmp_path / "one.jsonl")
    second = _run_traced(11, tmp_path / "two.jsonl")
    other = _run_traced(12, tmp_path / "three.jsonl")
    assert first == second and first != other
    kinds = {json.loads(line)["kind"] for line in first.splitlines()}
    assert {"boot", "deepsleep", "power_off", "udp", "crash", "fault", "console"} <= kinds


def test_unsupported_calls_and_modules_fail_loudly_naming_them():
    image = {
        "main.py": (
            "import machine\n"
            "for call in (lambda: machine.Pin('P10').hold(True), lambda: machine.I2C(0),\n"
            "             lambda: __import__('ussl'), lambda: __import__('nosuchmodule')):\n"
            "    try:\n"
            "        call()\n"
            "    except Exception as e:\n"
            "        print(type(e).__name__, e)\n"
        )
    }
    board = run(image, until_us=S, seed=1, name="u")
    assert [line for _, line in board.console] == [
        "NotImplementedError simulator: machine.Pin.hold() not supported",
        "NotImplementedError simulator: machine.I2C not supported",
        "ImportError simulator does not provide module ussl",
        "ImportError no module named 'nosuchmodule'",
    ]


def test_micropython_schedule_runs_in_the_main_task_at_a_blocking_call():
    image = {
        "main.py": (
            "import micropython, _thread, time\n"
            "seen = []\n"
            "def later(arg):\n"
            "    seen.append((arg, _thread.get_ident() == MAIN, time.ticks_ms()))\n"
            "MAIN = _thread.get_ident()\n"
            "micropython.schedule(later, 'a')\n"
            "print('before', seen)\n"
            "time.sleep_ms(1)\n"
            "print('after', seen)\n"
            "def from_thread():\n"
            "    time.sleep_ms(500)\n"
            "    micropython.schedule(later, 'b')\n"
            "_thread.start_new_thread(from_thread, ())\n"
            "time.sleep(2)\n"
            "print('end', seen)\n"
        )
    }
    board = run(image, until_us=3 * S, seed=1, name="m")
    assert [line for _, line in board.console] == [
        "before []",
        "after [('a', True, 0)]",
        "end [('a', True, 0), ('b', True, 501)]",
    ]


def test_a_task_killed_by_a_sibling_task_unwinds_without_losing_the_killer():
    s = Scheduler()
    log = []

    def victim():
        try:
            s.sleep_us(1000)
        finally:
            log.append(("victim unwound", s.now_us()))

    def killer(task):
        s.sleep_us(10)
        task.kill()
        log.append(("killer continues", s.now_us()))
        s.sleep_us(5)
        log.append(("killer done", s.now_us()))

    target = s.spawn(victim)
    s.spawn(killer, target)
    s.run()
    assert log == [("killer continues", 10), ("victim unwound", 10), ("killer done", 15)]


def test_hundred_boards_waking_every_15_minutes_for_a_day():
    image = {
        "main.py": (
            "import machine, pycom, time\n"
            "n = pycom.nvs_get('wakes', 0)\n"
            "pycom.nvs_set('wakes', n + 1)\n"
            "time.sleep_ms(30)\n"
            "machine.deepsleep(15 * 60 * 1000)\n"
        )
    }
    start = time.perf_counter()
    with World(seed=13) as world:
        boards = [world.add_board("b%03d" % i, image) for i in range(100)]
        world.run(until_us=24 * 60 * MIN)
        wall = time.perf_counter() - start
        assert all(b.nvs == {"wakes": 96} for b in boards)
    print(
        "\n100 boards x 1 simulated day (9600 wake cycles): %.2f s wall, %.0f board-hours/s"
        % (wall, 2400 / wall)
    )


def test_firmware_stuck_in_a_busy_loop_is_stopped_by_the_hang_guard():
    image = {"main.py": "print('spinning')\nwhile True:\n    pass\n"}
    with World(seed=1, hang_guard_s=0.5) as world:
        board = world.add_board("h", image)
        board2 = world.add_board("ok", {"main.py": "import time\ntime.sleep(2)\nprint('fine')\n"})
        world.run(until_us=5 * S)
        assert (
            "FirmwareHang: simulator: h:main computed for 0.5 s of wall time"
            in board.console_text()
        )
        assert board.session.state == "repl" and board2.console_text() == "fine"
