"""softmac: the Class A EU868 MAC driven against a tiny in-test network side (otaa + lorawan)."""

import aes128
import eu868
import lorawan
import maccmd
import otaa
import softmac
from errors import FrameError, RegionError
from testkit import h, hx, raises

APPKEY = h("2b7e151628aed2a6abf7158809cf4f3c")
DEV_EUI = h("0004a30b001c0530")
JOIN_EUI = h("70b3d57ed0000001")
DEV_ADDR = 0x26011234
NET_ID = 0x000013
TTN_FREQS = [867100000, 867300000, 867500000, 867700000, 867900000]
SINGLE = 868100000


def lcg(seed=1):
    state = [seed]

    def rng():
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return state[0] >> 7

    return rng


def make_mac(seed=1, **kwargs):
    nonces = otaa.DevNoncePolicy(otaa.MemoryNonceStore())
    return softmac.SoftMac(DEV_EUI, JOIN_EUI, APPKEY, nonces, lcg(seed), **kwargs)


class Net:
    """The network side: answers joins and builds downlinks with the lib's server functions."""

    def __init__(self, appkey=APPKEY, dev_addr=DEV_ADDR):
        self.appkey = appkey
        self.dev_addr = dev_addr
        self.join_nonce = 0x100
        self.fcnt_down = 0
        self.fcnt_up = None

    def accept(self, join_phy, cflist=None, rx1_dr_offset=0, rx2_dr=0, rx_delay=1, appkey=None):
        frame = lorawan.decode(join_phy)
        assert otaa.verify_join_request(frame, APPKEY)
        assert frame.dev_eui == DEV_EUI and frame.join_eui == JOIN_EUI
        self.join_nonce += 1
        self.nwk, self.app = otaa.derive_session_keys(
            APPKEY, self.join_nonce, NET_ID, frame.dev_nonce
        )
        self.fcnt_down = 0
        self.fcnt_up = None
        return otaa.build_join_accept(
            appkey or self.appkey,
            self.join_nonce,
            NET_ID,
            self.dev_addr,
            rx1_dr_offset,
            rx2_dr,
            rx_delay,
            cflist,
        )

    def down(
        self,
        fport=None,
        payload=b"",
        fopts=b"",
        confirmed=False,
        ack=False,
        fpending=False,
        fcnt=None,
    ):
        fcnt = self.fcnt_down if fcnt is None else fcnt
        mtype = lorawan.MTYPE_CONFIRMED_DOWN if confirmed else lorawan.MTYPE_UNCONFIRMED_DOWN
        phy = lorawan.build_data(
            mtype,
            self.dev_addr,
            fcnt,
            self.nwk,
            self.app,
            fport,
            payload,
            ack=ack,
            fpending=fpending,
            fopts=fopts,
        )
        self.fcnt_down = fcnt + 1
        return phy

    def mac_down(self, commands, fport0=False):
        data = maccmd.encode(commands, False)
        if fport0:
            return self.down(fport=0, payload=data)
        return self.down(fopts=data)

    def up(self, phy):
        """Check an uplink like a network server -> (frame, fcnt32, plaintext, answers)."""
        frame = lorawan.decode(phy)
        assert frame.uplink and frame.dev_addr == self.dev_addr
        full = lorawan.fcnt32(self.fcnt_up, frame.fcnt)
        assert full is not None
        assert lorawan.verify_mic(frame, self.nwk, full)
        self.fcnt_up = full
        plain = lorawan.decrypt_frm_payload(frame, self.nwk, self.app, full)
        answers = maccmd.decode(plain if frame.fport == 0 else frame.fopts, True)
        return frame, full, plain, answers


def joined(seed=1, cflist=None, **kwargs):
    mac = make_mac(seed, **kwargs)
    net = Net()
    plan = mac.join_request(0)
    assert mac.on_join_accept(net.accept(plan.phy, cflist=cflist), 6000)
    return mac, net


def names(answers):
    return [a["name"] for a in answers]


def test_join_request_plan():
    mac = make_mac()
    assert not mac.has_joined()
    plan = mac.join_request(0)
    assert plan.kind == "join" and len(plan.phy) == 23 and plan.fcnt is None
    assert plan.freq_hz in eu868.DEFAULT_CHANNELS
    assert (plan.dr, plan.sf, plan.bw_hz, plan.cr, plan.preamble) == (5, 7, 125000, 1, 8)
    assert plan.tx_iq is False and plan.rx_iq is True and plan.crc is True
    assert plan.wait_ms == 0 and plan.start_ms == 0 and plan.attempt == 1
    assert plan.rx1 == (5000, plan.freq_hz, 5, 7, 125000)
    assert plan.rx2 == (6000, 869525000, 0, 12, 125000)
    assert plan.airtime_ms == 62  # 23 B at SF7/125 kHz = 61.696 ms
    assert plan.power_dbm == 16
    frame = lorawan.decode(plan.phy)
    assert otaa.verify_join_request(frame, APPKEY)
    assert frame.dev_nonce == 0
    assert lorawan.decode(mac.join_request(100000, dr=0).phy).dev_nonce == 1
    assert mac.join_attempts == 2
    assert mac.join_request(200000, dr=0).rx1[2:] == (0, 12, 125000)
    raises(RegionError, mac.join_request, 0, 6)  # default channels stop at DR5
    raises(RegionError, mac.join_request, 0, 7)


