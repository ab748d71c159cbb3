"""EU863-870 region tables: data rates, payload limits, channels, RX windows, sub-bands, TX power.

Sources: LoRaWAN Regional Parameters v1.0.2rB (EU863-870, section 2.1) and RP002-1.0.x (same
tables), LoRaMac-node RegionEU868.h/.c (the stack in Pycom's firmware), duty-cycle sub-bands of
ETSI EN 300 220-2 / ERC Recommendation 70-03 Annex 1 as LoRaMac-node maps them.
Frequencies are integer Hz everywhere (a 32-bit float cannot hold 868.1 MHz exactly).
"""

from errors import RegionError

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


FREQ_MIN_HZ = const(863000000)
FREQ_MAX_HZ = const(870000000)

DR_MIN = const(0)
DR_MAX = const(7)
DR_MAX_LORA = const(6)  # DR7 is FSK 50 kbps: listed, not supported by this lib
# DR -> (spreading factor, bandwidth Hz); DR7 (FSK) has no entry.
_DR_SF_BW = (
    (12, 125000),
    (11, 125000),
    (10, 125000),
    (9, 125000),
    (8, 125000),
    (7, 125000),
    (7, 250000),
)
# Maximum MACPayload size M per DR0..DR7 (Regional Parameters 1.0.2rB section 2.1, tables
# without and with repeater compatibility); app payload N = M - 8 (FHDR w/o FOpts 7 + FPort 1).
_MAX_M = (59, 59, 59, 123, 250, 250, 250, 250)
_MAX_M_REPEATER = (59, 59, 59, 123, 230, 230, 230, 230)

DEFAULT_CHANNELS = (868100000, 868300000, 868500000)
JOIN_CHANNELS = DEFAULT_CHANNELS
DEFAULT_DR_MIN = const(0)  # data-rate range of the default channels: DR0..DR5
DEFAULT_DR_MAX = const(5)
JOIN_DR_DEFAULT = const(5)  # Pycom's LoRa.join() default in EU868
MAX_CHANNELS = const(16)

RX1_DR_OFFSET_MAX = const(5)
RX2_FREQUENCY_HZ = const(869525000)
RX2_DR = const(0)
RECEIVE_DELAY1_MS = const(1000)
RECEIVE_DELAY2_MS = const(2000)
JOIN_ACCEPT_DELAY1_MS = const(5000)
JOIN_ACCEPT_DELAY2_MS = const(6000)

MAX_EIRP_DBM = const(16)
TX_POWER_MAX_INDEX = const(7)  # TXPower 0..7 = MAX_EIRP - 0, 2, .. 14 dB

# Duty-cycle sub-bands: (first Hz, last Hz, divisor), closed intervals in frequency order covering
# 863..870 MHz without holes; the limit is 1/divisor (100 = 1 %, 1000 = 0.1 %, 10 = 10 %) and the
# LoRaMac-node off time after a frame is ToA * (divisor - 1).
# The ETSI bands follow LoRaMac-node's VerifyRfFreq edges (K 863-865 0.1 %, L 865-868 1 %,
# M 868.0-868.6 1 %, N 868.7-869.2 0.1 %, P 869.4-869.65 10 %, Q 869.7-870 1 %). 863-865 MHz is
# 0.1 % here (ERC 70-03 h1.3 and LoRaMac-node), not the 1 % some plans use for 863-868.
# LoRaMac-node rejects the three gaps between bands; here they fall back to the generic
# 863-870 MHz limit of 0.1 % (ERC 70-03 h1.2), each gap accounted on its own.
SUB_BANDS = (
    (863000000, 864999999, 1000),  # 0  K   (LoRaMac-node band 2)
    (865000000, 868000000, 100),  # 1  L   (band 0)
    (868000001, 868600000, 100),  # 2  M   (band 1): the default channels
    (868600001, 868699999, 1000),  # 3  gap
    (868700000, 869200000, 1000),  # 4  N   (band 5)
    (869200001, 869399999, 1000),  # 5  gap
    (869400000, 869650000, 10),  # 6  P   (band 3): RX2 869.525 MHz
    (869650001, 869699999, 1000),  # 7  gap
    (869700000, 870000000, 100),  # 8  Q   (band 4)
)
SUB_BAND_COUNT = const(9)

