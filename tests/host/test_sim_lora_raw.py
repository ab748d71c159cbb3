"""Pycom network.LoRa in raw mode and the AF_LORA socket on the simulated medium (stub boards)."""

import math
import random

import pytest
from openenergy.sim import radio as R
from openenergy.sim.clock import Scheduler
from openenergy.sim.pycom import lora as L
from openenergy.sim.trace import Trace

F = 868100000
TICKS_OFFSET = 123_456_789  # ticks_cpu() is not the virtual time: boards boot at other instants


class StubWorld:
    def __init__(self, scheduler, seed=1):
        self.rng = random.Random(seed)
        self.trace = Trace(capture=True, clock=scheduler)
        self.medium = R.Medium(scheduler, random.Random(seed), trace=self.trace)


class StubBoard:
    """The part of the core helper's Board that lora.py uses."""

    def __init__(self, world, scheduler, name, position):
        self.world = world
        self.scheduler = scheduler
        self.name = name
        self.position = position
        self.lora_mac = bytes([0x70, 0xB3, 0xD5, 0x49, 0x00, 0x00, 0x00, len(name)])
        self.alive = True
        self.on_power_off = []
        self.on_light_sleep = []
        self.irqs = []

    def ticks_cpu(self):
        return (self.scheduler.now_us() + TICKS_OFFSET) & 0xFFFFFFFF

    def local_us(self):
        return self.scheduler.now_us()

    def post_irq(self, handler, arg):
        self.irqs.append((self.scheduler.now_us(), handler, arg))
        self.scheduler.call_later(0, handler, arg)

    def check_alive(self):
        pass

    def power_off(self):
        self.alive = False
        for fn in self.on_power_off:
            fn()

    def light_sleep(self):
        for fn in self.on_light_sleep:
            fn()


def setup(n=2, spacing=30):
    s = Scheduler()
    world = StubWorld(s)
    boards = [StubBoard(world, s, f"b{i}", (i * spacing, 0)) for i in range(n)]
    return s, world, boards


def lora_on(board, **kw):
    args = {"mode": 0, "region": L.EU868, "frequency": F, "sf": 7}
    args.update(kw)
    return L.lora_class_for(board)(**args)


def sock(board):
    return L.lora_socket(board, L.AF_LORA, L.SOCK_RAW)


def toa_us(length, sf=7):
    return R.airtime.time_on_air_us(sf, 125000, length)


def test_send_and_recv_between_two_boards():
    s, world, (a, b) = setup()
    log = []

    def sender():
        lora_on(a)
        so = sock(a)
        so.setblocking(True)
        n = so.send(b"hello")
        log.append(("sent", n, s.now_us()))

    def receiver():
        lora_on(b)
        so = sock(b)
        data = so.recv(64)
        log.append(("got", data, s.now_us()))

    s.spawn(receiver)
    s.spawn(sender)
    s.run()
    end = L.LBT_WINDOW_US + toa_us(5)  # 1 ms listen-before-talk, then the frame
    assert log == [("got", b"hello", end), ("sent", 5, end)]


def test_recv_partial_reads_keep_the_rest():
    s, world, (a, b) = setup()
    got = []

    def sender():
        so = sock(a)
        so.send(b"0123456789")
        so.send(b"AB")

    def receiver():
        so = sock(b)
        for size in (4, 4, 4, 4):
            got.append(so.recv(size))
        so.setblocking(False)
        got.append(so.recv(4))

    lora_on(a)
    lora_on(b)
    s.spawn(receiver)
    s.spawn(sender)
    s.run()
    assert got == [b"0123", b"4567", b"89", b"AB", b""]


def test_rx_queue_holds_seven_frames_and_counts_drops():
    s, world, (a, b) = setup()
    _lora_a, lora_b = lora_on(a), lora_on(b)
    got = []

    def sender():
        so = sock(a)
        for i in range(9):
            so.send(bytes([i]) * 3)

    def reader():
        so = sock(b)
        so.setblocking(False)
        while True:
            data = so.recv(16)
            if not data:
                break
            got.append(data[0])

    s.spawn(sender)
    s.run()
    s.spawn(reader)
    s.run()
    assert got == list(range(7))
    assert [r["dropped"] for r in world.trace.of_kind("lora_rx_dropped")] == [1, 2]
    assert lora_b.events() == L.RX_PACKET_EVENT