def test_join_accept_good():
    mac, net = joined(dr=2)
    assert mac.has_joined()
    assert mac.dev_addr == DEV_ADDR
    assert mac.fcnt_up == 0 and mac.fcnt_down is None
    assert mac.dr == 5  # the join DR, as LoRaMac-node
    assert mac.joins_rejected == 0


def test_join_accept_dl_settings_and_rx_delay():
    mac = make_mac()
    net = Net()
    plan = mac.join_request(0)
    assert mac.on_join_accept(net.accept(plan.phy, rx1_dr_offset=2, rx2_dr=3, rx_delay=5), 5000)
    assert (mac.rx1_dr_offset, mac.rx2_dr, mac.rx1_delay_s) == (2, 3, 5)
    up = mac.uplink(2, b"x", False, 10000)
    assert up.rx1 == (5000, up.freq_hz, 3, 9, 125000)
    assert up.rx2 == (6000, 869525000, 3, 9, 125000)


def test_join_accept_wrong_mic_dropped():
    mac = make_mac()
    net = Net()
    plan = mac.join_request(0)
    bad = net.accept(plan.phy, appkey=bytes(16))
    assert mac.on_join_accept(bad, 5000) is False
    assert mac.joins_rejected == 1 and not mac.has_joined()
    assert mac.on_join_accept(b"\x20" + bytes(5), 5000) is False  # undecodable
    assert mac.on_join_accept(lorawan.decode(plan.phy).phy, 5000) is False  # not a JoinAccept
    assert mac.joins_rejected == 3
    assert mac.on_join_accept(net.accept(plan.phy), 5000)


def test_join_accept_replay_dropped():
    mac = make_mac()
    net = Net()
    first = net.accept(mac.join_request(0).phy)
    assert mac.on_join_accept(first, 5000)
    assert mac.on_join_accept(first, 5100) is False  # no join pending
    plan = mac.join_request(100000)  # new DevNonce
    assert not mac.has_joined()
    assert mac.on_join_accept(first, 105000) is False  # old accept: JoinNonce already used
    assert mac.joins_rejected == 2 and not mac.has_joined()
    assert mac.on_join_accept(net.accept(plan.phy), 105000)
    # the session keys follow the second DevNonce
    up = mac.uplink(2, b"k", False, 110000)
    assert net.up(up.phy)[2] == b"k"


def test_no_downlink_after_join_forgets_the_nonce():
    mac = make_mac()
    net = Net()
    plan = mac.join_request(0)
    accept = net.accept(plan.phy)
    assert mac.no_downlink(7000) is None
    assert mac.on_join_accept(accept, 7100) is False


def test_cflist_applied():
    mac = make_mac()
    mac.add_channel(9, 869000000, 0, 5)
    net = Net()
    plan = mac.join_request(0)
    assert mac.on_join_accept(net.accept(plan.phy, cflist=otaa.encode_cflist(TTN_FREQS[:4])), 5000)
    chans = mac.channels()
    assert [c[1] for c in chans] == list(eu868.DEFAULT_CHANNELS) + TTN_FREQS[:4]  # 8-15 cleared
    assert [c[0] for c in chans] == [0, 1, 2, 3, 4, 5, 6]
    assert chans[3] == (3, 867100000, 0, 5, 0, True)
    seen = {}
    t = 10000
    for _ in range(40):
        up = mac.uplink(2, b"x", False, t)
        seen[up.freq_hz] = True
        t = up.start_ms + 60000
    assert len(seen) == 7


def test_uplink_fcnt_increments_and_mic_verifies():
    mac, net = joined()
    t = 10000
    for i in range(3):
        plan = mac.uplink(2, b"meter %d" % i, False, t)
        frame, full, plain, answers = net.up(plan.phy)
        assert full == i and plan.fcnt == i and mac.fcnt_up == i + 1
        assert frame.mtype == lorawan.MTYPE_UNCONFIRMED_UP
        assert frame.fport == 2 and plain == b"meter %d" % i and answers == []
        assert not frame.adr and not frame.adr_ack_req and not frame.ack
        assert plan.kind == "data" and plan.dr == 5 and plan.attempt == 1
        assert plan.rx1 == (1000, plan.freq_hz, 5, 7, 125000)
        assert plan.rx2 == (2000, 869525000, 0, 12, 125000)
        assert plan.freq_hz in eu868.DEFAULT_CHANNELS
        assert mac.stats()[8] == i + 1
        t = plan.start_ms + 100000
    plan = mac.uplink(7, b"", False, t, dr=0)  # SO_DR while ADR is off
    assert plan.dr == 0 and mac.dr == 5
    assert net.up(plan.phy)[0].fport == 7


