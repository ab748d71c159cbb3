"""MicroPython 1.11 standard modules of a simulated board, as host equivalents or small shims.

Each shim exposes what the MicroPython module has (not the richer CPython API), so firmware that
leans on a CPython-only feature fails here as it would on the board: uhashlib objects have no
hexdigest(), ucollections.deque only append/popleft, ujson.dumps takes no keyword arguments,
ure rejects (?...) groups and {m,n} repetitions ("Error in regex").
"""

import array as _array
import binascii as _binascii
import cmath as _cmath
import collections as _collections
import errno as _errno
import hashlib as _hashlib
import heapq as _heapq
import io as _io
import json as _json
import math as _math
import re as _re
import struct as _struct

from ..board import format_exception, unsupported
from . import new_module

HEAP_BYTES = {"LoPy4": 2_561_344, "LoPy": 112_000}
MAXSIZE = 2_147_483_647


# -- sys ----------------------------------------------------------------------------------------
class _Implementation(tuple):
    __slots__ = ()

    def __new__(cls):
        return tuple.__new__(cls, ("micropython", (1, 11, 0)))

    name = property(lambda self: self[0])
    version = property(lambda self: self[1])


class _Stdin:
    def read(self, *args):
        raise unsupported("sys.stdin (no REPL input on a simulated board)")

    readline = read


def make_sys(session):
    board = session.board

    def print_exception(exc, file=None):
        text = format_exception(exc)
        (file or session.stdout).write(text)

    def exit(code=None):
        raise SystemExit(code)

    return new_module(
        "sys",
        {
            "path": session.sys_path,
            "modules": session.modules,
            "argv": [],
            "platform": board.model,
            "implementation": _Implementation(),
            "version": "3.4.0",
            "version_info": (3, 4, 0),
            "byteorder": "little",
            "maxsize": MAXSIZE,
            "stdout": session.stdout,
            "stderr": session.stdout,
            "stdin": _Stdin(),
            "print_exception": print_exception,
            "exit": exit,
        },
    )


# -- gc -----------------------------------------------------------------------------------------
def make_gc(session):
    heap = HEAP_BYTES.get(session.board.model, HEAP_BYTES["LoPy4"])
    state = {"enabled": True, "threshold": -1, "collected": 0}

    def mem_alloc():
        base = 9_000 + 2_400 * len(session.modules) + 64 * len(session.tasks)
        return min(heap - 1024, base)

    def mem_free():
        return heap - mem_alloc()

    def collect():
        session.check()
        state["collected"] += 1
        return None

    def enable():
        state["enabled"] = True

    def disable():
        state["enabled"] = False

    def isenabled():
        return state["enabled"]

    def threshold(*args):
        if args:
            state["threshold"] = int(args[0])
            return None
        return state["threshold"]

    return new_module(
        "gc",
        {
            "collect": collect,
            "mem_alloc": mem_alloc,
            "mem_free": mem_free,
            "enable": enable,
            "disable": disable,
            "isenabled": isenabled,
            "threshold": threshold,
        },
    )


# -- ujson, ustruct, ubinascii ------------------------------------------------------------------
def make_ujson(session):
    def dumps(obj):
        return _json.dumps(obj)

    def loads(text):
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        return _json.loads(text)

    def dump(obj, stream):
        stream.write(dumps(obj))

    def load(stream):
        return loads(stream.read())

    return new_module("ujson", {"dumps": dumps, "loads": loads, "dump": dump, "load": load})


def make_ustruct(session):
    return new_module(
        "ustruct",
        {
            name: getattr(_struct, name)
            for name in ("pack", "pack_into", "unpack", "unpack_from", "calcsize")
        },
    )


def make_ubinascii(session):
    def hexlify(data, sep=None):
        data = bytes(data)
        if sep is None:
            return _binascii.hexlify(data)
        if isinstance(sep, str):
            sep = sep.encode()
        return bytes(sep).join(b"%02x" % b for b in data)

    def unhexlify(data):
        return _binascii.unhexlify(data)

    def a2b_base64(data):
        return _binascii.a2b_base64(data)

    def b2a_base64(data):
        return _binascii.b2a_base64(bytes(data))

    def crc32(data, value=0):
        return _binascii.crc32(bytes(data), value)

    return new_module(
        "ubinascii",
        {
            "hexlify": hexlify,
            "unhexlify": unhexlify,
            "a2b_base64": a2b_base64,
            "b2a_base64": b2a_base64,
            "crc32": crc32,
        },
    )


# -- uerrno -------------------------------------------------------------------------------------
_ERRNO_NAMES = (
    "EPERM ENOENT EIO EBADF EAGAIN ENOMEM EACCES EEXIST ENODEV EISDIR EINVAL EOPNOTSUPP EADDRINUSE"
    " ECONNABORTED ECONNRESET ENOBUFS ENOTCONN ETIMEDOUT ECONNREFUSED EHOSTUNREACH EALREADY"
    " EINPROGRESS ENFILE EMSGSIZE ENOTEMPTY EAFNOSUPPORT ENETDOWN"
).split()


