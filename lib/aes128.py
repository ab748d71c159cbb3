"""AES-128 block encryption and AES-CMAC (RFC 4493) for LoRaWAN MICs, keys and payload crypto.

Backend picked at import, first that works: Pycom ``crypto.AES`` (hardware), MicroPython
``cryptolib``, CPython ``cryptography``, then a pure-Python table implementation (what runs under
the wasm MicroPython). ``BACKEND`` names the one in use. Devices only ever need AES *encrypt*;
``decrypt_block`` exists for the host-side network-server emulator (JoinAccept encryption).

API: ``AES(key)`` (key: 16 bytes; the selected backend's class) and ``PureAES(key)`` give objects
with ``encrypt(block) -> bytes``, ``encrypt_into(block, out)`` (16-byte buffers, may be the same
one; no allocation in the pure backend) and ``cmac(data, head=None) -> 16 bytes`` (subkeys are
cached per object: make one per session key). ``cipher(key_or_object)``, ``encrypt_block(key,
block)``, ``cmac(key, data)``, ``decrypt_block(key, block)`` (host). Bad sizes: CryptoError.
"""

from errors import CryptoError

try:
    _BYTES_TYPES = (bytes, bytearray, memoryview)
except NameError:  # a port built without memoryview
    _BYTES_TYPES = (bytes, bytearray)

BLOCK_SIZE = 16
KEY_SIZE = 16


def _check(value, name):
    if not isinstance(value, _BYTES_TYPES) or len(value) != 16:
        if isinstance(value, _BYTES_TYPES):
            raise CryptoError("%s: expected 16 bytes, got %d" % (name, len(value)))
        raise CryptoError("%s: expected 16 bytes, got %s" % (name, type(value).__name__))


def _make_tables():
    # S-box from the multiplicative inverse in GF(2^8) and the affine map (FIPS-197 5.1.1);
    # XT is multiplication by x (0x02) in GF(2^8).
    sbox = bytearray(256)
    p = 1
    q = 1
    while True:
        p = p ^ ((p << 1) & 0xFF) ^ (0x1B if p & 0x80 else 0)
        q ^= q << 1
        q ^= q << 2
        q ^= q << 4
        q &= 0xFF
        if q & 0x80:
            q ^= 0x09
        x = q
        for shift in (1, 2, 3, 4):
            x ^= ((q << shift) | (q >> (8 - shift))) & 0xFF
        sbox[p] = x ^ 0x63
        if p == 1:
            break
    sbox[0] = 0x63
    xt = bytearray(256)
    for i in range(256):
        xt[i] = ((i << 1) ^ (0x1B if i & 0x80 else 0)) & 0xFF
    return bytes(sbox), bytes(xt)


_SBOX, _XT = _make_tables()
del _make_tables


def _expand_key(key):
    """The 11 round keys (FIPS-197 5.2) as a tuple of 16-byte bytes objects."""
    S = _SBOX
    w = bytearray(176)
    w[0:16] = key
    rcon = 1
    for i in range(16, 176, 4):
        a = w[i - 4]
        b = w[i - 3]
        c = w[i - 2]
        d = w[i - 1]
        if i % 16 == 0:
            t = a
            a = S[b] ^ rcon
            b = S[c]
            c = S[d]
            d = S[t]
            rcon = _XT[rcon]
        w[i] = w[i - 16] ^ a
        w[i + 1] = w[i - 15] ^ b
        w[i + 2] = w[i - 14] ^ c
        w[i + 3] = w[i - 13] ^ d
    return tuple(bytes(w[j : j + 16]) for j in range(0, 176, 16))


