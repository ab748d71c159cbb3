"""The nano gateway application: configuration, start-up and the main loop.

main() never returns. A bad /flash/config.json prints why on the console and blinks an LED
code forever, before the watchdog starts, so the board does not reset in a loop. After start
the single main loop polls the radio, the downlink transmitter, the link and the server's
datagrams, then waits in one uselect poll on the UDP socket and the radio's AF_LORA socket until
the next deadline (downlink alarm, keepalive/stat, LED flash), at most LOOP_IDLE_MS: a received
frame or datagram ends the wait at once, so an uplink is forwarded within milliseconds of its
RX-done while an idle gateway wakes once a second. The IRQ handlers (LoRa events, TX alarm, IRQ
heartbeat) only count, set flags and micropython.schedule() the urgent part (capture and
transmitter), which is guarded against running inside the main loop's own radio and queue work.
During the wait the scheduled part runs the transmitter only and leaves frames in the radio's
socket, where they end the poll (a frame captured there would not); a frame captured earlier
in the pass makes the wait zero. When the radio socket cannot be polled, the wait is at most
loop_ms (LOOP_MIN_MS..LOOP_MAX_MS): frames at one SF/BW are at least twice that far apart, so
stats() still describes the frame read after it.
The hardware watchdog (WDT_TIMEOUT_MS) is fed only while the loop runs without repeated
errors and the IRQ thread still answers its heartbeat alarm (an exception escaping any
callback kills that thread on Pycom: only a reset brings callbacks back).
"""

import airtime
import devconfig
import downlink
import dutycycle
import eu868
import forwarder
import leds
import link
import oelog
import radio
from errors import ConfigError

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


WDT_TIMEOUT_MS = const(60000)
MAX_STEP_ERRORS = const(5)
IRQ_BEAT_S = const(5)
IRQ_DEAD_MS = const(20000)
LOOP_MAX_MS = const(20)
LOOP_MIN_MS = const(5)
LOOP_IDLE_MS = const(1000)
GC_QUIET_US = const(200000)
GC_EVERY_MS = const(60000)
ALIVE_LOG_MS = const(600000)
DNS_QUIET_US = const(3000000)
FATAL_RESET_MS = const(60000)
_MASK = 0xFFFFFFFF


class Clock:
    """Monotonic ms from the 32-bit µs tick clock (ticks_cpu); now() must run at least once per
    wrap (71 min) and only from the main loop (not reentrant). Never the RTC-based
    ticks_ms/us: they jump when NTP sets the clock."""

    def __init__(self, ticks):
        self._ticks = ticks
        self._last = ticks()
        self._us = 0
        self.ms = 0

    def now(self):
        """ticks_cpu now (uint32 µs); also advances self.ms."""
        t = self._ticks()
        self._us += (t - self._last) & _MASK
        self._last = t
        if self._us >= 1000:
            self.ms += self._us // 1000
            self._us %= 1000
        return t


def load_config(path, loader=None):
    """(Config, None) or (None, (LED blinks, console message)) for the file at path."""
    try:
        cfg = (loader or devconfig.load)(path)
    except ConfigError as exc:
        text = str(exc)
        blinks = leds.BLINKS_CONFIG_VALUE
        if text.startswith("config:"):
            blinks = leds.BLINKS_CONFIG_FILE
        return None, (blinks, "nano gateway: bad configuration in %s: %s" % (path, text))
    except Exception as exc:  # MemoryError, a broken file system...
        return None, (
            leds.BLINKS_CONFIG_FILE,
            "nano gateway: cannot load %s: %s" % (path, exc),
        )
    if cfg["image"] != "nanogateway":
        return None, (
            leds.BLINKS_CONFIG_IMAGE,
            'nano gateway: %s is for image "%s", not "nanogateway"' % (path, cfg["image"]),
        )
    return cfg, None


