"""Simulated meters wired to a device board: S0 pulse meters and Linky TIC meters.

A scenario's `meter` table (docs/scenario.md) becomes a meter object by `parse(table, where)`
(checked, no board needed) then `build(spec, ...)` once the board and its validated device
configuration exist; `attach()` schedules it on the world's clock.

- `S0Meter` turns a load (constant `load_w`, a built-in profile, or a CSV of watts per interval)
  into pulses on the board pin of the device config's S0 input: one pulse each time the energy
  register crosses 1/pulses_per_kwh kWh, `pulse_ms` wide (EN 62053-31: >= 30 ms), active level
  from the input's pull (a pull-down idles low, so pulses are high; otherwise the line idles
  high and the meter's transistor pulls it low). Its truth is the number of pulses completed.
- `TicMeter` is a Linky: frames built with lib/linky (historique 1200 baud or standard 9600 baud,
  7E1, tariff BASE or HCHP) sent back to back on the device's TIC UART, only while the board has
  that UART open (between, it checks once per frame time). `noise` corrupts each byte with that
  probability (one flipped bit). Its truth is the total index (Wh) of the newest frame sent.

Everything random (profile noise, meter numbers, start index, noise bytes) comes from the seed
and the board name, so a scenario and seed always give the same pulses and frames.
"""

import bisect
import calendar
import csv
import math
import random
import time
from array import array
from pathlib import Path

import linky
from errors import ConfigError

S_US = 1_000_000
HOUR_US = 3600 * S_US
DAY_US = 24 * HOUR_US
WH_WUS = 3600 * S_US  # one watt-hour in watt-microseconds
DEFAULT_START_US = 10 * S_US  # a meter's load starts this long after its board powers on

KINDS = ("s0", "tic")
PROFILES = ("flat", "office", "home")
TARIFFS = ("BASE", "HCHP")
TIC_MODES = ("historique", "standard")
DEFAULT_LOAD_W = {"flat": 1000.0, "office": 3000.0, "home": 800.0}
PROFILE_NOISE = {"flat": 0.0, "office": 0.12, "home": 0.25}

# Relative load per local hour (0..23), weekdays and weekends.
_SHAPES = {
    "flat": ([1.0] * 24, [1.0] * 24),
    "office": (
        [0.2] * 7 + [0.5, 0.9, 1.0, 1.0, 1.0, 0.9, 0.85, 1.0, 1.0, 1.0, 0.9, 0.6, 0.3] + [0.2] * 4,
        [0.2] * 24,
    ),
    "home": (
        [0.4, 0.35, 0.3, 0.3, 0.3, 0.35, 0.6, 1.2, 1.0, 0.6, 0.5, 0.5]
        + [0.7, 0.6, 0.5, 0.5, 0.6, 0.9, 1.6, 2.0, 1.8, 1.4, 0.9, 0.6],
        [0.45, 0.4, 0.35, 0.3, 0.3, 0.3, 0.35, 0.5, 0.9, 1.2, 1.1, 1.0]
        + [1.2, 1.0, 0.8, 0.8, 0.9, 1.1, 1.6, 1.9, 1.7, 1.3, 0.9, 0.6],
    ),
}

_COMMON_KEYS = ("kind", "load_w", "profile", "profile_step", "start")
_S0_KEYS = _COMMON_KEYS + ("channel", "pulses_per_kwh", "pulse_ms")
_TIC_KEYS = _COMMON_KEYS + ("mode", "tariff", "noise", "start_index_wh", "hc_hours")


# -- local time (France: CET/CEST, EU summer time rule) ---------------------------------------
def _last_sunday_utc_us(year, month):
    """01:00 UTC on the last Sunday of month (the EU summer-time switch instants)."""
    last = calendar.monthrange(year, month)[1]
    day = last - (calendar.weekday(year, month, last) + 1) % 7  # weekday: Monday 0 .. Sunday 6
    return calendar.timegm((year, month, day, 1, 0, 0)) * S_US


_SUMMER = {}  # year -> (start, end) of summer time, UTC µs


