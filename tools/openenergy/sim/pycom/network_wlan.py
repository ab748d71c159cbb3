"""`network` of a simulated board: WLAN (station), and the hook where the radio helper plugs LoRa.

WLAN follows esp32/mods/modwlan.c: connect() returns at once; the association completes after
the world's `wifi_connect_us`; a connect timeout surfaces as TimeoutError("Connection to AP
Timeout!") from the next isconnected() (once). The driver reconnects by itself after a link loss
(WiFi outage fault) unless disconnect() was called. Deep sleep and resets drop the connection.
"""

import collections
import importlib

from ..board import unsupported
from . import bind, new_module, unsupported_class

MacTuple = collections.namedtuple("mac", "sta_mac ap_mac")
ScanResult = collections.namedtuple("scan_result", "ssid bssid sec channel rssi")

STA = 1
AP = 2
STA_AP = 3
WEP = 1
WPA = 2
WPA2 = 3
WPA2_ENT = 5


class WlanDevice:
    """The WiFi driver state of one board run."""

    def __init__(self, session):
        self.s = session
        self.board = session.board
        self.world = session.board.world
        self.mode = STA
        self.state = "idle"
        self.ssid = None
        self.auth = None
        self.auto_reconnect = False
        self.timed_out = False
        self.static = None
        self.hostname = "%s" % self.board.name
        self.antenna = 0
        self._attempt = None
        self._timeout = None

    # -- driver -----------------------------------------------------------------------------
    def link_ready(self):
        return self.state == "connected" and self.board.wifi_link_up

    def connect(self, ssid, auth, timeout_ms):
        self._cancel()
        self.ssid = ssid
        self.auth = auth
        self.auto_reconnect = True
        self.timed_out = False
        self.state = "connecting"
        self.board._trace("wifi_connect", ssid=ssid)
        if timeout_ms is not None:
            delay = self.board.local_to_virtual(int(timeout_ms) * 1000)
            self._timeout = self.s.call_later(delay, self._expire)
        self._try()

    def _try(self):
        if self.state != "connecting" or self._attempt is not None:
            return
        key = self.auth[1] if isinstance(self.auth, (tuple, list)) and len(self.auth) > 1 else None
        if self.board.wifi_link_up and self.world.ap_accepts(self.ssid, key):
            self._attempt = self.s.call_later(self.world.wifi_connect_us, self._associated)

    def _associated(self):
        self._attempt = None
        if self.state != "connecting" or not self.board.wifi_link_up:
            return
        self.state = "connected"
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        self.board._trace("wifi_connected", ssid=self.ssid, ip=self.board.ip)
        self.s.notify_io()

    def _expire(self):
        self._timeout = None
        if self.state == "connected":
            return
        self._cancel()
        self.state = "idle"
        self.auto_reconnect = False
        self.timed_out = True
        self.board._trace("wifi_timeout", ssid=self.ssid)

    def link_changed(self):
        if not self.board.wifi_link_up:
            if self._attempt is not None:
                self._attempt.cancel()
                self._attempt = None
            if self.state == "connected":
                self.state = "connecting" if self.auto_reconnect else "idle"
                self.board._trace("wifi_lost", ssid=self.ssid)
        elif self.state == "connecting":
            self._try()

    def disconnect(self):
        self._cancel()
        self.auto_reconnect = False
        if self.state != "idle":
            self.board._trace("wifi_disconnect", ssid=self.ssid)
        self.state = "idle"

    def deinit(self):
        self.disconnect()
        self.state = "off"

    def _cancel(self):
        for name in ("_attempt", "_timeout"):
            event = getattr(self, name)
            if event is not None:
                event.cancel()
                setattr(self, name, None)

    def session_ended(self):
        self._cancel()
        self.state = "off"


