"""Device configuration schema for both images (sensor, nanogateway), validated the same way on
the host (from TOML) and on the board (from JSON in /flash/config.json).

validate(dict) -> Config: defaults filled in, unknown keys rejected, every error a ConfigError
whose one-line message starts with the field name. In the file, EUIs and keys are hex strings;
after validation they are bytes (dev_eui, join_eui, gateway_eui: 8 bytes; app_key: 16 bytes).
Frequencies are integer Hz. Secret values (app_key, wifi_password) never appear in a message,
and Config's repr shows them as '***'.

Pins (LoPy pinout, ARCHITECTURE §11): inputs take 'P0'..'P23' except P0/P1 (UART0: REPL and
flashing), P2 (RGB LED data, boot strap), P5-P7 (LoRa radio SPI) and P12 (boot strap: high at
reset selects safe boot). P13-P18 are input-only without internal pull resistors, so an S0 input
there needs pull = "none" and an external resistor. With deep_sleep, S0 pins must be able to wake
the board: P2, P3, P4, P6, P8-P10, P13-P23.
"""

try:
    import ujson as json
except ImportError:
    import json

try:
    from ubinascii import hexlify, unhexlify
except ImportError:
    from binascii import hexlify, unhexlify

from errors import ConfigError

DEVICE_PATH = "/flash/config.json"
REDACTED = "***"
SECRET_KEYS = ("app_key", "wifi_password")

IMAGES = ("sensor", "nanogateway")
LOG_LEVELS = ("debug", "info", "warning", "error")
REGIONS = ("EU868",)
CONFIRMED_POLICIES = ("never", "alarms", "always")
PULLS = ("up", "down", "none")
TIC_MODES = ("historique", "standard", "auto")
CODING_RATES = ("4/5", "4/6", "4/7", "4/8")
BANDWIDTHS_KHZ = (125, 250, 500)

FREQ_MIN_HZ = 863000000
FREQ_MAX_HZ = 870000000
REPORT_INTERVAL_MIN_S = 60
REPORT_INTERVAL_MAX_S = 65535
MAX_S0_CHANNELS = 2
DEBOUNCE_MIN_MS = 30

_RESERVED_PINS = {
    "P0": "UART0 (REPL, flashing)",
    "P1": "UART0 (REPL, flashing)",
    "P2": "the RGB LED and a boot strap",
    "P5": "the LoRa radio (SPI)",
    "P6": "the LoRa radio (SPI)",
    "P7": "the LoRa radio (SPI)",
    "P12": "a boot strap (high at reset selects safe boot)",
}
_INPUT_ONLY_PINS = ("P13", "P14", "P15", "P16", "P17", "P18")
_WAKE_PINS = ("P2", "P3", "P4", "P6", "P8", "P9", "P10") + tuple("P%d" % n for n in range(13, 24))
_UART_RX_DEFAULT = {1: "P4", 2: "P9"}

_COMMON_KEYS = ("image", "log_level", "region", "led")
_SENSOR_KEYS = _COMMON_KEYS + (
    "dev_eui",
    "join_eui",
    "app_key",
    "single_channel",
    "frequency_hz",
    "sf",
    "dr",
    "adr",
    "confirmed",
    "report_interval_s",
    "history",
    "deep_sleep",
    "low_battery_mv",
    "s0",
    "tic",
)
_S0_KEYS = ("pin", "pulses_per_kwh", "debounce_ms", "pull", "flow_high", "no_pulse_h", "leak_h")
_TIC_KEYS = ("uart", "pin", "mode")
_GATEWAY_KEYS = _COMMON_KEYS + (
    "server_host",
    "server_port",
    "gateway_eui",
    "frequency_hz",
    "sf",
    "bw_khz",
    "coding_rate",
    "tx_power_max_dbm",
    "wifi_ssid",
    "wifi_password",
    "ntp_server",
    "keepalive_s",
    "stat_interval_s",
    "tx_start_latency_us",
    "latitude",
    "longitude",
    "altitude_m",
)


def _fail(field, text):
    raise ConfigError("%s: %s" % (field, text))


def _show(value):
    """A short one-line rendering of a (non-secret) value for an error message."""
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return text