def gateway_eui(cfg, wlan=None, unique_id=None):
    """The configured gateway EUI, else the Pycom convention MAC[0:3] FFFE MAC[3:6] of the WiFi
    station MAC (WLAN.mac() is 6 bytes, or (sta_mac, ap_mac) on firmware 1.20)."""
    eui = cfg["gateway_eui"]
    if eui is not None:
        return bytes(eui)
    mac = None
    if wlan is not None:
        try:
            mac = wlan.mac()
            if len(mac) == 2:
                mac = mac[0]
        except Exception:
            mac = None
    if mac is None or len(mac) != 6:
        mac = unique_id()
    return devconfig.gateway_eui_from_mac(mac)


def loop_ms(sf, bw_hz):
    """Main-loop period: half the airtime of the shortest LoRaWAN frame (12 bytes) at the
    configured SF/BW, within LOOP_MIN_MS..LOOP_MAX_MS."""
    ms = airtime.time_on_air_us(sf, bw_hz, 12) // 2000
    if ms > LOOP_MAX_MS:
        return LOOP_MAX_MS
    if ms < LOOP_MIN_MS:
        return LOOP_MIN_MS
    return ms


def _hex(data):
    return "".join("%02X" % b for b in data)


class Hardware:
    """The Pycom modules the gateway uses (given, so tests can pass fakes)."""

    def __init__(self, machine, network, socket, select, utime, pycom, gc, schedule, rng):
        self.machine = machine
        self.network = network
        self.socket = socket
        self.select = select
        self.utime = utime
        self.pycom = pycom
        self.gc = gc
        self.schedule = schedule
        self.rng = rng


