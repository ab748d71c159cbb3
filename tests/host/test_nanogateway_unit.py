"""Host tests of the nano gateway image's own logic (firmware/nanogateway) with fake Pycom parts.

The image modules are device code: they are loaded here by path (never installed), then taken
out of sys.modules again so no other test sees them. Covered: the TX_ACK decision (every error
name, wrap-safe 32-bit timing), the downlink queue and exact-time transmitter, the forwarder's
datagrams against the strict Semtech decoder, the link's reconnects and back-off, the radio
capture and IRQ handler, configuration failures, and whole main-loop passes on fake hardware.
"""

import base64
import calendar
import importlib.util
import json
import sys
import time as host_time
from collections import namedtuple
from pathlib import Path

import devconfig
import dutycycle
import oelog
import pytest
import semtech
from errors import ConfigError

IMAGE = Path(__file__).resolve().parents[2] / "firmware" / "nanogateway"
_ORDER = ("leds", "radio", "downlink", "link", "forwarder", "gateway")
MASK = 0xFFFFFFFF
EUI = bytes.fromhex("240ac4fffe010203")
SERVER = ("10.0.0.2", 1700)


def _load_image():
    saved = {name: sys.modules.get(name) for name in _ORDER}
    modules = {}
    try:
        for name in _ORDER:
            spec = importlib.util.spec_from_file_location(name, IMAGE / (name + ".py"))
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            modules[name] = module
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return modules


_M = _load_image()
leds = _M["leds"]
radio = _M["radio"]
downlink = _M["downlink"]
link = _M["link"]
forwarder = _M["forwarder"]
gateway = _M["gateway"]


@pytest.fixture(autouse=True)
def _quiet_log():
    lines = []
    oelog.reset()
    oelog.configure(level="debug", sink=lambda level, line: lines.append(line))
    yield lines
    oelog.reset()


def gw_config(**changes):
    raw = {
        "image": "nanogateway",
        "server_host": "bridge.example.org",
        "wifi_ssid": "building-iot",
        "wifi_password": "correct horse battery",
        "frequency_hz": 868100000,
        "sf": 7,
    }
    raw.update(changes)
    return devconfig.validate(raw)


# --- txpk builders (through the strict decoder, as the image receives them) -----------------


def pull_resp(token=0x1234, **kw):
    args = {"freq_hz": 868100000, "datr": "SF7BW125", "data": b"\x20" + bytes(range(16))}
    args.update(kw)
    return semtech.encode_pull_resp(token, semtech.format_txpk(**args))


def txpk(**kw):
    return semtech.decode(pull_resp(**kw), semtech.PULL_RESP).txpk


def txpk_json(obj):
    return semtech.decode(
        semtech.encode(semtech.PULL_RESP, 1, None, json.dumps({"txpk": obj})), semtech.PULL_RESP
    ).txpk


class OpenDuty:
    """A duty-cycle accountant that never refuses (to test the other checks alone)."""

    def __init__(self):
        self.records = []

    def wait_ms(self, now_ms, freq_hz, airtime_ms):
        return 0

    def record(self, now_ms, freq_hz, airtime_ms):
        self.records.append((now_ms, freq_hz, airtime_ms))


NOW = 1_000_000
LEAD = downlink.lead_us(0)


def decide(tx, now=NOW, queue=None, duty=None, power_max=14, latency=0, now_ms=0):
    return downlink.decide(
        tx,
        now,
        now_ms,
        queue if queue is not None else downlink.DownlinkQueue(),
        duty if duty is not None else OpenDuty(),
        power_max,
        latency,
    )


# --- decide() -------------------------------------------------------------------------------


def test_decide_accepts_rx1_and_copies_every_field():
    data = b"\x20" + bytes(range(32))
    error, plan = decide(
        txpk(tmst=NOW + 1_000_000, powe=14, ipol=True, prea=8, codr="4/6", data=data)
    )
    assert error == semtech.ERR_NONE
    assert plan.start == NOW + 1_000_000
    assert (plan.freq_hz, plan.sf, plan.bw_hz, plan.cr) == (868100000, 7, 125000, 2)
    assert (plan.power, plan.preamble, plan.iq, plan.data) == (14, 8, True, data)
    assert plan.toa_us == __import__("airtime").time_on_air_us(7, 125000, len(data), 2, 8, True)


def test_decide_honours_ipol_and_prea_by_value():
    error, plan = decide(txpk(tmst=NOW + 500_000, ipol=False, prea=12))
    assert error == semtech.ERR_NONE and plan.iq is False and plan.preamble == 12
    error, plan = decide(txpk(tmst=NOW + 500_000, prea=4))
    assert error == semtech.ERR_NONE and plan.preamble == 6  # the reference's minimum


def test_imme_false_is_not_immediate_and_imme_true_is():
    error, plan = decide(txpk(tmst=NOW + 3_000_000, imme=False))
    assert error == semtech.ERR_NONE and plan.start == NOW + 3_000_000
    error, plan = decide(txpk(tmst=NOW + 3_000_000, imme=True))
    assert error == semtech.ERR_NONE and plan.start == NOW + LEAD


def test_too_late_inside_the_lead_time_and_in_the_past():
    assert decide(txpk(tmst=NOW + LEAD - 1))[0] == semtech.ERR_TOO_LATE
    assert decide(txpk(tmst=NOW + LEAD))[0] == semtech.ERR_NONE
    assert decide(txpk(tmst=NOW))[0] == semtech.ERR_TOO_LATE
    # a tmst just behind now is late, not 71 minutes early
    assert decide(txpk(tmst=NOW - 1))[0] == semtech.ERR_TOO_LATE
    assert decide(txpk(tmst=(NOW - 5_000_000) & MASK))[0] == semtech.ERR_TOO_LATE


def test_lead_time_grows_with_the_configured_latency():
    tx = txpk(tmst=NOW + LEAD + 2000)
    assert decide(tx, latency=0)[0] == semtech.ERR_NONE
    assert decide(tx, latency=5000)[0] == semtech.ERR_TOO_LATE


def test_too_early_beyond_the_class_a_horizon():
    horizon = downlink.CLASS_A_HORIZON_US
    assert horizon == 16_000_000
    assert decide(txpk(tmst=NOW + horizon))[0] == semtech.ERR_NONE
    assert decide(txpk(tmst=NOW + horizon + 1))[0] == semtech.ERR_TOO_EARLY
    assert decide(txpk(tmst=NOW + 600_000_000))[0] == semtech.ERR_TOO_EARLY


def test_timing_is_wrap_safe_at_2_32():
    now = MASK - 200_000  # 0.2 s before the tick counter wraps
    tmst = (now + 1_000_000) & MASK  # small: after the wrap
    assert tmst < now
    error, plan = decide(txpk(tmst=tmst), now=now)
    assert error == semtech.ERR_NONE and plan.start == tmst
    assert decide(txpk(tmst=(now + 10) & MASK), now=now)[0] == semtech.ERR_TOO_LATE
    late = (now - 100) & MASK
    assert decide(txpk(tmst=late), now=now)[0] == semtech.ERR_TOO_LATE
    now = 100  # just after the wrap, tmst just before it: in the past
    assert decide(txpk(tmst=MASK - 100), now=now)[0] == semtech.ERR_TOO_LATE


def test_gps_unlocked_for_tmms_and_time():
    assert decide(txpk(tmms=1234567890123))[0] == semtech.ERR_GPS_UNLOCKED
    obj = json.loads(semtech.format_txpk(868100000, "SF7BW125", b"\x20", imme=True))
    obj.pop("imme")
    obj["time"] = "2026-11-24T10:00:00.000000Z"
    assert decide(txpk_json(obj))[0] == semtech.ERR_GPS_UNLOCKED
    # tmst wins over tmms, as in the reference forwarder
    assert decide(txpk(tmst=NOW + 1_000_000, tmms=5))[0] == semtech.ERR_NONE


def test_tx_freq_outside_the_band_or_another_rf_chain():
    assert decide(txpk(tmst=NOW + 1_000_000, freq_hz=870500000))[0] == semtech.ERR_TX_FREQ
    assert decide(txpk(tmst=NOW + 1_000_000, freq_hz=433175000))[0] == semtech.ERR_TX_FREQ
    assert decide(txpk(tmst=NOW + 1_000_000, rfch=1))[0] == semtech.ERR_TX_FREQ
    # RX2 is on another frequency than the gateway's RX channel: fine, the radio is retuned
    error, plan = decide(txpk(tmst=NOW + 2_000_000, freq_hz=869525000, datr="SF12BW125"))
    assert error == semtech.ERR_NONE and plan.freq_hz == 869525000 and plan.sf == 12


