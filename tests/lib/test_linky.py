"""Linky TIC reader and encoder (lib/linky.py): public capture vectors, streaming, corruption, helpers.

Public captures used as vectors (groups copied from real meters, checksums recomputed below):
- lains/teleinfo-nom, assets/stream_legacy_raw.txt and assets/stream_standard_raw.txt (a Tempo
  meter in historique mode, a three-phase Linky in standard mode, with real line corruption);
- domoticz/domoticz, hardware/Teleinfo.cpp (header comment: a historique HC.. meter);
- Enedis-OSS/TIC2WebSocket, src/test/java/tic/frame/checksum/TICChecksumTest.java.
They settle the checksum ranges: historique sums `label SP value` (the SP before the checksum
excluded), standard sums up to and including the HT before the checksum.
"""

import linky
from errors import TicError
from testkit import raises

STX = b"\x02"
ETX = b"\x03"
EOT = b"\x04"

# Real historique groups (text between LF and CR).
HISTORIQUE_TEMPO = [  # lains/teleinfo-nom assets/stream_legacy_raw.txt
    "ADCO 031961098836 M",
    "OPTARIF BBR( S",
    "ISOUSC 45 ?",
    "BBRHCJB 001478389 E",
    "BBRHPJB 001012295 >",
    "BBRHCJW 000134553 G",
    "BBRHPJW 000213701 M",
    "BBRHCJR 000025098 E",
    "BBRHPJR 000006010 A",
    "PTEC HPJB P",
    "DEMAIN BLEU V",
    "IINST 001 X",
    "IMAX 060 E",
    "PAPP 00120 $",
    "HHPHC A ,",
    "MOTDETAT 000000 B",
]
HISTORIQUE_OTHERS = [
    "ADCO 271028237723 C",  # domoticz/domoticz hardware/Teleinfo.cpp
    "OPTARIF HC.. <",
    "HCHC 013149843 '",
    "HCHP 013016759 3",
    "IMAX 049 L",
    "PAPP 00450 *",
    "HHPHC D /",
    "ADCO 031664001115 3",  # Enedis-OSS/TIC2WebSocket TICChecksumTest
]
# Real standard groups: lains/teleinfo-nom assets/stream_standard_raw.txt (one frame, abridged).
STANDARD_FRAME = [
    "ADSC\t041776199277\tI",
    "VTIC\t02\tJ",
    "DATE\tH200214230806\t\t=",
    "NGTF\t     TEMPO      \tF",
    "LTARF\t   HC  BLANC    \t6",
    "EAST\t021849107\t/",
    "EASF01\t004855593\tI",
    "EASF02\t014090959\tH",
    "EASF03\t000487132\t=",
    "EASF04\t001481464\tA",
    "EASF05\t000227596\tE",
    "EASF06\t000706363\t@",
    "EASF07\t000000000\t(",
    'EASF10\t000000000\t"',
    "EASD01\t021849107\t@",
    "IRMS1\t003\t1",
    "URMS1\t237\tF",
    "PREF\t30\tB",
    "PCOUP\t30\t\\",
    "SINSTS\t02703\tR",
    "SMAXSN\tH200214175135\t10802\t7",
    "SMAXSN-1\tH200213085118\t09562\t ",
    "CCASN\tH200214230000\t01650\t5",
    "UMOY1\tH200214230000\t237\t(",
    "STGE\t463A0800\tK",
    "DPM1\t 200214060000\t00\t\\",
    "MSG1\tPAS DE          MESSAGE         \t<",
    "PRM\t07361794479930\tF",
    "RELAIS\t001\tC",
    "NTARF\t03\tP",
    "NJOURF+1\t00\tB",
    "PJOURF+1\t00004001 06004002 22004001 NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE"
    " NONUTILE NONUTILE NONUTILE\t.",
]
STANDARD_OTHERS = ["ADSC\t031664001115\t)"]  # Enedis-OSS/TIC2WebSocket TICChecksumTest
# Groups the same public standard capture received corrupted on the line (one byte changed each).
STANDARD_CORRUPTED = [
    "CC@SN-1\tH200214225000\t00786\t ",  # A -> @
    "NTARF\t 3\tP",  # 0 -> SP
    "EASF09\t 00000000\t*",
    "SMAXSN2-1\tH200213101142\t 3366\t@",
    "@COUP\t30\t\\",  # P -> @
    "SINSTS1\t0066 \tC",
]


