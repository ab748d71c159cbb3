"""Pycom `network.LoRa` in raw LoRa mode and the AF_LORA raw socket, on the simulated radio medium.

Behaviour follows Pycom firmware 1.20.x (esp32/mods/modlora.c and the SX1272 driver of
pycom-micropython-sigfox) and docs.pycom.io; docs/radio-model.md lists the quirks kept:
- one LoRa object per board (`LoRa()` returns it; keyword arguments re-initialise it);
- a LoRa "task" serialises commands through a queue of 7; init/setters wait while a frame is
  being sent; a non-blocking `send` only queues the frame (EAGAIN when the queue is full);
- listen-before-talk before each raw frame when the radio is listening: the channel RSSI is
  sampled for 1 ms and the frame goes out only if it stays below -85 dBm; a busy channel puts
  the command back at the head of the queue and retries every 2 ms, without limit;
- after TX the radio listens again with the configured parameters (ALWAYS_ON);
- RX queue of 7 frames: a frame arriving on a full queue is dropped, yet the RX event, the
  callback and stats() still see it; frames with a bad CRC are dropped silently (RxError);
- `recv(n)` returns up to n bytes of the next frame and keeps the rest for the next call;
  non-blocking and empty returns b''; a timeout raises OSError(EAGAIN), not ETIMEDOUT;
- `ischannel_free()` leaves the radio asleep, as the driver's IsChannelFree() does.

Entry points for the simulator's `network` and `socket` modules: `lora_class_for(board)` and
`lora_socket(board, family, type)`. LoRaWAN mode is delegated to a MAC object registered with
`set_lorawan_mac_factory()` (the lib's soft MAC); the raw-radio primitives it needs are the
`LoRaDriver` methods `configure`, `transmit`, `listen_window`, `sleep` and the medium Radio.
"""

import errno
import math
import weakref
from collections import deque, namedtuple

import airtime

from openenergy.sim import radio as medium_radio
from openenergy.sim.board import oserror, unsupported
from openenergy.sim.clock import Signal

# --- constants of the LoRa class (modlora.c) -----------------------------------------------
LORA = 0
LORAWAN = 1
OTAA = 0
ABP = 1
ALWAYS_ON = 0
TX_ONLY = 1
SLEEP = 2
BW_125KHZ = 0
BW_250KHZ = 1
BW_500KHZ = 2
CODING_4_5 = 1
CODING_4_6 = 2
CODING_4_7 = 3
CODING_4_8 = 4
RX_PACKET_EVENT = 0x01
TX_PACKET_EVENT = 0x02
TX_FAILED_EVENT = 0x04
CLASS_A = 0
CLASS_C = 2
# LoRaMacRegion_t of Pycom's LoRaMac-node
AS923 = 0
AU915 = 1
CN470 = 2
EU433 = 4
EU868 = 5
IN865 = 7
US915 = 8

# --- socket constants (modusocket.h) -------------------------------------------------------
AF_LORA = 0xA0
SOCK_RAW = 3
SOL_LORA = 0xFFF05
SO_CONFIRMED = 0xF0002
SO_DR = 0xF0003

# Error numbers, raised as OSError(number, name) like the rest of the simulator: the host's
# errno values, which the simulated uerrno module exposes under the same names.
EAGAIN = errno.EAGAIN
EBADF = errno.EBADF
EMSGSIZE = errno.EMSGSIZE
ENETDOWN = errno.ENETDOWN
EOPNOTSUPP = errno.EOPNOTSUPP

PAYLOAD_MAX = 255  # LORA_PAYLOAD_SIZE_MAX
CMD_QUEUE_LEN = 7  # LORA_CMD_QUEUE_SIZE_MAX
RX_QUEUE_LEN = 7  # LORA_DATA_QUEUE_SIZE_MAX
LBT_THRESHOLD_DBM = -85  # lora_lbt_is_free(): busy unless every sample is below this
LBT_WINDOW_US = 1000  # ... sampled for 1 ms
TASK_PERIOD_US = 2000  # the LoRa task loop (vTaskDelay 2 ms): retry period of a busy LBT
CHANNEL_FREE_SETTLE_US = 1000  # IsChannelFree(): DelayMs(1) before carrier sensing
SNR_STEP_DB = 0.25  # SX127x RegPktSnrValue resolution