def test_tx_power_below_the_radio_minimum_and_clamped_above_the_maximum():
    assert decide(txpk(tmst=NOW + 1_000_000, powe=1))[0] == semtech.ERR_TX_POWER
    assert decide(txpk(tmst=NOW + 1_000_000, powe=-3))[0] == semtech.ERR_TX_POWER
    error, plan = decide(txpk(tmst=NOW + 1_000_000, powe=27, freq_hz=869525000), power_max=14)
    assert error == semtech.ERR_NONE and plan.power == 14
    error, plan = decide(txpk(tmst=NOW + 1_000_000, powe=5))
    assert error == semtech.ERR_NONE and plan.power == 5
    obj = json.loads(semtech.format_txpk(868100000, "SF7BW125", b"\x20", tmst=NOW + 900_000))
    obj.pop("powe")
    error, plan = decide(txpk_json(obj), power_max=11)
    assert error == semtech.ERR_NONE and plan.power == 11


def test_internal_error_for_frames_the_lopy_cannot_send():
    fsk = txpk(tmst=NOW + 1_000_000, modu="FSK", datr=50000, fdev=25000)
    assert decide(fsk)[0] == semtech.ERR_INTERNAL_ERROR
    assert decide(txpk(tmst=NOW + 1_000_000, datr="SF6BW125"))[0] == semtech.ERR_INTERNAL_ERROR
    assert decide(txpk(tmst=NOW + 1_000_000, data=bytes(256)))[0] == semtech.ERR_INTERNAL_ERROR
    assert decide(txpk(tmst=NOW + 1_000_000, prea=300))[0] == semtech.ERR_INTERNAL_ERROR
    assert decide(txpk(tmst=NOW + 1_000_000, codr="4/5LI"))[0] == semtech.ERR_INTERNAL_ERROR


def test_ncrc_is_accepted_and_sent_with_the_crc_airtime():
    error, plan = decide(txpk(tmst=NOW + 1_000_000, ncrc=True))
    assert error == semtech.ERR_NONE
    air = __import__("airtime")
    assert plan.toa_us == air.time_on_air_us(7, 125000, len(plan.data), 1, 8, True)


def _queued(queue, tmst, latency=0, **kw):
    error, plan = decide(txpk(tmst=tmst, **kw), queue=queue, latency=latency)
    assert error == semtech.ERR_NONE
    return queue.add(plan, 0, latency)


def test_collision_with_a_queued_downlink():
    queue = downlink.DownlinkQueue()
    first = _queued(queue, NOW + 1_000_000, data=bytes(40))
    toa = first.plan.toa_us
    assert decide(txpk(tmst=NOW + 1_000_000), queue=queue)[0] == semtech.ERR_COLLISION_PACKET
    inside = NOW + 1_000_000 + toa // 2
    assert decide(txpk(tmst=inside), queue=queue)[0] == semtech.ERR_COLLISION_PACKET
    # ends just before the first one starts (within the guard): still a collision
    assert (
        decide(txpk(tmst=NOW + 1_000_000 - 50_000), queue=queue)[0] == semtech.ERR_COLLISION_PACKET
    )
    after = NOW + 1_000_000 + toa + downlink.guard_us(0)
    assert decide(txpk(tmst=after), queue=queue)[0] == semtech.ERR_NONE
    assert decide(txpk(tmst=NOW + 2_000_000), queue=queue)[0] == semtech.ERR_NONE


def test_imme_goes_after_the_queued_frames():
    queue = downlink.DownlinkQueue()
    first = _queued(queue, NOW + LEAD + 1000, data=bytes(20))
    error, plan = decide(txpk(imme=True), queue=queue)
    assert error == semtech.ERR_NONE
    assert plan.start == first.start + first.plan.toa_us + downlink.guard_us(0)


def test_queue_full():
    queue = downlink.DownlinkQueue()
    for i in range(downlink.QUEUE_LEN):
        _queued(queue, NOW + 1_000_000 + i * 1_000_000)
    assert queue.count() == downlink.QUEUE_LEN
    assert decide(txpk(tmst=NOW + 12_000_000), queue=queue)[0] == semtech.ERR_QUEUE_FULL


