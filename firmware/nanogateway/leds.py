"""RGB LED status codes of the nano gateway (pycom.rgbled; the heartbeat is turned off).

dim blue        booting
dim yellow      waiting for WiFi
dim magenta     WiFi up, the server does not answer (yet)
dim green       forwarding: the server answers the keepalives
green flash     an uplink forwarded; cyan flash: a downlink sent
red blinks      bad configuration, forever, without reset (the console says why):
                2 blinks = /flash/config.json missing, unreadable or not JSON,
                3 blinks = a value breaks the schema, 4 blinks = config for another image
solid red       fatal start-up error (radio), a reset follows after a minute
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


OFF = const(0x000000)
BOOT = const(0x000008)
WIFI_WAIT = const(0x080800)
NO_SERVER = const(0x080008)
RUNNING = const(0x000800)
UPLINK = const(0x004000)
DOWNLINK = const(0x004040)
ERROR = const(0x400000)

BLINKS_CONFIG_FILE = const(2)
BLINKS_CONFIG_VALUE = const(3)
BLINKS_CONFIG_IMAGE = const(4)

FLASH_MS = const(60)


class Leds:
    """The status LED; every call is a no-op when disabled or without pycom."""

    def __init__(self, pycom_mod, enabled=True):
        self._pycom = pycom_mod
        self.enabled = enabled and pycom_mod is not None
        self.state = None
        self.shown = None
        self._flash_until = None
        if self.enabled:
            try:
                pycom_mod.heartbeat(False)
            except Exception:
                self.enabled = False

    def _show(self, color):
        if self.enabled and color != self.shown:
            self.shown = color
            try:
                self._pycom.rgbled(color)
            except Exception:
                pass

    def set(self, color):
        """The steady status colour."""
        self.state = color
        if self._flash_until is None:
            self._show(color)

    def flash(self, color, now_ms):
        self._flash_until = now_ms + FLASH_MS
        self._show(color)

    def due_ms(self, now_ms):
        """ms until tick() has something to do (the end of a flash), or None."""
        until = self._flash_until
        if until is None:
            return None
        return until - now_ms if until > now_ms else 0

    def tick(self, now_ms):
        if self._flash_until is not None and now_ms >= self._flash_until:
            self._flash_until = None
            self._show(self.state)


def blink_forever(leds, blinks, sleep_ms, message, repeat_ms=10000):
    """Bad-configuration signal: blinks red blinks times, pauses, forever; the message is printed
    at start and every repeat_ms. Never returns and never resets the board (no crash loop)."""
    leds.enabled = leds._pycom is not None
    since = repeat_ms
    while True:
        if since >= repeat_ms:
            print(message)
            since = 0
        for _ in range(blinks):
            leds._show(ERROR)
            sleep_ms(150)
            leds._show(OFF)
            sleep_ms(250)
        sleep_ms(1200)
        since += blinks * 400 + 1200