def test_duty_cycle_wait_reported():
    mac, net = joined()
    first = mac.uplink(2, bytes(50), False, 10000, dr=0)
    assert first.wait_ms == 0
    second = mac.uplink(2, bytes(50), False, 20000, dr=0)
    # all three default channels share the 1 % sub-band 868.0-868.6 MHz
    assert second.start_ms == first.start_ms + 100 * first.airtime_ms
    assert second.wait_ms == second.start_ms - 20000
    assert mac.next_tx_ms(20000, 50, 0) == second.start_ms + 100 * second.airtime_ms


def test_confirmed_uplink_acked():
    mac, net = joined()
    mac.events()
    plan = mac.uplink(2, b"c", True, 10000)
    frame = net.up(plan.phy)[0]
    assert frame.mtype == lorawan.MTYPE_CONFIRMED_UP and plan.confirmed
    got = mac.on_downlink(net.down(ack=True), 11000, rssi=-80, snr=6.5, dr=5)
    assert got.ack and got.done and got.port is None and got.payload == b""
    assert mac.events() == softmac.TX_PACKET_EVENT
    assert mac.no_downlink(13000) is None
    assert mac.stats()[:5] == (0, -80, 6.5, 5, 5)


def test_confirmed_downlink_without_ack_keeps_retrying():
    mac, net = joined()
    plan = mac.uplink(2, b"c", True, 10000)
    got = mac.on_downlink(net.down(fport=1, payload=b"d"), 11000)
    assert got.payload == b"d" and not got.ack and not got.done
    again = mac.no_downlink(12000)
    assert again.phy == plan.phy and again.attempt == 2


def test_retransmissions_keep_fcnt_then_fail():
    mac, net = joined()
    mac.events()
    plan = mac.uplink(2, b"retry", True, 10000)
    plans = [plan]
    t = plan.start_ms + plan.airtime_ms + 2000
    while True:
        nxt = mac.no_downlink(t)
        if nxt is None:
            break
        assert nxt.wait_ms >= 1000  # ACK_TIMEOUT 2 s +- 1 s at least
        plans.append(nxt)
        t = nxt.start_ms + nxt.airtime_ms + 2000
    assert len(plans) == 3  # Pycom tx_retries=2
    assert [p.attempt for p in plans] == [1, 2, 3]
    assert [p.dr for p in plans] == [5, 5, 4]  # LoRaWAN 1.0.2 section 18.4
    for p in plans:
        assert p.phy == plan.phy and p.fcnt == 0
    assert mac.events() == softmac.TX_FAILED_EVENT
    assert mac.stats()[5] == 3
    assert mac.uplink(2, b"next", False, t).fcnt == 1


def test_tx_retries_setting():
    mac, net = joined(tx_retries=0)
    mac.uplink(2, b"c", True, 10000)
    assert mac.no_downlink(13000) is None
    raises(FrameError, make_mac, 1, tx_retries=-1)


def test_unconfirmed_nb_trans_repeats():
    mac, net = joined()
    cmd = {
        "name": "LinkADRReq",
        "data_rate": 5,
        "tx_power": 0,
        "ch_mask": 7,
        "ch_mask_cntl": 0,
        "nb_trans": 2,
    }
    assert mac.on_downlink(net.mac_down([cmd]), 7000) is not None
    assert mac.nb_trans == 2
    mac.events()
    plan = mac.uplink(2, b"u", False, 10000)
    rep = mac.no_downlink(13000)
    assert rep.phy == plan.phy and rep.attempt == 2
    assert mac.no_downlink(20000) is None
    assert mac.events() == softmac.TX_PACKET_EVENT
    # a downlink stops the repetitions
    mac.uplink(2, b"v", False, 30000)
    assert mac.on_downlink(net.down(), 31000).done
    assert mac.no_downlink(33000) is None


