"""Simulation scenarios: the TOML format of docs/scenario.md, parsed and checked into plain specs.

A scenario names the boards (gateways and devices, each running an image), where they stand, the
meters wired to devices, and the faults to inject. Identities and keys a scenario omits are made
deterministically from the seed, so the same file and seed always describe the same building.
"""

import calendar
import math
import random
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h|d)?\s*$")
_DURATION_PARTS = re.compile(r"^(?:\d+(?:\.\d+)?(?:us|ms|s|m|h|d))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h|d)")
_UNIT_US = {
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
}

FAULT_KINDS = ("power_cut", "wifi_outage", "server_outage", "radio_loss", "clock_drift")
_TOP_KEYS = {
    "seed",
    "duration",
    "name",
    "description",
    "start_time",
    "gateway",
    "device",
    "fault",
    "server",
    "radio",
    "stagger",
}
_BOARD_KEYS = {"name", "image", "position", "count", "config", "meter", "spacing", "power_on"}
_FAULT_KEYS = {"kind", "target", "at", "duration", "probability", "ppm", "count", "within"}


def parse_duration_us(value, field_name="duration"):
    """'90s', '15m', '6h', '2d', '250ms', '1h30m' or a number of seconds -> integer µs."""
    if isinstance(value, bool):
        raise ConfigError(
            "%s: expected a duration like 90s, 15m, 6h, 2d, got %r" % (field_name, value)
        )
    if isinstance(value, (int, float)):
        if value < 0:
            raise ConfigError("%s: expected a duration >= 0, got %r" % (field_name, value))
        return int(round(value * 1_000_000))
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return int(round(float(match.group(1)) * _UNIT_US[match.group(2) or "s"]))
        if _DURATION_PARTS.match(value.strip()):  # "1h30m", "5m30s"
            return sum(
                int(round(float(number) * _UNIT_US[unit]))
                for number, unit in _DURATION_PART.findall(value.strip())
            )
    raise ConfigError("%s: expected a duration like 90s, 15m, 6h, 2d, got %r" % (field_name, value))


@dataclass
class BoardSpec:
    """One simulated board: a gateway or a device, after `count` replicas are expanded."""

    role: str  # "gateway" or "device"
    name: str
    image: str
    position: tuple
    config: dict = field(default_factory=dict)
    meter: dict | list = field(default_factory=dict)  # one table, or a list of tables
    mac: bytes = b""  # 6-byte WiFi MAC; the LoRa DevEUI and gateway EUI derive from it
    group: str = ""  # the [[device]]/[[gateway]] table's name (replicas share it)
    power_on_us: int = 0  # virtual time at which the board is powered on

    @property
    def meters(self):
        """The simulated meters wired to the board: a list of tables (empty: none)."""
        if isinstance(self.meter, dict):
            return [self.meter] if self.meter else []
        return list(self.meter)

    @property
    def lora_mac(self):
        """The 8-byte LoRa MAC Pycom derives from the WiFi MAC: mac[0:3] + fffe + mac[3:6]."""
        return self.mac[:3] + b"\xff\xfe" + self.mac[3:]


@dataclass
class FaultSpec:
    kind: str
    target: str | None
    at_us: int
    duration_us: int
    probability: float = 0.0
    ppm: float = 0.0


@dataclass
class Scenario:
    seed: int
    duration_us: int
    gateways: list
    devices: list
    faults: list
    server: dict
    radio: dict
    start_time: str
    source: str = ""

    @property
    def epoch_s(self):
        """start_time as seconds since 1970 (UTC): the true time at virtual time 0."""
        return calendar.timegm(time.strptime(self.start_time, "%Y-%m-%dT%H:%M:%SZ"))

    @property
    def folder(self):
        """The scenario file's folder (relative paths in it, e.g. profile CSVs, start there)."""
        if self.source and not self.source.startswith("<"):
            return Path(self.source).resolve().parent
        return Path.cwd()

    def boards(self):
        return self.gateways + self.devices

    def board(self, name):
        for spec in self.boards():
            if spec.name == name:
                return spec
        raise KeyError(name)


