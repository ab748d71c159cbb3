"""`crypto` of a simulated board: AES (ECB, CBC, CFB8/128, CTR) and getrandbits (moducrypto.c).

The block cipher is the `cryptography` package; the chaining is done here so the IV/counter
state carries over between calls exactly as the hardware driver's does.
"""

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from . import bind, new_module, unsupported_function

MODE_ECB = 1
MODE_CBC = 2
MODE_CFB = 3
MODE_CTR = 6
SEGMENT_8 = 8
SEGMENT_128 = 128


class AES:
    """crypto.AES(key, mode=AES.MODE_ECB, IV=None, counter=None, segment_size=8)."""

    MODE_ECB = MODE_ECB
    MODE_CBC = MODE_CBC
    MODE_CFB = MODE_CFB
    MODE_CTR = MODE_CTR
    SEGMENT_8 = SEGMENT_8
    SEGMENT_128 = SEGMENT_128
    _s = None

    def __init__(self, key, mode=MODE_ECB, IV=None, counter=None, segment_size=-1):  # noqa: N803
        self._s.check()
        key = bytes(key)
        if len(key) not in (16, 24, 32):
            raise ValueError("AES key must be either 16, 24, or 32 bytes long")
        if mode not in (MODE_ECB, MODE_CBC, MODE_CFB, MODE_CTR):
            raise ValueError("Unknown cipher feedback mode %d" % mode)
        cipher = Cipher(algorithms.AES(key), modes.ECB())
        self._enc = cipher.encryptor()
        self._dec = cipher.decryptor()
        self._mode = mode
        self._iv = bytes(16)
        self._offset = 0
        self._stream = bytes(16)
        if mode not in (MODE_ECB, MODE_CTR) and IV is not None:
            IV = bytes(IV)
            if len(IV) != 16:
                raise ValueError("IV must be 16 bytes long")
            self._iv = IV
        if mode == MODE_CTR:
            counter = bytes(counter) if counter is not None else b""
            if len(counter) != 16:
                raise ValueError("Initial counter value must be 16 bytes long")
            self._iv = counter
        elif counter is not None:
            raise ValueError("'counter' parameter only useful with CTR mode")
        self._segment = SEGMENT_8 if segment_size == -1 else segment_size
        if mode == MODE_CFB and self._segment not in (SEGMENT_8, SEGMENT_128):
            raise ValueError("segment_size must be 8 or 128")

    def _block(self, data):
        return self._enc.update(data)

    def encrypt(self, data):
        return self._crypt(bytes(data), True)

    def decrypt(self, data):
        return self._crypt(bytes(data), False)

    def _crypt(self, data, encrypt):
        self._s.check()
        mode = self._mode
        if mode in (MODE_ECB, MODE_CBC) and len(data) % 16:
            raise ValueError("Input strings must be a multiple of 16 in length")
        if mode == MODE_ECB:
            return self._enc.update(data) if encrypt else self._dec.update(data)
        if mode == MODE_CBC:
            out = bytearray()
            iv = self._iv
            for i in range(0, len(data), 16):
                block = data[i : i + 16]
                if encrypt:
                    iv = self._block(bytes(a ^ b for a, b in zip(block, iv, strict=True)))
                    out += iv
                else:
                    plain = self._dec.update(block)
                    out += bytes(a ^ b for a, b in zip(plain, iv, strict=True))
                    iv = block
            self._iv = iv
            return bytes(out)
        if mode == MODE_CFB and self._segment == SEGMENT_8:
            out = bytearray()
            iv = self._iv
            for byte in data:
                result = byte ^ self._block(iv)[0]
                out.append(result)
                iv = iv[1:] + bytes([result if encrypt else byte])
            self._iv = iv
            return bytes(out)
        if mode == MODE_CFB:
            out = bytearray()
            iv = bytearray(self._iv)
            n = self._offset
            for byte in data:
                if n == 0:
                    iv = bytearray(self._block(bytes(iv)))
                result = byte ^ iv[n]
                iv[n] = result if encrypt else byte
                out.append(result)
                n = (n + 1) % 16
            self._iv = bytes(iv)
            self._offset = n
            return bytes(out)
        out = bytearray()
        counter = bytearray(self._iv)
        stream = self._stream
        n = self._offset
        for byte in data:
            if n == 0:
                stream = self._block(bytes(counter))
                for i in range(15, -1, -1):
                    counter[i] = (counter[i] + 1) & 0xFF
                    if counter[i]:
                        break
            out.append(byte ^ stream[n])
            n = (n + 1) % 16
        self._iv = bytes(counter)
        self._stream = stream
        self._offset = n
        return bytes(out)


def make(session):
    def getrandbits(bits):
        session.check()
        words = (int(bits) + 31) // 32
        return session.rng.randbytes(words * 4)

    attrs = {"getrandbits": getrandbits}
    attrs.update(_UNSUPPORTED)
    return new_module("crypto", attrs, {"AES": lambda: bind(AES, session)})


_UNSUPPORTED = {
    name: unsupported_function("crypto." + name)
    for name in ("generate_rsa_signature", "rsa_encrypt", "rsa_decrypt")
}
