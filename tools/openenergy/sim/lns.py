"""Network-server emulator: join server + LoRaWAN network server behind Semtech UDP v2.

It behaves as ChirpStack (v4) behind its gateway bridge does, as far as a gateway or a device can
tell (ARCHITECTURE.md §6, §8):

- every datagram goes through the lib's strict decoder (semtech.decode): one the bridge would
  refuse is counted in ``stats["rejected_datagrams"]`` and not acknowledged; PUSH_DATA gets
  PUSH_ACK, PULL_DATA gets PULL_ACK with the same token; PULL_RESP goes to the source address of
  the gateway's last PULL_DATA, and a gateway silent for 60 s is forgotten;
- uplinks are de-duplicated across gateways (same PHYPayload, 200 ms window opened by the first
  copy) and processed when the window closes; the downlink goes through the copy with the best
  SNR (then RSSI) whose gateway is connected;
- joins: JoinRequest MIC, DevNonce never reused per device, JoinAccept with a per-device
  JoinNonce counter and DevAddrs allocated in order inside the NetID's prefix; RX1 at tmst + 5 s
  on the uplink channel and data rate, RX2 at tmst + 6 s on the server's RX2 settings;
- data: MIC with the 32-bit FCnt rebuilt (lorawan.fcnt32), replays counted, the retransmission of
  the last confirmed uplink acknowledged again; MAC commands in FOpts or FPort 0; application
  payloads decoded with meterpayload.decode; downlinks (ACK, MAC answers, a per-device queue with
  FPending) in RX1 at tmst + RxDelay, and the RX2 option sent at once when the gateway's TX_ACK
  reports an error; TX_ACK tokens are remembered for 15 s.

Two layers: ``NetworkServer`` is sans-IO (datagrams and virtual µs in, datagrams with their send
time out; deterministic, no sockets, no clock of its own); ``LnsTask`` runs one on a scheduler task
with a netio UDP socket. Keys never appear in records, reprs or messages.
"""

import collections
import heapq

import aes128
import eu868
import lorawan
import maccmd
import meterpayload
import otaa
import semtech
from errors import ConfigError, OpenEnergyError

_U32 = 0xFFFFFFFF

# LoRa demodulation floor per spreading factor, tenths of dB (Semtech SX1276 datasheet, table 13):
# the reference of LinkCheckAns's margin, as ChirpStack's config tables use it.
_REQUIRED_SNR_X10 = {5: -25, 6: -50, 7: -75, 8: -100, 9: -125, 10: -150, 11: -175, 12: -200}

# DevAddr layout per NetID type 0..7 (LoRaWAN Backend Interfaces 1.0, 6.1.1): NwkID bits.
_NWKID_BITS = (6, 6, 9, 11, 12, 13, 15, 17)

DEFAULT_PORT = 1700

# Outcomes recorded per downlink attempt (device record "downlink_failures").
FAIL_NO_GATEWAY = "no_gateway"
FAIL_TX_ACK = "tx_ack"
FAIL_TOO_BIG = "too_big"
FAIL_REGION = "region"

SETTINGS = (
    "net_id",
    "rx1_dr_offset",
    "rx2_freq_hz",
    "rx2_dr",
    "rx_delay_s",
    "cflist",
    "tx_power_dbm",
    "dedup_window_us",
    "late_duplicate_us",
    "gateway_timeout_us",
    "tx_ack_timeout_us",
    "downlink_lead_us",
    "max_fcnt_gap",
    "max_rejections_kept",
)


def _hex(data):
    return bytes(data).hex()


def _addr_text(addr):
    return "%s:%d" % (addr[0], addr[1])


def _eui_bytes(value, field):
    if isinstance(value, str):
        text = value.replace(":", "").replace("-", "")
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise ConfigError("%s: expected 16 hex digits, got %r" % (field, value)) from None
    if not isinstance(value, (bytes, bytearray)) or len(value) != 8:
        raise ConfigError("%s: expected an EUI of 8 bytes (16 hex digits)" % field)
    return bytes(value)


def _key_bytes(value, field):
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value)
        except ValueError:
            raise ConfigError("%s: expected 32 hex digits" % field) from None
    if not isinstance(value, (bytes, bytearray)) or len(value) != 16:
        raise ConfigError("%s: expected a 16-byte key (32 hex digits)" % field)
    return bytes(value)


def _check_int(name, value, low, high):
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(
            "server.%s: expected an integer %d..%d, got %r" % (name, low, high, value)
        )
    return value


