"""LoRaWAN 1.0.x over-the-air activation: JoinRequest, JoinAccept, session keys, DevNonce policy.

Device side needs AES *encrypt* only (a JoinAccept is decrypted by AES-encrypting it). The
server side (``build_join_accept``, for the network-server emulator) encrypts a JoinAccept with
AES *decrypt*, which ``aes128.decrypt_block`` provides on the host.
Conventions as in lorawan: EUIs 8 bytes MSB first, keys 16 bytes, DevAddr / nonces / NetID ints.
Every bad input raises ``errors.FrameError``.
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


import aes128
import lorawan
from errors import CryptoError, FrameError

CFLIST_SIZE = const(16)
CFLIST_TYPE_FREQUENCIES = const(0)
DEV_NONCE_COUNT = const(0x10000)
_MHDR_JOIN_REQUEST = const(0x00)
_MHDR_JOIN_ACCEPT = const(0x20)


def _cipher(key, name):
    if key is None:
        raise FrameError("%s: key needed" % name)
    try:
        return aes128.cipher(key)
    except CryptoError:
        raise FrameError("%s: expected a 16-byte key" % name)


def _uint(value, name, maximum):
    if not isinstance(value, int) or value < 0 or value > maximum:
        raise FrameError("%s: expected an int 0..%d, got %r" % (name, maximum, value))
    return value


def _eui(value, name):
    if not isinstance(value, (bytes, bytearray)) or len(value) != 8:
        raise FrameError("%s: expected 8 bytes (MSB first)" % name)
    return value


def _le(value, size):
    return value.to_bytes(size, "little")


def join_request_mic(appkey, msg):
    """JoinRequest MIC: first 4 bytes of AES-CMAC(AppKey, MHDR | JoinEUI | DevEUI | DevNonce).

    msg: the 19 wire bytes before the MIC. -> bytes(4)
    """
    return _cipher(appkey, "appkey").cmac(msg)[:4]


def build_join_request(join_eui, dev_eui, dev_nonce, appkey):
    """A complete JoinRequest PHYPayload (23 bytes).

    join_eui, dev_eui: 8 bytes MSB first (JoinEUI is 1.0's AppEUI). dev_nonce: int 0..65535
    (see DevNoncePolicy). appkey: 16 bytes.
    """
    frame = lorawan.Frame(lorawan.MTYPE_JOIN_REQUEST)
    frame.join_eui = _eui(join_eui, "join_eui")
    frame.dev_eui = _eui(dev_eui, "dev_eui")
    frame.dev_nonce = _uint(dev_nonce, "dev_nonce", 0xFFFF)
    frame.mic = b"\x00\x00\x00\x00"
    msg = lorawan.encode(frame)[:19]
    return msg + join_request_mic(appkey, msg)


def verify_join_request(frame, appkey):
    """True if a JoinRequest's MIC is right for appkey. frame: lorawan.Frame or PHYPayload."""
    if not isinstance(frame, lorawan.Frame):
        frame = lorawan.decode(frame)
    if frame.mtype != lorawan.MTYPE_JOIN_REQUEST:
        raise FrameError("frame: expected a JoinRequest, got %s" % lorawan.MTYPE_NAMES[frame.mtype])
    phy = frame.phy if frame.phy is not None else lorawan.encode(frame)
    return join_request_mic(appkey, phy[:19]) == phy[19:23]


def encode_cflist(frequencies):
    """EU868 CFList (16 bytes): up to 5 channel frequencies in Hz (0 = no channel), CFListType 0.

    Each frequency must be a multiple of 100 Hz below 2**24 * 100 Hz.
    """
    if len(frequencies) > 5:
        raise FrameError("cflist: at most 5 frequencies, got %d" % len(frequencies))
    out = bytearray(CFLIST_SIZE)
    for i in range(len(frequencies)):
        hz = _uint(frequencies[i], "cflist frequency", 0xFFFFFF * 100)
        if hz % 100:
            raise FrameError("cflist frequency: expected a multiple of 100 Hz, got %d" % hz)
        step = hz // 100
        out[3 * i] = step & 0xFF
        out[3 * i + 1] = (step >> 8) & 0xFF
        out[3 * i + 2] = step >> 16
    out[15] = CFLIST_TYPE_FREQUENCIES
    return bytes(out)


def decode_cflist(cflist):
    """EU868 CFList (16 bytes, CFListType 0) -> list of 5 frequencies in Hz (0 = no channel)."""
    if not isinstance(cflist, (bytes, bytearray)) or len(cflist) != CFLIST_SIZE:
        raise FrameError("cflist: expected 16 bytes")
    if cflist[15] != CFLIST_TYPE_FREQUENCIES:
        raise FrameError("cflist: CFListType %d, expected 0 (frequencies)" % cflist[15])
    return [
        (cflist[i] | (cflist[i + 1] << 8) | (cflist[i + 2] << 16)) * 100 for i in range(0, 15, 3)
    ]


class JoinAccept:
    """A decrypted JoinAccept.

    join_nonce (int, 24-bit; 1.0's AppNonce), net_id (int, 24-bit), dev_addr (int),
    dl_settings (the wire byte), rx1_dr_offset (0-7), rx2_dr (0-15), rx_delay (wire value 0-15),
    rx1_delay_s (seconds to RX1: rx_delay, or 1 when it is 0), cflist (16 bytes or None),
    mic (4 bytes), mic_valid (bool: False means wrong AppKey or a corrupt frame; then every
    other field is garbage), plaintext (the decrypted PHYPayload).
    """

    def __init__(self, plaintext, mic_valid):
        p = plaintext
        self.plaintext = p
        self.mic_valid = mic_valid
        self.join_nonce = p[1] | (p[2] << 8) | (p[3] << 16)
        self.net_id = p[4] | (p[5] << 8) | (p[6] << 16)
        self.dev_addr = int.from_bytes(p[7:11], "little")
        self.dl_settings = p[11]
        self.rx1_dr_offset = (p[11] >> 4) & 0x07
        self.rx2_dr = p[11] & 0x0F
        self.rx_delay = p[12] & 0x0F
        self.rx1_delay_s = self.rx_delay or 1
        self.cflist = p[13:29] if len(p) == 33 else None
        self.mic = p[len(p) - 4 :]

    def __repr__(self):
        return "<JoinAccept dev_addr=%08x net_id=%06x mic_valid=%s>" % (
            self.dev_addr,
            self.net_id,
            self.mic_valid,
        )


def decrypt_join_accept(phy, appkey):
    """Device side: decrypt a JoinAccept PHYPayload (17 or 33 bytes) -> JoinAccept.

    phy: bytes or a lorawan.Frame. The MIC is checked (JoinAccept.mic_valid); the caller must
    drop the accept when it is False. Uses AES encrypt only.
    """
    if isinstance(phy, lorawan.Frame):
        frame = phy
    else:
        frame = lorawan.decode(phy)
    if frame.mtype != lorawan.MTYPE_JOIN_ACCEPT:
        raise FrameError("frame: expected a JoinAccept, got %s" % lorawan.MTYPE_NAMES[frame.mtype])
    c = _cipher(appkey, "appkey")
    enc = frame.encrypted
    n = len(enc)
    plain = bytearray(n + 1)
    plain[0] = (frame.mtype << 5) | frame.major
    block = bytearray(16)
    for off in range(0, n, 16):
        c.encrypt_into(enc[off : off + 16], block)
        plain[1 + off : 17 + off] = block
    plain = bytes(plain)
    mic = c.cmac(memoryview(plain)[: n - 3])[:4]
    return JoinAccept(plain, mic == plain[n - 3 :])


def build_join_accept(
    appkey,
    join_nonce,
    net_id,
    dev_addr,
    rx1_dr_offset=0,
    rx2_dr=0,
    rx_delay=1,
    cflist=None,
    major=0,
):
    """Server side: a complete, encrypted JoinAccept PHYPayload (17 bytes, 33 with a CFList).

    appkey: 16 bytes. join_nonce, net_id: ints 0..0xFFFFFF. dev_addr: int. rx1_dr_offset 0..7,
    rx2_dr 0..15 (DLSettings). rx_delay: RxDelay wire value 0..15 (seconds; 0 means 1).
    cflist: None or 16 bytes (see encode_cflist). Host only: uses aes128.decrypt_block.
    """
    _uint(join_nonce, "join_nonce", 0xFFFFFF)
    _uint(net_id, "net_id", 0xFFFFFF)
    _uint(dev_addr, "dev_addr", 0xFFFFFFFF)
    _uint(rx1_dr_offset, "rx1_dr_offset", 7)
    _uint(rx2_dr, "rx2_dr", 15)
    _uint(rx_delay, "rx_delay", 15)
    _uint(major, "major", 3)
    if cflist is not None and (
        not isinstance(cflist, (bytes, bytearray)) or len(cflist) != CFLIST_SIZE
    ):
        raise FrameError("cflist: expected None or 16 bytes")
    c = _cipher(appkey, "appkey")
    msg = (
        bytes((_MHDR_JOIN_ACCEPT | major,))
        + _le(join_nonce, 3)
        + _le(net_id, 3)
        + _le(dev_addr, 4)
        + bytes(((rx1_dr_offset << 4) | rx2_dr, rx_delay))
        + (bytes(cflist) if cflist is not None else b"")
    )
    plain = msg[1:] + c.cmac(msg)[:4]
    out = msg[:1]
    for off in range(0, len(plain), 16):
        out += aes128.decrypt_block(appkey, plain[off : off + 16])
    return out


def derive_session_keys(appkey, join_nonce, net_id, dev_nonce):
    """LoRaWAN 1.0 session keys -> (nwkskey, appskey), 16 bytes each.

    NwkSKey = aes128_encrypt(AppKey, 0x01 | JoinNonce | NetID | DevNonce | pad16),
    AppSKey the same with 0x02. join_nonce, net_id: ints 0..0xFFFFFF; dev_nonce: 0..0xFFFF.
    """
    c = _cipher(appkey, "appkey")
    block = bytearray(16)
    block[1:4] = _le(_uint(join_nonce, "join_nonce", 0xFFFFFF), 3)
    block[4:7] = _le(_uint(net_id, "net_id", 0xFFFFFF), 3)
    block[7:9] = _le(_uint(dev_nonce, "dev_nonce", 0xFFFF), 2)
    block[0] = 0x01
    nwkskey = c.encrypt(block)
    block[0] = 0x02
    appskey = c.encrypt(block)
    return nwkskey, appskey


class MemoryNonceStore:
    """A DevNoncePolicy store kept in RAM (tests, simulator): ``load()`` / ``save(value)``."""

    def __init__(self, value=None):
        self.value = value

    def load(self):
        return self.value

    def save(self, value):
        self.value = value


class DevNoncePolicy:
    """Hands out DevNonces that are never reused, across reboots.

    LoRaWAN 1.0.4 style: a counter starting at 0, incremented per JoinRequest. Pycom's 1.0.2
    stack draws random nonces instead; a 1.0.2 server only rejects nonces it has already seen,
    so a persisted counter is valid there too (a value a random nonce already used is rejected
    once; the next join attempt uses the next value).
    store: an object with ``load()`` -> int or None (nothing stored yet) and ``save(int)``,
    holding one 32-bit int: the number of nonces used so far (the sensor keeps it in NVS).
    ``next()`` saves before it returns, so a reset after sending can never reuse a value.
    After 65536 joins no nonce is left: ``next()`` raises FrameError (re-provision the AppKey).
    """

    def __init__(self, store):
        self._store = store
        value = store.load()
        if value is None:
            value = 0
        if not isinstance(value, int) or value < 0 or value > DEV_NONCE_COUNT:
            raise FrameError("dev_nonce store: expected an int 0..65536, got %r" % (value,))
        self._used = value

    def used(self):
        """How many nonces have been handed out (the persisted value)."""
        return self._used

    def remaining(self):
        """How many nonces are left (0 once all 65536 were used)."""
        return DEV_NONCE_COUNT - self._used

    def next(self):
        """The next DevNonce (int 0..65535), persisted as used before it is returned."""
        nonce = self._used
        if nonce >= DEV_NONCE_COUNT:
            raise FrameError("dev_nonce: all 65536 values used; re-provision the AppKey")
        self._store.save(nonce + 1)
        self._used = nonce + 1
        return nonce
