"""Network-server emulator: a reference gateway and device built from the lib drive the core."""

import json

import eu868
import lorawan
import maccmd
import meterpayload
import otaa
import pytest
import semtech
from errors import ConfigError
from hypothesis import given, settings
from hypothesis import strategies as st
from openenergy.sim.clock import Scheduler
from openenergy.sim.lns import LnsTask, NetworkServer, dev_addr_layout
from openenergy.sim.netio import NetIO
from openenergy.sim.trace import Trace

WINDOW = 200_000
APP_KEY = bytes(range(16))
JOIN_EUI = bytes.fromhex("70b3d57ed0000001")
DEV_EUI = bytes.fromhex("0004a30b001c0530")
TIME = "2026-11-24T10:00:00.000123Z"
STAT_TIME = "2026-11-24 10:00:00 GMT"


class Gateway:
    """A reference packet forwarder: builds datagrams with lib/semtech.py only."""

    def __init__(self, eui_hex, port):
        self.eui = bytes.fromhex(eui_hex)
        self.addr = ("127.0.0.1", port)
        self.token = 0x1000

    def _next(self):
        self.token = semtech.next_token(self.token)
        return self.token

    def pull_data(self):
        return semtech.encode_pull_data(self._next(), self.eui)

    def push(
        self, phy, tmst=1_000_000, freq=868_100_000, datr="SF7BW125", rssi=-60, snr_x10=75, stat=1
    ):
        rxpk = semtech.format_rxpk(
            tmst, freq, datr, "4/5", rssi, snr_x10, phy, time=TIME, stat=stat
        )
        return semtech.encode_push_data(self._next(), self.eui, [rxpk])

    def push_stat(self):
        stat = semtech.format_stat(STAT_TIME, 3, 3, 3, 1000, 1, 1)
        return semtech.encode_push_data(self._next(), self.eui, stat=stat)

    def tx_ack(self, token, error="NONE"):
        return semtech.encode_tx_ack(token, self.eui, error)


class Device:
    """A reference OTAA device: lib/otaa + lib/lorawan only."""

    def __init__(self, dev_eui=DEV_EUI, app_key=APP_KEY):
        self.dev_eui = dev_eui
        self.app_key = app_key
        self.dev_nonce = 0x1234
        self.dev_addr = None
        self.nwkskey = self.appskey = None
        self.fcnt = 0
        self.accept = None

    def join_request(self, nonce=None, key=None):
        return otaa.build_join_request(
            JOIN_EUI, self.dev_eui, self.dev_nonce if nonce is None else nonce, key or self.app_key
        )

    def take_accept(self, phy):
        accept = otaa.decrypt_join_accept(phy, self.app_key)
        assert accept.mic_valid
        self.accept = accept
        self.dev_addr = accept.dev_addr
        self.nwkskey, self.appskey = otaa.derive_session_keys(
            self.app_key, accept.join_nonce, accept.net_id, self.dev_nonce
        )
        self.fcnt = 0
        return accept

    def uplink(
        self, payload=b"\x01\x02", fport=1, confirmed=False, fcnt=None, fopts=b"", ack=False
    ):
        mtype = lorawan.MTYPE_CONFIRMED_UP if confirmed else lorawan.MTYPE_UNCONFIRMED_UP
        if fcnt is None:
            fcnt = self.fcnt
            self.fcnt += 1
        return lorawan.build_data(
            mtype,
            self.dev_addr,
            fcnt,
            self.nwkskey,
            self.appskey,
            fport=fport,
            payload=payload,
            fopts=fopts,
            ack=ack,
        )

    def open_downlink(self, phy, fcnt_down):
        frame = lorawan.decode(phy)
        assert frame.dev_addr == self.dev_addr
        assert lorawan.verify_mic(frame, self.nwkskey, fcnt_down)
        plain = lorawan.decrypt_frm_payload(frame, self.nwkskey, self.appskey, fcnt_down)
        return frame, plain


