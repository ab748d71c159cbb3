"""A small logger for device code that never prints a registered secret.

    import oelog
    log = oelog.get("join")
    oelog.configure(level="info")            # or oelog.INFO; e.g. from devconfig's log_level
    oelog.add_secret(app_key)                # bytes: hidden as upper/lower hex and as b'...'
    log.info("joined, DevAddr %08x", addr)   # formatted only when INFO is enabled

Lines look like "I join: joined, DevAddr 26011234" and go to print, or to sink(level, line)
when a sink is configured. Every registered secret is replaced by '***' in the final line
(format string, arguments and exception text alike). Logging never raises: a bad format or a
failing sink cannot kill the caller (a callback that raises kills Pycom's IRQ thread).
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


try:
    from ubinascii import hexlify
except ImportError:
    from binascii import hexlify

DEBUG = const(10)
INFO = const(20)
WARNING = const(30)
ERROR = const(40)
OFF = const(100)

_NAMES = {"debug": DEBUG, "info": INFO, "warning": WARNING, "error": ERROR, "off": OFF}
_LETTERS = {DEBUG: "D", INFO: "I", WARNING: "W", ERROR: "E"}
MASK = "***"
MIN_SECRET_LEN = 4

_state = {"level": INFO, "sink": None}
_secrets = []
_loggers = {}


def level_of(level):
    """An int level from an int or a name ('debug', 'INFO', ...); ValueError if unknown."""
    if type(level) is int:
        return level
    if type(level) is str and level.lower() in _NAMES:
        return _NAMES[level.lower()]
    raise ValueError("log_level: expected debug, info, warning, error or off")


def configure(level=None, sink=None):
    """Set the global level (int or name) and/or the sink (callable(level, line))."""
    if level is not None:
        _state["level"] = level_of(level)
    if sink is not None:
        _state["sink"] = sink


def reset():
    """Back to the defaults: level INFO, print, no secrets (tests use this)."""
    _state["level"] = INFO
    _state["sink"] = None
    while _secrets:
        _secrets.pop()


def enabled(level):
    return level >= _state["level"]


def add_secret(value):
    """Register a secret (str, bytes or bytearray); values shorter than 4 characters are ignored
    (masking them would garble every line)."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value)
        lower = hexlify(value).decode()
        forms = (lower, lower.upper(), repr(value)[2:-1])
    elif isinstance(value, str):
        forms = (value,)
    else:
        return
    for form in forms:
        if len(form) >= MIN_SECRET_LEN and form not in _secrets:
            _secrets.append(form)
    # Longest first, so a secret that contains another is masked whole.
    _secrets.sort(key=len, reverse=True)


def redact(text):
    """text with every registered secret replaced by '***'."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _emit(level, name, fmt, args, suffix=None):
    try:
        if args:
            try:
                msg = fmt % args
            except Exception:
                try:
                    msg = "%s %r (bad log format)" % (fmt, args)
                except Exception:
                    msg = "%s (bad log format)" % fmt
        else:
            msg = fmt
        if suffix is not None:
            msg = "%s: %s" % (msg, suffix)
        line = redact("%s %s: %s" % (_LETTERS.get(level, "?"), name, msg))
        sink = _state["sink"]
        if sink is None:
            print(line)
        else:
            sink(level, line)
    except Exception:
        pass


class Logger:
    """A named logger; the level, sink and secrets are shared by all loggers."""

    def __init__(self, name):
        self.name = name

    def log(self, level, fmt, *args):
        if level >= _state["level"]:
            _emit(level, self.name, fmt, args)

    def debug(self, fmt, *args):
        if DEBUG >= _state["level"]:
            _emit(DEBUG, self.name, fmt, args)

    def info(self, fmt, *args):
        if INFO >= _state["level"]:
            _emit(INFO, self.name, fmt, args)

    def warning(self, fmt, *args):
        if WARNING >= _state["level"]:
            _emit(WARNING, self.name, fmt, args)

    def error(self, fmt, *args):
        if ERROR >= _state["level"]:
            _emit(ERROR, self.name, fmt, args)

    def exc(self, exc, fmt, *args):
        """ERROR line: the message, then the exception's type and text (no traceback)."""
        if ERROR >= _state["level"]:
            try:
                suffix = "%s: %s" % (type(exc).__name__, exc)
            except Exception:
                suffix = "?"
            _emit(ERROR, self.name, fmt, args, suffix)


def get(name):
    """The logger for `name` (one per name)."""
    logger = _loggers.get(name)
    if logger is None:
        logger = Logger(name)
        _loggers[name] = logger
    return logger