_CODR = ("4/5", "4/6", "4/7", "4/8")
# Also accepted on input, as by Semtech's lora_pkt_fwd: 2/3 = 4/6, 1/2 = 4/8.
_CODR_ALIASES = {"2/3": 2, "1/2": 4}
_DIGITS = "0123456789"


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_dr(dr):
    if not _is_int(dr) or not DR_MIN <= dr <= DR_MAX:
        raise RegionError("dr: expected an EU868 data rate 0..7, got %r" % (dr,))


def is_lora_dr(dr):
    """True for a LoRa data rate this lib supports (DR0..DR6), False otherwise (DR7 FSK, junk)."""
    return _is_int(dr) and DR_MIN <= dr <= DR_MAX_LORA


def dr_to_sf_bw(dr):
    """(spreading factor, bandwidth Hz) of EU868 data rate dr, e.g. dr_to_sf_bw(5) == (7, 125000).

    dr: 0..6. DR7 (FSK 50 kbps) and anything else raise RegionError naming dr.
    """
    _check_dr(dr)
    if dr > DR_MAX_LORA:
        raise RegionError("dr: DR7 is FSK 50 kbps, not supported (LoRa DR0..DR6 only)")
    return _DR_SF_BW[dr]


def sf_bw_to_dr(sf, bw_hz):
    """EU868 data rate (0..6) of a LoRa spreading factor and bandwidth in Hz.

    Raises RegionError when the pair is not an EU868 data rate (e.g. SF8 at 250 kHz).
    """
    for dr in range(DR_MAX_LORA + 1):
        if _is_int(sf) and _is_int(bw_hz) and _DR_SF_BW[dr] == (sf, bw_hz):
            return dr
    raise RegionError("sf/bw_hz: SF%r at %r Hz is not an EU868 data rate" % (sf, bw_hz))


def max_mac_payload(dr, repeater=False):
    """Maximum MACPayload size M in bytes for data rate dr (0..7).

    repeater=True gives the repeater-compatible table (230 instead of 250 from DR4 up).
    """
    _check_dr(dr)
    return (_MAX_M_REPEATER if repeater else _MAX_M)[dr]


def max_app_payload(dr, repeater=False):
    """Maximum application payload N (FRMPayload, no FOpts) in bytes for data rate dr (0..7).

    51, 51, 51, 115, 242, 242, 242, 242 (repeater=True: 222 from DR4 up).
    """
    return max_mac_payload(dr, repeater) - 8


def rx1_dr(up_dr, offset):
    """RX1 data rate for uplink data rate up_dr (0..7) and RX1DROffset offset (0..5).

    EU868: max(up_dr - offset, 0). Raises RegionError naming up_dr or offset.
    """
    if not _is_int(up_dr) or not DR_MIN <= up_dr <= DR_MAX:
        raise RegionError("up_dr: expected an EU868 data rate 0..7, got %r" % (up_dr,))
    if not _is_int(offset) or not 0 <= offset <= RX1_DR_OFFSET_MAX:
        raise RegionError("offset: expected an RX1 DR offset 0..5, got %r" % (offset,))
    dr = up_dr - offset
    return dr if dr > 0 else 0


def check_frequency(freq_hz):
    """Return freq_hz (integer Hz) if it lies in 863000000..870000000, else raise RegionError."""
    if not _is_int(freq_hz):
        raise RegionError("freq_hz: expected an integer number of Hz, got %r" % (freq_hz,))
    if not FREQ_MIN_HZ <= freq_hz <= FREQ_MAX_HZ:
        raise RegionError("freq_hz: %d Hz is outside EU868 863000000..870000000" % freq_hz)
    return freq_hz


def rx1_frequency(up_freq_hz):
    """RX1 downlink frequency in Hz for an uplink on up_freq_hz: the same frequency in EU868."""
    return check_frequency(up_freq_hz)