_BANDWIDTH_HZ = (125000, 250000, 500000)
_REGION_FREQ = {
    AS923: (915000000, 928000000),
    AU915: (915000000, 928000000),
    US915: (902000000, 928000000),
    CN470: (470000000, 510000000),
    IN865: (865000000, 867000000),
    EU433: (433000000, 435000000),
    EU868: (863000000, 870000000),
}
# lora_init_helper(): CN470 falls through to IN865 in the firmware (missing break).
_REGION_DEFAULT_FREQ = {
    AS923: 923000000,
    AU915: 915000000,
    US915: 915000000,
    EU868: 868000000,
    EU433: 433175000,
    CN470: 865000000,
    IN865: 865000000,
}
_REGION_DEFAULT_POWER = {
    AS923: 20,
    AU915: 20,
    US915: 20,
    IN865: 20,
    CN470: 14,
    EU868: 14,
    EU433: 12,
}
_REGION_MAX_CHANNELS = {AS923: 16, AU915: 72, US915: 72, EU868: 16, CN470: 96, IN865: 16, EU433: 16}
_REGION_DR_MAX = {AS923: 6, EU868: 6, AU915: 6, EU433: 6, CN470: 6, IN865: 6, US915: 4}
TX_POWER_MIN = 2
TX_POWER_MAX = 20

# Driver states (lora_state_t, reduced).
_NOINIT = "noinit"
_IDLE = "idle"
_RX = "rx"
_TX = "tx"
_SLEEP = "sleep"

Stats = namedtuple(
    "stats",
    (
        "rx_timestamp",
        "rssi",
        "snr",
        "sfrx",
        "sftx",
        "tx_trials",
        "tx_power",
        "tx_time_on_air",
        "tx_counter",
        "tx_frequency",
    ),
)

_mac_factory = None


def set_lorawan_mac_factory(factory):
    """Register factory(driver) -> MAC object used for LoRa(mode=LoRa.LORAWAN) (the soft MAC).

    The MAC object is called with: init(config) after each (re)configuration; join(activation,
    auth, dr=, timeout=), has_joined(), add_channel(index, frequency=, dr_min=, dr_max=),
    remove_channel(index), set_battery_level(level), nvram_save(), nvram_restore(),
    nvram_erase(); socket_send(sock, data) -> int and socket_recv(sock, size) -> bytes for
    AF_LORA sockets (sock.port, sock.dr, sock.confirmed, sock._timeout_ms: -1 blocking,
    0 non-blocking). It drives the radio through the driver's primitives and reports through
    driver.fire_event(flag). In LoRaWAN mode lora.py also hands it stats() (values in Stats
    order), socket_recvfrom(sock, size) -> (bytes, port), tx_space(), set_power_mode(mode) and
    light_sleep(). Without a registered factory, lorawan_mode.LoRaWANStack is used.
    """
    global _mac_factory
    _mac_factory = factory


def _lorawan_factory():
    """The registered MAC factory; by default the soft-MAC emulation of Pycom's stack."""
    if _mac_factory is None:
        from openenergy.sim.pycom import lorawan_mode

        set_lorawan_mac_factory(lorawan_mode.LoRaWANStack)
    return _mac_factory


class _Config:
    __slots__ = (
        "mode",
        "region",
        "frequency",
        "tx_power",
        "bandwidth",
        "sf",
        "preamble",
        "coding_rate",
        "power_mode",
        "tx_iq",
        "rx_iq",
        "adr",
        "public",
        "tx_retries",
        "device_class",
    )

    def copy(self):
        other = _Config()
        for name in self.__slots__:
            setattr(other, name, getattr(self, name))
        return other

    @property
    def bw_hz(self):
        return _BANDWIDTH_HZ[self.bandwidth]

    @property
    def sync_word(self):
        return medium_radio.SYNC_PUBLIC if self.public else medium_radio.SYNC_PRIVATE


class _Command:
    __slots__ = ("kind", "data", "config", "done", "signal")

    def __init__(self, kind, data=None, config=None):
        self.kind = kind
        self.data = data
        self.config = config
        self.done = False
        self.signal = None


def medium_for(world, scheduler):
    """The world's radio medium (world.medium), created on first use if the world has none."""
    medium = getattr(world, "medium", None)
    if medium is None:
        medium = medium_radio.Medium(scheduler, world.rng, trace=getattr(world, "trace", None))
        world.medium = medium
    return medium


