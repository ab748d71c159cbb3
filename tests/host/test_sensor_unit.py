"""Host tests of the sensor image's own logic (firmware/sensor), with small fakes of the Pycom
modules: debounce arithmetic, backlog bounds and atomic writes, NVS and RTC-memory state, FCnt
rules of the LoRaWAN link, downlink command range checks, report assembly with the lib codec,
and whole reading/report cycles through an outage against a fake native LoRaWAN stack."""

import calendar
import errno
import importlib
import sys
import time
import types
from pathlib import Path

import devconfig
import meterpayload
import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "firmware" / "sensor"
IMAGE_MODULES = ("store", "meters", "link", "commands", "leds", "app")
EPOCH_MS = 1_700_000_000_000


# ----------------------------------------------------------------------------- fakes
class FakeClock:
    def __init__(self):
        self.ms = EPOCH_MS

    def advance(self, ms):
        self.ms += int(ms)


def make_utime(clock):
    m = types.ModuleType("utime")

    def ticks_diff(end, start):
        d = (end - start) & 0xFFFFFFFF
        return d - 0x100000000 if d & 0x80000000 else d

    m.ticks_ms = lambda: clock.ms & 0xFFFFFFFF
    m.ticks_us = lambda: (clock.ms * 1000) & 0xFFFFFFFF
    m.ticks_diff = ticks_diff
    m.ticks_add = lambda t, d: (t + d) & 0xFFFFFFFF
    m.time = lambda: clock.ms // 1000
    m.sleep_ms = lambda ms: clock.advance(ms)
    m.sleep = lambda s: clock.advance(s * 1000)
    m.mktime = lambda t: calendar.timegm((t[0], t[1], t[2], t[3], t[4], t[5], 0, 0, 0))
    return m


class FakePycom(types.ModuleType):
    def __init__(self):
        super().__init__("pycom")
        self.nvs = {}
        self.writes = 0
        self.led = None

    def nvs_set(self, key, value):
        assert isinstance(value, int) and len(key) <= 15
        self.nvs[key] = value & 0xFFFFFFFF
        self.writes += 1

    def nvs_get(self, key):
        if key not in self.nvs:
            raise ValueError("no such key")
        v = self.nvs[key]
        return v - 0x100000000 if v & 0x80000000 else v  # signed, as the firmware returns it

    def nvs_erase(self, key):
        del self.nvs[key]

    def heartbeat(self, *a):
        return False

    def rgbled(self, color):
        self.led = color

    def wifi_on_boot(self, *a):
        return False


class SleepCalled(BaseException):
    pass