def test_fcnt_down_replay_and_bad_mic_rejected():
    mac, net = joined()
    first = net.down(fport=5, payload=b"a")
    got = mac.on_downlink(first, 7000)
    assert got.fcnt == 0 and got.port == 5 and got.payload == b"a"
    assert mac.on_downlink(first, 7100) is None
    assert mac.fcnt_replays == 1
    got = mac.on_downlink(net.down(fport=5, payload=b"b", fcnt=5), 8000)
    assert got.fcnt == 5 and mac.fcnt_down == 5
    assert mac.on_downlink(net.down(fport=5, payload=b"c", fcnt=3), 9000) is None
    assert mac.fcnt_replays == 2
    bad = bytearray(net.down(fport=5, payload=b"d", fcnt=6))
    bad[-1] ^= 1
    assert mac.on_downlink(bytes(bad), 9500) is None
    assert mac.mic_failures == 1
    # 32-bit reconstruction across the 16-bit wrap
    got = mac.on_downlink(net.down(fport=5, payload=b"e", fcnt=0x10002), 10000)
    assert got is None  # gap beyond MAX_FCNT_GAP from 5
    for fcnt in (16000, 32000, 48000, 64000, 0x10002):
        assert mac.on_downlink(net.down(fport=5, payload=b"f", fcnt=fcnt), 11000).fcnt == fcnt


def test_foreign_and_junk_frames_ignored():
    mac, net = joined()
    other = Net(dev_addr=DEV_ADDR + 1)
    other.nwk, other.app = net.nwk, net.app
    assert mac.on_downlink(other.down(fport=1, payload=b"x"), 7000) is None
    assert mac.on_downlink(b"\x60\x01", 7000) is None
    assert mac.on_downlink(mac.uplink(2, b"u", False, 8000).phy, 9000) is None  # an uplink
    assert mac.frames_ignored == 3
    assert make_mac().on_downlink(net.down(), 0) is None  # not joined


def test_downlink_flags_and_confirmed_downlink_acked_next_uplink():
    mac, net = joined()
    mac.events()
    got = mac.on_downlink(net.down(fport=10, payload=b"cfg", confirmed=True, fpending=True), 7000)
    assert got.confirmed and got.fpending and got.payload == b"cfg"
    assert mac.events() == softmac.RX_PACKET_EVENT
    assert net.up(mac.uplink(2, b"a", False, 10000).phy)[0].ack
    assert not net.up(mac.uplink(2, b"b", False, 200000).phy)[0].ack


def test_link_adr_req():
    mac, net = joined(adr=True)
    cmd = {
        "name": "LinkADRReq",
        "data_rate": 3,
        "tx_power": 2,
        "ch_mask": 0x0003,
        "ch_mask_cntl": 0,
        "nb_trans": 0,
    }
    got = mac.on_downlink(net.mac_down([cmd]), 7000)
    assert names(got.mac_commands) == ["LinkADRReq"]
    assert (mac.dr, mac.tx_power, mac.nb_trans) == (3, 2, 1)
    plan = mac.uplink(2, b"a", False, 10000, dr=5)  # ADR on: SO_DR is ignored
    assert plan.dr == 3 and plan.power_dbm == 12 and plan.freq_hz in (868100000, 868300000)
    frame, _, _, answers = net.up(plan.phy)
    assert frame.adr
    assert answers == [
        {
            "cid": 3,
            "name": "LinkADRAns",
            "power_ack": True,
            "data_rate_ack": True,
            "channel_mask_ack": True,
        }
    ]
    # enabling an undefined channel: NACK, nothing applied
    bad = dict(cmd, data_rate=1, ch_mask=0x0021)
    mac.on_downlink(net.mac_down([bad]), 20000)
    answers = net.up(mac.uplink(2, b"b", False, 30000).phy)[3]
    assert (
        answers[0]["channel_mask_ack"] is False
        and answers[0]["data_rate_ack"]
        and answers[0]["power_ack"]
    )
    assert mac.dr == 3
    # bad power and DR7 (FSK): NACK
    mac.on_downlink(net.mac_down([dict(cmd, tx_power=9, data_rate=7, ch_mask=7)]), 40000)
    a = net.up(mac.uplink(2, b"c", False, 50000).phy)[3][0]
    assert (a["power_ack"], a["data_rate_ack"], a["channel_mask_ack"]) == (False, False, True)
    # a block of two: masks in order, the last gives DR, one answer each; ChMaskCntl 6 = all on
    block = [
        dict(cmd, ch_mask=0x0001),
        dict(cmd, ch_mask=0, ch_mask_cntl=6, data_rate=4, nb_trans=3),
    ]
    mac.on_downlink(net.mac_down(block), 60000)
    answers = net.up(mac.uplink(2, b"d", False, 70000).phy)[3]
    assert names(answers) == ["LinkADRAns", "LinkADRAns"]
    assert all(a["channel_mask_ack"] and a["data_rate_ack"] and a["power_ack"] for a in answers)
    assert (mac.dr, mac.nb_trans) == (4, 3)
    assert [c[5] for c in mac.channels()] == [True, True, True]
    # ChMaskCntl 5 is RFU in EU868
    mac.on_downlink(net.mac_down([dict(cmd, ch_mask_cntl=5)]), 80000)
    assert net.up(mac.uplink(2, b"e", False, 90000).phy)[3][0]["channel_mask_ack"] is False