def test_events_are_cleared_by_reading():
    s, world, (a, b) = setup()
    lora_a, lora_b = lora_on(a), lora_on(b)
    seen = []

    def sender():
        sock(a).send(b"x")
        seen.append(lora_a.events())
        seen.append(lora_a.events())

    s.spawn(sender)
    s.run()
    assert seen == [L.TX_PACKET_EVENT, 0]
    assert lora_b.events() == L.RX_PACKET_EVENT and lora_b.events() == 0


def test_callback_goes_through_the_board_irq_queue():
    s, world, (a, b) = setup()
    lora_a, lora_b = lora_on(a), lora_on(b)
    calls = []
    lora_b.callback(trigger=L.LoRa.RX_PACKET_EVENT | L.LoRa.TX_PACKET_EVENT, handler=calls.append)
    lora_a.callback(L.LoRa.TX_PACKET_EVENT, lambda arg: calls.append(arg), arg="tx-done")
    s.spawn(lambda: sock(a).send(b"ping"))
    s.run()
    end = L.LBT_WINDOW_US + toa_us(4)
    assert calls == [lora_b, "tx-done"] or calls == ["tx-done", lora_b]
    assert [(t, arg) for t, _, arg in b.irqs] == [(end, lora_b)]
    assert [(t, arg) for t, _, arg in a.irqs] == [(end, "tx-done")]
    lora_b.callback(L.LoRa.RX_PACKET_EVENT)  # no handler: disabled
    s.spawn(lambda: sock(a).send(b"ping"))
    s.run()
    assert len(b.irqs) == 1


def test_stats_after_rx_and_tx():
    s, world, (a, b) = setup(spacing=40)
    lora_a, lora_b = lora_on(a, tx_power=10), lora_on(b)
    assert tuple(lora_b.stats()) == (0, 0, 0.0, 0, 0, 0, 14, 0, 0, 0)
    s.spawn(lambda: sock(a).send(b"0123456789"))
    s.run()
    end = L.LBT_WINDOW_US + toa_us(10)
    st = lora_b.stats()
    # 10 dBm - 127.41 dB at 40 m = -117.41 dBm; SNR = -117.41 + 117.03 = -0.379 -> -0.5 dB
    assert st.rssi == -117 and isinstance(st.rssi, int)
    assert isinstance(st.snr, float) and st.snr == -0.5
    assert st.rx_timestamp == (end + TICKS_OFFSET) & 0xFFFFFFFF
    assert st.sfrx == 7
    tx = lora_a.stats()
    assert tx.tx_counter == 1 and tx.tx_frequency == F and tx.sftx == 7 and tx.tx_power == 10
    assert tx.tx_time_on_air == math.ceil(toa_us(10) / 1000) == lora_a.airtime(10)
    assert tx.tx_trials == 0


def test_snr_is_quantised_to_quarter_db():
    s, world, (a, b) = setup(spacing=100)
    lora_on(a)
    lora_b = lora_on(b)
    s.spawn(lambda: sock(a).send(b"x"))
    s.run()
    snr = lora_b.stats().snr
    assert snr * 4 == int(snr * 4)


def test_recv_nonblocking_empty_and_timeout():
    s, world, (a, b) = setup()
    lora_on(b)
    log = []

    def reader():
        so = sock(b)
        so.setblocking(False)
        log.append(so.recv(10))
        so.settimeout(0.25)
        try:
            so.recv(10)
        except OSError as exc:
            log.append((exc.args[0], s.now_us()))

    s.spawn(reader)
    s.run()
    assert log == [b"", (L.EAGAIN, 250_000)]


