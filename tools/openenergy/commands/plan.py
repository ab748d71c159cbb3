"""`openenergy plan`: how many sensors one nano gateway serves — delivery ratio against sensors.

Two engines. `--model`: the fast Monte-Carlo model of the simulator's radio rules
(openenergy.planner.model). Default: the firmware engine (the real images in the simulator),
through openenergy.planner.firmware_engine: prepare(settings) -> the settings it runs (or
ConfigError naming an option the sensor image cannot honour), then run(settings, sensors, seed)
-> list of records (dicts with at least "sensors" and "der"), where settings is the dict this
command builds (gateways, sensors-independent radio and traffic fields; see _scenario()).
"""

import importlib
import importlib.util
import math
import re

import eu868
import meterpayload
import numpy as np
from errors import ConfigError, RegionError

from openenergy.cli import CliError
from openenergy.planner import model, report

SENSORS_MAX = 100000
DEFAULT_SENSORS = "10..1000"
DEFAULT_POINTS = 10
# Our typical uplink: one pulse channel with 4 deltas (the default history), docs/payload-format.md.
DEFAULT_PAYLOAD = meterpayload.report_size([4])
# Each model point simulates at least a day and at least this many uplinks (smooth curves).
MIN_FRAMES = 100000
_BW_KHZ = {"125": 125000, "250": 250000, "500": 500000}
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_FIRMWARE_ENGINE = "openenergy.planner.firmware_engine"


def register(subparsers):
    parser = subparsers.add_parser(
        "plan",
        help="how many sensors one nano gateway serves (delivery ratio against sensors)",
        description="Packet delivery ratio against the number of sensors for single-channel, "
        "single-SF nano gateways, with the pure-ALOHA line beside it, and the answer in one "
        "sentence. --model uses the fast statistical model; the default engine runs the "
        "real firmware images in the simulator.",
    )
    parser.add_argument("--gateways", default="1", metavar="N", help="gateways (default 1)")
    parser.add_argument(
        "--sensors",
        default=DEFAULT_SENSORS,
        metavar="A..B|N,N,...",
        help=f"a range A..B (--points log-spaced counts) or a list 64,100,200 "
        f"(default {DEFAULT_SENSORS})",
    )
    parser.add_argument(
        "--points",
        default=str(DEFAULT_POINTS),
        metavar="N",
        help=f"sensor counts in a range (default {DEFAULT_POINTS})",
    )
    parser.add_argument(
        "--interval",
        default="15m",
        metavar="TIME",
        help="mean time between a sensor's uplinks: 900, 900s, 15m, 1h, 1d (default 15m)",
    )
    parser.add_argument("--sf", default="7", metavar="N", help="spreading factor 7..12 (default 7)")
    parser.add_argument("--bw", default="125", metavar="KHZ", help="bandwidth: 125 (default), 250")
    parser.add_argument("--cr", default="4/5", help="coding rate 4/5..4/8 (default 4/5)")
    parser.add_argument(
        "--payload",
        metavar="BYTES",
        help=f"application payload in bytes (default {DEFAULT_PAYLOAD}: one meter channel, "
        f"4 readings); the frame adds {model.LORAWAN_OVERHEAD} bytes of LoRaWAN",
    )
    parser.add_argument(
        "--radius",
        metavar="METRES",
        help="sensors spread uniformly over a disc of this radius (default: the SF's range)",
    )
    parser.add_argument(
        "--traffic",
        default=model.POISSON,
        choices=(model.POISSON, model.PERIODIC),
        help="uplink times: poisson (default) or periodic with random phases and ±5 %% jitter",
    )
    parser.add_argument(
        "--downlinks",
        default="0",
        metavar="RATIO",
        help="share of uplinks answered in RX1 (gateway deaf while it sends), 0..1 (default 0)",
    )
    parser.add_argument(
        "--no-capture", action="store_true", help="model: no 6 dB capture (collisions kill both)"
    )
    parser.add_argument("--model", action="store_true", help="use the fast statistical model")
    parser.add_argument(
        "--measure",
        default="1h",
        metavar="TIME",
        help="firmware engine: simulated time measured after the joins (default 1h)",
    )
    parser.add_argument("--json", metavar="FILE", help="write one entry per sensor count")
    parser.add_argument("--png", metavar="FILE", help="write the curve as a PNG image")
    parser.add_argument("--seed", default="1", metavar="N", help="random seed (default 1)")
    parser.set_defaults(func=run)


