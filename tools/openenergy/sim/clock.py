"""Virtual clock: deterministic discrete-event scheduling of greenlet tasks in integer microseconds.

Every simulated board (and the network-server emulator) runs as tasks on one `Scheduler`. A task
is a greenlet; when it blocks (`sleep_us`, `Signal.wait`) it switches back to the scheduler's hub,
which advances virtual time to the next event. Events at the same instant run in the order they
were scheduled, so a run is a pure function of its inputs and seed.

In real-time mode the hub waits on the wall clock before each event, so simulated gateways can
talk to a real ChirpStack gateway bridge.
"""

import heapq
import itertools
import time

import greenlet


class SimulationError(Exception):
    """Misuse of the scheduler (blocking outside a task, time going backwards)."""


class TaskKilled(greenlet.GreenletExit):
    """Thrown into a task that is killed (a power cut): unwinds it without running more code."""


class Event:
    """A scheduled callback; `cancel()` before it fires and it never runs."""

    __slots__ = ("time_us", "seq", "func", "args", "cancelled")

    def __init__(self, time_us, seq, func, args):
        self.time_us = time_us
        self.seq = seq
        self.func = func
        self.args = args
        self.cancelled = False

    def cancel(self):
        self.cancelled = True

    def __lt__(self, other):
        return (self.time_us, self.seq) < (other.time_us, other.seq)


class Task:
    """A greenlet running on the scheduler; `kill()` unwinds it at once (power cut)."""

    def __init__(self, scheduler, func, args, name):
        self.scheduler = scheduler
        self.name = name
        self.glet = greenlet.greenlet(self._main, parent=scheduler.hub)
        self.func = func
        self.args = args
        self.done = False
        self.error = None
        self.result = None
        self._wake_event = None
        self.kill_pending = False
        self.on_exit = []

    def _main(self, *_first_switch_value):
        try:
            self.result = self.func(*self.args)
        except greenlet.GreenletExit:
            pass
        except BaseException as exc:  # noqa: BLE001 - recorded and reported by the owner
            self.error = exc
        finally:
            self.done = True
            for callback in self.on_exit:
                callback(self)

    @property
    def alive(self):
        return not self.done

    def kill(self):
        """Stop the task; its pending wake-up is cancelled. Safe to call from anywhere.

        From the hub the task unwinds at once. From the task itself TaskKilled is raised. From
        another task the unwinding is deferred to a hub event at the same instant (throwing into
        a greenlet from a sibling would return control to the hub, not to the caller); until
        then the task cannot be resumed by anything else.
        """
        if self.done:
            return
        if self._wake_event is not None:
            self._wake_event.cancel()
            self._wake_event = None
        if not self.glet:  # never started
            self.done = True
            for callback in self.on_exit:
                callback(self)
            return
        current = greenlet.getcurrent()
        if current is self.glet:
            raise TaskKilled()
        if current is not self.scheduler.hub:
            self.kill_pending = True
            self._wake_event = self.scheduler.call_at(
                self.scheduler.now_us(), self.scheduler._resume, self, None
            )
            return
        self.glet.throw(TaskKilled())

    def __repr__(self):
        return "<Task %s %s>" % (self.name, "done" if self.done else "alive")


