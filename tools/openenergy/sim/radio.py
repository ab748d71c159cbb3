"""The radio medium: LoRa frames between simulated radios, LoRaSim-style, on the virtual clock.

Model (docs/radio-model.md has the sources, the figures and the reasoning):
- A transmission occupies the air for its exact time on air (lib airtime.py).
- Received power: log-distance path loss of LoRaSim (Bor et al., MSWiM 2016):
  PL(d) = PL(d0) + 10·γ·log10(d/d0) [+ per-link log-normal shadowing, σ = 0 by default],
  RSSI = P_tx − PL(d). SNR = RSSI − (−174 + 10·log10(BW) + NF).
- A frame reaches a listening radio only on matching SF and bandwidth and a frequency within
  LoRaSim's tolerance (30/60/120 kHz at 125/250/500 kHz); below the SX1272 sensitivity of its
  SF/BW it is "too weak" and, as in LoRaSim, neither locks nor interferes.
- It is demodulated only when the sender's IQ polarity and sync word equal the receiver's; a
  mismatched frame is not demodulated but still interferes.
- Collisions only between frames of the same SF, BW and channel (other SFs are quasi-orthogonal).
  Two overlapping frames collide unless the earlier one ends within the first (preamble − 5)
  symbols of the later one (LoRaSim's timing rule); colliding frames within 6 dB of each other
  are both destroyed, otherwise the stronger survives (power capture). capture_mode "sum" compares
  a frame with the sum of the frames colliding with it instead of each one.
- A radio decodes one frame at a time: it locks on the first demodulable frame whose preamble
  it can still catch (at least 5 preamble symbols left); a frame arriving while it is locked is
  lost for it ("busy", or "collided" when interference destroys it) unless it captures the locked
  one (≥ 6 dB stronger and colliding in time), in which case the radio re-locks on it.
- Half-duplex: a transmitting radio hears nothing; frames it was receiving when it started to
  transmit are lost for it.
- Faults: radio loss (each would-be reception dropped with a probability, seeded RNG) and a
  corruption hook (a heard frame delivered with a bad CRC); collisions destroy, they do not
  corrupt, unless MediumParams.collisions_corrupt is set.
Every frame emits one "radio_frame" trace event at its end with the outcome at each receiver.
"""

import math
from dataclasses import dataclass, field

import airtime
from errors import ConfigError

OFF = "off"
SLEEP = "sleep"
STANDBY = "standby"
RX = "rx"
TX = "tx"

# Outcome of a frame at one receiver (trace field "outcome").
RECEIVED = "received"
COLLIDED = "collided"  # destroyed by interference (LoRaSim power/timing rules)
TOO_WEAK = "too_weak"  # below the receiver's sensitivity for the frame's SF/BW
BUSY = "busy"  # lost because the receiver was locked on another frame
MISSED_PREAMBLE = "missed_preamble"  # the receiver started listening too late to lock on it
IQ_MISMATCH = "iq_mismatch"  # sender tx_iq != receiver rx_iq: not demodulated
SYNC_MISMATCH = "sync_mismatch"  # public/private sync word differ: not demodulated
HALF_DUPLEX = "half_duplex"  # the receiver started to transmit during the frame
ABORTED = "aborted"  # the receiver left RX (sleep, reconfiguration, power off, window end)
TRUNCATED = "truncated"  # the sender stopped transmitting mid-frame (power cut)
RADIO_LOSS = "radio_loss"  # dropped by the radio_loss fault
CRC_ERROR = "crc_error"  # heard but corrupted: delivered with crc_ok False (or None without CRC)

SYNC_PUBLIC = 0x34  # LoRaWAN public networks (Pycom public=True)
SYNC_PRIVATE = 0x12

# SX1272/73 datasheet Rev. 2 (Semtech, July 2014), LoRa receiver specification, RFS_L125 /
# RFS_L250 / RFS_L500: sensitivity with highest LNA gain and LNA boost, split RX/TX path (dBm).
# The LoPy (v1) radio is an SX1272; the LoPy4's SX1276 is within 1-2 dB of these figures.
SENSITIVITY_SX1272 = {
    (6, 125000): -121.0,
    (7, 125000): -124.0,
    (8, 125000): -127.0,
    (9, 125000): -130.0,
    (10, 125000): -133.0,
    (11, 125000): -135.0,
    (12, 125000): -137.0,
    (6, 250000): -118.0,
    (7, 250000): -122.0,
    (8, 250000): -125.0,
    (9, 250000): -128.0,
    (10, 250000): -130.0,
    (11, 250000): -132.0,
    (12, 250000): -135.0,
    (6, 500000): -111.0,
    (7, 500000): -116.0,
    (8, 500000): -119.0,
    (9, 500000): -122.0,
    (10, 500000): -125.0,
    (11, 500000): -128.0,
    (12, 500000): -129.0,
}

