"""Properties of the soft MAC (hypothesis).

- Any bytes handed to on_downlink / on_join_accept give None / a Received / a bool: nothing
  escapes, whatever the frame (random bytes, or well-formed frames for our DevAddr with a good
  MIC and random MAC-command bytes).
- FCntUp strictly increases over any sequence of uplinks, retransmissions (which keep their
  FCnt), downlinks and save()/restore() into a fresh MAC.
- Random sequences of valid downlink MAC commands keep the MAC in a valid state: DR, power,
  NbTrans, RX parameters and channels within EU868 rules, every request answered once, the next
  uplink still possible, and save()/restore() reproducing the state exactly.
"""

import eu868
import lorawan
import maccmd
import otaa
import pytest
import softmac
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

APPKEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
DEV_EUI = bytes.fromhex("0004a30b001c0530")
JOIN_EUI = bytes.fromhex("70b3d57ed0000001")
DEV_ADDR = 0x26011234
NET_ID = 0x13
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def counter_rng(seed):
    state = [seed]

    def rng():
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return state[0] >> 7

    return rng


def fresh_mac(seed=1, **kwargs):
    nonces = otaa.DevNoncePolicy(otaa.MemoryNonceStore())
    return softmac.SoftMac(DEV_EUI, JOIN_EUI, APPKEY, nonces, counter_rng(seed), **kwargs)


class Network:
    def __init__(self):
        self.fcnt_down = 0

    def join(self, mac, cflist=None):
        plan = mac.join_request(0)
        nonce = lorawan.decode(plan.phy).dev_nonce
        self.nwk, self.app = otaa.derive_session_keys(APPKEY, 0x42, NET_ID, nonce)
        assert mac.on_join_accept(
            otaa.build_join_accept(APPKEY, 0x42, NET_ID, DEV_ADDR, cflist=cflist), 5000
        )

    def down(self, fport=None, payload=b"", fopts=b"", confirmed=False, ack=False):
        mtype = lorawan.MTYPE_CONFIRMED_DOWN if confirmed else lorawan.MTYPE_UNCONFIRMED_DOWN
        phy = lorawan.build_data(
            mtype,
            DEV_ADDR,
            self.fcnt_down,
            self.nwk,
            self.app,
            fport,
            payload,
            ack=ack,
            fopts=fopts,
        )
        self.fcnt_down += 1
        return phy


def joined_mac(**kwargs):
    mac = fresh_mac(**kwargs)
    net = Network()
    net.join(mac)
    return mac, net


@SETTINGS
@given(st.binary(max_size=80))
def test_random_bytes_never_escape(data):
    mac, net = joined_mac()
    got = mac.on_downlink(data, 7000, snr=3.0)
    assert got is None or isinstance(got, softmac.Received)
    assert mac.on_join_accept(data, 7000) is False  # no join pending
    pending = fresh_mac()
    pending.join_request(0)
    assert pending.on_join_accept(data, 5000) in (True, False)


@SETTINGS
@given(
    st.binary(max_size=15),
    st.binary(max_size=60),
    st.booleans(),
    st.integers(0, 0xFFFF),
    st.sampled_from([None, 0, 1, 2, 200]),
)
def test_well_formed_frames_with_random_mac_bytes(fopts, payload, confirmed, fcnt, fport):
    mac, net = joined_mac()
    if fport == 0:
        fopts = b""
    if fport is None:
        payload = b""
    net.fcnt_down = fcnt
    phy = net.down(fport, payload, fopts, confirmed)
    got = mac.on_downlink(phy, 7000, snr=-5)
    assert isinstance(got, softmac.Received)
    assert got.fcnt == fcnt and got.confirmed == confirmed
    assert mac.on_downlink(phy, 7001) is None  # the same frame again is a replay
    assert_valid(mac)
    plan = mac.uplink(2, b"x", False, 10000)
    frame = lorawan.decode(plan.phy)
    maccmd.decode(
        lorawan.decrypt_frm_payload(frame, net.nwk, net.app) if frame.fport == 0 else frame.fopts,
        True,
    )


