"""Radio cost of the sensor's readings: bytes and time on air per reading, the duty-cycle limit,
and the battery life of a deep-sleeping sensor reporting every 15 minutes.

Frames are LoRaWAN uplinks on EU868 at 125 kHz, CR 4/5, 8-symbol preamble, CRC on
(lib/airtime); PHY = application payload + 13 bytes (MHDR 1, FHDR 7, FPort 1, MIC 4, no FOpts).
Formats compared, one pulse channel:
- ours (lib/meterpayload): header 7 B + pulse block 6 B (u32 index) + 2 B per u16 delta; the
  routine report carries the newest reading and `history` (4) earlier ones, and a drain frame as
  many deltas as fit (room: max application payload of the DR minus the 5 bytes the sensor keeps
  for FOpts, firmware/sensor/link.py FOPTS_RESERVE);
- Adeunis Pulse 0x5A: code 1 B + status 1 B + u32 index + 2 B per u16 delta (Adeunis' public
  codec, PulseV30x5aParser / PulseV40x5aParser), with and without history;
- the bare minimum: a 4-byte absolute index, one reading per frame.
Battery: the current figures of docs/sensor.md section 10 (so the two agree), and the same model
with Pycom's published figures for its LoPy4 module (L04 page) beside it.

Figures only, no asserts; well under a second. Run: .venv/bin/python bench/bench_radio.py
"""

import sys

SF_BW = 125000
LORAWAN_OVERHEAD = 13
FOPTS_RESERVE = 5  # firmware/sensor/link.py: room the sensor keeps for MAC answers in FOpts
HISTORY = 4  # the sensor's default `history` (docs/sensor.md section 2)
DUTY_CYCLE = 0.01  # EU868 868.0-868.6 MHz sub-band (the default channels, the nano gateway's)
INTERVAL_S = 900
REPORTS_PER_DAY = 86400 // INTERVAL_S

# docs/sensor.md section 10 (assumptions, not measured): keep the two in step.
SENSOR_MD = {
    "sleep_ua": 20.0,  # deep sleep
    "awake_ma": 40.0,  # CPU awake
    "boot_s": 1.5,  # a wake's boot before main.py runs
    "tx_ma": 120.0,  # LoRa TX at 14 dBm
    "rx_ma": 12.0,  # the radio receiving (CPU awake beside it)
    "windows_s": {7: 3.0, 12: 3.3},  # receive windows of a blocking send (others: interpolated)
    "pulse_wakes": 30,  # a water meter: pulse wakes per day
    "pulse_wake_s": 3.5,  # boot + DWELL_MS per pulse wake
    "battery_mah": 3000.0,  # 2 x AA lithium
    "usable": 0.8,
}
# Pycom's own measurements for the L04 (the LoPy4's module), docs.pycom.io/datasheets/oem/l04:
# idle but awake 36.2 mA, LoRa transmit 141 mA, deep sleep 5.5 uA (RX not given: 12 mA kept).
PYCOM_L04 = {"sleep_ua": 5.5, "awake_ma": 36.2, "tx_ma": 141.0}
PYCOM_L04_URL = "https://docs.pycom.io/datasheets/oem/l04"
LOPY4_DATASHEET = (
    "https://docs.pycom.io/gitbook/assets/specsheets/Pycom_002_Specsheets_LoPy4_v2.pdf"
    " (section 10.1, current by power mode at 5 V)"
)
CMD = ".venv/bin/python bench/bench_radio.py"


def _libs():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if str(root / "lib") not in sys.path:
        sys.path.insert(0, str(root / "lib"))
    import airtime
    import eu868
    import meterpayload

    return airtime, eu868, meterpayload


def room(dr):
    """Application bytes a sensor uplink may carry at dr (as firmware/sensor/link.py)."""
    _, eu868, _ = _libs()
    return eu868.max_app_payload(dr) - FOPTS_RESERVE


def toa_ms(sf, app_bytes):
    airtime, _, _ = _libs()
    return airtime.time_on_air_us(sf, SF_BW, app_bytes + LORAWAN_OVERHEAD) / 1000.0