class LoRaDriver:
    """The LoRa peripheral of one board for one boot: the state behind `lora_obj` in modlora.c.

    Raw-radio primitives (for the soft MAC): configure(config), transmit(payload, at_us,
    on_done, **overrides), listen_window(timeout_us, on_frame, on_timeout, **overrides),
    sleep(), fire_event(flag), and `radio` (the medium Radio).
    """

    def __init__(self, board):
        self.board = board
        self.scheduler = board.scheduler
        self.medium = medium_for(board.world, board.scheduler)
        self.radio = self._radio_for(board)
        self.alive = True
        self.state = _NOINIT
        self.config = None
        self.joined = False
        self.mac = None
        # stats()
        self.rx_timestamp = 0
        self.rssi = 0
        self.snr = 0.0
        self.sfrx = 0
        self.sftx = 0
        self.tx_trials = 0
        self.tx_time_on_air = 0
        self.tx_counter = 0
        self.tx_frequency = 0
        # events / callback
        self.events = 0
        self.trigger = 0
        self.handler = None
        self.handler_arg = None
        # queues
        self.rx_queue = deque()
        self.partial = b""
        self.rx_dropped = 0
        self.crc_errors = 0
        self.commands = deque()
        self.busy = False
        self.rx_signal = Signal(self.scheduler)
        self.space_signal = Signal(self.scheduler)
        self.battery_level = 0

    def _wait(self, signal, timeout_us=None):
        """Block the calling firmware task on signal; its value, or None on timeout."""
        wait = getattr(self.board, "wait", None)
        if wait is not None:
            return wait(signal, timeout_us)
        return signal.wait(timeout_us, None)

    def _sleep(self, us):
        sleep = getattr(self.board, "sleep_us", None)
        if sleep is not None:
            sleep(us)
        else:
            self.scheduler.sleep_us(us)

    def _notify_io(self):
        notify = getattr(self.board, "notify_io", None)
        if notify is not None:
            notify()

    def _radio_for(self, board):
        for radio in self.medium.radios_named(board.name):
            radio.power_on()
            if radio.position != tuple(float(c) for c in board.position):
                radio.move(board.position)
            return radio
        return self.medium.add_radio(board.name, board.position)

    # -- lifecycle ------------------------------------------------------------------------
    def shutdown(self):
        """Power cut / reboot: the radio stops at once, everything in RAM is gone."""
        if not self.alive:
            return
        self.alive = False
        self.radio.off()
        self.commands.clear()
        self.rx_queue.clear()

    def light_sleep(self):
        """machine.sleep(): the firmware puts the radio to sleep (after a frame in progress)."""
        if not self.alive or self.state == _NOINIT:
            return
        if self.mac is not None:
            self.mac.light_sleep()
            return
        if self.busy:
            self.commands.append(_Command("sleep"))
        else:
            self._apply_sleep()

    # -- configuration --------------------------------------------------------------------
    def configure(self, config, wait=True):
        """Apply a configuration (INIT command): waits while a frame is being sent."""
        self._submit(_Command("init", config=config), wait)

    def set_power_mode(self, power_mode):
        self.config.power_mode = power_mode
        if self.config.mode == LORAWAN and self.mac is not None:
            self.mac.set_power_mode(power_mode)  # the LoRaWAN MAC owns the radio
            return
        kind = "wake" if power_mode == ALWAYS_ON else "sleep"
        self._submit(_Command(kind), True)

    def _submit(self, command, wait):
        if not self.busy and not self.commands:
            self._execute(command)
            return
        if wait and command.signal is None:
            command.signal = Signal(self.scheduler)
        self.commands.append(command)
        if wait:
            while not command.done:
                self._wait(command.signal)

    def _execute(self, command):
        kind = command.kind
        if kind == "init":
            self._apply_init(command.config)
        elif kind == "sleep":
            self._apply_sleep()
        elif kind == "wake":
            self._listen()
        elif kind == "tx":
            self._begin_tx(command)
            return
        self._complete(command)

    def _complete(self, command):
        command.done = True
        if command.signal is not None:
            command.signal.fire()

    def _pump(self):
        while self.alive and not self.busy and self.commands:
            command = self.commands.popleft()
            self.space_signal.fire()
            self._notify_io()
            self._execute(command)

    def _apply_init(self, config):
        self.config = config
        self.joined = False
        if config.mode == LORAWAN:
            self.state = _IDLE  # INIT in LoRaWAN mode leaves the radio to LoRaMac (no setup)
            return
        if config.power_mode == ALWAYS_ON:
            self._listen()
        else:
            self._apply_sleep()

    def _apply_sleep(self):
        if self.radio.state not in (medium_radio.TX, medium_radio.OFF):
            self.radio.sleep()
        self.state = _SLEEP

    def _listen(self):
        c = self.config
        if self.radio.state == medium_radio.OFF:
            return
        self.radio.listen(
            c.frequency,
            c.sf,
            c.bw_hz,
            iq=c.rx_iq,
            sync_word=c.sync_word,
            on_frame=self._on_frame,
        )
        self.state = _RX

    # -- transmitting ---------------------------------------------------------------------
    def queue_tx(self, payload, blocking, timeout_ms):
        """lora_send(): queue a raw frame; wait for TX done unless non-blocking.

        Returns False when the command queue stayed full (the caller raises EAGAIN).
        """
        while len(self.commands) >= CMD_QUEUE_LEN:
            if timeout_ms == 0:
                return False
            timeout_us = None if timeout_ms < 0 else timeout_ms * 1000
            if self._wait(self.space_signal, timeout_us) is None:
                return False
        command = _Command("tx", data=payload)
        command.signal = Signal(self.scheduler)
        self.sftx = self.config.sf
        self._submit(command, False)
        if blocking:
            while not command.done:
                self._wait(command.signal)
        return True

    def _begin_tx(self, command):
        self.busy = True
        self.state = _TX
        if self.radio.state != medium_radio.RX:
            self._send_now(command)
            return
        c = self.config
        if self.radio.channel_rssi(c.frequency, c.bw_hz) >= LBT_THRESHOLD_DBM:
            self.scheduler.call_later(TASK_PERIOD_US, self._retry_tx, command)
            return
        probe = self.radio.open_probe(c.frequency, c.bw_hz)
        self.scheduler.call_later(LBT_WINDOW_US, self._lbt_done, command, probe)

    def _retry_tx(self, command):
        if self.alive:
            self._begin_tx(command)

    def _lbt_done(self, command, probe):
        level = probe.close()
        if not self.alive:
            return
        if level >= LBT_THRESHOLD_DBM:
            self.scheduler.call_later(TASK_PERIOD_US, self._retry_tx, command)
            return
        self._send_now(command)

    def _send_now(self, command):
        c = self.config
        self.radio.transmit(
            command.data,
            c.frequency,
            c.sf,
            c.bw_hz,
            cr=c.coding_rate,
            preamble=c.preamble,
            iq=c.tx_iq,
            power_dbm=c.tx_power,
            crc=True,
            sync_word=c.sync_word,
            on_done=lambda tx: self._tx_done(command, tx),
        )

    def _tx_done(self, command, tx):
        if not self.alive:
            return
        self.fire_event(TX_PACKET_EVENT)
        self.busy = False
        if self.config.power_mode == ALWAYS_ON:
            self._listen()
        else:
            self._apply_sleep()
        self._complete(command)
        self._notify_io()
        self._pump()

    def transmit(self, payload, at_us=None, on_done=None, **overrides):
        """Raw-radio primitive: send payload at virtual instant at_us (default now), with the
        configured parameters or overrides (freq_hz, sf, bw_hz, cr, preamble, iq, power_dbm,
        crc). No LBT, no queue. Returns the medium Transmission."""
        c = self.config
        params = {
            "freq_hz": c.frequency,
            "sf": c.sf,
            "bw_hz": c.bw_hz,
            "cr": c.coding_rate,
            "preamble": c.preamble,
            "iq": c.tx_iq,
            "power_dbm": c.tx_power,
            "crc": True,
            "sync_word": c.sync_word,
        }
        params.update(overrides)
        return self.radio.transmit(bytes(payload), at_us=at_us, on_done=on_done, **params)

    def listen_window(self, timeout_us=None, on_frame=None, on_timeout=None, **overrides):
        """Raw-radio primitive: receive one frame (single mode) within timeout_us, with the
        configured parameters or overrides (freq_hz, sf, bw_hz, iq, sync_word)."""
        c = self.config
        params = {
            "freq_hz": c.frequency,
            "sf": c.sf,
            "bw_hz": c.bw_hz,
            "iq": c.rx_iq,
            "sync_word": c.sync_word,
        }
        params.update(overrides)
        self.radio.listen(
            params["freq_hz"],
            params["sf"],
            params["bw_hz"],
            iq=params["iq"],
            sync_word=params["sync_word"],
            on_frame=on_frame,
            timeout_us=timeout_us,
            single=True,
            on_timeout=on_timeout,
        )

    def sleep(self):
        self._apply_sleep()

    # -- receiving ------------------------------------------------------------------------
    def _on_frame(self, frame):
        if not self.alive:
            return
        if frame.crc_ok is False:
            self.crc_errors += 1  # OnRxError: nothing reaches the socket
            return
        self.rx_timestamp = self.board.ticks_cpu() & 0xFFFFFFFF
        self.rssi = int(math.floor(frame.rssi_dbm + 0.5))
        self.snr = math.floor(frame.snr_db / SNR_STEP_DB + 0.5) * SNR_STEP_DB
        self.sfrx = self.config.sf
        if len(self.rx_queue) < RX_QUEUE_LEN:
            self.rx_queue.append(frame.payload)
        else:
            self.rx_dropped += 1
            self._emit("lora_rx_dropped", size=len(frame.payload), dropped=self.rx_dropped)
        self.fire_event(RX_PACKET_EVENT)
        self.rx_signal.fire()
        self._notify_io()

    def fire_event(self, flag):
        """Set an event flag and queue the callback if its trigger includes it."""
        self.events |= flag
        if self.trigger & flag and self.handler is not None:
            self.board.post_irq(self.handler, self.handler_arg)

    def receive(self, size, timeout_ms):
        """lora_recv(): up to size bytes of the next frame; b'' when non-blocking and empty;
        None on timeout (the caller raises EAGAIN)."""
        deadline = None
        if timeout_ms > 0:
            deadline = self._local_us() + timeout_ms * 1000
        while True:
            if self.partial:
                data, self.partial = self.partial[:size], self.partial[size:]
                return data
            if self.rx_queue:
                frame = self.rx_queue.popleft()
                data, self.partial = frame[:size], frame[size:]
                return data
            if timeout_ms == 0:
                return b""
            if deadline is None:
                self._wait(self.rx_signal)
            else:
                remaining = deadline - self._local_us()
                if remaining <= 0 or self._wait(self.rx_signal, remaining) is None:
                    if not self.rx_queue:
                        return None

    def _local_us(self):
        local = getattr(self.board, "local_us", None)
        return local() if local is not None else self.scheduler.now_us()

    def rx_any(self):
        return bool(self.partial) or bool(self.rx_queue)

    def tx_space(self):
        return len(self.commands) < CMD_QUEUE_LEN

    # -- sensing --------------------------------------------------------------------------
    def channel_free(self, rssi_threshold, time_ms):
        """Radio.IsChannelFree(): sleep, tune, 1 ms settle, sense time_ms, then sleep."""
        c = self.config
        if self.radio.state not in (medium_radio.TX, medium_radio.OFF):
            self.radio.sleep()
        self._sleep(CHANNEL_FREE_SETTLE_US)
        probe = self.radio.open_probe(c.frequency, c.bw_hz)
        if time_ms > 0:
            self._sleep(time_ms * 1000)
        level = probe.close()
        if self.radio.state not in (medium_radio.TX, medium_radio.OFF):
            self.radio.sleep()
            if not self.busy:
                self.state = _SLEEP
        return not level > rssi_threshold

    def _emit(self, kind, **fields):
        trace = getattr(self.board.world, "trace", None)
        if trace is not None:
            trace.emit(kind, board=self.board.name, **fields)