def _encrypt_rounds(rks, block, out):
    # Fully unrolled: the state lives in 16 locals (no list, no tuple packing, no allocation).
    # Each column: a..d = SubBytes(ShiftRows(state)), then MixColumns as
    # out_i = a_i ^ (a ^ b ^ c ^ d) ^ xtime(a_i ^ a_i+1), then AddRoundKey.
    S = _SBOX
    XT = _XT
    r = rks[0]
    s0 = block[0] ^ r[0]
    s1 = block[1] ^ r[1]
    s2 = block[2] ^ r[2]
    s3 = block[3] ^ r[3]
    s4 = block[4] ^ r[4]
    s5 = block[5] ^ r[5]
    s6 = block[6] ^ r[6]
    s7 = block[7] ^ r[7]
    s8 = block[8] ^ r[8]
    s9 = block[9] ^ r[9]
    s10 = block[10] ^ r[10]
    s11 = block[11] ^ r[11]
    s12 = block[12] ^ r[12]
    s13 = block[13] ^ r[13]
    s14 = block[14] ^ r[14]
    s15 = block[15] ^ r[15]
    for i in range(1, 9, 2):
        r = rks[i]
        a = S[s0]
        b = S[s5]
        c = S[s10]
        d = S[s15]
        u = a ^ b ^ c ^ d
        t0 = a ^ u ^ XT[a ^ b] ^ r[0]
        t1 = b ^ u ^ XT[b ^ c] ^ r[1]
        t2 = c ^ u ^ XT[c ^ d] ^ r[2]
        t3 = d ^ u ^ XT[d ^ a] ^ r[3]
        a = S[s4]
        b = S[s9]
        c = S[s14]
        d = S[s3]
        u = a ^ b ^ c ^ d
        t4 = a ^ u ^ XT[a ^ b] ^ r[4]
        t5 = b ^ u ^ XT[b ^ c] ^ r[5]
        t6 = c ^ u ^ XT[c ^ d] ^ r[6]
        t7 = d ^ u ^ XT[d ^ a] ^ r[7]
        a = S[s8]
        b = S[s13]
        c = S[s2]
        d = S[s7]
        u = a ^ b ^ c ^ d
        t8 = a ^ u ^ XT[a ^ b] ^ r[8]
        t9 = b ^ u ^ XT[b ^ c] ^ r[9]
        t10 = c ^ u ^ XT[c ^ d] ^ r[10]
        t11 = d ^ u ^ XT[d ^ a] ^ r[11]
        a = S[s12]
        b = S[s1]
        c = S[s6]
        d = S[s11]
        u = a ^ b ^ c ^ d
        t12 = a ^ u ^ XT[a ^ b] ^ r[12]
        t13 = b ^ u ^ XT[b ^ c] ^ r[13]
        t14 = c ^ u ^ XT[c ^ d] ^ r[14]
        t15 = d ^ u ^ XT[d ^ a] ^ r[15]
        r = rks[i + 1]
        a = S[t0]
        b = S[t5]
        c = S[t10]
        d = S[t15]
        u = a ^ b ^ c ^ d
        s0 = a ^ u ^ XT[a ^ b] ^ r[0]
        s1 = b ^ u ^ XT[b ^ c] ^ r[1]
        s2 = c ^ u ^ XT[c ^ d] ^ r[2]
        s3 = d ^ u ^ XT[d ^ a] ^ r[3]
        a = S[t4]
        b = S[t9]
        c = S[t14]
        d = S[t3]
        u = a ^ b ^ c ^ d
        s4 = a ^ u ^ XT[a ^ b] ^ r[4]
        s5 = b ^ u ^ XT[b ^ c] ^ r[5]
        s6 = c ^ u ^ XT[c ^ d] ^ r[6]
        s7 = d ^ u ^ XT[d ^ a] ^ r[7]
        a = S[t8]
        b = S[t13]
        c = S[t2]
        d = S[t7]
        u = a ^ b ^ c ^ d
        s8 = a ^ u ^ XT[a ^ b] ^ r[8]
        s9 = b ^ u ^ XT[b ^ c] ^ r[9]
        s10 = c ^ u ^ XT[c ^ d] ^ r[10]
        s11 = d ^ u ^ XT[d ^ a] ^ r[11]
        a = S[t12]
        b = S[t1]
        c = S[t6]
        d = S[t11]
        u = a ^ b ^ c ^ d
        s12 = a ^ u ^ XT[a ^ b] ^ r[12]
        s13 = b ^ u ^ XT[b ^ c] ^ r[13]
        s14 = c ^ u ^ XT[c ^ d] ^ r[14]
        s15 = d ^ u ^ XT[d ^ a] ^ r[15]
    r = rks[9]
    a = S[s0]
    b = S[s5]
    c = S[s10]
    d = S[s15]
    u = a ^ b ^ c ^ d
    t0 = a ^ u ^ XT[a ^ b] ^ r[0]
    t1 = b ^ u ^ XT[b ^ c] ^ r[1]
    t2 = c ^ u ^ XT[c ^ d] ^ r[2]
    t3 = d ^ u ^ XT[d ^ a] ^ r[3]
    a = S[s4]
    b = S[s9]
    c = S[s14]
    d = S[s3]
    u = a ^ b ^ c ^ d
    t4 = a ^ u ^ XT[a ^ b] ^ r[4]
    t5 = b ^ u ^ XT[b ^ c] ^ r[5]
    t6 = c ^ u ^ XT[c ^ d] ^ r[6]
    t7 = d ^ u ^ XT[d ^ a] ^ r[7]
    a = S[s8]
    b = S[s13]
    c = S[s2]
    d = S[s7]
    u = a ^ b ^ c ^ d
    t8 = a ^ u ^ XT[a ^ b] ^ r[8]
    t9 = b ^ u ^ XT[b ^ c] ^ r[9]
    t10 = c ^ u ^ XT[c ^ d] ^ r[10]
    t11 = d ^ u ^ XT[d ^ a] ^ r[11]
    a = S[s12]
    b = S[s1]
    c = S[s6]
    d = S[s11]
    u = a ^ b ^ c ^ d
    t12 = a ^ u ^ XT[a ^ b] ^ r[12]
    t13 = b ^ u ^ XT[b ^ c] ^ r[13]
    t14 = c ^ u ^ XT[c ^ d] ^ r[14]
    t15 = d ^ u ^ XT[d ^ a] ^ r[15]
    r = rks[10]
    out[0] = S[t0] ^ r[0]
    out[1] = S[t5] ^ r[1]
    out[2] = S[t10] ^ r[2]
    out[3] = S[t15] ^ r[3]
    out[4] = S[t4] ^ r[4]
    out[5] = S[t9] ^ r[5]
    out[6] = S[t14] ^ r[6]
    out[7] = S[t3] ^ r[7]
    out[8] = S[t8] ^ r[8]
    out[9] = S[t13] ^ r[9]
    out[10] = S[t2] ^ r[10]
    out[11] = S[t7] ^ r[11]
    out[12] = S[t12] ^ r[12]
    out[13] = S[t1] ^ r[13]
    out[14] = S[t6] ^ r[14]
    out[15] = S[t11] ^ r[15]


