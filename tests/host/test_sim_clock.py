"""The virtual clock: ordering, sleeping, signals, kills and determinism."""

import pytest
from openenergy.sim.clock import Scheduler, Signal, SimulationError


def test_tasks_interleave_in_virtual_time_order():
    s = Scheduler()
    log = []

    def worker(name, period, n):
        for _ in range(n):
            s.sleep_us(period)
            log.append((s.now_us(), name))

    s.spawn(worker, "a", 300, 3)
    s.spawn(worker, "b", 200, 4)
    s.run()
    assert log == [
        (200, "b"),
        (300, "a"),
        (400, "b"),
        (600, "a"),
        (600, "b"),
        (800, "b"),
        (900, "a"),
    ]


def test_run_until_stops_and_advances_clock():
    s = Scheduler()
    hits = []
    s.call_at(5_000, hits.append, 1)
    s.call_at(15_000, hits.append, 2)
    s.run(until_us=10_000)
    assert hits == [1] and s.now_us() == 10_000
    s.run()
    assert hits == [1, 2] and s.now_us() == 15_000


def test_signal_wakes_waiter_or_times_out():
    s = Scheduler()
    sig = Signal(s)
    got = []

    def waiter():
        for timeout in (1_000, 10_000):
            value = sig.wait(timeout_us=timeout, timeout_value="timeout")
            got.append((s.now_us(), value))

    s.spawn(waiter)
    s.call_at(3_000, sig.fire, "hello")
    s.run()
    assert got == [(1_000, "timeout"), (3_000, "hello")]


def test_kill_stops_a_sleeping_task_for_good():
    s = Scheduler()
    log = []

    def loop():
        while True:
            s.sleep_us(100)
            log.append(s.now_us())

    task = s.spawn(loop)
    s.call_at(350, task.kill)
    s.run(until_us=1_000)
    assert log == [100, 200, 300] and not task.alive


def test_blocking_outside_a_task_is_refused():
    with pytest.raises(SimulationError):
        Scheduler().sleep_us(10)


def test_error_in_task_is_recorded_not_raised_in_hub():
    s = Scheduler()

    def boom():
        s.sleep_us(10)
        raise RuntimeError("firmware bug")

    task = s.spawn(boom)
    s.run()
    assert isinstance(task.error, RuntimeError) and task.done