class _BoardLoRa:
    """Per-board holder: the LoRa class handed to the board's network module and the driver
    of the current boot (replaced after a power cut)."""

    def __init__(self, board):
        self.board = board
        self.driver = None
        self.instance = None
        self.cls = type("LoRa", (LoRa,), {"_holder": self})
        _subscribe(getattr(board, "on_power_off", None), self.power_off)
        _subscribe(getattr(board, "on_light_sleep", None), self.light_sleep)

    def current_driver(self):
        if self.driver is None or not self.driver.alive:
            self.driver = LoRaDriver(self.board)
            self.instance = None
        return self.driver

    def power_off(self, *args):
        if self.driver is not None:
            self.driver.shutdown()
        self.driver = None
        self.instance = None

    def light_sleep(self, *args):
        if self.driver is not None:
            self.driver.light_sleep()


def _subscribe(hook, fn):
    if hook is None:
        return
    if isinstance(hook, list):
        hook.append(fn)
    elif callable(hook):
        hook(fn)
    else:
        hook.append(fn)


_holders = weakref.WeakKeyDictionary()
_holders_by_id = {}  # boards that cannot be weakly referenced: id -> (board, holder)


def _lookup(board):
    try:
        return _holders.get(board)
    except TypeError:
        entry = _holders_by_id.get(id(board))
        return entry[1] if entry is not None and entry[0] is board else None


