"""Persistence of the sensor image: NVS counters, RTC-memory wake state, atomic files, backlog.

Three places, by what they survive:
- NVS (pycom.nvs_*): 32-bit unsigned ints only, survive power cuts; written on change (Nvs).
- RTC memory (machine.RTC().memory()): <= 2048 bytes of JSON, survives deep sleep, not a power cut.
- Files on /flash: written whole to a temp file then renamed over the target (atomic_write), or
  appended record by record with a per-record check byte (Backlog), so a power cut leaves either
  the old or the new content, or one torn record at the end that open() cuts off.
"""

try:
    import ustruct as struct
except ImportError:
    import struct

try:
    import ujson as json
except ImportError:
    import json

try:
    import uos as os
except ImportError:
    import os

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


MASK32 = 0xFFFFFFFF
RTC_MEMORY_MAX = const(2048)
TIC_PERIODS_MAX = const(10)
_STATE_VERSION = const(1)
_COPY_CHUNK = const(512)

# NVS keys (<= 15 characters).
KEY_SEQ = "oe_seq"  # number of the newest reading (0: none yet)
KEY_ACKED = "oe_ack"  # newest reading known to have reached the server
KEY_INDEX = ("oe_i0", "oe_i1")  # absolute pulse index per S0 channel
KEY_FCNT_UP = "oe_fup"  # uplinks started in this session (written BEFORE each send)
KEY_FCNT_SAVED = "oe_fsv"  # value of oe_fup when the native stack's nvram_save last ran
KEY_FCNT_NEXT = "oe_fnx"  # lowest FCnt the next uplink may carry
KEY_SESSION = "oe_ses"  # session generation (+1 per join), 0: never joined
KEY_BOOTS = "oe_boot"  # boots since provisioning (diagnostics)
KEY_DUE = "oe_due"  # ms left until the next reading (0: a full interval), copied each minute


class Nvs:
    """Unsigned 32-bit ints in Pycom NVS, cached, written only when the value changes.

    Firmware 1.20 raises ValueError for a missing key, older firmware returns None; both read as
    the default. nvs_get gives the stored uint32 back as a signed int: it is masked here.
    """

    def __init__(self, backend):
        self._nvs = backend
        self._cache = {}

    def get(self, key, default=0):
        value = self._cache.get(key)
        if value is not None:
            return value
        try:
            value = self._nvs.nvs_get(key)
        except (ValueError, KeyError, OSError):
            value = None
        value = default if value is None else value & MASK32
        self._cache[key] = value
        return value

    def set(self, key, value):
        """Store value & 0xFFFFFFFF under key; returns True when flash was written."""
        value &= MASK32
        if self.get(key, None) == value:
            return False
        self._nvs.nvs_set(key, value)
        self._cache[key] = value
        return True

    def erase(self, key):
        self._cache.pop(key, None)
        try:
            self._nvs.nvs_erase(key)
        except (KeyError, ValueError, OSError):
            pass


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _sync():
    sync = getattr(os, "sync", None)
    if sync is not None:
        try:
            sync()
        except OSError:
            pass


def atomic_write(path, data):
    """Replace the file at path with data (bytes or str): write path + '.tmp', then rename.

    Where rename cannot replace an existing file (FatFS), the target is removed first; read_file()
    then recovers the complete temp file if the power fails between the two steps.
    """
    tmp = path + ".tmp"
    if isinstance(data, str):
        data = data.encode()
    with open(tmp, "wb") as f:
        f.write(data)
    _sync()
    try:
        os.rename(tmp, path)
    except OSError:
        _remove(path)
        os.rename(tmp, path)
    _sync()


def read_file(path):
    """Bytes of the file at path, or None; finishes an atomic_write interrupted after its remove."""
    if not exists(path) and exists(path + ".tmp"):
        try:
            os.rename(path + ".tmp", path)
        except OSError:
            return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def read_json(path):
    """The JSON object stored at path, or None when missing or unreadable."""
    data = read_file(path)
    if not data:
        return None
    try:
        value = json.loads(data)
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def write_json(path, value):
    atomic_write(path, json.dumps(value))