def formats(sf):
    """[(name, app bytes, readings carried, new readings per frame)] at sf."""
    _, _, meterpayload = _libs()
    dr = 12 - sf
    ours_fit = meterpayload.max_deltas(room(dr), 1)
    adeunis_fit = (room(dr) - 6) // 2
    return [
        ("4-byte index, one reading per frame", 4, 1, 1),
        ("Adeunis 0x5A, no history", 6, 1, 1),
        ("Adeunis 0x5A, history %d" % HISTORY, 6 + 2 * HISTORY, HISTORY + 1, 1),
        ("ours, routine report (history %d)" % HISTORY, meterpayload.report_size([HISTORY]),
         HISTORY + 1, 1),
        ("Adeunis 0x5A, full frame (%d deltas)" % adeunis_fit, 6 + 2 * adeunis_fit,
         adeunis_fit + 1, adeunis_fit + 1),
        ("ours, full frame (%d deltas)" % ours_fit, meterpayload.report_size([ours_fit]),
         ours_fit + 1, ours_fit + 1),
    ]  # fmt: skip


def per_reading_table():
    print("Bytes and time on air per reading, one pulse channel (PHY = payload + 13 B)")
    for sf in (7, 12):
        dr = 12 - sf
        print("SF%d (DR%d, room %d B after the FOpts reserve)" % (sf, dr, room(dr)))
        print(
            "  " + "format".ljust(38) + "app B".rjust(6) + "PHY B".rjust(6) + "ToA ms".rjust(9)
            + "carried".rjust(8) + "new".rjust(5) + "B/new".rjust(7) + "ms/new".rjust(9)
        )  # fmt: skip
        for name, app, carried, new in formats(sf):
            phy = app + LORAWAN_OVERHEAD
            t = toa_ms(sf, app)
            print(
                "  " + name.ljust(38) + str(app).rjust(6) + str(phy).rjust(6)
                + ("%.1f" % t).rjust(9) + str(carried).rjust(8) + str(new).rjust(5)
                + ("%.1f" % (phy / new)).rjust(7) + ("%.2f" % (t / new)).rjust(9)
            )  # fmt: skip
    print(
        "  'carried' readings per frame; 'new' readings a frame brings when one is sent per\n"
        "  reading (routine) or when it drains a backlog (full frame); B/new and ms/new are\n"
        "  amortised over the new readings. History costs 2 B per reading carried again and\n"
        "  buys recovery of up to %d lost frames in a row." % HISTORY
    )
    print("  reproduce: " + CMD)


def duty_cycle_table():
    _, _, meterpayload = _libs()
    routine = meterpayload.report_size([HISTORY])
    print()
    print(
        "Duty-cycle limit at 1 %% (36 s of airtime per hour), routine report of %d B (PHY %d B)"
        % (routine, routine + LORAWAN_OVERHEAD)
    )
    print(
        "  " + "SF".ljust(6) + "ToA ms".rjust(9) + "reports/h".rjust(11) + "min interval s".rjust(16)
        + "full frame: readings".rjust(22) + "readings/h".rjust(12)
    )  # fmt: skip
    for sf in range(7, 13):
        dr = 12 - sf
        t = toa_ms(sf, routine)
        per_hour = 3600 * 1000 * DUTY_CYCLE / t
        fit = meterpayload.max_deltas(room(dr), 1)
        full = toa_ms(sf, meterpayload.report_size([fit]))
        readings_h = 3600 * 1000 * DUTY_CYCLE / full * (fit + 1)
        print(
            "  " + ("SF%d" % sf).ljust(6) + ("%.1f" % t).rjust(9) + ("%.0f" % per_hour).rjust(11)
            + ("%.1f" % (t / 1000 / DUTY_CYCLE)).rjust(16) + str(fit + 1).rjust(22)
            + ("%.0f" % readings_h).rjust(12)
        )  # fmt: skip
    print(
        "  the sensor also refuses report_interval_s below 60 s; 'full frame' = a drain frame\n"
        "  with all the deltas that fit (the rate at which a backlog can be caught up)"
    )
    print("  reproduce: " + CMD)


def windows_s(sf, figures):
    table = figures["windows_s"]
    low, high = table[7], table[12]
    return low + (high - low) * (sf - 7) / 5.0


def battery_day_mah(sf, app_bytes, figures):
    """mAh per day at a 15-minute interval: report wakes, deep sleep, pulse wakes."""
    t = toa_ms(sf, app_bytes) / 1000.0
    wake_mas = (
        figures["boot_s"] * figures["awake_ma"]
        + t * figures["tx_ma"]
        + windows_s(sf, figures) * (figures["awake_ma"] + figures["rx_ma"])
    )
    reports = REPORTS_PER_DAY * wake_mas / 3600.0
    sleep = 24 * figures["sleep_ua"] / 1000.0
    pulses = figures["pulse_wakes"] * figures["pulse_wake_s"] * figures["awake_ma"] / 3600.0
    return reports, sleep, pulses


