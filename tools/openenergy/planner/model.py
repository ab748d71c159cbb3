"""Fast Monte-Carlo capacity model: packet delivery of one channel/SF against the number of sensors.

The radio rules are those of the simulator's medium (tools/openenergy/sim/radio.py, after
LoRaSim 0.2.1 — Bor, Roedig, Voigt, Alonso, MSWiM 2016), applied to whole arrays of frames:

- received power: log-distance path loss, PL(d) = PL(d0) + 10·γ·log10(d/d0) (+ per-link
  log-normal shadowing when the medium's sigma is set; 0 by default, as in LoRaSim);
  a frame below the gateway's sensitivity for its SF/BW is lost and does not interfere;
- two frames collide when they overlap in time, unless the earlier one ends within the first
  (preamble − 5) symbols of the later one (timing rule); ``timing_rule=False`` makes any
  overlap a collision (pure ALOHA);
- a collided frame survives only if it is at least 6 dB stronger than every frame it collides
  with (power capture, pairwise as in LoRaSim); ``capture=False`` destroys both;
- the gateway is half-duplex: optional downlinks (RX1, 1 s after a received uplink) make it deaf
  for their time on air. With a gateway always listening, its single demodulator changes
  nothing else: a frame it cannot lock on is always also destroyed by the rules above
  (docs/planner.md, section 3; a test checks it frame by frame against the medium).

Every uplink has the same time on air (one SF, one payload size), so the frames a frame collides
with are two contiguous runs of the start-sorted arrays: found with ``searchsorted`` and reduced
with ``maximum.reduceat`` — no per-frame Python loop.
"""

import math
from dataclasses import asdict, dataclass, field, replace

import airtime
import numpy as np
from errors import ConfigError

from openenergy.sim.radio import MediumParams, max_range_m

POISSON = "poisson"
PERIODIC = "periodic"
DISC = "disc"
EQUAL = "equal"

DAY_S = 86400.0
# LoRaWAN frame overhead around the application payload: MHDR 1, DevAddr 4, FCtrl 1, FCnt 2,
# FPort 1, MIC 4 (no FOpts).
LORAWAN_OVERHEAD = 13
# An acknowledgement-only downlink: MHDR, FHDR without FOpts, MIC (no FPort, no payload).
DOWNLINK_ACK_LEN = 12
RX1_DELAY_S = 1.0


@dataclass(frozen=True)
class Scenario:
    """One network: `sensors` uplink-only devices around `gateways` single-channel gateways.

    phy_len is the PHY payload in bytes (application payload + LORAWAN_OVERHEAD). radius_m None
    means the range of the SF at power_dbm (max_range_m()), so every sensor can be heard
    (3/4 of it with several gateways: see disc_radius_m()).
    interval_s is the mean time between the starts of a sensor's frames. traffic: POISSON
    (exponential silences between frames, as LoRaSim) or PERIODIC (a random phase per sensor,
    each frame moved by up to ±jitter·interval). placement: DISC (uniform in the disc) or EQUAL
    (every sensor at radius_m from the first gateway: equal powers). duration_s is simulated
    time, stretched to reach min_frames uplinks on average and cut to stay below max_frames
    (0: no limit; extreme loads only).
    flag_reset_bug reproduces LoRaSim revision 218, where a frame's own collision at its
    arrival was forgotten (docs/planner.md); it exists for the validation only.
    """

    sensors: int
    interval_s: float
    sf: int = 7
    bw_hz: int = 125000
    phy_len: int = 34
    cr: int = 1
    preamble: int = 8
    power_dbm: float = 14.0
    radius_m: float = None
    gateways: int = 1
    capture: bool = True
    timing_rule: bool = True
    traffic: str = POISSON
    jitter: float = 0.05
    placement: str = DISC
    downlink_ratio: float = 0.0
    downlink_len: int = DOWNLINK_ACK_LEN
    duration_s: float = DAY_S
    min_frames: int = 0
    max_frames: int = 1000000
    flag_reset_bug: bool = False
    medium: MediumParams = field(default_factory=MediumParams)

    def airtime_s(self):
        return (
            airtime.time_on_air_us(self.sf, self.bw_hz, self.phy_len, self.cr, self.preamble) / 1e6
        )

    def symbol_s(self):
        return airtime.symbol_time_us(self.sf, self.bw_hz) / 1e6

    def offered_load(self):
        """G: airtime offered per second of channel time (Erlang)."""
        return self.sensors * self.airtime_s() / self.interval_s

    def range_m(self):
        return max_range_m(self.sf, self.bw_hz, self.power_dbm, self.medium)

    def disc_radius_m(self):
        """radius_m, or by default the range (one gateway) or 3/4 of it (several gateways, on a
        circle of a third of the radius: every sensor then reaches every gateway)."""
        if self.radius_m is not None:
            return float(self.radius_m)
        return self.range_m() * (1.0 if self.gateways == 1 else 0.75)


