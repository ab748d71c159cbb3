"""Fuzz the LoRaWAN decoders: only FrameError (MacCommandError is one) may escape, never a crash."""

import lorawan
import maccmd
import otaa
import pytest
from errors import FrameError, MacCommandError
from hypothesis import given, settings
from hypothesis import strategies as st

KEY = bytes(range(16))
FUZZ = settings(max_examples=1500, deadline=None)

mhdr_bytes = st.builds(
    lambda mtype, rest: bytes([(mtype << 5) | rest]), st.integers(0, 7), st.integers(0, 31)
)
frames = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda head, body: head + body, mhdr_bytes, st.binary(max_size=260)),
)


@FUZZ
@given(frames, st.binary(min_size=16, max_size=16), st.integers(0, 0xFFFFFFFF))
def test_decode_and_helpers_raise_only_frame_error(phy, key, fcnt32):
    try:
        frame = lorawan.decode(phy)
    except FrameError:
        return
    assert len(phy) <= lorawan.MAX_PHY_SIZE
    # Whatever decodes must re-encode to the same bytes (RFU bits aside).
    again = lorawan.encode(frame)
    rfu_mask = 0xE3
    assert again[0] == phy[0] & rfu_mask
    if frame.is_data():
        body = bytearray(phy[1:])
        if not frame.uplink:
            body[4] &= ~0x40 & 0xFF
        assert again[1:] == bytes(body)
        full = (fcnt32 & 0xFFFF0000) | frame.fcnt
        assert isinstance(lorawan.verify_mic(frame, key, full), bool)
        plain = lorawan.decrypt_frm_payload(frame, key, key, full)
        assert len(plain) == len(frame.frm_payload)
        for data in (frame.fopts, plain if frame.fport == 0 else b""):
            try:
                maccmd.decode(data, frame.uplink)
            except MacCommandError:
                pass
    else:
        assert again[1:] == phy[1:]
    if frame.mtype == lorawan.MTYPE_JOIN_ACCEPT:
        accept = otaa.decrypt_join_accept(frame, key)
        assert isinstance(accept.mic_valid, bool)
    if frame.mtype == lorawan.MTYPE_JOIN_REQUEST:
        assert isinstance(otaa.verify_join_request(frame, key), bool)


@FUZZ
@given(st.binary(max_size=64), st.booleans())
def test_maccmd_decode_raises_only_mac_command_error(data, uplink):
    try:
        cmds = maccmd.decode(data, uplink)
    except MacCommandError:
        return
    # Anything that decodes re-encodes to the same bytes (RFU bits aside).
    again = maccmd.decode(maccmd.encode(cmds, uplink), uplink)
    assert again == cmds


@FUZZ
@given(st.binary(max_size=40), st.binary(max_size=20))
def test_join_accept_decrypt_raises_only_frame_error(body, key):
    phy = b"\x20" + body
    try:
        accept = otaa.decrypt_join_accept(phy, key)
    except FrameError:
        return
    assert len(phy) in lorawan.JOIN_ACCEPT_SIZES and len(key) == 16
    assert isinstance(accept.mic_valid, bool)


@FUZZ
@given(
    st.sampled_from((2, 3, 4, 5)),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.one_of(st.none(), st.integers(0, 255)),
    st.binary(max_size=242),
    st.binary(max_size=15),
    st.booleans(),
    st.booleans(),
)
def test_build_data_round_trips_or_raises_frame_error(
    mtype, dev_addr, fcnt32, fport, payload, fopts, adr, ack
):
    try:
        phy = lorawan.build_data(
            mtype, dev_addr, fcnt32, KEY, KEY[::-1], fport, payload, adr=adr, ack=ack, fopts=fopts
        )
    except FrameError:
        assert (
            (fport is None and payload) or (fport == 0 and fopts) or len(payload) + len(fopts) > 242
        )
        return
    frame = lorawan.decode(phy)
    assert (frame.dev_addr, frame.fcnt, frame.fport, frame.fopts) == (
        dev_addr,
        fcnt32 & 0xFFFF,
        fport,
        fopts,
    )
    assert lorawan.verify_mic(frame, KEY, fcnt32)
    assert lorawan.decrypt_frm_payload(frame, KEY, KEY[::-1], fcnt32) == payload


@pytest.mark.parametrize(
    "bad",
    [None, 3, "40f17dbe4900020001954378762b11ff0d", [0x40] * 20, b"\xc0" + bytes(20)],
)
def test_decode_rejects_wrong_types_with_frame_error(bad):
    with pytest.raises(FrameError):
        lorawan.decode(bad)


def test_fuzz_property_can_fail():
    # The property above relies on decode rejecting a FOptsLen that reaches the MIC.
    with pytest.raises(FrameError):
        lorawan.decode(bytes.fromhex("40010000000f0000") + bytes(4))
