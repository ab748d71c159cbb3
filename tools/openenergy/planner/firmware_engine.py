"""The planner's firmware engine: the real sensor and nano gateway images in the simulator.

For each sensor count, one simulated building: one nano gateway (firmware/nanogateway) and N
sensors (firmware/sensor), both unchanged, the sensors pinned to the gateway's channel and SF by
the scenario runner, placed and phased by model.deployment() so that model.simulate() can
predict the very same building. After a warm-up (power-on spread so that the gateway's duty
cycle lets the JoinAccepts through, the joins, the report history filling up) a measurement
window counts, frame by frame at the radio medium:

    DER = data frames a gateway demodulated and forwarded to the server
          / data frames the sensors put on the air
    (frames starting in the window; retransmissions are frames; JoinRequests are not counted
    but still interfere).

    records = run(prepare(settings), [20, 60, 150], seed=1)

settings is the dict `openenergy plan` builds (commands/plan.py _scenario(); measure_s
optional); prepare() checks what the sensor image can honour and returns the settings actually
run (docs/planner.md §6 has the mapping). Each record has the fields of the model's (sensors,
der, offered_load, aloha_der, sent, received, collided, too_weak, half_duplex, downlinks,
der_stderr, duration_s) and the firmware run's own: busy, other_losses, not_forwarded,
join_frames, joined, model_der (the model on the same building), model_mean_der (the model
averaged over buildings), model_der_range (5-95 % over buildings), warmup_s, wall_s,
simulated_s, events, uplinks_all, board_days, uplinks_per_wall_s, board_days_per_wall_s,
power_dbm, phy_lens.
"""

import math
import sys
import time
from dataclasses import replace

import airtime
import eu868
import meterpayload
import numpy as np
from errors import ConfigError

from openenergy.planner import model
from openenergy.sim import radio as radio_mod
from openenergy.sim import runner as runner_mod
from openenergy.sim import scenario as scenario_mod
from openenergy.sim.pycom.lorawan_mode import ANTENNA_GAIN_DB

S_US = 1_000_000
MEASURE_S = 3600.0  # default measurement window after the warm-up
# The emulated LoRaWAN stack sends at TXPower 0 (16 dBm EIRP) minus the 2.15 dBi antenna gain.
SENSOR_TX_DBM = float(math.floor(eu868.tx_power_eirp(0) - ANTENNA_GAIN_DB))
# A sensor's reports start this long after its power-on, then every interval: the simulator's
# boot time (World boot_time_us, 0.5 s) and the image's way to its loop (0.3 ms measured).
BOOT_OFFSET_S = 0.5003
# After power-on the sensor image waits until its sub-band could have sent a frame of the
# largest size (firmware/sensor/link.py Link.load(None)), then joins: the warm-up allows that,
# plus this much for a retry or two.
JOIN_MARGIN_S = 60.0
# The nano gateway keeps the 1 % duty cycle of its channel: one JoinAccept (17 bytes in RX1,
# CRC off) per 100 times its time on air. Sensors power on spread over JOIN_SPREAD times that
# per sensor (at least one interval), else most joins are refused and back off for long.
JOIN_ACCEPT_LEN = 17
JOIN_SPREAD = 1.5
WARMUP_EXTRA_INTERVALS = 20  # at most this many more intervals for late joiners
SETTLE_S = 10.0  # run past the window so its last frames end, are forwarded and answered
SPREAD_DRAWS = 100  # model buildings behind model_der_range
# firmware/sensor/app.py: each report waits a random delay of up to a tenth of the interval, at
# most SPREAD_MAX_MS (30 s); a test checks these against the image's source
REPORT_SPREAD_FRACTION = 0.1
REPORT_SPREAD_MAX_S = 30.0
NO_CAPTURE_DB = 1000.0  # --no-capture: no frame is ever 1000 dB stronger than another
SENSOR_S0 = [{"pin": "P10", "pull": "up"}]  # one S0 input, no meter wired: no pulses to simulate
_PAYLOAD_BASE = meterpayload.report_size([0])  # one S0 channel, no delta: 13 bytes
_UPLINK_MTYPES = (2, 4)  # unconfirmed / confirmed data up (MHDR >> 5)
_JOIN_MTYPE = 0


