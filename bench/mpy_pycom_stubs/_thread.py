"""Pycom's _thread for the bench: locks work; start_new_thread refuses (neither image starts a
thread, and the bench runs one deterministic thread)."""

_ident = 1


class _Lock:
    def __init__(self):
        self._held = False

    def acquire(self, waitflag=1, timeout=-1):
        if self._held and not waitflag:
            return False
        self._held = True
        return True

    def release(self):
        if not self._held:
            raise RuntimeError("release unlocked lock")
        self._held = False

    def locked(self):
        return self._held

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *args):
        self.release()


def allocate_lock():
    return _Lock()


def get_ident():
    return _ident


def stack_size(size=None):
    return 5120


def start_new_thread(function, args, kwargs=None):
    raise NotImplementedError("bench: threads are not emulated")
