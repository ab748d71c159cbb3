"""Duty-cycle accountant per EU868 sub-band, and the LoRaWAN 1.0.2 aggregated join back-off.

DutyCycle applies the per-sub-band off-time rule of the LoRaWAN EU863-870 regional parameters
and LoRaMac-node (the stack in Pycom's firmware): after a frame of ToA ms in a sub-band whose
limit is 1/divisor, that sub-band stays closed for Toff = ToA * (divisor - 1) ms after the frame
ends, i.e. until start + ToA * divisor ("a 0.5 s frame in the 1 % sub-band 868.0-868.6 MHz closes
it for 49.5 s"). Consequence, and what the tests check: for any two sends i < j that it allowed
in one sub-band, divisor * (ToA_i + ... + ToA_(j-1)) <= t_j - t_i, so any interval of length W
holds at most W / divisor + one frame of airtime. State: one int per sub-band, nothing grows.
An optional aggregated limit 1/2^MaxDCycle over all sub-bands (DutyCycleReq, LoRaWAN 1.0.x
section 5.3) uses the same rule, as in TS001-1.0.4.

JoinBackoff enforces the aggregated JoinRequest budget of LoRaWAN 1.0.2 section 7 counted from
power-up/reset T0: airtime <= 36 s in [T0, T0+1 h), <= 36 s in [T0+1 h, T0+11 h), then <= 8.7 s in
each following 24 h period [T0+11 h+24 h*k, T0+35 h+24 h*k). State: period index + used ms.

Time is passed in by the caller as integer milliseconds of a monotonic clock (now_ms; any size:
convert and unwrap ticks outside; beyond 2^30 MicroPython uses long ints, which allocate).
Airtime is in ms (an int; a float is rounded up: airtime.time_on_air_ms_ceil() gives the int).
save()/restore() turn the state into a few 32-bit ints (for pycom.nvs_set) relative to now, so
it survives deep sleep, where the ticks clock restarts.
"""

import eu868
from errors import RegionError

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


HOUR_MS = const(3600000)
JOIN_BUDGET_FIRST_HOUR_MS = const(36000)
JOIN_BUDGET_NEXT_10H_MS = const(36000)
JOIN_BUDGET_PER_DAY_MS = const(8700)
_DAY_MS = const(86400000)
_ELEVEN_HOURS_MS = const(39600000)
_INT32_MAX = const(0x7FFFFFFF)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_time(name, value):
    if not _is_int(value):
        raise RegionError("%s: expected integer milliseconds, got %r" % (name, value))
    return value


def _airtime(value):
    if isinstance(value, float):
        if not 0 <= value < 1e12:  # also rejects nan and inf
            raise RegionError("airtime_ms: expected milliseconds >= 0, got %r" % (value,))
        whole = int(value)
        if whole < value:
            whole += 1
        value = whole
    if not _is_int(value) or value < 0:
        raise RegionError("airtime_ms: expected milliseconds >= 0, got %r" % (value,))
    return value


def _check_bands(bands):
    last_hi = None
    for band in bands:
        if len(band) != 3:
            raise RegionError("bands: expected (first_hz, last_hz, divisor) triples")
        lo, hi, divisor = band
        if not (_is_int(lo) and _is_int(hi) and _is_int(divisor)) or lo > hi or divisor < 1:
            raise RegionError("bands: bad sub-band %r" % (band,))
        if last_hi is not None and lo <= last_hi:
            raise RegionError("bands: sub-bands must be sorted and disjoint, got %r" % (band,))
        last_hi = hi
    if last_hi is None:
        raise RegionError("bands: expected at least one sub-band")


