"""Fuzzing lib/linky.py's TicReader with hypothesis.

Properties checked:
1. Arbitrary bytes in arbitrary chunks (None and b'' reads included): feed() never raises, the group
   buffer is never replaced nor grown, a frame dict never exceeds frame_groups_max entries, and
   what the reader reports does not depend on how the stream was chunked.
2. Encoded frames (random labels, values, timestamps; both modes; parity bits; noise between frames
   without STX) come back exactly, each as a good frame, whatever the chunking.
3. One byte of an encoded frame substituted (any value whose low 7 bits differ). The TIC checksum
   is a sum modulo 64 and there is no frame checksum, so the exact guarantee is: every frame the
   reader reports as good is a contiguous run of the original groups where
   - no group differs, and the run is shorter than the frame only if the new byte is STX or ETX
     (a framing byte turned into STX/ETX cuts the frame: groups lost, never changed); or
   - exactly one group's checksummed text differs, in exactly one byte, by exactly +-64 (the one
     change a 6-bit sum cannot see, e.g. '0' <-> 'p', SP <-> '`', HT <-> 'I').
   Consequence checked too: index_wh / power_va / tariff_indexes_wh of a good frame give the true
   numbers or None, never another number (digits +-64 are not digits; a cut frame lacks labels).
4. One byte deleted: a good frame is the whole original, except one group's checksummed text that
   lost one '@' (0x40, the only printable byte that is 0 modulo 64).
Corruption of two or more bytes can cancel out in the sum (e.g. +1 and -1): not claimed.
"""

import linky
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LABEL = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-", min_size=1, max_size=9)
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))
VALUE = st.text(alphabet=PRINTABLE, max_size=24)
TIMESTAMP = st.builds(
    lambda season, digits: season + digits,
    st.sampled_from(" EeHh"),
    st.text(alphabet="0123456789", min_size=12, max_size=12),
)
DIGITS = st.integers(0, 999999999)

CHUNKS = st.lists(st.one_of(st.none(), st.integers(0, 80)), min_size=1, max_size=20)
FRAMING = st.sampled_from([0x02, 0x03, 0x04, 0x09, 0x0A, 0x0D, 0x20, 0x82, 0x83, 0x8A, 0x8D])
STREAM = st.lists(
    st.one_of(st.integers(0, 255), FRAMING, st.sampled_from(b"AZ09 .")), max_size=1500
).map(bytes)


def chunked(data, sizes):
    """data cut into reads following sizes (cycled); None entries are reads that returned None."""
    reads = []
    pos = 0
    i = 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        i += 1
        if size is None:
            reads.append(None)
        else:
            reads.append(data[pos : pos + size])
            pos += size
        if i > 10 * len(data) + 10:  # sizes of only None / 0
            reads.append(data[pos:])
            break
    return reads


class Run:
    """Feeds reads, records every group event and every good frame (as its list of groups)."""

    def __init__(self, mode="auto", **kwargs):
        self.events = []
        self.good = []
        self.reader = linky.TicReader(
            mode, on_group=self.on_group, on_frame=self.on_frame, **kwargs
        )

    def on_group(self, label, value, timestamp, ok):
        self.events.append((self.reader.frame_index, label, value, timestamp, ok))

    def on_frame(self, frame):
        assert len(frame) <= self.reader.frame_groups_max
        index = self.reader.frame_index
        groups = [e[1:4] for e in self.events if e[0] == index]
        self.good.append((index, groups, dict(frame)))

    def feed(self, reads):
        buf = self.reader._buf
        size = len(buf)
        for data in reads:
            self.reader.feed(data)
            assert self.reader._buf is buf and len(buf) == size
            assert 0 <= self.reader.buffered <= size
        return self

    def counters(self):
        r = self.reader
        return (
            r.frames_ok,
            r.frames_bad,
            r.frames_interrupted,
            r.groups_ok,
            r.groups_bad_checksum,
            r.groups_malformed,
            r.overruns,
            r.stray_bytes,
        )


def checked_text(group, mode):
    """The checksummed text of a (label, value, timestamp) group."""
    label, value, timestamp = group
    if mode == linky.HISTORIQUE:
        return label + " " + value
    return label + "\t" + (timestamp + "\t" if timestamp else "") + value + "\t"


@st.composite
def frames(draw, mode=None):
    """(mode, [(label, value, timestamp)]): random groups plus energy labels with digit values."""
    mode = mode or draw(st.sampled_from([linky.HISTORIQUE, linky.STANDARD]))
    groups = []
    for _ in range(draw(st.integers(1, 8))):
        label = draw(LABEL)
        value = draw(VALUE)
        timestamp = draw(st.one_of(st.none(), TIMESTAMP)) if mode == linky.STANDARD else None
        groups.append((label, value, timestamp))
    if mode == linky.HISTORIQUE:
        energy = [
            ("HCHC", f"{draw(DIGITS):09d}", None),
            ("HCHP", f"{draw(DIGITS):09d}", None),
            ("PAPP", f"{draw(st.integers(0, 99999)):05d}", None),
        ]
    else:
        energy = [
            ("EAST", f"{draw(DIGITS):09d}", None),
            ("EASF01", f"{draw(DIGITS):09d}", None),
            ("SINSTS", f"{draw(st.integers(0, 99999)):05d}", None),
        ]
    for group in energy:
        groups.insert(draw(st.integers(0, len(groups))), group)
    return mode, groups


