"""Pycom's pycom module for the bench: RGB LED, heartbeat and NVS (a dict; 1.20.x behaviour:
nvs_get of a missing key raises ValueError, nvs_erase of one raises KeyError)."""

nvs = {}
led = [0]
_flags = {"heartbeat": True, "heartbeat_on_boot": True, "wifi_on_boot": True}
writes = [0]


def heartbeat(on=None):
    if on is None:
        return _flags["heartbeat"]
    _flags["heartbeat"] = bool(on)
    return None


def heartbeat_on_boot(on=None):
    if on is None:
        return _flags["heartbeat_on_boot"]
    _flags["heartbeat_on_boot"] = bool(on)
    return None


def wifi_on_boot(on=None):
    if on is None:
        return _flags["wifi_on_boot"]
    _flags["wifi_on_boot"] = bool(on)
    return None


def rgbled(color):
    led[0] = color


def nvs_set(key, value):
    if len(key) > 15:
        raise ValueError("nvs key longer than 15 characters")
    if type(value) is int:
        value &= 0xFFFFFFFF
    nvs[key] = value
    writes[0] += 1


def nvs_get(key):
    if key not in nvs:
        raise ValueError("no such key")
    value = nvs[key]
    if type(value) is int and value >= 0x80000000:
        value -= 0x100000000  # Pycom hands a stored uint32 back signed
    return value


def nvs_erase(key):
    if key not in nvs:
        raise KeyError(key)
    del nvs[key]


def nvs_erase_all():
    nvs.clear()