def test_rx_param_setup_req_sticky_until_downlink():
    mac, net = joined()
    cmd = {
        "name": "RXParamSetupReq",
        "rx1_dr_offset": 2,
        "rx2_data_rate": 3,
        "frequency": 869525000,
    }
    mac.on_downlink(net.mac_down([cmd]), 7000)
    plan = mac.uplink(2, b"a", False, 10000)
    assert plan.rx1[2] == 3 and plan.rx2 == (2000, 869525000, 3, 9, 125000)
    ans = {
        "cid": 5,
        "name": "RXParamSetupAns",
        "rx1_dr_offset_ack": True,
        "rx2_data_rate_ack": True,
        "channel_ack": True,
    }
    assert net.up(plan.phy)[3] == [ans]
    assert net.up(mac.uplink(2, b"b", False, 200000).phy)[3] == [ans]  # repeated: no downlink yet
    mac.on_downlink(net.down(), 201000)
    assert net.up(mac.uplink(2, b"c", False, 400000).phy)[3] == []
    # a bad frequency: channel NACK and nothing applied
    mac.on_downlink(net.mac_down([dict(cmd, frequency=871000000, rx2_data_rate=1)]), 401000)
    got = net.up(mac.uplink(2, b"d", False, 600000).phy)[3][0]
    assert got["channel_ack"] is False and got["rx2_data_rate_ack"] and mac.rx2_dr == 3


def test_new_channel_req():
    mac, net = joined()
    req = {"name": "NewChannelReq", "ch_index": 3, "frequency": 867100000, "min_dr": 0, "max_dr": 5}
    cmds = [
        req,
        dict(req, ch_index=1),  # default channels cannot be changed
        dict(req, ch_index=4, frequency=900000000),  # out of band
        dict(req, ch_index=5, min_dr=4, max_dr=2),  # bad DR range
    ]
    mac.on_downlink(net.mac_down(cmds, fport0=True), 7000)
    answers = net.up(mac.uplink(2, b"a", False, 10000).phy)[3]
    oks = [(a["channel_frequency_ok"], a["data_rate_range_ok"]) for a in answers]
    assert oks == [(True, True), (False, False), (False, True), (True, False)]
    assert [c[1] for c in mac.channels()] == list(eu868.DEFAULT_CHANNELS) + [867100000]
    mac.on_downlink(net.mac_down([dict(req, frequency=0)]), 20000)  # frequency 0 removes
    assert net.up(mac.uplink(2, b"b", False, 30000).phy)[3][0]["channel_frequency_ok"]
    assert len(mac.channels()) == 3


def test_dev_status_req():
    mac, net = joined()
    mac.set_battery_level(200)
    mac.on_downlink(net.mac_down([{"name": "DevStatusReq"}]), 7000, snr=7.25)
    answers = net.up(mac.uplink(2, b"a", False, 10000).phy)[3]
    assert answers == [{"cid": 6, "name": "DevStatusAns", "battery": 200, "margin": 7}]
    mac.on_downlink(net.mac_down([{"name": "DevStatusReq"}]), 11000, snr=-40)
    assert net.up(mac.uplink(2, b"b", False, 100000).phy)[3][0]["margin"] == -32
    raises(FrameError, mac.set_battery_level, 256)


def test_link_check():
    mac, net = joined()
    mac.request_link_check()
    mac.request_link_check()  # queued once
    assert names(net.up(mac.uplink(2, b"a", False, 10000).phy)[3]) == ["LinkCheckReq"]
    assert net.up(mac.uplink(2, b"b", False, 100000).phy)[3] == []
    got = mac.on_downlink(
        net.mac_down([{"name": "LinkCheckAns", "margin": 20, "gw_cnt": 2}]), 101000
    )
    assert mac.link_check == (20, 2) and names(got.mac_commands) == ["LinkCheckAns"]
    assert net.up(mac.uplink(2, b"c", False, 200000).phy)[3] == []  # nothing to answer


