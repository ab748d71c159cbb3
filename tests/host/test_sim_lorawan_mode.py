"""Pycom's native LoRaWAN stack on a simulated board (tools/openenergy/sim/pycom/lorawan_mode.py).

Unmodified firmware using the Pycom API only (tests/sim_fixtures/lorawan_device and small inline
images) runs on a virtual board; a host-side forwarding gateway on the radio medium hands its
frames as Semtech UDP datagrams to the sans-IO network-server emulator and sends the PULL_RESP
downlinks at their tmst.
"""

import json
import math
from pathlib import Path

import airtime
import eu868
import lorawan
import pytest
import semtech
from openenergy.sim.lns import LnsTask, NetworkServer
from openenergy.sim.pycom import lorawan_mode
from openenergy.sim.world import World

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURE = ROOT / "tests" / "sim_fixtures" / "lorawan_device"
APP_EUI = "70b3d57ed0000001"
APP_KEY = "000102030405060708090a0b0c0d0e0f"
S = 1_000_000


class Gateway:
    """A packet forwarder on the medium: every default EU868 channel at SF7..SF12, datagrams
    straight into the NetworkServer, downlinks sent at their tmst (the virtual µs counter)."""

    EUI = bytes.fromhex("b827ebfffe000001")
    ADDR = ("127.0.0.1", 1700)

    def __init__(self, world, server, position=(0.0, 0.0)):
        self.scheduler = world.scheduler
        self.server = server
        self.forward_limit = None  # forward only that many frames, then go deaf
        self.heard = []
        self.sent = []
        for freq in eu868.DEFAULT_CHANNELS:
            for sf in range(7, 13):
                radio = world.medium.add_radio("gw-%d-%d" % (freq, sf), position)
                radio.listen(freq, sf, 125000, iq=False, on_frame=self._on_frame)
        self.tx_radio = world.medium.add_radio("gw-tx", position)
        self.token = 0
        self._pull()

    def _token(self):
        self.token = semtech.next_token(self.token)
        return self.token

    def _to_server(self, datagram):
        self._outputs(self.server.handle_datagram(datagram, self.ADDR, self.scheduler.now_us()))

    def _tick(self):
        self._outputs(self.server.tick(self.scheduler.now_us()))

    def _outputs(self, outputs):
        for data, _addr, send_at in outputs:
            self.scheduler.call_at(send_at, self._from_server, data)
        deadline = self.server.next_deadline()
        if deadline is not None:
            self.scheduler.call_at(deadline, self._tick)

    def _pull(self):
        self._to_server(semtech.encode_pull_data(self._token(), self.EUI))
        self.scheduler.call_later(10 * S, self._pull)

    def _on_frame(self, frame):
        if not frame.crc_ok or self.forward_limit == len(self.heard):
            return
        now = self.scheduler.now_us()
        self.heard.append((now, frame.freq_hz, frame.sf, bytes(frame.payload)))
        rxpk = semtech.format_rxpk(
            now & 0xFFFFFFFF,
            frame.freq_hz,
            eu868.datr(frame.sf, frame.bw_hz),
            "4/5",
            int(round(frame.rssi_dbm)),
            int(round(frame.snr_db * 10)),
            frame.payload,
        )
        self._to_server(semtech.encode_push_data(self._token(), self.EUI, [rxpk]))

    def _from_server(self, data):
        packet = semtech.decode(data)
        if packet.type != semtech.PULL_RESP:
            return
        tx = packet.txpk
        now = self.scheduler.now_us()
        self.scheduler.call_at(now + ((tx["tmst"] - now) & 0xFFFFFFFF), self._send, tx)
        self._to_server(semtech.encode_tx_ack(packet.token, self.EUI))

    def _send(self, tx):
        self.sent.append((self.scheduler.now_us(), tx["freq_hz"], tx["datr"]))
        self.tx_radio.transmit(
            tx["data"], tx["freq_hz"], tx["sf"], tx["bw_hz"], iq=tx["ipol"], power_dbm=14
        )


