"""The nano gateway image, unmodified, on a simulated LoPy: uplinks from a raw-LoRa fixture device
over the simulated radio, Semtech UDP v2 to the network-server emulator (or to a test-controlled
fake server), downlinks back over the air at their tmst.

Checks: PUSH_DATA that the strict decoder accepts, OTAA joins answered in RX1 (and in RX2 after a
TX_ACK error), the transmit instant against tmst (error measured on the radio medium's trace),
every TX_ACK error name provoked by a crafted PULL_RESP, PULL_RESP from another address ignored,
garbage floods, and forwarding back within 30 s of a 10-minute WiFi outage and of a 1-hour server
outage.
"""

import json
import statistics

import airtime
import otaa
import semtech
from openenergy import images
from openenergy.sim.lns import LnsTask, NetworkServer
from openenergy.sim.world import World

S = 1_000_000
MIN = 60 * S
FREQ = 868_100_000
RX2 = 869_525_000
APP_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
JOIN_EUI = bytes.fromhex("70B3D57ED0000001")
DEV_EUI = bytes.fromhex("70B3D57ED0000A01")
MASK = 0xFFFFFFFF

# A raw-LoRa fixture device: sends the frames of /flash/plan.json at their times (uplink IQ),
# then listens in RX1 (same channel, inverted IQ) and RX2 (869.525 MHz SF12) and prints what it
# hears. It stands for a LoRaWAN device whose frames the test builds with lib/otaa.
DEVICE_MAIN = """
import time, socket, ujson, ubinascii
from network import LoRa
plan = ujson.loads(open('/flash/plan.json').read())
lora = LoRa(mode=LoRa.LORA, region=LoRa.EU868)
s = socket.socket(socket.AF_LORA, socket.SOCK_RAW)

def tune(freq, sf, rx_iq):
    lora.init(mode=LoRa.LORA, region=LoRa.EU868, frequency=freq, sf=sf, tx_iq=False,
              rx_iq=rx_iq, tx_power=14)

def listen(until):
    s.setblocking(False)
    while time.ticks_diff(until, time.ticks_ms()) > 0:
        data = s.recv(256)
        if data:
            print('down', ubinascii.hexlify(data).decode(), lora.frequency(), lora.sf())
        time.sleep_ms(2)

t0 = time.ticks_ms()
for item in plan['frames']:
    at = time.ticks_add(t0, item[0])
    while time.ticks_diff(at, time.ticks_ms()) > 0:
        time.sleep_ms(min(500, max(1, time.ticks_diff(at, time.ticks_ms()))))
    tune(plan['freq'], plan['sf'], False)
    s.setblocking(True)
    s.send(ubinascii.unhexlify(item[1]))
    done = time.ticks_ms()
    print('sent', item[1][:8])
    if plan['rx1_ms']:
        tune(plan['freq'], plan['sf'], True)
        listen(time.ticks_add(done, plan['rx1_ms'] + plan['rx1_window_ms']))
        tune(869525000, 12, True)
        listen(time.ticks_add(done, plan['rx1_ms'] + 1000 + 2500))
print('done')
"""


def image_files(name):
    return {board: host.read_bytes() for board, host in images.resolve(name).board_files().items()}


def gateway_config(host, port, **changes):
    config = {
        "image": "nanogateway",
        "server_host": host,
        "server_port": port,
        "wifi_ssid": "lab",
        "wifi_password": "lab-secret-1",
        "frequency_hz": FREQ,
        "sf": 7,
        "led": False,
        "log_level": "info",
    }
    config.update(changes)
    return config


def join_requests(count, first_nonce=1):
    return [
        otaa.build_join_request(JOIN_EUI, DEV_EUI, first_nonce + i, APP_KEY) for i in range(count)
    ]