class BlockCipher:
    """Common part of every backend: ``encrypt``, ``cmac``. Subclasses provide ``encrypt_into``."""

    def __init__(self):
        self._x = bytearray(16)
        self._k1 = None
        self._k2 = None

    def encrypt(self, block):
        """AES-128 encrypt one 16-byte block; returns 16 new bytes."""
        out = bytearray(16)
        self.encrypt_into(block, out)
        return bytes(out)

    def _subkeys(self):
        # RFC 4493 2.3: L = AES(K, 0^128); K1 = L << 1 (^ 0x87), K2 = K1 << 1 (^ 0x87).
        if self._k1 is None:
            x = self._x
            for j in range(16):
                x[j] = 0
            self.encrypt_into(x, x)
            k1 = bytearray(16)
            k2 = bytearray(16)
            _double(x, k1)
            _double(k1, k2)
            self._k1 = bytes(k1)
            self._k2 = bytes(k2)
        return self._k1, self._k2

    def cmac(self, data, head=None):
        """AES-CMAC (RFC 4493) of ``head | data``; returns the 16-byte tag.

        data: bytes-like, any length (0 included). head: None or exactly one 16-byte block
        processed before data (the LoRaWAN B0 block), which saves a concatenation.
        """
        k1, k2 = self._subkeys()
        x = self._x
        for j in range(16):
            x[j] = 0
        n = len(data)
        src = data
        if head is not None:
            if len(head) != 16:
                raise CryptoError("head: expected 16 bytes, got %d" % len(head))
            if n == 0:
                src = head
                n = 16
            else:
                for j in range(16):
                    x[j] ^= head[j]
                self.encrypt_into(x, x)
        off = 0
        while n - off > 16:
            for j in range(16):
                x[j] ^= src[off + j]
            self.encrypt_into(x, x)
            off += 16
        rem = n - off
        if rem == 16:
            for j in range(16):
                x[j] ^= src[off + j] ^ k1[j]
        else:
            for j in range(rem):
                x[j] ^= src[off + j]
            x[rem] ^= 0x80
            for j in range(16):
                x[j] ^= k2[j]
        self.encrypt_into(x, x)
        return bytes(x)

    def __repr__(self):
        return "<%s AES-128>" % BACKEND