def test_other_mac_commands():
    mac, net = joined()
    cmds = [
        {"name": "DutyCycleReq", "max_duty_cycle": 7},
        {"name": "RXTimingSetupReq", "delay": 3},
        {"name": "TxParamSetupReq", "max_eirp": 5},
        {"name": "DlChannelReq", "ch_index": 0, "frequency": 868900000},
        {"name": "DlChannelReq", "ch_index": 9, "frequency": 868900000},
    ]
    mac.on_downlink(net.mac_down(cmds, fport0=True), 7000)
    assert mac.max_duty_cycle == 7 and mac.rx1_delay_s == 3
    plan = mac.uplink(2, b"a", False, 10000)
    answers = net.up(plan.phy)[3]
    assert names(answers) == [
        "DutyCycleAns",
        "RXTimingSetupAns",
        "DlChannelAns",
        "DlChannelAns",
    ]  # no TxParamSetupAns
    assert answers[2]["uplink_frequency_exists"] and answers[2]["channel_frequency_ok"]
    assert not answers[3]["uplink_frequency_exists"] and answers[3]["channel_frequency_ok"]
    t = 10000
    while plan.freq_hz != 868100000:
        t = plan.start_ms + 10**6
        plan = mac.uplink(2, b"a", False, t)
    assert plan.rx1 == (3000, 868900000, 5, 7, 125000) and plan.rx2[0] == 4000
    # aggregated duty cycle 1/128: the next frame waits 128 x the airtime
    nxt = mac.uplink(2, b"b", False, plan.start_ms)
    assert nxt.start_ms >= plan.start_ms + 128 * plan.airtime_ms


def test_unknown_cid_stops_processing():
    mac, net = joined()
    got = mac.on_downlink(net.down(fopts=b"\x06\x7f\x06"), 7000)
    assert names(got.mac_commands) == ["DevStatusReq"]
    assert names(net.up(mac.uplink(2, b"a", False, 10000).phy)[3]) == ["DevStatusAns"]


def test_answers_beyond_fopts():
    mac, net = joined()
    mac.on_downlink(net.mac_down([{"name": "DevStatusReq"}] * 6, fport0=True), 7000)
    frame, _, _, answers = net.up(mac.uplink(2, b"data", False, 10000).phy)
    assert len(frame.fopts) == 15 and len(answers) == 5 and frame.fport == 2  # 5 fit, 1 waits
    frame, _, _, answers = net.up(mac.uplink(2, b"more", False, 100000).phy)
    assert names(answers) == ["DevStatusAns"]
    mac.on_downlink(net.mac_down([{"name": "DevStatusReq"}] * 6, fport0=True), 101000)
    frame, _, _, answers = net.up(mac.uplink(None, b"", False, 200000).phy)
    assert frame.fport == 0 and len(answers) == 6 and frame.fopts == b""


def test_single_channel_plan():
    mac = make_mac()
    assert mac.remove_channel(0) is False  # EU868: default channels cannot be removed
    assert len(mac.channels()) == 3
    assert mac.add_channel(1, SINGLE, 1, 5) is False  # default channels keep DR0..DR5+
    assert mac.add_channel(5, 900000000, 0, 5) is False  # outside EU868
    assert mac.add_channel(5, 868650000, 0, 5) is False  # gap between ETSI sub-bands
    for index in range(3):
        assert mac.add_channel(index, SINGLE, 0, 5)
    mac.add_channel(7, 867500000, 0, 5)
    for index in range(3, 16):
        mac.remove_channel(index)
    assert set(c[1] for c in mac.channels()) == set([SINGLE])
    raises(RegionError, mac.add_channel, 16, SINGLE, 0, 5)
    raises(RegionError, mac.add_channel, 3, SINGLE, 4, 2)
    raises(RegionError, mac.add_channel, 3, SINGLE, 0, 8)
    raises(RegionError, mac.remove_channel, -1)
    net = Net()
    t = 0
    plan = mac.join_request(t)
    assert plan.freq_hz == SINGLE and plan.rx1[1] == SINGLE
    assert mac.on_join_accept(net.accept(plan.phy), plan.start_ms + 5000)
    for i in range(30):
        plan = mac.uplink(2, b"s", i % 3 == 0, t)
        assert plan.freq_hz == SINGLE and plan.rx1[1] == SINGLE
        t = plan.start_ms + 1000
        if plan.confirmed:
            retry = mac.no_downlink(t)
            assert retry.freq_hz == SINGLE
            t = retry.start_ms + 1000


def test_payload_too_big_and_not_joined():
    mac = make_mac()
    err = raises(softmac.NotJoinedError, mac.uplink, 2, b"x", False, 0)
    assert isinstance(err, FrameError)
    mac, net = joined()
    mac.uplink(2, bytes(51), False, 0, dr=0)
    err = raises(softmac.PayloadSizeError, mac.uplink, 2, bytes(52), False, 0, 0)
    assert isinstance(err, FrameError) and "52" in str(err)
    mac.uplink(2, bytes(242), False, 0, dr=5)
    raises(softmac.PayloadSizeError, mac.uplink, 2, bytes(243), False, 0, 5)
    raises(FrameError, mac.uplink, 0, b"x", False, 0)
    raises(FrameError, mac.uplink, 224, b"x", False, 0)
    raises(FrameError, mac.uplink, None, b"x", False, 0)
    raises(FrameError, mac.uplink, 2, "text", False, 0)
    raises(RegionError, mac.uplink, 2, b"x", False, 0, 6)  # no default channel has DR6
    assert mac.fcnt_up == 2  # failed calls consume no counter