def fingerprint(data):
    """A 32-bit fingerprint of bytes (length and a rotating sum): detects an edited config file."""
    h = len(data) & MASK32
    for b in data:
        h = ((h << 5) ^ (h >> 27) ^ b) & MASK32
    return h


def load_rtc_state(rtc):
    """The dict saved by save_rtc_state before the last deep sleep, or None (power cut, junk)."""
    try:
        raw = rtc.memory()
    except Exception:
        return None
    if not raw or raw[0] != 0x7B:  # '{'
        return None
    end = raw.find(b"\x00")
    if end >= 0:
        raw = raw[:end]
    try:
        state = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if not isinstance(state, dict) or state.get("v") != _STATE_VERSION:
        return None
    return state


def save_rtc_state(rtc, state):
    """Write state (a dict of ints, lists, None) to RTC memory; False if it does not fit."""
    state["v"] = _STATE_VERSION
    raw = json.dumps(state).encode()
    if len(raw) > RTC_MEMORY_MAX:
        return False
    rtc.memory(raw)
    return True


def clear_rtc_state(rtc):
    try:
        rtc.memory(b"\x00")
    except Exception:
        pass


class Backlog:
    """Readings kept on flash until the server has them: an append-only file of fixed-size records.

    Record: seq u32, one u32 index per pulse channel, then with TIC: papp u16, tariff u8,
    period count u8 and TIC_PERIODS_MAX u32 indexes; last a check byte (sum of the others + 0x5A).
    Seqs are consecutive. A torn last record (power cut while appending) is cut off by open().
    Space is bounded by capacity records: when full, the oldest eighth is dropped (dropped counts
    them). forget_through(seq) drops readings the server has, keeping the newest `keep`.
    """

    def __init__(self, path, channels, tic, capacity):
        self.path = path
        self.channels = channels
        self.tic = tic
        self.size = 4 + 4 * channels + ((4 + 4 * TIC_PERIODS_MAX) if tic else 0) + 1
        self.capacity = capacity if capacity > 8 else 8
        self._rec = bytearray(self.size)
        self.first = 0  # seq of the oldest record (0: empty)
        self.count = 0
        self.dropped = 0
        self.repaired = 0

    @property
    def last(self):
        return self.first + self.count - 1 if self.count else 0

    def _check(self, rec):
        total = 0x5A
        for i in range(self.size - 1):
            total += rec[i]
        return total & 0xFF

    def open(self):
        """Scan the file: count records, cut a torn or corrupt tail. Returns the newest seq (0)."""
        read_file(self.path)  # finishes an interrupted compaction
        try:
            length = os.stat(self.path)[6]
        except OSError:
            self.first = 0
            self.count = 0
            return 0
        size = self.size
        good = 0
        expect = 0
        with open(self.path, "rb") as f:
            while good < length // size:
                if f.readinto(self._rec) != size or self._rec[size - 1] != self._check(self._rec):
                    break
                seq = struct.unpack_from(">I", self._rec, 0)[0]
                if good == 0:
                    self.first = seq
                elif seq != expect:
                    break
                expect = (seq + 1) & MASK32
                good += 1
        self.count = good
        if good == 0:
            self.first = 0
        if good * size != length:
            self.repaired += 1
            self._rewrite(0, good)
        return self.last

    def _rewrite(self, skip, keep):
        """Replace the file by records skip .. skip + keep - 1 of it (streamed, atomic)."""
        if keep <= 0:
            _remove(self.path)
            _remove(self.path + ".tmp")
            self.first = 0
            self.count = 0
            return
        size = self.size
        tmp = self.path + ".tmp"
        chunk = bytearray(size * max(1, _COPY_CHUNK // size))
        left = keep * size
        with open(self.path, "rb") as src:
            src.seek(skip * size)
            with open(tmp, "wb") as dst:
                while left > 0:
                    n = src.readinto(chunk)
                    if not n:
                        break
                    if n > left:
                        n = left
                    dst.write(memoryview(chunk)[:n])
                    left -= n
        _sync()
        try:
            os.rename(tmp, self.path)
        except OSError:
            _remove(self.path)
            os.rename(tmp, self.path)
        _sync()
        if skip:
            self.first += skip
        self.count = keep

    def append(self, seq, indexes, tic=None):
        """Add the reading seq (must follow the newest one when not empty).

        indexes: one absolute u32 per pulse channel; tic: None or (papp_va, tariff, [index_wh...]).
        """
        if self.count and seq != self.last + 1:
            # A gap (seq restored from an older copy): restart the file at this reading.
            self._rewrite(0, 0)
        if self.count >= self.capacity:
            drop = self.capacity // 8
            self._rewrite(drop, self.count - drop)
            self.dropped += drop
        rec = self._rec
        struct.pack_into(">I", rec, 0, seq & MASK32)
        pos = 4
        for ch in range(self.channels):
            struct.pack_into(">I", rec, pos, indexes[ch] & MASK32)
            pos += 4
        if self.tic:
            if tic is None:
                papp, tariff, values = 0, 0, ()
            else:
                papp, tariff, values = tic
            p = len(values)
            if p > TIC_PERIODS_MAX:
                p = TIC_PERIODS_MAX
            struct.pack_into(">HBB", rec, pos, papp if papp < 0xFFFF else 0xFFFF, tariff, p)
            pos += 4
            for j in range(TIC_PERIODS_MAX):
                struct.pack_into(">I", rec, pos, (values[j] & MASK32) if j < p else 0)
                pos += 4
        rec[self.size - 1] = self._check(rec)
        with open(self.path, "ab") as f:
            f.write(rec)
        _sync()
        if not self.count:
            self.first = seq
        self.count += 1

    def reader(self):
        """An open handle for a run of read() calls (close it after), or None when empty."""
        try:
            return open(self.path, "rb")
        except OSError:
            return None

    def read(self, seq, handle=None):
        """The record of reading seq as a memoryview of an internal buffer (valid until the next
        call), or None when it is not held. handle: from reader(), saves an open per record."""
        if not self.count or seq < self.first or seq > self.last:
            return None
        try:
            f = handle if handle is not None else open(self.path, "rb")
            try:
                f.seek((seq - self.first) * self.size)
                got = f.readinto(self._rec)
            finally:
                if handle is None:
                    f.close()
        except OSError:
            return None
        if got != self.size or self._rec[self.size - 1] != self._check(self._rec):
            return None
        return memoryview(self._rec)

    def index(self, record, channel):
        """Pulse index of channel in a record from read()."""
        return struct.unpack_from(">I", record, 4 + 4 * channel)[0]

    def tic_of(self, record):
        """(papp_va, tariff, [index_wh...]) of a record from read(), or None without TIC data."""
        if not self.tic:
            return None
        pos = 4 + 4 * self.channels
        papp, tariff, p = struct.unpack_from(">HBB", record, pos)
        if p == 0:
            return None
        values = [struct.unpack_from(">I", record, pos + 4 + 4 * j)[0] for j in range(p)]
        return (papp, tariff if tariff <= p else 0, values)

    def forget_through(self, seq, keep):
        """Drop the readings up to seq, but keep at least the newest `keep` (report history).

        Compacts only when it frees at least a quarter of the file (or everything), so that a
        steady trickle of acknowledgements does not rewrite the file each time.
        """
        if not self.count:
            return
        limit = self.last - keep
        if seq > limit:
            seq = limit
        drop = seq - self.first + 1
        if drop <= 0:
            return
        if drop >= self.count:
            self._rewrite(0, 0)
        elif drop * 4 >= self.count or self.count >= self.capacity - self.capacity // 8:
            self._rewrite(drop, self.count - drop)