class DutyCycle:
    """Per-sub-band duty-cycle accountant: may I send airtime_ms on freq_hz now, and if not, when?

    DutyCycle(bands=None): bands is a sequence of (first_hz, last_hz, divisor) closed intervals,
    sorted and disjoint, limit 1/divisor; None = eu868.SUB_BANDS. Gaps between the given intervals
    are not transmittable (RegionError). Times in integer ms of the caller's monotonic clock.
    """

    def __init__(self, bands=None):
        if bands is None:
            bands = eu868.SUB_BANDS
        else:
            _check_bands(bands)
        self._bands = bands
        self._free = [None] * len(bands)  # per band: ms when it opens again, None = open
        self._aggregate_divisor = 1
        self._aggregate_free = None

    def band(self, freq_hz):
        """Index into the band table of the sub-band holding freq_hz (integer Hz); RegionError if none."""
        if not _is_int(freq_hz):
            raise RegionError("freq_hz: expected an integer number of Hz, got %r" % (freq_hz,))
        for index in range(len(self._bands)):
            lo, hi, _ = self._bands[index]
            if lo <= freq_hz <= hi:
                return index
        raise RegionError("freq_hz: %d Hz is in no duty-cycle sub-band" % freq_hz)

    def set_max_duty_cycle(self, max_dcycle):
        """Aggregated limit 1/2^max_dcycle over all sub-bands (DutyCycleReq MaxDCycle 0..15; 0 = none).

        Applies to frames recorded from now on.
        """
        if not _is_int(max_dcycle) or not 0 <= max_dcycle <= 15:
            raise RegionError("max_dcycle: expected 0..15, got %r" % (max_dcycle,))
        self._aggregate_divisor = 1 << max_dcycle

    def wait_ms(self, now_ms, freq_hz, airtime_ms):
        """Milliseconds to wait before a frame of airtime_ms may start on freq_hz; 0 = send now.

        now_ms: current time (int ms). freq_hz: integer Hz. airtime_ms: the frame's time on air
        (checked; the answer does not depend on it under the off-time rule). Sending at
        now_ms + wait_ms(...) is always allowed. Raises RegionError naming the bad argument.
        """
        _check_time("now_ms", now_ms)
        _airtime(airtime_ms)
        free = self._free[self.band(freq_hz)]
        wait = 0 if free is None else free - now_ms
        if self._aggregate_free is not None and self._aggregate_free - now_ms > wait:
            wait = self._aggregate_free - now_ms
        return wait if wait > 0 else 0

    def record(self, now_ms, freq_hz, airtime_ms):
        """Account a frame of airtime_ms starting at now_ms on freq_hz; return when that sub-band
        opens again (int ms, same clock).

        Record what was actually sent (at TX done, pass done_ms - airtime_ms as now_ms). A frame
        sent while wait_ms() > 0 is still accounted: its off time starts when the sub-band would
        have opened, so the long-run average stays within the limit.
        """
        _check_time("now_ms", now_ms)
        airtime = _airtime(airtime_ms)
        index = self.band(freq_hz)
        free = self._free[index]
        start = now_ms if free is None or free < now_ms else free
        free = start + airtime * self._bands[index][2]
        self._free[index] = free
        if self._aggregate_divisor > 1:
            agg = self._aggregate_free
            start = now_ms if agg is None or agg < now_ms else agg
            self._aggregate_free = start + airtime * self._aggregate_divisor
        return free

    def reset(self):
        """Forget every recorded frame (all sub-bands open); the aggregated limit is kept."""
        for index in range(len(self._free)):
            self._free[index] = None
        self._aggregate_free = None

    def save(self, now_ms):
        """State as a tuple of ints >= 0 for NVS: ms each sub-band stays closed after now_ms, then
        the aggregated one. Values are capped at 2^31 - 1. The aggregated limit itself is not
        included (it is MAC session state)."""
        _check_time("now_ms", now_ms)
        out = []
        for free in self._free + [self._aggregate_free]:
            left = 0 if free is None else free - now_ms
            out.append(0 if left < 0 else (left if left < _INT32_MAX else _INT32_MAX))
        return tuple(out)

    def restore(self, now_ms, values, slept_ms=0):
        """Load a save() result: values were saved slept_ms ago (0 if unknown: conservative).

        now_ms: the current time on the (possibly restarted) clock. Raises RegionError on a
        tuple of the wrong length or with negative or non-int entries.
        """
        _check_time("now_ms", now_ms)
        _check_time("slept_ms", slept_ms)
        if len(values) != len(self._free) + 1:
            raise RegionError("values: expected %d ints from save()" % (len(self._free) + 1))
        for value in values:
            if not _is_int(value) or value < 0:
                raise RegionError("values: expected ints >= 0, got %r" % (value,))
        slept = slept_ms if slept_ms > 0 else 0
        for index in range(len(values)):
            left = values[index] - slept
            free = now_ms + left if left > 0 else None
            if index < len(self._free):
                self._free[index] = free
            else:
                self._aggregate_free = free


def _join_period(elapsed):
    """(period index, period end as elapsed ms, budget ms) of an elapsed time since T0."""
    if elapsed < HOUR_MS:
        return 0, HOUR_MS, JOIN_BUDGET_FIRST_HOUR_MS
    if elapsed < _ELEVEN_HOURS_MS:
        return 1, _ELEVEN_HOURS_MS, JOIN_BUDGET_NEXT_10H_MS
    days = (elapsed - _ELEVEN_HOURS_MS) // _DAY_MS
    return 2 + days, _ELEVEN_HOURS_MS + (days + 1) * _DAY_MS, JOIN_BUDGET_PER_DAY_MS