def group_bytes(text):
    return b"\n" + text.encode() + b"\r"


def frame_bytes(texts):
    return STX + b"".join(group_bytes(t) for t in texts) + ETX


class Recorder:
    """A reader with an on_group recorder: groups = [(label, value, timestamp, ok, frame_index)]."""

    def __init__(self, mode="auto", **kwargs):
        self.groups = []
        self.frames = []
        self.reader = linky.TicReader(
            mode, on_group=self.on_group, on_frame=self.frames.append, **kwargs
        )

    def on_group(self, label, value, timestamp, ok):
        self.groups.append((label, value, timestamp, ok, self.reader.frame_index))

    def feed_bytewise(self, data):
        for i in range(len(data)):
            self.reader.feed(data[i : i + 1])


def with_parity(data):
    """data as an 8N1 adapter records a 7E1 line: bit 7 carries the even parity bit."""
    out = bytearray(data)
    for i in range(len(out)):
        ones = 0
        b = out[i]
        while b:
            ones += b & 1
            b >>= 1
        if ones & 1:
            out[i] |= 0x80
    return bytes(out)


def test_checksum_historique_public_captures():
    for text in HISTORIQUE_TEMPO + HISTORIQUE_OTHERS:
        raw = text.encode()
        assert linky.checksum(raw[:-2]) == raw[-1], text
        assert linky.checksum(raw[:-1]) != raw[-1], text  # the SP before it is not summed
    # Worked example: sum("ADCO 031664001115") = 915 = 0x393; & 0x3F = 0x13; + 0x20 = 0x33 '3'.
    assert sum(b"ADCO 031664001115") == 0x393
    assert linky.checksum("ADCO 031664001115") == ord("3")
    # PTEC HP.. has checksum SP: the group ends with two blanks (domoticz capture shows `PTEC HP..`).
    assert linky.checksum("PTEC HP..") == 0x20


def test_checksum_standard_public_captures():
    for text in STANDARD_FRAME + STANDARD_OTHERS:
        raw = text.encode()
        assert linky.checksum(raw[:-1]) == raw[-1], text
    assert linky.checksum("ADSC\t031664001115\t") == ord(")")
    assert linky.checksum("ADSC\t031664001115") != ord(")")  # the last HT is summed


def test_public_corrupted_groups_fail_their_checksum():
    rec = Recorder()
    rec.reader.feed(frame_bytes(STANDARD_CORRUPTED))
    assert [g[3] for g in rec.groups] == [False] * len(STANDARD_CORRUPTED)
    assert rec.reader.groups_bad_checksum == len(STANDARD_CORRUPTED)
    assert rec.reader.frames_ok == 0 and rec.reader.frames_bad == 1
    assert rec.reader.frame() is None


def test_historique_frame_fed_byte_by_byte():
    rec = Recorder()
    rec.feed_bytewise(frame_bytes(HISTORIQUE_TEMPO))
    r = rec.reader
    assert (r.frames_ok, r.frames_bad, r.groups_ok, r.groups_bad_checksum) == (1, 0, 16, 0)
    assert r.detected == "historique"
    frame = r.frame()
    assert r.frame() is None  # pulled once
    assert frame["ADCO"] == "031961098836" and frame["PTEC"] == "HPJB" and frame["DEMAIN"] == "BLEU"
    assert len(frame) == 16
    assert linky.meter_id(frame) == "031961098836"
    assert linky.tariff_period(frame) == "HPJB"
    assert linky.power_va(frame) == 120
    assert linky.index_wh(frame) == 1478389 + 1012295 + 134553 + 213701 + 25098 + 6010
    indexes = linky.tariff_indexes_wh(frame)
    assert indexes == {
        "BBRHCJB": 1478389,
        "BBRHPJB": 1012295,
        "BBRHCJW": 134553,
        "BBRHPJW": 213701,
        "BBRHCJR": 25098,
        "BBRHPJR": 6010,
    }
    assert rec.frames == [frame]
    assert rec.groups[0] == ("ADCO", "031961098836", None, True, 0)