# ------------------------------------------------------------------ settings


def history_for_payload(payload, dr):
    """The sensor image's report history (deltas) whose report is `payload` bytes at dr, or
    raise ConfigError listing the sizes it can send."""
    room = eu868.max_app_payload(dr) - 5  # firmware/sensor/link.py FOPTS_RESERVE
    largest = meterpayload.max_deltas(room, 1)
    history = (payload - _PAYLOAD_BASE) // 2
    if payload < _PAYLOAD_BASE or (payload - _PAYLOAD_BASE) % 2 or history > largest:
        top = meterpayload.report_size([largest])
        raise ConfigError(
            f"--payload: the sensor image's report (one S0 channel) is 13 + 2 × history bytes: "
            f"13, 15, ..., {top} at this SF, got {payload} (use --model for other sizes)"
        )
    return history


def prepare(settings):
    """The settings the firmware engine runs: a new dict with the fields of `settings` (radius_m
    None: the range at the sensor's TX power) completed with what the images do; ConfigError
    naming the option the sensor image cannot honour."""
    s = dict(settings)
    if s["bw_hz"] != 125000:
        raise ConfigError(
            f"--bw: the sensor image sends LoRaWAN EU868 DR0-5, 125 kHz only, got "
            f"{s['bw_hz'] // 1000} kHz (use --model)"
        )
    if s["cr"] != 1:
        raise ConfigError("--cr: LoRaWAN uplinks (the sensor image) are coded 4/5 (use --model)")
    interval = s["interval_s"]
    low, high = 60, 65535  # lib/devconfig.py REPORT_INTERVAL_MIN_S / MAX_S
    if interval != int(interval) or not low <= interval <= high:
        raise ConfigError(
            f"--interval: the sensor image reports every {low}..{high} whole seconds, got "
            f"{interval:g} s (use --model)"
        )
    ratio = s.get("downlink_ratio", 0.0)
    if ratio not in (0, 0.0, 1, 1.0):
        raise ConfigError(
            f"--downlinks: the sensor image confirms every uplink or none (confirmed = always "
            f"or never): 0 or 1, got {ratio:g} (use --model)"
        )
    dr = eu868.sf_bw_to_dr(s["sf"], 125000)
    s["history"] = history_for_payload(s["payload"], dr)
    s["confirmed"] = "always" if ratio else "never"
    s["interval_s"] = float(int(interval))
    s["traffic"] = model.PERIODIC  # the image reads on a fixed period, reports after a random delay
    s["power_dbm"] = SENSOR_TX_DBM
    if s.get("radius_m") is None:
        s["radius_m"] = model_scenario(s, 1).disc_radius_m()
    s["engine"] = "firmware"
    s.setdefault("measure_s", MEASURE_S)
    if not s["measure_s"] > 0:
        raise ConfigError(f"--measure: expected a duration > 0, got {s['measure_s']!r}")
    return s


def report_spread_s(interval_s):
    """The width of the sensor image's random delay before a report (uniform over it)."""
    return min(REPORT_SPREAD_FRACTION * interval_s, REPORT_SPREAD_MAX_S)


def model_scenario(settings, sensors):
    """The model Scenario of a firmware run: periodic frames, each moved by the image's random
    report delay (uniform over report_spread_s: ± half of it around the phase), the sensor's
    power."""
    return model.Scenario(
        sensors=sensors,
        interval_s=settings["interval_s"],
        sf=settings["sf"],
        bw_hz=125000,
        phy_len=settings["payload"] + model.LORAWAN_OVERHEAD,
        cr=1,
        power_dbm=SENSOR_TX_DBM,
        radius_m=settings.get("radius_m"),
        gateways=settings["gateways"],
        capture=settings["capture"],
        traffic=model.PERIODIC,
        jitter=report_spread_s(settings["interval_s"]) / 2.0 / settings["interval_s"],
        downlink_ratio=settings.get("downlink_ratio", 0.0),
        duration_s=settings.get("measure_s", MEASURE_S),
    )


# ------------------------------------------------------------------ one building