def dev_addr_layout(net_id):
    """(prefix, nwk_addr_bits) of the DevAddrs a NetID owns: DevAddr = prefix | NwkAddr."""
    net_type = net_id >> 21
    nwkid_bits = _NWKID_BITS[net_type]
    addr_bits = 32 - (net_type + 1) - nwkid_bits
    type_prefix = ((1 << net_type) - 1) << 1  # net_type ones then a zero: net_type + 1 bits
    nwk_id = net_id & ((1 << nwkid_bits) - 1)
    prefix = (type_prefix << (31 - net_type)) | (nwk_id << addr_bits)
    return prefix, addr_bits


class _Copy:
    """One gateway's reception of a frame."""

    __slots__ = ("gateway", "rssi", "lsnr_x10", "tmst", "freq_hz", "sf", "bw_hz", "order")

    def __init__(self, gateway, rx, order):
        self.gateway = gateway
        self.rssi = rx["rssi"]
        self.lsnr_x10 = rx["lsnr_x10"]
        self.tmst = rx["tmst"]
        self.freq_hz = rx["freq_hz"]
        self.sf = rx["sf"]
        self.bw_hz = rx["bw_hz"]
        self.order = order

    def rank(self):
        return (-self.lsnr_x10, -self.rssi, self.order)


class _Pending:
    """A frame inside its de-duplication window."""

    __slots__ = ("phy", "first_us", "deadline_us", "copies")

    def __init__(self, phy, first_us, deadline_us):
        self.phy = phy
        self.first_us = first_us
        self.deadline_us = deadline_us
        self.copies = []


class _Gateway:
    __slots__ = ("eui", "record", "pull_addr", "last_pull_us")

    def __init__(self, eui_hex):
        self.eui = eui_hex
        self.record = {
            "push_data": 0,
            "pull_data": 0,
            "rxpk": 0,
            "stat": 0,
            "last_stat": None,
            "pull_resp": 0,
            "tx_ack": {},
            "address": None,
        }
        self.pull_addr = None
        self.last_pull_us = None


class _Session:
    """An OTAA session; holds the ciphers, never shows them."""

    __slots__ = (
        "dev_addr",
        "nwk",
        "app",
        "fcnt_up",
        "fcnt_down",
        "last_confirmed_phy",
        "awaiting_ack",
        "mac_out",
    )

    def __init__(self, dev_addr, nwkskey, appskey):
        self.dev_addr = dev_addr
        self.nwk = aes128.cipher(nwkskey)
        self.app = aes128.cipher(appskey)
        self.fcnt_up = None
        self.fcnt_down = 0
        self.last_confirmed_phy = None
        self.awaiting_ack = False
        self.mac_out = []

    def __repr__(self):
        return "<Session dev_addr=%08x>" % self.dev_addr


class _QueueItem:
    __slots__ = ("fport", "payload", "confirmed")

    def __init__(self, fport, payload, confirmed):
        self.fport = fport
        self.payload = payload
        self.confirmed = confirmed


class _Device:
    __slots__ = (
        "dev_eui",
        "hex",
        "join_eui",
        "app_key",
        "app_cipher",
        "record",
        "dev_nonces",
        "join_nonce",
        "session",
        "queue",
        "mac_requests",
    )

    def __init__(self, dev_eui, join_eui, app_key, name):
        self.dev_eui = dev_eui
        self.hex = _hex(dev_eui)
        self.join_eui = join_eui
        self.app_key = app_key
        self.app_cipher = aes128.cipher(app_key)
        self.dev_nonces = set()
        self.join_nonce = 0
        self.session = None
        self.queue = collections.deque()
        self.mac_requests = []
        self.record = {
            "name": name,
            "join_eui": _hex(join_eui),
            "joined": False,
            "joins": 0,
            "join_requests": 0,
            "join_rejects": {},
            "dev_addr": None,
            "uplinks_received": 0,
            "last_fcnt": None,
            "retransmissions": 0,
            "fcnt_replays": 0,
            "mic_failures": 0,
            "downlinks_sent": 0,
            "downlinks_failed": 0,
            "downlink_failures": {},
            "downlinks_acked": 0,
            "downlinks_nacked": 0,
            "dev_status": None,
            "mac_commands": [],
            "payloads": [],
        }

    def __repr__(self):
        return "<Device %s>" % self.hex


class _Downlink:
    """A downlink frame handed to a gateway, with the options still to try."""

    __slots__ = ("device", "kind", "phy", "gateway", "options", "item", "token", "deadline_us")

    def __init__(self, device, kind, phy, gateway, options, item):
        self.device = device
        self.kind = kind
        self.phy = phy
        self.gateway = gateway
        self.options = options  # [(tmst, freq_hz, datr, send_at_us)], first = next to send
        self.item = item
        self.token = None
        self.deadline_us = 0


def _count(table, key):
    table[key] = table.get(key, 0) + 1