def load(path, seed=None, duration=None):
    """Read and check a scenario file; seed/duration given here override the file's."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("scenario: no such file %s" % path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("scenario: %s is not valid TOML (%s)" % (path, exc)) from None
    return parse(data, seed=seed, duration=duration, source=str(path))


def parse(data, seed=None, duration=None, source="<scenario>"):
    """Check a scenario dict (as read from TOML) and expand it into a Scenario."""
    if not isinstance(data, dict):
        raise ConfigError("scenario: expected a table at the top level")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(
            "scenario: unknown key %r (expected one of %s)"
            % (unknown[0], ", ".join(sorted(_TOP_KEYS)))
        )
    if seed is None:
        seed = data.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError("seed: expected an integer, got %r" % (seed,))
    duration_us = parse_duration_us(
        duration if duration is not None else data.get("duration", "1d")
    )
    if duration_us <= 0:
        raise ConfigError("duration: expected a duration > 0")
    start_time = data.get("start_time", "2026-01-05T00:00:00Z")
    if not isinstance(start_time, str) or not re.match(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", start_time
    ):
        raise ConfigError(
            "start_time: expected an ISO 8601 UTC time like 2026-01-05T00:00:00Z, got %r"
            % (start_time,)
        )

    stagger_us = parse_duration_us(data.get("stagger", "2m"), "stagger")
    used_names = set()
    used_macs = set()
    gateways = _boards(data.get("gateway", []), "gateway", seed, used_names, used_macs, 0)
    devices = _boards(data.get("device", []), "device", seed, used_names, used_macs, stagger_us)
    if not gateways and not devices:
        raise ConfigError("scenario: expected at least one [[gateway]] or [[device]] table")
    groups = {}
    for spec in gateways + devices:
        groups.setdefault(spec.group, []).append(spec.name)
    faults = []
    for i, table in enumerate(_table_list(data.get("fault", []), "fault")):
        faults.extend(_fault(i, table, used_names, groups, duration_us, seed))
    for key in ("server", "radio"):
        if not isinstance(data.get(key, {}), dict):
            raise ConfigError("%s: expected a table" % key)
    return Scenario(
        seed=seed,
        duration_us=duration_us,
        gateways=gateways,
        devices=devices,
        faults=faults,
        server=dict(data.get("server", {})),
        radio=dict(data.get("radio", {})),
        start_time=start_time,
        source=source,
    )


def _table_list(value, what):
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError("%s: expected [[%s]] tables" % (what, what))
    return value


def _boards(tables, role, seed, used_names, used_macs, stagger_us):
    specs = []
    for index, table in enumerate(_table_list(tables, role)):
        where = "%s[%d]" % (role, index)
        unknown = sorted(set(table) - _BOARD_KEYS)
        if unknown:
            raise ConfigError(
                "%s: unknown key %r (expected one of %s)"
                % (where, unknown[0], ", ".join(sorted(_BOARD_KEYS)))
            )
        name = table.get("name")
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_.-]{1,40}$", name):
            raise ConfigError(
                "%s.name: expected 1-40 letters, digits, '_', '.', '-', got %r" % (where, name)
            )
        where = "%s %r" % (role, name)
        image = table.get("image", "nanogateway" if role == "gateway" else "sensor")
        if not isinstance(image, str) or not image:
            raise ConfigError("%s.image: expected an image name or folder, got %r" % (where, image))
        position = table.get("position", [0, 0])
        if (
            not isinstance(position, list)
            or len(position) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in position)
        ):
            raise ConfigError("%s.position: expected [x, y] in metres, got %r" % (where, position))
        count = table.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100_000:
            raise ConfigError("%s.count: expected an integer 1..100000, got %r" % (where, count))
        spacing = table.get("spacing", 1.0)
        if isinstance(spacing, bool) or not isinstance(spacing, (int, float)) or spacing < 0:
            raise ConfigError("%s.spacing: expected metres >= 0, got %r" % (where, spacing))
        config = table.get("config", {})
        meter = table.get("meter", {})
        power_on = table.get("power_on")
        if power_on is not None:
            power_on = parse_duration_us(power_on, where + ".power_on")
        if not isinstance(config, dict):
            raise ConfigError("%s.config: expected a table of configuration overrides" % where)
        if not isinstance(meter, dict) and not (
            isinstance(meter, list) and all(isinstance(m, dict) for m in meter)
        ):
            raise ConfigError(
                "%s.meter: expected a table (or [[...meter]] tables) describing the simulated meter"
                % where
            )
        if meter and role != "device":
            raise ConfigError("%s.meter: only a [[device]] has a meter" % where)
        for replica in range(count):
            board_name = name if count == 1 else "%s-%d" % (name, replica + 1)
            if board_name in used_names:
                raise ConfigError("%s.name: %r is used twice" % (where, board_name))
            used_names.add(board_name)
            # Replicas stand on a small spiral around the position, `spacing` metres apart.
            x, y = float(position[0]), float(position[1])
            if replica:
                angle = replica * 2.399963  # golden angle: even spread
                radius = spacing * math.sqrt(replica)
                x, y = x + radius * math.cos(angle), y + radius * math.sin(angle)
            # Boards switched on at the same instant would keep reporting in step: devices
            # power on at seeded random instants within `stagger`, unless power_on is given.
            on_us = power_on
            if on_us is None:
                on_us = random.Random("power:%d:%s" % (seed, board_name)).randrange(
                    max(1, stagger_us)
                )
            specs.append(
                BoardSpec(
                    role=role,
                    name=board_name,
                    image=image,
                    position=(x, y),
                    config=dict(config),
                    meter=dict(meter) if isinstance(meter, dict) else [dict(m) for m in meter],
                    mac=_mac_for(seed, board_name, used_macs),
                    group=name,
                    power_on_us=on_us,
                )
            )
    return specs


def _mac_for(seed, name, used):
    # Deterministic, distinct, locally administered unicast MAC per board.
    rng = random.Random("mac:%d:%s" % (seed, name))
    while True:
        mac = bytes([0x72, 0xB3]) + rng.randbytes(4)
        if mac not in used:
            used.add(mac)
            return mac


def identity_rng(seed, name):
    """The random source for a board's generated keys (AppKey, JoinEUI): stable per seed and name."""
    return random.Random("keys:%d:%s" % (seed, name))


