"""`pycom` of a simulated board: NVS, the RGB LED, boot-time configuration (esp32/mods/modpycom.c).

NVS keeps 32-bit values the way the firmware does: nvs_set truncates an int to 32 bits
(mp_obj_get_int_truncated) and nvs_get returns it as a signed 32-bit int (mp_obj_new_int of the
stored uint32). In strict mode (the default; our firmware must store ints only) nvs_set raises
TypeError for anything but an int, as firmware before 1.20 does; with nvs_strict=False it also
takes str/bytes shorter than 1984 bytes, as 1.20.x does. nvs_get of a missing key raises
ValueError (1.20.x; pass a default to get it instead); nvs_erase of a missing key raises KeyError.
"""

from ..board import unsupported
from . import new_module, unsupported_function

NVS_KEY_MAX = 15
NVS_STR_MAX = 1984


def _check_key(key):
    if not isinstance(key, str):
        raise TypeError("can't convert %s to str" % type(key).__name__)
    if not key:
        raise ValueError("Key is invalid")
    if len(key) > NVS_KEY_MAX:
        raise ValueError("Key is too long")


def make(session):
    board = session.board
    missing = object()

    def nvs_set(key, value):
        session.check()
        _check_key(key)
        if isinstance(value, int) and not isinstance(value, bool):
            board.nvs[key] = value & 0xFFFFFFFF
        elif board.nvs_strict:
            raise TypeError("can't convert %s to int" % type(value).__name__)
        elif isinstance(value, (str, bytes, bytearray)):
            text = value if isinstance(value, str) else bytes(value).decode("utf-8", "replace")
            if len(text.encode("utf-8")) >= NVS_STR_MAX:
                raise ValueError("value too long (max: %d)" % NVS_STR_MAX)
            board.nvs[key] = text
        else:
            raise ValueError("Value must be string, bytes or integer")
        board._trace("nvs_set", key=key)

    def nvs_get(key, default=missing):
        session.check()
        _check_key(key)
        if key not in board.nvs:
            if default is not missing:
                return default
            raise ValueError("No matching object for the provided key")
        value = board.nvs[key]
        if isinstance(value, int):
            return value - 0x100000000 if value & 0x80000000 else value
        return value

    def nvs_erase(key):
        session.check()
        _check_key(key)
        if key not in board.nvs:
            raise KeyError("key not found")
        del board.nvs[key]

    def nvs_erase_all():
        session.check()
        board.nvs.clear()

    def heartbeat(*args):
        session.check()
        if not args:
            return board.heartbeat
        board.heartbeat = bool(args[0])
        board._trace("heartbeat", on=board.heartbeat)
        return None

    def rgbled(color):
        session.check()
        color = int(color) & 0xFFFFFF
        board.led = color
        board.stats["led_changes"] += 1
        board._trace("led", color="#%06x" % color, heartbeat=board.heartbeat)

    def config_flag(name):
        def flag(*args):
            session.check()
            if not args:
                return board.config_block.get(name, False)
            board.config_block[name] = bool(args[0])
            return None

        flag.__name__ = name
        return flag

    def wdt_on_boot_timeout(*args):
        session.check()
        if not args:
            return board.config_block["wdt_on_boot_timeout"]
        if int(args[0]) < 5000:
            raise ValueError("WDT on boot timeout must be >= 5000 ms")
        board.config_block["wdt_on_boot_timeout"] = int(args[0])
        return None

    def wifi_mode(*args):
        session.check()
        if not args:
            return board.config_block.get("wifi_mode", 2)
        board.config_block["wifi_mode"] = int(args[0])
        return None

    def config_value(name):
        def value(*args):
            session.check()
            if not args:
                return board.config_block.get(name)
            board.config_block[name] = args[0]
            return None

        value.__name__ = name
        return value

    def pulses_get(*args):
        raise unsupported("pycom.pulses_get()")

    attrs = {
        "nvs_set": nvs_set,
        "nvs_get": nvs_get,
        "nvs_erase": nvs_erase,
        "nvs_erase_all": nvs_erase_all,
        "heartbeat": heartbeat,
        "rgbled": rgbled,
        "heartbeat_on_boot": config_flag("heartbeat_on_boot"),
        "wifi_on_boot": config_flag("wifi_on_boot"),
        "wdt_on_boot": config_flag("wdt_on_boot"),
        "wdt_on_boot_timeout": wdt_on_boot_timeout,
        "lte_modem_en_on_boot": config_flag("lte_modem_en_on_boot"),
        "pybytes_on_boot": config_flag("pybytes_on_boot"),
        "smart_config_on_boot": config_flag("smart_config_on_boot"),
        "wifi_mode_on_boot": wifi_mode,
        "wifi_ssid_sta": config_value("wifi_ssid_sta"),
        "wifi_pwd_sta": config_value("wifi_pwd_sta"),
        "wifi_ssid_ap": config_value("wifi_ssid_ap"),
        "wifi_pwd_ap": config_value("wifi_pwd_ap"),
        "pulses_get": pulses_get,
    }
    attrs.update(_UNSUPPORTED)
    return new_module("pycom", attrs)


_UNSUPPORTED = {
    name: unsupported_function("pycom." + name)
    for name in (
        "ota_start",
        "ota_write",
        "ota_finish",
        "ota_verify",
        "ota_slot",
        "bootmgr",
        "diff_update_enabled",
    )
}