class Net:
    """Server + gateways + a virtual clock (µs) the test moves by hand."""

    def __init__(self, **settings_):
        self.server = NetworkServer(**settings_)
        self.server.add_device(DEV_EUI, JOIN_EUI, APP_KEY, name="meter-1")
        self.now = 0
        self.gw1 = Gateway("b827ebfffe000001", 40001)
        self.gw2 = Gateway("b827ebfffe000002", 40002)
        self.dev = Device()

    def send(self, gateway, data):
        return self.server.handle_datagram(data, gateway.addr, self.now)

    def connect(self, *gateways):
        for gateway in gateways or (self.gw1,):
            out = self.send(gateway, gateway.pull_data())
            assert out == [(semtech.encode_pull_ack(gateway.token), gateway.addr, self.now)]

    def advance(self, us):
        self.now += us
        return self.server.tick(self.now)

    def uplink_via(self, phy, gateway=None, **rx):
        gateway = gateway or self.gw1
        acks = self.send(gateway, gateway.push(phy, **rx))
        assert acks == [(semtech.encode_push_ack(gateway.token), gateway.addr, self.now)]
        return self.advance(WINDOW)

    def join(self, tmst=1_000_000):
        out = self.uplink_via(self.dev.join_request(), tmst=tmst)
        assert len(out) == 1
        packet = pull_resp(out[0])
        self.dev.take_accept(packet.txpk["data"])
        return out[0], packet


def pull_resp(output):
    data, _addr, _at = output
    return semtech.decode(data, semtech.PULL_RESP)


def joined_net(**settings_):
    net = Net(**settings_)
    net.connect()
    net.join()
    return net


# -- Semtech UDP: acks, tokens, gateway records --------------------------------------------------


def test_push_and_pull_are_acknowledged_with_their_token_and_recorded():
    net = Net()
    gw = net.gw1
    out = net.send(gw, gw.pull_data())
    assert out == [(bytes((2, gw.token & 0xFF, gw.token >> 8, 4)), gw.addr, 0)]
    out = net.send(gw, gw.push_stat())
    assert out == [(bytes((2, gw.token & 0xFF, gw.token >> 8, 1)), gw.addr, 0)]
    record = net.server.gateways["b827ebfffe000001"]
    assert record["pull_data"] == 1 and record["push_data"] == 1 and record["stat"] == 1
    assert record["last_stat"]["time"] == STAT_TIME and record["address"] == "127.0.0.1:40001"
    assert record["rxpk"] == 0


@pytest.mark.parametrize(
    "name, datagram",
    [
        ("rssi as float", lambda gw: gw.push(b"\x40" * 13).replace(b'"rssi":-60', b'"rssi":-60.5')),
        ("version 3", lambda gw: b"\x03" + gw.pull_data()[1:]),
        ("PULL_DATA of 13 bytes", lambda gw: gw.pull_data() + b"\x00"),
        ("bad stat.time", lambda gw: gw.push_stat().replace(b" GMT", b"Z   ")),
        (
            "tmst beyond uint32",
            lambda gw: gw.push(b"\x40" * 13).replace(b'"tmst":1000000', b'"tmst":4294967296'),
        ),
        ("PUSH_ACK sent to the server", lambda gw: semtech.encode_push_ack(7)),
    ],
)
def test_datagrams_the_bridge_refuses_are_not_acknowledged(name, datagram):
    net = Net()
    data = datagram(net.gw1)
    assert net.send(net.gw1, data) == []
    assert net.server.stats["rejected_datagrams"] == 1
    assert net.server.rejections[0]["addr"] == "127.0.0.1:40001"
    assert net.server.gateways == {}
    # the same gateway is answered again once it sends a valid datagram
    assert len(net.send(net.gw1, net.gw1.pull_data())) == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 5))
def test_any_datagram_is_answered_or_rejected_never_raises(tail, ptype):
    net = Net()
    data = bytes((2, 1, 2, ptype)) + tail
    try:
        semtech.decode(data)
        valid = ptype in (semtech.PUSH_DATA, semtech.PULL_DATA, semtech.TX_ACK)
    except ValueError:
        valid = False
    out = net.send(net.gw1, data)
    assert net.server.stats["rejected_datagrams"] == (0 if valid else 1)
    assert (len(out) == 1) == (valid and ptype != semtech.TX_ACK)


# -- joins ------------------------------------------------------------------------------------


