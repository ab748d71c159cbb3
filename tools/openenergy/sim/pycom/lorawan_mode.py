"""Pycom's native LoRaWAN stack (`LoRa(mode=LoRa.LORAWAN)`), emulated with lib/softmac.py.

`LoRaWANStack(driver)` is the MAC object lora.py's LoRa class and AF_LORA socket delegate to in
LoRaWAN mode (registered through `lora.set_lorawan_mac_factory`). It runs the sans-IO SoftMac
over the board's LoRaDriver: TxPlans become radio transmissions and RX windows on the medium, at
virtual instants derived from the board's (drifting) CPU clock.

What it reproduces, read from Pycom firmware 1.20.2 (pycom-micropython-sigfox esp32/mods/modlora.c,
lib/lora/mac/LoRaMac.c, a LoRaMac-node 4.x fork) and docs.pycom.io (network/lora, LoRa NVRAM):

- join(activation, auth=(dev_eui, app_eui, app_key) | (app_eui, app_key) [DevEUI = lora.mac()],
  dr=None, timeout=None): OTAA only (ABP fails loudly). dr defaults to DR5 in EU868, above DR5 is
  ValueError "invalid join data rate". The JoinRequest goes out at once; the firmware's
  TxNextActReqTimer (OVER_THE_AIR_ACTIVATION_DUTYCYCLE, 10 s -- the docs say 15 s) starts a new
  one every 10 s while not joined and the MAC is idle, forever; each request also waits for the
  lib's sub-band duty cycle and JoinBackoff (SoftMac.join_request). DevNonce: random per request
  (LoRaMac 4.x `Radio.Random()`, LoRaWAN 1.0.2), from a per-boot seeded RNG, not persisted.
  JoinAccept windows: RX1 +5 s same channel and DR, RX2 +6 s 869.525 MHz DR0.
  timeout: the source's default is INT32_MAX, so join() without timeout BLOCKS until joined (the
  docs say it returns at once); timeout <= 0 returns at once; otherwise the 50 ms polling loop
  (LORA_JOIN_WAIT_MS) raises TimeoutError("timed out") when it runs out -- also when the accept
  arrives in the very last poll, as the C loop does.
- has_joined() is modlora's `joined` flag: set by a JoinAccept or nvram_restore(), cleared by
  join(), init() and a restore of nothing.
- AF_LORA socket: default port 2, DR5, unconfirmed. send(): power_mode SLEEP or not joined ->
  ENETDOWN; > 255 bytes -> EMSGSIZE; b'' -> 0 and nothing sent. A payload above N of the socket's
  DR (ValidatePayloadLength) raises EMSGSIZE at once, blocking or not, while the command already
  queued makes the stack send an empty frame (MAC answers only, FCnt used) to flush MAC commands.
  A non-blocking send queues (7 commands; full -> EAGAIN) and returns len. A blocking send (or
  one with a timeout) returns when McpsConfirm comes: unconfirmed after the receive windows (or
  the downlink), confirmed when the ACK arrives; when every retry stayed unacknowledged it raises
  OSError(EAGAIN) (lorawan_send returns 0 on LORA_STATUS_ERROR). McpsConfirm runs on the MAC's
  1 s MacStateCheck timer (started at each transmission), except right after a received
  downlink, so a blocking unconfirmed SF7 send returns about 3 s after the transmission starts.
- recv(n)/recvfrom(n): application downlinks (FPort 1..223, non-empty) queued by McpsIndication
  (7 frames; more are dropped, the event still fires); the rest of a longer frame stays for the
  next call; recvfrom gives (bytes, port). Non-blocking and empty returns b'' (port 0): lora_recv
  returns 0 for timeout 0, "non-blocking sockets do not throw timeout errors"; a timeout that
  expires raises OSError(EAGAIN).
- stats(): updated as modlora does -- rx_timestamp (ticks_cpu at RX done), rssi, snr, sfrx (DR)
  by McpsIndication for every valid data downlink; sftx (DR), tx_trials (transmissions of the
  frame), tx_power (the LoRaMac TX power index from McpsConfirm, 0 = max; the configured dBm
  until the first confirm), tx_time_on_air (ms), tx_counter (FCnt of the frame) and
  tx_frequency by a successful McpsConfirm only (not by joins, not by a failed confirmed frame).
- events()/callback(): RX_PACKET_EVENT for an application downlink, TX_PACKET_EVENT at a
  successful McpsConfirm, TX_FAILED_EVENT when a confirmed frame got no ACK after tx_retries;
  callbacks go through the board's IRQ queue.
- nvram_save(): the SoftMac session (keys, FCnts, MAC parameters, channels, queued MAC answers;
  not the duty-cycle timers, as LoRaMacNvsSave) plus the joined flag and region, in the board's
  LoRa NVS namespace (`board.lorawan_nvram`: survives deep sleep and power cuts; apart from
  pycom.nvs_* keys, as Pycom's "LORA_NVM" namespace is apart from the user's). Saving under
  another region erases first. nvram_restore(): when the saved joined flag is set and the region
  matches, the MAC is re-initialised from the saved session (has_joined() True) and the saved
  joined flag is cleared: a second restore without a save in between restores nothing
  (documented by Pycom). nvram_erase() forgets everything.
- init()/LoRa(mode=LoRa.LORAWAN, ...) again, or any setter that re-initialises: LoRaMac is
  initialised from scratch (session, channels and queued commands gone; a blocking sender gets
  EAGAIN) -- except that when the board was joined, the stack reloads whatever session NVS holds
  (possibly stale) and clears the saved joined flag, as the INIT command does.
- add_channel/remove_channel: SoftMac's Pycom semantics (channels 0-2 replaceable, never removed;
  out-of-band frequencies silently refused), applied before or after the join.
- set_battery_level(level): DevStatusAns battery byte. TX power on the medium: the LoRaMac EU868
  conducted power floor(EIRP - 2.15 dBi antenna gain) = 13 dBm at index 0.
- RX windows open as LoRaMac-node computes them (RegionCommonComputeRxWindowParameters with 6
  minimum symbols, 10 ms max RX error, 1 ms radio wake-up); a frame still arriving in RX1 when RX2
  is due keeps RX2 closed (RxWindowSetup only runs on an idle radio).
- Duty cycle: modlora's INIT runs LoRaMacTestSetDutyCycleOn(false), so data frames go out at once
  whatever the sub-band's use (a confirmed retransmission after ACK_TIMEOUT, 2 +- 1 s); only
  JoinRequests wait, here for the lib's sub-band duty cycle and JoinBackoff. Option (default
  off): `lorawan_duty_cycle = True` on the board (or the world) makes data frames wait for the
  lib's duty-cycle accountant too (SoftMac's TxPlan.start_ms).

Knowingly not like Pycom: queued commands wait for the running cycle instead of failing with
LORAMAC_STATUS_BUSY; the join duty cycle is the lib's aggregated JoinBackoff, not LoRaMac's
per-request 1 %/0.1 %/0.01 % time-off; confirmed retransmissions are not quantised to the 1 s
MacStateCheck tick; MAC answers that do not fit beside the payload wait (SoftMac) instead of an
EMSGSIZE empty frame.

Optional field fault (default off): `nvram_fcnt_loss` on the board (or the world) -- True or an
int n -- makes nvram_restore() come back with the session as it was n saves earlier (the oldest
kept save of the same session if fewer), i.e. with an older FCntUp, as reported in the field
(pycom-micropython-sigfox #68, #307, #381, #582), so firmware that keeps its own FCnt copy can be
tested. The LNS then sees replayed FCnts.
"""

