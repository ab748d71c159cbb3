"""Pure-Python LoRaWAN 1.0.2 Class A end-device MAC for EU868, sans-IO ("soft MAC").

It never touches a radio or a clock: the caller passes ``now_ms`` (int ms of a monotonic clock)
and performs what a ``TxPlan`` says (transmit, then open the receive windows), then hands back
what it received. Used by the simulator to emulate the Pycom LoPy native stack (LoRaMac-node)
and usable on a device over raw LoRa. Errors: FrameError / RegionError (lib errors), and the
two FrameError subclasses below.

SoftMac(dev_eui, join_eui, app_key, nonces, rng, now_ms=0, dr=0, join_dr=5, adr=False,
        tx_power=0, tx_retries=2)
  dev_eui, join_eui: 8 bytes MSB first; app_key: 16 bytes (never printed, never in a message);
  nonces: otaa.DevNoncePolicy (anything with next() -> int 0..65535 that never repeats);
  rng: zero-argument callable -> int with >= 24 random bits (machine.rng); now_ms: power-up time
  T0 of the join back-off; dr: data rate when uplink() gets none (replaced by the join DR after
  a join, as LoRaMac-node does); join_dr: DR of JoinRequests (Pycom EU868 default 5); adr: ADR
  bit; tx_power: LinkADRReq TXPower index 0..7 (EIRP 16 - 2 * index dBm); tx_retries: extra
  transmissions of a confirmed uplink (Pycom default 2: 3 transmissions in all).

Transmitting -- each returns a TxPlan, whose frame counts as sent at plan.start_ms:
  join_request(now_ms, dr=None) -> TxPlan         drops any session (Pycom join()), new DevNonce
  uplink(port, payload, confirmed, now_ms, dr=None) -> TxPlan
      port 1..223 (None: no FPort, empty payload, MAC answers only); payload bytes; dr: used only
      while ADR is off (Pycom SO_DR), None = mac.dr. Raises NotJoinedError (ENETDOWN),
      PayloadSizeError (EMSGSIZE) when len(payload) > eu868.max_app_payload(dr), RegionError
      when no enabled channel allows dr, FrameError on a bad port.
  no_downlink(now_ms) -> TxPlan or None   call when the receive windows closed with nothing
      valid (or with Received.done False): the next transmission of the same frame (same
      FCnt) or None when the cycle is over (events() then holds TX_PACKET or TX_FAILED).
  next_tx_ms(now_ms, size, dr=None) -> int   earliest start (ms, same clock) of an uplink with
      size bytes of application payload (of a JoinRequest when not joined); now_ms if free now.
TxPlan: kind ('join' | 'data'), phy (bytes), freq_hz, dr, sf, bw_hz, cr (1 = 4/5), preamble (8),
  crc (True), tx_iq (False), power_dbm (EIRP), airtime_ms (int, rounded up), wait_ms,
  start_ms (= now_ms + wait_ms: send then, not earlier; duty cycle and join back-off already
  accounted there), fcnt (None for joins), confirmed, attempt (1 = first transmission),
  rx1 and rx2 = (delay_ms after TX end, freq_hz, dr, sf, bw_hz), rx_iq (True: windows listen
  with inverted IQ). Joins: RX1 +5 s same frequency DR = join DR, RX2 +6 s 869.525 MHz DR0.
  Data: RX1 at RxDelay on the uplink (or DlChannelReq) frequency, DR = eu868.rx1_dr(dr,
  RX1DROffset); RX2 one second later on the RXParamSetup frequency and DR.

Receiving -- rssi (dBm), snr (dB), dr (DR of the window) and rx_timestamp only feed stats();
snr also feeds DevStatusAns:
  on_join_accept(phy, now_ms, rssi=None, snr=None, dr=None, rx_timestamp=None) -> bool
  on_downlink(phy, now_ms, rssi=None, snr=None, dr=None, rx_timestamp=None) -> Received or None
      None = dropped (not ours, bad MIC, FCnt replay, undecodable: counted, never raised).
Received: port (None or 0..255), payload (plaintext application bytes, b'' on port 0), fcnt
  (32-bit FCntDown), confirmed (downlink asked for an ACK: the next uplink carries it), ack
  (our confirmed uplink was acknowledged), fpending, mac_commands (decoded requests, maccmd
  dicts), done (False: a confirmed uplink is still unacknowledged, call no_downlink()).

Configuration and state:
  add_channel(index, freq_hz, dr_min, dr_max) -> bool, remove_channel(index) -> bool
      Pycom semantics (LoRaMac-node RegionEU868): index 0..15 and 0 <= dr_min <= dr_max <= 7
      or RegionError; False = silently refused as the firmware does (frequency outside the
      EU868 sub-bands; channels 0-2 can be replaced, with dr_min 0 and dr_max >= 5, never
      removed). Single-channel mode: add the same channel at 0, 1, 2 and remove 3..15.
  channels() -> list of (index, freq_hz, dr_min, dr_max, rx1_freq_hz or 0, enabled)
  request_link_check(); set_battery_level(level 0..255); has_joined() -> bool
  stats() -> (rx_timestamp, rssi, snr, sftx, sfrx, tx_trials, tx_power, tx_time_on_air,
      tx_counter, tx_frequency): Pycom order; sftx/sfrx are DRs, tx_counter the FCntUp.
  events() -> int: RX_PACKET_EVENT | TX_PACKET_EVENT | TX_FAILED_EVENT bits, cleared on read.
  save(now_ms=None) -> bytes; restore(data, now_ms=None, slept_ms=0) -> bool
      Session (DevAddr, keys, FCnts, DR, power, NbTrans, RX params, channels and mask, ADR
      counter, duty-cycle limit, recent JoinNonces, queued MAC answers) with a version byte
      and a 4-byte AES-CMAC under the AppKey over identity and body: another device's or a
      corrupted blob gives False and changes nothing. With now_ms, duty-cycle and join
      back-off state are kept too.
  join_retry_delay_ms(attempt) -> int: a randomised pause before join retry attempt (0-based).
  Attributes (read): dev_addr, fcnt_up (next FCnt), fcnt_down (last or None), dr, tx_power,
  nb_trans, rx1_dr_offset, rx1_delay_s, rx2_freq_hz, rx2_dr, max_duty_cycle, adr_ack_cnt,
  link_check ((margin, gw_cnt) or None), join_attempts, mic_failures, fcnt_replays,
  frames_ignored, joins_rejected, answers_dropped. Read/write: adr, tx_retries.

LoRaWAN 1.0.2 sections followed: 4.3.1.1 (ADR, ADRACKReq), 4.3.1.2 and 4.4 (32-bit FCnt, MIC,
MAX_FCNT_GAP), 5 (MAC commands; RXParamSetupAns, RXTimingSetupAns, DlChannelAns repeated until
a downlink arrives), 6.2.4-6.2.5 (join), 7 (join back-off), 18.4 (DR of confirmed retries).
Knowingly not like Pycom: MAC answers that do not fit beside the payload wait for a later
uplink (Pycom sends an empty frame and fails with EMSGSIZE); a failed confirmed uplink does not
reset channels 0-2 to their defaults (upstream LoRaMac-node 4.4 AckTimeoutRetriesFinalize does,
which would undo a single-channel plan; not checked in Pycom's fork).
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


import aes128
import airtime
import eu868
import lorawan
import maccmd
import otaa
from dutycycle import DutyCycle, JoinBackoff, retry_delay_ms
from errors import CryptoError, FrameError, RegionError

RX_PACKET_EVENT = const(1)
TX_PACKET_EVENT = const(2)
TX_FAILED_EVENT = const(4)

ADR_ACK_LIMIT = const(64)
ADR_ACK_DELAY = const(32)
TX_RETRIES_DEFAULT = const(2)
MAX_CHANNELS = const(16)
SAVE_VERSION = const(1)

_DEFAULT_MASK = const(0x0007)
_ALL_MASK = const(0xFFFF)
_ACK_TIMEOUT_MS = const(2000)  # Regional Parameters 1.0.2 EU863-870: ACK_TIMEOUT 2 s +- 1 s
_ACK_TIMEOUT_RND_MS = const(1000)
_MAX_ANSWER_BYTES = const(128)  # LoRaMac-node's MAC command buffer
_MAX_JOIN_NONCES = const(4)
_DATA_OVERHEAD = const(13)  # MHDR 1 + FHDR 7 + FPort 1 + MIC 4
_FOPTS_MAX = const(15)
_STICKY = (maccmd.RX_PARAM_SETUP, maccmd.RX_TIMING_SETUP, maccmd.DL_CHANNEL)
_GAP_BANDS = (3, 5, 7)  # eu868.SUB_BANDS entries LoRaMac-node refuses (no ETSI band)
_SAVE_MAGIC = b"OEsm"
_FLAG_JOINED = const(1)
_FLAG_FCNT_DOWN = const(2)
_FLAG_ACK = const(4)
_FLAG_TIME = const(8)
_CHANNEL_BYTES = const(9)
_FIXED_BYTES = const(74)  # version, flags .. join nonces, before channels
_TIME_VALUES = const(12)  # DutyCycle.save() (10) + JoinBackoff.save() (2)


class NotJoinedError(FrameError):
    """An uplink without a session (the Pycom adapter raises OSError ENETDOWN)."""


class PayloadSizeError(FrameError):
    """An application payload above eu868.max_app_payload(DR) (Pycom adapter: EMSGSIZE)."""


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _toa(dr, length):
    sf, bw = eu868.dr_to_sf_bw(dr)
    return airtime.time_on_air_ms_ceil(sf, bw, length)


def _window(delay_ms, freq_hz, dr):
    sf, bw = eu868.dr_to_sf_bw(dr)
    return (delay_ms, freq_hz, dr, sf, bw)


def _freq_ok(freq_hz):
    # LoRaMac-node VerifyRfFreq: inside 863-870 MHz and in an ETSI sub-band (not a gap).
    if not _is_int(freq_hz) or not eu868.FREQ_MIN_HZ <= freq_hz <= eu868.FREQ_MAX_HZ:
        return False
    return eu868.sub_band(freq_hz) not in _GAP_BANDS


def _mac_prefix(data):
    # Length of the leading downlink MAC commands that are complete and known: a device cannot
    # parse past an unknown CID (LoRaWAN 1.0.2 section 5), so it stops there.
    n = len(data)
    i = 0
    while i < n:
        entry = maccmd.COMMANDS.get(data[i])
        if entry is None or i + 1 + entry[3] > n:
            break
        i += 1 + entry[3]
    return i


def _put(buf, at, value, size):
    for k in range(size):
        buf[at + k] = (value >> (8 * k)) & 0xFF
    return at + size


def _get(data, at, size):
    value = 0
    for k in range(size):
        value |= data[at + k] << (8 * k)
    return value


class TxPlan:
    """One transmission for the caller to make; fields in the module docstring."""

    # the same for every LoRaWAN frame: class attributes keep each plan small
    cr = 1
    preamble = 8
    crc = True
    tx_iq = False
    rx_iq = True

    def __init__(self, kind, phy, freq_hz, dr, power_dbm, airtime_ms, now_ms, wait_ms, rx1, rx2):
        sf, bw = eu868.dr_to_sf_bw(dr)
        self.kind = kind
        self.phy = phy
        self.freq_hz = freq_hz
        self.dr = dr
        self.sf = sf
        self.bw_hz = bw
        self.power_dbm = power_dbm
        self.airtime_ms = airtime_ms
        self.wait_ms = wait_ms
        self.start_ms = now_ms + wait_ms
        self.rx1 = rx1
        self.rx2 = rx2
        self.fcnt = None
        self.confirmed = False
        self.attempt = 1

    def __repr__(self):
        return "<TxPlan %s %d B %d Hz DR%d start=%d attempt=%d>" % (
            self.kind,
            len(self.phy),
            self.freq_hz,
            self.dr,
            self.start_ms,
            self.attempt,
        )


class Received:
    """A downlink accepted by on_downlink(); fields in the module docstring."""

    def __init__(self, frame, payload, fcnt, ack, commands, done):
        self.port = frame.fport
        self.payload = payload
        self.fcnt = fcnt
        self.confirmed = frame.mtype == lorawan.MTYPE_CONFIRMED_DOWN
        self.ack = ack
        self.fpending = frame.fpending
        self.mac_commands = commands
        self.done = done

    def __repr__(self):
        return "<Received port=%s fcnt=%d len=%d ack=%s>" % (
            self.port,
            self.fcnt,
            len(self.payload),
            self.ack,
        )


class SoftMac:
    """LoRaWAN 1.0.2 Class A EU868 end-device MAC; API in the module docstring."""

    def __init__(
        self,
        dev_eui,
        join_eui,
        app_key,
        nonces,
        rng,
        now_ms=0,
        dr=0,
        join_dr=eu868.JOIN_DR_DEFAULT,
        adr=False,
        tx_power=0,
        tx_retries=TX_RETRIES_DEFAULT,
    ):
        for name, value in (("dev_eui", dev_eui), ("join_eui", join_eui)):
            if not isinstance(value, (bytes, bytearray)) or len(value) != 8:
                raise FrameError("%s: expected 8 bytes (MSB first)" % name)
        try:
            self._app = aes128.cipher(app_key)
        except CryptoError:
            raise FrameError("app_key: expected 16 bytes")
        self.dev_eui = bytes(dev_eui)
        self.join_eui = bytes(join_eui)
        self._nonces = nonces
        self._rng = rng
        self.dr = self._check_dr(dr, "dr")
        self.join_dr = self._check_dr(join_dr, "join_dr")
        if not _is_int(tx_power) or not 0 <= tx_power <= eu868.TX_POWER_MAX_INDEX:
            raise RegionError("tx_power: expected a TXPower index 0..7, got %r" % (tx_power,))
        self._power_default = tx_power
        if not _is_int(tx_retries) or not 0 <= tx_retries <= 15:
            raise FrameError("tx_retries: expected 0..15, got %r" % (tx_retries,))
        self.adr = bool(adr)
        self.tx_retries = tx_retries
        self._dc = DutyCycle()
        self._backoff = JoinBackoff(now_ms)
        self._freq = [0] * MAX_CHANNELS
        self._rx1f = [0] * MAX_CHANNELS
        self._drr = bytearray(MAX_CHANNELS)  # dr_max << 4 | dr_min
        self._cands = bytearray(MAX_CHANNELS)
        self._fopts = bytearray(_FOPTS_MAX)
        for i in range(3):
            self._freq[i] = eu868.DEFAULT_CHANNELS[i]
            self._drr[i] = (eu868.DEFAULT_DR_MAX << 4) | eu868.DEFAULT_DR_MIN
        self._mask = _DEFAULT_MASK
        self.battery = 255
        self.join_attempts = 0
        self.mic_failures = 0
        self.fcnt_replays = 0
        self.frames_ignored = 0
        self.joins_rejected = 0
        self.answers_dropped = 0
        self._join_nonces = []
        self._events = 0
        self._rx_timestamp = 0
        self._rssi = 0
        self._snr = 0
        self._sfrx = 0
        self._sftx = 0
        self._tx_trials = 0
        self._tx_dbm = 0
        self._tx_toa = 0
        self._tx_freq = 0
        self._reset_session()

    def __repr__(self):
        return "<SoftMac joined=%s dev_addr=%s fcnt_up=%d dr=%d>" % (
            self._joined,
            "%08x" % self.dev_addr if self._joined else "-",
            self.fcnt_up,
            self.dr,
        )

    # ----- state helpers

    def _check_dr(self, dr, name):
        if not eu868.is_lora_dr(dr):
            raise RegionError("%s: expected an EU868 LoRa data rate 0..6, got %r" % (name, dr))
        return dr

    def _reset_session(self):
        # LoRaMac-node ResetMacParameters: what a (re)join starts from.
        self._joined = False
        self.dev_addr = 0
        self._nwk = None
        self._appskey = None
        self._nwk_raw = None
        self._app_raw = None
        self.fcnt_up = 0
        self.fcnt_down = None
        self.tx_power = self._power_default
        self.nb_trans = 1
        self.rx1_dr_offset = 0
        self.rx1_delay_s = 1
        self.rx2_freq_hz = eu868.RX2_FREQUENCY_HZ
        self.rx2_dr = eu868.RX2_DR
        self.max_duty_cycle = 0
        self._dc.set_max_duty_cycle(0)
        self.adr_ack_cnt = 0
        self.link_check = None
        self._answers = []
        self._ack_pending = False
        self._join_pending = None
        self._mask |= _DEFAULT_MASK
        self._end_cycle(0)

    def _end_cycle(self, event):
        self._events |= event
        self._cycle_phy = None
        self._cycle_confirmed = False
        self._cycle_dr = 0
        self._cycle_size = 0
        self._trials = 0

    def has_joined(self):
        """True while a session exists (after a valid JoinAccept or a restored session)."""
        return self._joined

    def events(self):
        """Pycom events(): RX_PACKET_EVENT | TX_PACKET_EVENT | TX_FAILED_EVENT bits; clears them."""
        value = self._events
        self._events = 0
        return value

    def stats(self):
        """Pycom stats() order: (rx_timestamp, rssi, snr, sftx, sfrx, tx_trials, tx_power,
        tx_time_on_air, tx_counter, tx_frequency); sftx/sfrx are data rates (LoRaWAN mode)."""
        return (
            self._rx_timestamp,
            self._rssi,
            self._snr,
            self._sftx,
            self._sfrx,
            self._tx_trials,
            self._tx_dbm,
            self._tx_toa,
            self.fcnt_up,
            self._tx_freq,
        )

    def set_battery_level(self, level):
        """Battery level for DevStatusAns: 0 external power, 1..254 level, 255 unknown."""
        if not _is_int(level) or not 0 <= level <= 255:
            raise FrameError("level: expected a battery level 0..255, got %r" % (level,))
        self.battery = level

    def request_link_check(self):
        """Add a LinkCheckReq to the next uplink (LoRaWAN 1.0.2 section 5.1); the answer lands in
        ``link_check`` as (margin dB, gateway count)."""
        for entry in self._answers:
            if entry[0][0] == maccmd.LINK_CHECK:
                return
        self._queue(bytes((maccmd.LINK_CHECK,)), False)

    # ----- channels

    def _channel_enabled(self, index):
        return self._freq[index] != 0 and (self._mask >> index) & 1

    def _set_channel(self, index, freq_hz, dr_min, dr_max):
        self._freq[index] = freq_hz
        self._rx1f[index] = 0
        self._drr[index] = (dr_max << 4) | dr_min
        if freq_hz:
            self._mask |= 1 << index
        else:
            self._mask &= ~(1 << index) & _ALL_MASK

    def add_channel(self, index, freq_hz, dr_min, dr_max):
        """Pycom lora.add_channel(): define (or replace) channel index 0..15 and enable it.

        Returns False, changing nothing, where LoRaMac-node silently refuses: a frequency outside
        the EU868 sub-bands, or a default channel (0-2) whose range is not DR0..DR5+.
        RegionError on an index or DR range the firmware rejects with ValueError.
        """
        if not _is_int(index) or not 0 <= index < MAX_CHANNELS:
            raise RegionError("index: expected a channel 0..15, got %r" % (index,))
        for value in (dr_min, dr_max):
            if not _is_int(value) or not 0 <= value <= eu868.DR_MAX:
                raise RegionError("dr_min/dr_max: expected data rates 0..7, got %r" % (value,))
        if dr_min > dr_max:
            raise RegionError("dr_min: %d is above dr_max %d" % (dr_min, dr_max))
        if not _freq_ok(freq_hz):
            return False
        if index < 3 and (dr_min != 0 or dr_max < eu868.DEFAULT_DR_MAX):
            return False
        self._set_channel(index, freq_hz, dr_min, dr_max)
        return True

    def remove_channel(self, index):
        """Pycom lora.remove_channel(): channels 3..15 are removed (True); the default channels
        0-2 cannot be removed in EU868 (False, nothing changes: replace them with add_channel)."""
        if not _is_int(index) or not 0 <= index < MAX_CHANNELS:
            raise RegionError("index: expected a channel 0..15, got %r" % (index,))
        if index < 3:
            return False
        self._set_channel(index, 0, 0, 0)
        return True

    def channels(self):
        """[(index, freq_hz, dr_min, dr_max, rx1_freq_hz or 0, enabled)] for defined channels."""
        out = []
        for i in range(MAX_CHANNELS):
            if self._freq[i]:
                r = self._drr[i]
                out.append(
                    (
                        i,
                        self._freq[i],
                        r & 0x0F,
                        r >> 4,
                        self._rx1f[i],
                        bool(self._channel_enabled(i)),
                    )
                )
        return out

    def _candidates(self, now_ms, dr, airtime_ms, join):
        # Fills self._cands with the enabled channels allowing dr whose sub-band opens first;
        # returns (count, wait_ms). LoRaMac-node RegionEU868NextChannel (joins: channels 0-2).
        cands = self._cands
        count = 0
        best = -1
        for i in range(3 if join else MAX_CHANNELS):
            if not self._channel_enabled(i):
                continue
            r = self._drr[i]
            if dr < (r & 0x0F) or dr > (r >> 4):
                continue
            wait = self._dc.wait_ms(now_ms, self._freq[i], airtime_ms)
            if best < 0 or wait < best:
                best = wait
                count = 0
            if wait == best:
                cands[count] = i
                count += 1
        if not count:
            raise RegionError(
                "dr: no enabled %schannel allows DR%d" % ("join " if join else "", dr)
            )
        return count, best

    def _random(self, span):
        return (self._rng() & 0xFFFFFF) % span

    def _has_channel(self, dr, mask):
        for i in range(MAX_CHANNELS):
            if self._freq[i] and (mask >> i) & 1:
                r = self._drr[i]
                if (r & 0x0F) <= dr <= (r >> 4):
                    return True
        return False

    def _record_tx(self, plan, attempt):
        self._tx_trials = attempt
        self._tx_dbm = plan.power_dbm
        self._tx_toa = plan.airtime_ms
        self._tx_freq = plan.freq_hz
        self._sftx = plan.dr

    # ----- join (LoRaWAN 1.0.2 section 6.2)

    def join_request(self, now_ms, dr=None):
        """A JoinRequest plan (section 6.2.4) with a fresh DevNonce; drops the current session.

        Waits for the sub-band and for the aggregated join back-off of section 7 (JoinBackoff:
        36 s in the first hour, 36 s in the next 10 h, 8.7 s per day after); plan.wait_ms says
        how long. dr: None = join_dr. RX1 +5 s (JOIN_ACCEPT_DELAY1) same channel and DR, RX2
        +6 s on 869.525 MHz DR0.
        """
        dr = self.join_dr if dr is None else self._check_dr(dr, "dr")
        if not self._has_channel(dr, _DEFAULT_MASK):
            raise RegionError("dr: no join channel (0-2) allows DR%d" % dr)
        self._reset_session()
        toa = _toa(dr, lorawan.JOIN_REQUEST_SIZE)
        count, wait = self._candidates(now_ms, dr, toa, True)
        backoff = self._backoff.wait_ms(now_ms, toa)
        if backoff > wait:
            count, wait = self._candidates(now_ms + backoff, dr, toa, True)
            wait += backoff
        nonce = self._nonces.next()
        phy = otaa.build_join_request(self.join_eui, self.dev_eui, nonce, self._app)
        index = self._cands[self._random(count)]
        freq = self._freq[index]
        self._dc.record(now_ms + wait, freq, toa)
        self._backoff.record(now_ms + wait, toa)
        self._join_pending = (nonce, dr)
        self.join_attempts += 1
        rx1 = _window(eu868.JOIN_ACCEPT_DELAY1_MS, freq, eu868.rx1_dr(dr, 0))
        rx2 = _window(eu868.JOIN_ACCEPT_DELAY2_MS, eu868.RX2_FREQUENCY_HZ, eu868.RX2_DR)
        plan = TxPlan(
            "join", phy, freq, dr, eu868.tx_power_eirp(self.tx_power), toa, now_ms, wait, rx1, rx2
        )
        self._record_tx(plan, 1)
        return plan

    def join_retry_delay_ms(self, attempt):
        """Randomised pause (ms) before join retry number attempt (0 = first retry); see
        dutycycle.retry_delay_ms. join_request() still enforces the back-off by itself."""
        return retry_delay_ms(attempt, self._rng)

    def on_join_accept(self, phy, now_ms, rssi=None, snr=None, dr=None, rx_timestamp=None):
        """Apply a JoinAccept (section 6.2.5) -> True, or drop it -> False (counted in
        joins_rejected): no join pending, undecodable, wrong MIC, or a JoinNonce already used
        (a replayed accept; 1.0.2 accepts carry no DevNonce, so that is what can be checked).

        On success: session keys from the pending DevNonce, DevAddr, FCnts reset, DLSettings
        (RX1DROffset > 5 clamped to 5; an RX2 DR beyond DR6 keeps DR0), RxDelay, CFList
        (channels 3-7 from it, 8-15 removed, as LoRaMac-node ApplyCFList), dr = the join DR.
        """
        pending = self._join_pending
        if pending is None:
            self.joins_rejected += 1
            return False
        try:
            accept = otaa.decrypt_join_accept(phy, self._app)
        except FrameError:
            self.joins_rejected += 1
            return False
        if (
            not accept.mic_valid
            or accept.plaintext[0] & 0x03
            or accept.join_nonce in self._join_nonces
        ):
            self.joins_rejected += 1
            return False
        nwk, app = otaa.derive_session_keys(self._app, accept.join_nonce, accept.net_id, pending[0])
        self._reset_session()
        self._join_nonces.append(accept.join_nonce)
        if len(self._join_nonces) > _MAX_JOIN_NONCES:
            self._join_nonces.pop(0)
        self._set_keys(nwk, app)
        self.dev_addr = accept.dev_addr
        self.rx1_dr_offset = accept.rx1_dr_offset if accept.rx1_dr_offset <= 5 else 5
        if eu868.is_lora_dr(accept.rx2_dr):
            self.rx2_dr = accept.rx2_dr
        self.rx1_delay_s = accept.rx1_delay_s
        if accept.cflist is not None:
            self._apply_cflist(accept.cflist)
        self.dr = pending[1]
        self._joined = True
        self._note_rx(rssi, snr, dr, rx_timestamp)
        return True

    def _set_keys(self, nwk, app):
        self._nwk_raw = bytes(nwk)
        self._app_raw = bytes(app)
        self._nwk = aes128.cipher(self._nwk_raw)
        self._appskey = aes128.cipher(self._app_raw)

    def _apply_cflist(self, cflist):
        try:
            freqs = otaa.decode_cflist(cflist)
        except FrameError:
            return  # CFListType != 0: not an EU868 frequency list, ignored
        for index in range(3, MAX_CHANNELS):
            freq = freqs[index - 3] if index < 8 else 0
            if freq and _freq_ok(freq):
                self._set_channel(index, freq, eu868.DEFAULT_DR_MIN, eu868.DEFAULT_DR_MAX)
            else:
                self._set_channel(index, 0, 0, 0)

    # ----- uplinks (sections 4.3, 5, 18.4)

    def _take_answers(self, port, payload, room):
        # Moves queued MAC answers into the frame: FOpts (<= 15 bytes, with or without an app
        # payload) or, when they are longer and there is no payload, an FPort-0 FRMPayload.
        # Non-sticky answers leave the queue; sticky ones stay until a downlink arrives.
        answers = self._answers
        if not answers:
            return port, payload, 0
        total = 0
        for entry in answers:
            total += len(entry[0])
        if port is None and total > _FOPTS_MAX:
            return 0, b"".join(self._answers_fitting(room)), 0
        limit = room - len(payload)
        if limit > _FOPTS_MAX:
            limit = _FOPTS_MAX
        used = 0
        for data in self._answers_fitting(limit):
            self._fopts[used : used + len(data)] = data
            used += len(data)
        return port, payload, used

    def _answers_fitting(self, limit):
        """The queued MAC answers that fit in limit bytes, in order, marked as sent; the queue
        keeps the sticky ones and those that did not fit."""
        taken = []
        used = 0
        keep = []
        for entry in self._answers:
            data = entry[0]
            if used + len(data) <= limit:
                taken.append(data)
                used += len(data)
                entry[2] = True
                if entry[1]:
                    keep.append(entry)
            else:
                keep.append(entry)
        self._answers = keep
        return taken

    def uplink(self, port, payload, confirmed, now_ms, dr=None):
        """Build an uplink (section 4) -> TxPlan for its first transmission.

        FCntUp is 32-bit and counts every new frame; ADR bit = adr; with ADR on, ADR_ACK_CNT
        (section 4.3.1.1) sets ADRACKReq from ADR_ACK_LIMIT (64) uplinks without a downlink and,
        every ADR_ACK_DELAY (32) after that, restores the default TX power and steps the DR
        down (at DR0 the default channels are re-enabled, as in LoRaMac-node). Queued MAC
        answers ride in FOpts (or FPort 0 without payload); answers that do not fit wait for a
        later uplink (Pycom instead sends an empty frame and fails with EMSGSIZE).
        """
        if not self._joined:
            raise NotJoinedError("session: not joined, send a JoinRequest first")
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise FrameError("payload: expected bytes, got %s" % type(payload).__name__)
        if port is None:
            if len(payload):
                raise FrameError("port: needed with a non-empty payload")
        elif not _is_int(port) or not 1 <= port <= 223:
            raise FrameError("port: expected an application port 1..223, got %r" % (port,))
        if self.fcnt_up > 0xFFFFFFFF:
            raise FrameError("fcnt_up: the 32-bit counter is exhausted, join again")
        if dr is None or self.adr:
            dr = self.dr
        else:
            self._check_dr(dr, "dr")
        adr_ack_req = False
        count = self.adr_ack_cnt
        power = self.tx_power
        mask = self._mask
        if self.adr and count >= ADR_ACK_LIMIT:
            if (
                count >= ADR_ACK_LIMIT + ADR_ACK_DELAY
                and (count - ADR_ACK_LIMIT) % ADR_ACK_DELAY == 0
            ):
                power = self._power_default
                if dr > 0:
                    dr -= 1
                if dr == 0:
                    mask |= _DEFAULT_MASK
            adr_ack_req = dr > 0
        room = eu868.max_app_payload(dr)
        if len(payload) > room:
            raise PayloadSizeError(
                "payload: %d bytes, DR%d allows at most %d" % (len(payload), dr, room)
            )
        if not self._has_channel(dr, mask):
            raise RegionError("dr: no enabled channel allows DR%d" % dr)
        if self.adr:
            self.dr = dr
            self.tx_power = power
            self._mask = mask
        fport, frm, fopts_len = self._take_answers(port, bytes(payload), room)
        confirmed = bool(confirmed)
        phy = lorawan.build_data(
            lorawan.MTYPE_CONFIRMED_UP if confirmed else lorawan.MTYPE_UNCONFIRMED_UP,
            self.dev_addr,
            self.fcnt_up,
            self._nwk,
            self._appskey,
            fport,
            frm,
            adr=self.adr,
            adr_ack_req=adr_ack_req,
            ack=self._ack_pending,
            fopts=memoryview(self._fopts)[:fopts_len],
        )
        fcnt = self.fcnt_up
        self.fcnt_up = fcnt + 1
        self.adr_ack_cnt = count + 1
        self._ack_pending = False
        self._end_cycle(0)
        self._cycle_phy = phy
        self._cycle_fcnt = fcnt
        self._cycle_confirmed = confirmed
        self._cycle_dr = dr
        self._cycle_size = fopts_len + len(frm)
        return self._transmit(now_ms, dr, 0)

    def _transmit(self, now_ms, dr, delay_ms):
        phy = self._cycle_phy
        toa = _toa(dr, len(phy))
        count, wait = self._candidates(now_ms + delay_ms, dr, toa, False)
        wait += delay_ms
        index = self._cands[self._random(count)]
        freq = self._freq[index]
        self._dc.record(now_ms + wait, freq, toa)
        delay1 = self.rx1_delay_s * 1000
        rx1 = _window(delay1, self._rx1f[index] or freq, eu868.rx1_dr(dr, self.rx1_dr_offset))
        rx2 = _window(delay1 + 1000, self.rx2_freq_hz, self.rx2_dr)
        plan = TxPlan(
            "data", phy, freq, dr, eu868.tx_power_eirp(self.tx_power), toa, now_ms, wait, rx1, rx2
        )
        self._trials += 1
        plan.fcnt = self._cycle_fcnt
        plan.confirmed = self._cycle_confirmed
        plan.attempt = self._trials
        self._record_tx(plan, self._trials)
        return plan

    def no_downlink(self, now_ms):
        """End of the receive windows without a (sufficient) downlink -> TxPlan or None.

        Join: forgets the pending DevNonce, returns None (the caller schedules the next
        join_request). Confirmed uplink: retransmits the same frame (same FCnt) after
        ACK_TIMEOUT (1-3 s) up to tx_retries + 1 transmissions, with the DR of section 18.4
        (transmissions 1-2 at DR, 3-4 at DR-1, ...; LoRaMac-node) when the frame fits and a
        channel allows it; then None with TX_FAILED_EVENT. Unconfirmed: repeats up to NbTrans
        (LinkADRReq) transmissions, then None with TX_PACKET_EVENT.
        """
        if self._join_pending is not None:
            self._join_pending = None
            return None
        if self._cycle_phy is None:
            return None
        if self._cycle_confirmed:
            if self._trials >= self.tx_retries + 1:
                self._end_cycle(TX_FAILED_EVENT)
                return None
            dr = self._cycle_dr - self._trials // 2
            if dr < 0:
                dr = 0
            if self._cycle_size > eu868.max_app_payload(dr) or not self._has_channel(
                dr, self._mask
            ):
                dr = self._cycle_dr
            delay = (
                _ACK_TIMEOUT_MS - _ACK_TIMEOUT_RND_MS + self._random(2 * _ACK_TIMEOUT_RND_MS + 1)
            )
            return self._transmit(now_ms, dr, delay)
        if self._trials >= self.nb_trans:
            self._end_cycle(TX_PACKET_EVENT)
            return None
        return self._transmit(now_ms, self._cycle_dr, 0)

    def next_tx_ms(self, now_ms, size, dr=None):
        """Earliest start (int ms) of an uplink carrying size bytes of application payload at dr
        (None: the DR uplink() would use), or of a JoinRequest when not joined (join back-off
        included); now_ms when a channel is free now. RegionError when no channel allows dr."""
        if not self._joined:
            dr = self.join_dr if dr is None else self._check_dr(dr, "dr")
            toa = _toa(dr, lorawan.JOIN_REQUEST_SIZE)
            wait = self._candidates(now_ms, dr, toa, True)[1]
            backoff = self._backoff.wait_ms(now_ms, toa)
            if backoff > wait:
                wait = backoff + self._candidates(now_ms + backoff, dr, toa, True)[1]
            return now_ms + wait
        dr = self.dr if dr is None or self.adr else self._check_dr(dr, "dr")
        length = _DATA_OVERHEAD + size
        if length > lorawan.MAX_PHY_SIZE:
            length = lorawan.MAX_PHY_SIZE
        toa = _toa(dr, length)
        return now_ms + self._candidates(now_ms, dr, toa, False)[1]

    # ----- downlinks (sections 4, 5)

    def _note_rx(self, rssi, snr, dr, rx_timestamp):
        if rssi is not None:
            self._rssi = rssi
        if snr is not None:
            self._snr = snr
        if dr is not None:
            self._sfrx = dr
        if rx_timestamp is not None:
            self._rx_timestamp = rx_timestamp

    def on_downlink(self, phy, now_ms, rssi=None, snr=None, dr=None, rx_timestamp=None):
        """A frame heard in RX1/RX2 -> Received, or None when dropped (and counted).

        Checks in order: session, decodable data downlink with major 0 and our DevAddr
        (frames_ignored), 32-bit FCntDown rebuilt with lorawan.fcnt32 within MAX_FCNT_GAP and
        MIC (mic_failures; a gap beyond MAX_FCNT_GAP counts as a replay), FCntDown not already
        received (fcnt_replays). Then: ADR_ACK_CNT reset, sticky answers already sent are
        dropped (section 5: repeated until a downlink arrives), MAC commands of FOpts or FPort 0
        processed (answers queued for the next uplink), a confirmed downlink is ACKed in the
        next uplink, the ACK bit completes a pending confirmed uplink.
        """
        if not self._joined:
            self.frames_ignored += 1
            return None
        try:
            frame = lorawan.decode(phy)
        except FrameError:
            self.frames_ignored += 1
            return None
        if (
            frame.mtype not in (lorawan.MTYPE_UNCONFIRMED_DOWN, lorawan.MTYPE_CONFIRMED_DOWN)
            or frame.major != lorawan.MAJOR_R1
            or frame.dev_addr != self.dev_addr
        ):
            self.frames_ignored += 1
            return None
        full = lorawan.fcnt32(self.fcnt_down, frame.fcnt)
        if full is None:
            self.fcnt_replays += 1
            return None
        if not lorawan.verify_mic(frame, self._nwk, full):
            self.mic_failures += 1
            return None
        if self.fcnt_down is not None and full == self.fcnt_down:
            self.fcnt_replays += 1
            return None
        self.fcnt_down = full
        plain = lorawan.decrypt_frm_payload(frame, self._nwk, self._appskey, full)
        self._note_rx(rssi, snr, dr, rx_timestamp)
        self.adr_ack_cnt = 0
        keep = []
        for entry in self._answers:
            if not (entry[1] and entry[2]):
                keep.append(entry)
        self._answers = keep
        if frame.fport == 0:
            commands = self._process_mac(plain)
            plain = b""
        else:
            commands = self._process_mac(frame.fopts) if frame.fopts else []
        if frame.mtype == lorawan.MTYPE_CONFIRMED_DOWN:
            self._ack_pending = True
        if frame.fport:
            self._events |= RX_PACKET_EVENT
        ack = False
        done = True
        if self._cycle_phy is not None:
            if self._cycle_confirmed:
                ack = frame.ack
                done = ack
            if done:
                self._end_cycle(TX_PACKET_EVENT)
        return Received(frame, plain, full, ack, commands, done)

    # ----- MAC commands (section 5)

    def _queue(self, answer, sticky):
        total = len(answer)
        for entry in self._answers:
            total += len(entry[0])
        if total > _MAX_ANSWER_BYTES:
            self.answers_dropped += 1
            return
        self._answers.append([answer, sticky, False])

    def _process_mac(self, data):
        end = _mac_prefix(data)
        if not end:
            return []
        commands = maccmd.decode(bytes(data[:end]), False)
        i = 0
        n = len(commands)
        while i < n:
            cmd = commands[i]
            cid = cmd["cid"]
            if cid == maccmd.LINK_ADR:
                j = i + 1
                while j < n and commands[j]["cid"] == maccmd.LINK_ADR:
                    j += 1
                self._link_adr(commands, i, j)
                i = j
                continue
            if cid == maccmd.LINK_CHECK:
                self.link_check = (cmd["margin"], cmd["gw_cnt"])
            elif cid == maccmd.DUTY_CYCLE:
                self.max_duty_cycle = cmd["max_duty_cycle"]
                self._dc.set_max_duty_cycle(self.max_duty_cycle)
                self._queue(bytes((maccmd.DUTY_CYCLE,)), False)
            elif cid == maccmd.RX_PARAM_SETUP:
                self._rx_param_setup(cmd)
            elif cid == maccmd.DEV_STATUS:
                margin = int(round(self._snr))
                margin = -32 if margin < -32 else (31 if margin > 31 else margin)
                self._queue(bytes((maccmd.DEV_STATUS, self.battery, margin & 0x3F)), False)
            elif cid == maccmd.NEW_CHANNEL:
                self._new_channel(cmd)
            elif cid == maccmd.RX_TIMING_SETUP:
                self.rx1_delay_s = cmd["delay"] or 1
                self._queue(bytes((maccmd.RX_TIMING_SETUP,)), True)
            elif cid == maccmd.DL_CHANNEL:
                index = cmd["ch_index"]
                exists = index < MAX_CHANNELS and self._freq[index] != 0
                freq_ok = _freq_ok(cmd["frequency"])
                if exists and freq_ok:
                    self._rx1f[index] = cmd["frequency"]
                self._queue(
                    bytes((maccmd.DL_CHANNEL, (2 if exists else 0) | (1 if freq_ok else 0))), True
                )
            # TxParamSetupReq: EU863-870 devices do not implement it (Regional Parameters
            # 1.0.2), so no answer, as LoRaMac-node RegionEU868TxParamSetupReq.
            i += 1
        return commands

    def _link_adr(self, commands, first, end):
        # Section 5.2 with the 1.0.2 block rule: contiguous LinkADRReqs apply their masks in
        # order, the last one gives DR, TXPower, NbTrans; all or nothing, one answer each.
        mask = self._mask
        mask_ok = True
        for k in range(first, end):
            cmd = commands[k]
            cntl = cmd["ch_mask_cntl"]
            if cntl == 0:
                new_mask = cmd["ch_mask"]
                if new_mask == 0:
                    mask_ok = False
                for i in range(MAX_CHANNELS):
                    if (new_mask >> i) & 1 and not self._freq[i]:
                        mask_ok = False
                mask = new_mask
            elif cntl == 6:
                mask = 0
                for i in range(MAX_CHANNELS):
                    if self._freq[i]:
                        mask |= 1 << i
            else:
                mask_ok = False
        last = commands[end - 1]
        dr = last["data_rate"]
        power = last["tx_power"]
        dr_ok = eu868.is_lora_dr(dr) and self._has_channel(dr, mask if mask_ok else self._mask)
        power_ok = power <= eu868.TX_POWER_MAX_INDEX
        if mask_ok and dr_ok and power_ok:
            self._mask = mask
            self.dr = dr
            self.tx_power = power
            self.nb_trans = last["nb_trans"] or 1
        status = (4 if power_ok else 0) | (2 if dr_ok else 0) | (1 if mask_ok else 0)
        for _ in range(first, end):
            self._queue(bytes((maccmd.LINK_ADR, status)), False)

    def _rx_param_setup(self, cmd):
        freq_ok = _freq_ok(cmd["frequency"])
        dr_ok = eu868.is_lora_dr(cmd["rx2_data_rate"])
        offset_ok = cmd["rx1_dr_offset"] <= eu868.RX1_DR_OFFSET_MAX
        if freq_ok and dr_ok and offset_ok:
            self.rx2_freq_hz = cmd["frequency"]
            self.rx2_dr = cmd["rx2_data_rate"]
            self.rx1_dr_offset = cmd["rx1_dr_offset"]
        status = (4 if offset_ok else 0) | (2 if dr_ok else 0) | (1 if freq_ok else 0)
        self._queue(bytes((maccmd.RX_PARAM_SETUP, status)), True)

    def _new_channel(self, cmd):
        # Section 5.6; LoRaMac-node RegionEU868NewChannelReq: channels 0-2 are not modifiable.
        index = cmd["ch_index"]
        freq = cmd["frequency"]
        if index < 3 or index >= MAX_CHANNELS:
            status = 0
        elif freq == 0:
            self._set_channel(index, 0, 0, 0)
            status = 3
        else:
            dr_ok = cmd["min_dr"] <= cmd["max_dr"] <= eu868.DR_MAX
            freq_ok = _freq_ok(freq)
            if dr_ok and freq_ok:
                self._set_channel(index, freq, cmd["min_dr"], cmd["max_dr"])
            status = (2 if dr_ok else 0) | (1 if freq_ok else 0)
        self._queue(bytes((maccmd.NEW_CHANNEL, status)), False)

    # ----- persistence

    def _mic(self, body):
        return self._app.cmac(_SAVE_MAGIC + self.dev_eui + self.join_eui + body)[:4]

    def save(self, now_ms=None):
        """The session as bytes (218 + 1 + queued MAC answers + 4 CMAC; 48 more with now_ms: duty-cycle
        and join back-off state relative to now_ms). Holds the session keys: store it, never
        log it. Queued MAC answers (sticky ones included) are kept, as LoRaMac-node does."""
        time_values = None
        if now_ms is not None:
            time_values = self._dc.save(now_ms) + self._backoff.save(now_ms)
        answers = bytearray((len(self._answers),))
        for entry in self._answers:
            answers.append((1 if entry[1] else 0) | (2 if entry[2] else 0))
            answers.extend(entry[0])
        size = (
            _FIXED_BYTES + MAX_CHANNELS * _CHANNEL_BYTES + (4 * _TIME_VALUES if time_values else 0)
        )
        body = bytearray(size)
        flags = (_FLAG_JOINED if self._joined else 0) | (_FLAG_ACK if self._ack_pending else 0)
        if self.fcnt_down is not None:
            flags |= _FLAG_FCNT_DOWN
        if time_values:
            flags |= _FLAG_TIME
        body[0] = SAVE_VERSION
        body[1] = flags
        at = _put(body, 2, self.dev_addr, 4)
        if self._joined:
            body[at : at + 16] = self._nwk_raw
            body[at + 16 : at + 32] = self._app_raw
        at += 32
        at = _put(body, at, self.fcnt_up if self.fcnt_up <= 0xFFFFFFFF else 0xFFFFFFFF, 4)
        at = _put(body, at, self.fcnt_down or 0, 4)
        for value in (self.dr, self.tx_power, self.nb_trans, self.rx1_dr_offset, self.rx2_dr):
            body[at] = value
            at += 1
        body[at] = self.rx1_delay_s
        body[at + 1] = self.max_duty_cycle
        at = _put(body, at + 2, self.rx2_freq_hz, 4)
        at = _put(body, at, self.adr_ack_cnt if self.adr_ack_cnt < 0xFFFF else 0xFFFF, 2)
        at = _put(body, at, self._mask, 2)
        nonces = self._join_nonces
        body[at] = len(nonces)
        at += 1
        for k in range(_MAX_JOIN_NONCES):
            at = _put(body, at, nonces[k] if k < len(nonces) else 0, 3)
        for i in range(MAX_CHANNELS):
            at = _put(body, at, self._freq[i], 4)
            body[at] = self._drr[i]
            at = _put(body, at + 1, self._rx1f[i], 4)
        if time_values:
            for value in time_values:
                at = _put(body, at, value, 4)
        body = bytes(body) + bytes(answers)
        return body + self._mic(body)

    def restore(self, data, now_ms=None, slept_ms=0):
        """Load a save() result -> True; False (nothing changed) when it is not a valid save of
        this identity (wrong length, version, CMAC, or out-of-range field). now_ms (and how
        long ago it was saved, slept_ms) also restores duty-cycle and join back-off state."""
        if not isinstance(data, (bytes, bytearray)):
            return False
        n = len(data)
        at = _FIXED_BYTES + MAX_CHANNELS * _CHANNEL_BYTES
        if n < at + 5 or data[0] != SAVE_VERSION:
            return False
        body = bytes(data[: n - 4])
        mic = self._mic(body)
        diff = 0
        for k in range(4):
            diff |= mic[k] ^ data[n - 4 + k]
        if diff:
            return False
        flags = body[1]
        dev_addr = _get(body, 2, 4)
        nwk = body[6:22]
        app = body[22:38]
        fcnt_up = _get(body, 38, 4)
        fcnt_down = _get(body, 42, 4)
        dr, power, nb_trans, offset, rx2_dr, delay, max_dc = body[46:53]
        rx2_freq = _get(body, 53, 4)
        adr_ack_cnt = _get(body, 57, 2)
        mask = _get(body, 59, 2)
        nonce_count = body[61]
        if (
            not eu868.is_lora_dr(dr)
            or power > eu868.TX_POWER_MAX_INDEX
            or not 1 <= nb_trans <= 15
            or offset > eu868.RX1_DR_OFFSET_MAX
            or not eu868.is_lora_dr(rx2_dr)
            or not 1 <= delay <= 15
            or max_dc > 15
            or not _freq_ok(rx2_freq)
            or nonce_count > _MAX_JOIN_NONCES
        ):
            return False
        freqs = []
        drrs = bytearray(MAX_CHANNELS)
        rx1fs = []
        for i in range(MAX_CHANNELS):
            freq = _get(body, _FIXED_BYTES + _CHANNEL_BYTES * i, 4)
            drr = body[_FIXED_BYTES + _CHANNEL_BYTES * i + 4]
            rx1f = _get(body, _FIXED_BYTES + _CHANNEL_BYTES * i + 5, 4)
            if freq and (
                not _freq_ok(freq) or (drr & 0x0F) > (drr >> 4) or (drr >> 4) > eu868.DR_MAX
            ):
                return False
            if (rx1f and not _freq_ok(rx1f)) or (i < 3 and not freq):
                return False
            freqs.append(freq)
            drrs[i] = drr
            rx1fs.append(rx1f)
        time_values = None
        if flags & _FLAG_TIME:
            if len(body) < at + 4 * _TIME_VALUES + 1:
                return False
            time_values = [_get(body, at + 4 * k, 4) for k in range(_TIME_VALUES)]
            at += 4 * _TIME_VALUES
        answers = []
        count = body[at]
        at += 1
        for _ in range(count):
            if at + 2 > len(body):
                return False
            entry = maccmd.COMMANDS.get(body[at + 1])
            end = at + 2 + (entry[1] if entry else 0)
            if entry is None or end > len(body) or body[at] > 3:
                return False
            answers.append([body[at + 1 : end], bool(body[at] & 1), bool(body[at] & 2)])
            at = end
        if at != len(body):
            return False
        if time_values and now_ms is not None:
            try:
                self._dc.restore(now_ms, time_values[:10], slept_ms)
                self._backoff.restore(now_ms, time_values[10:], slept_ms)
            except RegionError:
                return False
        self._reset_session()
        self._joined = bool(flags & _FLAG_JOINED)
        if self._joined:
            self._set_keys(nwk, app)
            self.dev_addr = dev_addr
        self.fcnt_up = fcnt_up
        self.fcnt_down = fcnt_down if flags & _FLAG_FCNT_DOWN else None
        self._ack_pending = bool(flags & _FLAG_ACK)
        self.dr = dr
        self.tx_power = power
        self.nb_trans = nb_trans
        self.rx1_dr_offset = offset
        self.rx2_dr = rx2_dr
        self.rx1_delay_s = delay
        self.max_duty_cycle = max_dc
        self._dc.set_max_duty_cycle(max_dc)
        self.rx2_freq_hz = rx2_freq
        self.adr_ack_cnt = adr_ack_cnt
        self._freq = freqs
        self._drr = drrs
        self._rx1f = rx1fs
        self._mask = mask
        self._join_nonces = [_get(body, 62 + 3 * k, 3) for k in range(nonce_count)]
        self._answers = answers
        return True