class Gateway:
    """The running gateway: radio, downlinks, link, forwarder, LEDs and watchdog."""

    def __init__(self, cfg, hw, led):
        self.cfg = cfg
        self.hw = hw
        self.led = led
        self.log = oelog.get("gw")
        self.ticks = hw.utime.ticks_cpu
        self.clock = Clock(self.ticks)
        bw_hz = cfg["bw_khz"] * 1000
        cr = eu868.parse_codr(cfg["coding_rate"])
        self.loop_ms = loop_ms(cfg["sf"], bw_hz)
        self.busy = False
        self.deferred = False
        self.waiting = False
        self.irq_beats = 0
        self._seen_beats = 0
        self._beat_ms = 0
        self._irq_dead = False
        self.step_errors = 0
        self._dirty = False
        self._gc_ms = 0
        self._alive_ms = 0
        self._txnb_seen = 0
        self._readable = False
        self._scheduled_cb = self._scheduled
        self._beat_cb = self._beat
        self.wdt = None
        self.beat_alarm = None
        wlan = hw.network.WLAN(mode=hw.network.WLAN.STA)
        self.eui = gateway_eui(cfg, wlan, hw.machine.unique_id)
        self.radio = radio.Radio(
            hw.network.LoRa,
            hw.socket,
            cfg["frequency_hz"],
            cfg["sf"],
            bw_hz,
            cr,
            cfg["tx_power_max_dbm"],
        )
        self.duty = dutycycle.DutyCycle()
        timer = hw.machine.Timer

        def alarm(handler, us):
            return timer.Alarm(handler, us=us)

        self.downlinks = downlink.Downlinks(
            self.radio,
            self.duty,
            cfg["tx_power_max_dbm"],
            cfg["tx_start_latency_us"],
            self.ticks,
            alarm,
            self._wake,
            oelog.get("down"),
        )
        self.link = link.Link(
            wlan, hw.socket, hw.select, hw.machine.RTC(), hw.utime, cfg, oelog.get("link")
        )
        location = None
        if cfg["latitude"] is not None and cfg["longitude"] is not None:
            alti = cfg["altitude_m"]
            location = (cfg["latitude"], cfg["longitude"], 0 if alti is None else alti)
        self.forwarder = forwarder.Forwarder(
            self.eui,
            self.link,
            self._handle_txpk,
            self._counters,
            oelog.get("up"),
            (cfg["frequency_hz"], eu868.datr(cfg["sf"], bw_hz), cfg["coding_rate"]),
            cfg["keepalive_s"] * 1000,
            cfg["stat_interval_s"] * 1000,
            location,
            hw.rng() & 0xFFFF,
        )

    # -- start -----------------------------------------------------------------------------
    def start(self):
        cfg = self.cfg
        self.log.info(
            "nano gateway %s: %s:%d, %s MHz %s %s, max %d dBm, TX latency %d us",
            _hex(self.eui),
            cfg["server_host"],
            cfg["server_port"],
            "%d.%06d" % (cfg["frequency_hz"] // 1000000, cfg["frequency_hz"] % 1000000),
            eu868.datr(cfg["sf"], cfg["bw_khz"] * 1000),
            cfg["coding_rate"],
            cfg["tx_power_max_dbm"],
            cfg["tx_start_latency_us"],
        )
        self.radio.start(self._wake)
        self.link.watch(self.radio.sock, self.loop_ms)
        self.clock.now()
        self.link.start(self.clock.ms)
        self.led.set(leds.WIFI_WAIT)
        machine = self.hw.machine
        self.beat_alarm = machine.Timer.Alarm(self._beat_cb, IRQ_BEAT_S, periodic=True)
        self.wdt = machine.WDT(timeout=WDT_TIMEOUT_MS)
        self._beat_ms = self.clock.ms

    # -- IRQ side ----------------------------------------------------------------------------
    def _wake(self):
        # Called from IRQ handlers (their try/except catches a full schedule queue).
        schedule = self.hw.schedule
        if schedule is not None:
            schedule(self._scheduled_cb, 0)

    def _beat(self, _alarm):
        try:
            self.irq_beats += 1
        except Exception:
            pass

    def _scheduled(self, _arg):
        # micropython.schedule: between two bytecodes of the main loop. An exception here
        # would surface in the main loop at a random place: keep it inside.
        try:
            if self.busy:
                self.deferred = True
                return
            self._urgent(not self.waiting)
        except Exception as exc:
            self.log.exc(exc, "scheduled radio work failed")

    # -- main-loop side ----------------------------------------------------------------------
    def _urgent(self, capture=True):
        """Capture waiting frames and run the transmitter; never nested in itself. Also runs
        as a scheduled callback inside the main loop, so it reads ticks_cpu itself and leaves
        the Clock (not reentrant) alone."""
        self.busy = True
        try:
            if capture:
                self.radio.capture()
            self.downlinks.service(self.ticks())
        finally:
            self.busy = False
            self.deferred = False

    def _handle_txpk(self, txpk, token):
        self.busy = True
        try:
            return self.downlinks.handle(txpk, token, self.clock.now(), self.clock.ms)
        finally:
            self.busy = False

    def _counters(self):
        return self.radio.frames, self.downlinks.txnb

    def run(self):
        """The main loop; never returns."""
        while True:
            try:
                self.step()
                self.step_errors = 0
            except Exception as exc:
                self.step_errors += 1
                self.log.exc(exc, "main loop error %d", self.step_errors)
                self.busy = False
                self.hw.utime.sleep_ms(100)
            self._feed()

    def step(self):
        """One pass of the main loop, ending with the wait."""
        self._urgent()
        self.clock.now()  # the wait may have lasted LOOP_IDLE_MS: LED flashes need the time
        forwarded = self._forward()
        now_us = self.clock.now()
        now_ms = self.clock.ms
        deadline = self.downlinks.next_deadline_us(now_us)
        quiet = deadline is None or deadline > DNS_QUIET_US
        if self.link.tick(now_ms, quiet):
            self.forwarder.opened(now_ms)
        until_upstream = self.forwarder.tick(now_ms)
        handled = 0
        while self._readable and handled < 8:
            data = self.link.recv()
            if data is None:
                break
            handled += 1
            self.forwarder.datagram(data, self.clock.ms)
            self._urgent()  # arm the alarm of a new downlink at once
            self.downlinks.log_decision()
        if forwarded or handled:
            self._dirty = True
        self._status(now_ms)
        self._housekeeping()
        self.waiting = True  # from here on, frames stay in the radio socket and end the wait
        try:
            self._readable = self.link.wait(self._timeout(until_upstream))
        finally:
            self.waiting = False

    def _forward(self):
        radio = self.radio
        count = 0
        while True:
            frame = radio.peek()
            if frame is None:
                return count
            if frame.tmst is not None and self.forwarder.uplink(frame, self.ticks()):
                count += 1
                self.led.flash(leds.UPLINK, self.clock.ms)
            radio.pop()
            if self.deferred:
                self._urgent()

    def _status(self, now_ms):
        if self.forwarder.server_up:
            self.led.set(leds.RUNNING)
        elif self.link.wifi_up:
            self.led.set(leds.NO_SERVER)
        else:
            self.led.set(leds.WIFI_WAIT)
        if self.downlinks.txnb != self._txnb_seen:
            self._txnb_seen = self.downlinks.txnb
            self.led.flash(leds.DOWNLINK, now_ms)
        self.led.tick(now_ms)
        if now_ms - self._alive_ms >= ALIVE_LOG_MS:
            self._alive_ms = now_ms
            self.log.info(
                "alive: heap free %d, frames %d (no metadata %d, ring overflow %d), "
                "forwarded %d, sent downlinks %d, late %d, foreign datagrams %d, malformed %d",
                self._mem_free(),
                self.radio.frames,
                self.radio.nometa,
                self.radio.overflow,
                self.forwarder.forwarded,
                self.downlinks.txnb,
                self.downlinks.missed,
                self.link.foreign,
                self.forwarder.malformed,
            )

    def _mem_free(self):
        try:
            return self.hw.gc.mem_free()
        except Exception:
            return -1

    def _housekeeping(self):
        now_us = self.clock.now()
        now_ms = self.clock.ms
        deadline = self.downlinks.next_deadline_us(now_us)
        if deadline is not None and deadline < GC_QUIET_US:
            return
        if self._dirty or now_ms - self._gc_ms >= GC_EVERY_MS:
            self._dirty = False
            self._gc_ms = now_ms
            self.hw.gc.collect()

    def _timeout(self, until_upstream):
        """ms to wait: 0 with a captured frame or deferred radio work, else until the first
        deadline (downlink, keepalive/stat, LED flash), at most LOOP_IDLE_MS."""
        if self.radio.pending() or self.deferred:
            return 0
        now_us = self.clock.now()
        timeout = LOOP_IDLE_MS
        if until_upstream is not None and until_upstream < timeout:
            timeout = until_upstream
        led = self.led.due_ms(self.clock.ms)
        if led is not None and led < timeout:
            timeout = led
        deadline = self.downlinks.next_deadline_us(now_us)
        if deadline is not None:
            ms = deadline // 1000
            if ms < timeout:
                timeout = ms
        return timeout if timeout > 0 else 0

    def _feed(self):
        now_ms = self.clock.ms
        if self.irq_beats != self._seen_beats:
            self._seen_beats = self.irq_beats
            self._beat_ms = now_ms
        healthy = self.step_errors < MAX_STEP_ERRORS
        if now_ms - self._beat_ms > IRQ_DEAD_MS:
            healthy = False
            if not self._irq_dead:
                self._irq_dead = True
                self.log.error("the IRQ thread stopped answering: watchdog reset ahead")
        if healthy and self.wdt is not None:
            self.wdt.feed()


def main():
    """Entry point (main.py): load the config, start, run forever."""
    import gc
    import socket

    import machine
    import network
    import pycom
    import utime

    try:
        import uselect as select
    except ImportError:
        try:
            import select
        except ImportError:
            select = None
    try:
        from micropython import schedule
    except ImportError:
        schedule = None

    led = leds.Leds(pycom, True)
    led.set(leds.BOOT)
    cfg, failure = load_config(devconfig.DEVICE_PATH)
    if failure is not None:
        leds.blink_forever(led, failure[0], utime.sleep_ms, failure[1])
    oelog.configure(level=cfg["log_level"])
    for secret in devconfig.secrets(cfg):
        oelog.add_secret(secret)
    led.enabled = led.enabled and cfg["led"]
    hw = Hardware(machine, network, socket, select, utime, pycom, gc, schedule, machine.rng)
    log = oelog.get("gw")
    try:
        gateway = Gateway(cfg, hw, led)
        gateway.start()
    except Exception as exc:
        log.exc(exc, "start-up failed; reset in %d s", FATAL_RESET_MS // 1000)
        led.enabled = True
        led.set(leds.ERROR)
        utime.sleep_ms(FATAL_RESET_MS)
        machine.reset()
    gc.collect()
    gateway.run()