import collections
import errno
import math
import random

import eu868
import softmac
from errors import FrameError, RegionError

from openenergy.sim import radio as medium_radio
from openenergy.sim.board import oserror, unsupported
from openenergy.sim.clock import Signal

from . import lora as L

INT32_MAX = 0x7FFFFFFF
JOIN_RETRY_US = 10_000_000  # OVER_THE_AIR_ACTIVATION_DUTYCYCLE (modlora.c)
JOIN_WAIT_STEP_US = 50_000  # LORA_JOIN_WAIT_MS: join(timeout=...) polls every 50 ms
MAC_STATE_CHECK_US = 1_000_000  # LoRaMac MAC_STATE_CHECK_TIMEOUT
MIN_RX_SYMBOLS = 6  # LoRaMac-node MinRxSymbols
MAX_RX_ERROR_US = 10_000  # LoRaMac-node SystemMaxRxError (10 ms)
RADIO_WAKEUP_US = 1_000
ANTENNA_GAIN_DB = 2.15  # LoRaMac-node EU868 default antenna gain
MAX_TX_RETRIES = 7  # LoRaMac MAX_ACK_RETRIES = 8 transmissions
ACK_TIMEOUT_MS = 2000  # EU868 ACK_TIMEOUT 2 s +- 1 s before a confirmed retransmission
ACK_TIMEOUT_RND_MS = 1000
NVRAM_HISTORY = 16  # saves kept for the nvram_fcnt_loss fault
_SNR_STEP_DB = 0.25