def test_standard_frame_fed_byte_by_byte():
    rec = Recorder()
    rec.feed_bytewise(frame_bytes(STANDARD_FRAME))
    r = rec.reader
    assert (r.frames_ok, r.frames_bad, r.groups_ok) == (1, 0, len(STANDARD_FRAME))
    assert r.detected == "standard"
    frame = r.frame()
    assert linky.meter_id(frame) == "041776199277"
    assert linky.index_wh(frame) == 21849107
    assert linky.power_va(frame) == 2703
    assert linky.tariff_period(frame) == "HC  BLANC"
    assert frame["NGTF"] == "     TEMPO      "  # values keep their padding
    assert frame["DATE"] == "H200214230806"  # timestamp of a group with an empty value
    assert frame["SMAXSN"] == "10802"
    assert frame["MSG1"] == "PAS DE          MESSAGE         "
    assert linky.tariff_indexes_wh(frame)["EASF02"] == 14090959
    assert len(linky.tariff_indexes_wh(frame)) == 8
    by_label = {}
    for g in rec.groups:
        by_label[g[0]] = g
    assert by_label["DATE"][1:4] == ("", "H200214230806", True)
    assert by_label["SMAXSN-1"][1:4] == ("09562", "H200213085118", True)
    assert by_label["DPM1"][1:4] == ("00", " 200214060000", True)  # season blank
    assert by_label["EAST"][1:4] == ("021849107", None, True)


def test_feed_accepts_none_and_empty_reads():
    r = linky.TicReader()
    assert r.feed(None) == 0
    assert r.feed(b"") == 0
    data = frame_bytes(HISTORIQUE_TEMPO)
    assert r.feed(data[:10]) == 0
    assert r.feed(None) == 0
    assert r.feed(bytearray(data[10:50])) == 0
    assert r.feed(memoryview(data)[50:]) == 1
    assert r.frames_ok == 1


def test_two_frames_in_one_read_newest_is_pulled():
    r = linky.TicReader()
    first = frame_bytes(HISTORIQUE_OTHERS[:2])
    second = frame_bytes(HISTORIQUE_OTHERS[2:])
    assert r.feed(first + second) == 2
    frame = r.frame()
    assert "HCHC" in frame and "OPTARIF" not in frame
    assert r.frame_index == 1


def test_bad_checksum_group_spoils_its_frame_only():
    texts = list(HISTORIQUE_TEMPO)
    texts[4] = "BBRHPJB 001012296 >"  # value changed, checksum kept
    rec = Recorder()
    rec.reader.feed(frame_bytes(texts) + frame_bytes(HISTORIQUE_TEMPO))
    r = rec.reader
    assert (r.frames_ok, r.frames_bad, r.groups_bad_checksum) == (1, 1, 1)
    bad = [g for g in rec.groups if not g[3]]
    assert bad == [("BBRHPJB", "001012296", None, False, 0)]
    assert r.frame()["BBRHPJB"] == "001012295"
    assert len(rec.frames) == 1


def test_eot_discards_the_frame():
    data = frame_bytes(HISTORIQUE_TEMPO)
    r = linky.TicReader()
    assert r.feed(data[:60] + EOT + data[60:]) == 0  # the rest of the cut frame is skipped
    assert (r.frames_ok, r.frames_bad, r.frames_interrupted) == (0, 0, 1)
    assert r.frame() is None
    assert r.feed(data) == 1
    assert r.frames_interrupted == 1 and r.frames_ok == 1