def _double(src, dst):
    carry = 0
    for j in range(15, -1, -1):
        v = src[j]
        dst[j] = ((v << 1) | carry) & 0xFF
        carry = v >> 7
    if src[0] & 0x80:
        dst[15] ^= 0x87


class PureAES(BlockCipher):
    """Pure-Python AES-128 (encrypt only). Always importable, whatever BACKEND is."""

    def __init__(self, key):
        _check(key, "key")
        BlockCipher.__init__(self)
        self._rks = _expand_key(key)

    def encrypt_into(self, block, out):
        """Encrypt the 16-byte ``block`` into the writable 16-byte ``out`` (may be ``block``)."""
        if len(block) != 16:
            raise CryptoError("block: expected 16 bytes, got %d" % len(block))
        if len(out) != 16:
            raise CryptoError("out: expected 16 bytes, got %d" % len(out))
        _encrypt_rounds(self._rks, block, out)


AES = None
BACKEND = None

try:
    import crypto as _pycom_crypto

    _PYCOM_ECB = _pycom_crypto.AES.MODE_ECB

    class _PycomAES(BlockCipher):
        def __init__(self, key):
            _check(key, "key")
            BlockCipher.__init__(self)
            self._aes = _pycom_crypto.AES(bytes(key), _PYCOM_ECB)

        def encrypt_into(self, block, out):
            if len(block) != 16:
                raise CryptoError("block: expected 16 bytes, got %d" % len(block))
            if len(out) != 16:
                raise CryptoError("out: expected 16 bytes, got %d" % len(out))
            out[:] = self._aes.encrypt(block)

    AES = _PycomAES
    BACKEND = "pycom"
except (ImportError, AttributeError):
    pass

if AES is None:
    try:
        try:
            import cryptolib as _cryptolib
        except ImportError:
            import ucryptolib as _cryptolib
        _cryptolib.aes(bytes(16), 1).encrypt(bytes(16))

        class _CryptolibAES(BlockCipher):
            def __init__(self, key):
                _check(key, "key")
                BlockCipher.__init__(self)
                self._aes = _cryptolib.aes(bytes(key), 1)

            def encrypt_into(self, block, out):
                if len(block) != 16:
                    raise CryptoError("block: expected 16 bytes, got %d" % len(block))
                if len(out) != 16:
                    raise CryptoError("out: expected 16 bytes, got %d" % len(out))
                self._aes.encrypt(block, out)

        AES = _CryptolibAES
        BACKEND = "cryptolib"
    except (ImportError, AttributeError, TypeError, ValueError):
        pass

if AES is None:
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher as _Cipher
        from cryptography.hazmat.primitives.ciphers import algorithms as _algorithms
        from cryptography.hazmat.primitives.ciphers import modes as _modes

        class _CryptographyAES(BlockCipher):
            def __init__(self, key):
                _check(key, "key")
                BlockCipher.__init__(self)
                # An ECB context that is never finalised encrypts any number of blocks.
                self._enc = _Cipher(_algorithms.AES(bytes(key)), _modes.ECB()).encryptor()

            def encrypt_into(self, block, out):
                if len(block) != 16:
                    raise CryptoError("block: expected 16 bytes, got %d" % len(block))
                if len(out) != 16:
                    raise CryptoError("out: expected 16 bytes, got %d" % len(out))
                out[:] = self._enc.update(block)

            def encrypt(self, block):
                if len(block) != 16:
                    raise CryptoError("block: expected 16 bytes, got %d" % len(block))
                return self._enc.update(block)

        AES = _CryptographyAES
        BACKEND = "cryptography"
    except ImportError:
        pass

