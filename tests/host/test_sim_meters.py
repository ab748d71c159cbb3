"""Simulated meters: pulses from a load, Linky frames that parse and carry the truth, noise."""

import math
import random

import linky
import pytest
from errors import ConfigError
from openenergy.sim import meters
from openenergy.sim.world import World

S = 1_000_000
MIN = 60 * S
HOUR = 3600 * S
EPOCH_US = 1_767_571_200 * S  # 2026-01-05T00:00:00Z, a Monday

PULSE_COUNTER = """
from machine import Pin
import time
count = [0]
def edge(pin):
    count[0] += 1
pin = Pin("%s", mode=Pin.IN, pull=Pin.%s)
pin.callback(Pin.%s, edge)
while True:
    time.sleep(60)
    print("count", count[0])
"""


def spec(table, where="device 'm'.meter"):
    return meters.parse(table, where)


def s0_world(table, pin="P10", pull="up", until_us=HOUR, seed=1):
    """Run a pulse-counting board with an S0 meter; returns (meter, counts printed per minute)."""
    trigger = "IRQ_RISING" if pull == "down" else "IRQ_FALLING"
    firmware = PULSE_COUNTER % (pin, "PULL_DOWN" if pull == "down" else "PULL_UP", trigger)
    with World(seed=seed) as world:
        board = world.add_board("m", {"main.py": firmware})
        meter = meters.build(
            spec(table), board, {"s0": [{"pin": pin, "pull": pull}]}, seed, EPOCH_US, until_us
        )
        meter.attach()
        world.run(until_us=until_us)
        counts = [(t, int(line.split()[1])) for t, line in board.console if "count" in line]
        return meter, counts


def test_s0_pulse_count_is_load_times_time_times_constant():
    meter, counts = s0_world({"kind": "s0", "load_w": 1800, "pulses_per_kwh": 1000})
    # the load starts 10 s after power-on: 1.8 kW for 3590 s at 1 pulse per Wh
    expected = 1800 * (HOUR - 10 * S) / S / 3600
    assert abs(meter.truth() - expected) <= 1
    # the firmware counted every pulse (edges into the active level) the meter sent
    assert len(counts) == 59
    for t, count in counts:
        assert 0 <= count - meter.truth_at(t) <= 1
    assert meter.delayed == 0


def test_s0_constant_and_active_high_with_pull_down():
    table = {"kind": "s0", "load_w": 500, "pulses_per_kwh": 2000, "channel": 1, "pulse_ms": 40}
    meter, counts = s0_world(table, pin="P19", pull="down", until_us=30 * MIN)
    assert meter.active == 1 and meter.idle == 0
    assert abs(meter.truth() - 500 * 2 * (30 * 60 - 10) / 3600) <= 1
    assert all(0 <= count - meter.truth_at(t) <= 1 for t, count in counts)


def test_s0_meter_lags_when_pulses_would_overlap():
    # 100 kW at 10000 imp/kWh: a pulse every 3.6 ms, far below 60 ms + 30 ms
    meter, _ = s0_world({"kind": "s0", "load_w": 100000, "pulses_per_kwh": 10000}, until_us=1 * MIN)
    assert meter.delayed > 0
    assert meter.truth() <= 60 * S // 90_000 + 1


def test_profiles_are_deterministic_scaled_and_shaped():
    week = 7 * 24 * HOUR
    office = spec({"kind": "s0", "profile": "office", "load_w": 3000})
    a = meters.LoadProfile(office.values, random.Random(1), EPOCH_US, week)
    b = meters.LoadProfile(office.values, random.Random(1), EPOCH_US, week)
    c = meters.LoadProfile(office.values, random.Random(2), EPOCH_US, week)
    assert a.watts == b.watts and a.watts != c.watts
    mean = a.energy_wus(0, week) / week
    assert abs(mean - 3000) < 150  # noise averages out over a week
    # Monday 10:00 local (09:00 UTC) is busier than 03:00 local and than Saturday 10:00
    assert a.power_w(9 * HOUR) > 3 * a.power_w(2 * HOUR)
    assert a.power_w(9 * HOUR) > 3 * a.power_w(5 * 24 * HOUR + 9 * HOUR)
    flat = spec({"kind": "s0", "profile": "flat"})
    assert set(meters.LoadProfile(flat.values, random.Random(1), EPOCH_US, HOUR).watts) == {1000}