def rx_window_us(sf, bw_hz):
    """(offset, timeout) in µs of an RX window for sf/bw: it opens offset µs after the nominal
    instant (negative: earlier) and waits timeout µs for a preamble (LoRaMac-node
    RegionCommonComputeRxWindowParameters)."""
    symbol_us = (1 << sf) * 1_000_000 / bw_hz
    symbols = max(MIN_RX_SYMBOLS, 4 + math.ceil(2 * MAX_RX_ERROR_US / symbol_us))
    offset = math.ceil(4 * symbol_us - symbols * symbol_us / 2 - RADIO_WAKEUP_US)
    return offset, math.ceil(symbols * symbol_us)


def _eui(value, name, size):
    if not isinstance(value, (bytes, bytearray, memoryview)) or len(value) != size:
        raise ValueError("%s: expected %d bytes" % (name, size))
    return bytes(value)


class _RandomNonces:
    """DevNonces as LoRaMac 4.x draws them (Radio.Random()): random, never persisted."""

    def __init__(self, rng):
        self._rng = rng

    def next(self):
        return self._rng.getrandbits(16)


class _TxCommand:
    """One E_LORA_CMD_LORAWAN_TX queued by a socket send."""

    __slots__ = ("data", "port", "confirmed", "dr", "too_big", "done", "ok", "signal")

    def __init__(self, data, port, confirmed, dr, too_big, signal):
        self.data = data
        self.port = port
        self.confirmed = confirmed
        self.dr = dr
        self.too_big = too_big
        self.done = False
        self.ok = False
        self.signal = signal

    def finish(self, ok):
        if not self.done:
            self.done = True
            self.ok = ok
            self.signal.fire()


class _Cycle:
    """A MAC transmission cycle: a JoinRequest or an uplink with its retries and windows."""

    __slots__ = ("kind", "command", "plan", "tx_start_vt", "window_open", "rx_done", "rx2_skipped")

    def __init__(self, kind, command):
        self.kind = kind
        self.command = command
        self.plan = None
        self.tx_start_vt = 0
        self.window_open = False
        self.rx_done = False
        self.rx2_skipped = False


def _nvram(board):
    """The board's LoRa NVS namespace (Pycom "LORA_NVM"), created on first use."""
    store = getattr(board, "lorawan_nvram", None)
    if store is None:
        store = {}
        board.lorawan_nvram = store
    return store