def test_duty_cycle_overflow_from_the_accountant():
    duty = dutycycle.DutyCycle()
    queue = downlink.DownlinkQueue()
    tx = txpk(tmst=NOW + 1_000_000, data=bytes(33))
    error, plan = decide(tx, queue=queue, duty=duty)
    assert error == semtech.ERR_NONE
    duty.record(1000, plan.freq_hz, (plan.toa_us + 999) // 1000)  # what Downlinks.handle does
    # 5 s later in the same 1 % sub-band: closed (~7 s for a 72 ms frame)
    later = txpk(tmst=NOW + 1_000_000 + 5_000_000)
    assert decide(later, duty=duty, now_ms=0)[0] == semtech.ERR_DUTY_CYCLE_OVERFLOW
    # the 10 % sub-band of RX2 is another budget
    rx2 = txpk(tmst=NOW + 6_000_000, freq_hz=869525000)
    assert decide(rx2, duty=duty, now_ms=0)[0] == semtech.ERR_NONE
    # and the 1 % sub-band reopens after 100 x airtime
    assert decide(later, duty=duty, now_ms=8000)[0] == semtech.ERR_NONE


def test_decide_changes_neither_queue_nor_duty():
    queue = downlink.DownlinkQueue()
    duty = OpenDuty()
    for _ in range(3):
        assert decide(txpk(tmst=NOW + 1_000_000), queue=queue, duty=duty)[0] == "NONE"
    assert queue.count() == 0 and duty.records == []


# --- the transmitter -------------------------------------------------------------------------


class FakeTicks:
    """ticks_cpu that advances step µs per read (time passes while the firmware spins)."""

    def __init__(self, t=NOW, step=7):
        self.t = t
        self.step = step

    def __call__(self):
        self.t = (self.t + self.step) & MASK
        return self.t

    def advance(self, us):
        self.t = (self.t + us) & MASK


class FakeTxRadio:
    def __init__(self, ticks):
        self.ticks = ticks
        self.calls = []
        self.tx_done = False

    def prepare_tx(self, *args):
        self.calls.append(("prepare", args, self.ticks.t))

    def send(self, data):
        self.calls.append(("send", bytes(data), self.ticks.t))

    def listen(self):
        self.calls.append(("listen", None, self.ticks.t))


class FakeAlarm:
    made = []

    def __init__(self, handler, us):
        self.handler = handler
        self.us = us
        self.cancelled = False
        FakeAlarm.made.append(self)

    def cancel(self):
        self.cancelled = True


def make_downlinks(latency=0, step=7, duty=None):
    ticks = FakeTicks(step=step)
    fake = FakeTxRadio(ticks)
    wakes = []
    FakeAlarm.made = []
    dl = downlink.Downlinks(
        fake,
        duty or dutycycle.DutyCycle(),
        14,
        latency,
        ticks,
        FakeAlarm,
        lambda: wakes.append(1),
        oelog.get("down"),
    )
    return dl, fake, ticks, wakes


def test_downlink_sent_at_tmst_then_radio_back_in_rx():
    dl, fake, ticks, wakes = make_downlinks(latency=1500)
    data = b"\x20" + bytes(range(32))
    tmst = (ticks.t + 1_000_000) & MASK
    assert dl.handle(txpk(tmst=tmst, data=data), 0x1234, ticks.t, 0) == "NONE"
    wait = dl.service(ticks())
    call = (tmst - 1500) & MASK
    assert 0 < wait <= 1_000_000 - 1500 - downlink.PREP_US
    alarm = FakeAlarm.made[-1]
    assert abs(alarm.us - (1_000_000 - 1500 - downlink.PREP_US)) < 100
    alarm.handler(alarm)  # the IRQ side: a flag and a wake, nothing else
    assert dl.alarm_fired and wakes == [1] and fake.calls == []
    ticks.advance(wait)
    left = dl.service(ticks())
    kinds = [c[0] for c in fake.calls]
    assert kinds == ["prepare", "send"]
    prepare = fake.calls[0][1]
    assert prepare == (868100000, 7, 125000, 1, 14, 8, True)
    sent_at = fake.calls[1][2]
    assert fake.calls[1][1] == data
    error = downlink.offset_us(sent_at, call)
    assert 0 <= error <= 2 * ticks.step
    assert dl.err_n == 1 and dl.err_last == error
    # the radio goes back to RX when the frame is over
    toa = __import__("airtime").time_on_air_us(7, 125000, len(data), 1, 8, True)
    assert abs(left - (toa + 1500)) < 100
    ticks.advance(left)
    assert dl.service(ticks()) is None
    assert fake.calls[-1][0] == "listen" and dl.txnb == 1
    assert dl.queue.count() == 0


def test_each_queued_downlink_keeps_its_own_data():
    dl, fake, ticks, _ = make_downlinks()
    first = bytearray(b"\x20first-downlink")
    tmst1 = ticks.t + 1_000_000
    tx1 = txpk(tmst=tmst1, data=bytes(first))
    tx2 = txpk(tmst=ticks.t + 3_000_000, data=b"\x20second", freq_hz=869525000)
    assert dl.handle(tx1, 1, ticks.t, 0) == "NONE"
    assert dl.handle(tx2, 2, ticks.t, 0) == "NONE"
    tx1["data"] = b"changed"  # a later change to a decoded txpk does not reach the queue
    sent = []
    for _ in range(200):
        wait = dl.service(ticks())
        if wait is None:
            break
        ticks.advance(max(wait, 1))
    sent = [c[1] for c in fake.calls if c[0] == "send"]
    assert sent == [bytes(first), b"\x20second"]
    prepares = [c[1][0] for c in fake.calls if c[0] == "prepare"]
    assert prepares == [868100000, 869525000]
    assert dl.txnb == 2 and [c[0] for c in fake.calls].count("listen") == 2


def test_a_downlink_reached_too_late_is_dropped_not_sent():
    dl, fake, ticks, _ = make_downlinks()
    tmst = ticks.t + 500_000
    assert dl.handle(txpk(tmst=tmst), 7, ticks.t, 0) == "NONE"
    ticks.advance(500_000 + 5000)  # the main loop was blocked past the instant
    assert dl.service(ticks()) is None
    assert [c[0] for c in fake.calls if c[0] == "send"] == []
    assert dl.missed == 1 and dl.queue.count() == 0


def test_alarm_handler_never_raises():
    dl, fake, ticks, _ = make_downlinks()

    def broken_wake():
        raise RuntimeError("schedule queue full")

    dl._wake = broken_wake
    dl._on_alarm(None)  # must not raise: it would kill Pycom's IRQ thread
    assert dl.alarm_fired


def test_refused_downlinks_are_counted_and_not_queued():
    dl, fake, ticks, _ = make_downlinks()
    assert dl.handle(txpk(tmst=ticks.t + 10), 1, ticks.t, 0) == "TOO_LATE"
    assert dl.handle(txpk(tmms=5), 2, ticks.t, 0) == "GPS_UNLOCKED"
    assert dl.rejected == 2 and dl.queue.count() == 0 and dl.service(ticks()) is None


# --- forwarder --------------------------------------------------------------------------------


class FakeLink:
    def __init__(self):
        self.ready = True
        self.sent = []
        self.lost = 0
        self.alive = 0
        self.time = None

    def send(self, buf):
        self.sent.append(bytes(buf))
        return True

    def rxpk_time(self, age_us):
        if self.time is None:
            return None
        return self.time

    def stat_time(self):
        return self.time

    def server_lost(self):
        self.lost += 1

    def server_alive(self):
        self.alive += 1


def make_frame(
    data=b"\x40\x11\x22\x33\x44\x80\x01\x00\x01\xaa\xbb\xcc\xdd",
    tmst=3512348611,
    rssi=-97,
    snr_x10=-75,
):
    frame = radio.RxFrame()
    frame.buf[: len(data)] = data
    frame.size = len(data)
    frame.tmst = tmst
    frame.rssi = rssi
    frame.snr_x10 = snr_x10
    return frame


def make_forwarder(counters=(0, 0), handle=None, location=None):
    fake = FakeLink()
    calls = []

    def handle_txpk(tx, token):
        calls.append((tx, token))
        return handle(tx) if handle else "NONE"

    fwd = forwarder.Forwarder(
        EUI,
        fake,
        handle_txpk,
        lambda: counters,
        oelog.get("up"),
        (868100000, "SF7BW125", "4/5"),
        5000,
        30000,
        location,
        0xFFFE,
    )
    return fwd, fake, calls


def test_uplink_push_data_passes_the_strict_decoder_field_by_field():
    fwd, fake, _ = make_forwarder()
    frame = make_frame()
    assert fwd.uplink(frame, (frame.tmst + 2500) & MASK)
    datagram = fake.sent[-1]
    packet = semtech.check_push_data_strict(datagram)
    assert packet.version == 2 and packet.eui == EUI and packet.token == 0xFFFF
    (rx,) = packet.rxpk
    assert rx["tmst"] == 3512348611 and rx["freq_hz"] == 868100000
    assert (rx["chan"], rx["rfch"], rx["stat"], rx["modu"]) == (0, 0, 1, "LORA")
    assert (rx["datr"], rx["codr"], rx["rssi"], rx["lsnr_x10"]) == ("SF7BW125", "4/5", -97, -75)
    assert rx["size"] == 13 and rx["data"] == bytes(frame.buf[:13])
    assert rx["time"] is None  # before NTP sync: no time rather than a wrong one
    text = datagram[12:].decode()
    assert '"freq":868.100000' in text and '"lsnr":-7.5' in text and '"rssi":-97,' in text
    assert '"time"' not in text
    assert fwd.rxfw == 1 and fwd.up_sent == 1


def test_uplink_time_is_zero_padded_once_synced():
    fwd, fake, _ = make_forwarder()
    fake.time = (2026, 11, 24, 9, 5, 3, 42)
    fwd.uplink(make_frame(), 0)
    (rx,) = semtech.check_push_data_strict(fake.sent[-1]).rxpk
    assert rx["time"] == "2026-11-24T09:05:03.000042Z"


def test_token_wraps_and_push_ack_matching_drives_ackr():
    fwd, fake, _ = make_forwarder(counters=(4, 1))
    fake.time = (2026, 11, 24, 10, 0, 0, 0)
    for _ in range(4):
        fwd.uplink(make_frame(), 0)
    tokens = [semtech.decode(d).token for d in fake.sent]
    assert tokens == [0xFFFF, 0x0000, 0x0001, 0x0002]
    fwd.datagram(semtech.encode_push_ack(0x0000), 0)
    fwd.datagram(semtech.encode_push_ack(0x0001), 0)
    fwd.datagram(semtech.encode_push_ack(0x0001), 0)  # a duplicate counts once
    fwd.datagram(semtech.encode_push_ack(0x7777), 0)  # no such PUSH_DATA
    fwd.opened(0)
    fwd.tick(30000)
    stat = semtech.check_push_data_strict(fake.sent[-1]).stat
    assert (stat["rxnb"], stat["rxok"], stat["rxfw"]) == (4, 4, 4)
    assert stat["ackr"] == 50.0 and stat["dwnb"] == 0 and stat["txnb"] == 1
    assert stat["time"] == "2026-11-24 10:00:00 GMT"


def test_stat_counters_are_per_interval_and_withheld_before_ntp():
    totals = [10, 2]
    fwd, fake, _ = make_forwarder()
    fwd.counters = lambda: tuple(totals)
    fwd.opened(0)
    fwd.tick(0)  # PULL_DATA
    fwd.tick(30000)  # no NTP yet: no stat
    assert all(semtech.decode(d).type == semtech.PULL_DATA for d in fake.sent)
    fake.time = (2026, 11, 24, 10, 0, 30, 0)
    fwd.tick(60000)
    stat = semtech.check_push_data_strict(fake.sent[-1]).stat
    assert (stat["rxnb"], stat["txnb"]) == (10, 2)
    totals[:] = [13, 2]
    fwd.tick(90000)
    stat = semtech.check_push_data_strict(fake.sent[-1]).stat
    assert (stat["rxnb"], stat["rxok"], stat["txnb"], stat["dwnb"]) == (3, 3, 0, 0)


def test_stat_with_location():
    fwd, fake, _ = make_forwarder(location=(48.85837, 2.29448, 35))
    fake.time = (2026, 11, 24, 10, 0, 30, 0)
    fwd.opened(0)
    fwd.tick(30000)
    stat = semtech.check_push_data_strict(fake.sent[-1]).stat
    assert (stat["lati"], stat["long"], stat["alti"]) == (48.85837, 2.29448, 35)


def test_keepalive_pull_data_and_lost_server():
    fwd, fake, _ = make_forwarder()
    fwd.opened(1000)
    assert fwd.tick(1000) == 5000
    first = fake.sent[-1]
    assert len(first) == 12 and first[3] == semtech.PULL_DATA and first[4:12] == EUI
    token = semtech.decode(first).token
    fwd.datagram(semtech.encode_pull_ack(token ^ 1), 1000)  # wrong token: ignored
    assert not fwd.server_up
    fwd.datagram(semtech.encode_pull_ack(token), 1000)
    assert fwd.server_up and fake.alive == 1
    t = 1000
    for _ in range(3):
        t += 5000
        fwd.tick(t)
    assert fake.lost == 0  # the third PULL_DATA is out, two went unanswered
    t += 5000
    fwd.tick(t)
    assert fake.lost == 1 and not fwd.server_up
    pulls = [d for d in fake.sent if d[3] == semtech.PULL_DATA]
    assert len(pulls) == 5
    assert all(semtech.decode(d).type == semtech.PULL_DATA for d in pulls)


def test_keepalive_interval_is_at_most_10_s_in_the_schema():
    with pytest.raises(ConfigError, match="keepalive_s"):
        gw_config(keepalive_s=11)
    assert gw_config()["keepalive_s"] <= 10


def test_pull_resp_answered_with_tx_ack_type_5_same_token_and_eui():
    fwd, fake, calls = make_forwarder(handle=lambda tx: "TOO_LATE")
    fwd.datagram(pull_resp(token=0xBEEF, tmst=123), 0)
    assert calls and calls[0][1] == 0xBEEF and calls[0][0]["tmst"] == 123
    ack = fake.sent[-1]
    assert ack[0] == 2 and ack[3] == 0x05 and ack[4:12] == EUI
    packet = semtech.decode(ack, semtech.TX_ACK)
    assert packet.token == 0xBEEF and packet.error == "TOO_LATE"
    assert json.loads(ack[12:]) == {"txpk_ack": {"error": "TOO_LATE"}}
    assert fwd.dwnb == 1


def test_tx_ack_none_has_no_body():
    fwd, fake, _ = make_forwarder()
    fwd.datagram(pull_resp(token=0x0102, tmst=123), 0)
    ack = fake.sent[-1]
    assert len(ack) == 12 and ack[1:3] == b"\x02\x01" and ack[3] == 5
    assert semtech.decode(ack).error == "NONE"


def test_malformed_pull_resp_gets_internal_error_and_garbage_is_dropped(_quiet_log):
    fwd, fake, calls = make_forwarder()
    bad = semtech.encode(semtech.PULL_RESP, 0x4242, None, b'{"txpk":{"imme":"yes"}}')
    fwd.datagram(bad, 0)
    assert calls == []
    packet = semtech.decode(fake.sent[-1], semtech.TX_ACK)
    assert packet.token == 0x4242 and packet.error == "INTERNAL_ERROR"
    before = len(fake.sent)
    for junk in (
        b"",
        b"\x02\x00",
        b"\x09\x01\x02\x03",
        b"\x02\x01\x02\x00rest",
        b"\x02\x01\x02\x01x",
    ):
        fwd.datagram(junk, 100)
    assert len(fake.sent) == before and fwd.malformed == 6
    # the warnings are rate-limited
    warnings = [line for line in _quiet_log if "malformed" in line]
    assert len(warnings) == 1


def test_uplink_not_sent_without_link():
    fwd, fake, _ = make_forwarder()
    fake.ready = False
    assert not fwd.uplink(make_frame(), 0)
    assert fake.sent == [] and fwd.unsent == 1 and fwd.rxfw == 0


# --- link -------------------------------------------------------------------------------------


class FakeWLAN:
    STA = 1
    WPA2 = 3

    def __init__(self):
        self.connected = False
        self.connects = []
        self.timeout_error = False

    def connect(self, ssid, auth=None, timeout=None):
        self.connects.append((ssid, auth, timeout))

    def isconnected(self):
        if self.timeout_error:
            raise OSError(116, "ETIMEDOUT")
        return self.connected

    def ifconfig(self):
        return ("192.168.1.50", "255.255.255.0", "192.168.1.1", "192.168.1.1")

    def mac(self):
        return (b"\x24\x0a\xc4\x01\x02\x03", b"\x24\x0a\xc4\x01\x02\x04")


class FakeUDP:
    def __init__(self, owner):
        self.owner = owner
        self.inbox = []
        self.sent = []
        self.closed = False

    def setblocking(self, flag):
        self.blocking = flag

    def sendto(self, data, addr):
        if self.owner.send_error:
            raise OSError(118, "EHOSTUNREACH")
        self.sent.append((bytes(data), addr))
        self.owner.sent.append((bytes(data), addr))

    def recvfrom(self, n):
        if not self.inbox:
            raise OSError(11, "EAGAIN")
        return self.inbox.pop(0)

    def close(self):
        self.closed = True


class FakeLoRaSocket:
    def __init__(self):
        self.inbox = []
        self.sent = []
        self.blocking = True

    def setblocking(self, flag):
        self.blocking = flag

    def recv(self, n):
        if not self.inbox:
            return b""
        return self.inbox.pop(0)[:n]

    def send(self, data):
        self.sent.append(bytes(data))


class FakeSocketModule:
    AF_INET = 2
    SOCK_DGRAM = 2
    AF_LORA = 160
    SOCK_RAW = 3

    def __init__(self):
        self.addresses = {"bridge.example.org": SERVER[0]}
        self.lookups = 0
        self.udp = []
        self.lora = []
        self.sent = []
        self.send_error = False

    def getaddrinfo(self, host, port):
        self.lookups += 1
        if host not in self.addresses:
            raise OSError(-2, "EAI_FAIL")
        return [(2, 2, 0, "", (self.addresses[host], port))]

    def socket(self, family, kind):
        if family == self.AF_LORA:
            sock = FakeLoRaSocket()
            self.lora.append(sock)
        else:
            sock = FakeUDP(self)
            self.udp.append(sock)
        return sock


class FakeRTC:
    def __init__(self, utime):
        self.utime = utime
        self.is_synced = False
        self.ntp = []
        self.base = calendar.timegm((2026, 11, 24, 10, 0, 0, 0, 0, 0))

    def ntp_sync(self, server, update_period=3600):
        self.ntp.append((server, update_period))

    def synced(self):
        return self.is_synced

    def now(self):
        us = self.base * 1_000_000 + self.utime.us
        t = host_time.gmtime(us // 1_000_000)
        return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, us % 1_000_000, None)


class FakeUtime:
    """µs time that the firmware's waits advance; ticks_cpu costs 5 µs per read."""

    def __init__(self, us=0):
        self.us = us
        self.sleeps = []

    def ticks_cpu(self):
        self.us += 5
        return self.us & MASK

    def sleep_ms(self, ms):
        self.sleeps.append(ms)
        self.us += int(ms) * 1000

    def mktime(self, t):
        return calendar.timegm((t[0], t[1], t[2], t[3], t[4], t[5], 0, 0, 0))

    def gmtime(self, secs):
        t = host_time.gmtime(secs)
        return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, t.tm_wday, t.tm_yday)