def test_listen_before_talk_waits_for_a_free_channel():
    s, world, (a, b) = setup(2, spacing=10)
    lora_on(a)
    lora_on(b)
    # -85 dBm is strong under LoRaSim's path loss: 14 dBm reads -80.1 dBm at 1 m, -86.3 at 2 m
    interferer = world.medium.add_radio("jammer", (10, 0))
    long_frame = interferer.transmit(b"\x00" * 50, F, 12, 125000, power_dbm=14)
    sent_at = []

    def sender():
        so = sock(b)
        so.send(b"after")
        sent_at.append(s.now_us())

    s.spawn(sender)
    s.run()
    level = 14 - world.medium.path_loss_db(interferer, world.medium.radios_named("b1")[0])
    assert level == pytest.approx(-80.1, abs=0.05) and level > L.LBT_THRESHOLD_DBM
    tx = [r for r in world.trace.of_kind("radio_frame") if r["sender"] == "b1"][0]
    # retried every 2 ms until the SF12 frame ended, then 1 ms of clear channel
    assert (
        long_frame.end_us
        < tx["start_us"]
        <= long_frame.end_us + 2 * L.TASK_PERIOD_US + L.LBT_WINDOW_US
    )
    assert sent_at == [tx["end_us"]]


def test_radio_listens_again_after_tx_and_tx_only_sleeps():
    s, world, (a, b) = setup()
    _lora_a, lora_b = lora_on(a), lora_on(b)
    got = []

    def a_task():
        so = sock(a)
        so.send(b"one")  # a returns to RX with its configured parameters
        got.append(so.recv(10))

    def b_task():
        so = sock(b)
        got.append(so.recv(10))
        so.send(b"two")

    s.spawn(a_task)
    s.spawn(b_task)
    s.run()
    assert got == [b"one", b"two"]
    lora_b.init(mode=L.LORA, region=L.EU868, frequency=F, power_mode=L.TX_ONLY)
    assert world.medium.radios_named("b1")[0].state == R.SLEEP
    s.spawn(lambda: sock(b).send(b"three"))
    s.run()
    assert world.medium.radios_named("b1")[0].state == R.SLEEP


def test_iq_polarity_between_gateway_and_node():
    s, world, (gw, node) = setup()
    lora_on(gw, rx_iq=False, tx_iq=True)  # LoRaWAN gateway: uplinks normal, downlinks inverted
    lora_on(node, rx_iq=True, tx_iq=False)
    got = []

    def gw_task():
        so = sock(gw)
        got.append(("gw", so.recv(10)))
        so.send(b"down")

    def node_task():
        so = sock(node)
        so.send(b"up")
        got.append(("node", so.recv(10)))

    s.spawn(gw_task)
    s.spawn(node_task)
    s.run()
    assert got == [("gw", b"up"), ("node", b"down")]
    # two nodes do not hear each other
    outcomes = [rx["outcome"] for r in world.trace.of_kind("radio_frame") for rx in r["receivers"]]
    assert outcomes == ["received", "received"]


def test_lora_object_is_a_singleton_and_validates_like_the_firmware():
    s, world, (a,) = setup(1)
    LoRa = L.lora_class_for(a)
    lora = LoRa(mode=LoRa.LORA, region=LoRa.EU868)
    assert LoRa() is lora and lora.frequency() == 868000000 and lora.tx_power() == 14
    lora.sf(9)
    assert lora.sf() == 9 and lora.bandwidth() == LoRa.BW_125KHZ
    assert lora.coding_rate() == LoRa.CODING_4_5 and lora.preamble() == 8
    LoRa(sf=12, frequency=869525000)
    assert lora.sf() == 12 and lora.frequency() == 869525000 and lora.mac() == a.lora_mac
    assert lora.has_joined() is False and lora.power_mode() == LoRa.ALWAYS_ON
    for kwargs, message in (
        ({"frequency": 900000000}, "frequency 900000000 out of range"),
        ({"tx_power": 21}, "Tx power 21 out of range"),
        ({"sf": 13}, "spreading factor 13 out of range"),
        ({"bandwidth": 3}, "bandwidth 3 not supported"),
        ({"coding_rate": 5}, "coding rate 5 out of range"),
        ({"power_mode": 3}, "invalid power mode 3"),
        ({"device_class": 1}, "invalid device_class 1"),
        ({"mode": 2}, "invalid mode 2"),
    ):
        with pytest.raises(ValueError, match=message):
            lora.init(**kwargs)
    with pytest.raises(OSError):
        LoRa(1)
    lorawan = LoRa(mode=LoRa.LORAWAN, region=LoRa.EU868)  # the soft-MAC stack (lorawan_mode.py)
    assert lorawan is lora and lora.has_joined() is False
    LoRa(mode=LoRa.LORA, region=LoRa.EU868)
    with pytest.raises(OSError):
        lora.join(activation=LoRa.OTAA, auth=(b"\x00" * 8, b"\x00" * 16))