_worlds = []


@pytest.fixture(autouse=True)
def _close_worlds():
    yield
    while _worlds:
        _worlds.pop().close()


def setup(image, seed=1, config=None, gateway=True, fault=None):
    world = World(seed=seed, capture_trace=True)
    _worlds.append(world)
    server = NetworkServer()
    board = world.add_board("dev", image, position=(100.0, 0.0), config=config)
    if fault is not None:
        board.nvram_fcnt_loss = fault
    server.add_device(board.lora_mac, APP_EUI, APP_KEY, name="dev")
    gw = Gateway(world, server) if gateway else None
    return world, board, server, gw


def console(board):
    return [line for _, line in board.console]


def lorawan_records(world):
    return [r for r in world.trace.records if r["kind"].startswith("lorawan")]


def run_fixture(seed=1, fault=None, until_s=200):
    world, board, server, gw = setup(FIXTURE, seed=seed, fault=fault)
    server.enqueue_downlink(board.lora_mac, 5, b"\xca\xfe")
    world.run(until_us=until_s * S)
    return world, board, server, gw


# -- the fixture device end to end ---------------------------------------------------------------


def test_join_uplinks_ack_downlink_and_session_across_deep_sleep():
    world, board, server, gw = run_fixture()
    lines = console(board)
    assert lines[:4] == ["send before join 100", "joined 6", "up 0 5 1 47 868300000", "too big 90"]
    assert lines[4:8] == [
        "confirmed 2 1",
        "down 5 b'cafe'",
        "rx -122 -4.75 5",
        "events [1, 2, 2, 2]",
    ]
    assert lines[8:] == [
        "restore True",
        "up 3 5 1 47 868100000",
        "rx 0 0.0 0",
        "events [2]",
        "restore True",
        "up 4 5 1 47 868100000",
        "rx 0 0.0 0",
        "events [2]",
        "done",
    ]
    assert board.crashes == []
    report = server.report()
    stats = report["server"]
    assert stats["joins"] == 1 and stats["join_requests"] == 1
    assert stats["mic_failures"] == 0 and stats["fcnt_replays"] == 0 and stats["fcnt_gap"] == 0
    # 0: first uplink, 1: the empty frame the too-big send flushed, 2: confirmed, 3 and 4 after
    # deep sleeps with nvram_restore: one session, FCnt continues, no replay.
    assert stats["uplinks"] == 5
    device = report["devices"][board.lora_mac.hex()]
    assert device["joins"] == 1 and device["last_fcnt"] == 4
    assert [(p["fcnt"], p["fport"], p["confirmed"], p["data"]) for p in device["payloads"]] == [
        (0, 3, False, "0001"),
        (2, 3, True, "02"),
        (3, 3, False, "0101"),
        (4, 3, False, "0201"),
    ]
    assert device["queued"] == 0 and device["downlinks_sent"] == 3
    assert stats["tx_ack"] == {"NONE": 3}
    assert board.stats["lorawan_joins"] == 1 and board.stats["lorawan_nvram_restores"] == 2


def test_frames_on_air_are_valid_lorawan_with_the_session_keys():
    world, board, server, gw = run_fixture()
    ups = [lorawan.decode(p) for _, _, _, p in gw.heard[1:]]
    assert [f.fcnt for f in ups] == [0, 1, 2, 3, 4]
    assert [f.mtype for f in ups] == [2, 2, 4, 2, 2]
    assert ups[1].fport is None and ups[1].frm_payload == b""  # the flushed empty frame
    join = lorawan.decode(gw.heard[0][3])
    assert join.mtype == lorawan.MTYPE_JOIN_REQUEST and join.dev_eui == board.lora_mac
    assert {f.dev_addr for f in ups} == {int(server.devices[board.lora_mac.hex()]["dev_addr"], 16)}
    assert all(sf == 7 for _, _, sf, _ in gw.heard)