def make_link(**changes):
    wlan = FakeWLAN()
    sockets = FakeSocketModule()
    utime = FakeUtime()
    rtc = FakeRTC(utime)
    lk = link.Link(wlan, sockets, None, rtc, utime, gw_config(**changes), oelog.get("link"))
    return lk, wlan, sockets, rtc, utime


def test_link_connects_resolves_and_opens_one_socket():
    lk, wlan, sockets, rtc, _ = make_link()
    lk.start(0)
    assert wlan.connects == [("building-iot", (3, "correct horse battery"), 10000)]
    assert not lk.tick(1000) and not lk.ready
    wlan.connected = True
    assert lk.tick(2000) is True
    assert lk.ready and lk.addr == SERVER and sockets.lookups == 1 and len(sockets.udp) == 1
    assert rtc.ntp == [("pool.ntp.org", 3600)]
    assert lk.tick(3000) is False and len(sockets.udp) == 1
    assert lk.send(b"\x02\x00\x00\x02" + EUI)
    assert sockets.sent[-1][1] == SERVER


def test_open_network_connects_without_auth():
    lk, wlan, _, _, _ = make_link(wifi_password="")
    lk.start(0)
    assert wlan.connects == [("building-iot", None, 10000)]


def test_wifi_connect_timeout_and_back_off():
    lk, wlan, _, _, _ = make_link()
    lk.start(0)
    wlan.timeout_error = True  # Pycom raises the connect timeout from isconnected()
    t = 0
    attempts = []
    while t < 400_000:
        lk.tick(t)
        if len(wlan.connects) > len(attempts):
            attempts.append(t)
        t += 500
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    # a new connect right after each timeout (the driver is never idle), the timeout doubling
    assert gaps[:6] == [10000, 20000, 40000, 60000, 60000, 60000]
    assert [c[2] for c in wlan.connects[:6]] == [10000, 20000, 40000, 60000, 60000, 60000]
    wlan.timeout_error = False
    wlan.connected = True
    lk.tick(t)
    wlan.connected = False
    lk.tick(t + 1000)
    lk.tick(t + 12000)
    assert wlan.connects[-1][2] == 20000  # after a success the timeout starts over


def test_wifi_loss_closes_the_socket_and_recovery_reopens_it():
    lk, wlan, sockets, _, _ = make_link()
    lk.start(0)
    wlan.connected = True
    lk.tick(0)
    first = sockets.udp[-1]
    wlan.connected = False
    lk.tick(1000)
    assert not lk.ready and first.closed and lk.wifi_losses == 1
    assert not lk.send(b"x")
    t = 1000
    while t < 600_000:  # a 10-minute outage: reconnect attempts go on, bounded
        t += 1000
        lk.tick(t)
    assert 8 <= len(wlan.connects) <= 20
    wlan.connected = True
    assert lk.tick(t + 1000) is True
    assert lk.ready and sockets.lookups == 2 and len(sockets.udp) == 2