def _key_name(key):
    """A key as it can appear in a one-line message: plain names as they are, others quoted."""
    if type(key) is str and 0 < len(key) <= 40:
        for ch in key:
            if not (ch.isalpha() or ch.isdigit() or ch in "_-") or ord(ch) > 0x7E:
                return _show(key)
        return key
    return _show(key)


def _type_name(value):
    if value is None:
        return "nothing"
    return type(value).__name__


def is_secret(key):
    """True for keys whose values are never shown: app_key, wifi_password, any *_key/password/secret."""
    if type(key) is not str:
        return False
    return key in SECRET_KEYS or key.endswith("_key") or "password" in key or "secret" in key


def _int(field, value, lo, hi):
    if type(value) is not int:
        _fail(field, "expected an integer %d..%d, got %s" % (lo, hi, _show(value)))
    if value < lo or value > hi:
        _fail(field, "expected an integer %d..%d, got %d" % (lo, hi, value))
    return value


def _bool(field, value):
    if value is not True and value is not False:
        _fail(field, "expected true or false, got %s" % _show(value))
    return value


def _choice(field, value, choices):
    if type(value) is not str or value not in choices:
        _fail(
            field,
            "expected one of %s, got %s" % (", ".join('"%s"' % c for c in choices), _show(value)),
        )
    return value


def _number(field, value, lo, hi):
    if type(value) is not int and type(value) is not float:
        _fail(field, "expected a number %s..%s, got %s" % (lo, hi, _show(value)))
    if not (lo <= value <= hi):  # also rejects NaN
        _fail(field, "expected a number %s..%s, got %s" % (lo, hi, _show(value)))
    return float(value)


def _hex(field, value, digits):
    if value is None:
        _fail(field, "missing (%d hex digits)" % digits)
    if type(value) is bytes and len(value) * 2 == digits:
        return value
    if type(value) is not str:
        _fail(field, "expected %d hex digits in a string, got %s" % (digits, _type_name(value)))
    if len(value) != digits:
        _fail(field, "expected %d hex digits, got %d characters" % (digits, len(value)))
    for i in range(digits):
        if value[i] not in "0123456789abcdefABCDEF":
            _fail(
                field,
                "expected %d hex digits, got a non-hex character at position %d" % (digits, i + 1),
            )
    return unhexlify(value)


def _text(field, value, lo, hi, secret=False):
    if type(value) is not str:
        _fail(field, "expected a string, got %s" % _type_name(value))
    try:
        size = len(value.encode())
    except UnicodeError:
        _fail(field, "expected text, got a string that is not valid Unicode")
    if size < lo or size > hi:
        _fail(field, "expected %d..%d bytes, got %d" % (lo, hi, size))
    if not secret:
        for ch in value:
            if ord(ch) < 0x20 or ord(ch) == 0x7F:
                _fail(field, "control characters are not allowed")
    return value


def _host(field, value):
    _text(field, value, 1, 253)
    for ch in value:
        if not (ch.isalpha() or ch.isdigit() or ch in ".-:_") or ord(ch) > 0x7E:
            _fail(field, "expected a host name or IP address, got %s" % _show(value))
    return value


def _pin(field, value):
    if type(value) is not str:
        _fail(field, "expected a pin name 'P0'..'P23', got %s" % _show(value))
    name = value.upper()
    number = name[1:]
    if not (
        len(name) in (2, 3)
        and name[0] == "P"
        and number.isdigit()
        and str(int(number)) == number
        and int(number) <= 23
    ):
        _fail(field, "expected a pin name 'P0'..'P23', got %s" % _show(value))
    if name in _RESERVED_PINS:
        _fail(field, "%s is used by %s" % (name, _RESERVED_PINS[name]))
    return name


def _table(field, value, allowed, context):
    if not isinstance(value, dict):
        _fail(field or "config", "expected a table of keys, got %s" % _type_name(value))
    for key in value:
        if type(key) is not str or key not in allowed:
            _fail((field + "." if field else "") + _key_name(key), "unknown key %s" % context)
    return value


def _take(d, key, default):
    value = d.get(key, default)
    return default if value is None else value


