"""Scenario runner: a World built from a Scenario, run on the virtual clock, and its report.

    sc = scenario.load("examples/building.toml")
    with Runner(sc, trace="run.jsonl") as runner:   # ConfigError here: nothing has run
        report = runner.run(on_progress=lambda now_us, total_us: ...)

What `Runner` sets up (docs/scenario.md):
- the network-server emulator (lns.NetworkServer from the scenario's [server] table) on an
  ephemeral loopback UDP port, reachable from the boards as LNS_HOST_NAME; or, with
  lns="udp://HOST:PORT", no emulator: the gateways send to that address (a real ChirpStack
  gateway bridge; real-time mode recommended);
- a WiFi access point for the gateways, NTP reachable;
- each board's /flash/config.json: for images that use lib/devconfig (sensor, nanogateway) a
  base configuration (gateways: server address, WiFi; devices: identity, the first gateway's
  channel and SF in single-channel mode, inputs for their meters), then the scenario's `config`
  overrides merged last, validated with devconfig before anything runs (ConfigError naming the
  board and the field). Identities a scenario omits: DevEUI = the board's LoRa MAC, JoinEUI and
  AppKey from scenario.identity_rng(seed, board name);
- devices registered in the emulator, meters (meters.py) wired to their pins and UARTs, faults
  scheduled (power_cut, wifi_outage, clock_drift through the World; server_outage through
  LnsTask.set_online; radio_loss through the medium).

Device-side counts come from the boards (board.stats, the LoRaWAN-mode counters) and the radio
medium, server-side counts from NetworkServer.report(); report.py assembles the JSON report.
"""

import copy
import ipaddress
import json
import random
import socket
import time
from pathlib import Path

import devconfig
from errors import ConfigError

from .. import images
from . import meters as meters_mod
from .lns import LnsTask, NetworkServer
from .radio import Medium, MediumParams
from .scenario import identity_rng
from .world import World

S_US = 1_000_000
LNS_HOST_NAME = "lns.sim"
SIM_SSID = "openenergy-sim"
DEFAULT_FREQUENCY_HZ = 868100000
DEFAULT_SF = 7
# Readings a device takes in the last SETTLE_US of a run may still be on their way: they are
# not counted in readings_expected.
SETTLE_US = 5 * 60 * S_US
# NVS key in which the sensor image keeps the number of its newest reading (firmware/sensor/
# store.py KEY_SEQ): its writes tell the runner when each reading was taken.
SENSOR_SEQ_KEY = "oe_seq"


def parse_lns_url(text):
    """'udp://HOST:PORT' -> (host, port); ConfigError otherwise."""
    if not isinstance(text, str) or not text.startswith("udp://"):
        raise ConfigError("--lns: expected udp://HOST:PORT, got %r" % (text,))
    rest = text[len("udp://") :].rstrip("/")
    host, sep, port = rest.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError("--lns: expected udp://HOST:PORT with a port 1..65535, got %r" % text)
    return host, int(port)


def _loopback_ip(host):
    """The IPv4 loopback address of an --lns host; ConfigError for any other address (the
    simulated boards send from their own 127.0.x.y addresses, which reach only loopback)."""
    try:
        ip = str(ipaddress.IPv4Address(host))
    except ValueError:
        try:
            ip = socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0]
        except OSError:
            raise ConfigError("--lns: cannot resolve host %r" % host) from None
    if not ipaddress.IPv4Address(ip).is_loopback:
        raise ConfigError(
            "--lns: %s is not on this machine's loopback (the simulated boards send from "
            "127.0.x.y); forward a local port to the bridge, e.g. socat "
            "UDP4-LISTEN:1700,bind=127.0.0.1,fork UDP4:%s:1700" % (ip, host)
        )
    return ip