def test_same_seed_gives_the_same_run_and_another_seed_another_nonce():
    first = run_fixture(seed=3)
    second = run_fixture(seed=3)
    other = run_fixture(seed=4)
    assert lorawan_records(first[0]) == lorawan_records(second[0])
    assert console(first[1]) == console(second[1])
    assert first[3].heard == second[3].heard
    nonce = [lorawan.decode(gw.heard[0][3]).dev_nonce for gw in (first[3], other[3])]
    assert nonce[0] != nonce[1]


@pytest.mark.parametrize("duty_cycle", [False, True])
def test_data_frames_ignore_the_duty_cycle_unless_the_option_is_set(duty_cycle):
    world, board, server, gw = setup(FIXTURE)
    board.lorawan_duty_cycle = duty_cycle
    world.run(until_us=10 * S)
    join, first = [r for r in world.trace.records if r["kind"] == "radio_frame"][0:3:2]
    assert join["sender"] == first["sender"] == "dev"
    if duty_cycle:  # the 1 % sub-band of 868.1-868.5 MHz is busy for 99 times the JoinRequest
        assert first["start_us"] >= join["end_us"] + 99 * (join["end_us"] - join["start_us"])
    else:  # Pycom: sent as soon as the firmware saw has_joined() (its 1 s poll)
        assert first["start_us"] == 6_500_000


def test_nvram_fcnt_loss_fault_brings_back_an_older_counter():
    world, board, server, gw = run_fixture(fault=1)
    lines = console(board)
    # wake 1 restores the only save; wake 2 gets the session of wake 0 back: FCnt 3 again
    assert lines[8:12] == ["restore True", "up 3 5 1 47 868100000", "rx 0 0.0 0", "events [2]"]
    assert lines[12:14] == ["restore True", "fcnt regressed 3 3"]
    assert server.report()["server"]["fcnt_replays"] == 1
    restores = [r for r in world.trace.records if r["kind"] == "lorawan_nvram_restore"]
    assert [r["saves_lost"] for r in restores] == [0, 1]


def image_files(name):
    """An image as flashing puts it on the board: its files plus the lib modules it lists."""
    folder = ROOT / "firmware" / name
    manifest = json.loads((folder / "manifest.json").read_text())
    files = {f: (folder / f).read_bytes() for f in manifest["files"]}
    for module in manifest["lib"]:
        files["lib/%s.py" % module] = (ROOT / "lib" / (module + ".py")).read_bytes()
    return files


def test_through_the_nano_gateway_image_and_the_lns_over_loopback_udp():
    with World(seed=2) as world:
        world.add_access_point("lab", "lab-password")
        server = NetworkServer()
        lns = LnsTask(server, world.netio, port=0)
        host, port = lns.start()
        gw = world.add_board(
            "gw",
            image_files("nanogateway"),
            position=(0.0, 0.0),
            config={
                "image": "nanogateway",
                "led": False,
                "region": "EU868",
                "server_host": host,
                "server_port": port,
                "frequency_hz": 868100000,
                "sf": 7,
                "bw_khz": 125,
                "coding_rate": "4/5",
                "wifi_ssid": "lab",
                "wifi_password": "lab-password",
            },
        )
        dev = world.add_board(
            "dev", FIXTURE, position=(100.0, 0.0), config={"single_channel_hz": 868100000}
        )
        server.add_device(dev.lora_mac, APP_EUI, APP_KEY, name="dev")
        server.enqueue_downlink(dev.lora_mac, 5, b"\xca\xfe")
        world.run(until_us=250 * S)
        lines = console(dev)
        assert gw.crashes == [] and dev.crashes == []
        assert lines[0] == "send before join 100" and lines[1].startswith("joined ")
        assert "confirmed 2 1" in lines and "down 5 b'cafe'" in lines and lines[-1] == "done"
        assert [line for line in lines if line.startswith("up ")] == [
            "up 0 5 1 47 868100000",
            "up 3 5 1 47 868100000",
            "up 4 5 1 47 868100000",
        ]
        stats = server.report()["server"]
        assert stats["joins"] == 1 and stats["uplinks"] == 5
        assert stats["fcnt_replays"] == 0 and stats["mic_failures"] == 0