def test_join_accept_in_rx1_then_rx2_after_a_tx_ack_error():
    net = Net()
    net.connect()
    (data, addr, at), packet = net.join(tmst=1_000_000)
    assert addr == net.gw1.addr and at == WINDOW
    tx = packet.txpk
    assert tx["tmst"] == 6_000_000 and tx["freq_hz"] == 868_100_000 and tx["datr"] == "SF7BW125"
    assert tx["ipol"] is True and tx["imme"] is False and tx["rfch"] == 0 and tx["powe"] == 14
    assert tx["codr"] == "4/5" and tx["modu"] == "LORA" and tx["size"] == 17
    accept = net.dev.accept
    assert accept.net_id == 0 and accept.rx1_dr_offset == 0 and accept.rx2_dr == 0
    assert accept.rx1_delay_s == 1 and accept.cflist is None
    assert net.server.stats["joins"] == 1 and net.server.stats["join_requests"] == 1
    record = net.server.devices[DEV_EUI.hex()]
    assert record["joined"] and record["dev_addr"] == "%08x" % accept.dev_addr
    assert record["name"] == "meter-1"

    out = net.send(net.gw1, net.gw1.tx_ack(packet.token, "TOO_LATE"))
    assert len(out) == 1 and out[0][1] == net.gw1.addr and out[0][2] == net.now
    rx2 = pull_resp(out[0])
    assert rx2.token != packet.token
    assert rx2.txpk["tmst"] == 7_000_000 and rx2.txpk["freq_hz"] == 869_525_000
    assert rx2.txpk["datr"] == "SF12BW125" and rx2.txpk["data"] == tx["data"]
    assert net.send(net.gw1, net.gw1.tx_ack(rx2.token, "NONE")) == []
    assert net.server.stats["tx_ack"] == {"TOO_LATE": 1, "NONE": 1}
    assert net.server.gateways["b827ebfffe000001"]["tx_ack"] == {"TOO_LATE": 1, "NONE": 1}
    assert net.server.stats["downlinks_failed"] == 0 and net.server.stats["downlinks_sent"] == 1


def test_tx_ack_none_ends_the_downlink_and_rx2_failure_is_recorded():
    net = Net()
    net.connect()
    _, packet = net.join()
    assert net.send(net.gw1, net.gw1.tx_ack(packet.token)) == []
    assert net.advance(20_000_000) == []

    net.dev.dev_nonce += 1
    _, packet = net.join(tmst=50_000_000)
    out = net.send(net.gw1, net.gw1.tx_ack(packet.token, "COLLISION_PACKET"))
    rx2 = pull_resp(out[0])
    assert net.send(net.gw1, net.gw1.tx_ack(rx2.token, "DUTY_CYCLE_OVERFLOW")) == []
    assert net.server.stats["downlinks_failed"] == 1
    assert net.server.devices[DEV_EUI.hex()]["downlink_failures"] == {"tx_ack": 1}


def test_single_channel_rx2_settings_and_cflist_reach_the_device():
    net = Net(rx2_freq_hz=868_100_000, rx2_dr=5, net_id=0x000013, cflist=[867_100_000, 867_300_000])
    net.connect()
    _, packet = net.join()
    accept = net.dev.accept
    assert accept.rx2_dr == 5 and accept.net_id == 0x13
    assert otaa.decode_cflist(accept.cflist)[:3] == [867_100_000, 867_300_000, 0]
    assert accept.dev_addr >> 25 == 0x13  # NetID type 0: NwkID in the top 7 bits
    out = net.send(net.gw1, net.gw1.tx_ack(packet.token, "TOO_EARLY"))
    rx2 = pull_resp(out[0]).txpk
    assert rx2["freq_hz"] == 868_100_000 and rx2["datr"] == "SF7BW125"


def test_join_with_a_wrong_key_or_a_reused_dev_nonce_is_refused():
    net = Net()
    net.connect()
    assert net.uplink_via(net.dev.join_request(key=bytes(16))) == []
    assert net.server.stats["mic_failures"] == 1 and net.server.stats["joins"] == 0
    net.join()
    net.now += 10_000_000
    assert net.uplink_via(net.dev.join_request()) == []  # same DevNonce again
    assert net.server.stats["dev_nonce_reuse"] == 1 and net.server.stats["joins"] == 1
    record = net.server.devices[DEV_EUI.hex()]
    assert record["join_requests"] == 3
    assert record["join_rejects"] == {"mic": 1, "dev_nonce_reuse": 1}