def battery_table():
    _, _, meterpayload = _libs()
    routine = meterpayload.report_size([HISTORY])
    pycom = dict(SENSOR_MD)
    pycom.update(PYCOM_L04)
    usable = SENSOR_MD["battery_mah"] * SENSOR_MD["usable"]
    print()
    print(
        "Battery life, deep sleep, one report every %d min (%d a day), %d-B routine report"
        % (INTERVAL_S // 60, REPORTS_PER_DAY, routine)
    )
    f = SENSOR_MD
    print(
        "  assumed (docs/sensor.md section 10): deep sleep %.0f uA, awake %.0f mA, boot %.1f s"
        " before main.py,\n  TX %.0f mA (14 dBm), RX %.0f mA + CPU awake during the receive windows"
        " (%.1f s at SF7, %.1f s at SF12),\n  %d pulse wakes/day of %.1f s, %.0f mAh x %.0f %% usable"
        % (f["sleep_ua"], f["awake_ma"], f["boot_s"], f["tx_ma"], f["rx_ma"], f["windows_s"][7],
           f["windows_s"][12], f["pulse_wakes"], f["pulse_wake_s"], f["battery_mah"],
           100 * f["usable"])
    )  # fmt: skip
    print(
        "  Pycom's figures (%s): deep sleep %.1f uA, idle awake %.1f mA, LoRa TX %.0f mA"
        % (PYCOM_L04_URL, PYCOM_L04["sleep_ua"], PYCOM_L04["awake_ma"], PYCOM_L04["tx_ma"])
    )
    print("  (LoPy4 datasheet: %s)" % LOPY4_DATASHEET)
    print(
        "  " + "SF".ljust(5) + "ToA ms".rjust(8) + "wakes mAh/d".rjust(13) + "sleep".rjust(7)
        + "pulses".rjust(8) + "total".rjust(8) + "days".rjust(7) + "  | Pycom figures: total"
        + "  days"
    )  # fmt: skip
    for sf in (7, 8, 9, 10, 11, 12):
        reports, sleep, pulses = battery_day_mah(sf, routine, f)
        total = reports + sleep + pulses
        p_reports, p_sleep, p_pulses = battery_day_mah(sf, routine, pycom)
        p_total = p_reports + p_sleep + p_pulses
        print(
            "  " + ("SF%d" % sf).ljust(5) + ("%.0f" % toa_ms(sf, routine)).rjust(8)
            + ("%.2f" % reports).rjust(13) + ("%.2f" % sleep).rjust(7) + ("%.2f" % pulses).rjust(8)
            + ("%.2f" % total).rjust(8) + ("%.0f" % (usable / total)).rjust(7)
            + ("%.2f" % p_total).rjust(23) + ("%.0f" % (usable / p_total)).rjust(6)
        )  # fmt: skip
    reports, sleep, pulses = battery_day_mah(7, routine, f)
    t = toa_ms(7, routine) / 1000.0
    parts = (
        ("boot", f["boot_s"] * f["awake_ma"]),
        ("airtime", t * f["tx_ma"]),
        ("receive windows", windows_s(7, f) * (f["awake_ma"] + f["rx_ma"])),
    )
    whole = sum(p for _, p in parts)
    print(
        "  one SF7 wake: "
        + ", ".join("%s %.0f %%" % (name, 100 * p / whole) for name, p in parts)
        + " of its charge: the receive windows and the boot dominate, not the bytes"
    )
    four = battery_day_mah(7, 4, f)
    print(
        "  a 4-byte one-reading frame instead at SF7: %.2f mAh/day (ours %.2f): %.1f %% less"
        % (sum(four), reports + sleep + pulses,
           100 * (1 - sum(four) / (reports + sleep + pulses)))
    )  # fmt: skip
    print(
        "  awake mode (no deep sleep): about %.0f mAh/day, %.1f days on the same cells"
        % (24 * f["awake_ma"], usable / (24 * f["awake_ma"]))
    )
    print("  reproduce: " + CMD)


def check_sensor_md():
    """Warn when docs/sensor.md no longer states the figures assumed here."""
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "sensor.md"
    try:
        text = doc.read_text()
    except OSError:
        return "docs/sensor.md not found"
    wanted = ("deep sleep 20 µA", "CPU awake 40 mA", "1.5 s of boot", "14 dBm 120 mA", "(12 mA)")
    missing = [w for w in wanted if w not in text]
    if missing:
        return "docs/sensor.md no longer says: " + "; ".join(missing)
    return None


def main():
    per_reading_table()
    duty_cycle_table()
    battery_table()
    problem = check_sensor_md()
    if problem:
        print("  WARNING: " + problem + " (update SENSOR_MD here)")


if __name__ == "__main__":
    main()