def _resolve_image(name):
    """images.resolve(name); a folder without manifest.json (a test fixture) is taken whole."""
    folder = Path(name)
    if folder.is_dir() and not (folder / "manifest.json").is_file():
        entries = tuple(
            (path, "/flash/" + path.relative_to(folder).as_posix())
            for path in sorted(folder.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts
        )
        return images.Image(name=folder.name, folder=folder, entries=entries)
    return images.resolve(name)


def _deep_merge(base, overrides):
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def _copy(value):
    return copy.deepcopy(value)


class _WatchedNvs(dict):
    """A board's NVS that tells the runner when a key it watches is written."""

    def __init__(self, data, key, on_set):
        super().__init__(data)
        self._key = key
        self._on_set = on_set

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        if key == self._key:
            self._on_set(value)


class BoardPlan:
    """What the runner decided for one board before the world exists."""

    def __init__(self, spec, image, files):
        self.spec = spec
        self.name = spec.name
        self.role = spec.role
        self.image = image
        self.files = files  # {board path: bytes}
        self.uses_devconfig = "/flash/lib/devconfig.py" in files
        self.raw_config = {}  # what goes into /flash/config.json (merged by World.add_board)
        self.config = None  # the validated devconfig Config, or None
        self.meter_specs = []
        self.identity = None  # devices: (dev_eui, join_eui, app_key) bytes
        self.eui = None  # gateways: gateway EUI bytes
        self.board = None
        self.meters = []

    @property
    def where(self):
        return "%s %r" % (self.role, self.name)


class Runner:
    """One scenario run (see the module docstring). Use as a context manager or call close()."""

    def __init__(
        self,
        scenario,
        *,
        trace=None,
        capture_trace=False,
        lns=None,
        realtime=False,
        echo_console=False,
        work_dir=None,
    ):
        self.scenario = scenario
        self.external_lns = parse_lns_url(lns) if isinstance(lns, str) else lns
        self.realtime = bool(realtime)
        self.duration_us = scenario.duration_us
        self.epoch_us = scenario.epoch_s * S_US
        self.wifi_password = "sim-" + identity_rng(scenario.seed, "wifi").randbytes(6).hex()
        self.lns_address = None
        self.server = None
        self.lns_task = None
        self.world = None
        self.reading_times = {}  # device name -> {seq: virtual µs of the reading}
        self.power_cuts = {}  # board name -> [[cut µs, boot µs or None]] of each power cut
        self.events_run = 0
        self.wall_s = None
        self._image_cache = {}
        self.plans = self._plan()
        self._build(trace, capture_trace, echo_console, work_dir)

    # -- planning (no world yet: every error is a ConfigError) ----------------------------------
    def _plan(self):
        sc = self.scenario
        if self.external_lns is not None:
            host, port = self.external_lns
            _loopback_ip(host)
            self.lns_address = (host, port)
        plans = []
        for spec in sc.gateways + sc.devices:
            image, files = self._image(spec)
            plans.append(BoardPlan(spec, image, files))
        gateways = [p for p in plans if p.role == "gateway"]
        devices = [p for p in plans if p.role == "device"]
        for plan in gateways:
            self._plan_gateway(plan)
        channel = (DEFAULT_FREQUENCY_HZ, DEFAULT_SF)
        if gateways and gateways[0].config is not None:
            cfg = gateways[0].config
            channel = (cfg["frequency_hz"], cfg["sf"])
        for plan in devices:
            plan.meter_specs = [
                meters_mod.parse(
                    table,
                    "%s.meter" % plan.where + ("" if len(plan.spec.meters) == 1 else "[%d]" % i),
                    sc.folder,
                )
                for i, table in enumerate(plan.spec.meters)
            ]
            self._plan_device(plan, channel)
        seen = {}
        for plan in devices:
            other = seen.setdefault(plan.identity[0], plan.name)
            if other != plan.name:
                raise ConfigError(
                    "%s config: dev_eui: %s is already the DevEUI of %r"
                    % (plan.where, plan.identity[0].hex(), other)
                )
        for index, fault in enumerate(sc.faults):
            if fault.kind == "server_outage" and self.external_lns is not None:
                raise ConfigError(
                    "fault[%d].kind: a server_outage needs the server emulator (not with --lns)"
                    % index
                )
        return plans

    def _image(self, spec):
        folder = self.scenario.folder / spec.image
        name = str(folder) if folder.is_dir() else spec.image
        cached = self._image_cache.get(name)
        if cached is None:
            try:
                image = _resolve_image(name)
            except ConfigError as exc:
                raise ConfigError("%s %r.%s" % (spec.role, spec.name, exc)) from None
            files = {}
            for board_path, host_path in image.board_files().items():
                with open(host_path, "rb") as f:
                    files[board_path] = f.read()
            cached = self._image_cache[name] = (image, files)
        return cached

    def _image_config(self, plan):
        text = plan.files.get("/flash/config.json")
        if text is None:
            return {}
        try:
            data = json.loads(text)
        except ValueError:
            raise ConfigError("%s.image: its config.json is not valid JSON" % plan.where) from None
        return data if isinstance(data, dict) else {}

    def _validate(self, plan, config):
        try:
            plan.config = devconfig.validate(config)
        except ConfigError as exc:
            raise ConfigError("%s config: %s" % (plan.where, exc)) from None

    def _plan_gateway(self, plan):
        overrides = _copy(plan.spec.config)
        if plan.uses_devconfig:
            host, port = self.lns_address or (LNS_HOST_NAME, 1700)
            base = {
                "image": "nanogateway",
                "server_host": host,
                "server_port": port,
                "wifi_ssid": SIM_SSID,
                "wifi_password": self.wifi_password,
                "led": False,
            }
            plan.raw_config = _deep_merge(base, overrides)
            self._validate(plan, plan.raw_config)
            eui = plan.config["gateway_eui"]
        else:
            plan.raw_config = overrides
            eui = None
        plan.eui = bytes(eui) if eui is not None else devconfig.gateway_eui_from_mac(plan.spec.mac)

    def _plan_device(self, plan, channel):
        spec = plan.spec
        overrides = _copy(spec.config)
        rng = identity_rng(self.scenario.seed, spec.name)
        join_eui = rng.randbytes(8)
        app_key = rng.randbytes(16)
        if plan.uses_devconfig:
            base = {
                "image": "sensor",
                "dev_eui": spec.lora_mac.hex().upper(),
                "join_eui": join_eui.hex().upper(),
                "app_key": app_key.hex().upper(),
                "single_channel": True,
                "frequency_hz": channel[0],
                "sf": channel[1],
                "adr": False,
                "led": False,
            }
            if overrides.get("single_channel") is False:
                del base["frequency_hz"], base["adr"]
            if "dr" in overrides:
                del base["sf"]
            if "s0" not in overrides and "tic" not in overrides:
                base.update(meters_mod.config_inputs(plan.meter_specs))
            plan.raw_config = _deep_merge(base, overrides)
            self._validate(plan, plan.raw_config)
            cfg = plan.config
            plan.identity = (bytes(cfg["dev_eui"]), bytes(cfg["join_eui"]), bytes(cfg["app_key"]))
            for meter in plan.meter_specs:
                meters_mod.check_wiring(meter, cfg)
            return
        # An image with its own configuration format (test fixtures): identity keys read from
        # its config.json and the overrides; the missing ones generated and written there.
        effective = _deep_merge(self._image_config(plan), _copy(overrides))
        written = dict(overrides)
        if not (effective.get("join_eui") or effective.get("app_eui")):
            written["join_eui"] = effective["join_eui"] = join_eui.hex()
        if not effective.get("app_key"):
            written["app_key"] = effective["app_key"] = app_key.hex()
        plan.raw_config = written
        plan.identity = (
            self._hex(plan, "dev_eui", effective.get("dev_eui") or spec.lora_mac.hex(), 8),
            self._hex(plan, "join_eui", effective.get("join_eui") or effective.get("app_eui"), 8),
            self._hex(plan, "app_key", effective["app_key"], 16),
        )

    def _hex(self, plan, key, value, size):
        try:
            data = bytes.fromhex(str(value))
        except ValueError:
            data = b""
        if len(data) != size:
            raise ConfigError(
                "%s config: %s: expected %d hex digits" % (plan.where, key, 2 * size)
            ) from None
        return data

    # -- building the world ---------------------------------------------------------------------
    def _build(self, trace, capture_trace, echo_console, work_dir):
        sc = self.scenario
        world = World(
            seed=sc.seed,
            trace=trace,
            capture_trace=capture_trace,
            realtime=self.realtime,
            epoch_utc_s=sc.epoch_s,
            echo_console=echo_console,
            work_dir=work_dir,
        )
        self.world = world
        try:
            self._populate(world)
        except BaseException:
            world.close()
            self.world = None
            raise

    def _populate(self, world):
        sc = self.scenario
        params = MediumParams.from_mapping(sc.radio)
        trace = world.trace if world.trace.enabled else None
        self.medium = Medium(world.scheduler, random.Random("radio:%s" % (sc.seed,)), trace, params)
        world.medium = self.medium
        networks = {SIM_SSID: self.wifi_password}
        for plan in self.plans:
            if plan.role == "gateway" and plan.config is not None:
                networks.setdefault(plan.config["wifi_ssid"], plan.config["wifi_password"])
        for ssid in sorted(networks):
            world.add_access_point(ssid, networks[ssid])
        if self.external_lns is None:
            self.server = NetworkServer.from_config(sc.server)
            self.lns_task = LnsTask(self.server, world.netio, "127.0.0.1", 0)
            host, port = self.lns_task.start()
            world.dns[LNS_HOST_NAME] = host
            self.lns_address = (host, port)
            for plan in self.plans:
                if plan.role == "gateway" and plan.uses_devconfig:
                    if plan.spec.config.get("server_host") is None:
                        plan.raw_config["server_host"] = LNS_HOST_NAME
                    if plan.spec.config.get("server_port") is None:
                        plan.raw_config["server_port"] = port
        else:
            host = self.external_lns[0]
            ip = _loopback_ip(host)
            if ip != host:
                world.dns[host] = ip
        for plan in self.plans:
            plan.board = world.add_board(
                plan.name,
                plan.files,
                position=plan.spec.position,
                config=plan.raw_config,
                mac=plan.spec.mac,
                power_on_at_us=plan.spec.power_on_us,
            )
            self._watch_power_cuts(plan.board)
        for plan in self.plans:
            if plan.role != "device":
                continue
            if self.server is not None:
                dev_eui, join_eui, app_key = plan.identity
                self.server.add_device(dev_eui, join_eui, app_key, name=plan.name)
            times = self.reading_times.setdefault(plan.name, {})
            board = plan.board
            board.nvs = _WatchedNvs(board.nvs, SENSOR_SEQ_KEY, self._reading_hook(times))
            for spec in plan.meter_specs:
                meter = meters_mod.build(
                    spec,
                    board,
                    plan.config,
                    sc.seed,
                    self.epoch_us,
                    self.duration_us,
                    plan.spec.power_on_us,
                )
                plan.meters.append(meter)
                meter.attach()
        for fault in sc.faults:
            self._schedule_fault(world, fault)

    def _watch_power_cuts(self, board):
        """Record when each power cut of board starts and when the board boots after it."""
        cuts = self.power_cuts.setdefault(board.name, [])
        scheduler = self.world.scheduler

        def off(_board, reason):
            if reason == "power_cut":
                cuts.append([scheduler.now_us(), None])

        def boot(_board):
            if cuts and cuts[-1][1] is None:
                cuts[-1][1] = scheduler.now_us()

        board.on_power_off.append(off)
        board.on_boot.append(boot)

    def _reading_hook(self, times):
        scheduler = self.world.scheduler

        def record(value):
            seq = value & 0xFFFFFFFF
            if seq not in times:
                times[seq] = scheduler.now_us()

        return record

    def _schedule_fault(self, world, fault):
        at, duration = fault.at_us, fault.duration_us
        if fault.kind == "power_cut":
            world.power_cut(fault.target, at, duration)
        elif fault.kind == "wifi_outage":
            world.wifi_outage(fault.target, at, duration)
        elif fault.kind == "clock_drift":
            world.clock_drift(fault.target, fault.ppm, at, duration)
        elif fault.kind == "server_outage":
            task = self.lns_task
            world.schedule_fault(
                "server_outage",
                at,
                lambda: task.set_online(False),
                lambda: task.set_online(True),
                duration,
            )
        elif fault.kind == "radio_loss":
            target = fault.target
            medium = self.medium

            def radio_loss(probability):
                if target is not None and not medium.radios_named(target):
                    medium.add_radio(target, world.boards[target].position)
                medium.set_radio_loss(probability, target)

            world.schedule_fault(
                "radio_loss",
                at,
                lambda: radio_loss(fault.probability),
                lambda: radio_loss(0.0),
                duration,
                target=target,
                probability=fault.probability,
            )

    # -- observing ------------------------------------------------------------------------------
    def on_frame(self, hook):
        """Call hook(transmission) at the end of every radio frame (radio.Transmission: radio,
        payload, start_us, end_us, airtime_us; arrivals with radio and outcome per receiver)."""
        self.medium.frame_hooks.append(hook)

    def on_rxpk(self, hook):
        """Call hook(gateway_eui_hex, rxpk, now_us) for every rxpk the server emulator receives
        (rxpk["data"]: the PHY payload). Needs the emulator (not with lns=...)."""
        if self.server is None:
            raise ConfigError("on_rxpk: needs the server emulator (not with --lns)")
        self.server.rxpk_hooks.append(hook)

    # -- running --------------------------------------------------------------------------------
    def run(self, on_progress=None, until_us=None):
        """Run to the scenario's end (or until_us); on_progress(now_us, total_us) is called
        about every 0.1 % of the run. Returns the report (report.build)."""
        from . import report

        self.advance(self.duration_us if until_us is None else until_us, on_progress)
        return report.build(self)

    def advance(self, until_us, on_progress=None):
        """Run the world to virtual time until_us (from wherever it stands) without building a
        report; on_progress(now_us, until_us) as for run(). Can be called again to go on."""
        total = int(until_us)
        callback = None
        if on_progress is not None:
            step = max(1, total // 1000)
            mark = [0]

            def callback(now):
                if now >= mark[0]:
                    mark[0] = now + step
                    on_progress(min(now, total), total)

        started = time.perf_counter()
        before = self.world.scheduler.events_run
        self.world.run(until_us=total, on_advance=callback)
        self.wall_s = (self.wall_s or 0.0) + time.perf_counter() - started
        self.events_run += self.world.scheduler.events_run - before
        if on_progress is not None:
            on_progress(total, total)

    def board_plans(self, role=None):
        return [p for p in self.plans if role is None or p.role == role]

    def close(self):
        if self.lns_task is not None:
            self.lns_task.stop()
        if self.world is not None:
            self.world.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_scenario(scenario, on_progress=None, **options):
    """Build, run and close: the report of one scenario (options as for Runner)."""
    with Runner(scenario, **options) as runner:
        return runner.run(on_progress)