# LoRaSim frequencyCollision(): frames interact when their carriers are this close (Hz).
FREQ_TOLERANCE_HZ = {125000: 30000, 250000: 60000, 500000: 120000}


class RadioError(RuntimeError):
    """A radio used in a way the hardware cannot (transmitting twice at once, after power off)."""


@dataclass
class MediumParams:
    """Propagation, reception and collision parameters (defaults: LoRaSim + SX1272)."""

    gamma: float = 2.08  # path-loss exponent (LoRaSim)
    d0_m: float = 40.0  # reference distance (LoRaSim)
    pl_d0_db: float = 127.41  # path loss at d0 (LoRaSim, measured at 14 dBm)
    shadowing_sigma_db: float = 0.0  # per-link log-normal shadowing; 0 = deterministic
    min_distance_m: float = 1.0  # distances below this (co-located boards) count as this
    noise_figure_db: float = 6.0
    capture_threshold_db: float = 6.0
    capture_mode: str = "each"  # "each": beat every colliding frame; "sum": beat their sum
    lock_preamble_symbols: int = 5  # preamble symbols a receiver needs to lock on a frame
    collisions_corrupt: bool = False  # a locked frame destroyed by interference → crc_error
    omit_below_sensitivity_db: float = 10.0  # receivers further below are left out of traces
    snr_min_db: float = -32.0  # SX127x RegPktSnrValue range (signed byte / 4)
    snr_max_db: float = 31.75
    sensitivity_dbm: dict = field(default_factory=lambda: dict(SENSITIVITY_SX1272))

    @classmethod
    def from_mapping(cls, mapping, where="radio"):
        """Parameters from a scenario's [radio] table; ConfigError names a bad key or value."""
        params = cls()
        for key, value in mapping.items():
            rule = _TUNABLE.get(key)
            if rule is None:
                names = ", ".join(_TUNABLE)
                raise ConfigError(f"{where}.{key}: unknown key (expected one of {names})")
            check, expected = rule
            if not check(value):
                raise ConfigError(f"{where}.{key}: expected {expected}, got {value!r}")
            if _is_number(value) and key != "lock_preamble_symbols":
                value = float(value)
            setattr(params, key, value)
        return params


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_POSITIVE = (lambda v: _is_number(v) and v > 0, "a number > 0")
_NON_NEGATIVE = (lambda v: _is_number(v) and v >= 0, "a number >= 0")
_TUNABLE = {
    "gamma": _POSITIVE,
    "d0_m": _POSITIVE,
    "pl_d0_db": (_is_number, "a number (dB)"),
    "shadowing_sigma_db": _NON_NEGATIVE,
    "min_distance_m": _POSITIVE,
    "noise_figure_db": _NON_NEGATIVE,
    "capture_threshold_db": _NON_NEGATIVE,
    "capture_mode": (lambda v: v in ("each", "sum"), "'each' or 'sum'"),
    "lock_preamble_symbols": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 65535,
        "an integer 0..65535",
    ),
    "collisions_corrupt": (lambda v: isinstance(v, bool), "true or false"),
    "omit_below_sensitivity_db": _NON_NEGATIVE,
}


class Transmission:
    """One frame on the air."""

    __slots__ = (
        "id",
        "radio",
        "payload",
        "freq_hz",
        "sf",
        "bw_hz",
        "cr",
        "preamble",
        "iq",
        "sync_word",
        "power_dbm",
        "crc",
        "start_us",
        "end_us",
        "airtime_us",
        "symbol_us",
        "lock_deadline_us",
        "arrivals",
        "on_done",
        "truncated",
        "sent",
        "_start_event",
        "_end_event",
    )

    def __repr__(self):
        return (
            f"<Transmission #{self.id} {self.radio.name} {self.freq_hz} Hz SF{self.sf} "
            f"{len(self.payload)}B {self.start_us}..{self.end_us}>"
        )


