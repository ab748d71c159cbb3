"""lorawan: published data-frame vectors, every MType round trip, MIC/crypto with 32-bit FCnt, errors."""

import aes128
import lorawan
from errors import FrameError
from testkit import h, hx, raises, vectors

NWK = h("44024241ed4ce9a68c6a8bc055233fd3")
APP = h("ec925802ae430ca77fd3dd73cb2cc588")


def _flags(fctrl_hex, uplink):
    fctrl = int(fctrl_hex, 16)
    return {
        "adr": bool(fctrl & 0x80),
        "adr_ack_req": uplink and bool(fctrl & 0x40),
        "ack": bool(fctrl & 0x20),
        "fpending": (not uplink) and bool(fctrl & 0x10),
        "class_b": uplink and bool(fctrl & 0x10),
    }


def test_data_vectors_decode():
    cases = vectors("data")
    assert len(cases) >= 7
    for v in cases:
        e = v["expect"]
        f = lorawan.decode(h(v["phy"]))
        assert lorawan.mtype_name(f.mtype) == e["mtype"], v["name"]
        assert f.major == 0
        assert "%08x" % f.dev_addr == e["dev_addr"]
        assert "%02x" % f.fctrl() == e["fctrl"]
        flags = _flags(e["fctrl"], f.uplink)
        assert f.adr == flags["adr"] and f.ack == flags["ack"]
        assert f.adr_ack_req == flags["adr_ack_req"] and f.fpending == flags["fpending"]
        assert f.class_b == flags["class_b"]
        assert f.fcnt == e["fcnt"]
        assert hx(f.fopts) == e["fopts"]
        assert f.fport == e["fport"]
        assert hx(f.mic) == e["mic"]
        assert f.phy == h(v["phy"])


def test_data_vectors_mic_and_plaintext():
    for v in vectors("data"):
        nwk = h(v["nwkskey"])
        app = h(v["appskey"])
        f = lorawan.decode(h(v["phy"]))
        assert lorawan.verify_mic(f, nwk), v["name"]
        assert lorawan.verify_mic(h(v["phy"]), nwk)
        assert lorawan.verify_mic(f, aes128.AES(nwk))
        assert not lorawan.verify_mic(f, app) or nwk == app
        assert hx(lorawan.decrypt_frm_payload(f, nwk, app)) == v["expect"]["frm_payload"]


def test_data_vectors_rebuild_exactly():
    for v in vectors("data"):
        e = v["expect"]
        f = lorawan.decode(h(v["phy"]))
        phy = lorawan.build_data(
            f.mtype,
            f.dev_addr,
            f.fcnt,
            h(v["nwkskey"]),
            h(v["appskey"]),
            fport=e["fport"],
            payload=h(e["frm_payload"]),
            adr=f.adr,
            adr_ack_req=f.adr_ack_req,
            ack=f.ack,
            fpending=f.fpending,
            fopts=h(e["fopts"]),
        )
        assert hx(phy) == v["phy"], v["name"]
        assert lorawan.encode(f) == h(v["phy"])


def test_fport0_payload_uses_nwkskey():
    v = [x for x in vectors("data") if x["name"] == "brocaar-fport0"][0]
    f = lorawan.decode(h(v["phy"]))
    assert f.fport == 0
    assert hx(lorawan.decrypt_frm_payload(f, h(v["nwkskey"]), None)) == "020305"
    raises(FrameError, lorawan.decrypt_frm_payload, f, None, h(v["appskey"]))
    phy = lorawan.build_data(2, 0x01020304, 0, h(v["nwkskey"]), None, fport=0, payload=h("020305"))
    assert hx(phy) == v["phy"]


def test_32bit_fcnt_in_mic_and_crypto():
    full = 0x0003FFFE
    phy = lorawan.build_data(
        lorawan.MTYPE_CONFIRMED_UP, 0x26011234, full, NWK, APP, fport=5, payload=b"hello"
    )
    f = lorawan.decode(phy)
    assert f.fcnt == 0xFFFE
    assert not lorawan.verify_mic(f, NWK)
    assert lorawan.verify_mic(f, NWK, full)
    assert lorawan.decrypt_frm_payload(f, NWK, APP, full) == b"hello"
    assert lorawan.decrypt_frm_payload(f, NWK, APP) != b"hello"
    raises(FrameError, lorawan.verify_mic, f, NWK, 0x0003FFFF)


def test_direction_changes_mic_and_keystream():
    up = lorawan.build_data(2, 0x11223344, 7, NWK, APP, fport=1, payload=b"abcdefgh")
    down = lorawan.build_data(3, 0x11223344, 7, NWK, APP, fport=1, payload=b"abcdefgh")
    assert up[1:-4] != down[1:-4]
    assert up[-4:] != down[-4:]
    assert lorawan.decrypt_frm_payload(down, NWK, APP) == b"abcdefgh"
    assert lorawan.verify_mic(down, NWK)
    assert (
        lorawan.crypt_frm_payload(APP, lorawan.decode(up).frm_payload, True, 0x11223344, 7)
        == b"abcdefgh"
    )


