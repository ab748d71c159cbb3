"""`uos` / `os` of a simulated Pycom board, over the board's virtual flash directory.

The file system behaves like LittleFS (Pycom's power-safe option): rename() replaces an existing
target atomically, so "write a temp file, then rename" is either old or new after a power cut.
Directory listings are sorted (deterministic); stat() times are 0.
"""

import collections
import errno
import os

from ..board import oserror, unsupported
from . import new_module

FLASH_KB = {"LoPy4": 4096, "LoPy": 504}

UnameResult = collections.namedtuple(
    "uname_result", "sysname nodename release version machine lorawan sigfox pybytes"
)


def _host_errors(func):
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except OSError as exc:
            if (
                exc.errno is None
                or len(exc.args) == 2
                and exc.args[1] == errno.errorcode.get(exc.errno)
            ):
                raise
            raise oserror(exc.errno) from None

    wrapper.__name__ = func.__name__
    return wrapper


def make(session):
    board = session.board

    def host(path):
        return board.host_path(path, session.cwd)

    def _norm(path):
        path = str(path)
        if not path.startswith("/"):
            path = session.cwd.rstrip("/") + "/" + path
        return path

    @_host_errors
    def listdir(path=None):
        session.check()
        if path in (None, ""):
            path = session.cwd
        if _norm(path).rstrip("/") in ("", "/"):
            return ["flash"]
        return sorted(os.listdir(host(path)))

    @_host_errors
    def ilistdir(path=None):
        names = listdir(path)
        base = session.cwd if path in (None, "") else path
        for name in names:
            if not base.rstrip("/"):
                yield (name, 0x4000, 0, 0)  # the root holds only mount points (/flash)
                continue
            full = host(base.rstrip("/") + "/" + name)
            kind = 0x4000 if os.path.isdir(full) else 0x8000
            yield (name, kind, 0, os.path.getsize(full) if kind == 0x8000 else 0)

    @_host_errors
    def mkdir(path):
        session.check()
        session.fs_changed()
        os.mkdir(host(path))

    @_host_errors
    def rmdir(path):
        session.check()
        session.fs_changed()
        os.rmdir(host(path))

    @_host_errors
    def remove(path):
        session.check()
        session.fs_changed()
        target = host(path)
        if os.path.isdir(target):
            raise oserror(errno.EISDIR)
        os.remove(target)

    @_host_errors
    def rename(old, new):
        session.check()
        session.fs_changed()
        source = host(old)
        if not os.path.exists(source):
            raise oserror(errno.ENOENT)
        os.replace(source, host(new))

    @_host_errors
    def stat(path):
        session.check()
        if _norm(path).rstrip("/") in ("", "/"):
            return (0x4000, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        target = host(path)
        if os.path.isdir(target):
            return (0x4000, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        return (0x8000, 0, 0, 0, 0, 0, os.path.getsize(target), 0, 0, 0)

    def _used_kb():
        total = 0
        for root, _dirs, files in os.walk(board.flash_dir):
            for name in files:
                total += os.path.getsize(os.path.join(root, name))
        return (total + 1023) // 1024

    def _capacity_kb():
        return FLASH_KB.get(board.model, 4096)

    @_host_errors
    def statvfs(path):
        session.check()
        host(path)
        blocks = _capacity_kb() // 4
        free = max(0, blocks - (_used_kb() + 3) // 4)
        return (4096, 4096, blocks, free, free, 0, 0, 0, 0, 255)

    @_host_errors
    def getfree(path):
        session.check()
        host(path)
        return max(0, _capacity_kb() - _used_kb())

    def getcwd():
        return session.cwd

    @_host_errors
    def chdir(path):
        session.check()
        target = host(path)
        if not os.path.isdir(target):
            raise oserror(errno.ENOENT)
        full = _norm(path)
        parts = []
        for part in full.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(part)
        session.cwd = "/" + "/".join(parts)

    def sync():
        session.check()

    def uname():
        model = board.model
        return UnameResult(
            model,
            model,
            "1.20.2.r4",
            "v1.11-06dfad0 on 2021-01-12",
            "%s with ESP32" % model,
            "1.0.2",
            "1.0.1",
            "1.6.1",
        )

    def urandom(n):
        session.check()
        return session.rng.randbytes(int(n))

    def dupterm(*args):
        if args and args[0] is None:
            return None
        raise unsupported("uos.dupterm()")

    def _unsupported(name):
        def function(*args, **kwargs):
            raise unsupported("uos.%s()" % name)

        function.__name__ = name
        return function

    attrs = {
        "listdir": listdir,
        "ilistdir": ilistdir,
        "mkdir": mkdir,
        "rmdir": rmdir,
        "remove": remove,
        "unlink": remove,
        "rename": rename,
        "stat": stat,
        "statvfs": statvfs,
        "getfree": getfree,
        "getcwd": getcwd,
        "chdir": chdir,
        "sync": sync,
        "uname": uname,
        "urandom": urandom,
        "dupterm": dupterm,
        "sep": "/",
    }
    for name in ("mount", "umount", "fsformat", "mkfat", "VfsFat", "VfsLittleFs"):
        attrs[name] = _unsupported(name)
    return new_module("uos", attrs)