class LoRaWANStack:
    """The LoRaWAN MAC of one board for one boot (lora.py calls it; API in lora.py's
    set_lorawan_mac_factory docstring, plus stats(), socket_recvfrom(), tx_space(),
    set_power_mode() and light_sleep())."""

    def __init__(self, driver):
        self._d = driver
        self.board = driver.board
        self.scheduler = driver.scheduler
        session = getattr(self.board, "session", None)
        world = getattr(self.board, "world", None)
        seed = "lorawan:%s:%s:%s" % (
            getattr(world, "seed", None),
            self.board.name,
            getattr(session, "number", 0),
        )
        self._rng = random.Random(seed)
        self._generation = 0
        self._config = None
        self._mac = None
        self._identity = None
        self._channel_ops = []
        self._battery = 255
        self._joined = False
        self._join_dr = eu868.JOIN_DR_DEFAULT
        self._join_wanted = False
        self._join_timer = None
        self._cycle = None
        self._queue = collections.deque()
        self._space = Signal(self.scheduler)
        self._idle = Signal(self.scheduler)
        self._joined_signal = Signal(self.scheduler)
        self._partial_port = 0
        # stats() (lora_obj fields of modlora.c)
        self._rx_timestamp = 0
        self._rssi = 0
        self._snr = 0.0
        self._sfrx = 0
        self._sftx = 0
        self._tx_trials = 0
        self._tx_power = 0
        self._tx_time_on_air = 0
        self._tx_counter = 0
        self._tx_frequency = 0

    def __repr__(self):
        return "<LoRaWANStack %s joined=%s>" % (self.board.name, self._joined)

    # -- clocks and events ----------------------------------------------------------------
    def _local_us(self):
        local = getattr(self.board, "local_us", None)
        return local() if local is not None else self.scheduler.now_us()

    def _now_ms(self):
        return self._local_us() // 1000

    def _to_virtual(self, local_us):
        convert = getattr(self.board, "local_to_virtual", None)
        return convert(local_us) if convert is not None else local_us

    def _later(self, local_us, func, *args):
        """func(*args) after local_us of the board's clock, unless the stack was re-initialised,
        the driver shut down (power cut, deep sleep) or LoRaWAN mode was left meanwhile."""
        delay = self._to_virtual(max(0, int(local_us)))
        return self.scheduler.call_later(delay, self._guarded, self._generation, func, args)

    def _guarded(self, generation, func, args):
        if self._live(generation):
            func(*args)

    def _live(self, generation):
        d = self._d
        return generation == self._generation and d.alive and d.mac is self

    def _trace(self, kind, **fields):
        trace = getattr(getattr(self.board, "world", None), "trace", None)
        if trace is not None and getattr(trace, "enabled", True):
            trace.emit(kind, board=self.board.name, **fields)

    def _count(self, key):
        stats = getattr(self.board, "stats", None)
        if stats is not None:
            stats[key] += 1

    def _sleep_radio(self):
        d = self._d
        if d.alive and d.radio.state not in (medium_radio.TX, medium_radio.OFF):
            d.sleep()

    # -- configuration (INIT) ---------------------------------------------------------------
    def init(self, config):
        """E_LORA_CMD_INIT in LoRaWAN mode: LoRaMacInitialization, then the NVS reload when the
        board was joined."""
        self._config = config
        self._reset_mac("init")
        restored = self._restore_session() if self._joined else False
        self._joined = restored
        self._tx_power = config.tx_power
        self._sleep_radio()

    def _reset_mac(self, reason):
        self._generation += 1
        if self._join_timer is not None:
            self._join_timer.cancel()
            self._join_timer = None
        self._join_wanted = False
        cycle, self._cycle = self._cycle, None
        if cycle is not None and cycle.command is not None:
            cycle.command.finish(False)
        while self._queue:
            self._queue.popleft().finish(False)
        self._space.fire()
        self._idle.fire()
        self._mac = None
        self._identity = None
        self._channel_ops = []
        if cycle is not None:
            self._trace("lorawan_reset", reason=reason)

    def light_sleep(self):
        """machine.sleep(): the radio stops; a cycle in progress is lost (re-init LoRa after)."""
        if self._cycle is not None:
            cycle, self._cycle = self._cycle, None
            self._generation += 1
            if cycle.command is not None:
                cycle.command.finish(False)
            self._trace("lorawan_reset", reason="light_sleep")
            if self._join_wanted and not self._joined:
                self._arm_join_timer()
        self._sleep_radio()
        self._pump()

    def set_power_mode(self, power_mode):
        """LoRa.power_mode(): in LoRaWAN mode only SLEEP matters (send -> ENETDOWN)."""
        if power_mode == L.SLEEP and self._cycle is None:
            self._sleep_radio()

    def set_battery_level(self, level):
        self._battery = int(level) & 0xFF
        if self._mac is not None:
            self._mac.set_battery_level(self._battery)

    def add_channel(self, index, frequency, dr_min, dr_max):
        op = ("add", int(index), int(frequency), int(dr_min), int(dr_max))
        self._channel_ops.append(op)
        if self._mac is not None:
            self._apply_channel_op(self._mac, op)

    def remove_channel(self, index):
        op = ("remove", int(index))
        self._channel_ops.append(op)
        if self._mac is not None:
            self._apply_channel_op(self._mac, op)

    @staticmethod
    def _apply_channel_op(mac, op):
        if op[0] == "add":
            mac.add_channel(op[1], op[2], op[3], op[4])
        else:
            mac.remove_channel(op[1])

    def _new_mac(self, identity):
        c = self._config
        retries = min(max(int(c.tx_retries), 0), MAX_TX_RETRIES)
        mac = softmac.SoftMac(
            identity[0],
            identity[1],
            identity[2],
            _RandomNonces(self._rng),
            lambda: self._rng.getrandbits(24),
            now_ms=self._now_ms(),
            dr=eu868.JOIN_DR_DEFAULT,
            adr=c.adr,
            tx_retries=retries,
        )
        mac.set_battery_level(self._battery)
        for op in self._channel_ops:
            self._apply_channel_op(mac, op)
        self._mac = mac
        self._identity = identity
        return mac

    # -- join -------------------------------------------------------------------------------
    def has_joined(self):
        return self._joined

    def join(self, activation, auth, dr=None, timeout=None):
        activation = int(activation)
        if activation > L.ABP or activation < 0:
            raise ValueError("invalid activation type %d" % activation)
        if activation == L.ABP:
            raise unsupported("LoRa.join(activation=LoRa.ABP)")
        auth = tuple(auth)
        if len(auth) == 2:
            identity = (bytes(self.board.lora_mac), _eui(auth[0], "app_eui", 8))
            identity += (_eui(auth[1], "app_key", 16),)
        elif len(auth) == 3:
            identity = (_eui(auth[0], "dev_eui", 8), _eui(auth[1], "app_eui", 8))
            identity += (_eui(auth[2], "app_key", 16),)
        else:
            raise ValueError("auth: expected (app_eui, app_key) or (dev_eui, app_eui, app_key)")
        join_dr = eu868.JOIN_DR_DEFAULT
        if dr is not None:
            join_dr = int(dr)
            if not 0 <= join_dr <= eu868.JOIN_DR_DEFAULT:
                raise ValueError("invalid join data rate %d" % join_dr)
        timeout = INT32_MAX if timeout is None else int(timeout)
        # lora_send_cmd(E_LORA_CMD_JOIN): the LoRa task takes it once an uplink cycle is over.
        while self._cycle is not None and self._cycle.kind == "data":
            self._d._wait(self._idle)
        self._joined = False
        if self._mac is None or self._identity != identity:
            self._new_mac(identity)
        self._join_dr = join_dr
        self._join_wanted = True
        self._join_attempt()
        if timeout > 0:
            self._wait_joined(timeout)

    def _wait_joined(self, timeout_ms):
        # while (!joined && timeout >= 0) { delay(50); timeout -= 50; } if (timeout <= 0) raise
        start = self._local_us()
        polls = timeout_ms * 1000 // JOIN_WAIT_STEP_US + 1
        deadline = start + polls * JOIN_WAIT_STEP_US
        while not self._joined:
            remaining = deadline - self._local_us()
            if remaining <= 0:
                break
            self._d._wait(self._joined_signal, remaining)
        if self._joined:
            elapsed = self._local_us() - start
            polls = -(-elapsed // JOIN_WAIT_STEP_US)
            poll_at = start + polls * JOIN_WAIT_STEP_US
            if poll_at > self._local_us():
                self._d._sleep(poll_at - self._local_us())
            if timeout_ms * 1000 - polls * JOIN_WAIT_STEP_US > 0:
                return
        raise TimeoutError("timed out")

    def _arm_join_timer(self):
        if self._join_timer is not None:
            self._join_timer.cancel()
        self._join_timer = self._later(JOIN_RETRY_US, self._join_tick)

    def _join_tick(self):
        self._join_timer = None
        if self._join_wanted and not self._joined:
            self._join_attempt()

    def _join_attempt(self):
        """E_LORA_STATE_JOIN: restart the 10 s timer, then MLME_JOIN unless the MAC is busy."""
        self._arm_join_timer()
        if self._cycle is not None:
            return
        try:
            plan = self._mac.join_request(self._now_ms(), dr=self._join_dr)
        except RegionError:
            return
        self._count("lorawan_join_requests")
        self._trace("lorawan_join_request", dr=plan.dr, freq_hz=plan.freq_hz, wait_ms=plan.wait_ms)
        cycle = _Cycle("join", None)
        self._cycle = cycle
        self._schedule_tx(cycle, plan)

    # -- transmitting -----------------------------------------------------------------------
    def _schedule_tx(self, cycle, plan):
        """Send plan at its start_ms; data frames ignore the duty-cycle part of the wait unless
        the board sets lorawan_duty_cycle (Pycom: LoRaMacTestSetDutyCycleOn(false))."""
        cycle.plan = plan
        delay = 0
        if plan.kind == "data" and not self._option("lorawan_duty_cycle"):
            if plan.confirmed and plan.attempt > 1:
                delay = 1000 * (ACK_TIMEOUT_MS - ACK_TIMEOUT_RND_MS)
                delay += 1000 * self._rng.randint(0, 2 * ACK_TIMEOUT_RND_MS)
        elif plan.wait_ms > 0:
            delay = plan.start_ms * 1000 - self._local_us()
        self._later(delay, self._transmit, cycle, plan)

    def _transmit(self, cycle, plan):
        if self._cycle is not cycle:
            return
        d = self._d
        cycle.tx_start_vt = self.scheduler.now_us()
        cycle.rx_done = False
        cycle.rx2_skipped = False
        generation = self._generation
        d.transmit(
            plan.phy,
            None,
            on_done=lambda tx: self._guarded(generation, self._tx_done, (cycle, plan, tx)),
            freq_hz=plan.freq_hz,
            sf=plan.sf,
            bw_hz=plan.bw_hz,
            cr=plan.cr,
            preamble=plan.preamble,
            iq=plan.tx_iq,
            power_dbm=math.floor(plan.power_dbm - ANTENNA_GAIN_DB),
            crc=plan.crc,
        )
        self._count("lorawan_transmissions")
        if plan.kind == "data":
            if plan.attempt == 1:
                self._count("lorawan_uplinks")
            self._trace(
                "lorawan_uplink",
                fcnt=plan.fcnt,
                confirmed=plan.confirmed,
                attempt=plan.attempt,
                dr=plan.dr,
                freq_hz=plan.freq_hz,
                size=len(plan.phy),
            )

    def _tx_done(self, cycle, plan, tx):
        if self._cycle is not cycle or not tx.sent:
            return
        self._sleep_radio()
        for number, window in ((1, plan.rx1), (2, plan.rx2)):
            offset, timeout = rx_window_us(window[3], window[4])
            self._later(
                window[0] * 1000 + offset, self._open_window, cycle, number, window, timeout
            )

    # -- receiving --------------------------------------------------------------------------
    def _open_window(self, cycle, number, window, timeout_us):
        if self._cycle is not cycle or cycle.rx_done:
            return
        if cycle.window_open:
            cycle.rx2_skipped = True  # RX1 still receiving: RxWindowSetup needs an idle radio
            return
        cycle.window_open = True
        generation = self._generation
        _delay, freq_hz, dr, sf, bw_hz = window
        self._d.listen_window(
            self._to_virtual(timeout_us),
            on_frame=lambda frame: self._guarded(
                generation, self._on_frame, (cycle, number, dr, frame)
            ),
            on_timeout=lambda: self._guarded(generation, self._on_timeout, (cycle, number)),
            freq_hz=freq_hz,
            sf=sf,
            bw_hz=bw_hz,
            iq=cycle.plan.rx_iq,
            sync_word=self._config.sync_word,
        )

    def _on_timeout(self, cycle, number):
        if self._cycle is not cycle:
            return
        cycle.window_open = False
        self._sleep_radio()
        self._window_empty(cycle, number)

    def _window_empty(self, cycle, number):
        if number == 1 and not cycle.rx2_skipped:
            return  # RX2 follows
        self._windows_closed(cycle)

    def _on_frame(self, cycle, number, dr, frame):
        if self._cycle is not cycle:
            return
        cycle.window_open = False
        self._sleep_radio()
        if frame.crc_ok is False:
            self._window_empty(cycle, number)
            return
        now_ms = self._now_ms()
        rssi = int(math.floor(frame.rssi_dbm + 0.5))
        snr = math.floor(frame.snr_db / _SNR_STEP_DB + 0.5) * _SNR_STEP_DB
        stamp = self.board.ticks_cpu() & 0xFFFFFFFF
        mac = self._mac
        if cycle.kind == "join":
            if not mac.on_join_accept(frame.payload, now_ms, rssi, snr, dr, stamp):
                self._window_empty(cycle, number)
                return
            cycle.rx_done = True
            self._joined = True
            if self._join_timer is not None:
                self._join_timer.cancel()
                self._join_timer = None
            self._count("lorawan_joins")
            self._trace("lorawan_joined", dev_addr="%08x" % mac.dev_addr, window=number)
            self._joined_signal.fire()
            self._end_cycle(cycle)
            return
        received = mac.on_downlink(frame.payload, now_ms, rssi, snr, dr, stamp)
        if received is None:
            self._window_empty(cycle, number)
            return
        cycle.rx_done = True
        self._indication(received, rssi, snr, dr, stamp, number)
        if received.done:
            self._confirm(cycle, True, True)
            return
        plan = mac.no_downlink(now_ms)
        if plan is not None:
            self._schedule_tx(cycle, plan)
        else:
            self._confirm(cycle, not (mac.events() & softmac.TX_FAILED_EVENT), False)

    def _indication(self, received, rssi, snr, dr, stamp, window):
        """McpsIndication: rx stats, then the application payload into the RX queue."""
        self._rx_timestamp = stamp
        self._rssi = rssi
        self._snr = snr
        self._sfrx = dr
        self._count("lorawan_downlinks")
        port = received.port
        self._trace(
            "lorawan_downlink",
            fcnt=received.fcnt,
            port=port,
            size=len(received.payload),
            ack=received.ack,
            window=window,
        )
        if port is not None and 0 < port < 224 and received.payload:
            d = self._d
            if len(d.rx_queue) < L.RX_QUEUE_LEN:
                d.rx_queue.append((port, bytes(received.payload)))
            else:
                d.rx_dropped += 1
            d.fire_event(L.RX_PACKET_EVENT)
            d.rx_signal.fire()
            d._notify_io()

    def _windows_closed(self, cycle):
        mac = self._mac
        now_ms = self._now_ms()
        plan = mac.no_downlink(now_ms)
        if cycle.kind == "join":
            self._trace("lorawan_join_unanswered")
            self._end_cycle(cycle)
            return
        if plan is not None:
            self._schedule_tx(cycle, plan)
            return
        self._confirm(cycle, not (mac.events() & softmac.TX_FAILED_EVENT), False)

    def _confirm(self, cycle, ok, immediate):
        """McpsConfirm, on the next MacStateCheck tick (or at once after a downlink)."""
        delay = 0
        if not immediate:
            elapsed = self.scheduler.now_us() - cycle.tx_start_vt
            tick = self._to_virtual(MAC_STATE_CHECK_US)
            delay = -(-elapsed // tick) * tick - elapsed
        self.scheduler.call_later(delay, self._guarded, self._generation, self._report, (cycle, ok))

    def _report(self, cycle, ok):
        if self._cycle is not cycle:
            return
        plan = cycle.plan
        if ok:
            self._sftx = plan.dr
            self._tx_trials = plan.attempt
            self._tx_time_on_air = plan.airtime_ms
            self._tx_power = (eu868.tx_power_eirp(0) - plan.power_dbm) // 2
            self._tx_frequency = plan.freq_hz
            self._tx_counter = plan.fcnt
            self._d.fire_event(L.TX_PACKET_EVENT)
        else:
            self._count("lorawan_tx_failed")
            self._d.fire_event(L.TX_FAILED_EVENT)
        self._trace("lorawan_confirm", fcnt=plan.fcnt, ok=ok, attempts=plan.attempt)
        if cycle.command is not None:
            cycle.command.finish(ok)
        self._end_cycle(cycle)

    def _end_cycle(self, cycle):
        if self._cycle is cycle:
            self._cycle = None
        self._idle.fire()
        self._pump()

    # -- the AF_LORA socket -----------------------------------------------------------------
    def tx_space(self):
        return len(self._queue) < L.CMD_QUEUE_LEN

    def socket_send(self, sock, data):
        """lorawan_send(): queue the uplink; EMSGSIZE, EAGAIN, ENETDOWN as modlora.c."""
        if not self._joined:
            raise oserror(errno.ENETDOWN)
        d = self._d
        timeout_ms = sock._timeout_ms
        while len(self._queue) >= L.CMD_QUEUE_LEN:
            if timeout_ms == 0:
                raise oserror(errno.EAGAIN)
            limit = None if timeout_ms < 0 else timeout_ms * 1000
            if d._wait(self._space, limit) is None and timeout_ms > 0:
                raise oserror(errno.EAGAIN)
        too_big = len(data) > eu868.max_app_payload(sock.dr)
        command = _TxCommand(
            bytes(data), sock.port, sock.confirmed, sock.dr, too_big, Signal(self.scheduler)
        )
        self._queue.append(command)
        self._pump()
        if too_big:
            raise oserror(errno.EMSGSIZE)
        if timeout_ms != 0:
            while not command.done:
                d._wait(command.signal)
            if not command.ok:
                raise oserror(errno.EMSGSIZE if command.too_big else errno.EAGAIN)
        return len(data)

    def _pump(self):
        """The LoRa task: take the next queued uplink once the MAC is idle."""
        while self._cycle is None and self._queue and self._d.alive:
            command = self._queue.popleft()
            self._space.fire()
            self._d._notify_io()
            self._start_uplink(command)

    def _start_uplink(self, command):
        mac = self._mac
        now_ms = self._now_ms()
        plan = None
        if mac is not None and self._joined:
            if not command.too_big:
                try:
                    plan = mac.uplink(
                        command.port, command.data, command.confirmed, now_ms, dr=command.dr
                    )
                except softmac.PayloadSizeError:
                    command.too_big = True
                except (FrameError, RegionError):
                    plan = None
            if command.too_big:
                try:
                    plan = mac.uplink(None, b"", False, now_ms, dr=command.dr)
                except (FrameError, RegionError):
                    plan = None
                command.finish(False)  # LORA_STATUS_MSG_SIZE | LORA_STATUS_ERROR
        if plan is None:
            command.finish(False)
            return
        mac.events()  # SoftMac keeps its own copy of the flags: start the cycle clean
        cycle = _Cycle("data", None if command.too_big else command)
        self._cycle = cycle
        self._schedule_tx(cycle, plan)

    def socket_recv(self, sock, size):
        return self._receive(sock, size)[0]

    def socket_recvfrom(self, sock, size):
        return self._receive(sock, size)

    def _receive(self, sock, size):
        d = self._d
        timeout_ms = sock._timeout_ms
        deadline = None if timeout_ms <= 0 else self._local_us() + timeout_ms * 1000
        while True:
            if d.partial:
                data, d.partial = d.partial[:size], d.partial[size:]
                return data, self._partial_port
            if d.rx_queue:
                port, payload = d.rx_queue.popleft()
                data, d.partial = payload[:size], payload[size:]
                self._partial_port = port
                return data, port
            if timeout_ms == 0:
                return b"", 0
            if deadline is None:
                d._wait(d.rx_signal)
                continue
            remaining = deadline - self._local_us()
            if remaining <= 0 or (d._wait(d.rx_signal, remaining) is None and not d.rx_queue):
                raise oserror(errno.EAGAIN)

    # -- status -----------------------------------------------------------------------------
    def stats(self):
        """Values in lora.Stats order: (rx_timestamp, rssi, snr, sfrx, sftx, tx_trials,
        tx_power, tx_time_on_air, tx_counter, tx_frequency)."""
        return (
            self._rx_timestamp,
            self._rssi,
            float(self._snr),
            self._sfrx,
            self._sftx,
            self._tx_trials,
            self._tx_power,
            self._tx_time_on_air,
            self._tx_counter,
            self._tx_frequency,
        )

    # -- NVRAM ------------------------------------------------------------------------------
    def nvram_save(self):
        store = _nvram(self.board)
        region = self._config.region
        if store.get("region", region) != region:
            store.clear()
        mac = self._mac
        if mac is not None:
            blob = mac.save()
            if store.get("identity") != self._identity:
                store["sessions"] = []
            sessions = store.setdefault("sessions", [])
            if sessions and sessions[-1][0] != mac.dev_addr:
                del sessions[:]
            sessions.append((mac.dev_addr, blob))
            del sessions[:-NVRAM_HISTORY]
            store["identity"] = self._identity
        store["region"] = region
        store["joined"] = self._joined
        self._count("lorawan_nvram_saves")
        self._trace(
            "lorawan_nvram_save",
            joined=self._joined,
            fcnt_up=mac.fcnt_up if mac is not None else None,
        )

    def nvram_restore(self):
        store = _nvram(self.board)
        if "joined" not in store:
            self._joined = False
            return
        self._joined = bool(store["joined"])
        if not self._joined:
            return
        if store.get("region") != self._config.region:
            store.clear()
            self._joined = False
            return
        self.init(self._config)  # lora_send_cmd(E_LORA_CMD_INIT): reloads NVS when joined

    def nvram_erase(self):
        _nvram(self.board).clear()

    def _restore_session(self):
        """The INIT command's NVS reload -> True when a session was restored."""
        store = _nvram(self.board)
        sessions = store.get("sessions")
        identity = store.get("identity")
        if not sessions or identity is None:
            return False
        index = len(sessions) - 1
        lost = self._fcnt_loss()
        if lost:
            index = max(0, index - lost)
        mac = self._new_mac(identity)
        if not mac.restore(sessions[index][1]):
            self._mac = None
            self._identity = None
            return False
        self._channel_ops = []
        store["joined"] = False  # "clear the joined flag until the nvram_save method is called"
        self._count("lorawan_nvram_restores")
        self._trace(
            "lorawan_nvram_restore",
            fcnt_up=mac.fcnt_up,
            dev_addr="%08x" % mac.dev_addr,
            saves_lost=len(sessions) - 1 - index,
        )
        return True

    def _option(self, name):
        """A simulation option: the board's attribute, else the world's, else None."""
        value = getattr(self.board, name, None)
        if value is None:
            value = getattr(getattr(self.board, "world", None), name, None)
        return value

    def _fcnt_loss(self):
        value = self._option("nvram_fcnt_loss")
        if value is True:
            return 1
        if not value:
            return 0
        return int(value)