class Scheduler:
    """The virtual clock and its event queue."""

    def __init__(self, realtime=False, speed=1.0):
        self.hub = greenlet.getcurrent()
        self._queue = []
        self._seq = itertools.count()
        self._now = 0
        self.realtime = realtime
        self.speed = speed
        self._wall_start = None
        self.current_task = None
        self.stopped = False
        self.events_run = 0
        # Real-time mode: idle_hook(seconds) is called instead of sleeping while waiting for the
        # wall clock; it may block up to that long and schedule new events (datagrams from real
        # peers), which are then looked at first.
        self.idle_hook = None
        self._until = None
        self._on_advance = None
        self.fast_skips = 0

    # -- time --------------------------------------------------------------------------------
    def now_us(self):
        return self._now

    def now_ms(self):
        return self._now // 1000

    # -- scheduling ---------------------------------------------------------------------------
    def call_at(self, time_us, func, *args):
        """Run func(*args) in the hub at virtual time time_us (it must not block)."""
        if time_us < self._now:
            time_us = self._now
        event = Event(int(time_us), next(self._seq), func, args)
        heapq.heappush(self._queue, event)
        return event

    def call_later(self, delay_us, func, *args):
        return self.call_at(self._now + int(delay_us), func, *args)

    def spawn(self, func, *args, name=None, delay_us=0):
        """Start func(*args) as a task, now (after the current event) or after delay_us."""
        task = Task(self, func, args, name or getattr(func, "__name__", "task"))
        task._wake_event = self.call_later(delay_us, self._resume, task, None)
        return task

    def _resume(self, task, value):
        task._wake_event = None
        if task.done:
            return
        previous = self.current_task
        self.current_task = task
        try:
            if task.kill_pending:
                task.kill_pending = False
                task.glet.throw(TaskKilled())
            else:
                task.glet.switch(value)
        finally:
            self.current_task = previous

    # -- blocking, from inside a task --------------------------------------------------------
    def _require_task(self, what):
        task = self.current_task
        if task is None or greenlet.getcurrent() is not task.glet:
            raise SimulationError("%s called outside a simulated task" % what)
        return task

    def sleep_us(self, delay_us):
        """Block the current task for delay_us of virtual time."""
        task = self._require_task("sleep")
        delay_us = max(0, int(delay_us))
        if self._skip_to(self._now + delay_us):
            return None
        task._wake_event = self.call_later(delay_us, self._resume, task, None)
        return self.hub.switch()

    def _skip_to(self, time_us):
        """Fast path of a timed block: when no event is due at or before time_us, no other task
        can run before the sleeper wakes, so the clock moves there in place — no queue entry, no
        greenlet switch. Same order of events as the slow path, so runs stay deterministic."""
        if self.realtime or self.stopped:
            return False
        if self._until is not None and time_us > self._until:
            return False
        queue = self._queue
        while queue and queue[0].cancelled:
            heapq.heappop(queue)
        if queue and queue[0].time_us <= time_us:
            return False
        if time_us > self._now:
            self._now = time_us
            self.fast_skips += 1
            self.events_run += 1
            if self._on_advance is not None and not self.fast_skips & 1023:
                self._on_advance(time_us)
        return True

    def wake(self, task, value=None):
        """Resume a task blocked in `suspend()` with value (from the hub or another task)."""
        if task._wake_event is not None:
            task._wake_event.cancel()
        task._wake_event = self.call_at(self._now, self._resume, task, value)

    def suspend(self, timeout_us=None, timeout_value=None):
        """Block the current task until `wake(task, value)` or the timeout; return the value."""
        task = self._require_task("suspend")
        if timeout_us is not None:
            timeout_us = max(0, int(timeout_us))
            if task._wake_event is None and self._skip_to(self._now + timeout_us):
                return timeout_value
            task._wake_event = self.call_later(timeout_us, self._resume, task, timeout_value)
        else:
            task._wake_event = None
        return self.hub.switch()

    # -- running ------------------------------------------------------------------------------
    def stop(self):
        self.stopped = True

    def run(self, until_us=None, on_advance=None):
        """Run events in order until the queue is empty, `stop()`, or virtual time until_us.

        on_advance(now_us) is called whenever virtual time moves forward (progress bars).
        """
        if greenlet.getcurrent() is not self.hub:
            raise SimulationError("Scheduler.run() must be called from the hub")
        if self.realtime and self._wall_start is None:
            self._wall_start = time.monotonic() - self._now / 1e6 / self.speed
        self.stopped = False
        self._until, self._on_advance = until_us, on_advance
        try:
            self._run(until_us, on_advance)
        finally:
            self._until = self._on_advance = None

    def _run(self, until_us, on_advance):
        queue = self._queue
        while not self.stopped:
            if not queue:
                if self.realtime and self.idle_hook is not None and until_us is not None:
                    if self._wait_wall(until_us):
                        continue
                break
            event = queue[0]
            if until_us is not None and event.time_us > until_us:
                if self.realtime and self.idle_hook is not None and self._wait_wall(until_us):
                    continue
                break
            if event.cancelled:
                heapq.heappop(queue)
                continue
            if event.time_us > self._now:
                if self.realtime and self._wait_wall(event.time_us):
                    continue  # something new was scheduled meanwhile: look at the queue again
                self._now = event.time_us
                if on_advance is not None:
                    on_advance(self._now)
            heapq.heappop(queue)
            self.events_run += 1
            event.func(*event.args)
        if until_us is not None and not self.stopped and self._now < until_us:
            self._now = until_us
            if on_advance is not None:
                on_advance(self._now)

    def _wait_wall(self, time_us):
        """Real-time mode: wait until virtual time_us on the wall clock.

        Returns True when the idle hook scheduled something while waiting (the caller then looks
        at the queue again), False once the wall clock has reached time_us.
        """
        target = self._wall_start + time_us / 1e6 / self.speed
        while True:
            delay = target - time.monotonic()
            if delay <= 0:
                return False
            if self.idle_hook is None:
                time.sleep(delay)
                return False
            before = len(self._queue)
            self.idle_hook(delay)
            if len(self._queue) != before:
                return True

    def wall_now_us(self):
        """Real-time mode: the virtual instant the wall clock is at now (never before now_us)."""
        if not self.realtime or self._wall_start is None:
            return self._now
        return max(self._now, int((time.monotonic() - self._wall_start) * 1e6 * self.speed))

    def pending(self):
        return sum(1 for e in self._queue if not e.cancelled)


class Signal:
    """A one-to-many wake-up for tasks: `wait(timeout_us)` blocks until `fire(value)`."""

    def __init__(self, scheduler):
        self.scheduler = scheduler
        self._waiters = []

    def wait(self, timeout_us=None, timeout_value=None):
        task = self.scheduler._require_task("wait")
        self._waiters.append(task)
        try:
            return self.scheduler.suspend(timeout_us, timeout_value)
        finally:
            if task in self._waiters:
                self._waiters.remove(task)

    def fire(self, value=True):
        waiters, self._waiters = self._waiters, []
        for task in waiters:
            if not task.done:
                self.scheduler.wake(task, value)
        return len(waiters)