def test_join_nonces_and_dev_addrs_are_deterministic_and_distinct():
    def run():
        net = Net(net_id=0x600001)  # NetID type 3
        net.connect()
        results = []
        for nonce in (1, 2, 3):
            net.dev.dev_nonce = nonce
            (data, _, _), _ = net.join(tmst=nonce * 10_000_000)
            results.append((data, net.dev.accept.join_nonce, net.dev.accept.dev_addr))
            net.now += 10_000_000
        return results

    first = run()
    assert first == run()
    assert [r[1] for r in first] == [1, 2, 3]
    addrs = [r[2] for r in first]
    assert len(set(addrs)) == 3
    prefix, bits = dev_addr_layout(0x600001)
    assert bits == 17 and all(addr >> bits == prefix >> bits for addr in addrs)
    assert prefix >> 28 == 0b1110  # type 3: DevAddr starts with 1110


# -- uplinks --------------------------------------------------------------------------------------


def test_payload_decoded_and_recorded_with_time_and_gateway():
    net = joined_net()
    report = meterpayload.encode_report(7, 900, [(0, [123_456, 123_400, 123_380])])
    start = net.now
    assert net.uplink_via(net.dev.uplink(report, fport=1)) == []
    net.now += 60_000_000
    net.uplink_via(net.dev.uplink(b"\xff\x00", fport=1))
    record = net.server.devices[DEV_EUI.hex()]
    assert record["uplinks_received"] == 2 and record["last_fcnt"] == 1
    first, second = record["payloads"]
    assert first["time_us"] == start and first["gateway"] == "b827ebfffe000001"
    assert first["decoded"] == meterpayload.decode(1, report) and first["fcnt"] == 0
    assert first["data"] == report.hex() and first["rssi"] == -60 and first["snr"] == 7.5
    assert "decoded" not in second and second["error"]
    assert net.server.stats["uplinks"] == 2 and net.server.stats["payload_errors"] == 1
    json.dumps(net.server.report())


def test_wrong_mic_is_counted_and_not_recorded():
    net = joined_net()
    phy = bytearray(net.dev.uplink())
    phy[-1] ^= 0x01
    net.uplink_via(bytes(phy))
    assert net.server.stats["mic_failures"] == 1 and net.server.stats["uplinks"] == 0
    assert net.server.devices[DEV_EUI.hex()]["payloads"] == []


def test_replayed_fcnt_is_counted_and_dropped():
    net = joined_net()
    frames = [net.dev.uplink(bytes([i])) for i in range(3)]
    for phy in frames:
        net.uplink_via(phy)
        net.now += 10_000_000
    net.uplink_via(frames[2])  # the last one again, unconfirmed
    net.now += 10_000_000
    net.uplink_via(frames[0])  # an older one
    net.now += 10_000_000
    net.uplink_via(net.dev.uplink(b"x", fcnt=0))  # a device that lost its counter
    stats = net.server.stats
    assert stats["fcnt_replays"] == 3 and stats["uplinks"] == 3 and stats["mic_failures"] == 0
    assert len(net.server.devices[DEV_EUI.hex()]["payloads"]) == 3


def test_fcnt_beyond_16_bits_is_rebuilt():
    net = joined_net()
    for fcnt in (0, 16_000, 32_000, 48_000, 64_000, 65_535, 65_536 + 10_000):
        net.uplink_via(net.dev.uplink(b"v", fcnt=fcnt))
        net.now += 10_000_000
    record = net.server.devices[DEV_EUI.hex()]
    assert record["uplinks_received"] == 7 and record["last_fcnt"] == 75_536
    assert net.server.stats["mic_failures"] == 0
    net.uplink_via(net.dev.uplink(b"v", fcnt=75_536 + 20_000))  # beyond MAX_FCNT_GAP
    assert net.server.stats["fcnt_gap"] == 1 and record["uplinks_received"] == 7


def test_duplicates_from_two_gateways_count_once_and_answer_via_the_better_one():
    net = joined_net()
    net.connect(net.gw2)
    phy = net.dev.uplink(b"c", confirmed=True)
    assert len(net.send(net.gw1, net.gw1.push(phy, tmst=5_000_000, rssi=-110, snr_x10=-50))) == 1
    net.now += 30_000
    assert len(net.send(net.gw2, net.gw2.push(phy, tmst=9_000_000, rssi=-70, snr_x10=80))) == 1
    assert net.advance(WINDOW - 30_000 - 1) == []
    out = net.advance(1)
    assert len(out) == 1 and out[0][1] == net.gw2.addr
    assert pull_resp(out[0]).txpk["tmst"] == 10_000_000
    net.now += 100_000
    assert len(net.send(net.gw1, net.gw1.push(phy, tmst=5_000_000))) == 1  # late copy
    assert net.advance(WINDOW) == []
    stats = net.server.stats
    assert stats["uplinks"] == 1 and stats["duplicates"] == 2 and stats["downlinks_sent"] == 2
    payload = net.server.devices[DEV_EUI.hex()]["payloads"][0]
    assert payload["gateway"] == "b827ebfffe000002" and payload["rssi"] == -70