def sub_band(freq_hz):
    """Index into SUB_BANDS of the duty-cycle sub-band holding freq_hz (integer Hz, 863..870 MHz).

    Raises RegionError (freq_hz) outside the band.
    """
    check_frequency(freq_hz)
    for index in range(SUB_BAND_COUNT):
        if freq_hz <= SUB_BANDS[index][1]:
            return index
    raise RegionError(
        "freq_hz: %d Hz is in no sub-band" % freq_hz
    )  # unreachable: table has no holes


def sub_band_divisor(index):
    """Duty-cycle limit of sub-band index as its divisor: the limit is 1/divisor (100 = 1 %)."""
    if not _is_int(index) or not 0 <= index < SUB_BAND_COUNT:
        raise RegionError("index: expected a sub-band 0..%d, got %r" % (SUB_BAND_COUNT - 1, index))
    return SUB_BANDS[index][2]


def duty_cycle_divisor(freq_hz):
    """Duty-cycle divisor of the sub-band holding freq_hz: 100 for 868.1 MHz (1 %)."""
    return SUB_BANDS[sub_band(freq_hz)][2]


def tx_power_eirp(tx_power):
    """Max EIRP in dBm for LinkADRReq TXPower index tx_power (0..7): 16 - 2 * tx_power."""
    if not _is_int(tx_power) or not 0 <= tx_power <= TX_POWER_MAX_INDEX:
        raise RegionError("tx_power: expected a TXPower index 0..7, got %r" % (tx_power,))
    return MAX_EIRP_DBM - 2 * tx_power


def datr(sf, bw_hz):
    """Semtech UDP datr string of a LoRa modulation: datr(7, 125000) == "SF7BW125".

    sf: 6..12; bw_hz: 125000, 250000 or 500000. Raises RegionError naming sf or bw_hz.
    """
    if not _is_int(sf) or not 6 <= sf <= 12:
        raise RegionError("sf: expected a spreading factor 6..12, got %r" % (sf,))
    if bw_hz not in (125000, 250000, 500000) or not _is_int(bw_hz):
        raise RegionError("bw_hz: expected 125000, 250000 or 500000 Hz, got %r" % (bw_hz,))
    return "SF%dBW%d" % (sf, bw_hz // 1000)


def _digits(text):
    if not text or len(text) > 4:
        return False
    for c in text:
        if c not in _DIGITS:
            return False
    return True


def parse_datr(text):
    """(spreading factor, bandwidth Hz) of a datr string: parse_datr("SF12BW125") == (12, 125000).

    The whole string must match SF(\\d+)BW(\\d+) (as ChirpStack's gateway bridge requires) with
    SF 6..12 and BW 125/250/500; raises RegionError naming datr otherwise.
    """
    if not isinstance(text, str) or not text.startswith("SF"):
        raise RegionError("datr: expected text like SF7BW125, got %r" % (text,))
    cut = text.find("BW")
    sf_text = text[2:cut] if cut > 0 else ""
    bw_text = text[cut + 2 :] if cut > 0 else ""
    if not (_digits(sf_text) and _digits(bw_text)):
        raise RegionError("datr: expected text like SF7BW125, got %r" % (text,))
    sf = int(sf_text)
    bw_hz = int(bw_text) * 1000
    if not 6 <= sf <= 12 or bw_hz not in (125000, 250000, 500000):
        raise RegionError("datr: expected SF6..12 and BW125/250/500, got %r" % (text,))
    return sf, bw_hz


def codr(cr):
    """Semtech UDP codr string of coding rate cr (1..4): codr(1) == "4/5"."""
    if not _is_int(cr) or not 1 <= cr <= 4:
        raise RegionError("cr: expected a coding rate 1..4 (4/5..4/8), got %r" % (cr,))
    return _CODR[cr - 1]


def parse_codr(text):
    """Coding rate 1..4 of a codr string "4/5".."4/8" ("2/3" and "1/2" accepted as 4/6, 4/8).

    Raises RegionError naming codr on anything else.
    """
    for index in range(4):
        if text == _CODR[index]:
            return index + 1
    if isinstance(text, str) and text in _CODR_ALIASES:
        return _CODR_ALIASES[text]
    raise RegionError("codr: expected 4/5, 4/6, 4/7 or 4/8, got %r" % (text,))