def _int(name, text, low, high):
    try:
        value = int(str(text).strip(), 10)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise CliError(f"{name}: expected an integer {low}..{high}, got {text!r}")
    return value


def _float(name, text, low, high, what):
    try:
        value = float(str(text).strip())
    except ValueError:
        value = math.nan
    if not low <= value <= high:
        raise CliError(f"{name}: expected {what}, got {text!r}")
    return value


def _duration(option, text):
    """'15m' -> 900.0 seconds; units s, m/min, h, d; a bare number is seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*", str(text))
    seconds = float(match.group(1)) * _UNITS[match.group(2) or ""] if match else 0.0
    if not seconds > 0:
        raise CliError(
            f"{option}: expected a duration such as 900, 90s, 15m, 1h or 1d, got {text!r}"
        )
    return seconds


def parse_interval(text):
    """'15m' -> 900.0 seconds; units s, m/min, h, d; a bare number is seconds."""
    return _duration("--interval", text)


def parse_sensors(text, points=DEFAULT_POINTS):
    """'10..1000' -> `points` log-spaced integer counts (duplicates dropped, both ends kept);
    '64,100,200' or '200' -> those counts, sorted."""
    text = str(text).strip()
    expected = f"a range A..B or a list N,N,... of counts 1..{SENSORS_MAX}"
    if ".." in text:
        parts = text.split("..")
        if len(parts) != 2:
            raise CliError(f"--sensors: expected {expected}, got {text!r}")
        low = _int("--sensors", parts[0], 1, SENSORS_MAX)
        high = _int("--sensors", parts[1], 1, SENSORS_MAX)
        if high < low:
            raise CliError(f"--sensors: the range {text!r} ends below its start")
        counts = np.unique(np.round(np.geomspace(low, high, points)).astype(int))
        return [int(n) for n in counts]
    try:
        counts = [int(part, 10) for part in text.split(",")]
    except ValueError:
        raise CliError(f"--sensors: expected {expected}, got {text!r}") from None
    if not all(1 <= n <= SENSORS_MAX for n in counts):
        raise CliError(f"--sensors: expected {expected}, got {text!r}")
    return sorted(set(counts))


def _scenario(args):
    """The model Scenario for the command line (sensors set per point), and the settings dict."""
    gateways = _int("--gateways", args.gateways, 1, 64)
    points = _int("--points", args.points, 2, 100)
    sensors = parse_sensors(args.sensors, points)
    interval = parse_interval(args.interval)
    sf = _int("--sf", args.sf, 7, 12)
    bw_hz = _BW_KHZ.get(str(args.bw).strip())
    if bw_hz is None:
        raise CliError(f"--bw: expected 125, 250 or 500 (kHz), got {args.bw!r}")
    try:
        dr = eu868.sf_bw_to_dr(sf, bw_hz)
    except RegionError:
        raise CliError(
            f"--sf/--bw: SF{sf} at {bw_hz // 1000} kHz is not an EU868 data rate"
        ) from None
    try:
        cr = eu868.parse_codr(args.cr)
    except ValueError:
        raise CliError(f"--cr: expected 4/5, 4/6, 4/7 or 4/8, got {args.cr!r}") from None
    largest = eu868.max_app_payload(dr)
    if args.payload is None:
        payload = DEFAULT_PAYLOAD
    else:
        payload = _int("--payload", args.payload, 0, 242)
        if payload > largest:
            raise CliError(
                f"--payload: {payload} bytes exceed the EU868 maximum of {largest} at SF{sf}"
            )
    radius = None
    if args.radius is not None:
        radius = _float("--radius", args.radius, 1.0, 1e6, "a distance in metres, 1..1000000")
    downlinks = _float("--downlinks", args.downlinks, 0.0, 1.0, "a share 0..1")
    seed = _int("--seed", args.seed, 0, 2**63 - 1)
    measure = _duration("--measure", args.measure)
    scenario = model.Scenario(
        sensors=1,
        interval_s=interval,
        sf=sf,
        bw_hz=bw_hz,
        phy_len=payload + model.LORAWAN_OVERHEAD,
        cr=cr,
        radius_m=radius,
        gateways=gateways,
        capture=not args.no_capture,
        traffic=args.traffic,
        downlink_ratio=downlinks,
        min_frames=MIN_FRAMES,
    )
    try:
        model.check(scenario)
    except ConfigError as exc:  # the interval is the only field left that can be too small
        raise CliError(f"--interval: {exc}") from None
    settings = {
        "engine": "model" if args.model else "firmware",
        "gateways": gateways,
        "interval_s": interval,
        "sf": sf,
        "bw_hz": bw_hz,
        "cr": cr,
        "payload": payload,
        "phy_len": scenario.phy_len,
        "airtime_ms": scenario.airtime_s() * 1e3,
        "radius_m": scenario.disc_radius_m(),
        "traffic": args.traffic,
        "capture": scenario.capture,
        "downlink_ratio": downlinks,
        "seed": seed,
    }
    if not args.model:
        settings["measure_s"] = measure
    return scenario, sensors, settings


def _model_records(scenario, sensors, seed):
    records = []
    for result in model.sweep(scenario, sensors, seed):
        record = result.as_dict()
        record.pop("radius_m")
        record.pop("airtime_ms")
        records.append(record)
    return records


def _model_capacity(scenario, target, seed):
    n = model.capacity(scenario, target, seed, limit=SENSORS_MAX)
    if n == 0:
        return ("none", 0)
    if n >= SENSORS_MAX:
        return ("at least", SENSORS_MAX)
    return ("exact", n)


def _firmware_records(settings, sensors, seed, radius_given):
    """The settings the firmware engine runs (engine.prepare: what the sensor image can honour,
    ConfigError otherwise; without --radius, the range at the sensor's own TX power) and its
    records."""
    if importlib.util.find_spec(_FIRMWARE_ENGINE) is None:
        raise CliError("the firmware engine needs the simulator (openenergy sim); use --model")
    engine = importlib.import_module(_FIRMWARE_ENGINE)
    settings = engine.prepare(
        dict(settings, radius_m=settings["radius_m"] if radius_given else None)
    )
    return settings, list(engine.run(settings, sensors, seed))


def run(args):
    scenario, sensors, settings = _scenario(args)
    seed = settings["seed"]
    if args.model:
        records = _model_records(scenario, sensors, seed)
        cap99 = _model_capacity(scenario, 0.99, seed)
        cap90 = _model_capacity(scenario, 0.90, seed)
    else:
        settings, records = _firmware_records(settings, sensors, seed, args.radius is not None)
        cap99 = report.capacity_from_curve(records, 0.99)
        cap90 = report.capacity_from_curve(records, 0.90)
    for record in records:
        if "offered_load" not in record:
            load = record["sensors"] * settings["airtime_ms"] / 1000.0 / settings["interval_s"]
            record["offered_load"] = load
            record["aloha_der"] = model.aloha_der(load)
    gw = "one nano gateway" if settings["gateways"] == 1 else f"{settings['gateways']} gateways"
    title = f"{gw}, {report.describe(settings)} ({settings['engine']} engine)"
    report.print_table(records, title)
    duty = settings["airtime_ms"] / 1000.0 / settings["interval_s"]
    if duty > 0.01:
        print(
            f"note: each sensor is on the air {duty * 100:.1f} % of the time; EU868 allows 1 % "
            "on 868.1-868.5 MHz, so real sensors would have to send less often."
        )
    if not args.model and records and records[-1].get("model_der_range"):
        last = records[-1]
        low, high = last["model_der_range"]
        print(
            "note: each row is one building (where its sensors stand, when they were switched "
            f"on); at {last['sensors']} sensors the model puts 90 % of buildings between "
            f"{low * 100:.1f} % and {high * 100:.1f} %; --model gives the average."
        )
    print(report.answer_sentence(settings, cap99, cap90))
    if args.json:
        report.write_json(args.json, records, settings)
    if args.png:
        report.write_png(args.png, records, settings, cap99, cap90)
    return 0