def test_noise_before_first_stx_and_between_frames():
    frame = frame_bytes(HISTORIQUE_TEMPO)
    noise = b"\x00\xff garbage \r\n\x03 PAPP 00120 $\r"
    r = linky.TicReader()
    # Starting mid-frame: the tail of a frame, then noise, then two frames with noise between.
    assert r.feed(frame[37:] + noise + frame + noise + frame) == 2
    assert (r.frames_ok, r.frames_bad, r.stray_bytes) == (2, 0, 0)


def test_stray_bytes_between_groups_spoil_the_frame():
    frame = frame_bytes(HISTORIQUE_TEMPO)
    cut = frame.index(b"\r") + 1
    r = linky.TicReader()
    assert r.feed(frame[:cut] + b"xx" + frame[cut:]) == 0
    assert (r.frames_ok, r.frames_bad, r.stray_bytes, r.groups_bad_checksum) == (0, 1, 2, 0)


def test_group_without_cr_is_malformed():
    rec = Recorder()
    data = frame_bytes(HISTORIQUE_TEMPO)
    broken = data.replace(b"IINST 001 X\r", b"IINST 0\x0c1 X")  # CR lost, a byte garbled
    rec.reader.feed(broken)
    r = rec.reader
    assert (r.frames_ok, r.frames_bad, r.groups_malformed) == (0, 1, 1)
    assert (None, "IINST 0\x0c1 X", None, False, 0) in rec.groups


def test_malformed_groups_are_reported_not_raised():
    texts = [
        "ADCO031961098836M",
        "A",
        "",
        "A ",
        " BASE 000000001 !",
        "SMAXSN\tH2002\t10802\t7",
        "PAPP 00120\t$",
    ]
    # Right checksums around bytes a TIC group never holds: a control byte, DEL.
    for body in ("PAPP 00\x0120", "PAPP 00\x7f20", "ADSC\t0123\x0b\t"):
        cs = chr(linky.checksum(body))
        texts.append(body + (cs if body.endswith("\t") else " " + cs))
    rec = Recorder()
    rec.reader.feed(frame_bytes(texts))
    r = rec.reader
    assert r.groups_malformed == len(texts) and r.groups_ok == 0 and r.frames_bad == 1
    assert [g[0] for g in rec.groups] == [None] * len(texts)
    assert rec.groups[0][1] == "ADCO031961098836M"


def test_overlong_group_dropped_and_counted():
    r = linky.TicReader(group_max=32)
    size = r.buffer_size
    long_group = b"\nMSG1 " + b"X" * 200 + b" ?\r"
    assert r.feed(STX + long_group + group_bytes("PAPP 00120 $") + ETX) == 0
    assert r.overruns == 1 and r.frames_bad == 1 and r.groups_ok == 1
    assert r.buffer_size == size and r.buffered <= size
    assert r.feed(b"\x02\n" + b"Y" * 5000) == 0  # a stream with no CR at all
    assert r.buffered <= size and r.overruns == 2
    assert r.feed(frame_bytes(HISTORIQUE_OTHERS)) == 1  # recovers at the next STX


def test_too_many_groups_in_a_frame():
    r = linky.TicReader(frame_groups_max=10)
    assert r.feed(frame_bytes(HISTORIQUE_TEMPO)) == 0
    assert r.overruns == 1 and r.frames_bad == 1
    assert r.feed(frame_bytes(HISTORIQUE_TEMPO[:10])) == 1


def test_stx_inside_a_frame_restarts_it():
    data = frame_bytes(HISTORIQUE_TEMPO)
    r = linky.TicReader()
    assert r.feed(data[:50] + data) == 1
    assert (r.frames_ok, r.frames_bad, r.frame_index) == (1, 1, 1)