@dataclass
class Result:
    """Outcome of one run: every uplink that started in the counted window, and what became
    of it (counted once per frame: delivered if at least one gateway received it)."""

    sensors: int
    der: float
    offered_load: float
    aloha_der: float
    sent: int
    received: int
    collided: int
    too_weak: int
    half_duplex: int
    downlinks: int
    der_stderr: float
    airtime_ms: float
    duration_s: float
    radius_m: float

    def as_dict(self):
        return asdict(self)


def aloha_der(offered_load):
    """Pure ALOHA: probability that a frame overlaps no other, e^(-2G)."""
    return math.exp(-2.0 * offered_load)


def check(scenario):
    """Raise ConfigError naming the first field of scenario that the model cannot run."""
    s = scenario
    if not isinstance(s.sensors, int) or s.sensors < 1:
        raise ConfigError(f"sensors: expected an integer >= 1, got {s.sensors!r}")
    if (s.sf, s.bw_hz) not in s.medium.sensitivity_dbm:
        raise ConfigError(f"sf/bw_hz: no sensitivity for SF{s.sf} at {s.bw_hz} Hz")
    air = s.airtime_s()
    if not s.interval_s > air:
        raise ConfigError(
            f"interval_s: expected more than one time on air ({air:.3f} s), got {s.interval_s!r}"
        )
    if s.traffic not in (POISSON, PERIODIC):
        raise ConfigError(f"traffic: expected {POISSON!r} or {PERIODIC!r}, got {s.traffic!r}")
    if s.traffic == PERIODIC and not 0.0 <= s.jitter <= 0.5 * (1.0 - air / s.interval_s):
        raise ConfigError(
            f"jitter: expected 0..0.5 of the interval minus a frame, got {s.jitter!r}"
        )
    if s.placement not in (DISC, EQUAL):
        raise ConfigError(f"placement: expected {DISC!r} or {EQUAL!r}, got {s.placement!r}")
    if not isinstance(s.gateways, int) or s.gateways < 1:
        raise ConfigError(f"gateways: expected an integer >= 1, got {s.gateways!r}")
    if s.radius_m is not None and not s.radius_m > 0:
        raise ConfigError(f"radius_m: expected a distance > 0, got {s.radius_m!r}")
    if not 0.0 <= s.downlink_ratio <= 1.0:
        raise ConfigError(f"downlink_ratio: expected 0..1, got {s.downlink_ratio!r}")
    if not s.duration_s > 0:
        raise ConfigError(f"duration_s: expected > 0, got {s.duration_s!r}")
    if s.medium.capture_mode != "each":
        raise ConfigError("medium.capture_mode: the model implements 'each' (LoRaSim) only")


# ------------------------------------------------------------------ the collision rules


def _range_max(values, first, stop):
    """max(values[first[k]:stop[k]]) for every k; -inf where the range is empty.

    Ranges must move forward with k (first and stop non-decreasing), so that the cost is the
    total length of the ranges plus len(values).
    """
    out = np.full(len(first), -np.inf)
    nonempty = first < stop
    if not nonempty.any():
        return out
    padded = np.append(values, -np.inf)  # stop may equal len(values)
    bounds = np.empty(2 * int(nonempty.sum()), dtype=np.intp)
    bounds[0::2] = first[nonempty]
    bounds[1::2] = stop[nonempty]
    out[nonempty] = np.maximum.reduceat(padded, bounds)[0::2]
    return out