def test_crc_error_frames_are_skipped():
    net = joined_net()
    net.uplink_via(net.dev.uplink(), stat=-1)
    assert net.server.stats["rxpk_skipped"] == 1 and net.server.stats["uplinks"] == 0


# -- downlinks ------------------------------------------------------------------------------------


def test_confirmed_uplink_is_acknowledged_in_rx1_and_its_retransmission_again():
    net = joined_net()
    phy = net.dev.uplink(b"c", confirmed=True)
    out = net.uplink_via(phy, tmst=20_000_000, freq=868_300_000, datr="SF9BW125")
    tx = pull_resp(out[0]).txpk
    assert tx["tmst"] == 21_000_000 and tx["freq_hz"] == 868_300_000 and tx["datr"] == "SF9BW125"
    frame, plain = net.dev.open_downlink(tx["data"], 0)
    assert frame.ack and frame.mtype == lorawan.MTYPE_UNCONFIRMED_DOWN and frame.fcnt == 0
    assert frame.fport is None and plain == b"" and not frame.fpending

    net.now += 5_000_000
    out = net.uplink_via(phy, tmst=26_000_000)  # retransmission: same FCnt, same frame
    frame, _ = net.dev.open_downlink(pull_resp(out[0]).txpk["data"], 1)
    assert frame.ack and frame.fcnt == 1
    stats = net.server.stats
    assert stats["uplinks"] == 1 and stats["retransmissions"] == 1 and stats["fcnt_replays"] == 0

    net.now += 5_000_000
    assert net.uplink_via(net.dev.uplink(b"u")) == []  # unconfirmed: nothing to send
    assert stats["downlinks_sent"] == 3  # join accept + two ACKs


def test_downlink_queue_with_fpending_and_confirmed_downlink_ack():
    net = joined_net()
    server = net.server
    server.enqueue_downlink(DEV_EUI.hex(), 10, b"\x07", confirmed=True)
    server.enqueue_downlink(DEV_EUI, 10, b"\x08")
    out = net.uplink_via(net.dev.uplink())
    frame, plain = net.dev.open_downlink(pull_resp(out[0]).txpk["data"], 0)
    assert frame.mtype == lorawan.MTYPE_CONFIRMED_DOWN and frame.fpending and not frame.ack
    assert frame.fport == 10 and plain == b"\x07" and server.queued(DEV_EUI) == 1

    net.now += 10_000_000
    out = net.uplink_via(net.dev.uplink(ack=True))
    frame, plain = net.dev.open_downlink(pull_resp(out[0]).txpk["data"], 1)
    assert frame.mtype == lorawan.MTYPE_UNCONFIRMED_DOWN and not frame.fpending
    assert plain == b"\x08" and server.queued(DEV_EUI) == 0
    record = server.devices[DEV_EUI.hex()]
    assert record["downlinks_acked"] == 1 and record["downlinks_nacked"] == 0


def test_queued_downlink_survives_a_failed_delivery():
    net = joined_net()
    net.server.enqueue_downlink(DEV_EUI, 5, b"hello")
    out = net.uplink_via(net.dev.uplink(), tmst=30_000_000)
    token = pull_resp(out[0]).token
    out = net.send(net.gw1, net.gw1.tx_ack(token, "TX_FREQ"))
    rx2 = pull_resp(out[0])
    assert rx2.txpk["tmst"] == 32_000_000 and rx2.txpk["freq_hz"] == 869_525_000
    assert net.send(net.gw1, net.gw1.tx_ack(rx2.token, "TX_FREQ")) == []
    assert net.server.queued(DEV_EUI) == 1 and net.server.stats["downlinks_failed"] == 1
    net.now += 10_000_000
    out = net.uplink_via(net.dev.uplink())
    _, plain = net.dev.open_downlink(pull_resp(out[0]).txpk["data"], 1)
    assert plain == b"hello" and net.server.queued(DEV_EUI) == 0