def test_build_decode_round_trip_all_data_mtypes():
    payload = bytes(range(40))
    for mtype in (2, 3, 4, 5):
        uplink = mtype % 2 == 0
        for fport, fopts, body in (
            (None, b"", b""),
            (None, h("02"), b""),
            (1, h("0603"), payload),
            (0, b"", h("0603")),
            (224, b"", b""),
        ):
            phy = lorawan.build_data(
                mtype,
                0xFEDCBA98,
                0x10002,
                NWK,
                APP,
                fport=fport,
                payload=body,
                adr=True,
                adr_ack_req=uplink,
                ack=True,
                fpending=not uplink,
                fopts=fopts,
            )
            f = lorawan.decode(phy)
            assert f.mtype == mtype and f.uplink == uplink
            assert f.dev_addr == 0xFEDCBA98 and f.fcnt == 2
            assert f.adr and f.ack
            assert f.adr_ack_req == uplink and f.fpending == (not uplink) and not f.class_b
            assert f.fopts == fopts and f.fport == fport
            assert len(f.frm_payload) == len(body)
            assert lorawan.verify_mic(f, NWK, 0x10002)
            assert lorawan.decrypt_frm_payload(f, NWK, APP, 0x10002) == body
            assert lorawan.encode(f) == phy


def test_class_b_flag_uplink():
    phy = lorawan.build_data(2, 1, 1, NWK, APP, class_b=True)
    f = lorawan.decode(phy)
    assert f.class_b and not f.fpending
    assert phy[5] == 0x10
    assert f.fport is None and f.frm_payload == b""


def test_join_request_and_proprietary_round_trip():
    f = lorawan.Frame(lorawan.MTYPE_JOIN_REQUEST)
    f.join_eui = h("70b3d57ed0000001")
    f.dev_eui = h("0004a30b001c0530")
    f.dev_nonce = 0xBEEF
    f.mic = h("01020304")
    phy = lorawan.encode(f)
    assert len(phy) == 23 and phy[0] == 0x00
    assert hx(phy[1:9]) == "010000d07ed5b370"
    g = lorawan.decode(phy)
    assert g.join_eui == f.join_eui and g.dev_eui == f.dev_eui and g.dev_nonce == 0xBEEF
    assert g.uplink is True and hx(g.mic) == "01020304"
    p = lorawan.Frame(lorawan.MTYPE_PROPRIETARY, 0)
    p.payload = b"vendor"
    p.mic = b"\xaa\xbb\xcc\xdd"
    phy = lorawan.encode(p)
    assert phy[0] == 0xE0
    q = lorawan.decode(phy)
    assert q.payload == b"vendor" and q.uplink is None and q.mic == b"\xaa\xbb\xcc\xdd"
    short = lorawan.decode(h("e001020304"))
    assert short.payload == b""


def test_join_accept_decodes_as_encrypted():
    for v in vectors("join_accept"):
        f = lorawan.decode(h(v["phy"]))
        assert f.mtype == lorawan.MTYPE_JOIN_ACCEPT and f.uplink is False
        assert f.encrypted == h(v["phy"])[1:] and f.mic is None
        assert lorawan.encode(f) == h(v["phy"])


def test_major_reported():
    phy = bytearray(lorawan.build_data(2, 1, 1, NWK, APP))
    phy[0] |= 0x01
    assert lorawan.decode(bytes(phy)).major == 1
    assert lorawan.build_data(2, 1, 1, NWK, APP, major=2)[0] == 0x42


def test_decode_accepts_bytearray_and_memoryview():
    phy = lorawan.build_data(2, 9, 9, NWK, APP, fport=3, payload=b"x")
    assert lorawan.decode(bytearray(phy)).phy == phy
    assert lorawan.decode(memoryview(phy)).fport == 3


def test_fcnt32_reconstruction():
    assert lorawan.MAX_FCNT_GAP == 16384
    assert lorawan.fcnt32(None, 5) == 5
    assert lorawan.fcnt32(10, 11) == 11
    assert lorawan.fcnt32(10, 10) == 10
    assert lorawan.fcnt32(0xFFFF, 0) == 0x10000
    assert lorawan.fcnt32(0x1FFF0, 0x0005) == 0x20005
    assert lorawan.fcnt32(100, 100 + 16384) == 100 + 16384
    assert lorawan.fcnt32(100, 100 + 16385) is None
    assert lorawan.fcnt32(100, 99) is None
    assert lorawan.fcnt32(100, 99, max_gap=0xFFFF) == 100 + 0xFFFF
    assert lorawan.fcnt32(0xFFFFFFFF, 0) is None
    raises(FrameError, lorawan.fcnt32, 0, 0x10000)
    raises(FrameError, lorawan.fcnt32, -1, 0)