def test_server_lost_recreates_the_socket_after_dns_with_back_off():
    lk, wlan, sockets, _, _ = make_link()
    lk.start(0)
    wlan.connected = True
    lk.tick(0)
    opened = []
    t = 0
    for _ in range(40):  # the forwarder reports a lost server every 15 s
        t += 15000
        lk.server_lost()
        for step in range(15):
            if lk.tick(t + step * 1000):
                opened.append(t + step * 1000)
    assert len(sockets.udp) == 1 + len(opened)
    gaps = [b - a for a, b in zip(opened, opened[1:], strict=False)]
    assert opened[0] == 15000  # the first loss: at once
    assert min(gaps) >= 15000 and max(gaps) <= 45000
    assert sockets.lookups == 1 + len(opened)
    lk.server_alive()
    lk.server_lost()
    assert lk.tick(t + 20000) is True  # after a success the back-off starts over


def test_dns_failure_keeps_the_last_address_and_backs_off():
    lk, wlan, sockets, _, _ = make_link()
    lk.start(0)
    wlan.connected = True
    lk.tick(0)
    sockets.addresses.clear()
    lk.server_lost()
    assert lk.tick(1000) is True  # new socket, old address
    assert lk.addr == SERVER and lk.dns_failures == 1
    lookups = sockets.lookups
    for t in range(1500, 3000, 100):
        lk.tick(t)
    assert sockets.lookups == lookups  # 2 s back-off
    lk.tick(3100)
    assert sockets.lookups == lookups + 1
    sockets.addresses["bridge.example.org"] = "10.0.0.9"
    for t in range(3200, 60000, 500):
        lk.tick(t)
    assert lk.addr == ("10.0.0.9", 1700) and lk.ready


def test_no_dns_lookup_while_a_downlink_is_due():
    lk, wlan, sockets, _, _ = make_link()
    lk.start(0)
    wlan.connected = True
    assert lk.tick(0, may_block=False) is False and sockets.lookups == 0
    assert lk.tick(10, may_block=True) is True


def test_datagrams_from_other_addresses_are_dropped():
    lk, wlan, sockets, _, _ = make_link()
    lk.start(0)
    wlan.connected = True
    lk.tick(0)
    udp = sockets.udp[-1]
    udp.inbox = [
        (b"\x02\x00\x01\x04", ("10.6.6.6", 1700)),
        (b"\x02\x00\x01\x04", (SERVER[0], 1701)),
        (b"\x02\x00\x02\x04", SERVER),
    ]
    assert lk.recv() == b"\x02\x00\x02\x04"
    assert lk.recv() is None and lk.foreign == 2


def test_rxpk_time_before_and_after_ntp(_quiet_log):
    lk, wlan, _, rtc, utime = make_link()
    assert lk.rxpk_time(0) is None and lk.stat_time() is None
    rtc.is_synced = True
    utime.us = 2_000_100  # RTC: 10:00:02.000100
    assert lk.rxpk_time(150) == (2026, 11, 24, 10, 0, 1, 999950)
    assert lk.rxpk_time(0) == (2026, 11, 24, 10, 0, 2, 100)
    assert semtech.rxpk_time(lk.rxpk_time(0)) == "2026-11-24T10:00:02.000100Z"


def test_wifi_password_never_logged(_quiet_log):
    cfg = gw_config()
    for secret in devconfig.secrets(cfg):
        oelog.add_secret(secret)
    lk, wlan, sockets, _, _ = make_link()
    lk.start(0)
    wlan.timeout_error = True
    for t in range(0, 100_000, 1000):
        lk.tick(t)
    wlan.timeout_error = False
    wlan.connected = True
    lk.tick(200_000)
    assert _quiet_log and not any("correct horse" in line for line in _quiet_log)
    assert "correct horse" not in repr(cfg)


# --- radio ------------------------------------------------------------------------------------

Stats = namedtuple(
    "Stats",
    "rx_timestamp rssi snr sfrx sftx tx_trials tx_power tx_time_on_air tx_counter tx_frequency",
)


class FakeLoRa:
    LORA = 0
    EU868 = 5
    BW_125KHZ = 0
    BW_250KHZ = 1
    BW_500KHZ = 2
    CODING_4_5 = 1
    CODING_4_6 = 2
    CODING_4_7 = 3
    CODING_4_8 = 4
    ALWAYS_ON = 0
    TX_ONLY = 1
    RX_PACKET_EVENT = 1
    TX_PACKET_EVENT = 2
    last = None

    def __init__(self, **kwargs):
        self.inits = [kwargs]
        self.flags = 0
        self.trigger = None
        self.handler = None
        self.stat = Stats(0, 0, 0.0, 7, 7, 0, 14, 0, 0, 0)
        FakeLoRa.last = self

    def init(self, **kwargs):
        self.inits.append(kwargs)

    def callback(self, trigger, handler=None, arg=None):
        self.trigger = trigger
        self.handler = handler

    def events(self):
        flags, self.flags = self.flags, 0
        return flags

    def stats(self):
        return self.stat

    def fire(self, flags):
        self.flags |= flags
        self.handler(self)


def make_radio(**kw):
    sockets = FakeSocketModule()
    args = {"freq_hz": 868100000, "sf": 9, "bw_hz": 125000, "cr": 1, "tx_power_dbm": 14}
    args.update(kw)
    r = radio.Radio(FakeLoRa, sockets, **args)
    wakes = []
    r.start(lambda: wakes.append(1))
    return r, FakeLoRa.last, sockets.lora[-1], wakes


def test_radio_listens_for_uplinks_with_rx_iq_false():
    r, lora, sock, _ = make_radio()
    rx = lora.inits[-1]
    assert rx["frequency"] == 868100000 and isinstance(rx["frequency"], int)
    assert (rx["sf"], rx["bandwidth"], rx["coding_rate"], rx["power_mode"]) == (9, 0, 1, 0)
    assert rx["rx_iq"] is False and rx["public"] is True and rx["mode"] == 0
    assert lora.trigger == 3 and sock.blocking is False


def test_radio_tx_set_up_and_back_to_rx():
    r, lora, sock, _ = make_radio()
    r.prepare_tx(869525000, 12, 125000, 1, 14, 8, True)
    tx = lora.inits[-1]
    assert tx["frequency"] == 869525000 and tx["sf"] == 12 and tx["tx_iq"] is True
    assert tx["power_mode"] == FakeLoRa.TX_ONLY and tx["tx_power"] == 14
    r.prepare_tx(868100000, 7, 250000, 4, 10, 8, False)
    tx = lora.inits[-1]
    assert tx["tx_iq"] is False and tx["bandwidth"] == 1 and tx["coding_rate"] == 4
    r.send(b"\x20abc")
    assert sock.sent == [b"\x20abc"] and not r.tx_done
    lora.fire(FakeLoRa.TX_PACKET_EVENT)
    assert r.tx_done
    r.listen()
    assert lora.inits[-1]["power_mode"] == 0 and lora.inits[-1]["frequency"] == 868100000


def test_capture_stamps_the_frame_with_its_stats():
    r, lora, sock, wakes = make_radio()
    sock.inbox.append(b"\x40" + bytes(12))
    lora.stat = Stats(4000000123, -101, -7.25, 9, 9, 0, 14, 0, 0, 0)
    lora.fire(FakeLoRa.RX_PACKET_EVENT)
    assert r.rx_irqs == 1 and wakes == [1]
    assert r.capture() == 1
    frame = r.peek()
    assert bytes(frame.data()) == b"\x40" + bytes(12)
    assert (frame.tmst, frame.rssi, frame.snr_x10) == (4000000123, -101, -72)
    r.pop()
    assert r.peek() is None and r.capture() == 0


def test_capture_of_a_backlog_keeps_only_the_frame_stats_describe():
    r, lora, sock, _ = make_radio()
    sock.inbox += [b"\x40old", b"\x40new"]
    lora.stat = Stats(777, -90, 5.5, 9, 9, 0, 14, 0, 0, 0)
    assert r.capture() == 2
    assert r.nometa == 1 and r.pending() == 1
    frame = r.peek()
    assert bytes(frame.data()) == b"\x40new" and frame.tmst == 777 and frame.snr_x10 == 55


def test_rx_ring_is_bounded():
    r, lora, sock, _ = make_radio()
    for i in range(radio.RX_SLOTS + 3):
        sock.inbox.append(bytes([0x40, i]))
        r.capture()
    assert r.pending() == radio.RX_SLOTS and r.overflow == 3


