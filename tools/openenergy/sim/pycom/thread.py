"""`_thread` of a simulated board: threads are tasks on the virtual clock.

Pycom threads are RTOS tasks under a GIL released in sleeps and socket waits; here they run
cooperatively and switch only at blocking calls (and at polling calls, which cost a little
virtual CPU time), which is the same set of switch points a GIL-bound MicroPython program sees
in practice. An uncaught exception ends the thread with "Unhandled exception in thread started
by <function f>" and a traceback on the console; the rest of the board carries on.
"""

from ..board import BoardHalt, format_exception
from . import new_module

DEFAULT_STACK = 5 * 1024


class LockType:
    _s = None

    def __init__(self):
        from ..clock import Signal

        self._locked = False
        self._signal = Signal(self._s.scheduler)

    def acquire(self, waitflag=1, timeout=-1):
        session = self._s
        session.check()
        if not self._locked:
            self._locked = True
            return True
        if not waitflag:
            return False
        deadline = None
        if timeout is not None and timeout >= 0:
            deadline = session.scheduler.now_us() + session.board.local_to_virtual(
                int(float(timeout) * 1e6)
            )
        while self._locked:
            remaining = None
            if deadline is not None:
                remaining = deadline - session.scheduler.now_us()
                if remaining <= 0:
                    return False
            session.block(remaining, self._signal)
        self._locked = True
        return True

    def release(self):
        if not self._locked:
            raise RuntimeError("release unlocked lock")
        self._locked = False
        self._signal.fire(True)

    def locked(self):
        return self._locked

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


def make(session):
    from . import bind

    lock_class = bind(LockType, session, "lock")
    state = {"stack": 0, "next_ident": 0x3FFC4000}
    idents = {}

    def _ident_of(task):
        ident = idents.get(id(task))
        if ident is None:
            ident = idents[id(task)] = state["next_ident"]
            state["next_ident"] += 0x1A0
        return ident

    def _run(func, args, kwargs):
        try:
            func(*args, **kwargs)
        except SystemExit:
            pass
        except BoardHalt:
            raise
        except Exception as exc:
            text = format_exception(exc)
            name = getattr(func, "__name__", "?")
            session.console_write(
                "Unhandled exception in thread started by <function %s>\n%s" % (name, text)
            )
            session.board._record_crash("thread", text, exc)

    def start_new_thread(func, args, kwargs=None):
        session.check()
        if not isinstance(args, tuple):
            raise TypeError("expecting a tuple")
        task = session.spawn(_run, func, args, kwargs or {}, name="thread")
        return _ident_of(task)

    def allocate_lock():
        session.check()
        return lock_class()

    def get_ident():
        task = session.scheduler.current_task
        return _ident_of(task) if task is not None else 0

    def stack_size(*args):
        previous = state["stack"]
        if args:
            state["stack"] = int(args[0])
        return previous

    def exit():
        raise SystemExit

    return new_module(
        "_thread",
        {
            "start_new_thread": start_new_thread,
            "allocate_lock": allocate_lock,
            "get_ident": get_ident,
            "stack_size": stack_size,
            "exit": exit,
            "LockType": lock_class,
            "error": RuntimeError,
        },
    )