class Arrival:
    """A transmission as seen by one receiver."""

    __slots__ = (
        "tx",
        "radio",
        "rssi_dbm",
        "power_mw",
        "mismatch",
        "destroyed",
        "locked",
        "interference_mw",
        "outcome",
    )

    def __init__(self, tx, radio, rssi_dbm):
        self.tx = tx
        self.radio = radio
        self.rssi_dbm = rssi_dbm
        self.power_mw = 0.0
        self.mismatch = None
        self.destroyed = False
        self.locked = False
        self.interference_mw = 0.0
        self.outcome = None


class RxFrame:
    """A frame handed to a receiver at its end (the radio's RxDone)."""

    __slots__ = (
        "payload",
        "rssi_dbm",
        "snr_db",
        "freq_hz",
        "sf",
        "bw_hz",
        "cr",
        "preamble",
        "iq",
        "crc",
        "crc_ok",
        "start_us",
        "end_us",
        "sender",
        "tx_id",
    )

    def __init__(self, payload, rssi_dbm, snr_db, tx, crc_ok):
        self.payload = payload
        self.rssi_dbm = rssi_dbm
        self.snr_db = snr_db
        self.freq_hz = tx.freq_hz
        self.sf = tx.sf
        self.bw_hz = tx.bw_hz
        self.cr = tx.cr
        self.preamble = tx.preamble
        self.iq = tx.iq
        self.crc = tx.crc
        self.crc_ok = crc_ok
        self.start_us = tx.start_us
        self.end_us = tx.end_us
        self.sender = tx.radio.name
        self.tx_id = tx.id

    def __repr__(self):
        return (
            f"<RxFrame #{self.tx_id} from {self.sender} {len(self.payload)}B "
            f"rssi {self.rssi_dbm:.1f} snr {self.snr_db:.2f} crc_ok {self.crc_ok!r}>"
        )


class EnergyProbe:
    """Maximum channel RSSI seen by a radio between open and close (LBT, ischannel_free)."""

    def __init__(self, medium, radio, freq_hz, bw_hz):
        self.medium = medium
        self.radio = radio
        self.freq_hz = freq_hz
        self.bw_hz = bw_hz
        self.max_dbm = medium.channel_rssi(radio, freq_hz, bw_hz)
        medium._probes.append(self)

    def _update(self):
        level = self.medium.channel_rssi(self.radio, self.freq_hz, self.bw_hz)
        if level > self.max_dbm:
            self.max_dbm = level

    def close(self):
        """Stop watching; returns the maximum RSSI (dBm) seen while open."""
        if self in self.medium._probes:
            self.medium._probes.remove(self)
        return self.max_dbm