def paris_offset_us(utc_us):
    """UTC offset of Europe/Paris at utc_us (µs since 1970): +1 h, +2 h in summer time."""
    year = time.gmtime(utc_us // S_US).tm_year
    summer = _SUMMER.get(year)
    if summer is None:
        summer = _SUMMER[year] = (_last_sunday_utc_us(year, 3), _last_sunday_utc_us(year, 10))
    return 2 * HOUR_US if summer[0] <= utc_us < summer[1] else HOUR_US


def local_time(utc_us):
    """(struct_time of local Paris time, summer) for utc_us."""
    offset = paris_offset_us(utc_us)
    return time.gmtime((utc_us + offset) // S_US), offset == 2 * HOUR_US


# -- parsing ----------------------------------------------------------------------------------
class MeterSpec:
    """A checked meter table: kind, the load description and the kind's own settings."""

    def __init__(self, where, kind, values):
        self.where = where
        self.kind = kind
        self.values = values

    def __getitem__(self, key):
        return self.values[key]

    def get(self, key, default=None):
        return self.values.get(key, default)

    def __repr__(self):
        return "MeterSpec(%s, %r)" % (self.kind, self.values)


def _fail(where, key, text):
    raise ConfigError("%s.%s: %s" % (where, key, text))


def _number(where, table, key, lo, hi, default, integer=False):
    value = table.get(key, default)
    if value is None:
        return None
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not lo <= value <= hi:
        _fail(
            where,
            key,
            "expected %s %s..%s, got %r" % ("an integer" if integer else "a number", lo, hi, value),
        )
    return value


def parse(table, where, folder=None):
    """Check one scenario `meter` table; where names it in errors ("device 'x'.meter")."""
    from .scenario import parse_duration_us

    if not isinstance(table, dict):
        raise ConfigError("%s: expected a table" % where)
    kind = table.get("kind")
    if kind not in KINDS:
        _fail(where, "kind", 'expected "s0" or "tic", got %r' % (kind,))
    allowed = _S0_KEYS if kind == "s0" else _TIC_KEYS
    for key in table:
        if key not in allowed:
            _fail(where, key, "unknown key (expected one of %s)" % ", ".join(allowed))
    values = {}
    load_w = _number(where, table, "load_w", 0, 1_000_000, None)
    profile = table.get("profile")
    if profile is not None and not isinstance(profile, str):
        _fail(where, "profile", "expected a built-in profile name or a CSV file, got %r" % profile)
    if profile is not None and profile not in PROFILES:
        path = Path(profile)
        if not path.is_absolute() and folder is not None:
            path = Path(folder) / path
        if not path.suffix.lower() == ".csv" and not path.is_file():
            _fail(
                where,
                "profile",
                "expected one of %s or a CSV file, got %r" % (", ".join(PROFILES), profile),
            )
        if load_w is not None:
            _fail(where, "load_w", "not with a CSV profile (the CSV holds the watts)")
        values["csv"] = _read_csv(path, where + ".profile")
    if profile is None and load_w is None:
        _fail(where, "load_w", "give the mean power (load_w) or a profile")
    values["profile"] = profile if profile in PROFILES else None
    values["load_w"] = float(load_w) if load_w is not None else None
    values["profile_step_us"] = parse_duration_us(
        table.get("profile_step", "15m"), where + ".profile_step"
    )
    if values["profile_step_us"] < S_US:
        _fail(where, "profile_step", "expected at least 1s")
    start = table.get("start")
    values["start_us"] = None if start is None else parse_duration_us(start, where + ".start")
    if kind == "s0":
        values["channel"] = _number(where, table, "channel", 1, 2, 1, integer=True)
        values["pulses_per_kwh"] = _number(
            where, table, "pulses_per_kwh", 1, 100_000, 1000, integer=True
        )
        values["pulse_ms"] = _number(where, table, "pulse_ms", 30, 1000, 60)
    else:
        mode = table.get("mode", "historique")
        if mode not in TIC_MODES:
            _fail(where, "mode", 'expected "historique" or "standard", got %r' % (mode,))
        values["mode"] = mode
        tariff = table.get("tariff", "BASE")
        if tariff not in TARIFFS:
            _fail(where, "tariff", 'expected "BASE" or "HCHP", got %r' % (tariff,))
        values["tariff"] = tariff
        values["noise"] = float(_number(where, table, "noise", 0, 1, 0.0))
        values["start_index_wh"] = _number(
            where, table, "start_index_wh", 0, 999_999_999, None, integer=True
        )
        hc = table.get("hc_hours", "22-6")
        match = None
        if isinstance(hc, str):
            parts = hc.split("-")
            if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
                match = tuple(int(p) for p in parts)
        if match is None or not all(0 <= h <= 23 for h in match) or match[0] == match[1]:
            _fail(where, "hc_hours", 'expected "FROM-TO" local hours like "22-6", got %r' % (hc,))
        values["hc_hours"] = match
    return MeterSpec(where, kind, values)


def _read_csv(path, where):
    """Watts per interval: one number per row (the last column of each row); other rows skipped."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError:
        raise ConfigError("%s: cannot read %s" % (where, path)) from None
    watts = []
    for row in rows:
        cells = [c.strip() for c in row if c.strip()]
        if not cells:
            continue
        try:
            value = float(cells[-1])
        except ValueError:
            continue  # a header
        if not 0 <= value <= 1_000_000 or math.isnan(value):
            raise ConfigError("%s: %s has a value out of 0..1000000 W: %r" % (where, path, value))
        watts.append(value)
    if not watts:
        raise ConfigError("%s: %s holds no watt values" % (where, path))
    return watts


# -- load profiles ------------------------------------------------------------------------------
class LoadProfile:
    """Power (W) as a step function of virtual time: one value per profile_step, from virtual
    time 0. Built-in shapes follow Paris local time and are scaled to the mean load_w."""

    def __init__(self, spec, rng, epoch_us, duration_us):
        self.step_us = spec["profile_step_us"]
        self.epoch_us = epoch_us
        csv_watts = spec.get("csv")
        steps = duration_us // self.step_us + 2
        if csv_watts is not None:
            self.watts = [csv_watts[k % len(csv_watts)] for k in range(steps)]
            self.name = "csv"
        elif spec["profile"] is None:
            self.watts = [spec["load_w"]] * steps
            self.name = "constant"
        else:
            name = spec["profile"]
            self.name = name
            mean = spec["load_w"] if spec["load_w"] is not None else DEFAULT_LOAD_W[name]
            weekday, weekend = _SHAPES[name]
            shape_mean = (5 * sum(weekday) + 2 * sum(weekend)) / (7 * 24)
            noise = PROFILE_NOISE[name]
            self.watts = []
            for k in range(steps):
                t = epoch_us + k * self.step_us + self.step_us // 2
                local, _ = local_time(t)
                table = weekend if local.tm_wday >= 5 else weekday
                hour = local.tm_hour + local.tm_min / 60.0
                low = table[int(hour) % 24]
                high = table[(int(hour) + 1) % 24]
                level = low + (high - low) * (hour - int(hour))
                factor = max(0.0, 1.0 + rng.gauss(0.0, noise)) if noise else 1.0
                self.watts.append(round(mean * level / shape_mean * factor, 1))

    def power_w(self, t_us):
        k = t_us // self.step_us
        return self.watts[k] if k < len(self.watts) else self.watts[-1]

    def segment_end(self, t_us):
        return (t_us // self.step_us + 1) * self.step_us

    def energy_wus(self, t0, t1):
        """Energy between virtual t0 and t1 (W·µs)."""
        total = 0.0
        t = t0
        while t < t1:
            end = min(self.segment_end(t), t1)
            total += self.power_w(t) * (end - t)
            t = end
        return total

    def time_for_energy(self, t0, energy_wus, limit_us):
        """First instant after t0 by which energy_wus has been used, or None before limit_us."""
        t = t0
        while t < limit_us:
            power = self.power_w(t)
            end = self.segment_end(t)
            if power > 0:
                needed = energy_wus / power
                if t + needed <= end:
                    return t + max(1, math.ceil(needed))
                energy_wus -= power * (end - t)
            t = end
        return None


# -- meters ---------------------------------------------------------------------------------
class Meter:
    """What every simulated meter offers the runner and the report."""

    kind = ""
    unit = ""

    def attach(self):
        raise NotImplementedError

    def truth_at(self, t_us):
        """The meter's index at virtual t_us, as the device can know it (native unit)."""
        raise NotImplementedError

    def server_value(self, decoded_report):
        """This meter's index in a decoded report (native unit), or None if it is not there."""
        raise NotImplementedError

    def describe(self):
        raise NotImplementedError


class S0Meter(Meter):
    """Pulses from a load profile on one S0 input of the device (see the module docstring)."""

    kind = "s0"
    unit = "pulses"

    def __init__(self, spec, board, device_config, seed, epoch_us, duration_us):
        self.spec = spec
        self.board = board
        self.scheduler = board.scheduler
        self.channel = spec["channel"]
        if device_config is not None:
            check_wiring(spec, device_config)
            entry = device_config["s0"][self.channel - 1]
            self.pin = entry["pin"]
            self.active = 1 if entry["pull"] == "down" else 0
        else:
            self.pin = "P10" if self.channel == 1 else "P19"
            self.active = 0
        self.idle = 1 - self.active
        self.pulses_per_kwh = spec["pulses_per_kwh"]
        self.pulse_us = int(round(spec["pulse_ms"] * 1000))
        self.gap_us = max(30_000, self.pulse_us // 2)  # pause between pulses, EN 62053-31
        self.pulse_wus = 1000 * WH_WUS / self.pulses_per_kwh
        rng = random.Random("meter:%d:%s:s0:%d" % (seed, board.name, self.channel))
        self.profile = LoadProfile(spec, rng, epoch_us, duration_us)
        self.start_us = 0  # set by build()
        self.limit_us = duration_us + DAY_US
        self.releases = array("q")  # virtual µs at which each pulse ended (the device counts it)
        self.delayed = 0  # pulses sent late because the load outran the pulse width
        self.unpowered = 0  # pulses sent while the board had no power (it cannot count them)

    def attach(self):
        self.board.drive_pin(self.pin, self.idle)
        first = self.profile.time_for_energy(self.start_us, self.pulse_wus, self.limit_us)
        if first is not None:
            self.scheduler.call_at(first, self._pulse, first)

    def _pulse(self, due):
        now = self.scheduler.now_us()
        if not self.board.powered:
            self.unpowered += 1
        self.board.drive_pin(self.pin, self.active)
        end = now + self.pulse_us
        self.scheduler.call_at(end, self._release, end)
        nxt = self.profile.time_for_energy(due, self.pulse_wus, self.limit_us)
        if nxt is None:
            return
        if nxt < end + self.gap_us:
            self.delayed += 1  # the load is above what the pulse width allows: the meter lags
        self.scheduler.call_at(max(nxt, end + self.gap_us), self._pulse, nxt)

    def _release(self, end):
        self.board.drive_pin(self.pin, self.idle)
        self.releases.append(end)

    def truth_at(self, t_us):
        return bisect.bisect_right(self.releases, t_us)

    def truth(self):
        return len(self.releases)

    def server_value(self, decoded):
        for channel in decoded.get("channels") or ():
            if channel["channel"] == self.channel - 1:
                return channel
        return None

    def index_of(self, reading):
        return reading["index"]

    def kwh(self, value):
        return value / self.pulses_per_kwh

    def describe(self):
        return {
            "kind": "s0",
            "channel": self.channel,
            "pin": self.pin,
            "pulses_per_kwh": self.pulses_per_kwh,
            "profile": self.profile.name,
            "unit": self.unit,
            "pulses_unpowered": self.unpowered,
        }


class TicMeter(Meter):
    """A Linky on the device's TIC UART (see the module docstring)."""

    kind = "tic"
    unit = "Wh"

    def __init__(self, spec, board, device_config, seed, epoch_us, duration_us):
        self.spec = spec
        self.board = board
        self.scheduler = board.scheduler
        self.mode = spec["mode"]
        self.tariff = spec["tariff"]
        self.noise = spec["noise"]
        tic = None
        if device_config is not None:
            check_wiring(spec, device_config)
            tic = device_config["tic"]
        self.uart_id = tic["uart"] if tic is not None else 1
        self.uart_key = "uart%d" % self.uart_id
        self.baud = linky.BAUDRATE[self.mode]
        self.char_us = 10 * S_US / self.baud  # 7E1: start, 7 data, parity, stop
        self.gap_us = 20_000 if self.mode == linky.HISTORIQUE else 10_000
        self.epoch_us = epoch_us
        self.rng = random.Random("meter:%d:%s:tic" % (seed, board.name))
        self.profile = LoadProfile(spec, self.rng, epoch_us, duration_us)
        self.noise_rng = random.Random("noise:%d:%s" % (seed, board.name))
        self.start_us = 0  # set by build()
        self.hc_hours = spec["hc_hours"]
        self._period_hour = None
        self._period_value = 0
        start = spec["start_index_wh"]
        if start is None:
            start = self.rng.randrange(1_000_000, 40_000_000)
        # Energy per register in W·µs (HCHP: register 0 = HC, 1 = HP), from the start index.
        if self.tariff == "BASE":
            self.energy = [float(start) * WH_WUS]
        else:
            off_peak = self.rng.randrange(start // 4, start // 2 + 1)
            self.energy = [float(off_peak) * WH_WUS, float(start - off_peak) * WH_WUS]
        self.updated_us = 0
        self.meter_id = "%012d" % self.rng.randrange(10**11, 10**12)
        self.prm = "%014d" % self.rng.randrange(10**13, 10**14)
        self.frame_ends = array("q")
        self.frame_index = array("q")
        self.frames_sent = 0
        self.frames_corrupted = 0
        self.bytes_corrupted = 0
        self._fixed = self._fixed_groups()
        self._memo = {}
        self._typical_us = None

    # -- energy ----------------------------------------------------------------------------
    def _period(self, utc_us):
        """Register in use at utc_us: 0 HC, 1 HP (HCHP); 0 for BASE."""
        if self.tariff == "BASE":
            return 0
        hour_index = utc_us // HOUR_US  # the period only changes on the hour
        if hour_index != self._period_hour:
            local, _ = local_time(utc_us)
            start, end = self.hc_hours
            hour = local.tm_hour
            off_peak = (start <= hour or hour < end) if start > end else (start <= hour < end)
            self._period_hour = hour_index
            self._period_value = 0 if off_peak else 1
        return self._period_value

    def _advance(self, t_us):
        """Integrate the load up to virtual t_us, each slice into the register in use (slices
        end at profile steps and local hour changes, where the HC/HP period can switch)."""
        t = max(self.updated_us, self.start_us)
        profile = self.profile
        epoch = self.epoch_us
        while t < t_us:
            next_hour = ((epoch + t) // HOUR_US + 1) * HOUR_US - epoch
            end = min(profile.segment_end(t), t_us, next_hour)
            self.energy[self._period(epoch + t)] += profile.power_w(t) * (end - t)
            t = end
        if t_us > self.updated_us:
            self.updated_us = t_us

    def registers_wh(self):
        return [int(e // WH_WUS) for e in self.energy]

    # -- frames ----------------------------------------------------------------------------
    def _fixed_groups(self):
        mode = self.mode
        enc = linky.encode_group
        if mode == linky.HISTORIQUE:
            return {
                "ADCO": enc("ADCO", self.meter_id, mode),
                "OPTARIF": enc("OPTARIF", "BASE" if self.tariff == "BASE" else "HC..", mode),
                "ISOUSC": enc("ISOUSC", "45", mode),
                "IMAX": enc("IMAX", "090", mode),
                "HHPHC": enc("HHPHC", "A" if self.tariff == "BASE" else "D", mode),
                "MOTDETAT": enc("MOTDETAT", "000000", mode),
            }
        fixed = {
            "ADSC": enc("ADSC", self.meter_id, mode),
            "VTIC": enc("VTIC", "02", mode),
            "NGTF": enc(
                "NGTF", "      BASE      " if self.tariff == "BASE" else " HEURE  CREUSE  ", mode
            ),
            "PREF": enc("PREF", "09", mode),
            "PCOUP": enc("PCOUP", "09", mode),
            "STGE": enc("STGE", "003A0001", mode),
            "MSG1": enc("MSG1", "PAS DE          MESSAGE         ", mode),
            "PRM": enc("PRM", self.prm, mode),
            "RELAIS": enc("RELAIS", "000", mode),
            "NJOURF": enc("NJOURF", "00", mode),
            "NJOURF+1": enc("NJOURF+1", "00", mode),
        }
        for k in range(3, 11):
            fixed["EASF%02d" % k] = enc("EASF%02d" % k, "000000000", mode)
        for k in range(3, 5):
            fixed["EASD%02d" % k] = enc("EASD%02d" % k, "000000000", mode)
        return fixed

    def _group(self, label, value, mode, stamp=None):
        """encode_group, memoised for the groups whose values repeat (power, period)."""
        key = (label, value, stamp)
        data = self._memo.get(key)
        if data is None:
            if len(self._memo) > 512:
                self._memo.clear()
            data = self._memo[key] = linky.encode_group(label, value, mode, stamp)
        return data

    def frame(self, t_us):
        """The frame the meter sends at virtual t_us: (bytes, total index Wh)."""
        self._advance(t_us)
        mode = self.mode
        enc = linky.encode_group
        memo = self._group
        fixed = self._fixed
        registers = self.registers_wh()
        total = sum(registers)
        watts = self.profile.power_w(t_us) if t_us >= self.start_us else 0.0
        va = min(99999, int(round(watts)))
        amps = min(999, int(round(watts / 230.0)))
        utc = self.epoch_us + t_us
        period = self._period(utc)
        if mode == linky.HISTORIQUE:
            parts = [b"\x02", fixed["ADCO"], fixed["OPTARIF"], fixed["ISOUSC"]]
            if self.tariff == "BASE":
                parts.append(enc("BASE", "%09d" % registers[0], mode))
                ptec = "TH.."
            else:
                parts.append(enc("HCHC", "%09d" % registers[0], mode))
                parts.append(enc("HCHP", "%09d" % registers[1], mode))
                ptec = "HC.." if period == 0 else "HP.."
            parts += [
                memo("PTEC", ptec, mode),
                memo("IINST", "%03d" % amps, mode),
                fixed["IMAX"],
                memo("PAPP", "%05d" % va, mode),
                fixed["HHPHC"],
                fixed["MOTDETAT"],
                b"\x03",
            ]
            return b"".join(parts), total
        local, summer = local_time(utc)
        stamp = "%s%02d%02d%02d%02d%02d%02d" % (
            "E" if summer else "H",
            local.tm_year % 100,
            local.tm_mon,
            local.tm_mday,
            local.tm_hour,
            local.tm_min,
            local.tm_sec,
        )
        if self.tariff == "BASE":
            easf = [registers[0], 0]
            ltarf = "      BASE      "
            ntarf = 1
        else:
            easf = registers
            ltarf = " HEURE  CREUSE  " if period == 0 else " HEURE  PLEINE  "
            ntarf = period + 1
        parts = [
            b"\x02",
            fixed["ADSC"],
            fixed["VTIC"],
            enc("DATE", "", mode, stamp),
            fixed["NGTF"],
            memo("LTARF", ltarf, mode),
            enc("EAST", "%09d" % total, mode),
            enc("EASF01", "%09d" % easf[0], mode),
            enc("EASF02", "%09d" % easf[1], mode),
        ]
        parts += [fixed["EASF%02d" % k] for k in range(3, 11)]
        parts += [
            enc("EASD01", "%09d" % easf[0], mode),
            enc("EASD02", "%09d" % easf[1], mode),
            fixed["EASD03"],
            fixed["EASD04"],
            memo("IRMS1", "%03d" % amps, mode),
            memo("URMS1", "230", mode),
            fixed["PREF"],
            fixed["PCOUP"],
            memo("SINSTS", "%05d" % va, mode),
            enc("SMAXSN", "%05d" % va, mode, stamp),
            fixed["STGE"],
            fixed["MSG1"],
            fixed["PRM"],
            fixed["RELAIS"],
            memo("NTARF", "%02d" % ntarf, mode),
            fixed["NJOURF"],
            fixed["NJOURF+1"],
            b"\x03",
        ]
        return b"".join(parts), total

    def corrupt(self, data):
        """data with each byte corrupted (one of its 7 bits flipped) with probability noise."""
        p = self.noise
        if p <= 0:
            return data, 0
        rng = self.noise_rng
        out = None
        count = 0
        if p >= 1:
            positions = range(len(data))
        else:
            positions = []
            log_q = math.log(1.0 - p)
            i = -1
            while True:
                i += 1 + int(math.log(1.0 - rng.random()) / log_q)
                if i >= len(data):
                    break
                positions.append(i)
        for i in positions:
            if out is None:
                out = bytearray(data)
            out[i] ^= 1 << rng.randrange(7)
            count += 1
        return (bytes(out) if out is not None else data), count

    # -- on the clock --------------------------------------------------------------------
    def uart_open(self):
        s = self.board.session
        if s is None or not s.alive:
            return False
        uart = s.devices.get(self.uart_key)
        return uart is not None and uart.config is not None

    def attach(self):
        self.scheduler.call_at(0, self._tick)

    def _tick(self):
        now = self.scheduler.now_us()
        if self.uart_open():
            data, total = self.frame(now)
            data, corrupted = self.corrupt(data)
            end = self.board.uart_feed(self.uart_id, data, self.baud, 7, 2, 1)
            self.frames_sent += 1
            if corrupted:
                self.frames_corrupted += 1
                self.bytes_corrupted += corrupted
            self.frame_ends.append(end)
            self.frame_index.append(total)
            if self._typical_us is None:
                self._typical_us = end - now
            nxt = end + self.gap_us
        else:
            # Nobody listens: the Linky still sends; look again one frame time later.
            if self._typical_us is None:
                self._typical_us = int(len(self.frame(now)[0]) * self.char_us)
            nxt = now + self._typical_us + self.gap_us
        self.scheduler.call_at(nxt, self._tick)

    def truth_at(self, t_us):
        k = bisect.bisect_right(self.frame_ends, t_us)
        return self.frame_index[k - 1] if k else None

    def truth(self):
        self._advance(max(self.updated_us, self.scheduler.now_us()))
        return sum(self.registers_wh())

    def server_value(self, decoded):
        tic = decoded.get("tic")
        return tic if tic and tic.get("index_wh") else None

    def index_of(self, block):
        return sum(block["index_wh"])

    def kwh(self, value):
        return value / 1000.0

    def describe(self):
        return {
            "kind": "tic",
            "mode": self.mode,
            "tariff": self.tariff,
            "uart": self.uart_id,
            "profile": self.profile.name,
            "unit": self.unit,
            "frames_sent": self.frames_sent,
            "frames_corrupted": self.frames_corrupted,
        }


def check_wiring(spec, device_config):
    """ConfigError unless the device configuration has the input the meter is wired to."""
    if spec.kind == "s0":
        inputs = device_config.get("s0") or []
        if len(inputs) < spec["channel"]:
            _fail(
                spec.where,
                "channel",
                "the device configuration has no s0 input %d (add an [[s0]] entry)"
                % spec["channel"],
            )
    elif device_config.get("tic") is None:
        _fail(spec.where, "kind", "the device configuration has no [tic] input")


def build(spec, board, device_config, seed, epoch_us, duration_us, power_on_us=0):
    """The meter object for a parsed spec on board (device_config: the validated devconfig
    Config of the board, or None for an image without one). The load starts at the spec's
    `start`, by default DEFAULT_START_US after the board is powered on."""
    cls = S0Meter if spec.kind == "s0" else TicMeter
    meter = cls(spec, board, device_config, seed, epoch_us, duration_us)
    start = spec["start_us"]
    meter.start_us = power_on_us + DEFAULT_START_US if start is None else start
    return meter


def config_inputs(specs):
    """Sensor configuration inputs for meters (used when the scenario config names none):
    {"s0": [...], "tic": {...}} with the channel's default pin, pull-up and pulses_per_kwh."""
    out = {}
    s0 = {}
    for spec in specs:
        if spec.kind == "s0":
            s0[spec["channel"]] = {
                "pin": "P10" if spec["channel"] == 1 else "P19",
                "pull": "up",
                "pulses_per_kwh": spec["pulses_per_kwh"],
            }
        else:
            out["tic"] = {"uart": 1, "mode": spec["mode"]}
    if s0:
        channels = sorted(s0)
        if channels == [2]:
            channels = [1, 2]
            s0[1] = {"pin": "P10", "pull": "up"}
        out["s0"] = [s0[c] for c in channels]
    return out
