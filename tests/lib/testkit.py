"""Helpers for lib tests that run unchanged under CPython (pytest) and MicroPython (node runner).

Only MicroPython-1.x-compatible syntax here and in tests/lib/test_*.py: no fixtures, no
parametrize, no f-strings.
"""

import json

try:
    from binascii import hexlify as _hexlify
    from binascii import unhexlify
except ImportError:  # pragma: no cover
    from ubinascii import hexlify as _hexlify
    from ubinascii import unhexlify

# The MicroPython runner overrides this with the path it copied the vectors to.
VECTORS_PATH = None


def _vectors_path():
    if VECTORS_PATH:
        return VECTORS_PATH
    here = __file__.rsplit("/", 1)[0]
    return here + "/../vectors/lorawan.json"


_cache = {}


def vectors(section):
    """A section of tests/vectors/lorawan.json (published LoRaWAN / AES-CMAC vectors)."""
    if not _cache:
        with open(_vectors_path()) as f:
            _cache.update(json.load(f))
    return _cache[section]


def h(text):
    """bytes from a hex string."""
    return unhexlify(text)


def hx(data):
    """lowercase hex string from bytes."""
    return _hexlify(bytes(data)).decode()


def raises(exc_type, func, *args, **kwargs):
    """Assert that func(*args, **kwargs) raises exc_type; return the exception."""
    try:
        func(*args, **kwargs)
    except exc_type as exc:
        return exc
    raise AssertionError(
        "%s not raised by %s" % (exc_type.__name__, getattr(func, "__name__", func))
    )