def power_on_span_s(settings, sensors):
    """Sensors power on uniformly over this long: one interval, or longer so that the nano
    gateway's duty cycle lets their JoinAccepts through."""
    spacing = 100.0 * _airtime_s(settings["sf"], JOIN_ACCEPT_LEN, crc=False)
    return max(settings["interval_s"], JOIN_SPREAD * sensors * spacing)


def warmup_s(settings, sensors):
    """Power-on span, the first join, history + 1 readings after the last power-on: whole
    intervals (the run may add intervals for late joiners)."""
    interval = settings["interval_s"]
    dr = eu868.sf_bw_to_dr(settings["sf"], 125000)
    largest = eu868.max_app_payload(dr) + model.LORAWAN_OVERHEAD
    join = 100.0 * _airtime_s(settings["sf"], largest) + JOIN_MARGIN_S
    span = power_on_span_s(settings, sensors) + 0.5 * interval
    need = span + join + (settings["history"] + 1) * interval
    return math.ceil(need / interval) * interval


def _airtime_s(sf, phy_len, crc=True):
    return airtime.time_on_air_us(sf, 125000, phy_len, 1, 8, crc) / 1e6


def building(settings, sensors, seed):
    """The scenario dict (docs/scenario.md) of one firmware run and its model.Deployment."""
    sc = model_scenario(settings, sensors)
    placed = model.deployment(sc, seed)
    interval = settings["interval_s"]
    radius = sc.disc_radius_m()
    gateways = []
    for g, (x, y) in enumerate(model.gateway_positions(settings["gateways"], radius)):
        gateways.append(
            {
                "name": "gateway" if settings["gateways"] == 1 else f"gateway-{g + 1}",
                "image": "nanogateway",
                "position": [float(x), float(y)],
                "config": {
                    "frequency_hz": runner_mod.DEFAULT_FREQUENCY_HZ,
                    "sf": settings["sf"],
                    "bw_khz": 125,
                    "coding_rate": "4/5",
                },
            }
        )
    config = {
        "report_interval_s": int(interval),
        "history": settings["history"],
        "confirmed": settings["confirmed"],
        "s0": SENSOR_S0,
    }
    devices = []
    # each sensor powers on at the instant of its phase nearest to a uniform draw over the span
    wanted = np.random.default_rng([seed, sensors, 2]).uniform(
        0.0, power_on_span_s(settings, sensors), size=sensors
    )
    for i in range(sensors):
        first = placed.phases_s[i] - BOOT_OFFSET_S
        power_on = first + interval * round((wanted[i] - first) / interval)
        if power_on < 0:
            power_on += interval
        devices.append(
            {
                "name": f"sensor-{i + 1}",
                "image": "sensor",
                "position": [float(placed.positions[i][0]), float(placed.positions[i][1])],
                "power_on": round(power_on, 6),
                "config": dict(config),
            }
        )
    radio = {}
    if not settings["capture"]:
        radio["capture_threshold_db"] = NO_CAPTURE_DB
    total = warmup_s(settings, sensors) + settings["measure_s"] + SETTLE_S
    data = {
        "seed": seed,
        "duration": total,
        "gateway": gateways,
        "device": devices,
        "radio": radio,
    }
    return data, placed


class _Tally:
    """Frame-by-frame accounting of a run (a Runner frame hook and rxpk hook)."""

    def __init__(self, sensors, gateways, full_len):
        self.sensors = sensors  # radio name -> index
        self.gateways = set(gateways)
        self.full_len = full_len
        self.window = None  # (start_us, end_us)
        self.last_full = {}  # sensor index -> start of its newest full-size data frame
        self.frames = []  # data frames in the window: (index, start_us, payload, outcome)
        self.join_frames = 0
        self.downlinks = 0
        self.uplinks_all = 0  # data frames of the whole run (the simulator's speed)
        self.forwarded = set()
        self.powers = set()
        self.lens = set()

    def on_frame(self, tx):
        name = tx.radio.name
        start = tx.start_us
        index = self.sensors.get(name)
        if index is None:
            if name in self.gateways and self._in_window(start):
                self.downlinks += 1
            return
        mtype = tx.payload[0] >> 5 if tx.payload else -1
        if mtype not in _UPLINK_MTYPES:
            if mtype == _JOIN_MTYPE and self._in_window(start):
                self.join_frames += 1
            return
        self.uplinks_all += 1
        if len(tx.payload) == self.full_len:
            self.last_full[index] = start
        if not self._in_window(start):
            return
        self.powers.add(tx.power_dbm)
        self.lens.add(len(tx.payload))
        outcome = None
        best = None
        for arrival in tx.arrivals:
            if arrival.radio.name not in self.gateways:
                continue
            if arrival.outcome == radio_mod.RECEIVED:
                outcome = radio_mod.RECEIVED
                break
            if best is None or arrival.rssi_dbm > best.rssi_dbm:
                best = arrival
        if outcome is None:
            outcome = best.outcome if best is not None else radio_mod.TOO_WEAK
        self.frames.append((index, start, bytes(tx.payload), outcome))

    def on_rxpk(self, gateway_eui, rxpk, now_us):
        if self.window is not None and now_us >= self.window[0]:
            self.forwarded.add(bytes(rxpk["data"]))

    def _in_window(self, start):
        return self.window is not None and self.window[0] <= start < self.window[1]