def make_machine(clock, levels):
    m = types.ModuleType("machine")
    m.DEEPSLEEP_RESET = 3
    m.PWRON_RESET = 0
    m.PIN_WAKE = 1
    m.RTC_WAKE = 2
    m.WAKEUP_ALL_LOW = 0
    m.WAKEUP_ANY_HIGH = 1
    m.reset_cause_value = 0
    m.wake = (0, None)
    m.rtc_memory = b""
    m.sleeps = []
    m.wake_config = None

    class Pin:
        IN, OUT = 1, 2
        PULL_UP, PULL_DOWN = 1, 2
        IRQ_RISING, IRQ_FALLING = 1, 2
        registry = {}

        def __init__(self, pin_id, mode=1, pull=None):
            self._id = pin_id
            self.pull = pull
            self.handler = None
            self.arg = None
            Pin.registry[pin_id] = self

        def id(self):
            return self._id

        def value(self):
            return levels.get(self._id, 1 if self.pull == Pin.PULL_UP else 0)

        def callback(self, trigger, handler=None, arg=None):
            self.handler = handler
            self.arg = arg

    class RTC:
        def now(self):
            t = time.gmtime(clock.ms // 1000)
            return (
                t.tm_year,
                t.tm_mon,
                t.tm_mday,
                t.tm_hour,
                t.tm_min,
                t.tm_sec,
                (clock.ms % 1000) * 1000,
                None,
            )

        def memory(self, *args):
            if args:
                m.rtc_memory = bytes(args[0])  # bytes-like only, as the firmware takes it
                return None
            return m.rtc_memory

    class UART:
        EVEN = 2

        def __init__(self, *a, **k):
            self.data = bytearray()

        def any(self):
            return len(self.data)

        def readinto(self, buf, n):
            n = min(n, len(self.data))
            buf[:n] = self.data[:n]
            del self.data[:n]
            return n

    class WDT:
        def __init__(self, id=0, timeout=0):
            self.fed = 0

        def feed(self):
            self.fed += 1

    m.Pin = Pin
    m.RTC = RTC
    m.UART = UART
    m.WDT = WDT
    m.reset_cause = lambda: m.reset_cause_value
    m.wake_reason = lambda: m.wake
    m.rng = lambda: 0x5A5A5A
    m.pin_sleep_wakeup = lambda pins, mode, pull=False: setattr(
        m, "wake_config", (list(pins), mode)
    )

    def deepsleep(ms):
        m.sleeps.append(ms)
        raise SleepCalled(ms)

    m.deepsleep = deepsleep
    return m


class FakeLoRaWAN:
    """Enough of Pycom's native LoRaWAN stack: OTAA join, FCnt, nvram, events, stats."""

    LORAWAN, EU868, CLASS_A, OTAA = 1, 5, 0, 0
    RX_PACKET_EVENT, TX_PACKET_EVENT, TX_FAILED_EVENT = 1, 2, 4

    def __init__(self, clock):
        self.clock = clock
        self.joined = False
        self.fcnt = 0
        self.nv = None
        self.accept_join = True
        self.ack = True
        self.reachable = True  # the server gets what is sent
        self.lose_counters_on_restore = False
        self.sent = []  # (port, data, confirmed, fcnt)
        self.received = []  # what reached the server
        self.downlinks = []
        self.channels = {0: 868100000, 1: 868300000, 2: 868500000}
        self._events = 0
        self.tx_counter = 0
        self.inits = 0
        self.joins = 0
        self.nvs_at_send = []
        self.pycom = None
        self.max_len = 242

    def __call__(self, **kwargs):  # LoRa(...) returns the one object
        self.init(**kwargs)
        return self

    def init(self, **kwargs):
        self.inits += 1
        self.joined = False

    def join(self, activation, auth, dr=None, timeout=None):
        self.joins += 1
        self.clock.advance(timeout or 0)
        if self.accept_join and self.reachable:
            self.joined = True
            self.fcnt = 0
        else:
            raise TimeoutError("timed out")

    def has_joined(self):
        return self.joined

    def add_channel(self, index, frequency, dr_min, dr_max):
        if index < 3 and (dr_min != 0 or dr_max < 5):
            return  # LoRaMac-node keeps a default channel unless its range is DR0..DR5
        self.channels[index] = frequency

    def remove_channel(self, index):
        self.channels.pop(index, None)

    def nvram_save(self):
        self.nv = {"joined": self.joined, "fcnt": self.fcnt}

    def nvram_restore(self):
        if self.nv and self.nv["joined"]:
            self.joined = True
            self.fcnt = 0 if self.lose_counters_on_restore else self.nv["fcnt"]
            self.nv["joined"] = False  # cleared until the next nvram_save, as modlora.c does

    def nvram_erase(self):
        self.nv = None

    def events(self):
        e, self._events = self._events, 0
        return e

    def stats(self):
        return types.SimpleNamespace(
            tx_counter=self.tx_counter, tx_time_on_air=0, tx_trials=1, sftx=None
        )

    def socket_send(self, port, data, confirmed):
        if not self.joined:
            raise OSError(errno.ENETDOWN, "ENETDOWN")
        if len(data) > self.max_len:
            raise OSError(errno.EMSGSIZE, "EMSGSIZE")
        if self.pycom is not None:
            self.nvs_at_send.append(dict(self.pycom.nvs))
        used = self.fcnt
        self.fcnt += 1
        self.sent.append((port, bytes(data), confirmed, used))
        self.clock.advance(2000)
        if self.reachable:
            self.received.append((port, bytes(data)))
        if confirmed and not (self.ack and self.reachable):
            self._events |= self.TX_FAILED_EVENT
            return
        self.tx_counter = used
        self._events |= self.TX_PACKET_EVENT


class FakeSocket:
    def __init__(self, lora):
        self.lora = lora
        self.port = 2
        self.confirmed = False

    def bind(self, port):
        self.port = port

    def setsockopt(self, level, option, value):
        if option == 1:
            self.confirmed = bool(value)

    def setblocking(self, flag):
        pass

    def send(self, data):
        self.lora.socket_send(self.port, data, self.confirmed)
        return len(data)

    def recvfrom(self, n):
        if self.lora.downlinks:
            port, data = self.lora.downlinks.pop(0)
            return data, port
        return b"", 0


def make_network(lora):
    m = types.ModuleType("network")
    m.LoRa = lora
    lora.LoRa = lora
    return m


def make_socket(lora):
    m = types.ModuleType("socket")
    m.AF_LORA, m.SOCK_RAW, m.SOL_LORA, m.SO_CONFIRMED, m.SO_DR = 160, 3, 1, 1, 2
    m.socket = lambda family, kind: FakeSocket(lora)
    return m


class Env:
    """Fake Pycom modules installed in sys.modules and the image modules imported over them."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.clock = FakeClock()
        self.levels = {}
        self.utime = make_utime(self.clock)
        self.pycom = FakePycom()
        self.machine = make_machine(self.clock, self.levels)
        self.lora = FakeLoRaWAN(self.clock)
        self.lora.pycom = self.pycom
        self.network = make_network(self.lora)
        self.socket = make_socket(self.lora)
        self.mods = {}

    def install(self, monkeypatch):
        for name, mod in (
            ("utime", self.utime),
            ("pycom", self.pycom),
            ("machine", self.machine),
            ("network", self.network),
        ):
            monkeypatch.setitem(sys.modules, name, mod)
        monkeypatch.syspath_prepend(str(IMAGE))
        for name in IMAGE_MODULES:
            monkeypatch.delitem(sys.modules, name, raising=False)
        for name in IMAGE_MODULES:
            self.mods[name] = importlib.import_module(name)
        app = self.mods["app"]
        monkeypatch.setattr(app, "BACKLOG_PATH", str(self.tmp / "backlog.bin"))
        monkeypatch.setattr(app, "OVERRIDES_PATH", str(self.tmp / "over.json"))
        return self

    def __getattr__(self, name):
        mods = self.__dict__.get("mods", {})
        if name in mods:
            return mods[name]
        raise AttributeError(name)


@pytest.fixture
def env(tmp_path, monkeypatch):
    e = Env(tmp_path)
    e.install(monkeypatch)
    yield e
    for name in IMAGE_MODULES:
        sys.modules.pop(name, None)


class Log:
    def __init__(self):
        self.lines = []

    def _add(self, level, fmt, *args):
        self.lines.append((level, fmt % args if args else fmt))

    def info(self, fmt, *a):
        self._add("I", fmt, *a)

    def warning(self, fmt, *a):
        self._add("W", fmt, *a)

    def error(self, fmt, *a):
        self._add("E", fmt, *a)

    def exc(self, exc, fmt, *a):
        self._add("E", fmt, *a)


def sensor_config(**over):
    raw = {
        "image": "sensor",
        "dev_eui": "70B3D57ED0000001",
        "app_key": "00112233445566778899AABBCCDDEEFF",
        "report_interval_s": 60,
        "history": 4,
        "confirmed": "alarms",
        "led": False,
        "s0": [{"pin": "P13", "pull": "none", "no_pulse_h": 0}],
    }
    raw.update(over)
    return devconfig.validate(raw)


# ----------------------------------------------------------------------------- debounce
def test_debounce_counts_pulses_not_bounces(env):
    m = env.meters
    c = m.PulseCounter([30], [m.ACTIVE_LOW])
    t = 1000
    # clean 50 ms pulse
    c.edge(0, 0, t)
    c.edge(0, 1, t + 50)
    assert c.take(0) == 1
    # press bounce (1 ms spans), then a held 40 ms pulse, then release bounce
    c.edge(0, 0, t + 100)
    c.edge(0, 1, t + 101)
    c.edge(0, 0, t + 102)
    c.edge(0, 1, t + 103)
    c.edge(0, 0, t + 104)
    c.edge(0, 1, t + 144)  # counted: 40 ms active
    c.edge(0, 0, t + 145)
    c.edge(0, 1, t + 146)
    assert c.take(0) == 1
    assert c.bounces[0] == 3
    # a 29 ms pulse is below the debounce time
    c.edge(0, 0, t + 300)
    c.edge(0, 1, t + 329)
    assert c.take(0) == 0
    # exactly the debounce time counts
    c.edge(0, 0, t + 400)
    c.edge(0, 1, t + 430)
    assert c.take(0) == 1


def test_debounce_repeated_level_reads_and_ticks_wrap(env):
    m = env.meters
    c = m.PulseCounter([30, 30], [m.ACTIVE_LOW, m.ACTIVE_HIGH])
    near_wrap = 0xFFFFFFF0
    c.edge(1, 1, near_wrap)
    c.edge(1, 1, near_wrap + 5)  # a second IRQ reading the same level changes nothing
    c.edge(1, 0, (near_wrap + 40) & 0xFFFFFFFF)  # ticks wrapped during the pulse
    assert c.take(1) == 1 and c.take(0) == 0
    c.add(0, 2)
    assert c.take(0) == 2 and c.take(0) == 0
    assert c.active_ms(1, 0) == 0


def test_counter_stays_in_small_int_range(env):
    m = env.meters
    c = m.PulseCounter([30], [m.ACTIVE_HIGH])
    c.counted[0] = 0x3FFFFFFF
    c.taken[0] = 0x3FFFFFFE
    c.edge(0, 1, 0)
    c.edge(0, 0, 100)
    assert c.counted[0] == 0  # wrapped below 2^30
    assert c.take(0) == 2


def test_active_level_and_wake_modes(env):
    m = env.meters
    mach = env.machine
    assert m.active_level("up") == m.ACTIVE_LOW and m.active_level("none") == m.ACTIVE_LOW
    assert m.active_level("down") == m.ACTIVE_HIGH
    two_high = m.S0Inputs(mach, [sensor_config(s0=[{"pin": "P13", "pull": "none"}])["s0"][0]])
    assert two_high.wake_mode(mach) == (["P13"], mach.WAKEUP_ALL_LOW)
    cfg = sensor_config(s0=[{"pin": "P19", "pull": "down"}, {"pin": "P20", "pull": "down"}])
    assert m.S0Inputs(mach, cfg["s0"]).wake_mode(mach) == (["P19", "P20"], mach.WAKEUP_ANY_HIGH)
    cfg = sensor_config(s0=[{"pin": "P19", "pull": "up"}, {"pin": "P20", "pull": "up"}])
    assert m.S0Inputs(mach, cfg["s0"]).wake_mode(mach) is None


def test_irq_handler_never_raises(env):
    m = env.meters
    inputs = m.S0Inputs(env.machine, sensor_config()["s0"])
    inputs.start()
    handler = env.machine.Pin.registry["P13"].handler
    handler(5)  # a bad channel number: swallowed, the IRQ thread survives
    env.levels["P13"] = 0
    handler(0)
    env.clock.advance(60)
    env.levels["P13"] = 1
    handler(0)
    assert inputs.counter.take(0) == 1


# ----------------------------------------------------------------------------- TIC block
def test_tic_block_historique_and_standard(env):
    m = env.meters
    assert m.tic_block({"BASE": "012345678", "PAPP": "01520", "PTEC": "TH.."}) == (
        1520,
        1,
        [12345678],
    )
    hchp = {"HCHC": "004567890", "HCHP": "001234567", "PTEC": "HP..", "PAPP": "00800"}
    assert m.tic_block(hchp) == (800, 2, [4567890, 1234567])
    tempo = {
        k: "000000001" for k in ("BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR")
    }
    tempo["PTEC"] = "HPJW"
    assert m.tic_block(tempo)[1] == 4
    std = {"EASF%02d" % i: "%09d" % (1000 * i if i <= 2 else 0) for i in range(1, 11)}
    std.update({"SINSTS": "00420", "NTARF": "02", "EAST": "000003000"})
    assert m.tic_block(std) == (420, 2, [1000, 2000])
    assert m.tic_block({"ADCO": "021728123456"}) is None


def test_tic_input_reads_frames_from_uart(env):
    import linky

    m = env.meters
    tic = m.TicInput(env.machine, 1, "P4", "historique")
    frame = linky.encode_frame(
        [("ADCO", "021728123456"), ("BASE", "012345678"), ("PAPP", "01520")], "historique"
    )
    tic.uart.data += frame[:10]
    assert not tic.poll()
    tic.uart.data += frame[10:]
    assert tic.poll()
    assert m.tic_block(tic.frame) == (1520, 0, [12345678])
    assert tic.detected() == 1


# ----------------------------------------------------------------------------- store
def test_nvs_masks_caches_and_writes_on_change(env):
    s = env.store
    nvs = s.Nvs(env.pycom)
    assert nvs.get("oe_x", 7) == 7
    nvs.set("oe_x", 0xFFFFFFFE)
    assert env.pycom.nvs_get("oe_x") == -2  # the firmware's signed view
    assert s.Nvs(env.pycom).get("oe_x") == 0xFFFFFFFE
    writes = env.pycom.writes
    assert nvs.set("oe_x", 0xFFFFFFFE) is False
    assert env.pycom.writes == writes


def test_atomic_write_keeps_old_content_until_rename(env, tmp_path, monkeypatch):
    s = env.store
    path = str(tmp_path / "f.json")
    s.atomic_write(path, b"old")
    real_open = open

    def torn_open(name, mode="r"):
        f = real_open(name, mode)
        if name.endswith(".tmp"):
            f.write(b"ne")
            f.close()
            raise OSError(5, "EIO")  # power cut while writing the temp file
        return f

    monkeypatch.setattr(s, "open", torn_open, raising=False)
    with pytest.raises(OSError):
        s.atomic_write(path, b"new")
    monkeypatch.undo()
    assert s.read_file(path) == b"old"
    # FatFS style: the target was removed, the power failed before the rename
    (tmp_path / "f.json").unlink()
    (tmp_path / "f.json.tmp").write_bytes(b"new")
    assert s.read_file(path) == b"new"
    assert not (tmp_path / "f.json.tmp").exists()


def test_atomic_write_falls_back_to_remove_then_rename(env, tmp_path, monkeypatch):
    s = env.store
    path = str(tmp_path / "f.json")
    s.atomic_write(path, b"old")
    real_rename = s.os.rename
    calls = []

    def no_replace(a, b):
        calls.append(a)
        if len(calls) == 1:
            raise OSError(17, "EEXIST")
        real_rename(a, b)

    monkeypatch.setattr(s.os, "rename", no_replace)
    s.atomic_write(path, b"new")
    assert s.read_file(path) == b"new" and len(calls) == 2


def test_rtc_state_roundtrip_and_junk(env):
    s = env.store
    rtc = env.machine.RTC()
    assert s.load_rtc_state(rtc) is None
    assert s.save_rtc_state(rtc, {"a": [1, 2, EPOCH_MS], "b": None})
    assert s.load_rtc_state(rtc)["a"] == [1, 2, EPOCH_MS]
    rtc.memory(b"\xff\x00garbage")
    assert s.load_rtc_state(rtc) is None
    rtc.memory(b'{"v": 99}')
    assert s.load_rtc_state(rtc) is None
    assert not s.save_rtc_state(rtc, {"x": "y" * 3000})


def test_backlog_append_read_and_tic(env, tmp_path):
    s = env.store
    b = s.Backlog(str(tmp_path / "b.bin"), 2, True, 100)
    assert b.open() == 0
    for seq in range(1, 6):
        b.append(seq, [seq * 10, 0xFFFFFFFF], (70000, 2, [seq, 2 * seq]) if seq != 3 else None)
    assert (b.first, b.last, b.count) == (1, 5, 5)
    rec = b.read(4)
    assert b.index(rec, 0) == 40 and b.index(rec, 1) == 0xFFFFFFFF
    assert b.tic_of(rec) == (0xFFFF, 2, [4, 8])  # papp capped to u16
    assert b.tic_of(b.read(3)) is None
    assert b.read(0) is None and b.read(6) is None
    again = s.Backlog(str(tmp_path / "b.bin"), 2, True, 100)
    assert again.open() == 5 and again.first == 1


def test_backlog_cuts_torn_and_corrupt_tail(env, tmp_path):
    s = env.store
    path = tmp_path / "b.bin"
    b = s.Backlog(str(path), 1, False, 100)
    b.open()
    for seq in range(1, 4):
        b.append(seq, [seq])
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x00\x04\x00")  # power cut in the middle of record 4
    b2 = s.Backlog(str(path), 1, False, 100)
    assert b2.open() == 3 and b2.repaired == 1
    assert path.stat().st_size == 3 * b2.size
    b2.append(4, [4])
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # bad check byte on the last record
    path.write_bytes(bytes(data))
    b3 = s.Backlog(str(path), 1, False, 100)
    assert b3.open() == 3


def test_backlog_capacity_is_bounded(env, tmp_path):
    s = env.store
    b = s.Backlog(str(tmp_path / "b.bin"), 1, False, 64)
    b.open()
    for seq in range(1, 201):
        b.append(seq, [seq])
        assert b.count <= 64
    assert b.last == 200 and b.dropped == 200 - b.count
    assert (tmp_path / "b.bin").stat().st_size == b.count * b.size
    assert b.index(b.read(b.first), 0) == b.first


def test_backlog_forget_keeps_history(env, tmp_path):
    s = env.store
    b = s.Backlog(str(tmp_path / "b.bin"), 1, False, 1000)
    b.open()
    for seq in range(1, 21):
        b.append(seq, [seq])
    b.forget_through(2, 0)  # frees less than a quarter: no rewrite yet
    assert b.first == 1
    b.forget_through(20, 4)
    assert (b.first, b.last) == (17, 20)
    b.forget_through(20, 0)
    assert b.count == 0 and not (tmp_path / "b.bin").exists()
    b.append(21, [21])
    assert (b.first, b.last) == (21, 21)


# ----------------------------------------------------------------------------- commands
def cmd(*commands):
    return meterpayload.encode({"kind": "command", "commands": list(commands)})[1]


def test_commands_range_checks_and_trigger(env):
    c = env.commands
    settings = c.Settings(sensor_config())
    out = c.handle(settings, cmd({"cmd": "set_interval", "interval_s": 59}), 1)
    assert out.trigger == c.TRIGGER_REJECTED and settings.interval_s == 60
    out = c.handle(
        settings, cmd({"cmd": "set_interval", "interval_s": 600}, {"cmd": "get_config"}), 1
    )
    assert out.trigger == c.TRIGGER_CHANGED and settings.interval_s == 600 and out.interval_changed
    out = c.handle(settings, cmd({"cmd": "get_config"}), 1)
    assert out.trigger == c.TRIGGER_REQUEST
    out = c.handle(
        settings,
        cmd(
            {"cmd": "preset_counter", "channel": 1, "index": 5},
            {"cmd": "preset_counter", "channel": 0, "index": 123456},
            {"cmd": "set_thresholds", "channel": 0, "flow_high": 10, "no_pulse_h": 48, "leak_h": 0},
        ),
        1,
    )
    assert out.trigger == c.TRIGGER_REJECTED  # channel 1 does not exist; the others still apply
    assert out.presets == [(0, 123456)] and settings.thresholds[0] == [10, 48, 0]
    out = c.handle(settings, b"\x1a\xff", 1)
    assert out.trigger == c.TRIGGER_REJECTED
    out = c.handle(settings, cmd({"cmd": "rejoin"}), 1)
    assert out.rejoin and out.trigger == c.TRIGGER_REQUEST
    out = c.handle(settings, cmd({"cmd": "set_dr", "dr": 6, "adr": False}), 1)
    assert out.trigger == c.TRIGGER_REJECTED
    out = c.handle(settings, cmd({"cmd": "set_dr", "dr": 0, "adr": True}), 1)
    assert out.radio_changed and (settings.dr, settings.adr) == (0, True)
    out = c.handle(settings, cmd({"cmd": "set_confirmed", "confirmed": "always"}), 1)
    assert settings.confirmed == "always"


def test_single_channel_refuses_other_dr_and_adr(env):
    c = env.commands
    settings = c.Settings(sensor_config(single_channel=True, frequency_hz=868100000, sf=9))
    assert (
        c.handle(settings, cmd({"cmd": "set_dr", "dr": 5, "adr": False}), 1).trigger
        == c.TRIGGER_REJECTED
    )
    assert (
        c.handle(settings, cmd({"cmd": "set_dr", "dr": 3, "adr": True}), 1).trigger
        == c.TRIGGER_REJECTED
    )
    assert (
        c.handle(settings, cmd({"cmd": "set_dr", "dr": 3, "adr": False}), 1).trigger
        == c.TRIGGER_REQUEST
    )


def test_overrides_roundtrip(env):
    c = env.commands
    a = c.Settings(sensor_config())
    c.handle(
        a, cmd({"cmd": "set_history", "history": 9}, {"cmd": "set_interval", "interval_s": 300}), 1
    )
    b = c.Settings(sensor_config())
    b.apply_overrides(a.overrides())
    assert b.overrides() == a.overrides()
    junk = c.Settings(sensor_config())
    junk.apply_overrides(
        {"interval_s": 5, "history": "x", "dr": 9, "adr": False, "thresholds": [[1]]}
    )
    assert junk.overrides() == c.Settings(sensor_config()).overrides()


def test_status_frame_decodes(env):
    c = env.commands
    settings = c.Settings(sensor_config())
    buf = bytearray(242)
    n = c.status_frame(buf, c.TRIGGER_BOOT, (1, 0, 0), settings, 0x0200, 70001, 3650, 1)
    d = meterpayload.decode(None, bytes(buf[:n]))
    assert d["trigger"] == "boot" and d["seq"] == 70001 & 0xFFFF and d["interval_s"] == 60
    assert (
        d["status"] == ["rebooted"] and d["tic_mode"] == "historique" and d["confirmed"] == "alarms"
    )
    assert d["thresholds"] == [{"channel": 0, "flow_high": 0, "no_pulse_h": 0, "leak_h": 0}]


# ----------------------------------------------------------------------------- link
class Clock:
    def __init__(self, fake):
        self.fake = fake

    def now_ms(self):
        return self.fake.ms


def new_link(env, **over):
    s = env.store
    settings = {
        "dev_eui": b"\x70" * 8,
        "join_eui": b"\x00" * 8,
        "app_key": b"\x11" * 16,
        "single_channel": False,
        "frequency_hz": None,
        "dr": 5,
        "adr": False,
    }
    settings.update(over)
    nvs = s.Nvs(env.pycom)
    return env.link.Link(
        env.network, env.socket, nvs, Clock(env.clock), lambda: 0x123456, settings, Log()
    )


def test_join_then_send_persists_fcnt_before_the_radio(env):
    L = env.link
    link = new_link(env)
    assert not link.start()
    assert link.join()
    assert link.nvs.get("oe_ses") == 1 and link.just_joined
    for i in range(3):
        env.clock.advance(60000)
        assert link.send(1, b"abc", False) == L.SENT
        # at the radio, oe_fup already counted this uplink, oe_fsv not yet
        at_send = env.lora.nvs_at_send[-1]
        assert at_send["oe_fup"] == i + 1 and at_send["oe_fsv"] == i
    assert link.nvs.get("oe_fsv") == 3 and link.nvs.get("oe_fnx") == 3
    assert [f[3] for f in env.lora.sent] == [0, 1, 2]


def test_restored_session_trusted_only_when_saved_after_last_send(env):
    L = env.link
    link = new_link(env)
    link.start()
    link.join()
    env.clock.advance(60000)
    link.send(1, b"x", False)
    link.save(env.clock.ms)
    # next boot: counters consistent -> resumes, FCnt continues
    link2 = new_link(env)
    assert link2.start() and link2.joined
    env.clock.advance(60000)
    assert link2.send(1, b"y", False) == L.SENT
    assert env.lora.sent[-1][3] == 1
    # a send that was started but not followed by nvram_save: doubt -> refuse, erase
    link2.nvs.set("oe_fup", link2.nvs.get("oe_fup") + 1)
    env.lora.nvram_save()
    link3 = new_link(env)
    assert not link3.start()
    assert link3.doubts == 1 and env.lora.nv is None


def test_fcnt_going_back_drops_the_session(env):
    L = env.link
    link = new_link(env)
    link.start()
    link.join()
    for _ in range(5):
        env.clock.advance(60000)
        link.send(1, b"x", False)
    link.save(env.clock.ms)
    env.lora.lose_counters_on_restore = True  # pycom-micropython-sigfox #307
    link2 = new_link(env)
    assert link2.start()
    env.clock.advance(60000)
    assert link2.send(1, b"x", False) == L.DOWN
    assert link2.replays == 1 and not link2.joined
    # the next join starts a new session with counters from zero
    assert link2.join()
    env.clock.advance(60000)
    assert link2.send(1, b"x", False) == L.SENT
    assert link2.nvs.get("oe_ses") == 2


def test_join_failures_back_off(env):
    link = new_link(env)
    link.start()
    env.lora.accept_join = False
    assert not link.join()
    first_delay = link.join_next_ms - env.clock.ms
    assert 4000 <= first_delay <= 8000
    assert not link.join() and env.lora.joins == 1  # too early: no JoinRequest
    env.clock.advance(first_delay)
    inits = env.lora.inits
    assert not link.join() and env.lora.joins == 2
    assert env.lora.inits == inits + 1  # the stack's own retry timer cancelled
    second = link.join_next_ms - env.clock.ms
    assert second >= 8000
    env.lora.accept_join = True
    env.clock.advance(second)
    assert link.join() and link.join_attempt == 0


def test_join_budget_of_first_hour(env):
    link = new_link(env, dr=0)  # SF12 JoinRequest ~1.5 s: 36 s budget = 24 attempts
    link.start()
    env.lora.accept_join = False
    start = env.clock.ms
    while env.clock.ms - start < 3600000:
        link.join()
        env.clock.advance(max(1000, link.join_due_ms(env.clock.ms)))
    airtime = env.link.airtime.time_on_air_ms_ceil(12, 125000, 23)
    assert env.lora.joins * airtime <= 36000 + airtime


def test_unanswered_confirmed_uplinks_lead_to_rejoin(env):
    L = env.link
    link = new_link(env)
    link.start()
    link.join()
    env.lora.ack = False
    results = []
    for _ in range(L.LINK_CHECK_AFTER + 1):
        env.clock.advance(120000)
        results.append(link.send(1, b"x", True))
        if len(results) == L.LINK_CHECK_AFTER:
            assert link.needs_check
    assert results == [L.NOT_ACKED] * (L.LINK_CHECK_AFTER + 1)
    assert not link.joined


def test_single_channel_plan_and_duty_cycle(env):
    L = env.link
    link = new_link(env, single_channel=True, frequency_hz=868500000, dr=0)
    link.start()
    link.join()
    assert env.lora.channels == {0: 868500000, 1: 868500000, 2: 868500000}
    env.clock.advance(600000)
    assert link.send(1, b"x" * 40, False) == L.SENT
    assert link.send(1, b"x" * 40, False) == L.WAIT  # 1 % sub-band: ~ 2.3 s x 99 closed
    assert 200000 <= link.wait_ms <= 250000
    env.clock.advance(link.wait_ms)
    assert link.send(1, b"x" * 40, False) == L.SENT


def test_power_cut_closes_the_sub_band_for_one_frame(env):
    link = new_link(env, dr=5)
    link.load(None, env.clock.ms, 0)
    assert link.duty.wait_ms(env.clock.ms, 868100000, 50) > 0


def test_message_too_big_shrinks_the_payload(env):
    L = env.link
    link = new_link(env)
    link.start()
    link.join()
    env.lora.max_len = 100
    room = link.max_payload()
    env.clock.advance(60000)
    assert link.send(1, b"x" * 200, False) == L.TOO_BIG
    assert link.max_payload() == room - 10


# ----------------------------------------------------------------------------- the cycle
def new_sensor(env, **over):
    cfg = sensor_config(**over)
    return env.app.Sensor(cfg, env.network, env.socket, Log())


def server_readings(lora):
    """{seq: index} of channel 0 that reached the server, from every report received."""
    got = {}
    for port, data in lora.received:
        if port == 1:
            d = meterpayload.decode(1, data)
            for reading in d["channels"][0]["readings"]:
                got[reading["seq"]] = reading["index"]
    return got


def pulse(env, sensor, n=1):
    h = env.machine.Pin.registry["P13"].handler
    for _ in range(n):
        env.levels["P13"] = 0
        h(0)
        env.clock.advance(50)
        env.levels["P13"] = 1
        h(0)
        env.clock.advance(50)


def run_for(env, sensor, ms, pulses_per_step=0, step=5000):
    end = env.clock.ms + ms
    while env.clock.ms < end:
        if pulses_per_step:
            pulse(env, sensor, pulses_per_step)
        now = sensor.clock.now_ms()
        sensor.fold(now)
        sensor.service(now)
        env.clock.advance(step)


def test_covered_deltas(env):
    buf = bytearray(242)
    n = meterpayload.encode_report_into(buf, 5, 60, [(0, [9, 8, 7]), (1, [4, 3])], 0)
    assert env.app.covered_deltas(buf, 2) == 1 and n == 7 + 6 + 4 + 6 + 2
    assert env.app.covered_deltas(buf, 0) == 0


def test_readings_reach_the_server_with_history(env):
    s = new_sensor(env)
    s.s0.start()
    env.levels["P13"] = 1
    run_for(env, s, 10 * 60000, pulses_per_step=2)
    got = server_readings(env.lora)
    assert s.seq >= 9
    assert set(range(1, s.seq + 1)) <= set(got)
    for seq in range(1, s.seq + 1):
        rec = s.backlog.read(seq)
        if rec is not None:
            assert got[seq] == s.backlog.index(rec, 0)
    status = [meterpayload.decode(3, d) for p, d in env.lora.received if p == 3]
    assert status and status[0]["trigger"] == "boot"
    # alarms policy, history 4: one report in five asks for an ACK
    confirmed = [c for p, _, c, _ in env.lora.sent if p == 1]
    assert 1 <= sum(confirmed) <= len(confirmed) // 5 + 1
    assert s.acked >= s.seq - 5


def test_outage_readings_drained_after_the_link_returns(env):
    s = new_sensor(env)
    s.s0.start()
    env.levels["P13"] = 1
    run_for(env, s, 5 * 60000, pulses_per_step=1)
    env.lora.reachable = False
    run_for(env, s, 120 * 60000, pulses_per_step=1)  # two hours without a gateway
    assert s.seq - s.acked > 100
    env.lora.reachable = True
    env.lora.accept_join = True
    run_for(env, s, 90 * 60000, pulses_per_step=1)
    got = server_readings(env.lora)
    # the newest reading may still wait its random spread (at most a tenth of the interval)
    assert s.seq - s.reported <= 1
    missing = [seq for seq in range(1, s.reported + 1) if seq not in got]
    assert missing == []
    assert s.seq - s.acked <= s._window()
    # the readings the server rebuilt match the meter's pulses (one per 5 s step, 12 a minute)
    assert s.reported < s.seq or got[s.seq] == s.indexes[0]
    seqs = [f[3] for f in env.lora.sent]
    sessions = env.pycom.nvs["oe_ses"]
    assert sessions >= 2  # the lost link led to a re-join
    assert all(b > a for a, b in zip(seqs, seqs[1:], strict=False) if b != 0)


def test_no_reading_lost_across_power_cuts(env, monkeypatch):
    s = new_sensor(env)
    s.s0.start()
    env.levels["P13"] = 1
    for _cut in range(6):
        run_for(env, s, 7 * 60000 + 1234, pulses_per_step=1)
        # power cut: RAM and RTC memory gone, NVS and flash kept
        env.machine.rtc_memory = b""
        env.machine.reset_cause_value = 0
        env.lora.joined = False  # the radio lost its RAM state too
        s = new_sensor(env)
        s.s0.start()
    run_for(env, s, 30 * 60000, pulses_per_step=1)
    got = server_readings(env.lora)
    assert [seq for seq in range(1, s.seq + 1) if seq not in got] == []
    used = [(f[3]) for f in env.lora.sent]
    # FCnt never reused within a session: sessions restart at 0 only after a join
    assert env.lora.joins >= 1
    per_session = []
    current = []
    for fcnt in used:
        if fcnt == 0 and current:
            per_session.append(current)
            current = []
        current.append(fcnt)
    per_session.append(current)
    for session in per_session:
        assert session == sorted(set(session))


def test_power_cut_loses_at_most_the_persist_bound(env):
    s = new_sensor(env)
    s.s0.start()
    env.levels["P13"] = 1
    run_for(env, s, 65000, pulses_per_step=3)
    pulse(env, s, 7)
    s.fold(s.clock.now_ms())
    truth = s.indexes[0]
    env.machine.rtc_memory = b""
    s2 = new_sensor(env)
    assert 0 <= truth - s2.indexes[0] < env.app.PERSIST_PULSES


def test_downlink_preset_and_status_answer(env):
    s = new_sensor(env)
    s.s0.start()
    env.levels["P13"] = 1
    run_for(env, s, 2 * 60000, pulses_per_step=1)
    env.lora.downlinks.append(
        (
            10,
            cmd(
                {"cmd": "preset_counter", "channel": 0, "index": 500000},
                {"cmd": "set_interval", "interval_s": 120},
            ),
        )
    )
    run_for(env, s, 5 * 60000, pulses_per_step=1)
    assert s.indexes[0] >= 500000 and env.pycom.nvs["oe_i0"] >= 500000
    answers = [meterpayload.decode(3, d) for p, d in env.lora.received if p == 3]
    assert answers[-1]["trigger"] == "changed" and answers[-1]["interval_s"] == 120
    assert s.settings.interval_s == 120
    # kept across a reboot (same configuration)
    env.machine.rtc_memory = b""
    assert new_sensor(env).settings.interval_s == 120


def test_alarm_sent_at_once_then_cleared(env):
    s = new_sensor(env, s0=[{"pin": "P13", "pull": "none", "flow_high": 20}])
    s.s0.start()
    env.levels["P13"] = 1
    run_for(env, s, 2 * 60000, pulses_per_step=1)
    run_for(env, s, 60000, pulses_per_step=3)  # 36 pulses in a minute > 20
    run_for(env, s, 3 * 60000, pulses_per_step=1)
    alarms = [meterpayload.decode(2, d) for p, d in env.lora.received if p == 2]
    assert [(a["alarm"], a["raised"]) for a in alarms] == [
        ("flow_high", True),
        ("flow_high", False),
    ]
    assert alarms[0]["value"] > 20


def test_deep_sleep_wake_state_and_pin_wake(env):
    s = new_sensor(env, deep_sleep=True)
    env.levels["P13"] = 1
    s.wdt = env.machine.WDT(timeout=60000)
    with pytest.raises(SleepCalled):
        s.run_deep_sleep()
    assert env.machine.wake_config == (["P13"], env.machine.WAKEUP_ALL_LOW)
    # woken by the pin: the pulse that woke it counts, then a second one while awake
    env.clock.advance(10000)
    env.machine.reset_cause_value = env.machine.DEEPSLEEP_RESET
    env.machine.wake = (env.machine.PIN_WAKE, [env.machine.Pin.registry["P13"]])
    s2 = new_sensor(env, deep_sleep=True)
    s2.wdt = env.machine.WDT(timeout=60000)
    s2.s0.start(skip=[0])
    s2.s0.counter.add(0, 1)
    pulse(env, s2, 1)
    s2.fold(s2.clock.now_ms())
    assert s2.indexes[0] == 2
    with pytest.raises(SleepCalled):
        s2.sleep()
    s3 = new_sensor(env, deep_sleep=True)
    assert s3.indexes[0] == 2 and s3.next_reading_ms == s2.next_reading_ms


# ----------------------------------------------------------------------------- real MicroPython
MPY_CHECK = r"""
import sys
sys.path.insert(0, "/lib")
sys.path.insert(0, "/img")
import meters, store, commands, meterpayload
c = meters.PulseCounter([30], [meters.ACTIVE_LOW])
for t, level in ((0, 0), (1, 1), (2, 0), (50, 1), (51, 0), (52, 1)):
    c.edge(0, level, t)
assert c.take(0) == 1 and c.bounces[0] == 2
b = store.Backlog("/data/b.bin", 1, True, 16)
b.open()
for seq in range(1, 40):
    b.append(seq, [seq * 1000], (1500, 1, [seq]))
assert b.count <= 16 and b.last == 39
assert b.index(b.read(39), 0) == 39000 and b.tic_of(b.read(39)) == (1500, 1, [39])
f = open("/data/b.bin", "ab"); f.write(b"\x01\x02"); f.close()
b2 = store.Backlog("/data/b.bin", 1, True, 16)
assert b2.open() == 39 and b2.repaired == 1
b2.forget_through(39, 2)
assert (b2.first, b2.last) == (38, 39)
store.write_json("/data/o.json", {"a": 1})
assert store.read_json("/data/o.json") == {"a": 1}
nvs = store.Nvs(type("P", (), {"d": {}, "nvs_get": lambda s, k: s.d[k], "nvs_set": lambda s, k, v: s.d.__setitem__(k, v)})())
assert nvs.get("k", 5) == 5
nvs.set("k", 0xFFFFFFFF)
assert nvs.get("k") == 0xFFFFFFFF
cfg = {"single_channel": False, "dr": 5, "report_interval_s": 900, "history": 4, "adr": True,
       "confirmed": "alarms", "s0": [{"flow_high": 0, "no_pulse_h": 0, "leak_h": 0}]}
s = commands.Settings(cfg)
data = bytes([0x1A, 0x01, 0x02, 0x58, 0x03, 0x00, 0x00, 0x01, 0xE2, 0x40, 0x07])
out = commands.handle(s, data, 1)
assert out.trigger == commands.TRIGGER_CHANGED and out.presets == [(0, 123456)] and s.interval_s == 600
buf = bytearray(242)
n = commands.status_frame(buf, out.trigger, (1, 0, 0), s, 0, 1234, 3650, 0)
assert meterpayload.decode(3, bytes(buf[:n]))["interval_s"] == 600
frame = {"HCHC": "004567890", "HCHP": "001234567", "PTEC": "HP..", "PAPP": "00800"}
assert meters.tic_block(frame) == (800, 2, [4567890, 1234567])
print("@@OK@@")
"""

MPY_RUNNER = r"""
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
let out = "";
const mp = await loadMicroPython({ stdout: (t) => { out += t + "\n"; }, stderr: (t) => { out += t + "\n"; } });
for (const dir of ["/lib", "/img", "/data"]) mp.FS.mkdir(dir);
for (const name of fs.readdirSync("lib")) if (name.endsWith(".py")) mp.FS.writeFile("/lib/" + name, fs.readFileSync("lib/" + name));
for (const name of fs.readdirSync("firmware/sensor")) if (name.endsWith(".py")) mp.FS.writeFile("/img/" + name, fs.readFileSync("firmware/sensor/" + name));
try { mp.runPython(process.env.MPY_CHECK); } catch (e) { out += String(e); }
process.stdout.write(out);
"""


@pytest.mark.skipif(__import__("shutil").which("node") is None, reason="node is required")
def test_image_pure_logic_under_micropython():
    import os
    import subprocess

    proc = subprocess.run(
        ["node", "--input-type=module", "-e", MPY_RUNNER],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, MPY_CHECK=MPY_CHECK),
    )
    assert "@@OK@@" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
