"""LoRa time on air, exact to the microsecond in integer arithmetic.

Formula of the Semtech SX1276 datasheet (section 4.1.1.7) and application note AN1200.13
("LoRa Modem Designer's Guide"):
    Ts       = 2^SF / BW                                    (symbol time)
    Tpreamble = (n_preamble + 4.25) * Ts
    n_payload = 8 + max(ceil((8PL - 4SF + 28 + 16CRC - 20IH) / (4(SF - 2DE))) * (CR + 4), 0)
    ToA       = Tpreamble + n_payload * Ts
with PL the PHY payload length in bytes, CRC 1 when the payload CRC is on, IH 1 for implicit
header, DE 1 with low data rate optimisation, CR 1..4 for coding rate 4/5..4/8.
Ts is an integer number of microseconds for 125/250/500 kHz (2^SF * 8/4/2 µs) and a multiple
of 4 µs, so the 4.25-symbol preamble tail is exact too.
"""

from errors import RegionError

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


SF_MIN = const(6)
SF_MAX = const(12)
CR_MIN = const(1)
CR_MAX = const(4)
PAYLOAD_MAX = const(255)
PREAMBLE_MIN = const(6)
PREAMBLE_MAX = const(65535)
BANDWIDTHS_HZ = (125000, 250000, 500000)
# Semtech's rule: low data rate optimisation is mandated when the symbol time reaches 16 ms.
LOW_DR_OPT_SYMBOL_US = const(16000)


def _check_int(name, value, low, high):
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RegionError("%s: expected an integer %d..%d, got %r" % (name, low, high, value))


def _check_bw(bw_hz):
    if not isinstance(bw_hz, int) or isinstance(bw_hz, bool) or bw_hz not in BANDWIDTHS_HZ:
        raise RegionError("bw_hz: expected 125000, 250000 or 500000 Hz, got %r" % (bw_hz,))


def symbol_time_us(sf, bw_hz):
    """Symbol time in integer microseconds: 2^sf * 1e6 / bw_hz.

    sf: spreading factor 6..12; bw_hz: 125000, 250000 or 500000.
    Raises RegionError (naming sf or bw_hz) on values outside those ranges.
    """
    _check_int("sf", sf, SF_MIN, SF_MAX)
    _check_bw(bw_hz)
    # 1e6 / bw_hz is 8, 4 or 2: exact, and no long int on MicroPython (small ints are 31-bit)
    return (1 << sf) * (1000000 // bw_hz)


def low_dr_opt_auto(sf, bw_hz):
    """True when low data rate optimisation is mandated: symbol time >= 16 ms.

    That is SF11 and SF12 at 125 kHz, and SF12 at 250 kHz (LoRaMac-node sets it for the same
    three); in EU868 LoRaWAN only SF11/SF12 at 125 kHz (DR1, DR0) are concerned.
    """
    return symbol_time_us(sf, bw_hz) >= LOW_DR_OPT_SYMBOL_US


def payload_symbols(sf, bw_hz, payload_len, cr=1, crc=True, implicit_header=False, low_dr_opt=None):
    """Number of payload symbols (header included, preamble excluded) as an int.

    Arguments as for time_on_air_us().
    """
    ts = symbol_time_us(sf, bw_hz)
    _check_int("payload_len", payload_len, 0, PAYLOAD_MAX)
    _check_int("cr", cr, CR_MIN, CR_MAX)
    if low_dr_opt is None:
        de = 1 if ts >= LOW_DR_OPT_SYMBOL_US else 0
    else:
        de = 1 if low_dr_opt else 0
    num = 8 * payload_len - 4 * sf + 28 + (16 if crc else 0) - (20 if implicit_header else 0)
    den = 4 * (sf - 2 * de)
    blocks = -((-num) // den)  # ceil for either sign
    if blocks < 0:
        blocks = 0
    return 8 + blocks * (cr + 4)


def time_on_air_us(
    sf, bw_hz, payload_len, cr=1, preamble=8, crc=True, implicit_header=False, low_dr_opt=None
):
    """Time on air of one LoRa frame in integer microseconds (exact).

    sf: spreading factor 6..12 (the SX1276 needs implicit header at SF6);
    bw_hz: bandwidth in Hz, 125000 / 250000 / 500000;
    payload_len: PHY payload length in bytes, 0..255 (LoRaWAN: MHDR..MIC);
    cr: coding rate 1..4 for 4/5..4/8;
    preamble: programmed preamble length in symbols, 6..65535 (LoRaWAN uses 8; 4.25 symbols
        of sync word and start-of-frame delimiter are added);
    crc: payload CRC on (LoRaWAN uplinks: True, downlinks: False);
    implicit_header: True for implicit header mode (LoRaWAN: False);
    low_dr_opt: None = automatic (on when the symbol time is >= 16 ms), True/False forces it.
    Raises RegionError naming the field on an out-of-range value.
    """
    ts = symbol_time_us(sf, bw_hz)
    _check_int("preamble", preamble, PREAMBLE_MIN, PREAMBLE_MAX)
    n = payload_symbols(sf, bw_hz, payload_len, cr, crc, implicit_header, low_dr_opt)
    # (preamble + 4.25) * Ts = (4 * preamble + 17) * Ts / 4, and Ts is a multiple of 4 us.
    return (4 * preamble + 17) * (ts // 4) + n * ts


def time_on_air_ms(
    sf, bw_hz, payload_len, cr=1, preamble=8, crc=True, implicit_header=False, low_dr_opt=None
):
    """Time on air in milliseconds as a float (time_on_air_us() / 1000); same arguments.

    For integer budgets (duty cycle) use time_on_air_ms_ceil().
    """
    return (
        time_on_air_us(sf, bw_hz, payload_len, cr, preamble, crc, implicit_header, low_dr_opt)
        / 1000
    )


def time_on_air_ms_ceil(
    sf, bw_hz, payload_len, cr=1, preamble=8, crc=True, implicit_header=False, low_dr_opt=None
):
    """Time on air in whole milliseconds, rounded up (int); same arguments as time_on_air_us().

    What the duty-cycle accountant (dutycycle.py) wants: rounding up never under-counts airtime.
    """
    us = time_on_air_us(sf, bw_hz, payload_len, cr, preamble, crc, implicit_header, low_dr_opt)
    return (us + 999) // 1000