def test_link_check_req_is_answered_with_margin_and_gateway_count():
    net = joined_net()
    net.connect(net.gw2)
    phy = net.dev.uplink(fopts=maccmd.encode([{"name": "LinkCheckReq"}], True))
    net.send(net.gw1, net.gw1.push(phy, snr_x10=-20, datr="SF10BW125"))
    net.send(net.gw2, net.gw2.push(phy, snr_x10=35, datr="SF10BW125"))
    out = net.advance(WINDOW)
    assert out[0][1] == net.gw2.addr
    frame, plain = net.dev.open_downlink(pull_resp(out[0]).txpk["data"], 0)
    assert plain == b""
    # SF10 floor -15 dB, best SNR 3.5 dB -> margin 18
    assert maccmd.decode(frame.fopts, False) == [
        {"cid": 2, "name": "LinkCheckAns", "margin": 18, "gw_cnt": 2}
    ]


def test_mac_requests_and_answers_are_recorded():
    net = joined_net()
    net.server.enqueue_mac(DEV_EUI, {"name": "DevStatusReq"})
    out = net.uplink_via(net.dev.uplink())
    frame, _ = net.dev.open_downlink(pull_resp(out[0]).txpk["data"], 0)
    assert maccmd.decode(frame.fopts, False) == [{"cid": 6, "name": "DevStatusReq"}]
    net.now += 10_000_000
    answer = maccmd.encode([{"name": "DevStatusAns", "battery": 200, "margin": -3}], True)
    net.uplink_via(net.dev.uplink(answer, fport=0))
    record = net.server.devices[DEV_EUI.hex()]
    assert record["dev_status"] == {"time_us": net.now - WINDOW, "battery": 200, "margin": -3}
    assert record["mac_commands"][-1]["name"] == "DevStatusAns"
    assert [p["fport"] for p in record["payloads"]] == [1]  # FPort 0 is no application payload


def test_adr_ack_req_gets_a_downlink():
    net = joined_net()
    phy = lorawan.build_data(
        lorawan.MTYPE_UNCONFIRMED_UP,
        net.dev.dev_addr,
        0,
        net.dev.nwkskey,
        net.dev.appskey,
        fport=1,
        payload=b"a",
        adr=True,
        adr_ack_req=True,
    )
    out = net.uplink_via(phy)
    frame, _ = net.dev.open_downlink(pull_resp(out[0]).txpk["data"], 0)
    assert not frame.ack and frame.fport is None


def test_tmst_wraps_around_2_32():
    net = Net()
    net.connect()
    near = 0xFFFFFFFF - 300_000
    _, packet = net.join(tmst=near)
    assert packet.txpk["tmst"] == (near + 5_000_000) - (1 << 32) == 4_699_999
    out = net.send(net.gw1, net.gw1.tx_ack(packet.token, "TOO_LATE"))
    assert pull_resp(out[0]).txpk["tmst"] == 5_699_999
    net.now += 10_000_000
    out = net.uplink_via(net.dev.uplink(confirmed=True), tmst=0xFFFFFFFF)
    assert pull_resp(out[0]).txpk["tmst"] == 999_999


# -- gateways, tokens, outages ------------------------------------------------------------------


def test_gateway_without_pull_data_for_60_s_gets_no_downlink():
    net = joined_net()
    net.now += 60_000_001
    assert net.uplink_via(net.dev.uplink(confirmed=True)) == []
    assert net.server.devices[DEV_EUI.hex()]["downlink_failures"] == {"no_gateway": 1}
    net.connect()  # a keepalive brings it back
    net.now += 10_000_000
    assert len(net.uplink_via(net.dev.uplink(confirmed=True))) == 1


def test_tx_ack_tokens_expire_after_15_s():
    net = Net()
    net.connect()
    _, packet = net.join()
    assert net.server.next_deadline() == net.now + 15_000_000
    assert net.advance(15_000_000) == []
    assert net.server.stats["tx_ack_timeouts"] == 1 and net.server.next_deadline() is None
    assert net.send(net.gw1, net.gw1.tx_ack(packet.token, "TOO_LATE")) == []
    assert net.server.stats["tx_ack_unknown"] == 1