def test_decode_errors():
    good = lorawan.build_data(2, 1, 1, NWK, APP, fport=1, payload=b"abc")
    raises(FrameError, lorawan.decode, b"")
    raises(FrameError, lorawan.decode, h("40010203"))
    raises(FrameError, lorawan.decode, "40f17dbe49")
    raises(FrameError, lorawan.decode, None)
    raises(FrameError, lorawan.decode, bytes(256))
    raises(FrameError, lorawan.decode, b"\xc0" + good[1:])  # MType 6
    raises(FrameError, lorawan.decode, good[:11])
    raises(FrameError, lorawan.decode, bytes(22))
    raises(FrameError, lorawan.decode, bytes(24))
    raises(FrameError, lorawan.decode, b"\x20" + bytes(15))
    raises(FrameError, lorawan.decode, b"\x20" + bytes(20))
    # FOptsLen 5 but only 3 bytes before the MIC.
    raises(FrameError, lorawan.decode, h("40010000000500") + b"\x00" + bytes(3) + bytes(4))
    # FOptsLen 2 with FPort 0.
    raises(FrameError, lorawan.decode, h("4001000000020000") + h("0203") + b"\x00\x55" + bytes(4))
    exc = raises(FrameError, lorawan.decode, h("40010000000f0000") + bytes(4))
    assert "FOptsLen" in str(exc)


def test_build_errors():
    raises(FrameError, lorawan.build_data, 0, 1, 1, NWK, APP)
    raises(FrameError, lorawan.build_data, 6, 1, 1, NWK, APP)
    raises(FrameError, lorawan.build_data, None, 1, 1, NWK, APP)
    raises(FrameError, lorawan.build_data, 2, -1, 1, NWK, APP)
    raises(FrameError, lorawan.build_data, 2, 1 << 32, 1, NWK, APP)
    raises(FrameError, lorawan.build_data, 2, 1, 1 << 32, NWK, APP)
    raises(FrameError, lorawan.build_data, 2, 1, 1, NWK, APP, None, b"x")
    raises(FrameError, lorawan.build_data, 2, 1, 1, NWK, APP, 256, b"x")
    raises(
        FrameError,
        lorawan.build_data,
        2,
        1,
        1,
        NWK,
        APP,
        0,
        b"x",
        False,
        False,
        False,
        False,
        b"\x02",
    )
    raises(
        FrameError,
        lorawan.build_data,
        2,
        1,
        1,
        NWK,
        APP,
        1,
        b"x",
        False,
        False,
        False,
        False,
        bytes(16),
    )
    raises(FrameError, lorawan.build_data, 2, 1, 1, NWK, APP, 1, b"x", False, False, False, True)
    raises(FrameError, lorawan.build_data, 3, 1, 1, NWK, APP, 1, b"x", False, True)
    raises(FrameError, lorawan.build_data, 2, 1, 1, NWK, APP, 1, bytes(243))
    raises(FrameError, lorawan.build_data, 2, 1, 1, NWK[:15], APP, 1, b"x")
    raises(FrameError, lorawan.build_data, 2, 1, 1, NWK, None, 1, b"x")
    raises(FrameError, lorawan.build_data, 2, 1, 1, None, APP, 1, b"x")
    raises(FrameError, lorawan.build_data, 2, 1, 1, NWK, APP, 1, "text")
    assert len(lorawan.build_data(2, 1, 1, NWK, APP, 1, bytes(242))) == 255


def test_helpers_reject_non_data_frames():
    jr = lorawan.decode(h(vectors("join_request")[0]["phy"]))
    raises(FrameError, lorawan.verify_mic, jr, NWK)
    raises(FrameError, lorawan.decrypt_frm_payload, jr, NWK, APP)
    raises(FrameError, lorawan.compute_mic, bytes(15), b"\x40", True, 1, 1)
    raises(FrameError, lorawan.encode, lorawan.Frame(6))


def test_repr_and_errors_never_show_keys():
    f = lorawan.decode(lorawan.build_data(2, 0xABCD, 3, NWK, APP, fport=2, payload=b"x"))
    assert "0000abcd" in repr(f)
    for exc in (
        raises(FrameError, lorawan.build_data, 2, 1, 1, NWK + b"\x00", APP, 1, b"x"),
        raises(FrameError, lorawan.build_data, 2, 1, 1, NWK, APP[:8], 1, b"x"),
        raises(FrameError, lorawan.verify_mic, f, NWK[:4]),
    ):
        text = str(exc)
        assert hx(NWK)[:8] not in text and hx(APP)[:8] not in text