def test_adr_ack_req_and_step_down():
    mac, net = joined(adr=True)
    t = 0
    for i in range(ADR_STEPS):
        plan = mac.uplink(1, b"", False, t)
        t = plan.start_ms + 1
        frame = lorawan.decode(plan.phy)
        assert frame.adr
        assert frame.adr_ack_req == (i >= 64), i
        assert plan.dr == (5 if i < 96 else 4), i
    assert mac.dr == 4 and mac.adr_ack_cnt == ADR_STEPS
    mac.on_downlink(net.down(), t)
    assert mac.adr_ack_cnt == 0
    assert not lorawan.decode(mac.uplink(1, b"", False, t).phy).adr_ack_req


ADR_STEPS = 98


def test_save_restore_round_trip():
    mac, net = joined(cflist=otaa.encode_cflist(TTN_FREQS))
    cmds = [
        {"name": "RXParamSetupReq", "rx1_dr_offset": 1, "rx2_data_rate": 3, "frequency": 869525000},
        {"name": "DutyCycleReq", "max_duty_cycle": 2},
        {"name": "DlChannelReq", "ch_index": 4, "frequency": 868900000},
    ]
    mac.on_downlink(net.mac_down(cmds, fport0=True), 7000)
    mac.on_downlink(net.down(fport=3, payload=b"x", confirmed=True), 7500)
    up = mac.uplink(2, b"a", False, 10000)
    net.up(up.phy)
    blob = mac.save()
    assert (
        len(blob) == 74 + 16 * 9 + 1 + 2 * 3 + 4 and blob[0] == softmac.SAVE_VERSION
    )  # 2 sticky answers
    assert hx(net.nwk) in hx(blob)  # the keys are persisted (state, not a log)
    other = make_mac(seed=9)
    assert other.restore(blob)
    assert other.save() == blob
    assert other.has_joined() and other.dev_addr == DEV_ADDR and other.fcnt_up == mac.fcnt_up
    assert other.fcnt_down == mac.fcnt_down == 1
    assert other.channels() == mac.channels()
    assert (other.rx1_dr_offset, other.rx2_dr, other.max_duty_cycle) == (1, 3, 2)
    plan = other.uplink(2, b"after", False, 500000)
    frame, full, plain, answers = net.up(plan.phy)
    assert full == up.fcnt + 1 and plain == b"after"
    assert names(answers) == ["RXParamSetupAns", "DlChannelAns"]  # sticky answers survive
    got = other.on_downlink(net.down(fport=4, payload=b"y"), 501000)
    assert got.payload == b"y"


def test_save_restore_with_time_keeps_duty_cycle():
    mac, net = joined()
    plan = mac.uplink(2, bytes(40), False, 10000, dr=0)
    closed_until = mac.next_tx_ms(10000, 40, 0)
    assert closed_until == plan.start_ms + 100 * plan.airtime_ms
    blob = mac.save(20000)
    assert len(blob) == 74 + 16 * 9 + 48 + 1 + 4
    other = make_mac()
    assert other.restore(blob, 5000, 0)  # a restarted clock: 5000 now was 20000 then
    assert other.next_tx_ms(5000, 40, 0) == closed_until - 15000
    assert other.restore(blob, 5000, 10000)  # saved 10 s ago
    assert other.next_tx_ms(5000, 40, 0) == closed_until - 25000
    third = make_mac()
    assert third.restore(blob)  # without a clock the time part is skipped
    assert third.next_tx_ms(5000, 40, 0) == 5000
    assert third.save() == mac.save()


def test_restore_rejects_bad_data():
    mac, net = joined()
    blob = mac.save()
    fresh = make_mac()
    for index in (0, 1, 5, 40, 100, len(blob) - 1):
        bad = bytearray(blob)
        bad[index] ^= 0x10
        assert fresh.restore(bytes(bad)) is False, index
    assert fresh.restore(blob[:-1]) is False
    assert fresh.restore(b"") is False
    assert fresh.restore(None) is False
    assert not fresh.has_joined() and fresh.fcnt_up == 0  # unchanged
    nonces = otaa.DevNoncePolicy(otaa.MemoryNonceStore())
    stranger = softmac.SoftMac(h("0004a30b001c0531"), JOIN_EUI, APPKEY, nonces, lcg())
    assert stranger.restore(blob) is False  # another identity
    # a well-formed blob with the right CMAC but an impossible field (DR9) is refused too
    body = bytearray(blob[:-4])
    body[46] = 9
    forged = bytes(body) + aes128.cmac(APPKEY, b"OEsm" + DEV_EUI + JOIN_EUI + bytes(body))[:4]
    assert fresh.restore(forged) is False
    body[46] = 4
    assert fresh.restore(
        bytes(body) + aes128.cmac(APPKEY, b"OEsm" + DEV_EUI + JOIN_EUI + bytes(body))[:4]
    )
    assert fresh.dr == 4
    assert fresh.restore(make_mac().save())  # a not-joined state is valid too
    assert not fresh.has_joined()