class NetworkServer:
    """The sans-IO join server + network server.

    Feed it with ``handle_datagram(data, addr, now_us)`` and call ``tick(now_us)`` at
    ``next_deadline()``; both return a list of ``(datagram, addr, send_at_us)`` to send. now_us is
    the server's virtual time and must not go backwards.

    Settings (all keyword, see SETTINGS; ``from_config`` takes a scenario's [server] table):
    net_id 0..0xFFFFFF (DevAddr prefix), rx1_dr_offset 0..5, rx2_freq_hz / rx2_dr (RX2 of joins
    and data; EU868 default 869.525 MHz DR0 — a single-channel setup may put the nano gateway's
    own channel and data rate here), rx_delay_s 1..15 (RxDelay sent in the JoinAccept), cflist
    (up to 5 extra channel frequencies in Hz, or None), tx_power_dbm (txpk powe),
    dedup_window_us (200 ms), late_duplicate_us (how long after its window a copy still counts as
    a duplicate: 1 s, well before any retransmission), gateway_timeout_us (60 s without
    PULL_DATA), tx_ack_timeout_us (15 s), downlink_lead_us (None: PULL_RESP right after
    de-duplication, like ChirpStack; else sent that long before the RX window, estimated from the
    uplink's arrival time), max_fcnt_gap (16384; 0xFFFF for LoRaWAN 1.0.4),
    max_rejections_kept (rejected datagrams kept in ``rejections``).
    """

    def __init__(
        self,
        net_id=0,
        rx1_dr_offset=0,
        rx2_freq_hz=eu868.RX2_FREQUENCY_HZ,
        rx2_dr=eu868.RX2_DR,
        rx_delay_s=1,
        cflist=None,
        tx_power_dbm=14,
        dedup_window_us=200_000,
        late_duplicate_us=1_000_000,
        gateway_timeout_us=60_000_000,
        tx_ack_timeout_us=15_000_000,
        downlink_lead_us=None,
        max_fcnt_gap=lorawan.MAX_FCNT_GAP,
        max_rejections_kept=100,
    ):
        self.net_id = _check_int("server.net_id", net_id, 0, 0xFFFFFF)
        self.rx1_dr_offset = _check_int(
            "server.rx1_dr_offset", rx1_dr_offset, 0, eu868.RX1_DR_OFFSET_MAX
        )
        try:
            self.rx2_freq_hz = eu868.check_frequency(rx2_freq_hz)
            self.rx2_datr = eu868.datr(*eu868.dr_to_sf_bw(rx2_dr))
        except OpenEnergyError as exc:
            raise ConfigError("server.rx2: %s" % exc) from None
        self.rx2_dr = rx2_dr
        self.rx_delay_s = _check_int("server.rx_delay_s", rx_delay_s, 1, 15)
        try:
            self.cflist = None if cflist is None else otaa.encode_cflist(list(cflist))
        except (OpenEnergyError, TypeError) as exc:
            raise ConfigError("server.cflist: %s" % exc) from None
        self.tx_power_dbm = _check_int("server.tx_power_dbm", tx_power_dbm, -128, 255)
        self.dedup_window_us = _check_int("server.dedup_window_us", dedup_window_us, 0, 10_000_000)
        self.late_duplicate_us = _check_int(
            "server.late_duplicate_us", late_duplicate_us, 0, 60_000_000
        )
        self.gateway_timeout_us = _check_int(
            "server.gateway_timeout_us", gateway_timeout_us, 1, 1 << 40
        )
        self.tx_ack_timeout_us = _check_int(
            "server.tx_ack_timeout_us", tx_ack_timeout_us, 1, 1 << 40
        )
        if downlink_lead_us is not None:
            _check_int("server.downlink_lead_us", downlink_lead_us, 0, 60_000_000)
        self.downlink_lead_us = downlink_lead_us
        self.max_fcnt_gap = _check_int("server.max_fcnt_gap", max_fcnt_gap, 1, 0xFFFF)
        self.max_rejections_kept = _check_int(
            "server.max_rejections_kept", max_rejections_kept, 0, 1 << 20
        )
        self._addr_prefix, self._addr_bits = dev_addr_layout(self.net_id)
        self._next_nwk_addr = 1

        self.online = True
        self.rxpk_hooks = []  # hook(gateway_eui_hex, rxpk, now_us) for every rxpk received
        self.stats = {
            "uplinks": 0,
            "joins": 0,
            "join_requests": 0,
            "mic_failures": 0,
            "fcnt_replays": 0,
            "fcnt_gap": 0,
            "retransmissions": 0,
            "downlinks_sent": 0,
            "downlinks_failed": 0,
            "pull_resp": 0,
            "tx_ack": {},
            "tx_ack_unknown": 0,
            "tx_ack_timeouts": 0,
            "rejected_datagrams": 0,
            "duplicates": 0,
            "rxpk_skipped": 0,
            "bad_frames": 0,
            "unknown_devices": 0,
            "unknown_dev_addr": 0,
            "dev_nonce_reuse": 0,
            "mac_errors": 0,
            "payload_errors": 0,
            "dropped_offline": 0,
        }
        self.rejections = collections.deque(maxlen=self.max_rejections_kept or None)
        self.devices = {}  # DevEUI hex -> record (JSON-able)
        self.gateways = {}  # gateway EUI hex -> record (JSON-able)
        self._devices = {}
        self._gateways = {}
        self._sessions = {}  # DevAddr -> _Device
        self._pending = {}  # PHYPayload -> _Pending
        self._pending_order = collections.deque()
        self._recent = {}  # PHYPayload -> end of its late-duplicate memory (µs)
        self._recent_order = collections.deque()
        self._txacks = {}  # token -> _Downlink
        self._txack_order = collections.deque()
        self._token = 0
        self._copy_order = 0

    @classmethod
    def from_config(cls, config):
        """A server from a scenario's [server] table (a mapping of SETTINGS names)."""
        config = dict(config or {})
        for key in config:
            if key not in SETTINGS:
                raise ConfigError(
                    "server.%s: unknown setting (known: %s)" % (key, ", ".join(SETTINGS))
                )
        return cls(**config)

    def __repr__(self):
        return "<NetworkServer net_id=%06x devices=%d gateways=%d>" % (
            self.net_id,
            len(self._devices),
            len(self._gateways),
        )

    # -- scenario -----------------------------------------------------------------------------
    def add_device(self, dev_eui, join_eui, app_key, name=None):
        """Register an OTAA device; EUIs as 8 bytes or hex text, app_key 16 bytes or hex.

        Returns the DevEUI as lowercase hex (the key of its record in ``devices``).
        """
        dev_eui = _eui_bytes(dev_eui, "dev_eui")
        join_eui = _eui_bytes(join_eui, "join_eui")
        app_key = _key_bytes(app_key, "app_key")
        device = _Device(dev_eui, join_eui, app_key, name)
        if device.hex in self._devices:
            raise ConfigError("dev_eui: %s is registered twice" % device.hex)
        self._devices[device.hex] = device
        self.devices[device.hex] = device.record
        return device.hex

    def _device(self, dev_eui):
        key = _hex(_eui_bytes(dev_eui, "dev_eui"))
        device = self._devices.get(key)
        if device is None:
            raise ConfigError("dev_eui: %s is not a registered device" % key)
        return device

    def enqueue_downlink(self, dev_eui, fport, payload, confirmed=False):
        """Queue an application downlink for the device's next uplink (RX1, FPending if more)."""
        device = self._device(dev_eui)
        _check_int("fport", fport, 1, 223)
        if not isinstance(payload, (bytes, bytearray)) or len(payload) > 242:
            raise ConfigError("payload: expected at most 242 bytes")
        device.queue.append(_QueueItem(fport, bytes(payload), bool(confirmed)))
        return len(device.queue)

    def enqueue_mac(self, dev_eui, command):
        """Queue a MAC request (a maccmd dict, e.g. {"name": "DevStatusReq"}) for the next downlink."""
        device = self._device(dev_eui)
        try:
            maccmd.encode([command], False)
        except OpenEnergyError as exc:
            raise ConfigError("command: %s" % exc) from None
        device.mac_requests.append(dict(command))

    def queued(self, dev_eui):
        """Number of application downlinks waiting for the device."""
        return len(self._device(dev_eui).queue)

    def set_online(self, online):
        """Server outage (False): nothing is acknowledged or sent; in-flight state is lost.

        Sessions, device histories and queues survive (they are in the database); the bridge's
        gateway table, the de-duplication windows and the TX_ACK tokens do not.
        """
        online = bool(online)
        if online == self.online:
            return
        self.online = online
        if not online:
            self._pending.clear()
            self._pending_order.clear()
            self._recent.clear()
            self._recent_order.clear()
            self._txacks.clear()
            self._txack_order.clear()
            for gateway in self._gateways.values():
                gateway.pull_addr = None
                gateway.last_pull_us = None

    def report(self):
        """JSON-able summary: {"server": stats, "devices": {...}, "gateways": {...}}."""
        devices = {}
        for key, device in self._devices.items():
            record = dict(device.record)
            record["queued"] = len(device.queue)
            devices[key] = record
        server = dict(self.stats)
        server["tx_ack"] = dict(self.stats["tx_ack"])
        return {
            "server": server,
            "devices": devices,
            "gateways": {key: dict(gw.record) for key, gw in self._gateways.items()},
        }

    # -- time ---------------------------------------------------------------------------------
    def next_deadline(self):
        """Virtual µs at which tick() has work (a closing window, a TX_ACK expiry), or None."""
        times = []
        if self._pending_order:
            times.append(self._pending_order[0].deadline_us)
        if self._txack_order:
            times.append(self._txack_order[0].deadline_us)
        return min(times) if times else None

    def tick(self, now_us):
        """Process what is due at now_us: closed de-duplication windows, expired TX_ACK tokens."""
        out = []
        if not self.online:
            return out
        order = self._pending_order
        while order and order[0].deadline_us <= now_us:
            pending = order.popleft()
            del self._pending[pending.phy]
            expire = pending.deadline_us + self.late_duplicate_us
            self._recent[pending.phy] = expire
            self._recent_order.append((expire, pending.phy))
            self._process(pending, now_us, out)
        recent = self._recent_order
        while recent and recent[0][0] <= now_us:
            expire, phy = recent.popleft()
            if self._recent.get(phy) == expire:
                del self._recent[phy]
        acks = self._txack_order
        while acks and acks[0].deadline_us <= now_us:
            downlink = acks.popleft()
            if self._txacks.get(downlink.token) is downlink:
                del self._txacks[downlink.token]
                self.stats["tx_ack_timeouts"] += 1
        return out

    # -- datagrams ----------------------------------------------------------------------------
    def handle_datagram(self, data, addr, now_us):
        """One datagram from addr (ip, port) at now_us -> list of (datagram, addr, send_at_us)."""
        if not self.online:
            self.stats["dropped_offline"] += 1
            return []
        out = self.tick(now_us)
        try:
            packet = semtech.decode(data)
        except OpenEnergyError as exc:
            self._reject(addr, now_us, str(exc))
            return out
        ptype = packet.type
        if ptype == semtech.PUSH_DATA:
            gateway = self._gateway(packet.eui, addr)
            gateway.record["push_data"] += 1
            out.append((semtech.encode_push_ack(packet.token), addr, now_us))
            if packet.stat is not None:
                gateway.record["stat"] += 1
                gateway.record["last_stat"] = packet.stat
            for rx in packet.rxpk:
                self._receive(gateway, rx, now_us)
        elif ptype == semtech.PULL_DATA:
            gateway = self._gateway(packet.eui, addr)
            gateway.record["pull_data"] += 1
            gateway.pull_addr = addr
            gateway.last_pull_us = now_us
            out.append((semtech.encode_pull_ack(packet.token), addr, now_us))
        elif ptype == semtech.TX_ACK:
            gateway = self._gateway(packet.eui, addr)
            self._tx_ack(gateway, packet, now_us, out)
        else:
            self._reject(addr, now_us, "type: %s is not sent to a server" % packet.name)
        return out

    def _reject(self, addr, now_us, reason):
        self.stats["rejected_datagrams"] += 1
        if self.max_rejections_kept:
            self.rejections.append({"time_us": now_us, "addr": _addr_text(addr), "reason": reason})

    def _gateway(self, eui, addr):
        key = _hex(eui)
        gateway = self._gateways.get(key)
        if gateway is None:
            gateway = self._gateways[key] = _Gateway(key)
            self.gateways[key] = gateway.record
        gateway.record["address"] = _addr_text(addr)
        return gateway

    def _connected(self, gateway, now_us):
        return (
            gateway.pull_addr is not None
            and now_us - gateway.last_pull_us <= self.gateway_timeout_us
        )

    def _receive(self, gateway, rx, now_us):
        gateway.record["rxpk"] += 1
        for hook in self.rxpk_hooks:
            hook(gateway.eui, rx, now_us)
        if rx["stat"] != 1 or rx["modu"] != "LORA":
            self.stats["rxpk_skipped"] += 1
            return
        phy = rx["data"]
        self._copy_order += 1
        copy = _Copy(gateway, rx, self._copy_order)
        pending = self._pending.get(phy)
        if pending is None:
            if phy in self._recent:
                self.stats["duplicates"] += 1
                return
            pending = _Pending(phy, now_us, now_us + self.dedup_window_us)
            self._pending[phy] = pending
            self._pending_order.append(pending)
        else:
            self.stats["duplicates"] += 1
        pending.copies.append(copy)

    # -- frames -------------------------------------------------------------------------------
    def _process(self, pending, now_us, out):
        try:
            frame = lorawan.decode(pending.phy)
        except OpenEnergyError:
            self.stats["bad_frames"] += 1
            return
        if frame.major != lorawan.MAJOR_R1:
            self.stats["bad_frames"] += 1
            return
        copies = sorted(pending.copies, key=_Copy.rank)
        mtype = frame.mtype
        if mtype == lorawan.MTYPE_JOIN_REQUEST:
            self._join(frame, copies, pending, now_us, out)
        elif mtype == lorawan.MTYPE_UNCONFIRMED_UP or mtype == lorawan.MTYPE_CONFIRMED_UP:
            self._uplink(frame, copies, pending, now_us, out)
        else:
            self.stats["bad_frames"] += 1

    def _join(self, frame, copies, pending, now_us, out):
        self.stats["join_requests"] += 1
        device = self._devices.get(_hex(frame.dev_eui))
        if device is None:
            self.stats["unknown_devices"] += 1
            return
        record = device.record
        record["join_requests"] += 1
        if frame.join_eui != device.join_eui:
            _count(record["join_rejects"], "join_eui")
            return
        if not otaa.verify_join_request(frame, device.app_cipher):
            self.stats["mic_failures"] += 1
            record["mic_failures"] += 1
            _count(record["join_rejects"], "mic")
            return
        if frame.dev_nonce in device.dev_nonces:
            self.stats["dev_nonce_reuse"] += 1
            _count(record["join_rejects"], "dev_nonce_reuse")
            return
        device.dev_nonces.add(frame.dev_nonce)
        device.join_nonce = (device.join_nonce + 1) & 0xFFFFFF
        dev_addr = self._allocate_dev_addr()
        phy = otaa.build_join_accept(
            device.app_key,
            device.join_nonce,
            self.net_id,
            dev_addr,
            rx1_dr_offset=self.rx1_dr_offset,
            rx2_dr=self.rx2_dr,
            rx_delay=self.rx_delay_s,
            cflist=self.cflist,
        )
        nwkskey, appskey = otaa.derive_session_keys(
            device.app_cipher, device.join_nonce, self.net_id, frame.dev_nonce
        )
        if device.session is not None:
            self._sessions.pop(device.session.dev_addr, None)
        device.session = _Session(dev_addr, nwkskey, appskey)
        self._sessions[dev_addr] = device
        self.stats["joins"] += 1
        record["joins"] += 1
        record["joined"] = True
        record["dev_addr"] = "%08x" % dev_addr
        record["last_fcnt"] = None
        self._send_downlink(
            device,
            "join_accept",
            phy,
            copies,
            pending,
            eu868.JOIN_ACCEPT_DELAY1_MS * 1000,
            0,
            None,
            now_us,
            out,
        )

    def _allocate_dev_addr(self):
        mask = (1 << self._addr_bits) - 1
        nwk_addr = self._next_nwk_addr & mask
        self._next_nwk_addr = nwk_addr + 1 if nwk_addr < mask else 1
        return self._addr_prefix | nwk_addr

    def _uplink(self, frame, copies, pending, now_us, out):
        device = self._sessions.get(frame.dev_addr)
        if device is None:
            self.stats["unknown_dev_addr"] += 1
            return
        session = device.session
        record = device.record
        last = session.fcnt_up
        full = lorawan.fcnt32(last, frame.fcnt, self.max_fcnt_gap)
        nwk = session.nwk
        if full is None:
            old = (last & 0xFFFF0000) | frame.fcnt
            if old > last:
                old -= 0x10000
            ahead = last + ((frame.fcnt - last) & 0xFFFF)
            if old >= 0 and lorawan.verify_mic(frame, nwk, old):
                self._replay(record)
            elif ahead <= _U32 and lorawan.verify_mic(frame, nwk, ahead):
                self.stats["fcnt_gap"] += 1
            else:
                self._mic_failure(record)
            return
        if not lorawan.verify_mic(frame, nwk, full):
            self._mic_failure(record)
            return
        confirmed = frame.mtype == lorawan.MTYPE_CONFIRMED_UP
        if full == last:
            if confirmed and pending.phy == session.last_confirmed_phy:
                self.stats["retransmissions"] += 1
                record["retransmissions"] += 1
                self._data_downlink(device, copies, pending, True, False, now_us, out)
            else:
                self._replay(record)
            return

        session.fcnt_up = full
        session.last_confirmed_phy = pending.phy if confirmed else None
        self.stats["uplinks"] += 1
        record["uplinks_received"] += 1
        record["last_fcnt"] = full
        if session.awaiting_ack:
            session.awaiting_ack = False
            record["downlinks_acked" if frame.ack else "downlinks_nacked"] += 1

        best = copies[0]
        if frame.fopts:
            self._mac(device, frame.fopts, copies, pending.first_us)
        fport = frame.fport
        if fport is not None:
            data = lorawan.decrypt_frm_payload(frame, nwk, session.app, full)
            if fport == 0:
                self._mac(device, data, copies, pending.first_us)
            else:
                entry = {
                    "time_us": pending.first_us,
                    "gateway": best.gateway.eui,
                    "fcnt": full,
                    "fport": fport,
                    "confirmed": confirmed,
                    "rssi": best.rssi,
                    "snr": best.lsnr_x10 / 10,
                    "data": data.hex(),
                }
                try:
                    entry["decoded"] = meterpayload.decode(fport, data)
                except OpenEnergyError as exc:
                    self.stats["payload_errors"] += 1
                    entry["error"] = str(exc)
                record["payloads"].append(entry)
        self._data_downlink(device, copies, pending, confirmed, frame.adr_ack_req, now_us, out)

    def _replay(self, record):
        self.stats["fcnt_replays"] += 1
        record["fcnt_replays"] += 1

    def _mic_failure(self, record):
        self.stats["mic_failures"] += 1
        record["mic_failures"] += 1

    def _mac(self, device, data, copies, rx_us):
        try:
            commands = maccmd.decode(data, True)
        except OpenEnergyError as exc:
            self.stats["mac_errors"] += 1
            device.record["mac_commands"].append({"time_us": rx_us, "error": str(exc)})
            return
        session = device.session
        for command in commands:
            entry = {"time_us": rx_us}
            entry.update(command)
            device.record["mac_commands"].append(entry)
            name = command["name"]
            if name == "LinkCheckReq":
                best = copies[0]
                floor = _REQUIRED_SNR_X10.get(best.sf, -200)
                margin = (best.lsnr_x10 - floor) // 10
                gateways = len({copy.gateway.eui for copy in copies})
                session.mac_out.append(
                    {
                        "name": "LinkCheckAns",
                        "margin": min(max(margin, 0), 254),
                        "gw_cnt": min(gateways, 255),
                    }
                )
            elif name == "DevStatusAns":
                device.record["dev_status"] = {
                    "time_us": rx_us,
                    "battery": command["battery"],
                    "margin": command["margin"],
                }

    # -- downlinks ----------------------------------------------------------------------------
    def _data_downlink(self, device, copies, pending, ack, adr_ack_req, now_us, out):
        session = device.session
        if device.mac_requests:
            session.mac_out.extend(device.mac_requests)
            device.mac_requests = []
        if not (ack or adr_ack_req or device.queue or session.mac_out):
            return
        best = copies[0]
        try:
            up_dr = eu868.sf_bw_to_dr(best.sf, best.bw_hz)
            rx1_dr = eu868.rx1_dr(up_dr, self.rx1_dr_offset)
        except OpenEnergyError:
            self._failed(device, FAIL_REGION, None)
            return
        fopts = b""
        while session.mac_out:
            encoded = maccmd.encode(session.mac_out[:1], False)
            if len(fopts) + len(encoded) > lorawan.MAX_FOPTS_LEN:
                break
            fopts += encoded
            session.mac_out.pop(0)
        room = eu868.max_mac_payload(rx1_dr) - 7 - len(fopts) - 1
        item = None
        while device.queue:
            candidate = device.queue.popleft()
            if len(candidate.payload) <= room:
                item = candidate
                break
            self._failed(device, FAIL_TOO_BIG, None)
        mtype = lorawan.MTYPE_UNCONFIRMED_DOWN
        fport = None
        payload = b""
        if item is not None:
            fport = item.fport
            payload = item.payload
            if item.confirmed:
                mtype = lorawan.MTYPE_CONFIRMED_DOWN
                session.awaiting_ack = True
        phy = lorawan.build_data(
            mtype,
            session.dev_addr,
            session.fcnt_down,
            session.nwk,
            session.app,
            fport=fport,
            payload=payload,
            ack=ack,
            fpending=bool(device.queue),
            fopts=fopts,
        )
        session.fcnt_down = (session.fcnt_down + 1) & _U32
        fits_rx2 = 7 + len(fopts) + (1 + len(payload) if fport is not None else 0) <= (
            eu868.max_mac_payload(self.rx2_dr)
        )
        self._send_downlink(
            device,
            "data",
            phy,
            copies,
            pending,
            self.rx_delay_s * 1_000_000,
            rx1_dr,
            item,
            now_us,
            out,
            fits_rx2,
        )

    def _send_downlink(
        self, device, kind, phy, copies, pending, delay1_us, rx1_dr, item, now_us, out, rx2=True
    ):
        copy = None
        for candidate in copies:
            if self._connected(candidate.gateway, now_us):
                copy = candidate
                break
        if copy is None:
            self._failed(device, FAIL_NO_GATEWAY, item)
            return
        if kind == "join_accept":
            try:
                rx1_dr = eu868.sf_bw_to_dr(copy.sf, copy.bw_hz)
            except OpenEnergyError:
                self._failed(device, FAIL_REGION, item)
                return
        delay2_us = delay1_us + 1_000_000
        base = pending.first_us
        options = [
            (
                (copy.tmst + delay1_us) & _U32,
                copy.freq_hz,
                eu868.datr(*eu868.dr_to_sf_bw(rx1_dr)),
                self._send_at(base + delay1_us, now_us),
            )
        ]
        if rx2:
            options.append(
                (
                    (copy.tmst + delay2_us) & _U32,
                    self.rx2_freq_hz,
                    self.rx2_datr,
                    self._send_at(base + delay2_us, now_us),
                )
            )
        downlink = _Downlink(device, kind, phy, copy.gateway, options, item)
        self.stats["downlinks_sent"] += 1
        device.record["downlinks_sent"] += 1
        self._emit(downlink, now_us, out)

    def _send_at(self, window_us, now_us):
        if self.downlink_lead_us is None:
            return now_us
        return max(now_us, window_us - self.downlink_lead_us)

    def _emit(self, downlink, now_us, out):
        tmst, freq_hz, datr, send_at = downlink.options.pop(0)
        token = self._token = semtech.next_token(self._token)
        while token in self._txacks:
            token = self._token = semtech.next_token(token)
        txpk = semtech.format_txpk(
            freq_hz,
            datr,
            downlink.phy,
            tmst=tmst,
            imme=False,
            rfch=0,
            powe=self.tx_power_dbm,
            codr="4/5",
            ipol=True,
        )
        downlink.token = token
        downlink.deadline_us = max(now_us, send_at) + self.tx_ack_timeout_us
        self._txacks[token] = downlink
        self._txack_order.append(downlink)
        gateway = downlink.gateway
        gateway.record["pull_resp"] += 1
        self.stats["pull_resp"] += 1
        out.append((semtech.encode_pull_resp(token, txpk), gateway.pull_addr, max(now_us, send_at)))

    def _tx_ack(self, gateway, packet, now_us, out):
        error = packet.error
        _count(gateway.record["tx_ack"], error)
        _count(self.stats["tx_ack"], error)
        downlink = self._txacks.pop(packet.token, None)
        if downlink is None:
            self.stats["tx_ack_unknown"] += 1
            return
        if error == semtech.ERR_NONE:
            return
        if downlink.options and self._connected(downlink.gateway, now_us):
            tmst, freq_hz, datr, _ = downlink.options[0]
            downlink.options[0] = (tmst, freq_hz, datr, now_us)
            self._emit(downlink, now_us, out)
            return
        self._failed(downlink.device, FAIL_TX_ACK, downlink.item)

    def _failed(self, device, reason, item):
        self.stats["downlinks_failed"] += 1
        device.record["downlinks_failed"] += 1
        _count(device.record["downlink_failures"], reason)
        if item is not None and item.confirmed and device.session is not None:
            device.session.awaiting_ack = False
        if item is not None:
            device.queue.appendleft(item)  # sent again with the next uplink, as ChirpStack keeps it