def test_radio_irq_handler_never_raises():
    r, lora, sock, _ = make_radio()

    def broken():
        raise RuntimeError("schedule queue full")

    r.wake = broken
    lora.fire(FakeLoRa.RX_PACKET_EVENT)
    lora.events = None  # not even a broken LoRa object gets an exception through
    r._irq(lora)
    assert r.rx_irqs == 1


# --- configuration, EUI, clock ---------------------------------------------------------------


def test_bad_config_is_reported_with_an_led_code(tmp_path):
    missing = tmp_path / "none.json"
    cfg, failure = gateway.load_config(str(missing))
    assert cfg is None and failure[0] == leds.BLINKS_CONFIG_FILE
    assert "cannot read" in failure[1]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert gateway.load_config(str(bad))[1][0] == leds.BLINKS_CONFIG_FILE
    bad.write_text(
        json.dumps({"image": "nanogateway", "server_host": "x", "wifi_ssid": "s", "sf": 6})
    )
    cfg, failure = gateway.load_config(str(bad))
    assert failure[0] == leds.BLINKS_CONFIG_VALUE and "sf:" in failure[1]
    bad.write_text(
        json.dumps(
            {
                "image": "nanogateway",
                "server_host": "x",
                "wifi_ssid": "s",
                "wifi_password": "secret-pass-99",
                "bw_khz": 300,
            }
        )
    )
    cfg, failure = gateway.load_config(str(bad))
    assert "bw_khz" in failure[1] and "secret-pass-99" not in failure[1]
    sensor = devconfig.validate(
        {
            "image": "sensor",
            "dev_eui": "00" * 8,
            "app_key": "00" * 16,
            "s0": [{"pin": "P13", "pull": "none"}],
        }
    )
    bad.write_text(devconfig.to_json(sensor))
    assert gateway.load_config(str(bad))[1][0] == leds.BLINKS_CONFIG_IMAGE
    good = tmp_path / "good.json"
    good.write_text(devconfig.to_json(gw_config()))
    cfg, failure = gateway.load_config(str(good))
    assert failure is None and cfg["server_port"] == 1700


def test_gateway_eui_from_the_wifi_mac_unless_configured():
    cfg = gw_config()
    assert gateway.gateway_eui(cfg, FakeWLAN(), None) == bytes.fromhex("240AC4FFFE010203")

    class OldWLAN:
        def mac(self):
            return b"\x30\xae\xa4\x11\x22\x33"

    assert gateway.gateway_eui(cfg, OldWLAN(), None) == bytes.fromhex("30AEA4FFFE112233")
    assert gateway.gateway_eui(cfg, None, lambda: b"\x01\x02\x03\x04\x05\x06") == bytes.fromhex(
        "010203FFFE040506"
    )
    cfg = gw_config(gateway_eui="0011223344556677")
    assert gateway.gateway_eui(cfg, FakeWLAN(), None) == bytes.fromhex("0011223344556677")


def test_clock_is_monotonic_across_the_tick_wrap():
    t = [MASK - 1500]

    def ticks():
        return t[0]

    clock = gateway.Clock(ticks)
    for _ in range(10):
        t[0] = (t[0] + 999) & MASK
        clock.now()
    assert clock.ms == 9  # 9990 µs
    t[0] = (t[0] + 3_600_000_000) & MASK  # an hour without a read: still within one wrap
    clock.now()
    assert clock.ms == 3_600_009


def test_loop_period_follows_the_shortest_frame():
    assert gateway.loop_ms(7, 125000) == 20
    assert gateway.loop_ms(7, 500000) == 5
    assert gateway.loop_ms(12, 125000) == 20