def _holder_for(board):
    holder = _lookup(board)
    if holder is None:
        holder = _BoardLoRa(board)
        try:
            _holders[board] = holder
        except TypeError:
            _holders_by_id[id(board)] = (board, holder)
    return holder


def lora_class_for(board):
    """The `network.LoRa` class of a board (one LoRa object per board and boot)."""
    return _holder_for(board).cls


def reset_board(board):
    """Forget a board's LoRa state (a reboot the board did not report through on_power_off)."""
    holder = _lookup(board)
    if holder is not None:
        holder.power_off()


def lora_socket(board, family=AF_LORA, type=SOCK_RAW):
    """`socket.socket(socket.AF_LORA, socket.SOCK_RAW)` on a board."""
    holder = _holder_for(board)
    driver = holder.driver
    if driver is None or not driver.alive or driver.state == _NOINIT:
        raise oserror(ENETDOWN)
    return LoRaSocket(driver, family, type)


def _validate_range(value, low, high, message):
    if not low <= value <= high:
        raise ValueError(message % value)


class LoRa:
    """network.LoRa (LORA raw mode; LORAWAN through the registered soft MAC)."""

    LORA = LORA
    LORAWAN = LORAWAN
    OTAA = OTAA
    ABP = ABP
    ALWAYS_ON = ALWAYS_ON
    TX_ONLY = TX_ONLY
    SLEEP = SLEEP
    BW_125KHZ = BW_125KHZ
    BW_250KHZ = BW_250KHZ
    BW_500KHZ = BW_500KHZ
    CODING_4_5 = CODING_4_5
    CODING_4_6 = CODING_4_6
    CODING_4_7 = CODING_4_7
    CODING_4_8 = CODING_4_8
    RX_PACKET_EVENT = RX_PACKET_EVENT
    TX_PACKET_EVENT = TX_PACKET_EVENT
    TX_FAILED_EVENT = TX_FAILED_EVENT
    CLASS_A = CLASS_A
    CLASS_C = CLASS_C
    AS923 = AS923
    AU915 = AU915
    CN470 = CN470
    EU433 = EU433
    EU868 = EU868
    IN865 = IN865
    US915 = US915
    timeout = TimeoutError

    _holder = None

    def __new__(cls, id=0, **kwargs):
        holder = cls._holder
        if holder is None:
            raise TypeError("LoRa: use lora_class_for(board) to get a board's LoRa class")
        if id != 0:
            raise OSError("resource not available")
        driver = holder.current_driver()
        self = holder.instance
        if self is None:
            self = object.__new__(cls)
            self._driver = driver
            holder.instance = self
        if kwargs or driver.state == _NOINIT:
            self.init(**kwargs)
        return self

    def __init__(self, id=0, **kwargs):
        pass

    @property
    def _d(self):
        """The driver, after checking the calling firmware still runs (PowerOff otherwise)."""
        driver = self._driver
        check = getattr(driver.board, "check_alive", None)
        if check is not None:
            check()
        return driver

    # -- init and configuration ------------------------------------------------------------
    def init(
        self,
        mode=LORA,
        *,
        region=None,
        frequency=None,
        tx_power=None,
        bandwidth=BW_125KHZ,
        sf=7,
        preamble=8,
        coding_rate=CODING_4_5,
        power_mode=ALWAYS_ON,
        tx_iq=False,
        rx_iq=False,
        adr=False,
        public=True,
        tx_retries=2,
        device_class=CLASS_A,
    ):
        driver = self._d
        c = _Config()
        c.mode = int(mode)
        if c.mode not in (LORA, LORAWAN):
            raise ValueError(f"invalid mode {c.mode}")
        if region is None:
            region = getattr(driver.board, "lora_region", EU868)
        c.region = int(region)
        lopy4 = getattr(driver.board, "model", "LoPy4") in ("LoPy4", "FiPy")
        if c.region not in _REGION_FREQ or (not lopy4 and c.region in (CN470, EU433)):
            raise ValueError(f"invalid region {c.region}")
        if frequency is None:
            c.frequency = _REGION_DEFAULT_FREQ[c.region]
        else:
            c.frequency = int(frequency)
            low, high = _REGION_FREQ[c.region]
            _validate_range(c.frequency, low, high, "frequency %d out of range")
        if tx_power is None:
            c.tx_power = _REGION_DEFAULT_POWER[c.region]
        else:
            c.tx_power = int(tx_power) & 0xFF
            _validate_range(c.tx_power, TX_POWER_MIN, TX_POWER_MAX, "Tx power %d out of range")
        c.bandwidth = int(bandwidth) & 0xFF
        _validate_range(c.bandwidth, BW_125KHZ, BW_500KHZ, "bandwidth %d not supported")
        c.sf = int(sf) & 0xFF
        _validate_range(c.sf, 6, 12, "spreading factor %d out of range")
        c.preamble = int(preamble) & 0xFF
        c.coding_rate = int(coding_rate) & 0xFF
        _validate_range(c.coding_rate, CODING_4_5, CODING_4_8, "coding rate %d out of range")
        c.power_mode = int(power_mode) & 0xFF
        _validate_range(c.power_mode, ALWAYS_ON, SLEEP, "invalid power mode %d")
        c.tx_iq = bool(tx_iq)
        c.rx_iq = bool(rx_iq)
        c.adr = bool(adr)
        c.public = bool(public)
        c.tx_retries = int(tx_retries)
        c.device_class = int(device_class)
        if c.device_class not in (CLASS_A, CLASS_C):
            raise ValueError(f"invalid device_class {c.device_class}")
        if c.mode == LORAWAN and driver.mac is None:
            driver.mac = _lorawan_factory()(driver)
        driver.configure(c)
        if c.mode == LORAWAN:
            driver.mac.init(c)
        else:
            driver.mac = None

    def _reconfigure(self, name, value):
        driver = self._d
        config = driver.config.copy()
        setattr(config, name, value)
        driver.configure(config)
        if config.mode == LORAWAN and driver.mac is not None:
            driver.mac.init(config)

    def frequency(self, frequency=None):
        if frequency is None:
            return self._d.config.frequency
        frequency = int(frequency)
        low, high = _REGION_FREQ[self._d.config.region]
        _validate_range(frequency, low, high, "frequency %d out of range")
        self._reconfigure("frequency", frequency)

    def tx_power(self, tx_power=None):
        if tx_power is None:
            return self._d.config.tx_power
        tx_power = int(tx_power) & 0xFF
        _validate_range(tx_power, TX_POWER_MIN, TX_POWER_MAX, "Tx power %d out of range")
        self._reconfigure("tx_power", tx_power)

    def bandwidth(self, bandwidth=None):
        if bandwidth is None:
            return self._d.config.bandwidth
        bandwidth = int(bandwidth) & 0xFF
        _validate_range(bandwidth, BW_125KHZ, BW_500KHZ, "bandwidth %d not supported")
        self._reconfigure("bandwidth", bandwidth)

    def sf(self, sf=None):
        if sf is None:
            return self._d.config.sf
        sf = int(sf) & 0xFF
        _validate_range(sf, 6, 12, "spreading factor %d out of range")
        self._reconfigure("sf", sf)

    def preamble(self, preamble=None):
        if preamble is None:
            return self._d.config.preamble
        self._reconfigure("preamble", int(preamble) & 0xFF)

    def coding_rate(self, coding_rate=None):
        if coding_rate is None:
            return self._d.config.coding_rate
        coding_rate = int(coding_rate) & 0xFF
        _validate_range(coding_rate, CODING_4_5, CODING_4_8, "coding rate %d out of range")
        self._reconfigure("coding_rate", coding_rate)

    def power_mode(self, power_mode=None):
        if power_mode is None:
            return self._d.config.power_mode
        power_mode = int(power_mode) & 0xFF
        _validate_range(power_mode, ALWAYS_ON, SLEEP, "invalid power mode %d")
        self._d.set_power_mode(power_mode)

    def reset(self):
        driver = self._d
        dropped = list(driver.commands)
        driver.commands.clear()
        for command in dropped:
            driver._complete(command)  # lora_reset() empties the queue; waiting senders return
        config = driver.config.copy()
        driver.configure(config)
        if config.mode == LORAWAN and driver.mac is not None:
            driver.mac.init(config)

    # -- status ---------------------------------------------------------------------------
    def stats(self):
        d = self._d
        if d.config.mode == LORAWAN and d.mac is not None:
            return Stats(*d.mac.stats())
        return Stats(
            d.rx_timestamp,
            d.rssi,
            float(d.snr),
            d.sfrx,
            d.sftx,
            d.tx_trials,
            d.config.tx_power,
            d.tx_time_on_air,
            d.tx_counter,
            d.tx_frequency,
        )

    def events(self):
        d = self._d
        events, d.events = d.events, 0
        return events

    def callback(self, trigger, handler=None, arg=None):
        d = self._d
        if trigger is not None and handler is not None:
            d.trigger = int(trigger)
            d.handler = handler
            d.handler_arg = self if arg is None else arg
        else:
            d.trigger = 0
            d.handler = None
            d.handler_arg = None

    def mac(self):
        return bytes(self._d.board.lora_mac)

    def has_joined(self):
        d = self._d
        if d.config.mode == LORAWAN:
            return d.mac.has_joined()
        return False

    def ischannel_free(self, rssi_threshold, time_ms=0):
        return self._d.channel_free(int(rssi_threshold), int(time_ms))

    def airtime(self, length):
        c = self._d.config
        us = airtime.time_on_air_us(
            c.sf, c.bw_hz, int(length), c.coding_rate, max(c.preamble, 6), True, False, None
        )
        return (us + 999) // 1000

    # -- LoRaWAN (delegated to the MAC) ------------------------------------------------------
    def _mac_or_fail(self):
        d = self._d
        if d.config.mode != LORAWAN or d.mac is None:
            raise OSError("the requested operation is not possible")
        return d.mac

    def join(self, activation, auth, *, dr=None, timeout=None):
        return self._mac_or_fail().join(activation, auth, dr=dr, timeout=timeout)

    def _validate_channel(self, index):
        region = self._d.config.region
        if not 0 <= index < _REGION_MAX_CHANNELS[region]:
            raise ValueError(f"channel {index} out of range")

    def add_channel(self, index, *, frequency, dr_min, dr_max):
        index = int(index)
        self._validate_channel(index)
        dr_top = _REGION_DR_MAX[self._d.config.region]
        if not 0 <= dr_min <= dr_max <= dr_top:
            raise ValueError("invalid argument(s) value")
        d = self._d
        if d.config.mode == LORAWAN:
            d.mac.add_channel(index, frequency=frequency, dr_min=dr_min, dr_max=dr_max)

    def remove_channel(self, index):
        index = int(index)
        self._validate_channel(index)
        d = self._d
        if d.config.mode == LORAWAN:
            d.mac.remove_channel(index)

    def set_battery_level(self, level):
        d = self._d
        d.battery_level = int(level)
        if d.config.mode == LORAWAN:
            d.mac.set_battery_level(d.battery_level)

    def nvram_save(self):
        d = self._d
        if d.config.mode == LORAWAN:
            d.mac.nvram_save()

    def nvram_restore(self):
        d = self._d
        if d.config.mode == LORAWAN:
            d.mac.nvram_restore()
        else:
            d.joined = False

    def nvram_erase(self):
        d = self._d
        if d.config.mode == LORAWAN:
            d.mac.nvram_erase()

    def _unsupported(self, name):
        raise unsupported(f"LoRa.{name}()")

    def compliance_test(self, *args):
        self._unsupported("compliance_test")

    def join_multicast_group(self, *args, **kwargs):
        self._unsupported("join_multicast_group")

    def leave_multicast_group(self, *args):
        self._unsupported("leave_multicast_group")

    def Mesh(self, *args, **kwargs):
        self._unsupported("Mesh")


