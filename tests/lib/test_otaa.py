"""otaa: JoinRequest / JoinAccept / session-key vectors, CFList, DevNonce policy."""

import lorawan
import otaa
from errors import FrameError
from testkit import h, hx, raises, vectors

# The CFList TTN sends in EU868: 867.1, 867.3, 867.5, 867.7, 867.9 MHz, CFListType 0.
TTN_CFLIST = "184f84e85684b85e84886684586e8400"
TTN_FREQS = [867100000, 867300000, 867500000, 867700000, 867900000]


def test_join_request_vectors():
    cases = vectors("join_request")
    assert len(cases) >= 2
    for v in cases:
        e = v["expect"]
        f = lorawan.decode(h(v["phy"]))
        assert f.mtype == lorawan.MTYPE_JOIN_REQUEST
        assert hx(f.join_eui) == e["join_eui"]
        assert hx(f.dev_eui) == e["dev_eui"]
        assert "%04x" % f.dev_nonce == e["dev_nonce"]
        assert hx(f.mic) == e["mic"]
        assert otaa.verify_join_request(f, h(v["appkey"]))
        assert otaa.verify_join_request(h(v["phy"]), h(v["appkey"]))
        assert not otaa.verify_join_request(f, bytes(16))
        phy = otaa.build_join_request(
            h(e["join_eui"]), h(e["dev_eui"]), int(e["dev_nonce"], 16), h(v["appkey"])
        )
        assert hx(phy) == v["phy"], v["name"]


def test_join_accept_vectors_device_side():
    cases = vectors("join_accept")
    assert len(cases) >= 3
    for v in cases:
        e = v["expect"]
        ja = otaa.decrypt_join_accept(h(v["phy"]), h(v["appkey"]))
        assert ja.mic_valid, v["name"]
        assert hx(ja.plaintext) == v["plaintext"]
        assert "%06x" % ja.join_nonce == e["join_nonce"]
        assert "%06x" % ja.net_id == e["net_id"]
        assert "%08x" % ja.dev_addr == e["dev_addr"]
        assert "%02x" % ja.dl_settings == e["dl_settings"]
        assert ja.rx_delay == e["rx_delay"]
        assert ja.rx1_delay_s == max(1, e["rx_delay"])
        assert ja.cflist == (None if e["cflist"] is None else h(e["cflist"]))
        assert hx(ja.mic) == e["mic"]
        frame = lorawan.decode(h(v["phy"]))
        assert otaa.decrypt_join_accept(frame, h(v["appkey"])).plaintext == ja.plaintext


def test_join_accept_vectors_server_side():
    for v in vectors("join_accept"):
        e = v["expect"]
        dl = int(e["dl_settings"], 16)
        phy = otaa.build_join_accept(
            h(v["appkey"]),
            int(e["join_nonce"], 16),
            int(e["net_id"], 16),
            int(e["dev_addr"], 16),
            (dl >> 4) & 7,
            dl & 15,
            e["rx_delay"],
            None if e["cflist"] is None else h(e["cflist"]),
        )
        assert hx(phy) == v["phy"], v["name"]


def test_join_accept_wrong_key_is_invalid_not_an_error():
    v = vectors("join_accept")[0]
    ja = otaa.decrypt_join_accept(h(v["phy"]), bytes(16))
    assert ja.mic_valid is False


def test_join_accept_with_cflist_round_trip():
    key = h("00112233445566778899aabbccddeeff")
    cflist = otaa.encode_cflist(TTN_FREQS)
    assert hx(cflist) == TTN_CFLIST
    phy = otaa.build_join_accept(key, 0xABCDEF, 0x000013, 0x260B1234, 3, 3, 5, cflist)
    assert len(phy) == 33 and phy[0] == 0x20
    ja = otaa.decrypt_join_accept(phy, key)
    assert ja.mic_valid
    assert (ja.join_nonce, ja.net_id, ja.dev_addr) == (0xABCDEF, 0x13, 0x260B1234)
    assert (ja.rx1_dr_offset, ja.rx2_dr, ja.rx_delay, ja.rx1_delay_s) == (3, 3, 5, 5)
    assert ja.cflist == cflist
    assert otaa.decode_cflist(ja.cflist) == TTN_FREQS
    assert "260b1234" in repr(ja) and hx(key) not in repr(ja)


def test_cflist_codec():
    assert otaa.decode_cflist(h(TTN_CFLIST)) == TTN_FREQS
    assert otaa.encode_cflist([]) == bytes(16)
    assert otaa.decode_cflist(otaa.encode_cflist([868700000])) == [868700000, 0, 0, 0, 0]
    raises(FrameError, otaa.encode_cflist, [1, 2, 3, 4, 5, 6])
    raises(FrameError, otaa.encode_cflist, [867100050])
    raises(FrameError, otaa.encode_cflist, [1677721600])
    raises(FrameError, otaa.decode_cflist, bytes(15))
    raises(FrameError, otaa.decode_cflist, bytes(15) + b"\x01")