# -- join ---------------------------------------------------------------------------------------

JOIN_PROBE = """
import time
import ubinascii
from network import LoRa
lora = LoRa(mode=LoRa.LORAWAN, region=LoRa.EU868)
eui = ubinascii.unhexlify('%s')
key = ubinascii.unhexlify('%s')
for bad in ({'dr': 6}, {'dr': 5, 'timeout': 0}):
    try:
        lora.join(activation=LoRa.OTAA, auth=(eui, key), **bad)
        print('join ok', bad)
    except ValueError as e:
        print('ValueError', e)
try:
    lora.join(activation=LoRa.ABP, auth=(1, key, key))
except NotImplementedError as e:
    print('abp', e)
try:
    lora.join(activation=LoRa.OTAA, auth=(eui, key), timeout=12000)
except TimeoutError as e:
    print('timeout', e, time.ticks_ms(), lora.has_joined())
""" % (APP_EUI, APP_KEY)


def test_join_arguments_and_timeout_without_a_network():
    world, board, server, gw = setup({"main.py": JOIN_PROBE}, gateway=False)
    world.run(until_us=40 * S)
    lines = console(board)
    assert lines[0] == "ValueError invalid join data rate 6"
    assert lines[1] == "join ok {'dr': 5, 'timeout': 0}"
    assert lines[2].startswith("abp simulator: LoRa.join(activation=LoRa.ABP) not supported")
    # 12 s of 50 ms polls: the 241st poll finds the timeout spent (ticks count from boot)
    assert lines[3] == "timeout timed out 12050 False"
    requests = [r["t"] for r in world.trace.records if r["kind"] == "lorawan_join_request"]
    # join() restarts the 10 s retry timer at each call: 0.5 s (twice), then every 10 s
    assert requests == [500_000, 500_000 + 10 * S, 500_000 + 20 * S, 500_000 + 30 * S]


def test_join_without_timeout_blocks_until_the_accept_at_a_50_ms_poll():
    image = {
        "main.py": (
            "import time, ubinascii\n"
            "from network import LoRa\n"
            "lora = LoRa(mode=LoRa.LORAWAN, region=LoRa.EU868)\n"
            "lora.join(activation=LoRa.OTAA, auth=(ubinascii.unhexlify('%s'),"
            " ubinascii.unhexlify('%s')))\n"
            "print('joined', time.ticks_ms(), lora.has_joined())\n" % (APP_EUI, APP_KEY)
        )
    }
    world, board, server, gw = setup(image)
    world.run(until_us=20 * S)
    joined = [r["t"] for r in world.trace.records if r["kind"] == "lorawan_joined"]
    assert len(joined) == 1
    boot = 500_000  # join() is called at ticks 0, half a second of virtual time after power-on
    polls = math.ceil((joined[0] - boot) / 50_000)
    assert console(board) == ["joined %d True" % (polls * 50)]


def test_join_requests_respect_the_join_backoff_and_duty_cycle_at_sf12():
    image = {
        "main.py": (
            "import ubinascii\n"
            "from network import LoRa\n"
            "lora = LoRa(mode=LoRa.LORAWAN, region=LoRa.EU868)\n"
            "lora.join(activation=LoRa.OTAA, auth=(ubinascii.unhexlify('%s'),"
            " ubinascii.unhexlify('%s')), dr=0, timeout=0)\n" % (APP_EUI, APP_KEY)
        )
    }
    world, board, server, gw = setup(image, gateway=False)
    world.run(until_us=3600 * S)
    sent = [r for r in world.trace.records if r["kind"] == "radio_frame" and r["sender"] == "dev"]
    toa_ms = airtime.time_on_air_ms_ceil(12, 125000, 23)
    assert len(sent) * toa_ms <= 36_000  # first-hour join budget (LoRaWAN 1.0.2 section 7)
    assert len(sent) >= 20
    gaps = [b["start_us"] - a["start_us"] for a, b in zip(sent, sent[1:], strict=False)]
    assert min(gaps) >= 100 * toa_ms * 1000 - toa_ms * 1000  # 1 % sub-band duty cycle
    assert board.stats["lorawan_transmissions"] == len(sent)