ops = st.lists(
    st.one_of(
        st.tuples(st.just("up"), st.booleans(), st.integers(0, 51)),
        st.tuples(st.just("none"), st.just(0), st.just(0)),
        st.tuples(st.just("down"), st.booleans(), st.integers(0, 1)),
        st.tuples(st.just("save"), st.booleans(), st.just(0)),
        st.tuples(st.just("wait"), st.just(0), st.integers(0, 10**7)),
    ),
    max_size=40,
)


@SETTINGS
@given(ops, st.integers(0, 2**16))
def test_fcnt_up_strictly_increases(operations, seed):
    mac, net = joined_mac(seed=seed)
    t = 10000
    last = -1
    cycle = None
    for op, flag, value in operations:
        if op == "up":
            plan = mac.uplink(2, bytes(value), flag, t, dr=0)
            fcnt = lorawan.decode(plan.phy).fcnt
            assert plan.fcnt == fcnt > last
            last = cycle = fcnt
            t = plan.start_ms + plan.airtime_ms
        elif op == "none":
            plan = mac.no_downlink(t + 3000)
            if plan is not None:
                assert plan.fcnt == cycle and lorawan.decode(plan.phy).fcnt == cycle
                t = plan.start_ms + plan.airtime_ms
        elif op == "down":
            assert mac.on_downlink(net.down(ack=bool(value), confirmed=flag), t) is not None
        elif op == "save":
            blob = mac.save(t if flag else None)
            mac = fresh_mac(seed=seed + 1)
            assert mac.restore(blob, t if flag else None)
            cycle = None  # a restored MAC has no transmission cycle in progress
        else:
            t += value
    plan = mac.uplink(2, b"end", False, t)
    assert plan.fcnt > last and plan.fcnt == mac.fcnt_up - 1


freq = st.one_of(
    st.sampled_from(
        [0, 867100000, 868100000, 868900000, 869525000, 868650000, 870100000, 433175000]
    ),
    st.integers(0, 0xFFFFFF).map(lambda step: step * 100),
)
commands = st.one_of(
    st.fixed_dictionaries(
        {
            "name": st.just("LinkADRReq"),
            "data_rate": st.integers(0, 15),
            "tx_power": st.integers(0, 15),
            "ch_mask": st.one_of(st.integers(0, 0xFFFF), st.sampled_from([1, 3, 7, 0xFF])),
            "ch_mask_cntl": st.sampled_from([0, 0, 6, 5, 7]),
            "nb_trans": st.integers(0, 15),
        }
    ),
    st.fixed_dictionaries({"name": st.just("DutyCycleReq"), "max_duty_cycle": st.integers(0, 15)}),
    st.fixed_dictionaries(
        {
            "name": st.just("RXParamSetupReq"),
            "rx1_dr_offset": st.integers(0, 7),
            "rx2_data_rate": st.integers(0, 15),
            "frequency": freq,
        }
    ),
    st.fixed_dictionaries({"name": st.just("DevStatusReq")}),
    st.fixed_dictionaries(
        {
            "name": st.just("NewChannelReq"),
            "ch_index": st.integers(0, 20),
            "frequency": freq,
            "min_dr": st.integers(0, 15),
            "max_dr": st.integers(0, 15),
        }
    ),
    st.fixed_dictionaries({"name": st.just("RXTimingSetupReq"), "delay": st.integers(0, 15)}),
    st.fixed_dictionaries(
        {
            "name": st.just("TxParamSetupReq"),
            "max_eirp": st.integers(0, 15),
            "uplink_dwell_time": st.booleans(),
            "downlink_dwell_time": st.booleans(),
        }
    ),
    st.fixed_dictionaries(
        {"name": st.just("DlChannelReq"), "ch_index": st.integers(0, 20), "frequency": freq}
    ),
    st.fixed_dictionaries(
        {
            "name": st.just("LinkCheckAns"),
            "margin": st.integers(0, 255),
            "gw_cnt": st.integers(0, 255),
        }
    ),
)
ANSWER = {
    "LinkADRReq": "LinkADRAns",
    "DutyCycleReq": "DutyCycleAns",
    "RXParamSetupReq": "RXParamSetupAns",
    "DevStatusReq": "DevStatusAns",
    "NewChannelReq": "NewChannelAns",
    "RXTimingSetupReq": "RXTimingSetupAns",
    "DlChannelReq": "DlChannelAns",
}


