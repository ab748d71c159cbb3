"""The sensor image's cycle: count pulses, take a reading per interval, keep it, report it.

Two ways to run (config `deep_sleep`, docs/sensor.md):
- awake (default, for a mains adapter): S0 pulses counted by Pin IRQ without pause, the TIC UART
  read continuously, the loop sleeping at most LOOP_MAX_MS between passes;
- deep_sleep (battery): between readings the board sleeps; an S0 pulse wakes it (pin wake), it
  counts that pulse, stays awake DWELL_MS for the next ones and sleeps again.

A reading (seq + 1: the S0 indexes and a TIC snapshot) is appended to the flash backlog before
anything is sent. Uplinks then go out in this order, each within the duty cycle: status answer,
alarm changes, the report of the newest reading (its history as deltas), and after an ACK
showed the link is back, drain frames carrying the older unacknowledged readings.
Delivery: acked is the newest reading known to be at the server (an ACKed frame that carried
every reading after the previous acked one). Under the `alarms` policy a report is confirmed
when the oldest unacknowledged reading would otherwise leave the frames' window.
"""

import gc

import devconfig
import machine
import meterpayload
import meters
import oelog
import pycom
import store
import utime
from commands import TRIGGER_BOOT, Settings

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


FIRMWARE = (1, 0, 0)
PERSIST_PULSES = const(10)  # NVS copy of an S0 index at least every this many pulses
DUE_PERSIST_MS = const(60000)  # NVS copy of the time left until the next reading this often
LOOP_MAX_MS = const(5000)  # awake: longest pause between loop passes
TIC_LOOP_MS = const(2000)  # ... with a TIC input (its UART buffer holds 4 s at 9600 baud)
SPREAD_MAX_MS = const(30000)  # a report moves randomly by up to a tenth of the interval, <= this
DWELL_MS = const(2000)  # deep sleep: awake time after the last pulse before sleeping again
TAMPER_HOLD_MS = 60000  # an S0 line held active this long is a tamper (short, magnet, cut wire)
TIC_MISSING_MS = 120000  # no good TIC frame for this long: tic_missing (a Linky sends ~1/s)
TIC_WAIT_MS = const(8000)  # deep sleep: how long a reading waits for a TIC frame
TIC_BAUD_SWITCH_MS = 30000  # auto mode, awake: silent this long -> try the other baud rate
RETRY_MS = 60000  # after a failed uplink, the next try waits at least this long
DRAIN_PER_CYCLE = const(4)  # drain frames per reading at most
BACKLOG_BYTES = 96 * 1024
BATTERY_PIN = "P16"  # Pycom expansion board 3.x: battery through a 1 M / 1 M divider
BATTERY_DIVIDER = const(2)
LOW_BATTERY_HYSTERESIS_MV = const(100)
WDT_MS = 60000
NO_CONFIG_AWAKE_MS = 600000  # no configuration: reachable over USB this long after a reset
NO_CONFIG_SLEEP_MS = 3600000
BACKLOG_PATH = "/flash/oe_backlog.bin"
OVERRIDES_PATH = "/flash/oe_over.json"

_FLAG_NO_PULSE_BIT = const(1)
_FLAG_LEAK_BIT = const(2)
_FLAG_FLOW_HIGH_BIT = const(3)
_FLAG_TAMPER_BIT = const(4)
_FLAG_LOW_BATTERY_BIT = const(0)
_FLAG_TIC_MISSING_BIT = const(6)
_CHANNEL_ALARMS = (_FLAG_NO_PULSE_BIT, _FLAG_LEAK_BIT, _FLAG_FLOW_HIGH_BIT, _FLAG_TAMPER_BIT)
_GLOBAL_ALARMS = (_FLAG_LOW_BATTERY_BIT, _FLAG_TIC_MISSING_BIT)
_HOUR_MS = 3600000
_MASK32 = 0xFFFFFFFF


def wall_ms(machine_mod):
    """Milliseconds since 1970 from the RTC (kept through deep sleep, restarts at a power cut)."""
    try:
        t = machine_mod.RTC().now()
        return utime.mktime((t[0], t[1], t[2], t[3], t[4], t[5], 0, 0)) * 1000 + t[6] // 1000
    except Exception:
        return utime.time() * 1000


class Clock:
    """Monotonic milliseconds since 1970: the RTC at boot, then ticks_ms differences."""

    def __init__(self, machine_mod):
        self._ticks = utime.ticks_ms()
        self._ms = wall_ms(machine_mod)

    def now_ms(self):
        t = utime.ticks_ms()
        step = utime.ticks_diff(t, self._ticks)
        if step > 0:
            self._ms += step
        self._ticks = t
        return self._ms