def survivors(starts, rssi, airtime_s, critical_s, capture_db=6.0, flag_reset_bug=False):
    """Which frames outlive every collision (bool array), all frames lasting airtime_s.

    starts: start times (s), sorted ascending; rssi: received power (dBm) of each frame.
    Frames E (earlier) and L (later) collide when E ends after L.start + critical_s
    (critical_s = (preamble - 5)·Ts for the timing rule, 0 for pure ALOHA). A frame survives
    when it collides with nothing, or (capture_db not None) is at least capture_db stronger
    than each frame it collides with. flag_reset_bug: only collisions with later frames count
    (LoRaSim revision 218).
    """
    n = len(starts)
    index = np.arange(n)
    # earlier partners j < i: starts[j] > starts[i] + critical - airtime
    first_earlier = np.searchsorted(starts, starts + (critical_s - airtime_s), side="right")
    # later partners j > i: starts[j] < starts[i] + airtime - critical
    stop_later = np.searchsorted(starts, starts + (airtime_s - critical_s), side="left")
    first_earlier = np.minimum(first_earlier, index)
    stop_later = np.maximum(stop_later, index + 1)
    if capture_db is None:
        hit = stop_later > index + 1
        if not flag_reset_bug:
            hit |= first_earlier < index
        return ~hit
    strongest = _range_max(rssi, index + 1, stop_later)
    if not flag_reset_bug:
        strongest = np.maximum(strongest, _range_max(rssi, first_earlier, index))
    return rssi - strongest >= capture_db


# ------------------------------------------------------------------ traffic and placement


def _poisson_starts(rng, n, interval, air, t_from, t_to):
    """Per sensor: silences Exp(interval - air) between frames (LoRaSim), so starts are spaced by
    interval on average and a sensor never overlaps itself. Returns (starts, sensor index)."""
    span = t_to - t_from
    warmup = 2.0 * interval  # the renewal process forgets how it started
    mean = (span + warmup) / interval
    k = int(mean + 6.0 * math.sqrt(mean) + 10)
    origin = t_from - warmup
    while True:
        gaps = rng.exponential(interval - air, size=(n, k)) + air
        times = origin + np.cumsum(gaps, axis=1)
        if times[:, -1].min() >= t_to:
            break
        k *= 2
    keep = (times >= t_from) & (times < t_to)
    sensor = np.broadcast_to(np.arange(n)[:, None], times.shape)[keep]
    return times[keep], sensor


def _periodic_starts(rng, n, interval, jitter, t_from, t_to, phase=None):
    """Per sensor: a uniform random phase (or the given ones), then one frame per interval, each
    moved uniformly by up to ±jitter·interval (clock drift, random back-off)."""
    if phase is None:
        phase = rng.uniform(0.0, interval, size=n)
    k0 = math.floor(t_from / interval) - 1
    k1 = math.ceil(t_to / interval) + 1
    slots = np.arange(k0, k1) * interval
    times = phase[:, None] + slots[None, :]
    if jitter > 0:
        times = times + rng.uniform(-jitter * interval, jitter * interval, size=times.shape)
    keep = (times >= t_from) & (times < t_to)
    sensor = np.broadcast_to(np.arange(n)[:, None], times.shape)[keep]
    return times[keep], sensor


def gateway_positions(count, radius):
    """One gateway at the centre; several on a circle of radius/3 at equal angles."""
    if count == 1:
        return np.zeros((1, 2))
    angles = 2.0 * math.pi * np.arange(count) / count
    return (radius / 3.0) * np.column_stack((np.cos(angles), np.sin(angles)))


def _sensor_positions(rng, scenario, radius):
    n = scenario.sensors
    angle = rng.uniform(0.0, 2.0 * math.pi, size=n)
    if scenario.placement == EQUAL:
        r = np.full(n, radius)
    else:
        r = radius * np.sqrt(rng.uniform(0.0, 1.0, size=n))
    return np.column_stack((r * np.cos(angle), r * np.sin(angle)))