def test_etx_inside_a_group_spoils_the_frame():
    r = linky.TicReader()
    assert r.feed(STX + group_bytes("PAPP 00120 $") + b"\nIINST 0" + ETX) == 0
    assert (r.frames_bad, r.groups_malformed) == (1, 1)


def test_empty_frame_is_not_good():
    r = linky.TicReader()
    assert r.feed(STX + ETX) == 0
    assert r.frames_bad == 1


def test_parity_bit_is_masked():
    data = with_parity(frame_bytes(STANDARD_FRAME))
    assert max(data) >= 0x80
    r = linky.TicReader()
    assert r.feed(data) == 1
    assert linky.index_wh(r.frame()) == 21849107


def test_mode_auto_detection_and_forced_modes():
    hist = frame_bytes(HISTORIQUE_TEMPO)
    std = frame_bytes(STANDARD_FRAME)
    auto = linky.TicReader()
    assert auto.feed(hist) == 1 and auto.detected == "historique"
    assert auto.feed(std) == 1 and auto.detected == "standard"
    forced = linky.TicReader("historique")
    assert forced.feed(hist) == 1
    assert forced.feed(std) == 0 and forced.groups_ok == len(HISTORIQUE_TEMPO)
    forced = linky.TicReader("standard")
    assert forced.feed(std) == 1
    assert forced.feed(hist) == 0 and forced.groups_malformed == len(HISTORIQUE_TEMPO)
    assert linky.BAUDRATE["historique"] == 1200 and linky.BAUDRATE["standard"] == 9600


def test_keep_limits_the_frame_dict():
    r = linky.TicReader(keep=linky.ENERGY_LABELS)
    assert r.feed(frame_bytes(STANDARD_FRAME)) == 1
    frame = r.frame()
    assert "MSG1" not in frame and "PJOURF+1" not in frame
    assert linky.index_wh(frame) == 21849107 and linky.meter_id(frame) == "041776199277"
    assert frame["EASF01"] == "004855593" and frame["EASF10"] == "000000000"
    # EASF01 and EASF10 share length and byte sum: the lookup still compares the bytes.
    r = linky.TicReader(keep=("EASF10", "NOPE"))
    assert r.feed(frame_bytes(STANDARD_FRAME)) == 1
    assert r.frame() == {"EASF10": "000000000"}
    # Groups outside `keep` are still checked.
    texts = list(STANDARD_FRAME)
    texts[-1] = texts[-1][:-1] + "/"
    assert r.feed(frame_bytes(texts)) == 0 and r.groups_bad_checksum == 1


def test_encoder_reproduces_public_groups():
    for text in HISTORIQUE_TEMPO + HISTORIQUE_OTHERS:
        label, value = text[:-2].split(" ", 1)
        assert linky.encode_group(label, value, "historique") == group_bytes(text), text
    for text in STANDARD_FRAME + STANDARD_OTHERS:
        parts = text[:-2].split("\t")
        if len(parts) == 3:
            got = linky.encode_group(parts[0], parts[2], "standard", parts[1])
        else:
            got = linky.encode_group(parts[0], parts[1], "standard")
        assert got == group_bytes(text), text
    assert linky.encode_group("PTEC", "HP..", "historique") == b"\nPTEC HP..  \r"


def test_encoder_decoder_round_trip():
    groups = [
        ("ADSC", "012345678901"),
        ("DATE", "", "E200426132229"),
        ("EAST", "000123456"),
        ("EASF01", "000100000"),
        ("SMAXSN", "05780", "e200426101112"),
        ("MSG1", "A B  C"),
        ("PRM", ""),
    ]
    data = linky.encode_frame(groups, "standard")
    assert data[:1] == STX and data[-1:] == ETX
    rec = Recorder()
    rec.feed_bytewise(data)
    assert [(g[0], g[1], g[2]) for g in rec.groups] == [
        (g[0], g[1], g[2] if len(g) == 3 else None) for g in groups
    ]
    frame = rec.reader.frame()
    assert frame["DATE"] == "E200426132229" and frame["PRM"] == "" and frame["SMAXSN"] == "05780"
    hist = {"ADCO": "012345678901", "BASE": "001234567", "PTEC": "TH..", "PAPP": "00420", "X": ""}
    r = linky.TicReader("historique")
    assert r.feed(linky.encode_frame(hist, "historique")) == 1
    frame = r.frame()
    assert frame == hist
    assert linky.index_wh(frame) == 1234567 and linky.power_va(frame) == 420