def test_csv_profile_repeats_and_drives_the_pulses(tmp_path):
    path = tmp_path / "load.csv"
    path.write_text("minute,watts\n0,600\n1,1200\n2,0\n")
    table = {"kind": "s0", "profile": str(path), "profile_step": "1m", "start": "0s"}
    meter, _ = s0_world(table, until_us=6 * MIN)
    # two cycles of (600 + 1200 + 0) W for a minute each = 2 * 30 Wh
    assert abs(meter.truth() - 60) <= 1


@pytest.mark.parametrize(
    "table, message",
    [
        ({"kind": "gas"}, r"^device 'm'.meter.kind: expected"),
        ({"kind": "s0", "load_w": 1, "color": 1}, r"^device 'm'.meter.color: unknown key"),
        ({"kind": "s0"}, r"^device 'm'.meter.load_w: give the mean power"),
        ({"kind": "s0", "load_w": -5}, r"^device 'm'.meter.load_w: expected a number"),
        ({"kind": "s0", "load_w": 5, "channel": 3}, r"^device 'm'.meter.channel: expected"),
        ({"kind": "s0", "load_w": 5, "pulse_ms": 10}, r"^device 'm'.meter.pulse_ms: expected"),
        ({"kind": "s0", "profile": "nope"}, r"^device 'm'.meter.profile: expected one of"),
        ({"kind": "s0", "profile": "x.csv"}, r"^device 'm'.meter.profile: cannot read"),
        ({"kind": "tic", "load_w": 5, "mode": "auto"}, r"^device 'm'.meter.mode: expected"),
        ({"kind": "tic", "load_w": 5, "tariff": "EJP"}, r"^device 'm'.meter.tariff: expected"),
        ({"kind": "tic", "load_w": 5, "noise": 2}, r"^device 'm'.meter.noise: expected"),
        ({"kind": "tic", "load_w": 5, "hc_hours": "22"}, r"^device 'm'.meter.hc_hours: expected"),
    ],
)
def test_bad_meter_tables_name_the_field(table, message):
    with pytest.raises(ConfigError, match=message):
        spec(table)


