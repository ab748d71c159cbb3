"""The Pycom firmware modules as the simulator provides them, one instance per board run.

Each family module here has `make(session)` returning a fresh module object bound to that
board run (so no state leaks between boards or across reboots). Classes are bound per run by
subclassing (`bind`), lazily on first attribute access, which keeps a reboot cheap.

Import resolution follows MicroPython 1.11: built-in names first, then files on sys.path, then
the weak links (`import json` finds `ujson` unless a json.py is on the flash).
"""

import importlib
import types

from ..board import unsupported

# canonical module name -> (module in this package, factory name)
_FACTORIES = {
    "machine": ("machine", "make"),
    "pycom": ("pycom_mod", "make"),
    "network": ("network_wlan", "make"),
    "usocket": ("socket_mod", "make"),
    "uselect": ("socket_mod", "make_select"),
    "utime": ("utime", "make"),
    "uos": ("uos", "make"),
    "crypto": ("crypto", "make"),
    "micropython": ("micropython", "make"),
    "_thread": ("thread", "make"),
    "gc": ("stdlib", "make_gc"),
    "sys": ("stdlib", "make_sys"),
    "ujson": ("stdlib", "make_ujson"),
    "ustruct": ("stdlib", "make_ustruct"),
    "ubinascii": ("stdlib", "make_ubinascii"),
    "uerrno": ("stdlib", "make_uerrno"),
    "ucollections": ("stdlib", "make_ucollections"),
    "ure": ("stdlib", "make_ure"),
    "uhashlib": ("stdlib", "make_uhashlib"),
    "urandom": ("stdlib", "make_urandom"),
    "uio": ("stdlib", "make_uio"),
    "uheapq": ("stdlib", "make_uheapq"),
    "math": ("stdlib", "make_math"),
    "cmath": ("stdlib", "make_cmath"),
    "array": ("stdlib", "make_array"),
}

# other built-in names for the same module
_ALIASES = {"umachine": "machine", "ucrypto": "crypto"}

# MicroPython weak links: used only when no file of that name is on sys.path
_WEAK_LINKS = {
    "json": "ujson",
    "struct": "ustruct",
    "binascii": "ubinascii",
    "errno": "uerrno",
    "collections": "ucollections",
    "re": "ure",
    "hashlib": "uhashlib",
    "random": "urandom",
    "io": "uio",
    "heapq": "uheapq",
    "time": "utime",
    "os": "uos",
    "socket": "usocket",
    "select": "uselect",
}


def builtin_name(name):
    """Canonical name of a built-in (non-weak) module, or None."""
    if name in _FACTORIES:
        return name
    return _ALIASES.get(name)


def weak_link(name):
    return _WEAK_LINKS.get(name)


_MAKERS = {}


def create(canonical, session):
    maker = _MAKERS.get(canonical)
    if maker is None:
        module_name, factory = _FACTORIES[canonical]
        family = importlib.import_module("%s.%s" % (__name__, module_name))
        maker = _MAKERS[canonical] = getattr(family, factory)
    return maker(session)


def new_module(name, attrs=None, lazy=None, doc=None):
    """A module object; lazy maps attribute names to zero-argument makers run on first access."""
    module = types.ModuleType(name, doc)
    if attrs:
        module.__dict__.update(attrs)
    if lazy:
        namespace = module.__dict__

        def __getattr__(attr):
            maker = lazy.get(attr)
            if maker is None:
                raise AttributeError("module '%s' has no attribute '%s'" % (name, attr))
            value = maker()
            namespace[attr] = value
            return value

        namespace["__getattr__"] = __getattr__
    return module


def bind(cls, session, name=None):
    """A per-run subclass of cls carrying the session as `_s` (monkeypatching stays per board)."""
    return type(name or cls.__name__, (cls,), {"_s": session, "__module__": cls.__module__})


def unsupported_class(qualname):
    """A class whose construction fails loudly (Pycom has it, the simulator does not)."""

    class Unsupported:
        def __init__(self, *args, **kwargs):
            raise unsupported(qualname)

    Unsupported.__name__ = qualname.rpartition(".")[2]
    Unsupported.__qualname__ = Unsupported.__name__
    return Unsupported


def unsupported_function(qualname):
    """A function that fails loudly, naming itself."""

    def function(*args, **kwargs):
        raise unsupported(qualname + "()")

    function.__name__ = qualname.rpartition(".")[2]
    return function