def make_uerrno(session):
    attrs = {name: getattr(_errno, name) for name in _ERRNO_NAMES}
    attrs["errorcode"] = {code: name for name, code in attrs.items()}
    return new_module("uerrno", attrs)


# -- ucollections -------------------------------------------------------------------------------
class deque:  # noqa: N801 - the MicroPython name
    """ucollections.deque(iterable, maxlen[, flags]): iterable must be empty; append/popleft."""

    def __init__(self, iterable, maxlen, flags=0):
        if tuple(iterable):
            raise ValueError("iterable must be empty")
        self._items = _collections.deque()
        self._maxlen = int(maxlen)
        self._flags = flags

    def append(self, item):
        if len(self._items) >= self._maxlen:
            if self._flags & 1:
                raise IndexError("full")
            self._items.popleft()
        self._items.append(item)

    def popleft(self):
        if not self._items:
            raise IndexError("empty")
        return self._items.popleft()

    def __len__(self):
        return len(self._items)

    def __bool__(self):
        return bool(self._items)


def make_ucollections(session):
    return new_module(
        "ucollections",
        {
            "namedtuple": _collections.namedtuple,
            "OrderedDict": _collections.OrderedDict,
            "deque": deque,
        },
    )


# -- ure ----------------------------------------------------------------------------------------
_UNSUPPORTED_RE = _re.compile(r"\(\?|(?<!\\)\{\d*,?\d*\}")


def _check_regex(pattern):
    text = pattern.decode("latin-1") if isinstance(pattern, (bytes, bytearray)) else pattern
    if _UNSUPPORTED_RE.search(text):
        raise ValueError("Error in regex")


def make_ure(session):
    def compile(pattern, flags=0):
        _check_regex(pattern)
        return _re.compile(pattern, flags)

    def match(pattern, string):
        return compile(pattern).match(string)

    def search(pattern, string):
        return compile(pattern).search(string)

    def sub(pattern, repl, string, count=0, flags=0):
        return compile(pattern, flags).sub(repl, string, count)

    return new_module(
        "ure", {"compile": compile, "match": match, "search": search, "sub": sub, "DEBUG": 0x1000}
    )


# -- uhashlib -----------------------------------------------------------------------------------
class _Hash:
    def __init__(self, name, data=None):
        self._h = _hashlib.new(name)
        if data is not None:
            self._h.update(bytes(data))

    def update(self, data):
        self._h.update(bytes(data))

    def digest(self):
        return self._h.digest()


def make_uhashlib(session):
    attrs = {}
    for name in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512"):
        attrs[name] = (lambda n: lambda data=None: _Hash(n, data))(name)
    return new_module("uhashlib", attrs)


# -- urandom ------------------------------------------------------------------------------------
def make_urandom(session):
    rng = session.rng

    def getrandbits(n):
        if not 0 < n <= 32:
            raise ValueError("bits must be 32 or less")
        return rng.getrandbits(n)

    def seed(n):
        rng.seed(n)

    def randrange(start, stop=None, step=1):
        return rng.randrange(start, stop, step)

    def randint(a, b):
        return rng.randint(a, b)

    def choice(seq):
        return rng.choice(seq)

    def random():
        return rng.random()

    def uniform(a, b):
        return rng.uniform(a, b)

    return new_module(
        "urandom",
        {
            "getrandbits": getrandbits,
            "seed": seed,
            "randrange": randrange,
            "randint": randint,
            "choice": choice,
            "random": random,
            "uniform": uniform,
        },
    )


# -- uio, uheapq, math, cmath, array ------------------------------------------------------------
def make_uio(session):
    return new_module(
        "uio",
        {"BytesIO": _io.BytesIO, "StringIO": _io.StringIO, "open": session.open_file},
    )


def make_uheapq(session):
    return new_module(
        "uheapq",
        {"heappush": _heapq.heappush, "heappop": _heapq.heappop, "heapify": _heapq.heapify},
    )


_MATH_NAMES = (
    "e pi inf nan sqrt pow exp expm1 log log2 log10 log1p cos sin tan acos asin atan atan2 cosh"
    " sinh tanh acosh asinh atanh ceil floor trunc fabs fmod copysign frexp ldexp modf isfinite"
    " isinf isnan radians degrees erf erfc gamma lgamma"
).split()


def make_math(session):
    return new_module("math", {name: getattr(_math, name) for name in _MATH_NAMES})


def make_cmath(session):
    names = "e pi phase polar rect exp log log10 sqrt cos sin".split()
    return new_module("cmath", {name: getattr(_cmath, name) for name in names})


def make_array(session):
    return new_module("array", {"array": _array.array})