def covered_deltas(buf, channels):
    """Fewest deltas any pulse block of the report in buf carries (docs/payload-format.md 3.1:
    a block is tag, n, u32 index, n u16 deltas, the blocks following the 7-byte header)."""
    pos = meterpayload.REPORT_HEADER_SIZE
    least = 255
    for _ in range(channels):
        n = buf[pos + 1]
        if n < least:
            least = n
        pos += meterpayload.PULSE_BLOCK_SIZE + 2 * n
    return least if channels else 0


class Sensor:
    """One boot of the sensor: state restored from RTC memory / NVS / flash, then run()."""

    def __init__(self, config, network, socket_mod, log):
        self.cfg = config
        self.log = log
        self._network = network
        self._socket = socket_mod
        self.deep_sleep = config["deep_sleep"]
        self.settings = Settings(config)
        self._load_overrides()
        self.nvs = store.Nvs(pycom)
        self.rtc = machine.RTC()
        self.clock = Clock(machine)
        import leds

        self.leds = leds.Leds(pycom, config["led"])
        self.s0 = meters.S0Inputs(machine, config["s0"]) if config["s0"] else None
        self.nch = len(config["s0"])
        self.tic = None
        if config["tic"] is not None:
            tic = config["tic"]
            self.tic = meters.TicInput(machine, tic["uart"], tic["pin"], tic["mode"])
        record = 4 + 4 * self.nch + (4 + 4 * store.TIC_PERIODS_MAX if self.tic else 0) + 1
        self.backlog = store.Backlog(
            BACKLOG_PATH, self.nch, self.tic is not None, BACKLOG_BYTES // record
        )
        self.buf = bytearray(242)
        self.mv = memoryview(self.buf)
        self.link = None
        self.link_state = None
        self.wdt = None
        self.battery_pin_free = BATTERY_PIN not in [e["pin"] for e in config["s0"]] and (
            config["tic"] is None or config["tic"]["pin"] != BATTERY_PIN
        )
        self._restore()

    # -- state ---------------------------------------------------------------------------
    def _load_overrides(self):
        saved = store.read_json(OVERRIDES_PATH)
        text = store.read_file(devconfig.DEVICE_PATH) or b""
        self.config_fp = store.fingerprint(text)
        if saved is not None and saved.get("fp") == self.config_fp:
            self.settings.apply_overrides(saved)

    def _save_overrides(self):
        data = self.settings.overrides()
        data["fp"] = self.config_fp
        store.write_json(OVERRIDES_PATH, data)

    def _restore(self):
        nvs = self.nvs
        now = self.clock.now_ms()
        self.reset_cause = machine.reset_cause()
        woke = machine.wake_reason() if self.reset_cause == machine.DEEPSLEEP_RESET else (0, None)
        self.wake_reason = woke[0]
        self.wake_pins = woke[1] or ()
        state = None
        if self.reset_cause == machine.DEEPSLEEP_RESET:
            state = store.load_rtc_state(self.rtc)
        store.clear_rtc_state(self.rtc)  # a crash before the next sleep must not reuse it
        last = self.backlog.open()
        self.seq = nvs.get(store.KEY_SEQ)
        self.indexes = [nvs.get(store.KEY_INDEX[ch]) for ch in range(self.nch)]
        if last and last > self.seq:
            record = self.backlog.read(last)  # appended, NVS not updated before the cut
            if record is not None:
                self.indexes = [self.backlog.index(record, ch) for ch in range(self.nch)]
            self.seq = last
        self.acked = nvs.get(store.KEY_ACKED)
        if self.acked > self.seq:
            self.acked = self.seq
        self.reading_index = list(self.indexes)
        interval = self.settings.interval_s * 1000
        nch = self.nch
        self.last_interval = [0] * nch
        self.ch_flags = [0] * nch
        self.ch_sent = [0] * nch
        self.held = [None] * nch
        self.streak = [None] * nch
        self.last_pulse_ms = [now] * nch
        self.gflags = 0
        self.gsent = 0
        self.reported = self.seq - 1 if self.seq > self.acked else self.seq
        self.pending_status = None
        self.boot_status = True
        self.rebooted = True
        self.tic_ok_ms = now
        self.tic_bad_base = 0
        self.battery_mv = 0
        self.link_ok = False
        self.uplink_after = now
        self.next_reading_ms = now + interval
        self.last_reading_ms = now
        self.shift_ms = 0
        self.due_saved_ms = now
        self.slept_ms = 0
        if state is not None:
            try:
                self._load_state(state, now)
            except (KeyError, TypeError, ValueError, IndexError):
                self.log.warning("wake state unreadable, starting afresh")
        else:
            # the RTC restarted: keep the reading schedule where the last copy left it (the
            # time without power is unknown, so the next reading comes that much later)
            due = nvs.get(store.KEY_DUE)
            if 0 < due < interval:
                self.next_reading_ms = now + due
            nvs.set(store.KEY_BOOTS, nvs.get(store.KEY_BOOTS) + 1)
            self.log.info(
                "boot %d (reset cause %d), reading %d, acked %d",
                nvs.get(store.KEY_BOOTS),
                self.reset_cause,
                self.seq,
                self.acked,
            )

    def _load_state(self, st, now):
        self.slept_ms = now - st["t"] if now > st["t"] else 0
        if len(st["ix"]) == self.nch and st["sq"] == self.seq:
            self.indexes = st["ix"]
            self.reading_index = st["ri"]
        self.next_reading_ms = st["nr"]
        self.last_reading_ms = st["lr"]
        self.shift_ms = st["sh"]
        self.due_saved_ms = st["dw"]
        self.last_pulse_ms = st["lp"]
        self.streak = st["sk"]
        self.held = st["hd"]
        self.ch_flags = st["cf"]
        self.ch_sent = st["cs"]
        self.last_interval = st["li"]
        self.gflags = st["gf"]
        self.gsent = st["gs"]
        self.reported = st["rp"]
        self.pending_status = st["ps"]
        self.boot_status = st["bs"]
        self.rebooted = st["rb"]
        self.tic_ok_ms = st["to"]
        self.battery_mv = st["bm"]
        self.link_ok = st["ok"]
        self.uplink_after = st["ua"]
        self.link_state = st["ln"]
        if self.tic is not None and st["tb"] != self.tic.baud_index:
            tic = self.cfg["tic"]
            self.tic = meters.TicInput(machine, tic["uart"], tic["pin"], tic["mode"], st["tb"])

    def _state(self, now):
        if self.link is not None:
            self.link_state = self.link.save(now)
            self.link_state["t"] = now
        return {
            "t": now,
            "sq": self.seq,
            "ix": self.indexes,
            "ri": self.reading_index,
            "nr": self.next_reading_ms,
            "lr": self.last_reading_ms,
            "sh": self.shift_ms,
            "dw": self.due_saved_ms,
            "lp": self.last_pulse_ms,
            "sk": self.streak,
            "hd": self.held,
            "cf": self.ch_flags,
            "cs": self.ch_sent,
            "li": self.last_interval,
            "gf": self.gflags,
            "gs": self.gsent,
            "rp": self.reported,
            "ps": self.pending_status,
            "bs": self.boot_status,
            "rb": self.rebooted,
            "to": self.tic_ok_ms,
            "bm": self.battery_mv,
            "ok": self.link_ok,
            "ua": self.uplink_after,
            "ln": self.link_state,
            "tb": self.tic.baud_index if self.tic is not None else 0,
        }

    def persist(self):
        """Write the S0 indexes and the time left until the next reading to NVS now (before a
        reset)."""
        for ch in range(self.nch):
            self.nvs.set(store.KEY_INDEX[ch], self.indexes[ch])
        self.persist_due(self.clock.now_ms())

    def persist_due(self, now):
        """Copy the time left until the next reading to NVS (a power cut restarts the RTC)."""
        left = self.next_reading_ms - now
        self.nvs.set(store.KEY_DUE, left if left > 0 else 1)
        self.due_saved_ms = now

    # -- inputs --------------------------------------------------------------------------
    def fold(self, now):
        """Move the IRQ counts into the absolute indexes; NVS copy every PERSIST_PULSES."""
        if self.s0 is None:
            return
        counter = self.s0.counter
        for ch in range(self.nch):
            pulses = counter.take(ch)
            if pulses:
                self.indexes[ch] = (self.indexes[ch] + pulses) & _MASK32
                self.last_pulse_ms[ch] = now
                saved = self.nvs.get(store.KEY_INDEX[ch])
                if (self.indexes[ch] - saved) & _MASK32 >= PERSIST_PULSES:
                    self.nvs.set(store.KEY_INDEX[ch], self.indexes[ch])

    def _flag(self, ch, bit, on):
        if ch is None:
            self.gflags = (self.gflags | (1 << bit)) if on else (self.gflags & ~(1 << bit))
        else:
            flags = self.ch_flags[ch]
            self.ch_flags[ch] = (flags | (1 << bit)) if on else (flags & ~(1 << bit))

    def measure_battery(self):
        """Supply voltage in mV (0: not measured: low_battery_mv is 0 or P16 is an input)."""
        if not self.cfg["low_battery_mv"] or not self.battery_pin_free:
            return 0
        try:
            adc = machine.ADC()
            channel = adc.channel(pin=BATTERY_PIN, attn=machine.ADC.ATTN_11DB)
            return channel.voltage() * BATTERY_DIVIDER
        except Exception:
            return 0

    def take_reading(self, now):
        self.fold(now)
        snapshot = None
        tic = self.tic
        if tic is not None:
            if self.deep_sleep:
                tic.wait_frame(TIC_WAIT_MS, self.feed)
            else:
                tic.poll()
            if tic.frame_ticks is not None and (
                utime.ticks_diff(utime.ticks_ms(), tic.frame_ticks) <= TIC_MISSING_MS
            ):
                snapshot = meters.tic_block(tic.frame)
                if snapshot is not None:
                    self.tic_ok_ms = now
            if self.deep_sleep:
                self._flag(None, _FLAG_TIC_MISSING_BIT, now - self.tic_ok_ms >= TIC_MISSING_MS)
        self.seq += 1
        self.backlog.append(self.seq, self.indexes, snapshot)
        for ch in range(self.nch):
            self.nvs.set(store.KEY_INDEX[ch], self.indexes[ch])
        self.nvs.set(store.KEY_SEQ, self.seq)
        settings = self.settings
        for ch in range(self.nch):
            pulses = (self.indexes[ch] - self.reading_index[ch]) & _MASK32
            self.reading_index[ch] = self.indexes[ch]
            self.last_interval[ch] = pulses
            flow_high, _, leak_h = settings.thresholds[ch]
            self._flag(ch, _FLAG_FLOW_HIGH_BIT, flow_high > 0 and pulses > flow_high)
            if pulses and leak_h:
                if self.streak[ch] is None:
                    self.streak[ch] = self.last_reading_ms
                self._flag(ch, _FLAG_LEAK_BIT, now - self.streak[ch] >= leak_h * _HOUR_MS)
            else:
                self.streak[ch] = None
                self._flag(ch, _FLAG_LEAK_BIT, False)
        mv = self.measure_battery()
        self.battery_mv = mv
        low = self.cfg["low_battery_mv"]
        if mv and low:
            if mv < low:
                self._flag(None, _FLAG_LOW_BATTERY_BIT, True)
            elif mv >= low + LOW_BATTERY_HYSTERESIS_MV:
                self._flag(None, _FLAG_LOW_BATTERY_BIT, False)
        self.last_reading_ms = now
        interval = settings.interval_s * 1000
        # Sensors powered on together (a building's power restored) would otherwise send in the
        # same instant every interval, for ever. Awake, the report waits a random delay; in deep
        # sleep a second wake would cost more than the reading's own: the next reading moves
        # within its slot instead (the schedule keeps its period).
        spread = self._spread_ms(interval)
        if self.deep_sleep:
            self.next_reading_ms += interval + spread - self.shift_ms
            self.shift_ms = spread
        else:
            self.next_reading_ms += interval
            if not self._alarms_pending() and self.uplink_after < now + spread:
                self.uplink_after = now + spread
        if self.next_reading_ms <= now:
            self.next_reading_ms = now + interval
        self.persist_due(now)
        gc.collect()

    @staticmethod
    def _spread_ms(interval):
        window = interval // 10
        if window > SPREAD_MAX_MS:
            window = SPREAD_MAX_MS
        return machine.rng() % window if window > 0 else 0

    def check_alarms(self, now):
        """Alarms that depend on time rather than on a reading: no pulses, tamper, no TIC."""
        for ch in range(self.nch):
            no_pulse_h = self.settings.thresholds[ch][1]
            self._flag(
                ch,
                _FLAG_NO_PULSE_BIT,
                no_pulse_h > 0 and now - self.last_pulse_ms[ch] >= no_pulse_h * _HOUR_MS,
            )
            if self.s0.is_active(ch):
                if self.held[ch] is None:
                    self.held[ch] = now
                self._flag(ch, _FLAG_TAMPER_BIT, now - self.held[ch] >= TAMPER_HOLD_MS)
            else:
                self.held[ch] = None
                self._flag(ch, _FLAG_TAMPER_BIT, False)
        if self.tic is not None and not self.deep_sleep:
            self._flag(None, _FLAG_TIC_MISSING_BIT, now - self.tic_ok_ms >= TIC_MISSING_MS)

    def status_word(self, backlog=False):
        status = self.gflags
        for flags in self.ch_flags:
            status |= flags
        if backlog:
            status |= meterpayload.FLAG_BACKLOG
        if self.rebooted:
            status |= meterpayload.FLAG_REBOOTED
        if self.tic is not None and self.tic.reader.groups_bad_checksum > self.tic_bad_base:
            status |= meterpayload.FLAG_TIC_CHECKSUM
        return status

    # -- uplinks -------------------------------------------------------------------------
    def _alarms_pending(self):
        if self.gflags != self.gsent:
            return True
        for ch in range(self.nch):
            if self.ch_flags[ch] != self.ch_sent[ch]:
                return True
        return False

    def _fit(self):
        """Deltas per channel one report holds at the current size limit (TIC block aside)."""
        if not self.nch:
            return 0
        fit = meterpayload.max_deltas(self._max_size(), self.nch, None)
        return fit if fit > 0 else 0

    def _window(self):
        """Readings a routine report carries: the newest plus min(history, what fits) deltas."""
        fit = self._fit()
        history = self.settings.history
        return 1 + (history if history < fit else fit)

    def uplink_pending(self):
        return (
            self.pending_status is not None
            or self.boot_status
            or self.reported < self.seq
            or self._alarms_pending()
            or (self.link_ok and self.seq - self.acked > self._window())
        )

    def _max_size(self):
        return self.link.max_payload() if self.link is not None else 51

    def _link_up(self, now):
        if self.link is None:
            import link as link_module

            settings = self.settings
            self.link = link_module.Link(
                self._network,
                self._socket,
                self.nvs,
                self.clock,
                machine.rng,
                {
                    "dev_eui": self.cfg["dev_eui"],
                    "join_eui": self.cfg["join_eui"],
                    "app_key": self.cfg["app_key"],
                    "single_channel": self.cfg["single_channel"],
                    "frequency_hz": self.cfg["frequency_hz"],
                    "dr": settings.dr,
                    "adr": settings.adr,
                },
                self.log,
                self.leds,
            )
            state = self.link_state
            if state is not None:
                since = now - state.get("t", now)
                self.link.load(state, now, since if since > 0 else 0)
            else:
                self.link.load(None, now, 0)
            self.link.start(restore=True)
        link = self.link
        if link.joined:
            return True
        if link.join_due_ms(now) > 0:
            return False
        return link.join()

    def _send(self, port, n, confirmed):
        import link as link_module

        result = self.link.send(port, self.mv[:n], confirmed)
        if result == link_module.WAIT:
            self.uplink_after = self.clock.now_ms() + self.link.wait_ms
        elif result == link_module.DOWN or result == link_module.NOT_ACKED:
            self.uplink_after = self.clock.now_ms() + RETRY_MS
            self.link_ok = False
        elif result == link_module.ACKED:
            self.link_ok = True
        self._downlinks()
        return result

    def _downlinks(self):
        link = self.link
        while True:
            frame = link.receive()
            if frame is None:
                return
            port, data = frame
            if port == meterpayload.FPORT_COMMAND:
                self._command(data)

    def _command(self, data):
        import commands

        outcome = commands.handle(self.settings, data, self.nch)
        self.log.info("downlink command: trigger %d", outcome.trigger)
        for ch, index in outcome.presets:
            self.indexes[ch] = index
            self.reading_index[ch] = index
            self.nvs.set(store.KEY_INDEX[ch], index)
        if outcome.settings_changed:
            self._save_overrides()
        if outcome.interval_changed:
            nxt = self.last_reading_ms + self.settings.interval_s * 1000
            now = self.clock.now_ms()
            self.next_reading_ms = nxt if nxt > now else now
        if outcome.radio_changed:
            self.link.dr = self.settings.dr
            self.link.tx_dr = self.settings.dr
            if self.link.adr != self.settings.adr:
                self.link.adr = self.settings.adr
                self.link.save(self.clock.now_ms())
                self.link.start(restore=True)
        self.pending_status = outcome.trigger
        if outcome.rejoin:
            self.link.drop_session("rejoin requested by downlink")

    def _status(self, trigger):
        import commands

        n = commands.status_frame(
            self.buf,
            trigger,
            FIRMWARE,
            self.settings,
            self.status_word(),
            self.seq,
            self.battery_mv,
            self.tic.detected() if self.tic is not None else 0,
        )
        return n

    def _alarm_value(self, bit, ch):
        if bit == _FLAG_FLOW_HIGH_BIT:
            return self.last_interval[ch] & _MASK32
        if bit == _FLAG_LOW_BATTERY_BIT:
            return self.battery_mv
        if bit == _FLAG_TIC_MISSING_BIT:
            seconds = (self.clock.now_ms() - self.tic_ok_ms) // 1000
            return seconds if 0 <= seconds <= _MASK32 else 0
        return self.indexes[ch] if ch is not None else 0

    def _report(self, newest, depth, backlog):
        """Encode the report of reading `newest` with up to `depth` deltas; (length, deltas
        carried by every channel) or None when the backlog lacks the reading."""
        bl = self.backlog
        if not bl.count or newest < bl.first or newest > bl.last:
            return None
        if depth > newest - bl.first:
            depth = newest - bl.first
        if depth > meterpayload.MAX_DELTAS:
            depth = meterpayload.MAX_DELTAS
        lists = [[] for _ in range(self.nch)]
        tic = None
        reader = bl.reader()
        try:
            for seq in range(newest, newest - depth - 1, -1):
                record = bl.read(seq, reader)
                if record is None:
                    break
                if seq == newest:
                    tic = bl.tic_of(record)
                for ch in range(self.nch):
                    lists[ch].append(bl.index(record, ch))
        finally:
            reader.close()
        if self.nch and not lists[0]:
            return None
        channels = [(ch, lists[ch]) for ch in range(self.nch)]
        status = self.status_word(backlog)
        max_size = self._max_size()
        try:
            n = meterpayload.encode_report_into(
                self.buf, newest & 0xFFFF, self.settings.interval_s, channels, status, tic,
                max_size, len(lists[0]) - 1 if self.nch else 0,
            )  # fmt: skip
        except meterpayload.PayloadError:
            if tic is None:
                return None
            n = meterpayload.encode_report_into(
                self.buf, newest & 0xFFFF, self.settings.interval_s, channels, status, None,
                max_size, len(lists[0]) - 1 if self.nch else 0,
            )  # fmt: skip
        return (n, covered_deltas(self.buf, self.nch))

    def _mark_acked(self, seq):
        if seq > self.acked:
            self.acked = seq
            self.nvs.set(store.KEY_ACKED, seq)
            self.backlog.forget_through(seq, self.settings.history)

    def _send_report(self, newest, depth, confirmed, backlog):
        """Encode and send the report of `newest`; returns the link result or None."""
        import link as link_module

        for _ in range(3):
            built = self._report(newest, depth, backlog)
            if built is None:
                return None
            n, covered = built
            if newest - covered <= self.acked + 1 or newest <= self.acked + 1:
                break
            if newest == self.seq:
                break  # the routine report goes out even when it cannot cover the gap
            newest = self.acked + 1 + covered  # a delta above 65535 cut the chain: move back
            depth = covered
        result = self._send(meterpayload.FPORT_REPORT, n, confirmed)
        if result == link_module.TOO_BIG:
            built = self._report(newest, depth, backlog)
            if built is None:
                return None
            n, covered = built
            result = self._send(meterpayload.FPORT_REPORT, n, confirmed)
        if result == link_module.ACKED and newest - covered <= self.acked + 1:
            self._mark_acked(newest)
        elif result == link_module.SENT and self.settings.confirmed == "never":
            self._mark_acked(newest)
        return result

    def uplinks(self, now):
        """Send what is pending while the link and the duty cycle allow it."""
        if not self.uplink_pending() or now < self.uplink_after:
            return
        if not self._link_up(now):
            due = self.link.join_due_ms(now) if self.link is not None else RETRY_MS
            self.uplink_after = now + (due if due > 1000 else 1000)
            return
        import link as link_module

        done = (link_module.SENT, link_module.ACKED, link_module.NOT_ACKED)
        link = self.link
        policy = self.settings.confirmed
        if link.just_joined:
            link.just_joined = False
        if self.backlog.count and self.acked < self.backlog.first - 1:
            self.log.warning(
                "readings up to %d dropped from a full backlog", self.backlog.first - 1
            )
            self._mark_acked(self.backlog.first - 1)
        # 1. status answer (boot, or a downlink's answer)
        if self.pending_status is not None or self.boot_status:
            trigger = self.pending_status if self.pending_status is not None else TRIGGER_BOOT
            result = self._send(
                meterpayload.FPORT_STATUS, self._status(trigger), policy == "always"
            )
            if result not in done:
                return
            if self.pending_status == trigger:
                self.pending_status = None
            if trigger == TRIGGER_BOOT:
                self.boot_status = False
        # 2. alarms raised or cleared since the last ones sent
        confirm_alarms = policy != "never"
        for ch in [None] + list(range(self.nch)):
            bits = _GLOBAL_ALARMS if ch is None else _CHANNEL_ALARMS
            for bit in bits:
                now_flags = self.gflags if ch is None else self.ch_flags[ch]
                sent_flags = self.gsent if ch is None else self.ch_sent[ch]
                mask = 1 << bit
                if (now_flags ^ sent_flags) & mask == 0:
                    continue
                n = meterpayload.encode_alarm_into(
                    self.buf, bit, bool(now_flags & mask), ch or 0, self.status_word(),
                    self.seq & 0xFFFF, self._alarm_value(bit, ch),
                )  # fmt: skip
                result = self._send(meterpayload.FPORT_ALARM, n, confirm_alarms)
                if result not in done:
                    return
                if result == link_module.NOT_ACKED:
                    return
                if ch is None:
                    self.gsent = (self.gsent & ~mask) | (now_flags & mask)
                else:
                    self.ch_sent[ch] = (self.ch_sent[ch] & ~mask) | (now_flags & mask)
        # 3. the newest reading's report, with every unacknowledged reading that fits
        window = self._window()
        if self.reported < self.seq:
            span = self.seq - self.acked
            history = self.settings.history
            depth = history
            if history < span - 1 <= self._fit():
                depth = span - 1  # one frame carries every unacknowledged reading
            confirmed = policy == "always" or (
                policy == "alarms" and (span >= window or link.needs_check)
            )
            result = self._send_report(self.seq, depth, confirmed, span - 1 > history)
            if result is None:
                self.log.error("reading %d missing from the backlog", self.seq)
                self.reported = self.seq
                self.uplink_after = self.clock.now_ms() + RETRY_MS
                return
            if result not in done:
                return
            self.reported = self.seq
            self.rebooted = False
            if self.tic is not None:
                self.tic_bad_base = self.tic.reader.groups_bad_checksum
        # 4. after an ACK: older unacknowledged readings, oldest first
        drained = 0
        while self.link_ok and self.seq - self.acked > window and drained < DRAIN_PER_CYCLE:
            fit = self._fit()
            newest = self.acked + 1 + fit
            if newest > self.seq:
                newest = self.seq
            before = self.acked
            result = self._send_report(newest, fit, True, True)
            drained += 1
            if result != link_module.ACKED or self.acked == before:
                break
        gc.collect()

    def service(self, now):
        if now >= self.next_reading_ms:
            self.take_reading(now)
        elif now - self.due_saved_ms >= DUE_PERSIST_MS:
            self.persist_due(now)
        self.check_alarms(now)
        self.uplinks(self.clock.now_ms())

    def feed(self):
        if self.wdt is not None:
            self.wdt.feed()

    # -- the two ways to run -------------------------------------------------------------
    def _woken_channels(self):
        if self.wake_reason != machine.PIN_WAKE or self.s0 is None:
            return ()
        names = []
        for pin in self.wake_pins:
            try:
                names.append(pin.id() if hasattr(pin, "id") else str(pin))
            except Exception:
                pass
        woken = [ch for ch in range(self.nch) if self.s0.names[ch] in names]
        if not woken and self.nch == 1:
            woken = [0]
        return woken

    def run_awake(self):
        if self.s0 is not None:
            self.s0.start()
        tic_silent_since = self.clock.now_ms()
        while True:
            self.feed()
            now = self.clock.now_ms()
            self.fold(now)
            if self.tic is not None:
                if self.tic.poll():
                    tic_silent_since = now
                    self.tic_ok_ms = now
                elif now - tic_silent_since >= TIC_BAUD_SWITCH_MS:
                    self.tic.next_baudrate()
                    tic_silent_since = now
            self.service(now)
            now = self.clock.now_ms()
            pause = self.next_reading_ms - now
            limit = TIC_LOOP_MS if self.tic is not None else LOOP_MAX_MS
            if self.uplink_pending():
                wait = self.uplink_after - now
                if wait < pause:
                    pause = wait
            if pause > limit:
                pause = limit
            if pause < 20:
                pause = 20
            utime.sleep_ms(pause)

    def run_deep_sleep(self):
        woken = self._woken_channels()
        if self.s0 is not None:
            self.s0.start(skip=woken)
            for ch in woken:
                self.s0.counter.add(ch, 1)
        while True:
            self.feed()
            now = self.clock.now_ms()
            self.fold(now)
            self.service(now)
            if self.s0 is None or not woken:
                break
            quiet = now - max(self.last_pulse_ms)
            if quiet >= DWELL_MS or now >= self.next_reading_ms:
                break
            utime.sleep_ms(100)
        self.sleep()

    def sleep(self):
        """Save the wake state to RTC memory and deep-sleep until the next thing to do."""
        now = self.clock.now_ms()
        self.fold(now)
        wake_at = self.next_reading_ms
        if self.uplink_pending() and self.uplink_after < wake_at:
            wake_at = self.uplink_after
        for ch in range(self.nch):
            no_pulse_h = self.settings.thresholds[ch][1]
            if no_pulse_h and not self.ch_flags[ch] & (1 << _FLAG_NO_PULSE_BIT):
                due = self.last_pulse_ms[ch] + no_pulse_h * _HOUR_MS
                if due < wake_at:
                    wake_at = due
        pins = None
        if self.s0 is not None:
            wake = self.s0.wake_mode(machine)
            if wake is not None:
                names, mode = wake
                # a line still active would wake the board at once: wait for it, else leave it out
                for _ in range(10):
                    if not any(self.s0.is_active(ch) for ch in range(self.nch)):
                        break
                    utime.sleep_ms(50)
                pins = [names[ch] for ch in range(self.nch) if not self.s0.is_active(ch)]
                self.fold(self.clock.now_ms())
                if pins:
                    pull = any(entry["pull"] != "none" for entry in self.cfg["s0"])
                    machine.pin_sleep_wakeup(pins, mode, pull)
            self.s0.stop()
        store.save_rtc_state(self.rtc, self._state(now))
        delay = wake_at - self.clock.now_ms()
        if delay < 1000:
            delay = 1000
        gc.collect()
        machine.deepsleep(delay)

    def run(self):
        self.wdt = machine.WDT(timeout=WDT_MS)
        if self.deep_sleep and self.s0 is not None and self.s0.wake_mode(machine) is None:
            self.log.error("two active-low S0 inputs cannot wake the board: staying awake")
            self.deep_sleep = False
        if self.deep_sleep:
            self.run_deep_sleep()
        else:
            self.run_awake()