def encode(mode, groups):
    return linky.encode_frame([(g[0], g[1], g[2]) if g[2] else (g[0], g[1]) for g in groups], mode)


def with_parity_bits(data, mask):
    return bytes(b | 0x80 if (mask >> (i % 64)) & 1 else b for i, b in enumerate(data))


@SETTINGS
@given(STREAM, CHUNKS, st.sampled_from(["auto", "historique", "standard"]))
def test_arbitrary_bytes_never_raise_and_chunking_does_not_matter(data, sizes, mode):
    whole = Run(mode, group_max=32, frame_groups_max=8).feed([data])
    split = Run(mode, group_max=32, frame_groups_max=8).feed(chunked(data, sizes))
    assert split.events == whole.events
    assert split.counters() == whole.counters()
    assert [g[0] for g in split.good] == [g[0] for g in whole.good]
    for event in whole.events:
        assert event[1] is not None or len(event[2]) <= 32


@SETTINGS
@given(
    st.lists(frames(), min_size=1, max_size=4),
    CHUNKS,
    st.integers(0, 2**64 - 1),
    st.binary(max_size=20),
)
def test_encoded_frames_come_back_exactly(encoded, sizes, parity_mask, noise):
    noise = bytes(b for b in noise if b & 0x7F != 0x02)
    data = b"".join(noise + encode(mode, groups) for mode, groups in encoded)
    run = Run().feed(chunked(with_parity_bits(data, parity_mask), sizes))
    assert run.reader.frames_ok == len(encoded)
    assert run.reader.frames_bad == 0 and run.reader.groups_bad_checksum == 0
    assert [g[1] for g in run.good] == [groups for _, groups in encoded]
    for (_, groups), (_, _, frame) in zip(encoded, run.good, strict=True):
        assert frame == dict((g[0], g[2] if g[2] and not g[1] else g[1]) for g in groups)
        truth = dict((g[0], g[1]) for g in groups)
        assert linky.index_wh(frame) == linky.index_wh(truth)


def true_numbers(groups):
    truth = dict((g[0], g[1]) for g in groups)
    return linky.index_wh(truth), linky.power_va(truth), linky.tariff_indexes_wh(truth)


def assert_numbers_true_or_none(frame, truth):
    index, power, tariffs = truth
    assert linky.index_wh(frame) in (index, None)
    assert linky.power_va(frame) in (power, None)
    for label, wh in linky.tariff_indexes_wh(frame).items():
        assert tariffs.get(label) == wh


def differs_by_one_byte(got, expected, allowed):
    """True if got differs from expected in exactly one way `allowed` accepts."""
    a, b = got.encode(), expected.encode()
    if allowed == "substitution":
        if len(a) != len(b):
            return False
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 and abs(a[diff[0]] - b[diff[0]]) == 64
    return any(b[:i] + b[i + 1 :] == a for i in range(len(b)) if b[i] == 0x40)


def assert_good_frame_is_allowed(got, groups, mode, allowed, cut_allowed):
    """got (reported groups of a good frame) is a contiguous run of groups, at most one differing."""
    got_text = [checked_text(g, mode) for g in got]
    want_text = [checked_text(g, mode) for g in groups]
    if not cut_allowed:
        assert len(got_text) == len(want_text)
    for start in range(len(want_text) - len(got_text) + 1):
        window = want_text[start : start + len(got_text)]
        diff = [i for i in range(len(window)) if window[i] != got_text[i]]
        if not diff:
            assert len(got_text) < len(want_text), "an unchanged frame reported good"
            return
        if len(diff) == 1 and differs_by_one_byte(got_text[diff[0]], window[diff[0]], allowed):
            return
    raise AssertionError(f"good frame {got_text!r} is not an allowed form of {want_text!r}")


SENTINEL = {
    linky.HISTORIQUE: [("PAPP", "00001", None)],
    linky.STANDARD: [("SINSTS", "00001", None)],
}


@settings(max_examples=1500, deadline=None)
@given(frames(), st.data(), CHUNKS)
def test_one_substituted_byte_is_caught_or_harmless(frame, data, sizes):
    mode, groups = frame
    clean = encode(mode, groups)
    pos = data.draw(st.integers(0, len(clean) - 1), label="position")
    new = data.draw(st.integers(0, 255), label="new byte")
    assume(new & 0x7F != clean[pos])
    corrupted = clean[:pos] + bytes([new]) + clean[pos + 1 :]
    sentinel = encode(mode, SENTINEL[mode])
    run = Run().feed(chunked(corrupted + sentinel, sizes))
    cut_allowed = (new & 0x7F) in (0x02, 0x03)
    truth = true_numbers(groups)
    reported = [g for g in run.good if g[1] != SENTINEL[mode]]
    for _, got, frame_dict in reported:
        assert_good_frame_is_allowed(got, groups, mode, "substitution", cut_allowed)
        assert_numbers_true_or_none(frame_dict, truth)
    assert run.good and run.good[-1][1] == SENTINEL[mode]  # the reader is in step again