def _s0(field, raw, deep_sleep):
    _table(field, raw, _S0_KEYS, "for an s0 input")
    if "pin" not in raw:
        _fail(field + ".pin", 'missing (e.g. "P13")')
    pin = _pin(field + ".pin", raw["pin"])
    pull = _choice(
        field + ".pull", _take(raw, "pull", "none" if pin in _INPUT_ONLY_PINS else "up"), PULLS
    )
    if pull != "none" and pin in _INPUT_ONLY_PINS:
        _fail(
            field + ".pull",
            '%s is input-only without internal pull resistors: use "none" and an external resistor'
            % pin,
        )
    if deep_sleep and pin not in _WAKE_PINS:
        _fail(
            field + ".pin",
            "%s cannot wake the board from deep sleep (wake pins: P2-P4, P6, P8-P10, P13-P23)"
            % pin,
        )
    return {
        "pin": pin,
        "pulses_per_kwh": _int(
            field + ".pulses_per_kwh", _take(raw, "pulses_per_kwh", 1000), 1, 100000
        ),
        "debounce_ms": _int(
            field + ".debounce_ms",
            _take(raw, "debounce_ms", DEBOUNCE_MIN_MS),
            DEBOUNCE_MIN_MS,
            1000,
        ),
        "pull": pull,
        "flow_high": _int(field + ".flow_high", _take(raw, "flow_high", 0), 0, 65535),
        "no_pulse_h": _int(field + ".no_pulse_h", _take(raw, "no_pulse_h", 0), 0, 65535),
        "leak_h": _int(field + ".leak_h", _take(raw, "leak_h", 0), 0, 65535),
    }


def _tic(raw):
    _table("tic", raw, _TIC_KEYS, "for tic")
    uart = _int("tic.uart", _take(raw, "uart", 1), 1, 2)
    return {
        "uart": uart,
        "pin": _pin("tic.pin", _take(raw, "pin", _UART_RX_DEFAULT[uart])),
        "mode": _choice("tic.mode", _take(raw, "mode", "auto"), TIC_MODES),
    }


def _sf_dr(raw, default_sf):
    sf = raw.get("sf")
    dr = raw.get("dr")
    if sf is not None:
        _int("sf", sf, 7, 12)
    if dr is not None:
        _int("dr", dr, 0, 5)
    if sf is None and dr is None:
        sf = default_sf
    if sf is None:
        sf = 12 - dr
    if dr is None:
        dr = 12 - sf
    if dr != 12 - sf:
        _fail("dr", "DR%d is not SF%d at 125 kHz (DR = 12 - SF): give one of sf, dr" % (dr, sf))
    return sf, dr


def _frequency(field, value):
    if type(value) is float:
        _fail(field, "expected an integer number of Hz (e.g. 868100000), got a float")
    return _int(field, value, FREQ_MIN_HZ, FREQ_MAX_HZ)