if AES is None:
    AES = PureAES
    BACKEND = "pure"


def cipher(key):
    """An ``AES`` object for ``key`` (16 bytes); an existing BlockCipher is returned as is.

    Lets callers pass either raw keys or ciphers made once per session (saves key expansion).
    """
    if isinstance(key, BlockCipher):
        return key
    return AES(key)


def encrypt_block(key, block):
    """AES-128 encrypt one block: key 16 bytes (or a BlockCipher), block 16 bytes -> 16 bytes."""
    return cipher(key).encrypt(block)


def cmac(key, data):
    """AES-CMAC (RFC 4493): key 16 bytes (or a BlockCipher), data any length -> 16-byte tag."""
    return cipher(key).cmac(data)


_inv_tables = None


def _inverse_tables():
    global _inv_tables
    if _inv_tables is None:
        inv = bytearray(256)
        for i in range(256):
            inv[_SBOX[i]] = i
        mul = []
        for factor in (9, 11, 13, 14):
            t = bytearray(256)
            for i in range(256):
                a = i
                f = factor
                r = 0
                while f:
                    if f & 1:
                        r ^= a
                    a = _XT[a]
                    f >>= 1
                t[i] = r
            mul.append(bytes(t))
        _inv_tables = (bytes(inv), mul[0], mul[1], mul[2], mul[3])
    return _inv_tables


def decrypt_block(key, block):
    """AES-128 *decrypt* one block: key 16 bytes, block 16 bytes -> 16 bytes.

    Host side only (the network server encrypts a JoinAccept with AES decrypt). Uses
    ``cryptography`` when present, else a slow pure-Python inverse cipher whose tables are
    built on first use, so device RAM is untouched unless this is called.
    """
    if BACKEND == "cryptography":
        _check(key, "key")
        if len(block) != 16:
            raise CryptoError("block: expected 16 bytes, got %d" % len(block))
        dec = _Cipher(_algorithms.AES(bytes(key)), _modes.ECB()).decryptor()
        return dec.update(bytes(block)) + dec.finalize()
    return pure_decrypt_block(key, block)


def pure_decrypt_block(key, block):
    """Pure-Python AES-128 decrypt of one block (what decrypt_block falls back to)."""
    _check(key, "key")
    if len(block) != 16:
        raise CryptoError("block: expected 16 bytes, got %d" % len(block))
    inv_s, m9, m11, m13, m14 = _inverse_tables()
    rks = _expand_key(key)
    r = rks[10]
    s = bytearray(16)
    for j in range(16):
        s[j] = block[j] ^ r[j]
    t = bytearray(16)
    for rnd in range(9, -1, -1):
        # InvShiftRows + InvSubBytes: byte (row, col) comes from (row, col - row).
        for col in range(4):
            for row in range(4):
                t[row + 4 * col] = inv_s[s[row + 4 * ((col - row) % 4)]]
        r = rks[rnd]
        for j in range(16):
            t[j] ^= r[j]
        if rnd == 0:
            return bytes(t)
        for col in range(0, 16, 4):
            a = t[col]
            b = t[col + 1]
            c = t[col + 2]
            d = t[col + 3]
            s[col] = m14[a] ^ m11[b] ^ m13[c] ^ m9[d]
            s[col + 1] = m9[a] ^ m14[b] ^ m11[c] ^ m13[d]
            s[col + 2] = m13[a] ^ m9[b] ^ m14[c] ^ m11[d]
            s[col + 3] = m11[a] ^ m13[b] ^ m9[c] ^ m14[d]