def _rssi(rng, scenario, sensors_xy, gateway_xy):
    """Mean received power (dBm) of each sensor at a gateway, plus the per-link log-normal
    shadowing of the medium when its sigma is not 0 (drawn once per link)."""
    p = scenario.medium
    d = np.hypot(sensors_xy[:, 0] - gateway_xy[0], sensors_xy[:, 1] - gateway_xy[1])
    d = np.maximum(d, p.min_distance_m)
    loss = p.pl_d0_db + 10.0 * p.gamma * np.log10(d / p.d0_m)
    if p.shadowing_sigma_db > 0:
        loss = loss + rng.normal(0.0, p.shadowing_sigma_db, size=len(d))
    return scenario.power_dbm - loss


# ------------------------------------------------------------------ one run


@dataclass(frozen=True)
class Deployment:
    """Where the sensors stand and when their periodic frames fall: positions (n × 2 metres,
    gateways as gateway_positions()) and phases_s (first frame of each sensor in
    [0, interval)). The firmware engine builds its simulated building from one, so that
    simulate(scenario, seed, deployment) predicts that very building (docs/planner.md, §6)."""

    positions: np.ndarray
    phases_s: np.ndarray


def deployment(scenario, seed=0):
    """A seeded Deployment for scenario: placement as the scenario says (disc or equal), phases
    uniform over one interval. Its random stream is its own: simulate(scenario, seed) without a
    deployment draws other sensors."""
    check(scenario)
    rng = np.random.default_rng([seed, scenario.sensors, 1])
    phases = rng.uniform(0.0, scenario.interval_s, size=scenario.sensors)
    positions = _sensor_positions(rng, scenario, scenario.disc_radius_m())
    return Deployment(positions=positions, phases_s=phases)


def simulate(scenario, seed=0, deployment=None):
    """Run the model once; returns a Result. Deterministic for a given (scenario, seed).

    deployment (a Deployment of scenario.sensors sensors): use its positions and, with PERIODIC
    traffic, its phases, instead of drawing them (POISSON traffic ignores the phases)."""
    check(scenario)
    s = scenario
    if deployment is not None and (
        len(deployment.phases_s) != s.sensors or np.shape(deployment.positions) != (s.sensors, 2)
    ):
        raise ConfigError(
            f"deployment: expected {s.sensors} sensors, got {len(deployment.phases_s)}"
        )
    rng = np.random.default_rng([seed, s.sensors])
    air = s.airtime_s()
    critical = max(0, s.preamble - s.medium.lock_preamble_symbols) * s.symbol_s()
    if not s.timing_rule:
        critical = 0.0
    capture_db = s.medium.capture_threshold_db if s.capture else None
    duration = s.duration_s
    if s.min_frames:
        duration = max(duration, s.min_frames * s.interval_s / s.sensors)
    if s.max_frames:
        duration = min(duration, s.max_frames * s.interval_s / s.sensors)
    # frames starting within `margin` of the counted window [0, duration) can act on it
    margin = air
    if s.downlink_ratio > 0:
        margin += RX1_DELAY_S + downlink_airtime_s(s)
    if s.traffic == POISSON:
        starts, sensor = _poisson_starts(
            rng, s.sensors, s.interval_s, air, -margin, duration + margin
        )
    else:
        phases = None if deployment is None else np.asarray(deployment.phases_s, dtype=float)
        starts, sensor = _periodic_starts(
            rng, s.sensors, s.interval_s, s.jitter, -margin, duration + margin, phases
        )
    order = np.argsort(starts, kind="stable")
    starts = starts[order]
    sensor = sensor[order]
    counted = (starts >= 0.0) & (starts < duration)

    radius = s.disc_radius_m()
    if deployment is None:
        sensors_xy = _sensor_positions(rng, s, radius)
    else:
        sensors_xy = np.asarray(deployment.positions, dtype=float)
    sensitivity = s.medium.sensitivity_dbm[(s.sf, s.bw_hz)]
    received = []  # per gateway: bool over all frames
    audible = []
    rssi_gw = []
    for gxy in gateway_positions(s.gateways, radius):
        rssi = _rssi(rng, s, sensors_xy, gxy)[sensor]
        heard = rssi >= sensitivity
        survived = np.zeros(len(starts), dtype=bool)
        sub = np.flatnonzero(heard)
        survived[sub] = survivors(
            starts[sub], rssi[sub], air, critical, capture_db, s.flag_reset_bug
        )
        received.append(survived)
        audible.append(heard)
        rssi_gw.append(rssi)
    received = np.array(received)
    audible_any = np.array(audible).any(axis=0)
    survived_any = received.any(axis=0)

    downlinks = 0
    deaf = np.zeros_like(received)
    if s.downlink_ratio > 0:
        downlinks = _answer(starts, air, critical, received, np.array(rssi_gw), rng, s, deaf)
    delivered = (received & ~deaf).any(axis=0)

    sent = int(counted.sum())
    ok = int((delivered & counted).sum())
    too_weak = int((~audible_any & counted).sum())
    collided = int((audible_any & ~survived_any & counted).sum())
    half_duplex = int((survived_any & ~delivered & counted).sum())
    der = ok / sent if sent else 0.0
    load = s.offered_load()
    return Result(
        sensors=s.sensors,
        der=der,
        offered_load=load,
        aloha_der=aloha_der(load),
        sent=sent,
        received=ok,
        collided=collided,
        too_weak=too_weak,
        half_duplex=half_duplex,
        downlinks=downlinks,
        der_stderr=math.sqrt(der * (1.0 - der) / sent) if sent else 0.0,
        airtime_ms=air * 1e3,
        duration_s=duration,
        radius_m=radius,
    )


