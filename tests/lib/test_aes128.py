"""aes128: FIPS-197 / SP 800-38A block vectors, RFC 4493 CMAC, backends agree, errors."""

import aes128
from errors import CryptoError
from testkit import h, hx, raises, vectors

# FIPS-197 Appendix C.1 and Appendix B, then SP 800-38A F.1.1 (ECB-AES128), as (key, pt, ct).
FIPS197 = [
    (
        "000102030405060708090a0b0c0d0e0f",
        "00112233445566778899aabbccddeeff",
        "69c4e0d86a7b0430d8cdb78070b4c55a",
    ),
    (
        "2b7e151628aed2a6abf7158809cf4f3c",
        "3243f6a8885a308d313198a2e0370734",
        "3925841d02dc09fbdc118597196a0b32",
    ),
    (
        "2b7e151628aed2a6abf7158809cf4f3c",
        "6bc1bee22e409f96e93d7e117393172a",
        "3ad77bb40d7a3660a89ecaf32466ef97",
    ),
    (
        "2b7e151628aed2a6abf7158809cf4f3c",
        "ae2d8a571e03ac9c9eb76fac45af8e51",
        "f5d3d58503b9699de785895a96fdbaaf",
    ),
    (
        "2b7e151628aed2a6abf7158809cf4f3c",
        "30c81c46a35ce411e5fbc1191a0a52ef",
        "43b1cd7f598ece23881b00e3ed030688",
    ),
    (
        "2b7e151628aed2a6abf7158809cf4f3c",
        "f69f2445df4f9b17ad2b417be66c3710",
        "7b0c785e27e8ad3f8223207104725dd4",
    ),
]


def _pseudo_random(seed, n):
    # xorshift32: deterministic test data on every Python.
    out = bytearray(n)
    x = seed
    for i in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x & 0xFF
    return bytes(out)


def test_backend_is_named():
    assert aes128.BACKEND in ("pycom", "cryptolib", "cryptography", "pure")


def test_fips197_selected_backend():
    for key, pt, ct in FIPS197:
        assert hx(aes128.encrypt_block(h(key), h(pt))) == ct
        assert hx(aes128.AES(h(key)).encrypt(h(pt))) == ct


def test_fips197_pure_backend():
    for key, pt, ct in FIPS197:
        assert hx(aes128.PureAES(h(key)).encrypt(h(pt))) == ct


def test_encrypt_into_separate_and_in_place():
    for cls in (aes128.AES, aes128.PureAES):
        key, pt, ct = FIPS197[0]
        c = cls(h(key))
        out = bytearray(16)
        c.encrypt_into(h(pt), out)
        assert hx(out) == ct
        buf = bytearray(h(pt))
        c.encrypt_into(buf, buf)
        assert hx(buf) == ct
        assert isinstance(c.encrypt(h(pt)), bytes)


def test_pure_agrees_with_selected_backend():
    for i in range(40):
        data = _pseudo_random(i + 1, 32)
        key = data[:16]
        block = data[16:]
        assert aes128.PureAES(key).encrypt(block) == aes128.AES(key).encrypt(block)
        msg = _pseudo_random(i + 77, i * 3)
        assert aes128.PureAES(key).cmac(msg) == aes128.AES(key).cmac(msg)


def test_cmac_rfc4493():
    v = vectors("cmac_rfc4493")
    key = h(v["key"])
    message = h(v["message"])
    assert len(v["expect"]) == 4
    for length in v["expect"]:
        msg = message[: int(length)]
        assert hx(aes128.cmac(key, msg)) == v["expect"][length]
        assert hx(aes128.PureAES(key).cmac(msg)) == v["expect"][length]
        assert hx(aes128.AES(key).cmac(msg)) == v["expect"][length]


def test_cmac_with_head_equals_concatenation():
    key = _pseudo_random(5, 16)
    head = _pseudo_random(6, 16)
    c = aes128.AES(key)
    for n in (0, 1, 15, 16, 17, 31, 32, 33, 64):
        data = _pseudo_random(n + 9, n)
        assert c.cmac(data, head) == c.cmac(head + data)
        assert aes128.PureAES(key).cmac(data, head) == c.cmac(head + data)


def test_cmac_object_reuse_is_stateless():
    v = vectors("cmac_rfc4493")
    c = aes128.AES(h(v["key"]))
    first = c.cmac(h(v["message"])[:40])
    c.cmac(b"other data")
    assert c.cmac(h(v["message"])[:40]) == first
    assert hx(first) == v["expect"]["40"]


def test_cipher_passes_objects_through():
    c = aes128.AES(bytes(16))
    assert aes128.cipher(c) is c
    p = aes128.PureAES(bytes(16))
    assert aes128.cipher(p) is p
    assert aes128.encrypt_block(p, bytes(16)) == aes128.encrypt_block(bytes(16), bytes(16))
    assert aes128.cmac(c, b"x") == aes128.cmac(bytes(16), b"x")