def test_encoder_rejects_misuse():
    raises(TicError, linky.encode_group, "ADCO", "1", "auto")
    raises(TicError, linky.encode_group, "ADCO", "1", "legacy")
    raises(TicError, linky.encode_group, "BASE", "1", "historique", "E200426132229")
    raises(TicError, linky.encode_group, "DATE", "", "standard", "X200426132229")
    raises(TicError, linky.encode_group, "DATE", "", "standard", "E2004261322")
    raises(TicError, linky.encode_group, "", "1", "standard")
    raises(TicError, linky.encode_group, "A B", "1", "historique")
    raises(TicError, linky.encode_group, "MSG1", "a\tb", "standard")
    raises(TicError, linky.encode_group, "MSG1", "a\rb", "historique")
    raises(TicError, linky.encode_group, "MSG1", "X" * 200, "standard")
    raises(TicError, linky.encode_group, "MSG1", 12, "standard")
    raises(TicError, linky.encode_frame, [("ADCO",)], "historique")
    raises(TicError, linky.encode_frame, ["ADCO"], "historique")


def test_reader_rejects_misuse():
    raises(TicError, linky.TicReader, "legacy")
    raises(TicError, linky.TicReader, "auto", None, None, None, 4)
    raises(TicError, linky.TicReader, "auto", None, None, None, 128, 0)
    r = linky.TicReader()
    raises(TicError, r.feed, "\x02\nADCO 1 A\r\x03")
    raises(TicError, linky.TicReader, "auto", None, None, (b"EAST",))
    raises(TicError, linky.TicReader, "auto", None, None, 5)
    assert isinstance(TicError("x"), ValueError)


def test_helpers_reject_non_numbers_and_missing_labels():
    assert linky.index_wh({}) is None
    assert linky.index_wh({"HCHC": "000000010", "HCHP": "000000020"}) == 30
    assert linky.index_wh({"HCHC": "000000010"}) is None  # HCHP missing
    assert linky.index_wh({"EJPHN": "000000100", "EJPHPM": "000000001"}) == 101
    assert linky.index_wh({"BASE": "0001p2345"}) is None
    assert linky.index_wh({"BASE": "1_000"}) is None
    assert linky.index_wh({"BASE": "+1000"}) is None
    assert linky.index_wh({"EAST": "", "BASE": "1"}) is None
    assert linky.power_va({"PAPP": "00450"}) == 450
    assert linky.power_va({"PAPP": "0045O"}) is None
    assert linky.power_va({}) is None
    assert linky.tariff_period({}) is None and linky.meter_id({}) is None
    assert linky.power_va({"PAPP": 450}) is None  # values are str
    raises(TicError, linky.index_wh, None)
    raises(TicError, linky.power_va, [("PAPP", "00450")])
    raises(TicError, linky.meter_id, "ADCO")
    raises(TicError, linky.checksum, 5)
    assert linky.tariff_indexes_wh({"HCHC": "1", "HCHP": "x", "EASF10": "000000007"}) == {
        "HCHC": 1,
        "EASF10": 7,
    }


def test_frame_index_counts_stx():
    rec = Recorder()
    data = frame_bytes(HISTORIQUE_OTHERS[:1])
    rec.reader.feed(b"junk" + data + data[:5] + EOT + data)
    assert [g[4] for g in rec.groups] == [0, 2]
    assert rec.reader.frame_index == 2
