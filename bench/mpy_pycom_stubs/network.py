"""Pycom's network module for the bench: LoRa (raw LORA mode and the native LORAWAN stack, as
seen through its API) and WLAN, on the virtual clock (ARCHITECTURE.md section 11).

Raw mode: inject(data, rssi, snr) puts a received frame in the RX queue (7 frames, as Pycom's),
sets stats() to its RX-done instant and runs the RX callback (IRQ thread); the AF_LORA raw socket
reads the queue. LORAWAN mode: join() succeeds after JOIN_MS of virtual time when
lorawan["join_ok"]; a blocking send takes the frame's time on air plus its receive windows, then
events() shows TX_PACKET (or TX_FAILED for a confirmed uplink when lorawan["ack"] is False) and
stats() the FCnt used. Nothing kept grows with the number of frames (the bench measures leaks).

WLAN (station): set_wifi_link(up) takes the access point away and back; the station driver
then behaves as Pycom's (modwlan.c; ARCHITECTURE.md section 11): connect() returns at once and
associates wifi["associate_us"] after the access point is reachable, a connect timeout shows
once as TimeoutError from isconnected(), a connected station that loses the link reconnects by
itself (not after disconnect()). UDP sockets (usocket.py) ask wifi_ready() before they send.
"""

import _harness

try:
    from ucollections import namedtuple
except ImportError:
    from collections import namedtuple

JOIN_MS = 6000
RX_QUEUE = 7
RX_FRAME_MAX = 256
# Received frames wait in Pycom's C driver, outside the MicroPython heap: here in slots
# allocated when this module loads (before the bench's base) and reused.
_rx_slots = [bytearray(RX_FRAME_MAX) for _ in range(RX_QUEUE)]
_rx_sizes = [0] * RX_QUEUE
_rx_state = [0, 0]  # index of the oldest frame, frames waiting
_ZEROS = bytes(RX_FRAME_MAX)
lorawan = {"join_ok": True, "ack": True}
counters = {"rx_injected": 0, "rx_dropped": 0, "tx_raw": 0, "uplinks": 0, "confirmed": 0}
last_uplink = bytearray(256)
last_uplink_info = [0, 0, False]  # length, port, confirmed
_nvram = {}  # the native stack's saved session

LoRaStats = namedtuple(
    "LoRaStats",
    (
        "rx_timestamp",
        "rssi",
        "snr",
        "sfrx",
        "sftx",
        "tx_trials",
        "tx_power",
        "tx_time_on_air",
        "tx_counter",
        "tx_frequency",
    ),
)