def _count_record(settings, sensors, tally, measure_s):
    sent = len(tally.frames)
    outcomes = {}
    received = not_forwarded = 0
    for _index, _start, payload, outcome in tally.frames:
        if outcome == radio_mod.RECEIVED:
            if payload in tally.forwarded:
                received += 1
            else:
                not_forwarded += 1
        else:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    der = received / sent if sent else 0.0
    load = sensors * settings["airtime_ms"] / 1000.0 / settings["interval_s"]
    half_duplex = outcomes.pop(radio_mod.HALF_DUPLEX, 0) + outcomes.pop(radio_mod.ABORTED, 0)
    return {
        "sensors": sensors,
        "der": der,
        "offered_load": load,
        "aloha_der": model.aloha_der(load),
        "sent": sent,
        "received": received,
        "collided": outcomes.pop(radio_mod.COLLIDED, 0),
        "too_weak": outcomes.pop(radio_mod.TOO_WEAK, 0),
        "half_duplex": half_duplex,
        "busy": outcomes.pop(radio_mod.BUSY, 0) + outcomes.pop(radio_mod.MISSED_PREAMBLE, 0),
        "other_losses": sum(outcomes.values()),
        "not_forwarded": not_forwarded,
        "downlinks": tally.downlinks,
        "join_frames": tally.join_frames,
        "der_stderr": math.sqrt(der * (1.0 - der) / sent) if sent else 0.0,
        "duration_s": measure_s,
    }


def _sending(tally, placed, interval_s, window_start_us):
    """The sensors that sent in the window, as a Deployment: their positions and the phases
    their frames show (the median offset of their frames into the interval)."""
    seen = {}
    for index, start, _payload, _outcome in tally.frames:
        seen.setdefault(index, []).append((start - window_start_us) / S_US)
    indexes = sorted(seen)
    phases = np.empty(len(indexes))
    half = 0.5 * interval_s
    for k, index in enumerate(indexes):
        offsets = np.asarray(seen[index])
        ref = offsets[0]
        # around the first frame's offset, so phases next to 0 or the interval do not wrap
        around = (offsets - ref + half) % interval_s - half
        phases[k] = (ref + float(np.median(around))) % interval_s
    positions = np.asarray(placed.positions, dtype=float)[indexes].reshape(len(indexes), 2)
    return model.Deployment(positions=positions, phases_s=phases)


def _model_figures(settings, sensors, tally, placed, window_start_us, seed):
    """The model's DER for the building that ran (its sending sensors, their phases), its mean
    over buildings (Poisson traffic, >= 100 000 frames) and the 5-95 % range over SPREAD_DRAWS
    buildings of periodic sensors like these."""
    sc = model_scenario(settings, sensors)
    powers = sorted(tally.powers)
    if len(powers) == 1 and powers[0] != sc.power_dbm:
        sc = replace(sc, power_dbm=powers[0])
    sending = _sending(tally, placed, settings["interval_s"], window_start_us)
    same = None
    if len(sending.phases_s):
        same = model.simulate(replace(sc, sensors=len(sending.phases_s)), seed, sending).der
    mean = model.simulate(
        replace(sc, traffic=model.POISSON, duration_s=model.DAY_S, min_frames=100000), seed
    ).der
    draws = [
        model.simulate(sc, seed + 1 + k, model.deployment(sc, seed + 1 + k)).der
        for k in range(SPREAD_DRAWS)
    ]
    low, high = np.percentile(draws, [5.0, 95.0])
    return {
        "model_der": same,
        "model_mean_der": mean,
        "model_der_range": [float(low), float(high)],
    }