def test_csv_with_load_w_is_refused(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("100\n")
    with pytest.raises(ConfigError, match=r"meter.load_w: not with a CSV profile"):
        spec({"kind": "s0", "profile": str(path), "load_w": 3})


def tic_meter(seed=1, duration_us=HOUR, **table):
    table = dict({"kind": "tic", "load_w": 2000}, **table)
    with World(seed=seed) as world:
        board = world.add_board("linky", {"main.py": "import time\nwhile True: time.sleep(60)\n"})
        meter = meters.build(spec(table), board, {"tic": {"uart": 1}}, seed, EPOCH_US, duration_us)
        return meter


def parse_frames(data, mode=linky.AUTO):
    reader = linky.TicReader(mode=mode)
    frames = []
    for i in range(0, len(data), 7):
        if reader.feed(data[i : i + 7]):
            frame = reader.frame()
            if frame is not None:
                frames.append(frame)
    return frames, reader


@pytest.mark.parametrize("mode", ["historique", "standard"])
@pytest.mark.parametrize("tariff", ["BASE", "HCHP"])
def test_tic_frames_parse_and_carry_the_truth_index(mode, tariff):
    meter = tic_meter(mode=mode, tariff=tariff, start_index_wh=1234567)
    data = b""
    totals = []
    for k in range(40):
        frame, total = meter.frame(k * 30 * MIN)
        data += frame
        totals.append(total)
    frames, reader = parse_frames(data)
    assert reader.groups_bad_checksum == 0 and len(frames) == 40
    assert [linky.index_wh(f) for f in frames] == totals
    assert totals[0] == 1234567 and totals[-1] > totals[0]
    # energy: 2 kW from 10 s after power-on to the last frame (19.5 h), to the Wh
    assert abs(totals[-1] - totals[0] - 2000 * (39 * 30 * 60 - 10) / 3600) <= 2
    last = frames[-1]
    if mode == "standard":
        assert last["EAST"] == "%09d" % totals[-1]
        assert int(last["EASF01"]) + int(last["EASF02"]) == totals[-1]
        assert linky.power_va(last) == 2000
    else:
        assert linky.power_va(last) == 2000
        assert ("BASE" in last) == (tariff == "BASE")


def test_tic_hchp_registers_follow_local_off_peak_hours():
    meter = tic_meter(tariff="HCHP", start_index_wh=0, load_w=1000)
    meter.start_us = 0
    hc0, hp0 = meter.registers_wh()
    meter._advance(24 * HOUR)
    hc, hp = meter.registers_wh()
    # 22:00-06:00 local = 8 h of 24 at 1 kW
    assert abs((hc - hc0) - 8000) <= 1 and abs((hp - hp0) - 16000) <= 1
    frame, _ = meter.frame(24 * HOUR)  # 01:00 local: off-peak
    assert b"PTEC HC.." in frame


def test_paris_local_time_follows_summer_time():
    switch = 1_774_746_000 * S  # 2026-03-29T01:00:00Z
    assert meters.paris_offset_us(switch - 1) == HOUR
    assert meters.paris_offset_us(switch) == 2 * HOUR
    local, summer = meters.local_time(1_785_000_000 * S)  # July 2026
    assert summer and local.tm_mon == 7


def test_tic_noise_corrupts_bytes_at_the_given_rate():
    p = 0.002
    meter = tic_meter(noise=p)
    total_bytes = corrupted_bytes = corrupted_frames = 0
    clean = []
    data = b""
    for k in range(3000):
        frame, total = meter.frame(k * 2 * S)
        noisy, count = meter.corrupt(frame)
        assert (noisy != frame) == (count > 0)
        total_bytes += len(frame)
        corrupted_bytes += count
        corrupted_frames += 1 if count else 0
        if not count:
            clean.append(total)
        data += noisy
    expected = p * total_bytes
    assert abs(corrupted_bytes - expected) < 4 * math.sqrt(expected)
    frame_rate = 1 - (1 - p) ** (total_bytes / 3000)
    assert abs(corrupted_frames / 3000 - frame_rate) < 0.03
    frames, reader = parse_frames(data, linky.HISTORIQUE)
    assert reader.groups_bad_checksum > 0
    good = [linky.index_wh(f) for f in frames if linky.index_wh(f) is not None]
    # frames with a corrupted byte are (nearly all) refused; the clean ones all come through
    assert set(clean) <= set(good)
    assert len(frames) <= len(clean) + corrupted_frames // 10


TIC_FIRMWARE = """
import time
import linky
from machine import UART

def read_for(uart, reader, seconds):
    end = time.ticks_add(time.ticks_ms(), seconds * 1000)
    while time.ticks_diff(end, time.ticks_ms()) > 0:
        data = uart.read()
        if data and reader.feed(data):
            frame = reader.frame()
            if frame is not None:
                print("index", linky.index_wh(frame), time.ticks_ms())
        time.sleep_ms(200)

reader = linky.TicReader()
time.sleep(30)
uart = UART(1, baudrate=1200, bits=7, parity=UART.EVEN, stop=1)
read_for(uart, reader, 30)
uart.deinit()
print("closed", time.ticks_ms())
time.sleep(60)
uart.init(baudrate=1200, bits=7, parity=UART.EVEN, stop=1)
reader.reset()
read_for(uart, reader, 20)
uart.deinit()
print("done")
"""


def test_tic_meter_streams_only_while_the_uart_is_open():
    files = {
        "main.py": TIC_FIRMWARE,
        "lib/linky.py": open(linky.__file__).read(),
        "lib/errors.py": open(linky.__file__.replace("linky.py", "errors.py")).read(),
    }
    with World(seed=3) as world:
        board = world.add_board("linky", files)
        meter = meters.build(
            spec({"kind": "tic", "load_w": 3000}), board, {"tic": {"uart": 1}}, 3, EPOCH_US, HOUR
        )
        meter.attach()
        world.run(until_us=3 * MIN)
        lines = [line for _, line in board.console]
    assert "done" in lines, lines
    indexes = [int(line.split()[1]) for line in lines if line.startswith("index")]
    assert len(indexes) >= 30  # ~1.2 s per historique frame, 50 s of listening
    assert set(indexes) <= set(meter.frame_index)
    # frames were sent while the UART was open (30-60 s and 120-140 s after boot), not between
    ends = [t / S for t in meter.frame_ends]
    assert all(30 <= t <= 62 or 120 <= t <= 143 for t in ends), ends
    assert len([t for t in ends if t > 100]) >= 15
    # the truth between the windows is the newest frame sent, the last one the firmware read
    first_window = [i for i in indexes if i in meter.frame_index[: len(meter.frame_index) // 2]]
    before_gap = max(k for k, t in enumerate(meter.frame_ends) if t <= 100 * S)
    assert meter.truth_at(100 * S) == meter.frame_index[before_gap] >= first_window[-1]
    assert meter.truth_at(0) is None