def _validate_sensor(raw, out):
    out["dev_eui"] = _hex("dev_eui", raw.get("dev_eui"), 16)
    out["join_eui"] = _hex("join_eui", _take(raw, "join_eui", "0000000000000000"), 16)
    out["app_key"] = _hex("app_key", raw.get("app_key"), 32)
    single = _bool("single_channel", _take(raw, "single_channel", False))
    out["single_channel"] = single
    if single:
        if raw.get("frequency_hz") is None:
            _fail(
                "frequency_hz", "required with single_channel = true (the nano gateway's frequency)"
            )
        out["frequency_hz"] = _frequency("frequency_hz", raw["frequency_hz"])
    else:
        if raw.get("frequency_hz") is not None:
            _fail(
                "frequency_hz",
                "only with single_channel = true (otherwise the region's default channels)",
            )
        out["frequency_hz"] = None
    out["sf"], out["dr"] = _sf_dr(raw, 7)
    adr = _bool("adr", _take(raw, "adr", not single))
    if single and adr:
        _fail("adr", "must be false with single_channel = true (ADR would leave the gateway's SF)")
    out["adr"] = adr
    out["confirmed"] = _choice("confirmed", _take(raw, "confirmed", "alarms"), CONFIRMED_POLICIES)
    out["report_interval_s"] = _int(
        "report_interval_s",
        _take(raw, "report_interval_s", 900),
        REPORT_INTERVAL_MIN_S,
        REPORT_INTERVAL_MAX_S,
    )
    out["history"] = _int("history", _take(raw, "history", 4), 0, 255)
    deep_sleep = _bool("deep_sleep", _take(raw, "deep_sleep", False))
    out["deep_sleep"] = deep_sleep
    out["low_battery_mv"] = _int("low_battery_mv", _take(raw, "low_battery_mv", 0), 0, 5000)
    s0 = _take(raw, "s0", [])
    if not isinstance(s0, (list, tuple)):
        _fail("s0", "expected a list of inputs ([[s0]] tables), got %s" % _type_name(s0))
    if len(s0) > MAX_S0_CHANNELS:
        _fail("s0", "expected at most %d inputs, got %d" % (MAX_S0_CHANNELS, len(s0)))
    out["s0"] = [_s0("s0[%d]" % i, s0[i], deep_sleep) for i in range(len(s0))]
    tic = raw.get("tic")
    out["tic"] = None if tic is None else _tic(tic)
    if not out["s0"] and out["tic"] is None:
        _fail("s0", "a sensor needs at least one input: an [[s0]] table or a [tic] table")
    used = {}
    for i in range(len(out["s0"])):
        pin = out["s0"][i]["pin"]
        if pin in used:
            _fail("s0[%d].pin" % i, "%s is already used by %s" % (pin, used[pin]))
        used[pin] = "s0[%d]" % i
    if out["tic"] is not None and out["tic"]["pin"] in used:
        _fail("tic.pin", "%s is already used by %s" % (out["tic"]["pin"], used[out["tic"]["pin"]]))


def _validate_gateway(raw, out):
    if raw.get("server_host") is None:
        _fail("server_host", "missing (the ChirpStack gateway bridge's host name or IP)")
    out["server_host"] = _host("server_host", raw["server_host"])
    out["server_port"] = _int("server_port", _take(raw, "server_port", 1700), 1, 65535)
    eui = raw.get("gateway_eui")
    out["gateway_eui"] = None if eui is None else _hex("gateway_eui", eui, 16)
    out["frequency_hz"] = _frequency("frequency_hz", _take(raw, "frequency_hz", 868100000))
    out["sf"] = _int("sf", _take(raw, "sf", 7), 7, 12)
    bw = _take(raw, "bw_khz", 125)
    if type(bw) is not int or bw not in BANDWIDTHS_KHZ:
        _fail("bw_khz", "expected 125, 250 or 500, got %s" % _show(bw))
    out["bw_khz"] = bw
    out["coding_rate"] = _choice("coding_rate", _take(raw, "coding_rate", "4/5"), CODING_RATES)
    out["tx_power_max_dbm"] = _int("tx_power_max_dbm", _take(raw, "tx_power_max_dbm", 14), 2, 20)
    if raw.get("wifi_ssid") is None:
        _fail("wifi_ssid", "missing")
    out["wifi_ssid"] = _text("wifi_ssid", raw["wifi_ssid"], 1, 32)
    password = _take(raw, "wifi_password", "")
    _text("wifi_password", password, 0, 64, True)
    if 0 < len(password.encode()) < 8:
        _fail(
            "wifi_password",
            "expected 8..63 characters for WPA2 (or empty for an open network), got %d"
            % len(password),
        )
    out["wifi_password"] = password
    out["ntp_server"] = _host("ntp_server", _take(raw, "ntp_server", "pool.ntp.org"))
    out["keepalive_s"] = _int("keepalive_s", _take(raw, "keepalive_s", 5), 1, 10)
    out["stat_interval_s"] = _int("stat_interval_s", _take(raw, "stat_interval_s", 30), 10, 3600)
    out["tx_start_latency_us"] = _int(
        "tx_start_latency_us", _take(raw, "tx_start_latency_us", 0), 0, 100000
    )
    lat = raw.get("latitude")
    lon = raw.get("longitude")
    alt = raw.get("altitude_m")
    out["latitude"] = None if lat is None else _number("latitude", lat, -90, 90)
    out["longitude"] = None if lon is None else _number("longitude", lon, -180, 180)
    out["altitude_m"] = None if alt is None else _int("altitude_m", alt, -1000, 10000)