def run_one(settings, sensors, seed, on_progress=None):
    """One firmware run: the record of `sensors` sensors (settings from prepare())."""
    settings = prepare(settings)
    data, placed = building(settings, sensors, seed)
    sc = scenario_mod.parse(data, source="<firmware engine>")
    interval_us = int(settings["interval_s"] * S_US)
    warmup_us = int(warmup_s(settings, sensors) * S_US)
    measure_us = int(settings["measure_s"] * S_US)
    total_us = warmup_us + measure_us + int(SETTLE_S * S_US)
    full_len = settings["payload"] + model.LORAWAN_OVERHEAD
    names = {spec.name: i for i, spec in enumerate(sc.devices)}
    tally = _Tally(names, [spec.name for spec in sc.gateways], full_len)
    started = time.perf_counter()

    def progress(now_us, _until_us):
        if on_progress is not None:
            on_progress(now_us, total_us)

    with runner_mod.Runner(sc) as runner:
        runner.on_frame(tally.on_frame)
        runner.on_rxpk(tally.on_rxpk)
        start_us = warmup_us
        runner.advance(start_us, progress)
        extra = 0
        while extra < WARMUP_EXTRA_INTERVALS and not _settled(
            tally, sensors, start_us, interval_us
        ):
            start_us += interval_us
            total_us += interval_us
            extra += 1
            runner.advance(start_us, progress)
        end_us = start_us + measure_us
        tally.window = (start_us, end_us)
        runner.advance(end_us + int(SETTLE_S * S_US), progress)
        events = runner.events_run
        simulated_us = runner.world.scheduler.now_us()
    wall = time.perf_counter() - started
    record = _count_record(settings, sensors, tally, settings["measure_s"])
    record.update(_model_figures(settings, sensors, tally, placed, start_us, seed))
    powered_us = sum(max(0, simulated_us - spec.power_on_us) for spec in sc.boards())
    board_days = powered_us / S_US / 86400.0
    powers = sorted(tally.powers)
    record.update(
        {
            "joined": sum(1 for i in range(sensors) if i in tally.last_full),
            "warmup_s": start_us / S_US,
            "wall_s": wall,
            "simulated_s": simulated_us / S_US,
            "events": events,
            "uplinks_all": tally.uplinks_all,
            "board_days": board_days,
            "uplinks_per_wall_s": tally.uplinks_all / wall if wall > 0 else 0.0,
            "board_days_per_wall_s": board_days / wall if wall > 0 else 0.0,
            "power_dbm": powers[0] if len(powers) == 1 else powers,
            "phy_lens": sorted(tally.lens),
        }
    )
    return record


def _settled(tally, sensors, start_us, interval_us):
    """Every sensor sent a full-size report within the interval (and a second) before
    start_us: joined, its history full, its reports on their period."""
    if len(tally.last_full) < sensors:
        return False
    since = start_us - interval_us - S_US
    return all(t >= since for t in tally.last_full.values())


# ------------------------------------------------------------------ the sweep


def run(settings, sensors, seed):
    """One record per sensor count (see the module docstring), in the order given. A rich
    progress bar on stderr when it is a terminal."""
    settings = prepare(settings)
    counts = [int(n) for n in sensors]
    if not sys.stderr.isatty():
        return [run_one(settings, n, seed) for n in counts]
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]firmware engine[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.fields[sim]}"),
        TimeElapsedColumn(),
    )
    records = []
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        for n in counts:
            task = progress.add_task(f"{n} sensors", total=1, sim="")

            def advance(now_us, total_us, task=task):
                progress.update(task, total=total_us, completed=now_us, sim=_clock(now_us // S_US))

            records.append(run_one(settings, n, seed, advance))
            progress.remove_task(task)
    return records


def _clock(seconds):
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return "%02d:%02d:%02d" % (hours, minutes, secs)