class LnsTask:
    """Runs a NetworkServer on a scheduler task behind a netio host UDP socket.

    netio: the world's netio.NetIO (its ``udp_socket(owner)`` is used); host/port: where the
    server listens (port 0: an ephemeral port, see ``addr`` after ``start()``). Outputs are sent
    at their ``send_at_us``; ``set_online`` is the server-outage fault.
    """

    def __init__(self, server, netio, host="127.0.0.1", port=DEFAULT_PORT, owner="lns"):
        self.server = server
        self.netio = netio
        self.host = host
        self.port = port
        self.owner = owner
        self.addr = None
        self.task = None
        self._socket = None
        self._outbox = []
        self._seq = 0
        self._stopping = False

    def start(self):
        """Bind the socket and spawn the task; returns the bound (host, port)."""
        self._socket = self.netio.udp_socket(self.owner, self.host)
        self.addr = self._socket.bind((self.host, self.port))
        self.task = self.netio.scheduler.spawn(self._run, name=self.owner)
        return self.addr

    def stop(self):
        self._stopping = True
        if self._socket is not None:
            self._socket.close()

    def set_online(self, online):
        self.server.set_online(online)
        if self._socket is not None:
            self._socket.set_down(not online)
        if not online:
            self._outbox.clear()

    def _queue(self, outputs):
        for data, addr, send_at in outputs:
            self._seq += 1
            heapq.heappush(self._outbox, (send_at, self._seq, data, addr))

    def _run(self):
        scheduler = self.netio.scheduler
        server = self.server
        sock = self._socket
        outbox = self._outbox
        while not self._stopping:
            now = scheduler.now_us()
            while outbox and outbox[0][0] <= now:
                _, _, data, addr = heapq.heappop(outbox)
                sock.sendto(data, addr)
            wake = server.next_deadline()
            if outbox and (wake is None or outbox[0][0] < wake):
                wake = outbox[0][0]
            item = sock.recvfrom(None if wake is None else max(0, wake - now))
            if self._stopping:
                break
            now = scheduler.now_us()
            if item is None:
                self._queue(server.tick(now))
            else:
                self._queue(server.handle_datagram(item[0], item[1], now))