def test_server_outage_drops_everything():
    net = joined_net()
    net.server.set_online(False)
    assert net.send(net.gw1, net.gw1.pull_data()) == []
    assert net.send(net.gw1, net.gw1.push(net.dev.uplink(confirmed=True))) == []
    assert net.advance(WINDOW) == []
    assert net.server.stats["dropped_offline"] == 2 and net.server.stats["uplinks"] == 0
    net.server.set_online(True)
    net.now += 10_000_000
    # the bridge forgot the gateway: an uplink is taken but cannot be answered until PULL_DATA
    assert net.uplink_via(net.dev.uplink(confirmed=True)) == []
    net.connect()
    net.now += 10_000_000
    assert len(net.uplink_via(net.dev.uplink(confirmed=True))) == 1
    assert net.server.stats["uplinks"] == 2


def test_downlink_lead_delays_the_pull_resp():
    net = Net(downlink_lead_us=300_000)
    net.connect()
    (_, _, at), _ = net.join()
    assert at == 5_000_000 - 300_000


def test_bad_settings_and_devices_are_config_errors():
    with pytest.raises(ConfigError, match="rx1_dr_offset"):
        NetworkServer(rx1_dr_offset=6)
    with pytest.raises(ConfigError, match="unknown setting"):
        NetworkServer.from_config({"rx2_frequency": 1})
    server = NetworkServer.from_config({"rx2_dr": 3})
    assert server.rx2_datr == "SF9BW125"
    with pytest.raises(ConfigError, match="app_key"):
        server.add_device(DEV_EUI, JOIN_EUI, b"short")
    server.add_device(DEV_EUI, JOIN_EUI, APP_KEY.hex())
    with pytest.raises(ConfigError, match="registered twice"):
        server.add_device(DEV_EUI.hex(), JOIN_EUI, APP_KEY)
    with pytest.raises(ConfigError, match="fport"):
        server.enqueue_downlink(DEV_EUI, 0, b"x")
    assert APP_KEY.hex() not in repr(server) + json.dumps(server.report())


# -- the transport adapter on the virtual clock -----------------------------------------------


def test_lns_task_over_netio_loopback():
    scheduler = Scheduler()
    trace = Trace(capture=True, clock=scheduler)
    netio = NetIO(scheduler, trace)
    server = NetworkServer()
    server.add_device(DEV_EUI, JOIN_EUI, APP_KEY)
    task = LnsTask(server, netio, port=0)
    host, port = task.start()
    gw = Gateway("b827ebfffe000001", 0)
    dev = Device()
    got = []

    def gateway_main():
        sock = netio.udp_socket("gw", "127.0.0.2")
        sock.bind(("127.0.0.2", 0))
        sock.sendto(gw.pull_data(), (host, port))
        got.append(("pull", scheduler.now_us(), sock.recvfrom(100_000)[0]))
        sock.sendto(gw.push(dev.join_request(), tmst=2_000_000), (host, port))
        got.append(("push", scheduler.now_us(), sock.recvfrom(100_000)[0]))
        item = sock.recvfrom(1_000_000)
        got.append(("resp", scheduler.now_us(), item[0]))
        task.set_online(False)
        sock.sendto(gw.pull_data(), (host, port))
        got.append(("outage", scheduler.now_us(), sock.recvfrom(1_000_000)))
        task.stop()

    scheduler.spawn(gateway_main)
    scheduler.run(until_us=10_000_000)
    kinds = [g[0] for g in got]
    assert kinds == ["pull", "push", "resp", "outage"]
    assert got[0][2][3] == semtech.PULL_ACK and got[1][2][3] == semtech.PUSH_ACK
    packet = semtech.decode(got[2][2], semtech.PULL_RESP)
    assert packet.txpk["tmst"] == 7_000_000
    assert dev.take_accept(packet.txpk["data"]).net_id == 0
    # PULL_RESP leaves as soon as the de-duplication window closes (+ loopback latency)
    assert got[2][1] - got[1][1] <= WINDOW + 2 * netio.latency_us
    assert got[3][2] is None and server.stats["dropped_offline"] == 0
    assert netio.stats["dropped_receiver_down"] == 1
    assert task.task.done and task.task.error is None
    netio.close()


def test_rx1_dr_offset_applies_to_data_not_to_join():
    net = Net(rx1_dr_offset=2)
    net.connect()
    _, packet = net.join()
    assert packet.txpk["datr"] == "SF7BW125" and net.dev.accept.rx1_dr_offset == 2
    out = net.uplink_via(net.dev.uplink(confirmed=True), datr="SF8BW125")
    assert pull_resp(out[0]).txpk["datr"] == eu868.datr(*eu868.dr_to_sf_bw(2))