def downlink_airtime_s(scenario):
    """Time on air of the downlink the gateway sends in RX1 (same SF and channel, CRC off)."""
    us = airtime.time_on_air_us(
        scenario.sf,
        scenario.bw_hz,
        scenario.downlink_len,
        scenario.cr,
        scenario.preamble,
        crc=False,
    )
    return us / 1e6


def deaf_span(starts, airtime_s, critical_s, tx_start, tx_end):
    """Frames (a slice of the start-sorted `starts`) a gateway loses by transmitting from
    tx_start to tx_end: those on the air when it starts, and those starting while it sends whose
    preamble it can no longer lock on when it listens again (start + critical < tx_end)."""
    first = int(np.searchsorted(starts, tx_start - airtime_s, side="right"))
    stop = int(np.searchsorted(starts, tx_end - critical_s, side="left"))
    return slice(first, max(first, stop))


def _answer(starts, air, critical, received, rssi, rng, scenario, deaf):
    """Downlinks in RX1 for a share (downlink_ratio) of the received uplinks, in time order,
    each through the gateway that heard the uplink best; that gateway is deaf while it sends
    (deaf[g] updated). An uplink lost that way is not answered. Returns the downlink count."""
    air_dl = downlink_airtime_s(scenario)
    answer = rng.uniform(size=len(starts)) < scenario.downlink_ratio
    count = 0
    for i in np.flatnonzero(received.any(axis=0) & answer):  # every uplink lasts `air`:
        alive = received[:, i] & ~deaf[:, i]  # start order is end order
        if not alive.any():
            continue
        g = int(np.argmax(np.where(alive, rssi[:, i], -np.inf)))
        tx_start = starts[i] + air + RX1_DELAY_S
        deaf[g, deaf_span(starts, air, critical, tx_start, tx_start + air_dl)] = True
        count += 1
    return count


# ------------------------------------------------------------------ sweeps and capacity


def sweep(scenario, sensor_counts, seed=0):
    """simulate() for each sensor count (the other fields from scenario)."""
    return [simulate(replace(scenario, sensors=int(n)), seed) for n in sensor_counts]


def capacity(scenario, target_der, seed=0, limit=100000):
    """Largest sensor count whose DER is still >= target_der (0 if even one sensor is below it,
    `limit` if still above it there). Exponential search, then bisection on the integer count."""

    def ok(n):
        return simulate(replace(scenario, sensors=n), seed).der >= target_der

    if not ok(1):
        return 0
    low, high = 1, 2
    while ok(high):
        low = high
        if high >= limit:
            return limit
        high = min(2 * high, limit)
    while high - low > 1:
        mid = (low + high) // 2
        if ok(mid):
            low = mid
        else:
            high = mid
    return low