def test_fcnt_up_continues_across_save_restore():
    mac, net = joined()
    t = 0
    last = -1
    for _ in range(4):
        plan = mac.uplink(2, b"p", False, t)
        assert plan.fcnt > last
        last = plan.fcnt
        blob = mac.save()
        mac = make_mac(seed=last + 3)
        assert mac.restore(blob)
        t = plan.start_ms + 100000
    assert mac.fcnt_up == 4


def test_join_backoff_never_exceeded_over_hours():
    mac = make_mac()
    for index in range(3):  # a 10 % sub-band, so the join back-off is what binds
        assert mac.add_channel(index, 869525000, 0, 5)
    hour = 3600000
    used = {}
    t = 0
    waited = 0
    while t < 12 * hour:
        plan = mac.join_request(t, dr=0)
        assert plan.start_ms >= t and plan.freq_hz == 869525000
        waited = max(waited, plan.wait_ms)
        start = plan.start_ms
        if start < hour:
            period = 0
        elif start < 11 * hour:
            period = 1
        else:
            period = 2 + (start - 11 * hour) // (24 * hour)
        used[period] = used.get(period, 0) + plan.airtime_ms
        assert mac.no_downlink(start + plan.airtime_ms + 7000) is None
        t = start + plan.airtime_ms + 7000
    assert plan.airtime_ms == 1483
    assert 36000 - 1483 < used[0] <= 36000
    assert 36000 - 1483 < used[1] <= 36000
    assert 8700 - 1483 < used[2] <= 8700
    assert waited > 9 * hour  # the wait until the next budget period was reported
    assert mac.join_retry_delay_ms(0) >= 4000


def test_random_frames_never_raise():
    mac, net = joined()
    rng = lcg(7)
    for n in range(300):
        size = rng() % 40
        data = bytes([rng() & 0xFF for _ in range(size)])
        if n % 3 == 0 and size > 8:  # make some look like ours
            data = bytes([0x60 | (rng() & 0xA0)]) + DEV_ADDR.to_bytes(4, "little") + data[5:]
        got = mac.on_downlink(data, 7000)
        assert got is None or isinstance(got, softmac.Received)
        assert mac.on_join_accept(data, 7000) is False


def test_reprs_never_show_keys():
    mac, net = joined()
    plan = mac.uplink(2, b"a", False, 0)
    got = mac.on_downlink(net.down(fport=1, payload=b"b"), 1000)
    text = repr(mac) + repr(plan) + repr(got)
    for key in (APPKEY, net.nwk, net.app):
        assert hx(key) not in text.lower()
    assert "joined=True" in repr(mac)


def test_stats_and_events():
    mac, net = joined()
    assert mac.events() == 0
    plan = mac.uplink(2, b"a", False, 0)
    stats = mac.stats()
    assert stats[3] == 5 and stats[5] == 1 and stats[6] == 16
    assert stats[7] == plan.airtime_ms and stats[8] == 1 and stats[9] == plan.freq_hz
    assert mac.no_downlink(3000) is None
    assert mac.events() == softmac.TX_PACKET_EVENT
    mac.on_downlink(
        net.down(fport=2, payload=b"z"), 4000, rssi=-101, snr=-3.5, dr=0, rx_timestamp=123456
    )
    assert mac.stats()[:5] == (123456, -101, -3.5, 5, 0)
    assert mac.events() == softmac.RX_PACKET_EVENT


def test_constructor_checks():
    nonces = otaa.DevNoncePolicy(otaa.MemoryNonceStore())
    raises(FrameError, softmac.SoftMac, DEV_EUI[:7], JOIN_EUI, APPKEY, nonces, lcg())
    raises(FrameError, softmac.SoftMac, DEV_EUI, JOIN_EUI, APPKEY[:15], nonces, lcg())
    raises(RegionError, softmac.SoftMac, DEV_EUI, JOIN_EUI, APPKEY, nonces, lcg(), 0, 7)
    raises(
        RegionError, softmac.SoftMac, DEV_EUI, JOIN_EUI, APPKEY, nonces, lcg(), 0, 0, 5, False, 8
    )
    mac = softmac.SoftMac(DEV_EUI, JOIN_EUI, APPKEY, nonces, lcg(), join_dr=0, tx_power=3)
    plan = mac.join_request(0)
    assert plan.dr == 0 and plan.power_dbm == 10