def freq_ok(hz):
    return eu868.FREQ_MIN_HZ <= hz <= eu868.FREQ_MAX_HZ and eu868.sub_band(hz) not in (3, 5, 7)


def assert_valid(mac):
    assert eu868.is_lora_dr(mac.dr)
    assert 0 <= mac.tx_power <= 7 and 1 <= mac.nb_trans <= 15
    assert 0 <= mac.rx1_dr_offset <= 5 and eu868.is_lora_dr(mac.rx2_dr) and freq_ok(mac.rx2_freq_hz)
    assert 1 <= mac.rx1_delay_s <= 15 and 0 <= mac.max_duty_cycle <= 15
    chans = mac.channels()
    assert [c[0] for c in chans[:3]] == [0, 1, 2]
    for index, hz, dr_min, dr_max, rx1, _enabled in chans:
        assert freq_ok(hz) and dr_min <= dr_max <= 7 and (rx1 == 0 or freq_ok(rx1))
        if index < 3:
            assert dr_min == 0 and dr_max >= 5
    assert any(c[5] and c[2] <= mac.dr <= c[3] for c in chans), (
        "no enabled channel for the MAC's DR"
    )
    blob = mac.save()
    copy = fresh_mac(seed=99)
    assert copy.restore(blob) and copy.save() == blob


@SETTINGS
@given(st.lists(st.lists(commands, min_size=1, max_size=8), min_size=1, max_size=6), st.booleans())
def test_random_mac_command_sequences_keep_a_valid_state(batches, adr):
    mac, net = joined_mac(adr=adr)
    t = 10000
    for batch in batches:
        data = maccmd.encode(batch, False)
        if len(data) <= 15:
            phy = net.down(fopts=data)
        else:
            phy = net.down(fport=0, payload=data)
        got = mac.on_downlink(phy, t, snr=2.5)
        assert [c["name"] for c in got.mac_commands] == [c["name"] for c in batch]
        assert_valid(mac)
        expected = [ANSWER[c["name"]] for c in batch if c["name"] in ANSWER]
        sent = []
        for _ in range(4):  # answers beyond one frame follow in the next uplinks
            plan = mac.uplink(None, b"", False, t)
            frame = lorawan.decode(plan.phy)
            assert plan.dr == mac.dr or not adr
            assert any(c[1] == plan.freq_hz and c[5] for c in mac.channels())
            data = (
                lorawan.decrypt_frm_payload(frame, net.nwk, net.app)
                if frame.fport == 0
                else frame.fopts
            )
            sent.extend(a["name"] for a in maccmd.decode(data, True))
            t = plan.start_ms + plan.airtime_ms + 2000
        if mac.answers_dropped == 0:
            for name in ANSWER.values():
                # non-sticky answers exactly once, sticky ones repeated in every uplink
                if name in ("RXParamSetupAns", "RXTimingSetupAns", "DlChannelAns"):
                    assert sent.count(name) >= expected.count(name)
                else:
                    assert sent.count(name) == expected.count(name), (name, sent, expected)
        mac.on_downlink(net.down(), t)  # clears the sticky answers
        assert_valid(mac)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_channel_choice_is_random_among_free_channels(seed):
    mac = fresh_mac(seed)
    net = Network()
    net.join(
        mac, cflist=otaa.encode_cflist([867100000, 867300000, 867500000, 867700000, 867900000])
    )
    seen = set()
    t = 10000
    for _ in range(300):
        plan = mac.uplink(2, b"x", False, t)
        assert plan.wait_ms == 0  # 8 channels in 2 sub-bands, 3 s apart at DR5: always one free
        seen.add(plan.freq_hz)
        t = plan.start_ms + 3000
    assert seen == {c[1] for c in mac.channels()}