def _fault(index, table, names, groups, duration_us, seed):
    """The FaultSpecs of one [[fault]] table: one per target board (a group name stands for all
    its replicas) and, for a power_cut with count > 1, one per cut at seeded random instants."""
    where = "fault[%d]" % index
    unknown = sorted(set(table) - _FAULT_KEYS)
    if unknown:
        raise ConfigError(
            "%s: unknown key %r (expected one of %s)"
            % (where, unknown[0], ", ".join(sorted(_FAULT_KEYS)))
        )
    kind = table.get("kind")
    if kind not in FAULT_KINDS:
        raise ConfigError(
            "%s.kind: expected one of %s, got %r" % (where, ", ".join(FAULT_KINDS), kind)
        )
    target = table.get("target")
    if kind == "server_outage":
        if target is not None:
            raise ConfigError("%s.target: a server_outage has no target (omit it)" % where)
        targets = [None]
    elif kind == "radio_loss" and target is None:
        targets = [None]  # the whole medium
    elif target in names:
        targets = [target]
    elif isinstance(target, str) and target in groups:
        targets = list(groups[target])
    else:
        raise ConfigError("%s.target: expected the name of a board, got %r" % (where, target))
    at_us = parse_duration_us(table.get("at", 0), where + ".at")
    length = (
        parse_duration_us(table["duration"], where + ".duration")
        if "duration" in table
        else duration_us
    )
    probability = table.get("probability", 0.0)
    if kind == "radio_loss" and (
        isinstance(probability, bool)
        or not isinstance(probability, (int, float))
        or not 0 <= probability <= 1
    ):
        raise ConfigError("%s.probability: expected a number 0..1, got %r" % (where, probability))
    ppm = table.get("ppm", 0.0)
    if kind == "clock_drift" and (
        isinstance(ppm, bool) or not isinstance(ppm, (int, float)) or not -1000 <= ppm <= 1000
    ):
        raise ConfigError("%s.ppm: expected a number -1000..1000, got %r" % (where, ppm))
    count = table.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1_000_000:
        raise ConfigError("%s.count: expected an integer 1..1000000, got %r" % (where, count))
    if count > 1 and kind != "power_cut":
        raise ConfigError("%s.count: only a power_cut repeats (count > 1)" % where)
    if "within" in table and count == 1:
        raise ConfigError("%s.within: only with count > 1" % where)
    within = (
        parse_duration_us(table["within"], where + ".within")
        if "within" in table
        else max(0, duration_us - at_us)
    )
    specs = []
    for target_name in targets:
        if count == 1:
            instants = [at_us]
        else:
            # count cuts at random instants in [at, at + within), from the seed: repeatable
            rng = random.Random("fault:%d:%d:%s" % (seed, index, target_name))
            instants = sorted(at_us + rng.randrange(max(1, within)) for _ in range(count))
        for instant in instants:
            specs.append(
                FaultSpec(
                    kind=kind,
                    target=target_name,
                    at_us=instant,
                    duration_us=length,
                    probability=float(probability),
                    ppm=float(ppm),
                )
            )
    return specs