def test_socket_errors():
    s, world, (a,) = setup(1)
    with pytest.raises(OSError) as exc:
        sock(a)  # LoRa not initialised yet
    assert exc.value.args[0] == L.ENETDOWN
    lora = lora_on(a)
    so = sock(a)
    for call, code in (
        (lambda: so.send(b"x" * 256), L.EMSGSIZE),
        (lambda: so.setsockopt(0xFFFF, L.SO_DR, 5), L.EOPNOTSUPP),
        (lambda: so.setsockopt(L.SOL_LORA, L.SO_DR, 7), L.EOPNOTSUPP),
        (lambda: so.sendto(b"x", 2), L.EOPNOTSUPP),
        (lambda: so.bind(225), L.EOPNOTSUPP),
    ):
        with pytest.raises(OSError) as exc:
            call()
        assert exc.value.args[0] == code
    assert so._sim_poll(0x0001 | 0x0004) == 0x0004  # writable, nothing to read
    so.setsockopt(L.SOL_LORA, L.SO_DR, 3)
    so.setsockopt(L.SOL_LORA, L.SO_CONFIRMED, False)
    so.bind(3)
    assert so.send(b"") == 0
    lora.power_mode(L.SLEEP)
    with pytest.raises(OSError) as exc:
        so.send(b"x")
    assert exc.value.args[0] == L.ENETDOWN
    so.close()
    with pytest.raises(OSError) as exc:
        so.recv(1)
    assert exc.value.args[0] == L.EBADF


def test_nonblocking_send_queues_seven_commands():
    s, world, (a,) = setup(1)
    lora = lora_on(a)
    results = []

    def task():
        so = sock(a)
        so.setblocking(False)
        for i in range(9):
            try:
                results.append(so.send(b"frame%d" % i))
            except OSError as exc:
                results.append(("err", exc.args[0]))
        results.append(s.now_us())

    s.spawn(task)
    s.run()
    # the first goes to the radio at once, seven wait in the queue, the ninth is refused
    assert results == [6] * 8 + [("err", L.EAGAIN), 0]
    assert len(world.trace.of_kind("radio_frame")) == 8
    assert lora.stats().tx_counter == 8


def test_power_off_stops_the_radio_and_forgets_the_state():
    s, world, (a, b) = setup()
    lora_on(a)
    lora_b = lora_on(b)
    s.call_at(500, b.power_off)
    s.spawn(lambda: sock(a).send(b"lost"))
    s.run()
    assert world.medium.radios_named("b1")[0].state == R.OFF
    outcomes = [rx["outcome"] for r in world.trace.of_kind("radio_frame") for rx in r["receivers"]]
    assert outcomes == []  # b was off before a's frame started (after LBT)
    lora_b2 = L.lora_class_for(b)()  # next boot: a fresh LoRa with default settings
    assert lora_b2 is not lora_b and lora_b2.stats().rx_timestamp == 0
    assert world.medium.radios_named("b1")[0].state == R.RX