# -- uplinks, downlinks, events ---------------------------------------------------------------

SOCKET_PROBE = """
import socket, time, ubinascii
from network import LoRa
got = []
def cb(arg):
    got.append((arg, lora.events()))
lora = LoRa(mode=LoRa.LORAWAN, region=LoRa.EU868, tx_retries=1)
lora.callback(LoRa.TX_PACKET_EVENT | LoRa.TX_FAILED_EVENT | LoRa.RX_PACKET_EVENT, cb, 'a')
for i in range(3, 16):
    lora.remove_channel(i)
for i in range(3):
    lora.add_channel(i, frequency=868100000, dr_min=0, dr_max=5)
lora.join(activation=LoRa.OTAA, auth=(ubinascii.unhexlify('%s'), ubinascii.unhexlify('%s')),
          timeout=30000)
s = socket.socket(socket.AF_LORA, socket.SOCK_RAW)
s.bind(7)
print('stats', lora.stats().tx_power, lora.stats().tx_counter)
s.send(b'hello')
st = lora.stats()
print('sent', st.tx_counter, st.tx_power, st.tx_frequency, st.sftx)
s.setblocking(False)
print('partial', s.recvfrom(4), s.recvfrom(64), s.recv(64))
s.settimeout(1.5)
try:
    s.recv(8)
except OSError as e:
    print('recv timeout', e.args[0])
time.sleep(1)
print('events', got)
lora.power_mode(LoRa.SLEEP)
try:
    s.send(b'x')
except OSError as e:
    print('asleep', e.args[0], lora.power_mode())
"""


def test_send_recv_partial_reads_and_single_channel_plan():
    world, board, server, gw = setup({"main.py": SOCKET_PROBE % (APP_EUI, APP_KEY)})
    server.enqueue_downlink(board.lora_mac, 9, bytes(range(10)))
    world.run(until_us=30 * S)
    assert console(board) == [
        "stats 14 0",
        "sent 0 0 868100000 5",
        "partial (b'\\x00\\x01\\x02\\x03', 9) (b'\\x04\\x05\\x06\\x07\\x08\\t', 9) b''",
        "recv timeout 11",
        "events [('a', 1), ('a', 2)]",
        "asleep 100 2",
    ]
    assert {freq for _, freq, _, _ in gw.heard} == {868100000}
    assert [p["fport"] for p in server.report()["devices"][board.lora_mac.hex()]["payloads"]] == [7]


UNACKED_PROBE = """
import socket, ubinascii
from network import LoRa
got = []
lora = LoRa(mode=LoRa.LORAWAN, region=LoRa.EU868, tx_retries=2)
lora.callback(LoRa.TX_PACKET_EVENT | LoRa.TX_FAILED_EVENT, lambda l: got.append(l.events()))
lora.join(activation=LoRa.OTAA, auth=(ubinascii.unhexlify('%s'), ubinascii.unhexlify('%s')),
          timeout=30000)
s = socket.socket(socket.AF_LORA, socket.SOCK_RAW)
s.setsockopt(socket.SOL_LORA, socket.SO_CONFIRMED, True)
print('cycle')
try:
    s.send(b'c1')
except OSError as e:
    print('confirmed failed', e.args[0], lora.stats().tx_counter, lora.stats().tx_trials)
s.setblocking(False)
print('queued', s.send(b'c2'), s.send(b'c3'))
print('events', got)
"""