class Radio:
    """One transceiver on the medium: sleeps, listens on one configuration, or transmits."""

    def __init__(self, medium, radio_id, name, position):
        self.medium = medium
        self.id = radio_id
        self.name = name
        self.position = (float(position[0]), float(position[1]))
        self.state = STANDBY
        self.rx_freq_hz = None
        self.rx_sf = None
        self.rx_bw_hz = None
        self.rx_iq = False
        self.rx_sync = SYNC_PUBLIC
        self.on_frame = None
        self.on_timeout = None
        self.single = False
        self.present = []
        self.locked = None
        self.current_tx = None
        self.loss_probability = 0.0
        self._timeout_event = None
        self._path_loss = {}

    # -- configuration -------------------------------------------------------------------
    def listen(
        self,
        freq_hz,
        sf,
        bw_hz,
        iq=False,
        sync_word=SYNC_PUBLIC,
        on_frame=None,
        timeout_us=None,
        single=False,
        on_timeout=None,
    ):
        """Receive on (freq_hz, sf, bw_hz, iq, sync_word) from now on.

        on_frame(RxFrame) is called at the end of each frame delivered (received or with a bad
        CRC). timeout_us opens an RX window: if no frame is locked when it elapses the radio goes
        to standby and on_timeout() is called; a frame locked by then is received to its end,
        then the window closes. single: go to standby after the first locked frame ends (SX127x
        single RX mode). A window that closes without delivering a frame (nothing locked, or the
        locked frame lost) calls on_timeout(). Listening again with the same configuration keeps
        a frame being received.
        """
        medium = self.medium
        medium._check_modulation(sf, bw_hz)
        if self.state == TX:
            raise RadioError(f"{self.name}: listen() while transmitting")
        if self.state == OFF:
            raise RadioError(f"{self.name}: listen() on a radio that is off")
        same = (
            self.state == RX
            and self.rx_freq_hz == freq_hz
            and self.rx_sf == sf
            and self.rx_bw_hz == bw_hz
            and self.rx_iq == bool(iq)
            and self.rx_sync == sync_word
        )
        self.on_frame = on_frame
        self.on_timeout = on_timeout
        self.single = single
        self._cancel_timeout()
        if timeout_us is not None:
            self._timeout_event = medium.scheduler.call_later(timeout_us, self._window_timeout)
        if same:
            return
        if self.state == RX:
            medium._stop_rx(self, ABORTED)
        self.rx_freq_hz = freq_hz
        self.rx_sf = sf
        self.rx_bw_hz = bw_hz
        self.rx_iq = bool(iq)
        self.rx_sync = sync_word
        self.state = RX
        medium._start_rx(self)

    def standby(self):
        """Stop receiving (frames being received are lost for this radio)."""
        self._leave_rx(STANDBY)

    def sleep(self):
        self._leave_rx(SLEEP)

    def off(self):
        """Power cut: stop receiving, and cut a transmission in progress short."""
        self._cancel_timeout()
        if self.state == TX:
            self.medium._truncate(self.current_tx)
        self._leave_rx(OFF)

    def power_on(self):
        if self.state == OFF:
            self.state = STANDBY

    def _leave_rx(self, new_state):
        if self.state == TX:
            raise RadioError(f"{self.name}: cannot leave TX before the frame ends")
        self._cancel_timeout()
        if self.state == RX:
            self.medium._stop_rx(self, ABORTED)
        self.state = new_state

    def _cancel_timeout(self):
        if self._timeout_event is not None:
            self._timeout_event.cancel()
            self._timeout_event = None

    def _window_timeout(self):
        self._timeout_event = None
        if self.state != RX:
            return
        if self.locked is not None:
            self.single = True  # receive the locked frame to its end, then close the window
            return
        self.medium._stop_rx(self, ABORTED)
        self.state = STANDBY
        callback = self.on_timeout
        if callback is not None:
            callback()

    def move(self, position):
        """Place the radio elsewhere (path losses are recomputed)."""
        self.position = (float(position[0]), float(position[1]))
        self.medium._forget_links(self)

    # -- transmitting ---------------------------------------------------------------------
    def transmit(
        self,
        payload,
        freq_hz,
        sf,
        bw_hz,
        cr=1,
        preamble=8,
        iq=False,
        power_dbm=14,
        crc=True,
        sync_word=SYNC_PUBLIC,
        at_us=None,
        on_done=None,
    ):
        """Put a frame on the air now, or at virtual instant at_us; returns the Transmission.

        The radio stops receiving when the frame starts (half-duplex) and is in standby after
        it; on_done(transmission) is then called (transmission.sent is False when the radio was
        off or transmitting at at_us: nothing went on the air). Raises RadioError if the radio is
        off, or already transmitting for an immediate frame; ValueError on modulation parameters
        the medium has no sensitivity for, RegionError (lib airtime) on an impossible frame.
        """
        return self.medium._transmit(
            self,
            bytes(payload),
            freq_hz,
            sf,
            bw_hz,
            cr,
            preamble,
            bool(iq),
            power_dbm,
            crc,
            sync_word,
            at_us,
            on_done,
        )

    # -- channel sensing ------------------------------------------------------------------
    def channel_rssi(self, freq_hz=None, bw_hz=None):
        """Instantaneous RSSI (dBm) on a channel: noise plus every frame on the air over it."""
        return self.medium.channel_rssi(
            self,
            self.rx_freq_hz if freq_hz is None else freq_hz,
            self.rx_bw_hz if bw_hz is None else bw_hz,
        )

    def open_probe(self, freq_hz, bw_hz):
        return EnergyProbe(self.medium, self, freq_hz, bw_hz)

    def __repr__(self):
        return f"<Radio {self.name} {self.state}>"


