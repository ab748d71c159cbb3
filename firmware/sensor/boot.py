"""Sensor image boot: RGB LED heartbeat and WiFi off (the sensor only talks LoRaWAN)."""

try:
    import pycom

    pycom.heartbeat(False)
    if pycom.wifi_on_boot():
        pycom.wifi_on_boot(False)  # persistent: takes effect at the next boot
except Exception:
    pass

try:
    from network import WLAN

    WLAN().deinit()
except Exception:
    pass