def test_unacknowledged_confirmed_uplink_fails_after_the_retries():
    world, board, server, gw = setup({"main.py": UNACKED_PROBE % (APP_EUI, APP_KEY)})
    gw.forward_limit = 1  # the JoinRequest only
    world.run(until_us=90 * S)
    lines = console(board)
    assert lines[0] == "cycle"
    assert lines[1] == "confirmed failed 11 0 0"  # stats untouched by a failed McpsConfirm
    assert lines[2] == "queued 2 2"
    assert lines[3] == "events [4]"
    ups = [r for r in world.trace.records if r["kind"] == "lorawan_uplink"]
    assert [(r["fcnt"], r["attempt"], r["dr"]) for r in ups[:3]] == [
        (0, 1, 5),
        (0, 2, 5),
        (0, 3, 4),
    ]
    assert [(r["fcnt"], r["attempt"]) for r in ups[3:]] == [
        (1, 1),
        (1, 2),
        (1, 3),
        (2, 1),
        (2, 2),
        (2, 3),
    ]
    confirms = [r["ok"] for r in world.trace.records if r["kind"] == "lorawan_confirm"]
    assert confirms == [False, False, False]


# -- NVRAM, init --------------------------------------------------------------------------------

NVRAM_PROBE = """
import machine, socket, ubinascii
from network import LoRa
lora = LoRa(mode=LoRa.LORAWAN, region=LoRa.EU868)
if machine.reset_cause() == machine.DEEPSLEEP_RESET:
    lora.nvram_restore()
    first = lora.has_joined()
    lora.nvram_save()
    lora.nvram_restore()
    second = lora.has_joined()
    lora.nvram_restore()
    print('restores', first, second, lora.has_joined())
    lora.nvram_erase()
    lora.nvram_restore()
    print('erased', lora.has_joined())
else:
    lora.nvram_restore()
    print('nothing saved', lora.has_joined())
    lora.join(activation=LoRa.OTAA, auth=(ubinascii.unhexlify('%s'), ubinascii.unhexlify('%s')),
              timeout=30000)
    lora = LoRa(mode=LoRa.LORAWAN, region=LoRa.EU868)
    print('reinit unsaved', lora.has_joined())
    lora.join(activation=LoRa.OTAA, auth=(ubinascii.unhexlify('%s'), ubinascii.unhexlify('%s')),
              timeout=30000)
    lora.nvram_save()
    lora = LoRa(mode=LoRa.LORAWAN, region=LoRa.EU868, adr=True)
    print('reinit saved', lora.has_joined())
    lora = LoRa(mode=LoRa.LORAWAN, region=LoRa.EU868, adr=True)
    print('reinit again', lora.has_joined())
    lora.nvram_save()
    machine.deepsleep(1000)
"""


def test_nvram_restore_once_per_save_erase_and_reinit():
    world, board, server, gw = setup({"main.py": NVRAM_PROBE % ((APP_EUI, APP_KEY) * 2)})
    world.run(until_us=60 * S)
    assert console(board) == [
        "nothing saved False",
        "reinit unsaved False",  # INIT drops the session: nothing in NVS to reload
        "reinit saved True",  # INIT while joined reloads the saved session...
        "reinit again True",  # ...whatever the saved joined flag says
        "restores True True False",  # a restore clears the saved flag; a save sets it again
        "erased False",
    ]
    assert server.report()["server"]["joins"] == 2
    assert board.nvs == {}  # LoRa NVRAM lives apart from pycom.nvs_* keys


# -- pieces -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sf, offset, timeout",
    [(7, -9192, 24576), (9, -3048, 36864), (12, 31768, 196608)],
)
def test_rx_windows_as_loramac_node_computes_them(sf, offset, timeout):
    assert lorawan_mode.rx_window_us(sf, 125000) == (offset, timeout)
