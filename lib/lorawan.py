"""LoRaWAN 1.0.x PHYPayload: decode and encode every MType, MIC, FRMPayload crypto, FCnt.

Conventions (whole lib): DevAddr is an int (u32); EUIs are 8 bytes most significant byte first
(human order; the wire is little-endian); keys are 16 bytes or an ``aes128.BlockCipher`` made
from them (a session can build its ciphers once); FCnt is an int, 16-bit on the wire, 32-bit in
MIC and crypto. Every bad input raises ``errors.FrameError``.

The per-packet functions (build_data, compute_mic, crypt_frm_payload, verify_mic) reuse two
module buffers for the B0/Ai blocks: call them from one thread at a time.
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


import aes128
from errors import CryptoError, FrameError

MTYPE_JOIN_REQUEST = const(0)
MTYPE_JOIN_ACCEPT = const(1)
MTYPE_UNCONFIRMED_UP = const(2)
MTYPE_UNCONFIRMED_DOWN = const(3)
MTYPE_CONFIRMED_UP = const(4)
MTYPE_CONFIRMED_DOWN = const(5)
MTYPE_RFU = const(6)
MTYPE_PROPRIETARY = const(7)

MTYPE_NAMES = (
    "JoinRequest",
    "JoinAccept",
    "UnconfirmedDataUp",
    "UnconfirmedDataDown",
    "ConfirmedDataUp",
    "ConfirmedDataDown",
    "RFU",
    "Proprietary",
)

MAJOR_R1 = const(0)
MAX_FCNT_GAP = const(16384)
MAX_PHY_SIZE = const(255)
MAX_FOPTS_LEN = const(15)
JOIN_REQUEST_SIZE = const(23)
JOIN_ACCEPT_SIZES = (17, 33)

_FCTRL_ADR = const(0x80)
_FCTRL_ADR_ACK_REQ = const(0x40)
_FCTRL_ACK = const(0x20)
_FCTRL_FPENDING = const(0x10)
_FCTRL_CLASS_B = const(0x10)
_FHDR_MIN = const(7)
_DATA_MIN_SIZE = const(12)

try:
    _BYTES_TYPES = (bytes, bytearray, memoryview)
except NameError:
    _BYTES_TYPES = (bytes, bytearray)

_b0 = bytearray(16)
_ks = bytearray(16)


class Frame:
    """A decoded (or to-be-encoded) PHYPayload; attributes not used by its MType are None/empty.

    Every MType: ``mtype`` (0-7), ``major`` (MHDR bits 1:0; 0 = LoRaWAN R1), ``mic`` (4 bytes, or
    None for a still-encrypted JoinAccept), ``uplink`` (True for 0/2/4, False for 1/3/5, None for
    Proprietary), ``phy`` (the wire bytes when decoded).
    Data (2-5): ``dev_addr`` (int), ``adr``, ``adr_ack_req`` (uplink), ``class_b`` (uplink,
    LoRaWAN 1.0.2+), ``ack``, ``fpending`` (downlink), ``fopts`` (bytes, 0-15), ``fcnt`` (wire
    16-bit), ``fport`` (int or None), ``frm_payload`` (bytes, as on the wire: encrypted).
    JoinRequest: ``join_eui``, ``dev_eui`` (8 bytes MSB first), ``dev_nonce`` (int).
    JoinAccept: ``encrypted`` (the 16 or 32 bytes after MHDR; see otaa.decrypt_join_accept).
    Proprietary: ``payload`` (the bytes between MHDR and MIC).
    """

    def __init__(self, mtype, major=MAJOR_R1):
        self.mtype = mtype
        self.major = major
        self.uplink = _direction(mtype)
        self.mic = None
        self.phy = None
        self.dev_addr = None
        self.adr = False
        self.adr_ack_req = False
        self.class_b = False
        self.ack = False
        self.fpending = False
        self.fopts = b""
        self.fcnt = None
        self.fport = None
        self.frm_payload = b""
        self.join_eui = None
        self.dev_eui = None
        self.dev_nonce = None
        self.encrypted = None
        self.payload = None

    def is_data(self):
        """True for the four data MTypes (2-5)."""
        return MTYPE_UNCONFIRMED_UP <= self.mtype <= MTYPE_CONFIRMED_DOWN

    def fctrl(self):
        """The FCtrl byte these flags and FOpts encode (data frames)."""
        return _fctrl(
            self.uplink,
            self.adr,
            self.adr_ack_req,
            self.ack,
            self.fpending,
            self.class_b,
            len(self.fopts),
        )

    def __repr__(self):
        if self.is_data() and self.dev_addr is not None and self.fcnt is not None:
            return "<Frame %s dev_addr=%08x fcnt=%d fport=%s len=%d>" % (
                MTYPE_NAMES[self.mtype],
                self.dev_addr,
                self.fcnt,
                self.fport,
                len(self.frm_payload),
            )
        return "<Frame %s>" % MTYPE_NAMES[self.mtype]


def _direction(mtype):
    if mtype == MTYPE_PROPRIETARY or mtype == MTYPE_RFU:
        return None
    return mtype % 2 == 0


def mtype_name(mtype):
    """'UnconfirmedDataUp' etc. for an MType number 0-7."""
    return MTYPE_NAMES[mtype]


def _reversed(data):
    n = len(data)
    out = bytearray(n)
    for i in range(n):
        out[i] = data[n - 1 - i]
    return bytes(out)


def _u32(value, name):
    if not isinstance(value, int) or value < 0 or value > 0xFFFFFFFF:
        raise FrameError("%s: expected an int 0..0xFFFFFFFF, got %r" % (name, value))
    return value


def _uint(value, name, maximum):
    if not isinstance(value, int) or value < 0 or value > maximum:
        raise FrameError("%s: expected an int 0..%d, got %r" % (name, maximum, value))
    return value


def _bytes(value, name, size=None):
    if not isinstance(value, _BYTES_TYPES):
        raise FrameError("%s: expected bytes, got %s" % (name, type(value).__name__))
    if size is not None and len(value) != size:
        raise FrameError("%s: expected %d bytes, got %d" % (name, size, len(value)))
    return value


def _cipher(key, name):
    if key is None:
        raise FrameError("%s: key needed" % name)
    try:
        return aes128.cipher(key)
    except CryptoError:
        raise FrameError("%s: expected a 16-byte key" % name)


def _fctrl(uplink, adr, adr_ack_req, ack, fpending, class_b, fopts_len):
    fctrl = fopts_len
    if adr:
        fctrl |= _FCTRL_ADR
    if ack:
        fctrl |= _FCTRL_ACK
    if uplink:
        if adr_ack_req:
            fctrl |= _FCTRL_ADR_ACK_REQ
        if class_b:
            fctrl |= _FCTRL_CLASS_B
    elif fpending:
        fctrl |= _FCTRL_FPENDING
    return fctrl


def decode(phy):
    """Decode a PHYPayload (bytes-like, 5..255 bytes) into a ``Frame``; no key needed.

    Raises FrameError on: wrong length for the MType, MType 6 (RFU; LoRaWAN 1.1 rejoin), a
    FOptsLen reaching into the MIC, FPort 0 together with FOpts. Any MHDR major is decoded with
    the R1 layout and reported in ``frame.major``: a MAC must drop frames whose major is not 0.
    RFU bits (MHDR bits 4:2, FCtrl bit 6 on downlinks) are ignored.
    """
    _bytes(phy, "phy")
    n = len(phy)
    if n < 5:
        raise FrameError("phy: %d bytes, a frame has at least 5 (MHDR + MIC)" % n)
    if n > MAX_PHY_SIZE:
        raise FrameError("phy: %d bytes, a LoRa frame has at most %d" % (n, MAX_PHY_SIZE))
    phy = bytes(phy)
    mhdr = phy[0]
    mtype = mhdr >> 5
    frame = Frame(mtype, mhdr & 0x03)
    frame.phy = phy
    if mtype == MTYPE_RFU:
        raise FrameError("MType: 6 is RFU in LoRaWAN 1.0 (RejoinRequest is 1.1)")
    if mtype == MTYPE_JOIN_REQUEST:
        if n != JOIN_REQUEST_SIZE:
            raise FrameError("JoinRequest: expected 23 bytes, got %d" % n)
        frame.join_eui = _reversed(phy[1:9])
        frame.dev_eui = _reversed(phy[9:17])
        frame.dev_nonce = phy[17] | (phy[18] << 8)
        frame.mic = phy[19:23]
        return frame
    if mtype == MTYPE_JOIN_ACCEPT:
        if n not in JOIN_ACCEPT_SIZES:
            raise FrameError("JoinAccept: expected 17 or 33 bytes, got %d" % n)
        frame.encrypted = phy[1:]
        return frame
    frame.mic = phy[n - 4 :]
    if mtype == MTYPE_PROPRIETARY:
        frame.payload = phy[1 : n - 4]
        return frame
    if n < _DATA_MIN_SIZE:
        raise FrameError("data frame: expected at least 12 bytes, got %d" % n)
    frame.dev_addr = int.from_bytes(phy[1:5], "little")
    fctrl = phy[5]
    frame.fcnt = phy[6] | (phy[7] << 8)
    fopts_len = fctrl & 0x0F
    end = 8 + fopts_len
    if end > n - 4:
        raise FrameError(
            "FOptsLen: %d bytes of FOpts do not fit in a %d-byte frame" % (fopts_len, n)
        )
    frame.adr = bool(fctrl & _FCTRL_ADR)
    frame.ack = bool(fctrl & _FCTRL_ACK)
    if frame.uplink:
        frame.adr_ack_req = bool(fctrl & _FCTRL_ADR_ACK_REQ)
        frame.class_b = bool(fctrl & _FCTRL_CLASS_B)
    else:
        frame.fpending = bool(fctrl & _FCTRL_FPENDING)
    frame.fopts = phy[8:end]
    if end < n - 4:
        frame.fport = phy[end]
        frame.frm_payload = phy[end + 1 : n - 4]
        if frame.fport == 0 and fopts_len:
            raise FrameError("FPort 0 with FOpts: MAC commands may not be in both")
    return frame


def encode(frame):
    """Serialise a ``Frame`` as is (no crypto, MIC taken from ``frame.mic``) -> bytes.

    Data frames: frm_payload must already be encrypted; fport None needs an empty payload.
    JoinAccept: ``frame.encrypted`` (16 or 32 bytes) is written after the MHDR.
    """
    mtype = _uint(frame.mtype, "mtype", 7)
    if mtype == MTYPE_RFU:
        raise FrameError("MType: 6 is RFU in LoRaWAN 1.0 (RejoinRequest is 1.1)")
    mhdr = bytes(((mtype << 5) | _uint(frame.major, "major", 3),))
    if mtype == MTYPE_JOIN_ACCEPT:
        enc = _bytes(frame.encrypted, "encrypted")
        if len(enc) + 1 not in JOIN_ACCEPT_SIZES:
            raise FrameError("encrypted: expected 16 or 32 bytes, got %d" % len(enc))
        return mhdr + bytes(enc)
    mic = _bytes(frame.mic, "mic", 4)
    if mtype == MTYPE_JOIN_REQUEST:
        return (
            mhdr
            + _reversed(_bytes(frame.join_eui, "join_eui", 8))
            + _reversed(_bytes(frame.dev_eui, "dev_eui", 8))
            + _uint(frame.dev_nonce, "dev_nonce", 0xFFFF).to_bytes(2, "little")
            + bytes(mic)
        )
    if mtype == MTYPE_PROPRIETARY:
        out = mhdr + bytes(_bytes(frame.payload, "payload")) + bytes(mic)
        if len(out) > MAX_PHY_SIZE:
            raise FrameError(
                "phy: %d bytes, a LoRa frame has at most %d" % (len(out), MAX_PHY_SIZE)
            )
        return out
    buf = _data_frame(
        mtype,
        frame.major,
        frame.dev_addr,
        frame.fcnt,
        frame.fport,
        len(_bytes(frame.frm_payload, "frm_payload")),
        frame.adr,
        frame.adr_ack_req,
        frame.ack,
        frame.fpending,
        frame.fopts,
        frame.class_b,
    )
    n = len(buf)
    buf[n - 4 - len(frame.frm_payload) : n - 4] = frame.frm_payload
    buf[n - 4 :] = mic
    return bytes(buf)


def _data_frame(
    mtype,
    major,
    dev_addr,
    fcnt,
    fport,
    payload_len,
    adr,
    adr_ack_req,
    ack,
    fpending,
    fopts,
    class_b,
):
    # Validates and lays out MHDR | FHDR | FPort, leaving room for FRMPayload and the MIC.
    _uint(mtype, "mtype", 7)
    if mtype < MTYPE_UNCONFIRMED_UP or mtype > MTYPE_CONFIRMED_DOWN:
        raise FrameError("mtype: expected a data MType 2..5, got %r" % (mtype,))
    _uint(major, "major", 3)
    _u32(dev_addr, "dev_addr")
    _u32(fcnt, "fcnt")
    _bytes(fopts, "fopts")
    uplink = mtype % 2 == 0
    fopts_len = len(fopts)
    if fopts_len > MAX_FOPTS_LEN:
        raise FrameError("fopts: at most 15 bytes, got %d" % fopts_len)
    if fport is None:
        if payload_len:
            raise FrameError("fport: needed with a non-empty payload")
    else:
        _uint(fport, "fport", 255)
        if fport == 0 and fopts_len:
            raise FrameError("FPort 0 with FOpts: MAC commands may not be in both")
    if uplink and fpending:
        raise FrameError("fpending: downlink flag (bit 4 is ClassB on uplinks)")
    if not uplink and (adr_ack_req or class_b):
        raise FrameError("adr_ack_req/class_b: uplink flags (RFU on downlinks)")
    n = 1 + _FHDR_MIN + fopts_len + 4
    if fport is not None:
        n += 1 + payload_len
    if n > MAX_PHY_SIZE:
        raise FrameError(
            "payload: frame would be %d bytes, a LoRa frame has at most %d" % (n, MAX_PHY_SIZE)
        )
    buf = bytearray(n)
    buf[0] = (mtype << 5) | major
    buf[1] = dev_addr & 0xFF
    buf[2] = (dev_addr >> 8) & 0xFF
    buf[3] = (dev_addr >> 16) & 0xFF
    buf[4] = (dev_addr >> 24) & 0xFF
    buf[5] = _fctrl(uplink, adr, adr_ack_req, ack, fpending, class_b, fopts_len)
    buf[6] = fcnt & 0xFF
    buf[7] = (fcnt >> 8) & 0xFF
    buf[8 : 8 + fopts_len] = fopts
    if fport is not None:
        buf[8 + fopts_len] = fport
    return buf


def _block(blk, first, uplink, dev_addr, fcnt32, last):
    # B0 (first 0x49, last len(msg)) and Ai (first 0x01, last i): LoRaWAN 1.0 4.3.3 / 4.4.
    blk[0] = first
    blk[1] = 0
    blk[2] = 0
    blk[3] = 0
    blk[4] = 0
    blk[5] = 0 if uplink else 1
    blk[6] = dev_addr & 0xFF
    blk[7] = (dev_addr >> 8) & 0xFF
    blk[8] = (dev_addr >> 16) & 0xFF
    blk[9] = (dev_addr >> 24) & 0xFF
    blk[10] = fcnt32 & 0xFF
    blk[11] = (fcnt32 >> 8) & 0xFF
    blk[12] = (fcnt32 >> 16) & 0xFF
    blk[13] = (fcnt32 >> 24) & 0xFF
    blk[14] = 0
    blk[15] = last


def compute_mic(nwkskey, msg, uplink, dev_addr, fcnt32):
    """Data-frame MIC: first 4 bytes of AES-CMAC(NwkSKey, B0 | msg) -> bytes(4).

    msg: MHDR | FHDR | FPort | FRMPayload (the PHYPayload without its MIC, encrypted payload),
    uplink: bool (B0 Dir), dev_addr: int, fcnt32: the full 32-bit frame counter.
    """
    c = _cipher(nwkskey, "nwkskey")
    _bytes(msg, "msg")
    if len(msg) > 255:
        raise FrameError("msg: at most 255 bytes, got %d" % len(msg))
    _block(_b0, 0x49, uplink, _u32(dev_addr, "dev_addr"), _u32(fcnt32, "fcnt32"), len(msg))
    return c.cmac(msg, _b0)[:4]


def _crypt_into(c, src, dst, offset, uplink, dev_addr, fcnt32):
    n = len(src)
    a = _b0
    s = _ks
    i = 0
    while i < n:
        _block(a, 0x01, uplink, dev_addr, fcnt32, (i >> 4) + 1)
        c.encrypt_into(a, s)
        m = n - i
        if m > 16:
            m = 16
        for j in range(m):
            dst[offset + i + j] = src[i + j] ^ s[j]
        i += 16


def crypt_frm_payload(key, payload, uplink, dev_addr, fcnt32):
    """Encrypt or decrypt (same operation) an FRMPayload -> bytes of the same length.

    key: AppSKey for FPort > 0, NwkSKey for FPort 0. uplink: bool. dev_addr: int. fcnt32: the
    full 32-bit frame counter.
    """
    c = _cipher(key, "key")
    _bytes(payload, "payload")
    out = bytearray(len(payload))
    _crypt_into(c, payload, out, 0, uplink, _u32(dev_addr, "dev_addr"), _u32(fcnt32, "fcnt32"))
    return bytes(out)


def build_data(
    mtype,
    dev_addr,
    fcnt32,
    nwkskey,
    appskey,
    fport=None,
    payload=b"",
    adr=False,
    adr_ack_req=False,
    ack=False,
    fpending=False,
    fopts=b"",
    class_b=False,
    major=MAJOR_R1,
):
    """Build a complete data frame (device uplinks and server downlinks) -> PHYPayload bytes.

    mtype: 2/3/4/5 (MTYPE_*_UP/_DOWN; direction follows). dev_addr: int. fcnt32: 32-bit counter
    (the low 16 bits go on the wire, all 32 into MIC and crypto). nwkskey: key for the MIC (and
    the payload when fport is 0); appskey: key for fport > 0 (may be None otherwise). fport: None
    (no FPort, payload must be empty) or 0..255. payload: plaintext bytes. Flags: adr,
    adr_ack_req and class_b (uplink), ack, fpending (downlink). fopts: 0..15 bytes of encoded
    MAC commands (see maccmd.encode), not allowed with fport 0.
    """
    _bytes(payload, "payload")
    buf = _data_frame(
        mtype,
        major,
        dev_addr,
        fcnt32,
        fport,
        len(payload),
        adr,
        adr_ack_req,
        ack,
        fpending,
        fopts,
        class_b,
    )
    uplink = mtype % 2 == 0
    mic_cipher = _cipher(nwkskey, "nwkskey")
    n = len(buf)
    if payload:
        c = mic_cipher if fport == 0 else _cipher(appskey, "appskey")
        _crypt_into(c, payload, buf, n - 4 - len(payload), uplink, dev_addr, fcnt32)
    _block(_b0, 0x49, uplink, dev_addr, fcnt32, n - 4)
    tag = mic_cipher.cmac(memoryview(buf)[: n - 4], _b0)
    buf[n - 4] = tag[0]
    buf[n - 3] = tag[1]
    buf[n - 2] = tag[2]
    buf[n - 1] = tag[3]
    return bytes(buf)


def _as_data_frame(frame):
    if not isinstance(frame, Frame):
        frame = decode(frame)
    if not frame.is_data():
        raise FrameError("frame: expected a data frame, got %s" % MTYPE_NAMES[frame.mtype])
    if frame.phy is None:
        frame.phy = encode(frame)
    return frame


def _full_fcnt(frame, fcnt32):
    if fcnt32 is None:
        return frame.fcnt
    _u32(fcnt32, "fcnt32")
    if fcnt32 & 0xFFFF != frame.fcnt:
        raise FrameError(
            "fcnt32: low 16 bits 0x%04x differ from the frame's FCnt 0x%04x"
            % (fcnt32 & 0xFFFF, frame.fcnt)
        )
    return fcnt32


def verify_mic(frame, nwkskey, fcnt32=None):
    """True if a data frame's MIC is right for nwkskey.

    frame: a ``Frame`` (from decode) or PHYPayload bytes. fcnt32: the full 32-bit counter
    (see fcnt32()); None uses the 16-bit wire value, right while the counter is below 65536.
    """
    frame = _as_data_frame(frame)
    full = _full_fcnt(frame, fcnt32)
    phy = frame.phy
    n = len(phy)
    expected = compute_mic(nwkskey, memoryview(phy)[: n - 4], frame.uplink, frame.dev_addr, full)
    diff = 0
    for i in range(4):
        diff |= expected[i] ^ phy[n - 4 + i]
    return diff == 0


def decrypt_frm_payload(frame, nwkskey, appskey, fcnt32=None):
    """Plaintext FRMPayload of a data frame -> bytes (b'' when there is none).

    frame: a ``Frame`` or PHYPayload bytes. The key follows FPort: nwkskey for 0, appskey
    otherwise (the other may be None). fcnt32 as in verify_mic.
    """
    frame = _as_data_frame(frame)
    if frame.fport is None or not frame.frm_payload:
        return b""
    full = _full_fcnt(frame, fcnt32)
    if frame.fport == 0:
        key = _cipher(nwkskey, "nwkskey")
    else:
        key = _cipher(appskey, "appskey")
    out = bytearray(len(frame.frm_payload))
    _crypt_into(key, frame.frm_payload, out, 0, frame.uplink, frame.dev_addr, full)
    return bytes(out)


def fcnt32(last_fcnt32, wire16, max_gap=MAX_FCNT_GAP):
    """Rebuild the 32-bit frame counter from the 16 bits on the wire -> int, or None to drop.

    last_fcnt32: the last accepted 32-bit counter in this direction, or None when nothing was
    received yet in this session (then the result is wire16). The result is the first value
    >= last_fcnt32 whose low 16 bits are wire16, with gap = result - last_fcnt32:
    - gap 0: the same counter again (a confirmed-frame retransmission, or a replay: the caller
      decides, e.g. by comparing the payload);
    - 0 < gap <= max_gap: a new frame (gap - 1 frames were lost);
    - gap > max_gap: None. LoRaWAN 1.0.x MAX_FCNT_GAP (16384): the frames in between are too
      many to have been lost, so this is an old frame replayed (wire16 just below the last
      one gives gap ~65535) or the device reset its counter; drop it. Pass max_gap=0xFFFF
      for LoRaWAN 1.0.4 behaviour (no gap limit).
    None as well when the counter would pass 0xFFFFFFFF (the session must be rejoined).
    """
    _uint(wire16, "wire16", 0xFFFF)
    if last_fcnt32 is None:
        return wire16
    _u32(last_fcnt32, "last_fcnt32")
    gap = (wire16 - last_fcnt32) & 0xFFFF
    if gap > max_gap:
        return None
    full = last_fcnt32 + gap
    if full > 0xFFFFFFFF:
        return None
    return full