def test_decrypt_inverts_encrypt():
    for key, pt, ct in FIPS197:
        assert hx(aes128.decrypt_block(h(key), h(ct))) == pt
        assert hx(aes128.pure_decrypt_block(h(key), h(ct))) == pt
    for i in range(5):
        data = _pseudo_random(100 + i, 32)
        assert (
            aes128.pure_decrypt_block(data[:16], aes128.encrypt_block(data[:16], data[16:]))
            == data[16:]
        )


def test_wrong_key_sizes():
    for bad in (b"", bytes(15), bytes(17), bytes(32), "0123456789abcdef", None, 16):
        raises(CryptoError, aes128.AES, bad)
        raises(CryptoError, aes128.PureAES, bad)
        raises(CryptoError, aes128.encrypt_block, bad, bytes(16))
        raises(CryptoError, aes128.cmac, bad, b"")
        raises(CryptoError, aes128.decrypt_block, bad, bytes(16))


def test_wrong_block_sizes():
    for cls in (aes128.AES, aes128.PureAES):
        c = cls(bytes(16))
        for bad in (b"", bytes(15), bytes(17)):
            raises(CryptoError, c.encrypt, bad)
            raises(CryptoError, c.encrypt_into, bad, bytearray(16))
            raises(CryptoError, c.encrypt_into, bytes(16), bytearray(len(bad)))
        raises(CryptoError, c.cmac, b"abc", bytes(15))
    raises(CryptoError, aes128.decrypt_block, bytes(16), bytes(8))


def test_crypto_error_is_value_error_and_hides_key():
    key = h("2b7e151628aed2a6abf7158809cf4f3c")
    exc = raises(ValueError, aes128.AES, key + b"\x00")
    assert "2b7e" not in str(exc)
    assert "2b7e" not in repr(aes128.AES(key))
    assert "2b7e" not in repr(aes128.PureAES(key))


def test_pure_encrypt_into_does_not_allocate():
    try:
        import micropython

        lock = micropython.heap_lock
        unlock = micropython.heap_unlock
    except (ImportError, AttributeError):
        return  # CPython: nothing to measure
    c = aes128.PureAES(bytes(16))
    block = bytearray(16)
    lock()
    try:
        c.encrypt_into(block, block)
    finally:
        unlock()
    assert hx(block) == "66e94bd4ef8a2c3b884cfa59ca342b2e"


class _FakePycomAES:
    # Pycom's crypto.AES(key, MODE_ECB).encrypt(data), emulated with the pure cipher.
    MODE_ECB = 1

    def __init__(self, key, mode):
        assert mode == 1
        self._aes = aes128.PureAES(key)

    def encrypt(self, data):
        _FakePycomAES.calls_total += 1
        return self._aes.encrypt(data)


_FakePycomAES.calls_total = 0


class _FakeCryptoModule:
    AES = _FakePycomAES


class _FakeCryptolibAES:
    def __init__(self, key, mode):
        assert mode == 1
        self._aes = aes128.PureAES(key)

    def encrypt(self, data, out=None):
        _FakeCryptolibModule.calls += 1
        if out is None:
            return self._aes.encrypt(data)
        self._aes.encrypt_into(data, out)


class _FakeCryptolibModule:
    calls = 0
    aes = _FakeCryptolibAES


def _import_aes128_with(fakes):
    import sys

    saved = {}
    for name in ("aes128", "crypto", "cryptolib", "ucryptolib"):
        saved[name] = sys.modules.get(name)
    try:
        del sys.modules["aes128"]
        for name in fakes:
            sys.modules[name] = fakes[name]
        return __import__("aes128")
    finally:
        for name in saved:
            if saved[name] is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = saved[name]


def test_backend_order_pycom_first_then_cryptolib():
    mod = _import_aes128_with({"crypto": _FakeCryptoModule, "cryptolib": _FakeCryptolibModule})
    assert mod.BACKEND == "pycom"
    key, pt, ct = FIPS197[1]
    assert hx(mod.encrypt_block(h(key), h(pt))) == ct
    assert _FakePycomAES.calls_total == 1
    v = vectors("cmac_rfc4493")
    assert hx(mod.cmac(h(v["key"]), h(v["message"]))) == v["expect"]["64"]
    mod = _import_aes128_with({"cryptolib": _FakeCryptolibModule})
    assert mod.BACKEND == "cryptolib"
    out = bytearray(16)
    mod.AES(h(key)).encrypt_into(h(pt), out)
    assert hx(out) == ct and _FakeCryptolibModule.calls >= 1
    assert hx(mod.cmac(h(v["key"]), h(v["message"]))) == v["expect"]["64"]