def no_configuration(log):
    """No usable configuration: flash the LED code and deep-sleep for an hour. After a power-on
    or a reset (a technician at the board) stay awake NO_CONFIG_AWAKE_MS first, so that
    `openenergy flash` and `board info` reach it over USB; after a timer wake, sleep again."""
    import leds

    led = leds.Leds(pycom, True)
    awake = NO_CONFIG_AWAKE_MS if machine.reset_cause() != machine.DEEPSLEEP_RESET else 0
    log.error(
        "no usable configuration: write one with `openenergy flash sensor --config FILE`;"
        " deep sleep in %d s",
        awake // 1000,
    )
    end = utime.ticks_add(utime.ticks_ms(), awake)
    while True:
        led.config_error()
        if utime.ticks_diff(end, utime.ticks_ms()) <= 0:
            break
        utime.sleep_ms(1000)
    machine.deepsleep(NO_CONFIG_SLEEP_MS)


def main():
    """Entry point (main.py): load the configuration and run; never leaves the board dead."""
    log = oelog.get("sensor")
    try:
        config = devconfig.load()
    except devconfig.ConfigError as exc:
        log.exc(exc, "configuration")
        no_configuration(log)
        return
    oelog.configure(level=config["log_level"])
    for secret in devconfig.secrets(config):
        oelog.add_secret(secret)
    import network

    try:
        import usocket as socket_mod
    except ImportError:
        import socket as socket_mod
    sensor = None
    try:
        sensor = Sensor(config, network, socket_mod, log)
        sensor.run()
    except Exception as exc:
        log.exc(exc, "sensor stopped")
        if sensor is not None:
            try:
                sensor.persist()
            except Exception:
                pass
        utime.sleep_ms(5000)
        machine.reset()
