"""Technician LED codes on the LoPy's RGB LED (config `led`; set it false in production).

blue steady: joining (one JoinRequest and its receive windows); green 0.3 s: joined;
white steady: sending (the uplink and its receive windows); red 0.3 s: a join or uplink failed;
violet 1 s at boot: the configuration could not be read (the sensor then sleeps and retries).
"""

import utime

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


BLUE = const(0x00001F)
GREEN = const(0x001F00)
WHITE = const(0x0F0F0F)
RED = const(0x1F0000)
VIOLET = const(0x1F001F)
OFF = const(0)
_FLASH_MS = const(300)


class Leds:
    def __init__(self, pycom, enabled):
        self._pycom = pycom
        self.enabled = enabled
        try:
            pycom.heartbeat(False)
            pycom.rgbled(OFF)
        except Exception:
            pass

    def _set(self, color):
        if self.enabled:
            try:
                self._pycom.rgbled(color)
            except Exception:
                pass

    def _flash(self, color, ms=_FLASH_MS):
        if self.enabled:
            self._set(color)
            utime.sleep_ms(ms)
            self._set(OFF)

    def joining(self):
        self._set(BLUE)

    def joined(self):
        self._flash(GREEN)

    def sending(self):
        self._set(WHITE)

    def error(self):
        self._flash(RED)

    def config_error(self):
        self._flash(VIOLET, 1000)

    def off(self):
        self._set(OFF)