class JoinBackoff:
    """Aggregated JoinRequest airtime budget of LoRaWAN 1.0.2 section 7, counted from start_ms.

    JoinBackoff(start_ms): start_ms is the power-up/reset time T0 (int ms, caller's clock).
    Combine with DutyCycle: wait max(duty.wait_ms(...), backoff.wait_ms(...), retry_delay_ms(...)).
    """

    def __init__(self, start_ms):
        self.reset(start_ms)

    def reset(self, start_ms):
        """Start over from a power-up/reset at start_ms (int ms): full budgets."""
        self._start = _check_time("start_ms", start_ms)
        self._period = 0
        self._used = 0

    def _elapsed(self, now_ms):
        elapsed = _check_time("now_ms", now_ms) - self._start
        return elapsed if elapsed > 0 else 0

    def used_ms(self, now_ms):
        """Join airtime (ms) already spent in the budget period that holds now_ms."""
        period = _join_period(self._elapsed(now_ms))[0]
        return self._used if period == self._period else 0

    def wait_ms(self, now_ms, airtime_ms):
        """Milliseconds to wait before a JoinRequest of airtime_ms may start; 0 = send now.

        Sending at now_ms + wait_ms(...) is always allowed. Raises RegionError (airtime_ms) when
        the frame can never fit (> 36 s in the first hour, > 8.7 s afterwards).
        """
        airtime = _airtime(airtime_ms)
        elapsed = _check_time("now_ms", now_ms) - self._start
        period, end, budget = _join_period(elapsed if elapsed > 0 else 0)
        used = self._used if period == self._period else 0
        if used + airtime <= budget:
            return 0
        next_budget = JOIN_BUDGET_NEXT_10H_MS if period == 0 else JOIN_BUDGET_PER_DAY_MS
        if airtime > next_budget:
            raise RegionError(
                "airtime_ms: %d ms exceeds the join back-off budget of %d ms"
                % (airtime, next_budget)
            )
        return end - elapsed

    def record(self, now_ms, airtime_ms):
        """Account a JoinRequest of airtime_ms started at now_ms (in the period holding now_ms)."""
        airtime = _airtime(airtime_ms)
        period = _join_period(self._elapsed(now_ms))[0]
        if period != self._period:
            self._period = period
            self._used = 0
        self._used += airtime

    def save(self, now_ms):
        """State as two ints for NVS: (ms since T0, reduced modulo the 24 h periods; ms used in the
        current period). Both stay below 2^31."""
        elapsed = self._elapsed(now_ms)
        period = _join_period(elapsed)[0]
        used = self._used if period == self._period else 0
        if elapsed >= _ELEVEN_HOURS_MS:
            elapsed = _ELEVEN_HOURS_MS + (elapsed - _ELEVEN_HOURS_MS) % _DAY_MS
        return (elapsed, used if used < _INT32_MAX else _INT32_MAX)

    def restore(self, now_ms, values, slept_ms=0):
        """Load a save() result taken slept_ms ago (0 if unknown: the budget clock then pauses
        while asleep, which only delays the next period). now_ms: current time, int ms."""
        _check_time("now_ms", now_ms)
        _check_time("slept_ms", slept_ms)
        if len(values) != 2:
            raise RegionError("values: expected (elapsed_ms, used_ms) from save()")
        elapsed, used = values
        if not (_is_int(elapsed) and _is_int(used)) or elapsed < 0 or used < 0:
            raise RegionError("values: expected ints >= 0, got %r" % (values,))
        before = _join_period(elapsed)[0]
        elapsed += slept_ms if slept_ms > 0 else 0
        self._start = now_ms - elapsed
        self._period = _join_period(elapsed)[0]
        self._used = used if self._period == before else 0


def retry_delay_ms(attempt, rng, base_ms=8000, max_ms=3600000):
    """Randomised delay (int ms) before JoinRequest retry number attempt (0 = first retry).

    The window doubles per attempt from base_ms up to max_ms; the delay is uniform in
    [window / 2, window] so devices that reset together drift apart (LoRaWAN 1.0.2 section 7
    asks for randomised retransmission intervals). rng: zero-argument callable returning a
    non-negative int with >= 24 random bits (machine.rng on Pycom; a seeded source in tests).
    Combine with JoinBackoff.wait_ms(), which enforces the airtime budget.
    """
    if not _is_int(attempt) or attempt < 0:
        raise RegionError("attempt: expected an int >= 0, got %r" % (attempt,))
    if not _is_int(base_ms) or base_ms < 1:
        raise RegionError("base_ms: expected an int >= 1, got %r" % (base_ms,))
    if not _is_int(max_ms) or max_ms < base_ms:
        raise RegionError("max_ms: expected an int >= base_ms, got %r" % (max_ms,))
    window = base_ms << (attempt if attempt < 24 else 24)
    if window > max_ms:
        window = max_ms
    low = window // 2
    span = window - low + 1
    draw = rng() & 0xFFFFFF
    if span > 0xFFFFFF:
        draw = (draw << 24) | (rng() & 0xFFFFFF)
    return low + draw % span