def test_session_keys_vector():
    cases = vectors("session_keys")
    assert cases
    for v in cases:
        nwk, app = otaa.derive_session_keys(
            h(v["appkey"]), int(v["join_nonce"], 16), int(v["net_id"], 16), int(v["dev_nonce"], 16)
        )
        assert hx(nwk) == v["expect"]["nwkskey"]
        assert hx(app) == v["expect"]["appskey"]


def test_join_then_data_frame_end_to_end():
    appkey = h("98929b92c49edba9676d646d3b612456")
    req = otaa.build_join_request(h("70b3d57ed0000001"), h("0004a30b001c0530"), 7, appkey)
    assert otaa.verify_join_request(req, appkey)
    accept = otaa.build_join_accept(appkey, 0x000001, 0x000013, 0x26000001)
    ja = otaa.decrypt_join_accept(accept, appkey)
    nwk, app = otaa.derive_session_keys(
        appkey, ja.join_nonce, ja.net_id, lorawan.decode(req).dev_nonce
    )
    phy = lorawan.build_data(2, ja.dev_addr, 0, nwk, app, fport=1, payload=b"kWh")
    assert lorawan.verify_mic(phy, nwk)
    assert lorawan.decrypt_frm_payload(phy, nwk, app) == b"kWh"


def test_otaa_errors():
    key = bytes(16)
    raises(FrameError, otaa.build_join_request, bytes(7), bytes(8), 1, key)
    raises(FrameError, otaa.build_join_request, bytes(8), "12345678", 1, key)
    raises(FrameError, otaa.build_join_request, bytes(8), bytes(8), 0x10000, key)
    raises(FrameError, otaa.build_join_request, bytes(8), bytes(8), 1, bytes(15))
    raises(FrameError, otaa.build_join_request, bytes(8), bytes(8), 1, None)
    raises(FrameError, otaa.build_join_accept, key, 1 << 24, 0, 0)
    raises(FrameError, otaa.build_join_accept, key, 0, 1 << 24, 0)
    raises(FrameError, otaa.build_join_accept, key, 0, 0, 1 << 32)
    raises(FrameError, otaa.build_join_accept, key, 0, 0, 0, 8)
    raises(FrameError, otaa.build_join_accept, key, 0, 0, 0, 0, 16)
    raises(FrameError, otaa.build_join_accept, key, 0, 0, 0, 0, 0, 16)
    raises(FrameError, otaa.build_join_accept, key, 0, 0, 0, 0, 0, 1, bytes(15))
    raises(FrameError, otaa.decrypt_join_accept, b"\x20" + bytes(15), key)
    raises(FrameError, otaa.decrypt_join_accept, h(vectors("join_request")[0]["phy"]), key)
    raises(FrameError, otaa.decrypt_join_accept, h(vectors("join_accept")[0]["phy"]), bytes(3))
    raises(FrameError, otaa.verify_join_request, h(vectors("data")[0]["phy"]), key)
    raises(FrameError, otaa.derive_session_keys, key, 0, 0, 0x10000)
    raises(FrameError, otaa.derive_session_keys, bytes(17), 0, 0, 0)


class _FailingStore:
    def __init__(self, value):
        self.value = value

    def load(self):
        return self.value

    def save(self, value):
        raise OSError("flash write failed")


def test_dev_nonce_policy_counts_and_persists():
    store = otaa.MemoryNonceStore()
    policy = otaa.DevNoncePolicy(store)
    assert [policy.next(), policy.next(), policy.next()] == [0, 1, 2]
    assert store.value == 3 and policy.used() == 3
    rebooted = otaa.DevNoncePolicy(store)
    assert rebooted.next() == 3
    assert store.value == 4


def test_dev_nonce_policy_saves_before_use():
    policy = otaa.DevNoncePolicy(_FailingStore(41))
    raises(OSError, policy.next)
    assert policy.used() == 41


def test_dev_nonce_policy_exhaustion_and_bad_store():
    store = otaa.MemoryNonceStore(0xFFFF)
    policy = otaa.DevNoncePolicy(store)
    assert policy.remaining() == 1
    assert policy.next() == 0xFFFF
    assert policy.remaining() == 0
    raises(FrameError, policy.next)
    assert store.value == 0x10000
    raises(FrameError, otaa.DevNoncePolicy, otaa.MemoryNonceStore(0x10001))
    raises(FrameError, otaa.DevNoncePolicy, otaa.MemoryNonceStore(-1))
    raises(FrameError, otaa.DevNoncePolicy, otaa.MemoryNonceStore("3"))
