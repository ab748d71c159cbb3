"""The simulated world: clock, seeded randomness, boards, loopback network, DNS, faults and trace.

    world = World(seed=1, trace="run.jsonl")
    gw = world.add_board("gw", "firmware/nanogateway", position=(0, 0))
    world.power_cut(gw, at_us=3_600_000_000, duration_us=60_000_000)
    world.run(until_us=86_400_000_000)

Everything random (MACs, boards' RNGs, ephemeral ports, radio losses) derives from `seed`, and
every board event, datagram and radio frame is ordered by the scheduler, so the same seed and
scenario give byte-identical traces.
"""

import hashlib
import json
import os
import random
import shutil
import signal
import tempfile
import threading
import time

import greenlet

from .board import Board
from .clock import Scheduler
from .netio import NetIO
from .trace import NullTrace, Trace

EPOCH_2024_S = 1_704_067_200
PYCOM_OUI = b"\x70\xb3\xd5"


class World:
    """One simulation: call add_board() for each board, schedule faults, then run()."""

    def __init__(
        self,
        seed=0,
        *,
        trace=None,
        capture_trace=False,
        realtime=False,
        speed=1.0,
        epoch_utc_s=EPOCH_2024_S,
        udp_latency_us=1000,
        boot_time_us=500_000,
        wifi_connect_us=1_500_000,
        echo_console=False,
        work_dir=None,
        hang_guard_s=60.0,
    ):
        self.seed = seed
        self.scheduler = Scheduler(realtime=realtime, speed=speed)
        self.rng = random.Random("world:%s" % (seed,))
        if isinstance(trace, Trace):
            self.trace = trace
        elif trace is not None or capture_trace:
            self.trace = Trace(trace, capture=capture_trace)
        else:
            self.trace = NullTrace()
        self.trace.clock = self.scheduler
        self.epoch_us = int(epoch_utc_s) * 1_000_000
        self.boot_time_us = int(boot_time_us)
        self.wifi_connect_us = int(wifi_connect_us)
        self.echo_console = echo_console
        self.hang_guard_s = hang_guard_s
        self.netio = NetIO(self.scheduler, self.trace, latency_us=udp_latency_us)
        self.dns = {"localhost": "127.0.0.1"}
        self.access_points = {}
        self.ntp_servers = None
        self.boards = {}
        self._macs = set()
        self._own_dir = work_dir is None
        self.work_dir = work_dir or tempfile.mkdtemp(prefix="openenergy-sim-")
        self._medium = None
        self.faults = []

    # -- boards -------------------------------------------------------------------------------
    def add_board(
        self,
        name,
        image,
        position=(0.0, 0.0),
        config=None,
        *,
        model="LoPy4",
        mac=None,
        flash_dir=None,
        nvs_strict=True,
        power_on_at_us=None,
    ):
        """A board with `image` on its flash: a directory copied there, or {path: str|bytes}.

        config: a dict merged (recursively) into /flash/config.json. The board powers on now,
        or at power_on_at_us.
        """
        if name in self.boards:
            raise ValueError("name: a board named %r already exists" % (name,))
        index = len(self.boards)
        if mac is None:
            mac = self._derive_mac(name)
        elif bytes(mac) in self._macs:
            raise ValueError("mac: %s already used" % bytes(mac).hex())
        self._macs.add(bytes(mac))
        if flash_dir is None:
            flash_dir = os.path.join(self.work_dir, "%03d-%s" % (index, _safe(name)), "flash")
        ip = "127.0.%d.%d" % (1 + index // 254, 1 + index % 254)
        board = Board(
            self, name, flash_dir, position, mac=mac, model=model, nvs_strict=nvs_strict, ip=ip
        )
        if image is not None:
            board.install_files(image)
        if config:
            _merge_config(board, config)
        self.boards[name] = board
        self._trace(
            "board_added", board=name, mac=board.mac.hex(), ip=ip, position=list(board.position)
        )
        board.power_on(power_on_at_us)
        return board

    def _derive_mac(self, name):
        counter = 0
        while True:
            digest = hashlib.sha256(("mac:%s:%s:%d" % (self.seed, name, counter)).encode()).digest()
            mac = PYCOM_OUI + digest[:3]
            if mac not in self._macs:
                return mac
            counter += 1

    def board(self, name_or_board):
        if isinstance(name_or_board, Board):
            return name_or_board
        try:
            return self.boards[name_or_board]
        except KeyError:
            raise ValueError("target: no board named %r" % (name_or_board,)) from None

    # -- network ------------------------------------------------------------------------------
    def add_access_point(self, ssid, key=None, *, sec=3, channel=6, rssi=-55):
        """A WiFi network boards can join (once any is declared, only declared ones work)."""
        self.access_points[ssid] = {"key": key, "sec": sec, "channel": channel, "rssi": rssi}

    def ap_accepts(self, ssid, key):
        if not self.access_points:
            return True
        ap = self.access_points.get(ssid)
        return ap is not None and (ap["key"] is None or ap["key"] == key)

    def ap_bssid(self, ssid):
        return PYCOM_OUI[:1] + hashlib.sha256(("ap:%s" % ssid).encode()).digest()[:5]

    def ntp_reachable(self, server):
        return self.ntp_servers is None or server in self.ntp_servers

    def utc_us(self):
        """True UTC now (µs since 1970): the NTP servers' time."""
        return self.epoch_us + self.scheduler.now_us()

    @property
    def medium(self):
        """The radio medium (created on first use, if the radio model is installed)."""
        if self._medium is None:
            from .radio import Medium

            self._medium = Medium(
                self.scheduler,
                random.Random("radio:%s" % (self.seed,)),
                self.trace if self.trace.enabled else None,
            )
        return self._medium

    @medium.setter
    def medium(self, medium):
        self._medium = medium

    # -- faults -------------------------------------------------------------------------------
    def schedule_fault(self, kind, at_us, start, end=None, duration_us=None, target=None, **fields):
        """At at_us: trace the fault and call start(); after duration_us: trace, call end()."""

        def begin():
            self._trace(
                "fault", fault=kind, phase="start", target=target, duration_us=duration_us, **fields
            )
            start()

        self.scheduler.call_at(int(at_us), begin)
        if duration_us is not None:

            def finish():
                self._trace("fault", fault=kind, phase="end", target=target, **fields)
                if end is not None:
                    end()

            self.scheduler.call_at(int(at_us) + int(duration_us), finish)
        self.faults.append(
            {"kind": kind, "at_us": int(at_us), "duration_us": duration_us, "target": target}
        )

    def power_cut(self, board, at_us, duration_us=None):
        """Power cut of a board at any instant; power back after duration_us (None: never)."""
        board = self.board(board)
        self.schedule_fault(
            "power_cut",
            at_us,
            lambda: board.power_cut(),
            board.power_on,
            duration_us,
            target=board.name,
        )

    def wifi_outage(self, board, at_us, duration_us=None):
        """The board's access point goes away: sends fail, nothing arrives, then it reconnects."""
        board = self.board(board)
        self.schedule_fault(
            "wifi_outage",
            at_us,
            lambda: set_wifi_link(board, False),
            lambda: set_wifi_link(board, True),
            duration_us,
            target=board.name,
        )

    def clock_drift(self, board, ppm, at_us=0, duration_us=None):
        """The board's clocks run ppm·10⁻⁶ fast (negative: slow) from at_us."""
        board = self.board(board)
        self.schedule_fault(
            "clock_drift",
            at_us,
            lambda: board.set_drift(ppm),
            lambda: board.set_drift(0.0),
            duration_us,
            target=board.name,
            ppm=ppm,
        )

    # -- running ------------------------------------------------------------------------------
    def run(self, until_us=None, on_advance=None):
        """Run the simulation to virtual time until_us (or until nothing is scheduled).

        Firmware that computes for hang_guard_s of wall time without a blocking call (a busy
        loop: on a board its watchdog would fire) gets FirmwareHang raised in it.
        """
        previous = self._arm_hang_guard()
        try:
            self.scheduler.run(until_us, on_advance)
        finally:
            if previous is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
            self.trace.flush()

    def _arm_hang_guard(self):
        limit = self.hang_guard_s
        if not limit or not hasattr(signal, "setitimer"):
            return None
        if threading.current_thread() is not threading.main_thread():
            return None
        scheduler = self.scheduler
        state = {"events": -1, "since": time.monotonic()}

        def check(signum, frame):
            now = time.monotonic()
            if scheduler.events_run != state["events"]:
                state["events"] = scheduler.events_run
                state["since"] = now
                return
            task = scheduler.current_task
            if (
                now - state["since"] >= limit
                and task is not None
                and greenlet.getcurrent() is task.glet
            ):
                state["since"] = now
                raise FirmwareHang(
                    "simulator: %s computed for %g s of wall time without a blocking call"
                    % (task.name, limit)
                )

        previous = signal.signal(signal.SIGALRM, check)
        period = min(1.0, limit / 4)
        signal.setitimer(signal.ITIMER_REAL, period, period)
        return previous

    def now_us(self):
        return self.scheduler.now_us()

    def close(self):
        """Close sockets and the trace; remove the boards' flash directories if temporary."""
        self.netio.close()
        self.trace.close()
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _trace(self, kind, **fields):
        if self.trace.enabled:
            self.trace.emit(kind, **fields)


class FirmwareHang(BaseException):
    """Raised into firmware stuck in a loop without blocking calls (the simulation cannot advance)."""


def set_wifi_link(board, up):
    """The board's WiFi link comes up or goes down (outage); its driver reacts."""
    board.set_wifi_link(up)


def _safe(name):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _merge_config(board, overrides):
    path = board.host_path("/flash/config.json")
    current = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            current = json.load(f)
    _deep_merge(current, overrides)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(current, f, indent=2, sort_keys=True)


def _deep_merge(base, overrides):
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