def time_on_air_us(sf, bw_hz, size, cr=1, preamble=8):
    """Semtech's formula (explicit header, CRC on, low-DR optimisation at SF11/12 on 125 kHz)."""
    ts = (1 << sf) * 1000000 // bw_hz
    de = 1 if ts >= 16000 else 0
    num = 8 * size - 4 * sf + 28 + 16
    den = 4 * (sf - 2 * de)
    blocks = -((-num) // den)
    if blocks < 0:
        blocks = 0
    return (4 * preamble + 17) * ts // 4 + (8 + blocks * (cr + 4)) * ts


class LoRa:
    LORA = 0
    LORAWAN = 1
    OTAA = 0
    ABP = 1
    CLASS_A = 0
    CLASS_C = 2
    ALWAYS_ON = 0
    TX_ONLY = 1
    SLEEP = 2
    BW_125KHZ = 0
    BW_250KHZ = 1
    BW_500KHZ = 2
    CODING_4_5 = 1
    CODING_4_6 = 2
    CODING_4_7 = 3
    CODING_4_8 = 4
    RX_PACKET_EVENT = 1
    TX_PACKET_EVENT = 2
    TX_FAILED_EVENT = 4
    AS923 = 0
    AU915 = 1
    EU868 = 5
    US915 = 8
    instance = [None]

    def __init__(self, **kwargs):
        self._events = 0
        self.trigger = 0
        self.handler = None
        self.arg = None
        self.joined = False
        self.tx_counter = 0
        self.rx_timestamp = 0
        self.rssi = 0
        self.snr = 0.0
        self.tx_time_on_air = 0
        self.tx_trials = 0
        self.channels = {}
        self.settings = {}
        self.init(**kwargs)
        LoRa.instance[0] = self

    def init(
        self,
        mode=LORAWAN,
        region=EU868,
        frequency=868100000,
        tx_power=14,
        bandwidth=BW_125KHZ,
        sf=7,
        preamble=8,
        coding_rate=CODING_4_5,
        power_mode=ALWAYS_ON,
        tx_iq=False,
        rx_iq=False,
        adr=False,
        public=True,
        tx_retries=2,
        device_class=CLASS_A,
    ):
        if mode == LoRa.LORAWAN and self.settings.get("mode") == LoRa.LORAWAN:
            self.joined = False  # init() in LORAWAN mode stops the stack (and its join)
        self.settings = {
            "mode": mode,
            "frequency": frequency,
            "tx_power": tx_power,
            "bandwidth": bandwidth,
            "sf": sf,
            "preamble": preamble,
            "coding_rate": coding_rate,
            "power_mode": power_mode,
            "tx_iq": tx_iq,
            "rx_iq": rx_iq,
            "adr": adr,
            "tx_retries": tx_retries,
        }

    def callback(self, trigger, handler=None, arg=None):
        self.trigger = trigger
        self.handler = handler
        self.arg = arg

    def events(self):
        events = self._events
        self._events = 0
        return events

    def _event(self, event):
        self._events |= event
        if self.handler is not None and self.trigger & event:
            _harness.irq(self.handler, self if self.arg is None else self.arg)

    def stats(self):
        s = self.settings
        return LoRaStats(
            self.rx_timestamp,
            self.rssi,
            self.snr,
            s["sf"],
            5,
            self.tx_trials,
            s["tx_power"],
            self.tx_time_on_air,
            self.tx_counter,
            s["frequency"],
        )

    def frequency(self, hz=None):
        if hz is None:
            return self.settings["frequency"]
        self.settings["frequency"] = hz
        return None

    def sf(self, sf=None):
        if sf is None:
            return self.settings["sf"]
        self.settings["sf"] = sf
        return None

    def mac(self):
        return b"\x70\xb3\xd5\x49\x90\x00\x00\x01"

    def power_mode(self, mode=None):
        if mode is None:
            return self.settings["power_mode"]
        self.settings["power_mode"] = mode
        return None

    def ischannel_free(self, rssi_threshold):
        return True

    # -- LORAWAN mode --------------------------------------------------------------------
    def join(self, activation=OTAA, auth=None, dr=None, timeout=None, timeout_ms=None):
        wait = timeout if timeout is not None else JOIN_MS
        if lorawan["join_ok"]:
            _harness.advance((JOIN_MS if JOIN_MS < wait else wait) * 1000)
            self.joined = True
            self.tx_counter = 0
            return
        _harness.advance(wait * 1000)
        raise OSError(116)  # ETIMEDOUT

    def has_joined(self):
        return self.joined

    def nvram_save(self):
        if self.joined:
            _nvram["fcnt"] = self.tx_counter

    def nvram_restore(self):
        if "fcnt" in _nvram:
            self.joined = True
            self.tx_counter = _nvram["fcnt"]

    def nvram_erase(self):
        _nvram.clear()

    def add_channel(self, index, frequency=None, dr_min=0, dr_max=5):
        self.channels[index] = (frequency, dr_min, dr_max)

    def remove_channel(self, index):
        self.channels.pop(index, None)

    def set_battery_level(self, level):
        pass


class _LoRaSocket:
    """An AF_LORA SOCK_RAW socket (raw frames in LORA mode, uplinks in LORAWAN mode)."""

    def __init__(self):
        self.blocking = True
        self.port = 2
        self.confirmed = False
        self.dr = None
        self.closed = False

    def _lora(self):
        lora = LoRa.instance[0]
        if lora is None:
            raise OSError(100)  # ENETDOWN: no LoRa object
        return lora

    def setblocking(self, flag):
        self.blocking = bool(flag)

    def settimeout(self, value):
        self.blocking = value is None or value > 0

    def bind(self, port):
        self.port = port

    def setsockopt(self, level, option, value):
        if option == SO_CONFIRMED:
            self.confirmed = bool(value)
        elif option == SO_DR:
            self.dr = value

    def recv(self, n):
        self._lora()
        first, waiting = _rx_state
        if not waiting:
            return b""
        size = _rx_sizes[first]
        data = bytes(memoryview(_rx_slots[first])[: size if size < n else n])
        # the driver's buffer is freed on a board; here its bytes would stay in the heap,
        # where the collector reads them as possible pointers: wipe them
        memoryview(_rx_slots[first])[:size] = memoryview(_ZEROS)[:size]
        _rx_state[0] = (first + 1) % RX_QUEUE
        _rx_state[1] = waiting - 1
        return data

    def recvfrom(self, n):
        lora = self._lora()
        if lora.settings["mode"] == LoRa.LORAWAN:
            raise OSError(11)  # EAGAIN: no downlink waiting
        return (self.recv(n), self.port)

    def send(self, data):
        lora = self._lora()
        s = lora.settings
        if s["mode"] == LoRa.LORA:
            counters["tx_raw"] += 1
            lora.tx_time_on_air = time_on_air_us(s["sf"], 125000, len(data)) // 1000
            lora._event(LoRa.TX_PACKET_EVENT)
            return len(data)
        if not lora.joined:
            raise OSError(100)  # ENETDOWN
        if len(data) > 242:
            raise OSError(90)  # EMSGSIZE
        dr = self.dr if self.dr is not None else 5
        sf = 12 - dr if 0 <= dr <= 5 else 7
        toa_us = time_on_air_us(sf, 125000, 13 + len(data))
        lora.tx_time_on_air = (toa_us + 999) // 1000
        lora.tx_trials = 1
        lora.tx_counter += 1
        counters["uplinks"] += 1
        n = len(data)
        last_uplink[0:n] = data
        last_uplink_info[0] = n
        last_uplink_info[1] = self.port
        last_uplink_info[2] = self.confirmed
        # the frame, RX1 (1 s) and RX2 (2 s) windows of a blocking Class A send
        _harness.advance(toa_us + (1100000 if self.confirmed else 2100000))
        if self.confirmed:
            counters["confirmed"] += 1
            if not lorawan["ack"]:
                lora.tx_trials = 2
                lora._events |= LoRa.TX_FAILED_EVENT
                return n
        lora._events |= LoRa.TX_PACKET_EVENT
        return n

    def close(self):
        self.closed = True

    def _readable(self):
        return _rx_state[1] > 0


def inject(data, rssi=-60, snr=7.5):
    """A LoRa frame was received now (raw mode): queue it, set stats(), run the RX callback."""
    lora = LoRa.instance[0]
    counters["rx_injected"] += 1
    if lora is None or lora.settings["mode"] != LoRa.LORA or lora.settings["power_mode"] != 0:
        counters["rx_dropped"] += 1
        return
    first, waiting = _rx_state
    if waiting >= RX_QUEUE:
        counters["rx_dropped"] += 1
        return
    slot = (first + waiting) % RX_QUEUE
    size = len(data) if len(data) < RX_FRAME_MAX else RX_FRAME_MAX
    _rx_slots[slot][0:size] = data[0:size]
    _rx_sizes[slot] = size
    _rx_state[1] = waiting + 1
    lora.rx_timestamp = _harness.now_us() & 0xFFFFFFFF
    lora.rssi = rssi
    lora.snr = snr
    lora._event(LoRa.RX_PACKET_EVENT)


SOL_LORA = 0x10000
SO_CONFIRMED = 0x0003
SO_DR = 0x0004


try:
    from builtins import TimeoutError
except ImportError:  # not built into this wasm build; Pycom's firmware has one (an OSError)

    class TimeoutError(OSError):
        pass


# The access point, as the bench sets it (set_wifi_link): up or not, since when, and how long an
# association takes once it is reachable (0 by default; the simulator's world uses 1.5 s).
wifi = {"up": True, "since_us": 0, "associate_us": 0}
# The station driver (one per board, shared by every WLAN object, as Pycom's wlan_obj):
# state "idle" | "connecting" | "connected", since when it tries, until when (the connect
# timeout; None after a link loss: the driver retries by itself), whether it reconnects
# after a loss (not after disconnect()), and the pending timeout for isconnected().
_sta = {"state": "idle", "from_us": 0, "deadline_us": None, "auto": False, "timed_out": False}
_ZERO_IP = ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")


def set_wifi_link(up):
    """The access point goes away (False) or comes back (True) now: a connected station loses
    its link at once (and keeps trying by itself, as Pycom's driver does after a loss)."""
    up = bool(up)
    if up == wifi["up"]:
        return
    wifi["up"] = up
    if up:
        wifi["since_us"] = _harness.now_us()
    elif _sta["state"] == "connected":
        _sta["state"] = "connecting" if _sta["auto"] else "idle"
        _sta["from_us"] = _harness.now_us()
        _sta["deadline_us"] = None


def wifi_ready():
    """The station is associated and the access point is there (sockets can send)."""
    _sta_update()
    return _sta["state"] == "connected"


def _sta_update():
    sta = _sta
    if sta["state"] != "connecting":
        return
    now = _harness.now_us()
    deadline = sta["deadline_us"]
    if wifi["up"]:
        start = sta["from_us"]
        if wifi["since_us"] > start:
            start = wifi["since_us"]
        done = start + wifi["associate_us"]
        if done <= now and (deadline is None or done <= deadline):
            sta["state"] = "connected"
            sta["deadline_us"] = None
            return
    if deadline is not None and now >= deadline:
        sta["state"] = "idle"
        sta["auto"] = False
        sta["timed_out"] = True
        sta["deadline_us"] = None


class WLAN:
    """Station mode (modwlan.c): connect() returns at once and the association completes in
    the background; a connect timeout surfaces once as TimeoutError from the next isconnected();
    after a link loss the driver reconnects by itself unless disconnect() was called."""

    STA = 1
    AP = 2
    STA_AP = 3
    WEP = 1
    WPA = 2
    WPA2 = 3
    INT_ANT = 0
    EXT_ANT = 1

    def __init__(self, id=0, mode=STA, **kwargs):
        self.mode = mode

    def init(self, mode=STA, **kwargs):
        self.mode = mode

    def deinit(self):
        self.disconnect()

    def connect(self, ssid, auth=None, bssid=None, timeout=None, **kwargs):
        sta = _sta
        sta["state"] = "connecting"
        sta["from_us"] = _harness.now_us()
        sta["deadline_us"] = None if timeout is None else sta["from_us"] + timeout * 1000
        sta["auto"] = True
        sta["timed_out"] = False

    def disconnect(self):
        _sta["state"] = "idle"
        _sta["auto"] = False
        _sta["deadline_us"] = None

    def isconnected(self):
        _sta_update()
        if _sta["state"] == "connected":
            return True
        if _sta["timed_out"]:
            _sta["timed_out"] = False
            raise TimeoutError("Connection to AP Timeout!")
        return False

    def ifconfig(self, id=0, config=None):
        if not wifi_ready():
            return _ZERO_IP
        return ("192.168.1.20", "255.255.255.0", "192.168.1.1", "192.168.1.1")

    def mac(self):
        return (b"\x24\x0a\xc4\x11\x22\x33", b"\x24\x0a\xc4\x11\x22\x34")

    def scan(self):
        return []