def test_bad_config_blinks_forever_without_reset(monkeypatch, tmp_path, capsys):
    machine = FakeMachine(FakeUtime())
    pycom = FakePycom()
    monkeypatch.setattr(devconfig, "DEVICE_PATH", str(tmp_path / "config.json"))
    (tmp_path / "config.json").write_text('{"image": "nanogateway"}')
    utime = FakeUtime()
    sleeps = []

    class Stop(Exception):
        pass

    def sleep_ms(ms):
        sleeps.append(ms)
        if sum(sleeps) > 60_000:
            raise Stop

    utime.sleep_ms = sleep_ms
    for name, module in (
        ("machine", machine),
        ("network", FakeNetwork()),
        ("pycom", pycom),
        ("utime", utime),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    with pytest.raises(Stop):
        gateway.main()
    out = capsys.readouterr().out
    assert "server_host: missing" in out and out.count("bad configuration") >= 5
    assert machine.resets == 0 and machine.wdts == []
    assert pycom.colors.count(leds.ERROR) >= 3 * 20 and pycom.heartbeat_off


# --- the whole loop on fake hardware ----------------------------------------------------------


class FakePycom:
    def __init__(self):
        self.colors = []
        self.heartbeat_off = False

    def heartbeat(self, on):
        self.heartbeat_off = not on

    def rgbled(self, color):
        self.colors.append(color)


class FakeMachine:
    def __init__(self, utime):
        self.utime = utime
        self.alarms = []
        self.wdts = []
        self.resets = 0
        self.rtc = FakeRTC(utime)
        machine = self

        class Alarm:
            def __init__(self, handler, s=None, *, ms=0, us=0, arg=None, periodic=False):
                self.handler = handler
                self.us = us + ms * 1000 + int((s or 0) * 1_000_000)
                self.periodic = periodic
                self.cancelled = False
                machine.alarms.append(self)

            def cancel(self):
                self.cancelled = True

        class Timer:
            pass

        Timer.Alarm = Alarm
        self.Timer = Timer

    def RTC(self):
        return self.rtc

    def WDT(self, timeout):
        wdt = FakeWDT(timeout)
        self.wdts.append(wdt)
        return wdt

    def unique_id(self):
        return b"\x24\x0a\xc4\x01\x02\x03"

    def rng(self):
        return 0x123456

    def reset(self):
        self.resets += 1


class FakeWDT:
    def __init__(self, timeout):
        self.timeout = timeout
        self.feeds = 0

    def feed(self):
        self.feeds += 1


class FakeNetwork:
    def __init__(self):
        self.wlan = FakeWLAN()
        network = self

        class WLAN:
            STA = 1
            WPA2 = 3

            def __new__(cls, mode=None):
                return network.wlan

        self.WLAN = WLAN
        self.LoRa = FakeLoRa


class FakeGC:
    def __init__(self):
        self.collects = 0

    def collect(self):
        self.collects += 1

    def mem_free(self):
        return 50000


def make_gateway(**changes):
    utime = FakeUtime(us=4_294_300_000)  # the tick counter wraps during the test
    machine = FakeMachine(utime)
    network = FakeNetwork()
    sockets = FakeSocketModule()
    scheduled = []

    def schedule(func, arg):
        scheduled.append((func, arg))

    hw = gateway.Hardware(
        machine, network, sockets, None, utime, FakePycom(), FakeGC(), schedule, machine.rng
    )
    gw = gateway.Gateway(gw_config(**changes), hw, leds.Leds(None))
    gw.start()
    return gw, hw, scheduled


def test_gateway_forwards_an_uplink_and_sends_the_downlink_at_tmst():
    gw, hw, scheduled = make_gateway(tx_start_latency_us=1000)
    network, sockets, utime, machine = hw.network, hw.socket, hw.utime, hw.machine
    network.wlan.connected = True
    gw.step()
    udp = sockets.udp[-1]
    pull = udp.sent[-1][0]
    assert pull[3] == semtech.PULL_DATA and pull[4:12] == gw.eui == bytes.fromhex(
        "240AC4FFFE010203"
    )
    udp.inbox.append((semtech.encode_pull_ack(semtech.decode(pull).token), SERVER))
    udp.inbox.append((b"\x02\x00\x00\x01", ("10.9.9.9", 1700)))  # someone else
    gw.step()
    assert gw.forwarder.server_up and gw.link.foreign == 1
    # an uplink: the IRQ counts and schedules, the loop captures and forwards
    lora = FakeLoRa.last
    rx_done = utime.ticks_cpu()
    lora.stat = Stats(rx_done, -80, 9.5, 7, 7, 0, 14, 0, 0, 0)
    gw.radio.sock.inbox.append(b"\x00" + bytes(22))
    lora.fire(FakeLoRa.RX_PACKET_EVENT)
    assert scheduled and scheduled[-1][0] == gw._scheduled
    gw.step()
    push = [d for d, _ in udp.sent if d[3] == semtech.PUSH_DATA][-1]
    (rx,) = semtech.check_push_data_strict(push).rxpk
    assert rx["tmst"] == rx_done and rx["data"] == b"\x00" + bytes(22) and rx["lsnr_x10"] == 95
    # the join accept for RX1 (5 s for a join; use 1 s here), tmst after the 32-bit wrap
    tmst = (rx_done + 1_000_000) & MASK
    assert tmst < rx_done
    accept = b"\x20" + bytes(range(16))
    udp.inbox.append((pull_resp(token=0x5151, tmst=tmst, data=accept, powe=14), SERVER))
    gw.step()
    ack = [d for d, _ in udp.sent if d[3] == semtech.TX_ACK][-1]
    assert semtech.decode(ack).token == 0x5151 and len(ack) == 12  # NONE: no body
    for _ in range(200):
        gw.step()
        if gw.downlinks.txnb:
            break
    sock = gw.radio.sock
    assert sock.sent == [accept]
    assert gw.downlinks.err_n == 1 and 0 <= gw.downlinks.err_last < 200
    assert lora.inits[-1]["power_mode"] == FakeLoRa.ALWAYS_ON  # back in RX
    assert lora.inits[-2]["power_mode"] == FakeLoRa.TX_ONLY and lora.inits[-2]["tx_iq"] is True
    assert machine.wdts and machine.wdts[0].feeds == 0  # run() feeds; step() alone does not
    gw._feed()
    assert machine.wdts[0].feeds == 1


class FakeSelect:
    """uselect whose poll() reports registered objects with a non-empty inbox."""

    POLLIN = 1

    def __init__(self, utime, fail_on=None):
        self.utime = utime
        self.fail_on = fail_on
        self.timeouts = []

    def poll(self):
        select = self

        class Poll:
            def __init__(self):
                self.objs = []

            def register(self, obj, mask):
                if select.fail_on is not None and isinstance(obj, select.fail_on):
                    raise OSError(22, "EINVAL")
                self.objs.append(obj)

            def poll(self, timeout):
                select.timeouts.append(timeout)
                ready = [(o, 1) for o in self.objs if o.inbox]
                if not ready:
                    select.utime.sleep_ms(timeout)
                return ready

        return Poll()


def make_polling_gateway(fail_on=None):
    utime = FakeUtime(us=1_000_000)
    machine = FakeMachine(utime)
    network = FakeNetwork()
    scheduled = []
    hw = gateway.Hardware(
        machine,
        network,
        FakeSocketModule(),
        FakeSelect(utime, fail_on),
        utime,
        FakePycom(),
        FakeGC(),
        lambda func, arg: scheduled.append((func, arg)),
        machine.rng,
    )
    gw = gateway.Gateway(gw_config(), hw, leds.Leds(None))
    gw.start()
    network.wlan.connected = True
    gw.step()
    udp = hw.socket.udp[-1]
    pull = udp.sent[-1][0]
    udp.inbox.append((semtech.encode_pull_ack(semtech.decode(pull).token), SERVER))
    gw.step()  # its wait sees the datagram, the next pass reads it
    gw.step()
    assert gw.forwarder.server_up
    return gw, hw, scheduled


def test_idle_wait_is_long_and_a_frame_during_it_is_forwarded_after_it():
    gw, hw, scheduled = make_polling_gateway()
    select, udp = hw.select, hw.socket.udp[-1]
    for _ in range(3):
        gw.step()
    assert select.timeouts[-1] == gateway.LOOP_IDLE_MS
    # a frame arrives while the loop waits: the scheduled work leaves it in the radio socket,
    # where it ends the poll; the next pass forwards it
    lora = FakeLoRa.last
    lora.stat = Stats(hw.utime.ticks_cpu(), -80, 9.5, 7, 7, 0, 14, 0, 0, 0)
    gw.radio.sock.inbox.append(b"\x40" + bytes(22))
    lora.fire(FakeLoRa.RX_PACKET_EVENT)
    gw.waiting = True
    func, arg = scheduled[-1]
    func(arg)
    gw.waiting = False
    assert gw.radio.pending() == 0 and gw.radio.sock.inbox
    assert gw.link.wait(gateway.LOOP_IDLE_MS) is False  # ready at once: the radio socket
    sent = len(udp.sent)
    gw.step()
    assert udp.sent[sent][0][3] == semtech.PUSH_DATA  # first, before any keepalive
    # the LED flash of that uplink bounds the next wait
    assert 0 < select.timeouts[-1] <= leds.FLASH_MS
    # a frame captured by scheduled work during the pass (not in the wait) makes the wait 0
    gw.radio.sock.inbox.append(b"\x40" + bytes(22))
    gw._scheduled(0)
    assert gw.radio.pending() == 1
    assert gw._timeout(None) == 0


def test_wait_falls_back_to_the_short_loop_when_the_radio_cannot_be_polled():
    gw, hw, _ = make_polling_gateway(fail_on=FakeLoRaSocket)
    assert not gw.link.watching and gw.link.poller is not None
    for _ in range(3):
        gw.step()
    assert hw.select.timeouts[-1] == gw.loop_ms


def test_watchdog_starves_when_the_irq_thread_is_dead():
    gw, hw, _ = make_gateway()
    hw.network.wlan.connected = True
    wdt = hw.machine.wdts[0]
    beat = [a for a in hw.machine.alarms if a.periodic][0]
    for _ in range(3):
        hw.utime.sleep_ms(5000)
        beat.handler(beat)
        gw.step()
        gw._feed()
    assert wdt.feeds == 3
    for _ in range(5):  # no more heartbeats: callbacks are dead
        hw.utime.sleep_ms(5000)
        gw.step()
        gw._feed()
    assert wdt.feeds < 8 and gw._irq_dead


def test_watchdog_starves_after_repeated_loop_errors():
    gw, hw, _ = make_gateway()
    wdt = hw.machine.wdts[0]
    calls = [0]

    def broken():
        calls[0] += 1
        if calls[0] > 12:
            raise KeyboardInterrupt  # leave run()
        raise ValueError("boom")

    gw.step = broken
    with pytest.raises(KeyboardInterrupt):
        gw.run()
    assert wdt.feeds == gateway.MAX_STEP_ERRORS - 1


def test_gateway_survives_garbage_from_the_server():
    gw, hw, _ = make_gateway()
    hw.network.wlan.connected = True
    gw.step()
    udp = hw.socket.udp[-1]
    for i in range(50):
        udp.inbox.append((bytes([2, i, 0, 3]) + b"{garbage", SERVER))
        udp.inbox.append((base64.b64encode(bytes([i])), SERVER))
    for _ in range(20):
        gw.step()
    assert gw.forwarder.malformed == 100
    acks = [d for d, _ in udp.sent if d[3] == semtech.TX_ACK]
    assert len(acks) == 50 and all(semtech.decode(a).error == "INTERNAL_ERROR" for a in acks)
    assert gw.step_errors == 0


# --- the same logic under real MicroPython (wasm, node) --------------------------------------

MPY_RUNNER = """
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
const [lib, img, script] = process.argv.slice(2);
let out = "";
const mp = await loadMicroPython({
  heapsize: 2 * 1024 * 1024,
  stdout: (t) => { out += t + "\\n"; },
  stderr: (t) => { out += t + "\\n"; },
});
for (const dir of ["/lib", "/img"]) mp.FS.mkdir(dir);
for (const n of fs.readdirSync(lib)) if (n.endsWith(".py")) mp.FS.writeFile("/lib/" + n, fs.readFileSync(lib + "/" + n));
for (const n of fs.readdirSync(img)) if (n.endsWith(".py")) mp.FS.writeFile("/img/" + n, fs.readFileSync(img + "/" + n));
// One runPython per chunk: the wasm port only reclaims garbage in gc.collect() at top level.
for (const chunk of fs.readFileSync(script, "utf8").split("#--chunk--")) {
  try { mp.runPython(chunk); } catch (e) { out += "EXC " + e + "\\n"; break; }
}
process.stdout.write(out);
"""

MPY_SCRIPT = (
    r"""
import sys, gc, json
sys.path.insert(0, '/lib')
sys.path.insert(0, '/img')
gc.collect()
used0 = gc.mem_alloc()
#--chunk--
import semtech, dutycycle, oelog
import downlink, radio, forwarder, link, leds, gateway
#--chunk--
gc.collect()
used1 = gc.mem_alloc()
oelog.configure(level="off")
out = {"import_bytes": used1 - used0}
MASK = 0xFFFFFFFF

def txpk(**kw):
    args = {"freq_hz": 868100000, "datr": "SF7BW125", "data": b"\x20abcdef"}
    args.update(kw)
    dg = semtech.encode_pull_resp(9, semtech.format_txpk(**args))
    return semtech.decode(dg, semtech.PULL_RESP).txpk

class OpenDuty:
    def wait_ms(self, now_ms, freq, air):
        return 0
    def record(self, now_ms, freq, air):
        pass

def decide(tx, now=4294000000, queue=None, duty=None):
    return downlink.decide(tx, now, 0, queue or downlink.DownlinkQueue(), duty or OpenDuty(), 14, 0)[0]

now = 4294000000
out["decide"] = [
    decide(txpk(tmst=(now + 2000000) & MASK)),
    decide(txpk(tmst=(now + 1000) & MASK)),
    decide(txpk(tmst=(now - 1000) & MASK)),
    decide(txpk(tmst=(now + 17000000) & MASK)),
    decide(txpk(tmms=5)),
    decide(txpk(tmst=now + 100000, freq_hz=870500000)),
    decide(txpk(tmst=now + 100000, powe=1)),
    decide(txpk(tmst=now + 100000, modu="FSK", datr=50000, fdev=25000)),
]
duty = dutycycle.DutyCycle()
q = downlink.DownlinkQueue()
err, plan = downlink.decide(txpk(tmst=now + 500000), now, 0, q, duty, 14, 0)
q.add(plan, 1, 0)
duty.record(500, plan.freq_hz, (plan.toa_us + 999) // 1000)
out["decide"].append(decide(txpk(tmst=now + 500000), queue=q))
out["decide"].append(decide(txpk(tmst=(now + 3000000) & MASK), duty=duty))

class Ticks:
    def __init__(self):
        self.t = 4294900000
    def __call__(self):
        self.t = (self.t + 9) & MASK
        return self.t

class TxRadio:
    def __init__(self, ticks):
        self.ticks = ticks
        self.log = []
        self.tx_done = False
    def prepare_tx(self, *a):
        self.log.append("prepare")
    def send(self, data):
        self.log.append(("send", bytes(data), self.ticks.t))
    def listen(self):
        self.log.append("listen")

class Alarm:
    def __init__(self, handler, us):
        self.us = us
    def cancel(self):
        pass

ticks = Ticks()
r = TxRadio(ticks)
dl = downlink.Downlinks(r, dutycycle.DutyCycle(), 14, 500, ticks, Alarm, lambda: None, oelog.get("down"))
tmst = (ticks.t + 1000000) & MASK
out["handle"] = dl.handle(txpk(tmst=tmst), 3, ticks(), 0)
for _ in range(100):
    wait = dl.service(ticks())
    if wait is None:
        break
    ticks.t = (ticks.t + max(wait, 1)) & MASK
sends = [e for e in r.log if isinstance(e, tuple)]
out["tx"] = [len(sends), downlink.offset_us(sends[0][2], (tmst - 500) & MASK), dl.txnb, r.log[-1]]

class FakeLink:
    ready = True
    def __init__(self):
        self.sent = []
    def send(self, buf):
        self.sent.append(bytes(buf))
        return True
    def rxpk_time(self, age):
        return (2026, 11, 24, 10, 0, 1, 5)
    def stat_time(self):
        return (2026, 11, 24, 10, 0, 1, 5, None)
    def server_lost(self):
        pass
    def server_alive(self):
        pass

fl = FakeLink()
fwd = forwarder.Forwarder(b"\x24\x0a\xc4\xff\xfe\x01\x02\x03", fl, lambda t, k: "TOO_EARLY",
                          lambda: (3, 1), oelog.get("up"), (868100000, "SF7BW125", "4/5"),
                          5000, 30000, None, 7)

class Stats:
    def __init__(self, ts, rssi, snr):
        self.rx_timestamp = ts
        self.rssi = rssi
        self.snr = snr

class LoRa:
    LORA = 0; EU868 = 5; BW_125KHZ = 0; BW_250KHZ = 1; BW_500KHZ = 2
    CODING_4_5 = 1; CODING_4_6 = 2; CODING_4_7 = 3; CODING_4_8 = 4
    ALWAYS_ON = 0; TX_ONLY = 1; RX_PACKET_EVENT = 1; TX_PACKET_EVENT = 2
    def __init__(self, **kw):
        self.st = Stats(4000000123, -97, -7.25)
    def init(self, **kw):
        pass
    def callback(self, trigger, handler=None, arg=None):
        pass
    def stats(self):
        return self.st

class LoRaSock:
    def __init__(self):
        self.inbox = []
    def setblocking(self, f):
        pass
    def recv(self, n):
        return self.inbox.pop(0) if self.inbox else b""

class Sockets:
    AF_LORA = 160; SOCK_RAW = 3
    def socket(self, a, b):
        self.s = LoRaSock()
        return self.s

socks = Sockets()
rd = radio.Radio(LoRa, socks, 868100000, 7, 125000, 1, 14)
rd.start()
socks.s.inbox.append(b"\x40" + bytes(range(20)))
rd.capture()
frame = rd.peek()
fwd.uplink(frame, 4000002000)
rd.pop()
rx = semtech.check_push_data_strict(fl.sent[-1]).rxpk[0]
out["rx"] = [rx["tmst"], rx["freq_hz"], rx["lsnr_x10"], rx["rssi"], rx["time"], rx["size"]]
fwd.datagram(semtech.encode_pull_resp(0x4242, semtech.format_txpk(868100000, "SF7BW125", b"\x20", tmst=1)), 0)
ack = semtech.decode(fl.sent[-1], semtech.TX_ACK)
out["ack"] = [ack.token, ack.error]
fwd.opened(0)
fwd.tick(30000)
st = semtech.check_push_data_strict(fl.sent[-1]).stat
out["stat"] = [st["rxnb"], st["rxfw"], st["dwnb"], st["txnb"], st["time"]]

import utime
class Rtc:
    def synced(self):
        return True
    def now(self):
        return (2026, 11, 24, 10, 0, 2, 100, None)
class Cfg:
    def __getitem__(self, k):
        return {"wifi_ssid": "s", "wifi_password": "", "server_host": "h", "server_port": 1,
                "ntp_server": "n"}[k]
lk = link.Link(None, None, None, Rtc(), utime, Cfg(), oelog.get("link"))
out["time"] = semtech.rxpk_time(lk.rxpk_time(150))

t = [MASK - 1500]
clock = gateway.Clock(lambda: t[0])
for _ in range(10):
    t[0] = (t[0] + 999) & MASK
    clock.now()
out["clock"] = clock.ms

del fl.sent[:]
sends = ack = st = rx = p = None
#--chunk--
gc.collect()
base = gc.mem_alloc()
#--chunk--
"""
    + (
        """
for i in range(1000):
    frame.tmst = (4000000000 + i * 100000) & MASK
    fwd.uplink(frame, frame.tmst)
    del fl.sent[:]
#--chunk--
gc.collect()
"""
        * 10
    )
    + """
#--chunk--
gc.collect()
out["heap_growth_10000_frames"] = gc.mem_alloc() - base
out["forwarded"] = fwd.forwarded
print("@@" + json.dumps(out))
"""
)


def test_image_logic_under_real_micropython(tmp_path):
    import shutil
    import subprocess

    root = IMAGE.parents[1]
    if (
        shutil.which("node") is None
        or not (
            root / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
        ).is_dir()
    ):
        pytest.skip("node and the MicroPython wasm package are needed")
    script = tmp_path / "check.py"
    script.write_text(MPY_SCRIPT)
    proc = subprocess.run(
        ["node", "--input-type=module", "-", str(root / "lib"), str(IMAGE), str(script)],
        input=MPY_RUNNER,
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
    )
    marked = [line for line in proc.stdout.splitlines() if line.startswith("@@")]
    assert marked, proc.stdout + proc.stderr
    out = json.loads(marked[-1][2:])
    assert out["decide"] == [
        "NONE",
        "TOO_LATE",
        "TOO_LATE",
        "TOO_EARLY",
        "GPS_UNLOCKED",
        "TX_FREQ",
        "TX_POWER",
        "INTERNAL_ERROR",
        "COLLISION_PACKET",
        "DUTY_CYCLE_OVERFLOW",
    ]
    assert out["handle"] == "NONE"
    sends, error, txnb, last = out["tx"]
    assert sends == 1 and 0 <= error <= 18 and txnb == 1 and last == "listen"
    assert out["rx"] == [4000000123, 868100000, -72, -97, "2026-11-24T10:00:01.000005Z", 21]
    assert out["ack"] == [0x4242, "TOO_EARLY"]
    assert out["stat"] == [3, 1, 1, 1, "2026-11-24 10:00:01 GMT"]
    assert out["time"] == "2026-11-24T10:00:01.999950Z"
    assert out["clock"] == 9
    assert out["forwarded"] == 10001
    # nothing accumulates per frame (allocated bytes after a collection, so heap growth of the
    # wasm port does not hide a leak)
    assert abs(out["heap_growth_10000_frames"]) < 1024, out
    assert out["import_bytes"] > 0
    print("MicroPython: image + lib modules take %d bytes of heap" % out["import_bytes"])


def test_capture_survives_a_recv_that_raises_eagain():
    r, lora, sock, _ = make_radio()

    def eagain(n):
        raise OSError(11, "EAGAIN")

    sock.recv = eagain
    assert r.capture() == 0 and r.pending() == 0