class LoRaSocket:
    """socket.socket(AF_LORA, SOCK_RAW): blocking by default."""

    def __init__(self, driver, family, type):
        self._driver = driver
        self.family = family
        self.type = type
        self._open = True
        self._timeout_ms = -1
        self.confirmed = False
        self.dr = 5
        self.port = 2

    def _check(self):
        check = getattr(self._driver.board, "check_alive", None)
        if check is not None:
            check()
        if not self._open or not self._driver.alive:
            raise oserror(EBADF)

    def _session_ended(self):
        """The board run that owns the socket ended (the board closes its sockets)."""
        self._open = False

    def _lorawan(self):
        d = self._driver
        return d.config.mode == LORAWAN and d.mac is not None

    def send(self, data):
        self._check()
        data = bytes(data)
        d = self._driver
        if d.config.power_mode == SLEEP:
            raise oserror(ENETDOWN)
        if len(data) > PAYLOAD_MAX:
            raise oserror(EMSGSIZE)
        if not data:
            return 0
        if self._lorawan():
            return d.mac.socket_send(self, data)
        blocking = self._timeout_ms != 0
        if not d.queue_tx(data, blocking, self._timeout_ms):
            raise oserror(EAGAIN)
        c = d.config
        d.tx_time_on_air = (
            airtime.time_on_air_us(
                c.sf, c.bw_hz, len(data), c.coding_rate, max(c.preamble, 6), True, False, None
            )
            + 999
        ) // 1000
        d.tx_counter += 1
        d.tx_frequency = c.frequency
        return len(data)

    def recv(self, size):
        self._check()
        if self._lorawan():
            return self._driver.mac.socket_recv(self, int(size))
        data = self._driver.receive(int(size), self._timeout_ms)
        if data is None:
            raise oserror(EAGAIN)
        return data

    def recvfrom(self, size):
        if self._lorawan():
            self._check()
            return self._driver.mac.socket_recvfrom(self, int(size))
        return self.recv(size), 0

    def sendto(self, data, address):
        self._check()
        raise oserror(EOPNOTSUPP)

    def bind(self, port):
        self._check()
        if isinstance(port, tuple):
            port = port[-1]
        if port > 224:
            raise oserror(EOPNOTSUPP)
        self.port = int(port)

    def setsockopt(self, level, option, value):
        self._check()
        if level != SOL_LORA:
            raise oserror(EOPNOTSUPP)
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = bytes(value)[0] if len(value) else 0
        if option == SO_CONFIRMED:
            self.confirmed = bool(value)
        elif option == SO_DR:
            if not 0 <= int(value) <= _REGION_DR_MAX[self._driver.config.region]:
                raise oserror(EOPNOTSUPP)
            self.dr = int(value)
        else:
            raise oserror(EOPNOTSUPP)

    def setblocking(self, flag):
        self._check()
        self._timeout_ms = -1 if flag else 0

    def settimeout(self, value):
        self._check()
        self._timeout_ms = -1 if value is None else int(value * 1000)

    def close(self):
        self._open = False

    def _sim_poll(self, mask):
        """uselect: POLLIN (1) when a frame is waiting, POLLOUT (4) when a send would queue."""
        events = 0
        if self.readable():
            events |= 0x0001
        if self.writable():
            events |= 0x0004
        return events & (mask | 0x0018)

    def readable(self):
        """select/poll helper: a frame (or the rest of one) is waiting."""
        return self._open and self._driver.rx_any()

    def writable(self):
        """select/poll helper: the command queue has room."""
        if self._lorawan():
            return self._open and self._driver.mac.tx_space()
        return self._open and self._driver.tx_space()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