def test_ischannel_free_senses_and_leaves_the_radio_asleep():
    s, world, (a, b) = setup()
    lora_on(a)
    lora_b = lora_on(b)
    results = []

    def task():
        # a's frame reads -110.8 dBm at 30 m; the noise floor is -117.0 dBm
        results.append(lora_b.ischannel_free(-115, 5))
        s.sleep_us(100_000)
        results.append(lora_b.ischannel_free(-115, 5))
        results.append(world.medium.radios_named("b1")[0].state)

    s.call_at(0, lambda: world.medium.radios_named("b0")[0].transmit(b"\x00" * 30, F, 7, 125000))
    s.spawn(task)
    s.run()
    assert results == [False, True, R.SLEEP]


def test_light_sleep_stops_reception_until_the_next_send():
    s, world, (a, b) = setup()
    lora_on(a)
    lora_b = lora_on(b)
    b.light_sleep()
    s.spawn(lambda: sock(a).send(b"missed"))
    s.run()
    assert lora_b.events() == 0
    s.spawn(lambda: sock(b).send(b"wake"))  # a TX puts the radio back in RX afterwards
    s.run()
    s.spawn(lambda: sock(a).send(b"heard"))
    s.run()
    so = sock(b)
    so.setblocking(False)
    assert so.recv(10) == b"heard"


# -- with the core helper's Board: firmware files importing network.LoRa and socket -----------
class MiniWorld:
    """What Board needs of a world (the real World adds servers, faults, reports)."""

    def __init__(self):
        self.scheduler = Scheduler()
        self.seed = 1
        self.rng = random.Random(1)
        self.trace = Trace(capture=True, clock=self.scheduler)
        self.echo_console = False
        self.boot_time_us = 1000


GATEWAY_MAIN = """
from network import LoRa
import socket, time
lora = LoRa(mode=LoRa.LORA, region=LoRa.EU868, frequency=868100000, sf=7)
got = []
def on_rx(obj):
    got.append((obj is lora, obj.events()))
lora.callback(trigger=LoRa.RX_PACKET_EVENT, handler=on_rx)
s = socket.socket(socket.AF_LORA, socket.SOCK_RAW)
s.setblocking(True)
data = s.recv(64)
st = lora.stats()
print('got', data, st.rssi, st.snr, st.rx_timestamp)
s.settimeout(2)
try:
    s.recv(10)
except OSError as e:
    print('timeout', e.args[0] == 11)
print('callbacks', got)
"""

NODE_MAIN = """
from network import LoRa
import socket, time
lora = LoRa(mode=LoRa.LORA, region=LoRa.EU868, frequency=868100000, sf=7)
s = socket.socket(socket.AF_LORA, socket.SOCK_RAW)
time.sleep(1)
s.send(b'hello')
print('sent', lora.stats().tx_counter, lora.stats().tx_time_on_air)
time.sleep(5)
s.send(b'x' * 200)
"""


def test_firmware_on_real_boards(tmp_path):
    from openenergy.sim.board import Board

    world = MiniWorld()
    gw = Board(world, "gw", str(tmp_path / "gw"), position=(0, 0))
    node = Board(world, "node", str(tmp_path / "node"), position=(30, 0))
    gw.install_files({"main.py": GATEWAY_MAIN})
    node.install_files({"main.py": NODE_MAIN})
    gw.power_on()
    node.power_on()
    world.scheduler.call_at(6_100_000, node.power_cut)  # during the 200-byte frame
    world.scheduler.run(until_us=10_000_000)
    frame_end = 1000 + 1_000_000 + L.LBT_WINDOW_US + toa_us(5)  # boot, sleep(1), LBT, frame
    # 14 dBm at 30 m: -110.8 dBm, SNR 6.2 -> 6.25; rx_timestamp: the gateway's µs since boot
    assert gw.console_text().splitlines() == [
        "got b'hello' -111 6.25 %d" % (frame_end - 1000),
        "timeout True",
        "callbacks [(True, 1)]",
    ]
    assert node.console_text().splitlines() == ["sent 1 %d" % math.ceil(toa_us(5) / 1000)]
    frames = world.trace.of_kind("radio_frame")
    assert [f["end_us"] for f in frames] == [frame_end, 6_100_000]
    assert frames[1]["truncated"] and frames[1]["receivers"][0]["outcome"] == "truncated"
    assert world.medium.radios_named("node")[0].state == R.OFF