class Medium:
    """The shared air: radios, frames on it, and the reception rules."""

    def __init__(self, scheduler, rng, trace=None, params=None):
        self.scheduler = scheduler
        self.rng = rng
        self.trace = trace
        self.params = params if params is not None else MediumParams()
        if self.params.capture_mode not in ("each", "sum"):
            raise ValueError("capture_mode: expected 'each' or 'sum'")
        self.radios = []
        self.radio_loss = 0.0
        self.corruption_hook = None
        self.counts = {}  # outcome -> arrivals
        self.frames = 0
        self.sent = {}  # radio name -> frames it sent
        self.received = {}  # radio name -> frames it received
        self.frame_hooks = []  # hook(transmission) at the end of every frame, outcomes known
        self._next_radio_id = 0
        self._next_tx_id = 0
        self._listeners = {}  # (sf, bw) -> {freq: {radio: None}}
        self._on_air = {}  # (sf, bw) -> [Transmission] in start order
        self._all_on_air = []
        self._probes = []
        self._shadowing = {}
        self._sensitivity = dict(self.params.sensitivity_dbm)
        self._noise_dbm = {}

    # -- radios ---------------------------------------------------------------------------
    def add_radio(self, name, position):
        radio = Radio(self, self._next_radio_id, name, position)
        self._next_radio_id += 1
        self.radios.append(radio)
        return radio

    def remove_radio(self, radio):
        radio.off()
        self._forget_links(radio)
        self.radios.remove(radio)

    def radios_named(self, name):
        return [r for r in self.radios if r.name == name]

    def set_radio_loss(self, probability, target=None):
        """Drop each would-be reception with probability (at every radio, or at target: a Radio
        or a radio name). 0 ends the fault."""
        probability = float(probability)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability: expected 0..1, got {probability!r}")
        if target is None:
            self.radio_loss = probability
            return
        radios = [target] if isinstance(target, Radio) else self.radios_named(target)
        if not radios:
            raise ValueError(f"target: no radio named {target!r}")
        for radio in radios:
            radio.loss_probability = probability

    # -- propagation ----------------------------------------------------------------------
    def path_loss_db(self, a, b):
        """Path loss between two radios (dB), cached per link."""
        loss = a._path_loss.get(b.id)
        if loss is None:
            p = self.params
            d = math.hypot(a.position[0] - b.position[0], a.position[1] - b.position[1])
            d = max(d, p.min_distance_m)
            loss = p.pl_d0_db + 10.0 * p.gamma * math.log10(d / p.d0_m)
            if p.shadowing_sigma_db > 0.0:
                key = (a.id, b.id) if a.id < b.id else (b.id, a.id)
                shadow = self._shadowing.get(key)
                if shadow is None:
                    shadow = self.rng.gauss(0.0, p.shadowing_sigma_db)
                    self._shadowing[key] = shadow
                loss += shadow
            a._path_loss[b.id] = loss
            b._path_loss[a.id] = loss
        return loss

    def noise_floor_dbm(self, bw_hz):
        level = self._noise_dbm.get(bw_hz)
        if level is None:
            level = -174.0 + 10.0 * math.log10(bw_hz) + self.params.noise_figure_db
            self._noise_dbm[bw_hz] = level
        return level

    def sensitivity_dbm(self, sf, bw_hz):
        return self._sensitivity[(sf, bw_hz)]

    def snr_db(self, rssi_dbm, bw_hz):
        p = self.params
        snr = rssi_dbm - self.noise_floor_dbm(bw_hz)
        return min(max(snr, p.snr_min_db), p.snr_max_db)

    def channel_rssi(self, radio, freq_hz, bw_hz):
        """RSSI (dBm) a radio reads on a channel now: noise + all overlapping frames, any SF."""
        total = 10.0 ** (self.noise_floor_dbm(bw_hz) / 10.0)
        for tx in self._all_on_air:
            if tx.radio is radio:
                continue
            if abs(tx.freq_hz - freq_hz) * 2 < tx.bw_hz + bw_hz:
                rssi = tx.power_dbm - self.path_loss_db(tx.radio, radio)
                total += 10.0 ** (rssi / 10.0)
        return 10.0 * math.log10(total)

    def _forget_links(self, radio):
        for other_id in radio._path_loss:
            for other in self.radios:
                if other.id == other_id:
                    other._path_loss.pop(radio.id, None)
        radio._path_loss = {}

    def _check_modulation(self, sf, bw_hz):
        if (sf, bw_hz) not in self._sensitivity:
            raise ValueError(f"sf/bw_hz: no sensitivity for SF{sf!r} at {bw_hz!r} Hz")

    # -- listening ------------------------------------------------------------------------
    def _start_rx(self, radio):
        key = (radio.rx_sf, radio.rx_bw_hz)
        self._listeners.setdefault(key, {}).setdefault(radio.rx_freq_hz, {})[radio] = None
        tol = FREQ_TOLERANCE_HZ.get(radio.rx_bw_hz, radio.rx_bw_hz // 4)
        now = self.scheduler.now_us()
        for tx in self._on_air.get(key, ()):
            if tx.radio is not radio and abs(tx.freq_hz - radio.rx_freq_hz) <= tol:
                arrival = self._arrive(tx, radio)
                if arrival is not None and arrival.mismatch is None and now > tx.lock_deadline_us:
                    arrival.mismatch = MISSED_PREAMBLE
        self._relock(radio)

    def _stop_rx(self, radio, reason):
        key = (radio.rx_sf, radio.rx_bw_hz)
        by_freq = self._listeners.get(key)
        if by_freq is not None:
            group = by_freq.get(radio.rx_freq_hz)
            if group is not None:
                group.pop(radio, None)
                if not group:
                    del by_freq[radio.rx_freq_hz]
            if not by_freq:
                del self._listeners[key]
        for arrival in radio.present:
            arrival.outcome = reason
            arrival.locked = False
        radio.present = []
        radio.locked = None

    def _listeners_for(self, tx):
        by_freq = self._listeners.get((tx.sf, tx.bw_hz))
        if not by_freq:
            return ()
        tol = FREQ_TOLERANCE_HZ.get(tx.bw_hz, tx.bw_hz // 4)
        found = []
        for freq, group in by_freq.items():
            if abs(freq - tx.freq_hz) <= tol:
                found.extend(group)
        return found

    # -- transmitting ---------------------------------------------------------------------
    def _transmit(
        self, radio, payload, freq_hz, sf, bw_hz, cr, preamble, iq, power_dbm, crc, sync, at, done
    ):
        self._check_modulation(sf, bw_hz)
        if radio.state == OFF:
            raise RadioError(f"{radio.name}: transmit() on a radio that is off")
        now = self.scheduler.now_us()
        immediate = at is None or at <= now
        if immediate and radio.state == TX:
            raise RadioError(f"{radio.name}: transmit() while already transmitting")
        tx = Transmission()
        tx.id = self._next_tx_id
        self._next_tx_id += 1
        tx.radio = radio
        tx.payload = payload
        tx.freq_hz = int(freq_hz)
        tx.sf = sf
        tx.bw_hz = bw_hz
        tx.cr = cr
        tx.preamble = preamble
        tx.iq = iq
        tx.sync_word = sync
        tx.power_dbm = float(power_dbm)
        tx.crc = bool(crc)
        # The SX127x counts at least 6 programmed preamble symbols.
        tx.airtime_us = airtime.time_on_air_us(
            sf, bw_hz, len(payload), cr, max(preamble, 6), tx.crc, False, None
        )
        tx.symbol_us = airtime.symbol_time_us(sf, bw_hz)
        tx.arrivals = []
        tx.on_done = done
        tx.truncated = False
        tx.sent = False
        tx._end_event = None
        if immediate:
            tx._start_event = None
            self._start_tx(tx)
        else:
            tx.start_us = int(at)
            tx.end_us = tx.start_us + tx.airtime_us
            tx._start_event = self.scheduler.call_at(tx.start_us, self._start_tx, tx)
        return tx

    def _start_tx(self, tx):
        radio = tx.radio
        tx._start_event = None
        if radio.state == OFF or radio.state == TX:
            # Off or busy at the scheduled instant: nothing goes on the air.
            if tx.on_done is not None:
                tx.on_done(tx)
            return
        if radio.state == RX:
            radio._cancel_timeout()
            self._stop_rx(radio, HALF_DUPLEX)
        radio.state = TX
        radio.current_tx = tx
        tx.sent = True
        now = self.scheduler.now_us()
        tx.start_us = now
        tx.end_us = now + tx.airtime_us
        lock_symbols = max(0, tx.preamble - self.params.lock_preamble_symbols)
        tx.lock_deadline_us = now + lock_symbols * tx.symbol_us
        key = (tx.sf, tx.bw_hz)
        self._on_air.setdefault(key, []).append(tx)
        self._all_on_air.append(tx)
        for receiver in self._listeners_for(tx):
            if receiver is radio:
                continue
            arrival = self._arrive(tx, receiver)
            if arrival is not None and arrival.outcome is None and arrival.mismatch is None:
                self._lock_new(receiver, arrival)
        for probe in list(self._probes):
            probe._update()
        tx._end_event = self.scheduler.call_at(tx.end_us, self._end_tx, tx)

    def _arrive(self, tx, receiver):
        """Add tx to what receiver hears; apply the collision rules against what it already hears."""
        rssi = tx.power_dbm - self.path_loss_db(tx.radio, receiver)
        sensitivity = self._sensitivity[(tx.sf, tx.bw_hz)]
        if rssi < sensitivity - self.params.omit_below_sensitivity_db:
            return None  # far out of range: not even listed
        arrival = Arrival(tx, receiver, rssi)
        tx.arrivals.append(arrival)
        if rssi < sensitivity:
            arrival.outcome = TOO_WEAK
            return arrival
        arrival.power_mw = 10.0 ** (rssi / 10.0)
        if tx.iq != receiver.rx_iq:
            arrival.mismatch = IQ_MISMATCH
        elif tx.sync_word != receiver.rx_sync:
            arrival.mismatch = SYNC_MISMATCH
        for earlier in receiver.present:
            if earlier.tx.end_us > tx.lock_deadline_us:
                self._collide(earlier, arrival)
        receiver.present.append(arrival)
        return arrival

    def _collide(self, earlier, later):
        p = self.params
        if p.capture_mode == "each":
            diff = later.rssi_dbm - earlier.rssi_dbm
            if diff >= p.capture_threshold_db:
                earlier.destroyed = True
            elif diff <= -p.capture_threshold_db:
                later.destroyed = True
            else:
                earlier.destroyed = True
                later.destroyed = True
        else:
            earlier.interference_mw += later.power_mw
            later.interference_mw += earlier.power_mw

    def _lock_new(self, receiver, arrival):
        current = receiver.locked
        if current is None:
            receiver.locked = arrival
            arrival.locked = True
            return
        if (
            arrival.rssi_dbm - current.rssi_dbm >= self.params.capture_threshold_db
            and current.tx.end_us > arrival.tx.lock_deadline_us
        ):
            current.locked = False
            current.destroyed = True
            receiver.locked = arrival
            arrival.locked = True

    def _relock(self, receiver):
        """Lock on the strongest frame whose preamble can still be caught, if any."""
        if receiver.locked is not None or receiver.state != RX:
            return
        now = self.scheduler.now_us()
        best = None
        for arrival in receiver.present:
            if arrival.mismatch is not None or now > arrival.tx.lock_deadline_us:
                continue
            if best is None or arrival.rssi_dbm > best.rssi_dbm:
                best = arrival
        if best is not None:
            best.locked = True
            receiver.locked = best

    def _truncate(self, tx):
        if tx._end_event is not None:
            tx._end_event.cancel()
        tx.truncated = True
        tx.end_us = self.scheduler.now_us()
        self._end_tx(tx)

    def _end_tx(self, tx):
        tx._end_event = None
        radio = tx.radio
        self._on_air[(tx.sf, tx.bw_hz)].remove(tx)
        self._all_on_air.remove(tx)
        p = self.params
        deliveries = []
        released = []
        for arrival in tx.arrivals:
            if arrival.outcome is not None:
                continue
            receiver = arrival.radio
            receiver.present.remove(arrival)
            if arrival.mismatch is not None:
                arrival.outcome = arrival.mismatch
                continue
            if (
                p.capture_mode == "sum"
                and not arrival.destroyed
                and arrival.interference_mw > 0.0
                and arrival.rssi_dbm - 10.0 * math.log10(arrival.interference_mw)
                < p.capture_threshold_db
            ):
                arrival.destroyed = True
            if not arrival.locked:
                arrival.outcome = COLLIDED if arrival.destroyed else BUSY
                continue
            arrival.locked = False
            receiver.locked = None
            released.append(receiver)
            if tx.truncated:
                arrival.outcome = TRUNCATED
            elif arrival.destroyed:
                if p.collisions_corrupt:
                    arrival.outcome = CRC_ERROR
                    deliveries.append((receiver, self._frame(arrival, corrupt=True)))
                else:
                    arrival.outcome = COLLIDED
            elif self._lost(receiver):
                arrival.outcome = RADIO_LOSS
            elif self.corruption_hook is not None and self.corruption_hook(arrival):
                arrival.outcome = CRC_ERROR
                deliveries.append((receiver, self._frame(arrival, corrupt=True)))
            else:
                arrival.outcome = RECEIVED
                if receiver.on_frame is not None:
                    deliveries.append((receiver, self._frame(arrival, corrupt=False)))
        if radio.current_tx is tx:
            radio.current_tx = None
            if radio.state == TX:
                radio.state = STANDBY
        self._account(tx)
        closed = []
        for receiver in released:
            if receiver.single and receiver.state == RX:
                self._stop_rx(receiver, ABORTED)
                receiver._cancel_timeout()
                receiver.state = STANDBY
                if not any(r is receiver for r, _ in deliveries):
                    closed.append(receiver)
            else:
                self._relock(receiver)
        for receiver, frame in deliveries:
            if receiver.on_frame is not None:
                receiver.on_frame(frame)
        for receiver in closed:
            if receiver.on_timeout is not None:
                receiver.on_timeout()
        if tx.on_done is not None:
            tx.on_done(tx)

    def _lost(self, receiver):
        p_global = self.radio_loss
        p_radio = receiver.loss_probability
        if p_global <= 0.0 and p_radio <= 0.0:
            return False
        p = 1.0 - (1.0 - p_global) * (1.0 - p_radio)
        return self.rng.random() < p

    def _frame(self, arrival, corrupt):
        tx = arrival.tx
        payload = tx.payload
        crc_ok = True if tx.crc else None
        if corrupt:
            crc_ok = False if tx.crc else None
            if payload:
                index = self.rng.randrange(len(payload))
                flipped = bytearray(payload)
                flipped[index] ^= 1 << self.rng.randrange(8)
                payload = bytes(flipped)
        snr = self.snr_db(arrival.rssi_dbm, tx.bw_hz)
        return RxFrame(payload, arrival.rssi_dbm, snr, tx, crc_ok)

    def _account(self, tx):
        self.frames += 1
        counts = self.counts
        received = self.received
        for arrival in tx.arrivals:
            counts[arrival.outcome] = counts.get(arrival.outcome, 0) + 1
            if arrival.outcome == "received":
                name = arrival.radio.name
                received[name] = received.get(name, 0) + 1
        name = tx.radio.name
        self.sent[name] = self.sent.get(name, 0) + 1
        for hook in self.frame_hooks:
            hook(tx)
        trace = self.trace
        if trace is None or not getattr(trace, "enabled", True):
            return
        receivers = []
        for arrival in tx.arrivals:
            receivers.append(
                {
                    "radio": arrival.radio.name,
                    "outcome": arrival.outcome,
                    "rssi": round(arrival.rssi_dbm, 2),
                    "snr": round(self.snr_db(arrival.rssi_dbm, tx.bw_hz), 2),
                }
            )
        trace.emit(
            "radio_frame",
            tx_id=tx.id,
            sender=tx.radio.name,
            start_us=tx.start_us,
            end_us=tx.end_us,
            airtime_us=tx.airtime_us,
            freq_hz=tx.freq_hz,
            sf=tx.sf,
            bw_hz=tx.bw_hz,
            cr=tx.cr,
            preamble=tx.preamble,
            iq=tx.iq,
            power_dbm=tx.power_dbm,
            crc=tx.crc,
            size=len(tx.payload),
            data=tx.payload.hex(),
            truncated=tx.truncated,
            receivers=receivers,
        )


def max_range_m(sf, bw_hz, power_dbm=14.0, params=None):
    """Distance at which the mean RSSI falls to the sensitivity (no shadowing), in metres."""
    p = params if params is not None else MediumParams()
    budget = power_dbm - p.sensitivity_dbm[(sf, bw_hz)] - p.pl_d0_db
    return p.d0_m * 10.0 ** (budget / (10.0 * p.gamma))