class RecordingServer(NetworkServer):
    """The LNS emulator, noting when each PUSH_DATA with frames arrives."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rx_times = []

    def handle_datagram(self, data, addr, now_us):
        try:
            packet = semtech.decode(data)
        except Exception:
            packet = None
        if packet is not None and packet.type == semtech.PUSH_DATA and packet.rxpk:
            self.rx_times.append(now_us)
        return super().handle_datagram(data, addr, now_us)


class Rig:
    """A world with an access point, the gateway image and (optionally) the LNS emulator."""

    def __init__(self, seed=1, server="lns", sf=7, **gw):
        self.world = World(seed=seed, capture_trace=True)
        self.world.add_access_point("lab", "lab-secret-1")
        self.sf = sf
        self.lns = None
        if server == "lns":
            self.server = RecordingServer()
            self.server.add_device(DEV_EUI, JOIN_EUI, APP_KEY, name="dev")
            self.lns = LnsTask(self.server, self.world.netio, port=0)
            host, port = self.lns.start()
        else:
            self.server = server
            host, port = server.start(self.world)
        self.gw = self.world.add_board(
            "gw",
            image_files("nanogateway"),
            position=(0, 0),
            config=gateway_config(host, port, sf=sf, **gw),
        )

    def add_device(self, frames, rx1_ms=5000, name="dev", position=(10, 0), rx1_window_ms=700):
        """frames: [(at_ms, PHYPayload bytes)] from the device's boot; RX1 rx1_ms after each,
        listened to for rx1_window_ms, then RX2 (869.525 MHz SF12) until 3.5 s after RX1."""
        plan = {
            "freq": FREQ,
            "sf": self.sf,
            "rx1_ms": rx1_ms,
            "rx1_window_ms": rx1_window_ms,
            "frames": [[at, phy.hex()] for at, phy in frames],
        }
        image = {"main.py": DEVICE_MAIN, "plan.json": json.dumps(plan)}
        return self.world.add_board(name, image, position=position)

    def run(self, until_us):
        self.world.run(until_us=until_us)

    def frames(self, sender):
        return [r for r in self.world.trace.of_kind("radio_frame") if r["sender"] == sender]

    def close(self):
        self.world.close()


def lines(board, prefix):
    return [line for _, line in board.console if line.startswith(prefix)]


def downlinks_heard(board):
    out = []
    for line in lines(board, "down "):
        _, data, freq, sf = line.split()
        out.append((bytes.fromhex(data), int(freq), int(sf)))
    return out


def tx_errors(rig, delay_us):
    """Start of each gateway frame minus (RX-done of the uplink before it + delay_us)."""
    uplinks = [r for r in rig.world.trace.of_kind("radio_frame") if r["sender"] != "gw"]
    errors = []
    for frame in rig.frames("gw"):
        before = [u for u in uplinks if u["end_us"] <= frame["start_us"]]
        errors.append(frame["start_us"] - (before[-1]["end_us"] + delay_us))
    return errors


# --- joins through the LNS emulator -----------------------------------------------------------


def test_100_joins_in_a_row_answered_in_rx1_at_tmst():
    rig = Rig(seed=3)
    try:
        requests = join_requests(100)
        dev = rig.add_device([(20_000 + 20_000 * i, phy) for i, phy in enumerate(requests)])
        rig.run(2_040 * S)
        assert rig.gw.crashes == [] and dev.crashes == []
        heard = downlinks_heard(dev)
        assert len(heard) == 100
        for phy, freq, sf in heard:
            accept = otaa.decrypt_join_accept(phy, APP_KEY)
            assert accept.mic_valid and freq == FREQ and sf == 7
        stats = rig.server.report()["server"]
        assert stats["joins"] == 100 and stats["rejected_datagrams"] == 0
        assert stats["tx_ack"] == {"NONE": 100} and stats["tx_ack_timeouts"] == 0
        frames = rig.frames("gw")
        assert len(frames) == 100
        assert all(f["iq"] is True and f["freq_hz"] == FREQ and f["sf"] == 7 for f in frames)
        errors = tx_errors(rig, 5 * S)
        # the gateway's send call is a few ticks_cpu reads (20 µs each here) after its instant
        assert 0 <= min(errors) and max(errors) <= 200, errors
        assert statistics.mean(errors) < 100
        # the radio listens again after every downlink: all 100 requests arrived
        assert stats["join_requests"] == 100
    finally:
        rig.close()


def test_joins_at_sf12():
    rig = Rig(seed=4, sf=12)
    try:
        # RX1 at SF12 in the 1 % sub-band closes it for ~148 s after each 1.5 s accept
        frames = [(20_000 + 180_000 * i, phy) for i, phy in enumerate(join_requests(3))]
        dev = rig.add_device(frames, rx1_window_ms=2500)
        rig.run(600 * S)
        heard = downlinks_heard(dev)
        assert [(f, sf) for _, f, sf in heard] == [(FREQ, 12)] * 3
        assert all(otaa.decrypt_join_accept(p, APP_KEY).mic_valid for p, _, _ in heard)
        errors = tx_errors(rig, 5 * S)
        assert max(abs(e) for e in errors) <= 200, errors
        assert rig.server.report()["server"]["joins"] == 3
    finally:
        rig.close()


def test_duty_cycle_overflow_in_rx1_falls_back_to_rx2():
    rig = Rig(seed=5)
    try:
        first, second = join_requests(2)
        # two radios of the device's join, 2 s apart: the second RX1 finds the 1 % sub-band
        # closed by the first accept (~51 ms x 100)
        dev = rig.add_device([(20_000, first)])
        dev2 = rig.add_device([(22_000, second)], name="dev2", position=(0, 10))
        rig.run(45 * S)
        stats = rig.server.report()["server"]
        assert stats["tx_ack"] == {"NONE": 2, "DUTY_CYCLE_OVERFLOW": 1}
        heard = [downlinks_heard(dev)[0], downlinks_heard(dev2)[-1]]  # (dev2 also hears RX1 #1)
        assert [(f, sf) for _, f, sf in heard] == [(FREQ, 7), (RX2, 12)]
        assert all(otaa.decrypt_join_accept(p, APP_KEY).mic_valid for p, _, _ in heard)
        assert len(rig.frames("gw")) == 2
        rx2 = rig.frames("gw")[-1]
        # ChirpStack asks 27 dBm in the 10 % sub-band; the gateway sends at its configured 14
        assert rx2["freq_hz"] == RX2 and rx2["sf"] == 12 and rx2["power_dbm"] == 14
        assert abs(tx_errors(rig, 6 * S)[-1]) <= 200
    finally:
        rig.close()


# --- a test-controlled server: every TX_ACK error -------------------------------------------


class FakeServer:
    """Answers PULL_DATA/PUSH_DATA like the bridge and sends the PULL_RESPs the test scripts for
    each uplink (script(rx_tmst, index) -> [(token, PULL_RESP datagram)]); collects TX_ACKs."""

    def __init__(self, script):
        self.script = script
        self.tx_acks = {}
        self.push = []
        self.rx = []
        self.pull_addr = None
        self.stats_seen = []
        self.sock = None

    def start(self, world):
        self.world = world
        self.sock = world.netio.udp_socket("fake-server", "127.0.0.1")
        addr = self.sock.bind(("127.0.0.1", 0))
        self.sock.on_datagram = self._on_datagram
        return addr

    def _on_datagram(self, data, addr):
        packet = semtech.decode(data)  # strict: raises on anything the bridge would refuse
        if packet.type == semtech.PULL_DATA:
            self.pull_addr = addr
            self.sock.sendto(semtech.encode_pull_ack(packet.token), addr)
        elif packet.type == semtech.PUSH_DATA:
            self.sock.sendto(semtech.encode_push_ack(packet.token), addr)
            self.push.append((self.world.now_us(), packet))
            if packet.stat is not None:
                self.stats_seen.append(packet.stat)
            for rx in packet.rxpk:
                self.rx.append((self.world.now_us(), rx))
                # 25 ms apart: lwIP queues only 6 datagrams per socket (the bridge sends one
                # PULL_RESP per downlink anyway)
                script = self.script(rx["tmst"], len(self.rx) - 1)
                for k, (_token, datagram) in enumerate(script):
                    self.world.scheduler.call_later(
                        k * 25_000, self.sock.sendto, datagram, self.pull_addr
                    )
        elif packet.type == semtech.TX_ACK:
            self.tx_acks[packet.token] = packet.error


def resp(token, tmst=None, **kw):
    args = {"freq_hz": FREQ, "datr": "SF7BW125", "data": b"\x60" + token.to_bytes(2, "big")}
    args.update(kw)
    if tmst is not None:
        args["tmst"] = tmst & MASK
    return token, semtech.encode_pull_resp(token, semtech.format_txpk(**args))


def raw_resp(token, body):
    return token, semtech.encode(semtech.PULL_RESP, token, None, body)


EXPECTED = {
    0x0101: "NONE",
    0x0102: "COLLISION_PACKET",
    0x0103: "DUTY_CYCLE_OVERFLOW",
    0x0104: "TOO_LATE",
    0x0105: "TOO_EARLY",
    0x0106: "GPS_UNLOCKED",
    0x0107: "TX_FREQ",
    0x0108: "TX_POWER",
    0x0109: "INTERNAL_ERROR",
    0x010A: "INTERNAL_ERROR",
    0x010B: "NONE",
    0x010C: "TOO_LATE",
}


def round_a(tmst):
    return [
        resp(0x0104, tmst + 10_000),
        resp(0x0101, tmst + 1 * S, data=b"\x60RX1-downlink"),
        resp(0x0102, tmst + 1 * S + 10_000),
        resp(0x0103, tmst + 3 * S),
        resp(0x0105, tmst + 20 * S),
        resp(0x0106, tmms=1_400_000_000_000),
        resp(0x0107, tmst + 2 * S, freq_hz=870_500_000),
        resp(0x0108, tmst + 2 * S, powe=0),
        resp(0x0109, tmst + 2 * S, modu="FSK", datr=50_000, fdev=25_000),
        raw_resp(0x010A, b'{"txpk":{"imme":false,"tmst":"soon"}}'),
        resp(0x010B, tmst + 2 * S, freq_hz=RX2, datr="SF12BW125", powe=27, data=b"\x60RX2"),
        resp(0x010C, tmst - 5 * S),  # in the past: late, not 71 minutes early
    ]


def round_b(tmst):
    # 8 downlinks in the 10 % sub-band, 500 ms apart, fill the queue; the 9th finds it full
    out = [resp(0x0200 + i, tmst + 1 * S + i * 500_000, freq_hz=RX2) for i in range(8)]
    out.append(resp(0x0208, tmst + 5 * S + 500_000, freq_hz=RX2))
    return out


def test_every_tx_ack_error_from_crafted_pull_resp():
    def script(tmst, index):
        return (round_a, round_b)[index](tmst) if index < 2 else []

    server = FakeServer(script)
    rig = Rig(seed=6, server=server)
    try:
        # another host sends a PULL_RESP to the gateway: ignored (no TX_ACK, no frame)
        intruder = rig.world.netio.udp_socket("intruder", "127.0.0.9")
        intruder.bind(("127.0.0.9", 0))

        def intrude():
            gw_addr = server.pull_addr
            token, datagram = resp(0x0666, server.rx[0][1]["tmst"] + 4 * S, freq_hz=RX2)
            intruder.sendto(datagram, gw_addr)

        rig.world.scheduler.call_at(21 * S + 500_000, intrude)
        frames = [(20_000, b"\x40" + bytes(12)), (40_000, b"\x40" + bytes(range(12)))]
        dev = rig.add_device(frames, rx1_ms=1000)
        rig.run(60 * S)
        assert rig.gw.crashes == []
        assert len(server.rx) == 2
        round_a_tokens = {t: e for t, e in server.tx_acks.items() if t >> 8 == 1}
        assert round_a_tokens == EXPECTED
        round_b_tokens = {t: e for t, e in server.tx_acks.items() if t >> 8 == 2}
        assert round_b_tokens == {**{0x0200 + i: "NONE" for i in range(8)}, 0x0208: "QUEUE_FULL"}
        assert 0x0666 not in server.tx_acks
        # what went on the air: round A's two NONE, round B's eight
        sent = rig.frames("gw")
        tmst_a = server.rx[0][1]["tmst"]
        uplinks = rig.frames("dev")
        end_a, end_b = uplinks[0]["end_us"], uplinks[1]["end_us"]
        expected_starts = [end_a + 1 * S, end_a + 2 * S] + [
            end_b + 1 * S + i * 500_000 for i in range(8)
        ]
        assert len(sent) == 10
        errors = [f["start_us"] - e for f, e in zip(sent, expected_starts, strict=True)]
        assert all(0 <= e <= 200 for e in errors), errors
        assert (sent[0]["freq_hz"], sent[0]["sf"], sent[0]["iq"]) == (FREQ, 7, True)
        assert (sent[1]["freq_hz"], sent[1]["sf"], sent[1]["power_dbm"]) == (RX2, 12, 14)
        assert bytes.fromhex(sent[0]["data"]) == b"\x60RX1-downlink"
        # the device heard both round A frames (RX1 on the channel, then RX2)
        assert [(p, f, sf) for p, f, sf in downlinks_heard(dev)] == [
            (b"\x60RX1-downlink", FREQ, 7),
            (b"\x60RX2", RX2, 12),
        ]
        # tmst of the PUSH_DATA is the uplink's RX-done on the gateway's ticks_cpu
        gw_boot = rig.gw.session.cpu
        assert tmst_a == gw_boot.value(end_a) & MASK
    finally:
        rig.close()


def test_radio_is_back_in_rx_right_after_a_downlink():
    probe_payload = b"\x40probe-right-after-the-downlink"
    toa = airtime.time_on_air_us(7, 125_000, 21, 1, 8, True)

    def script(tmst, index):
        if index:
            return []
        uplink = [r for r in rig.world.trace.of_kind("radio_frame") if r["sender"] == "dev"][-1]
        # a frame that starts 0.5 ms after the downlink ends: heard only if the gateway
        # listens again within its lock deadline (3 symbols, ~3 ms at SF7)
        probe.transmit(probe_payload, FREQ, 7, 125_000, at_us=uplink["end_us"] + S + toa + 500)
        return [resp(0x0301, tmst + S, data=bytes(21))]

    server = FakeServer(script)
    rig = Rig(seed=10, server=server)
    try:
        probe = rig.world.medium.add_radio("probe", (5.0, 0.0))
        rig.add_device([(20_000, b"\x40" + bytes(12))], rx1_ms=0)
        rig.run(30 * S)
        assert server.tx_acks == {0x0301: "NONE"}
        (down,) = rig.frames("gw")
        assert down["end_us"] - down["start_us"] == toa
        received = [rx["data"] for _, rx in server.rx]
        assert received == [b"\x40" + bytes(12), probe_payload]
    finally:
        rig.close()


def test_garbage_floods_do_not_stop_forwarding():
    server = FakeServer(lambda tmst, index: [])
    rig = Rig(seed=7, server=server)
    try:
        other = rig.world.netio.udp_socket("flooder", "127.0.0.7")
        other.bind(("127.0.0.7", 0))
        at = rig.world.scheduler.call_at
        junk = [b"", b"\x02", b"\x02\x00\x00\x03{", b"\x07\x00\x00\x01", b"\x02\x00\x00\x09xyz"]
        for i in range(2000):  # 20 s of 100 datagrams/s from each address
            t = 30 * S + i * 10_000
            data = junk[i % len(junk)] + bytes([i & 0xFF])
            at(t, lambda d=data: server.sock.sendto(d, server.pull_addr))
            at(t, lambda d=data: other.sendto(d, server.pull_addr))
        frames = [(10_000 + 5_000 * i, b"\x40" + bytes([i]) * 12) for i in range(14)]
        rig.add_device(frames, rx1_ms=0)
        rig.run(90 * S)
        assert rig.gw.crashes == []
        # every uplink forwarded, during and after the flood
        assert len(server.rx) == 14
        delays = [t - f["end_us"] for (t, _), f in zip(server.rx, rig.frames("dev"), strict=True)]
        assert max(delays) < 100_000
        malformed = [line for _, line in rig.gw.console if "malformed" in line]
        assert 1 <= len(malformed) <= 5  # rate-limited warnings
    finally:
        rig.close()


# --- outages --------------------------------------------------------------------------------


def periodic_frames(until_s, every_s=10):
    return [
        (5_000 + k * every_s * 1000, b"\x40" + k.to_bytes(4, "little") + bytes(8))
        for k in range(until_s // every_s)
    ]


def first_after(times, t):
    return min(x for x in times if x >= t)


def test_wifi_outage_of_10_minutes_forwarding_resumes_within_30_s():
    rig = Rig(seed=8)
    try:
        rig.add_device(periodic_frames(900), rx1_ms=0)
        start, duration = 120 * S, 10 * MIN
        rig.world.wifi_outage(rig.gw, at_us=start, duration_us=duration)
        rig.run(900 * S)
        assert rig.gw.crashes == [] and rig.gw.stats["resets"] == 0
        times = rig.server.rx_times
        recovered = start + duration
        assert not [t for t in times if start + 1 * S < t < recovered]
        assert first_after(times, recovered) - recovered <= 30 * S
        # the link is back within seconds, and every uplink after the outage is forwarded
        back = [t for t, line in rig.gw.console if "WiFi: connected" in line][-1]
        assert back - recovered <= 5 * S
        after = [f for f in rig.frames("dev") if f["end_us"] > recovered]
        assert len([t for t in times if t > recovered]) == len(after) == 18
        console = [line for _, line in rig.gw.console]
        assert any("WiFi: link lost" in line for line in console)
        assert not any("lab-secret-1" in line for line in console)
    finally:
        rig.close()


def test_server_outage_of_1_hour_forwarding_resumes_within_30_s():
    rig = Rig(seed=9)
    try:
        rig.add_device(periodic_frames(4_200, every_s=30), rx1_ms=0)
        start, duration = 120 * S, 60 * MIN
        at = rig.world.scheduler.call_at
        at(start, rig.lns.set_online, False)
        at(start + duration, rig.lns.set_online, True)
        rig.run(4_200 * S)
        assert rig.gw.crashes == [] and rig.gw.stats["resets"] == 0
        times = rig.server.rx_times
        assert first_after(times, start + duration) - (start + duration) <= 30 * S
        console = [line for _, line in rig.gw.console]
        lost = [line for line in console if "server lost" in line]
        assert 5 <= len(lost) <= 200  # socket re-created with back-off, not in a tight loop
        back = [t for t, line in rig.gw.console if "server answers" in line]
        assert back[-1] - (start + duration) <= 30 * S
        gw_record = next(iter(rig.server.report()["gateways"].values()))
        assert gw_record["stat"] >= 10
    finally:
        rig.close()