def validate(raw):
    """Validate a configuration dict (parsed TOML or JSON); returns a Config."""
    if isinstance(raw, Config):
        raw = raw.to_dict()
    if not isinstance(raw, dict):
        _fail("config", "expected a table of keys, got %s" % _type_name(raw))
    image = raw.get("image")
    if type(image) is not str or image not in IMAGES:
        _fail("image", 'expected "sensor" or "nanogateway", got %s' % _show(image))
    _table("", raw, _SENSOR_KEYS if image == "sensor" else _GATEWAY_KEYS, "for image %s" % image)
    level = _take(raw, "log_level", "info")
    if type(level) is str:
        level = level.lower()
    out = {
        "image": image,
        "log_level": _choice("log_level", level, LOG_LEVELS),
        "region": _choice("region", _take(raw, "region", "EU868"), REGIONS),
        "led": _bool("led", _take(raw, "led", True)),
    }
    if image == "sensor":
        _validate_sensor(raw, out)
    else:
        _validate_gateway(raw, out)
    return Config(out)


def _plain(value, hide):
    """A JSON-able copy: bytes as uppercase hex; secrets as '***' when hide."""
    if isinstance(value, dict):
        copy = {}
        for key in value:
            if hide and is_secret(key) and value[key] is not None:
                copy[key] = REDACTED
            else:
                copy[key] = _plain(value[key], hide)
        return copy
    if isinstance(value, list):
        return [_plain(v, hide) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return hexlify(value).decode().upper()
    return value


class Config:
    """A validated configuration: cfg["key"], cfg.get("key"), cfg.key; repr never shows secrets."""

    def __init__(self, values):
        self._values = values

    def __getitem__(self, key):
        return self._values[key]

    def __getattr__(self, name):
        if name == "_values":
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name)

    def __contains__(self, key):
        return key in self._values

    def __eq__(self, other):
        return isinstance(other, Config) and self.to_dict() == other.to_dict()

    def get(self, key, default=None):
        return self._values.get(key, default)

    def keys(self):
        return self._values.keys()

    def to_dict(self):
        """The file form (hex strings for EUIs and keys): validate(cfg.to_dict()) == cfg."""
        return _plain(self._values, False)

    def redacted(self):
        """The file form with every secret replaced by '***' (safe to log or print)."""
        return _plain(self._values, True)

    def __repr__(self):
        return "Config(%r)" % (self.redacted(),)

    __str__ = __repr__


def to_json(config):
    """The device file text (/flash/config.json) for a Config."""
    return json.dumps(config.to_dict())


def from_json(text):
    """Parse and validate the device file text."""
    try:
        raw = json.loads(text)
    except (ValueError, RuntimeError):
        raise ConfigError("config: not valid JSON")
    return validate(raw)


def load(path=DEVICE_PATH):
    """Read and validate the device file (on the board: /flash/config.json)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError("config: cannot read %s" % path)
    return from_json(text)


def load_toml(path):
    """Host only: read and validate a TOML file (tomllib, Python 3.11+)."""
    import tomllib

    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config: invalid TOML in %s: %s" % (path, str(exc).splitlines()[0]))
    except OSError:
        raise ConfigError("config: cannot read %s" % path)
    return validate(raw)


def gateway_eui_from_mac(mac):
    """The usual gateway EUI of a board without one configured: MAC[0:3] FFFE MAC[3:6]."""
    if len(mac) != 6:
        raise ConfigError(
            "gateway_eui: expected a 6-byte MAC to derive it from, got %d bytes" % len(mac)
        )
    return bytes(mac[0:3]) + b"\xff\xfe" + bytes(mac[3:6])


def secrets(config):
    """The secret values of a Config (for oelog.add_secret): strings and bytes, empty ones left out."""
    found = []
    for key in config.keys():
        value = config[key]
        if is_secret(key) and value:
            found.append(value)
    return found
