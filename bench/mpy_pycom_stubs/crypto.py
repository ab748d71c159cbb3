"""Pycom's crypto module for the bench: AES (ECB encrypt, via lib/aes128's pure-Python cipher
when the image carries it) and getrandbits. Neither image imports it today."""

import machine


def getrandbits(bits):
    out = bytearray((bits + 7) // 8)
    for i in range(len(out)):
        out[i] = machine.rng() & 0xFF
    return bytes(out)


class AES:
    MODE_ECB = 1
    MODE_CBC = 2
    MODE_CFB = 3
    MODE_CTR = 6
    SEGMENT_8 = 8
    SEGMENT_128 = 128

    def __init__(self, key, mode=MODE_ECB, IV=None, counter=None, segment_size=8):
        if mode != AES.MODE_ECB:
            raise ValueError("bench crypto.AES: ECB only")
        import aes128

        self._aes = aes128.PureAES(bytes(key))

    def encrypt(self, data):
        out = bytearray(len(data))
        for i in range(0, len(data), 16):
            block = bytearray(data[i : i + 16])
            self._aes.encrypt_into(block, block)
            out[i : i + 16] = block
        return bytes(out)
