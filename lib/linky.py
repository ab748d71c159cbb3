"""Linky TIC (Enedis-NOI-CPT_54E) streaming reader, encoder and reading helpers.

7E1 serial, 1200 baud historique / 9600 baud standard; frame STX ... ETX (EOT cuts it), group
LF ... CR: historique `label SP value SP cs`, cs over `label SP value`; standard
`label HT [timestamp HT] value HT cs`, cs over everything up to the last HT; cs = (sum & 0x3F) + 0x20.
TicReader.feed() takes any UART read (None, b'', any split), masks bit 7 (parity), keeps one
preallocated group buffer, parses groups at CR only; malformed input is counted, never raised.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from errors import TicError

HISTORIQUE = "historique"
STANDARD = "standard"
AUTO = "auto"
BAUDRATE = {HISTORIQUE: 1200, STANDARD: 9600}

_STX = const(0x02)
_ETX = const(0x03)
_EOT = const(0x04)
_HT = const(0x09)
_LF = const(0x0A)
_CR = const(0x0D)
_SP = const(0x20)
_DEL = const(0x7F)
# Bit b set for each framing byte b: STX, ETX, EOT, LF, CR.
_FRAMING = const(0x241C)

# Longest group of the spec: PJOURF+1 / PPOINTE, 8 + 1 + 98 + 1 + 1 = 109 bytes between LF and CR.
GROUP_MAX = const(128)
# A three-phase standard frame has about 75 groups; historique about 20.
FRAME_GROUPS_MAX = const(96)

_BUFFER_TYPES = (bytes, bytearray, memoryview)

_WAIT = const(0)  # outside a frame: everything up to the next STX is skipped
_FRAME = const(1)  # inside a frame, between groups (only LF, ETX, STX, EOT expected)
_GROUP = const(2)  # inside a group: bytes go to the buffer
_SKIP = const(3)  # inside an overlong group: skipped up to its end

# Labels the helpers below read: pass as TicReader(keep=ENERGY_LABELS) to hold only these.
ENERGY_LABELS = (
    "ADCO", "OPTARIF", "PTEC", "PAPP", "BASE", "HCHC", "HCHP", "EJPHN", "EJPHPM",
    "BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR",
    "ADSC", "NGTF", "LTARF", "SINSTS", "EAST",
    "EASF01", "EASF02", "EASF03", "EASF04", "EASF05",
    "EASF06", "EASF07", "EASF08", "EASF09", "EASF10",
)  # fmt: skip

# Total active energy = the sum of one of these label sets (historique tariff options).
_HISTORIQUE_TOTALS = (
    ("BASE",),
    ("HCHC", "HCHP"),
    ("EJPHN", "EJPHPM"),
    ("BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR"),
)
_TARIFF_INDEXES = (
    "BASE", "HCHC", "HCHP", "EJPHN", "EJPHPM",
    "BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR",
    "EASF01", "EASF02", "EASF03", "EASF04", "EASF05",
    "EASF06", "EASF07", "EASF08", "EASF09", "EASF10",
)  # fmt: skip


def checksum(data):
    """TIC checksum of the checksummed text `data` (bytes or str): (sum & 0x3F) + 0x20, an int."""
    if isinstance(data, str):
        data = data.encode()
    elif not isinstance(data, _BUFFER_TYPES):
        raise TicError("data: expected bytes or str")
    total = 0
    for b in data:
        total += b
    return (total & 0x3F) + 0x20


def _separator(mode):
    if mode == HISTORIQUE:
        return _SP
    if mode == STANDARD:
        return _HT
    raise TicError("mode: expected 'historique' or 'standard', got %r" % (mode,))


def _valid_timestamp(buf, start, end):
    """True if buf[start:end] looks like E200426132229: season (' ', E, e, H, h) + YYMMDDhhmmss."""
    if end - start != 13:
        return False
    season = buf[start]
    if season != _SP and season != 0x45 and season != 0x65 and season != 0x48 and season != 0x68:
        return False
    for i in range(start + 1, end):
        if not 0x30 <= buf[i] <= 0x39:
            return False
    return True


class TicReader:
    """Streaming TIC parser. feed(bytes) -> number of good frames completed by these bytes.

    mode: "historique", "standard" or "auto" (each group by its separator: HT standard, SP historique).
    on_group(label, value, timestamp, checksum_ok) is called for every group at its CR (timestamp None
    when absent); a malformed group is reported as (None, raw_text, None, False). frame_index is the
    0-based index of the current STX...ETX frame.
    on_frame(frame) is called with each good frame: a dict {label: value} (a group with a timestamp and
    an empty value, like DATE, maps to its timestamp). frame() pulls the newest good frame.
    keep: labels to hold in frame dicts (all groups are still checked); None keeps every label.
    A good frame: STX, >= 1 group, every group well formed with a correct checksum, nothing stray, ETX.
    """

    def __init__(
        self,
        mode=AUTO,
        on_group=None,
        on_frame=None,
        keep=None,
        group_max=GROUP_MAX,
        frame_groups_max=FRAME_GROUPS_MAX,
    ):
        if mode != AUTO and mode != HISTORIQUE and mode != STANDARD:
            raise TicError("mode: expected 'historique', 'standard' or 'auto', got %r" % (mode,))
        if not isinstance(group_max, int) or not 16 <= group_max <= 1024:
            raise TicError("group_max: expected an int in 16..1024")
        if not isinstance(frame_groups_max, int) or not 1 <= frame_groups_max <= 1024:
            raise TicError("frame_groups_max: expected an int in 1..1024")
        self.mode = mode
        self.on_group = on_group
        self.on_frame = on_frame
        self.keep = keep
        self._keep_index = None if keep is None else _label_index(keep)
        self.frame_groups_max = frame_groups_max
        self._buf = bytearray(group_max)
        self._mv = memoryview(self._buf)
        self.frame_index = -1  # STX seen so far, minus one
        self.reset()
        self.frames_ok = 0
        self.frames_bad = 0  # ended or restarted with a bad, missing or stray part
        self.frames_interrupted = 0  # cut by EOT
        self.groups_ok = 0
        self.groups_bad_checksum = 0
        self.groups_malformed = 0  # no CR, bad separators, control bytes, bad timestamp
        self.overruns = 0  # groups longer than the buffer, frames with too many groups
        self.stray_bytes = 0  # bytes between a CR and the next LF
        self.detected = None  # mode of the last group that passed its checksum

    def reset(self):
        """Forget any partial frame (after a baud-rate change, for example); counters stay."""
        self._state = _WAIT
        self._n = 0
        self._frame = None
        self._frame_ok = False
        self._groups = 0
        self._last = None
        self._completed = 0

    @property
    def buffered(self):
        """Bytes held for the group being received (never more than the buffer size)."""
        return self._n

    @property
    def buffer_size(self):
        return len(self._buf)

    def frame(self):
        """The newest good frame completed since the last call, or None."""
        frame = self._last
        self._last = None
        return frame

    def feed(self, data):
        """Parse the bytes of one UART read; returns how many good frames they completed."""
        if not data:
            return 0
        if not isinstance(data, _BUFFER_TYPES):
            raise TicError("data: expected bytes, bytearray or memoryview")
        buf = self._buf
        cap = len(buf)
        n = self._n
        state = self._state
        self._completed = 0
        for b in data:
            b &= 0x7F
            if b > _CR or not (_FRAMING >> b) & 1:
                if state == _GROUP:
                    if n < cap:
                        buf[n] = b
                        n += 1
                    else:
                        self.overruns += 1
                        self._frame_ok = False
                        state = _SKIP
                elif state == _FRAME:
                    self.stray_bytes += 1
                    self._frame_ok = False
                continue
            self._state = state
            self._n = n
            self._control(b)
            state = self._state
            n = self._n
        self._state = state
        self._n = n
        return self._completed

    def _control(self, b):
        state = self._state
        if b == _CR:
            if state == _GROUP:
                self._state = _FRAME
                self._group_end(self._n)
            elif state == _SKIP:
                self._state = _FRAME
            elif state == _FRAME:
                self.stray_bytes += 1
                self._frame_ok = False
        elif b == _LF:
            if state == _WAIT:
                return
            if state != _FRAME:  # the previous group never got its CR
                self._frame_ok = False
                if state == _GROUP:
                    self._malformed(self._n)
            self._state = _GROUP
            self._n = 0
        elif b == _STX:
            if state != _WAIT:
                if state == _GROUP:
                    self._malformed(self._n)
                self.frames_bad += 1
            self._frame_start()
        elif b == _ETX:
            if state == _WAIT:
                return
            if state != _FRAME:
                self._frame_ok = False
                if state == _GROUP:
                    self._malformed(self._n)
            self._frame_end()
        elif state != _WAIT:  # EOT
            self.frames_interrupted += 1
            self._frame = None
            self._state = _WAIT
            self._n = 0

    def _frame_start(self):
        self.frame_index += 1
        self._frame = {}
        self._frame_ok = True
        self._groups = 0
        self._state = _FRAME
        self._n = 0

    def _frame_end(self):
        frame = self._frame
        if self._frame_ok and self._groups:
            self.frames_ok += 1
            self._completed += 1
            self._last = frame
            if self.on_frame is not None:
                self.on_frame(frame)
        else:
            self.frames_bad += 1
        self._frame = None
        self._state = _WAIT
        self._n = 0

    def _kept_label(self, length, label_sum):
        """The kept label equal to buf[:length], or None."""
        candidates = self._keep_index.get(label_sum << 5 | (length & 31))
        if candidates:
            buf = self._buf
            for raw, label in candidates:
                if len(raw) == length:
                    for i in range(length):
                        if buf[i] != raw[i]:
                            break
                    else:
                        return label
        return None

    def _malformed(self, n):
        self.groups_malformed += 1
        self._frame_ok = False
        if self.on_group is not None:
            self.on_group(None, str(self._mv[:n], "ascii"), None, False)

    def _group_end(self, n):
        """Check the group in the buffer (n bytes between LF and CR) and record it."""
        self._groups += 1
        if self._groups > self.frame_groups_max:
            self.overruns += 1
            self.frames_bad += 1
            self._frame = None
            self._state = _WAIT
            return
        buf = self._buf
        if n < 4:
            self._malformed(n)
            return
        end = n - 2  # the separator before the checksum
        sep = buf[end]
        mode = self.mode
        if mode == AUTO:
            mode = STANDARD if sep == _HT else HISTORIQUE
        if sep != (_HT if mode == STANDARD else _SP):
            self._malformed(n)
            return
        total = 0
        first = -1
        second = -1
        count = 0
        for i in range(end):
            c = buf[i]
            if (c < _SP and c != _HT) or c == _DEL:
                self._malformed(n)
                return
            total += c
            if c == sep:
                count += 1
                if first < 0:
                    first = i
                elif second < 0:
                    second = i
        if mode == STANDARD:
            total += _HT  # the HT before the checksum is part of the checksummed text
            if count == 1:
                ts_start = -1
                value_start = first + 1
            elif count == 2 and _valid_timestamp(buf, first + 1, second):
                ts_start = first + 1
                value_start = second + 1
            else:
                self._malformed(n)
                return
        else:
            if count == 0:
                self._malformed(n)
                return
            ts_start = -1
            value_start = first + 1
        if first == 0:
            self._malformed(n)  # empty label
            return
        label_sum = 0
        for i in range(first):
            c = buf[i]
            if c <= _SP:
                self._malformed(n)  # a label holds no blank
                return
            label_sum += c
        ok = (total & 0x3F) + 0x20 == buf[n - 1]
        if ok:
            self.groups_ok += 1
            self.detected = mode
        else:
            self.groups_bad_checksum += 1
            self._frame_ok = False
        mv = self._mv
        frame = self._frame
        label = None
        store = ok and frame is not None
        if store and self._keep_index is not None:
            label = self._kept_label(first, label_sum)  # no allocation for the labels not kept
            store = label is not None
        if label is None and (store or self.on_group is not None):
            label = str(mv[:first], "ascii")
        if store or self.on_group is not None:
            value = str(mv[value_start:end], "ascii")
            timestamp = str(mv[ts_start:second], "ascii") if ts_start >= 0 else None
            if store:
                frame[label] = timestamp if (timestamp is not None and not value) else value
            if self.on_group is not None:
                self.on_group(label, value, timestamp, ok)


def _label_index(labels):
    """{label sum << 5 | length: [(label bytes, label)]}: finds a kept label without allocating."""
    index = {}
    try:
        for label in labels:
            raw = label.encode()
            key = sum(raw) << 5 | (len(raw) & 31)
            index.setdefault(key, []).append((raw, label))
    except (AttributeError, TypeError):
        raise TicError("keep: expected labels as str")
    return index


def _text(name, text):
    """bytes of a str/bytes field made of printable ASCII, else TicError naming the field."""
    if isinstance(text, str):
        text = text.encode()
    elif not isinstance(text, (bytes, bytearray)):
        raise TicError("%s: expected str or bytes" % name)
    for c in text:
        if not _SP <= c < _DEL:
            raise TicError("%s: expected printable ASCII (0x20..0x7e)" % name)
    return bytes(text)


def encode_group(label, value, mode, timestamp=None):
    """One group, LF ... CR, with its checksum: what a Linky sends for `label` in `mode`."""
    sep = _separator(mode)
    label = _text("label", label)
    value = _text("value", value)
    if not label or b" " in label:
        raise TicError("label: expected 1 or more printable characters without blanks")
    body = bytearray(label)
    body.append(sep)
    if timestamp is not None:
        if mode != STANDARD:
            raise TicError("timestamp: only standard mode groups carry one")
        timestamp = _text("timestamp", timestamp)
        if not _valid_timestamp(timestamp, 0, len(timestamp)):
            raise TicError("timestamp: expected season (' ', E, e, H, h) + YYMMDDhhmmss")
        body.extend(timestamp)
        body.append(sep)
    body.extend(value)
    if mode == STANDARD:
        body.append(_HT)
        body.append(checksum(body))
    else:
        cs = checksum(body)
        body.append(_SP)
        body.append(cs)
    if len(body) > GROUP_MAX:
        raise TicError(
            "value: group of %d bytes, a reader holds at most %d" % (len(body), GROUP_MAX)
        )
    return b"\n" + bytes(body) + b"\r"


def encode_frame(groups, mode):
    """A whole frame STX ... ETX from (label, value) or (label, value, timestamp) items, or a dict."""
    if isinstance(groups, dict):
        groups = groups.items()
    parts = [b"\x02"]
    for group in groups:
        if not isinstance(group, (tuple, list)) or not 2 <= len(group) <= 3:
            raise TicError("groups: expected (label, value) or (label, value, timestamp) items")
        parts.append(encode_group(group[0], group[1], mode, group[2] if len(group) == 3 else None))
    parts.append(b"\x03")
    return b"".join(parts)


def _digits(value):
    """int of a field made of decimal digits only (padding blanks allowed), else None."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value:
        return None
    for c in value:
        if c not in "0123456789":
            return None
    return int(value)