class WLAN:
    """network.WLAN(id=0, mode=WLAN.STA, ...): station mode only."""

    STA = STA
    AP = AP
    STA_AP = STA_AP
    WEP = WEP
    WPA = WPA
    WPA2 = WPA2
    WPA2_ENT = WPA2_ENT
    INT_ANT = 0
    EXT_ANT = 1
    MAN_ANT = 2
    _s = None

    def __init__(self, id=0, **kwargs):
        self._s.check()
        self._dev = self._s.device("wlan", WlanDevice)
        if kwargs or self._dev.state == "off":
            self.init(**kwargs)

    def init(
        self,
        mode=STA,
        *,
        ssid=None,
        auth=None,
        channel=1,
        antenna=None,
        power_save=False,
        hidden=False,
        bandwidth=None,
        max_tx_pwr=None,
        country=None,
        protocol=None,
    ):
        self._s.check()
        if mode != STA:
            raise unsupported("network.WLAN access-point mode (mode=%r)" % (mode,))
        dev = self._dev
        dev.mode = mode
        if dev.state == "off":
            dev.state = "idle"
        if antenna is not None:
            dev.antenna = antenna

    def deinit(self):
        self._s.check()
        self._dev.deinit()

    def connect(
        self,
        ssid,
        auth=None,
        *,
        bssid=None,
        timeout=None,
        ca_certs=None,
        keyfile=None,
        certfile=None,
        identity=None,
        hostname=None,
    ):
        self._s.check()
        dev = self._dev
        if dev.state == "off":
            raise OSError("the requested operation is not possible")
        if hostname is not None:
            dev.hostname = hostname
        dev.connect(ssid, auth, timeout)

    def disconnect(self):
        self._s.check()
        self._dev.disconnect()

    def isconnected(self):
        self._s.poll_yield()
        dev = self._dev
        if dev.link_ready():
            return True
        if dev.timed_out:
            dev.timed_out = False
            raise TimeoutError("Connection to AP Timeout!")
        return False

    def ifconfig(self, id=0, config=None):
        self._s.check()
        dev = self._dev
        if config is not None:
            dev.static = None if config == "dhcp" else tuple(config)
            return None
        if not dev.link_ready():
            return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
        if dev.static is not None:
            return dev.static
        return (self._s.board.ip, "255.0.0.0", "127.0.0.1", "127.0.0.1")

    def mode(self, *args):
        if args:
            return self.init(args[0])
        return self._dev.mode

    def ssid(self):
        return self._dev.ssid

    def auth(self):
        return self._dev.auth

    def channel(self, *args):
        return None if args else 1

    def antenna(self, *args):
        if args:
            self._dev.antenna = args[0]
            return None
        return self._dev.antenna

    def hostname(self, *args):
        if args:
            self._dev.hostname = args[0]
            return None
        return self._dev.hostname

    def bssid(self):
        return (
            bytes(6) if not self._dev.link_ready() else self._s.board.world.ap_bssid(self._dev.ssid)
        )

    def mac(self, *args):
        if args:
            raise unsupported("network.WLAN.mac(new_mac)")
        sta = bytes(self._s.board.mac)
        ap = sta[:5] + bytes([(sta[5] + 1) & 0xFF])
        return MacTuple(sta, ap)

    def scan(self, *args, **kwargs):
        self._s.check()
        world = self._s.board.world
        return [
            ScanResult(ssid, world.ap_bssid(ssid), ap["sec"], ap["channel"], ap["rssi"])
            for ssid, ap in sorted(world.access_points.items())
            if self._s.board.wifi_link_up
        ]

    def joined_ap_info(self):
        dev = self._dev
        if not dev.link_ready():
            return None
        ap = self._s.board.world.access_points.get(
            dev.ssid, {"channel": 1, "rssi": -60, "sec": WPA2}
        )
        return (
            self._s.board.world.ap_bssid(dev.ssid),
            dev.ssid,
            ap["channel"],
            ap["rssi"],
            ap["sec"],
        )

    def max_tx_power(self, *args):
        return None if args else 78

    def country(self, *args):
        return None if args else ("EU", 1, 13, 0)


class _Server:
    """network.Server (telnet/FTP): only deinit()/init() as no-ops, which firmware often calls."""

    def __init__(self, *args, **kwargs):
        self._running = False

    def init(self, *args, **kwargs):
        self._running = True

    def deinit(self):
        self._running = False

    def isrunning(self):
        return self._running

    def timeout(self, *args):
        return None if args else 300


class _Bluetooth:
    """network.Bluetooth: deinit() (power saving) works; anything else fails loudly."""

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise unsupported("network.Bluetooth")

    def deinit(self):
        return None

    def __getattr__(self, name):
        raise unsupported("network.Bluetooth.%s()" % name)


def _lora_class(session):
    try:
        lora = importlib.import_module("openenergy.sim.pycom.lora")
    except ModuleNotFoundError as exc:
        if exc.name != "openenergy.sim.pycom.lora":
            raise
        return unsupported_class("network.LoRa (no radio model installed)")
    return lora.lora_class_for(session.board)


def make(session):
    return new_module(
        "network",
        {"Server": _Server, "Bluetooth": _Bluetooth},
        {
            "WLAN": lambda: bind(WLAN, session),
            "LoRa": lambda: _lora_class(session),
            "LTE": lambda: unsupported_class("network.LTE"),
            "Sigfox": lambda: unsupported_class("network.Sigfox"),
            "MDNS": lambda: unsupported_class("network.MDNS"),
            "Coap": lambda: unsupported_class("network.Coap"),
            "ETH": lambda: unsupported_class("network.ETH"),
        },
    )