@settings(max_examples=1000, deadline=None)
@given(frames(), st.data())
def test_one_deleted_byte_is_caught_or_an_at_sign(frame, data):
    mode, groups = frame
    clean = encode(mode, groups)
    pos = data.draw(st.integers(0, len(clean) - 1), label="position")
    corrupted = clean[:pos] + clean[pos + 1 :]
    sentinel = encode(mode, SENTINEL[mode])
    run = Run().feed([corrupted + sentinel])
    truth = true_numbers(groups)
    for _, got, frame_dict in [g for g in run.good if g[1] != SENTINEL[mode]]:
        assert clean[pos] == 0x40
        assert_good_frame_is_allowed(got, groups, mode, "deletion", False)
        assert_numbers_true_or_none(frame_dict, truth)
    assert run.good and run.good[-1][1] == SENTINEL[mode]


# Frames with the characters that sit 64 away from framing or separator bytes: 'I' (HT), '`' (SP),
# 'J' (LF), 'M' (CR), 'B' (STX), 'C' (ETX), 'D' (EOT), plus '@', timestamps and an empty value.
EXHAUSTIVE = {
    linky.HISTORIQUE: [
        ("ADCO", "012345678901", None), ("OPTARIF", "HC..", None), ("HCHC", "001234567", None),
        ("HCHP", "000765432", None), ("PTEC", "HP..", None), ("PAPP", "00450", None),
        ("MOTDETAT", "a`b@cIJMBCD", None),
    ],
    linky.STANDARD: [
        ("ADSC", "012345678901", None), ("DATE", "", "H200214230806"),
        ("SMAXSN", "10802", "E200214175135"), ("SINSTI", "00012", None),
        ("DPM1", "00", " 200214060000"), ("EAST", "021849107", None),
        ("EASF01", "004855593", None), ("SINSTS", "02703", None),
        ("MSG1", "PAS DE  MESSAGE I`@JMBCD", None),
    ],
}  # fmt: skip


def test_every_single_byte_substitution_of_two_frames():
    """Property 3 over every position and every 7-bit value (bit 7 is masked anyway)."""
    for mode, groups in EXHAUSTIVE.items():
        clean = encode(mode, groups)
        sentinel = encode(mode, SENTINEL[mode])
        truth = true_numbers(groups)
        seen = {"cut": 0, "blind": 0}
        for pos in range(len(clean)):
            for new in range(128):
                if new == clean[pos]:
                    continue
                corrupted = clean[:pos] + bytes([new]) + clean[pos + 1 :]
                run = Run().feed([corrupted + sentinel])
                assert run.good and run.good[-1][1] == SENTINEL[mode]
                for _, got, frame_dict in run.good[:-1]:
                    assert_good_frame_is_allowed(
                        got, groups, mode, "substitution", new in (0x02, 0x03)
                    )
                    assert_numbers_true_or_none(frame_dict, truth)
                    seen["cut" if len(got) < len(groups) else "blind"] += 1
        # Both limits are exercised (and stay rare: about 0.3 % of the substitutions).
        assert 0 < seen["cut"] and 0 < seen["blind"] < len(clean) * 127 // 100, seen


def test_every_single_byte_deletion_of_two_frames():
    for mode, groups in EXHAUSTIVE.items():
        clean = encode(mode, groups)
        sentinel = encode(mode, SENTINEL[mode])
        at_signs = 0
        for pos in range(len(clean)):
            run = Run().feed([clean[:pos] + clean[pos + 1 :] + sentinel])
            assert run.good and run.good[-1][1] == SENTINEL[mode]
            for _, got, _ in run.good[:-1]:
                assert clean[pos] == 0x40
                assert_good_frame_is_allowed(got, groups, mode, "deletion", False)
                at_signs += 1
        assert at_signs == clean.count(b"@")


def test_the_blind_spot_is_real():
    """The documented limit, shown once: a digit turned into a letter 64 above passes the checksum;
    the numeric helpers then refuse the value instead of reporting a wrong index."""
    clean = linky.encode_frame([("BASE", "001234567")], linky.HISTORIQUE)
    corrupted = clean.replace(b"001234567", b"00123456w")  # '7' (0x37) + 64 = 'w' (0x77)
    reader = linky.TicReader()
    assert reader.feed(corrupted) == 1
    frame = reader.frame()
    assert frame == {"BASE": "00123456w"}
    assert linky.index_wh(frame) is None


def test_substitution_check_catches_a_reader_that_skips_checksums():
    """The property of test_one_substituted_byte_is_caught_or_harmless fails on a broken reader."""
    groups = [("BASE", "001234567", None), ("PAPP", "00450", None)]
    reported = [("BASE", "001234568", None), ("PAPP", "00450", None)]
    try:
        assert_good_frame_is_allowed(reported, groups, linky.HISTORIQUE, "substitution", False)
    except AssertionError:
        return
    raise AssertionError("a changed digit was accepted by the property")