def _check_frame(frame):
    if not isinstance(frame, dict):
        raise TicError("frame: expected a dict {label: value}")


def index_wh(frame):
    """Total active energy index in Wh: EAST (standard), else BASE, HCHC+HCHP, EJPHN+EJPHPM or the
    six BBRH* Tempo indexes (historique); None if the frame has none or one is not a number."""
    _check_frame(frame)
    if "EAST" in frame:
        return _digits(frame["EAST"])
    for labels in _HISTORIQUE_TOTALS:
        if labels[0] in frame:
            total = 0
            for label in labels:
                wh = _digits(frame.get(label))
                if wh is None:
                    return None
                total += wh
            return total
    return None


def tariff_indexes_wh(frame):
    """Per-tariff indexes in Wh present in the frame: {label: wh} (BASE, HCHC, ..., EASF01..10)."""
    _check_frame(frame)
    indexes = {}
    for label in _TARIFF_INDEXES:
        wh = _digits(frame.get(label))
        if wh is not None:
            indexes[label] = wh
    return indexes


def power_va(frame):
    """Apparent power in VA: PAPP (historique) or SINSTS (standard); None if absent or not a number."""
    _check_frame(frame)
    if "SINSTS" in frame:
        return _digits(frame["SINSTS"])
    return _digits(frame.get("PAPP"))


def tariff_period(frame):
    """Current tariff period: PTEC (historique, e.g. 'HP..') or LTARF (standard), blanks trimmed."""
    _check_frame(frame)
    value = frame.get("LTARF", frame.get("PTEC"))
    return value.strip() if isinstance(value, str) else None


def meter_id(frame):
    """Meter address: ADCO (historique) or ADSC (standard), 12 digits; None if absent."""
    _check_frame(frame)
    value = frame.get("ADSC", frame.get("ADCO"))
    return value.strip() if isinstance(value, str) else None
