"""The LoPy radio of the nano gateway in raw LoRa mode: continuous RX on the configured channel,
retuned for one downlink at a time and put back into RX right after it.

RX: rx_iq=False (LoRaWAN uplinks are not inverted), power mode ALWAYS_ON, public sync word.
TX: power mode TX_ONLY, so Pycom's raw-mode listen-before-talk (1 ms on a free channel, forever
on a busy one) does not shift the send; tx_iq from the txpk's ipol.
The LoRa callback runs on Pycom's IRQ thread: it reads events() (an int), counts, sets a flag
and calls wake() — no allocation. capture() runs in the main loop (or a scheduled call) and
copies each frame into a preallocated ring slot with stats() of its RX-done: tmst is
stats().rx_timestamp, ticks_cpu µs. stats() only describes the newest frame, so when several
frames were waiting, the older ones have no metadata and are not forwarded (counted nometa).
Pycom's driver drops CRC-failed frames before Python sees them (RxError path).
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


RX_SLOTS = const(8)
FRAME_MAX = const(255)
_MASK = 0xFFFFFFFF


class RxFrame:
    """A ring slot: the PHY payload in a preallocated buffer and its RX metadata."""

    def __init__(self):
        self.buf = bytearray(FRAME_MAX)
        self.size = 0
        self.tmst = 0
        self.rssi = 0
        self.snr_x10 = 0

    def data(self):
        return memoryview(self.buf)[: self.size]


class Radio:
    """LoRa(mode=LORA) and its AF_LORA raw socket.

    lora_cls: network.LoRa; socket_mod: the socket module; rx settings: freq_hz (int Hz),
    sf, bw_hz, cr (1..4 for 4/5..4/8), tx_power_dbm (the configured maximum).
    """

    def __init__(self, lora_cls, socket_mod, freq_hz, sf, bw_hz, cr, tx_power_dbm):
        self._LoRa = lora_cls
        self._socket = socket_mod
        self.freq_hz = freq_hz
        self.sf = sf
        self.bw_hz = bw_hz
        self.cr = cr
        self.tx_power_dbm = tx_power_dbm
        self.lora = None
        self.sock = None
        self.wake = None
        self._irq_cb = self._irq
        self.tx_done = False
        self.listening = False
        # single-producer (capture) single-consumer (peek/pop) ring: each side only writes
        # its own counter, so a capture nested in the consumer (micropython.schedule) is safe
        self.ring = [RxFrame() for _ in range(RX_SLOTS)]
        self._written = 0
        self._read = 0
        # counters (cumulative)
        self.rx_irqs = 0
        self.frames = 0
        self.nometa = 0
        self.overflow = 0

    def bandwidth(self, bw_hz):
        LoRa = self._LoRa
        if bw_hz == 500000:
            return LoRa.BW_500KHZ
        if bw_hz == 250000:
            return LoRa.BW_250KHZ
        return LoRa.BW_125KHZ

    def coding(self, cr):
        LoRa = self._LoRa
        return (LoRa.CODING_4_5, LoRa.CODING_4_6, LoRa.CODING_4_7, LoRa.CODING_4_8)[cr - 1]

    def start(self, wake=None):
        """Create the LoRa object in RX, its raw socket (non-blocking) and the callback."""
        LoRa = self._LoRa
        self.wake = wake
        self.lora = LoRa(mode=LoRa.LORA, region=LoRa.EU868)
        self.listen()
        self.sock = self._socket.socket(self._socket.AF_LORA, self._socket.SOCK_RAW)
        self.sock.setblocking(False)
        self.lora.callback(
            trigger=LoRa.RX_PACKET_EVENT | LoRa.TX_PACKET_EVENT, handler=self._irq_cb
        )

    def listen(self):
        """(Re)enter continuous RX with the configured channel, SF, BW and rx_iq=False."""
        LoRa = self._LoRa
        self.lora.init(
            mode=LoRa.LORA,
            region=LoRa.EU868,
            frequency=self.freq_hz,
            tx_power=self.tx_power_dbm,
            bandwidth=self.bandwidth(self.bw_hz),
            sf=self.sf,
            preamble=8,
            coding_rate=self.coding(self.cr),
            power_mode=LoRa.ALWAYS_ON,
            tx_iq=False,
            rx_iq=False,
            public=True,
        )
        self.listening = True

    def prepare_tx(self, freq_hz, sf, bw_hz, cr, power_dbm, preamble, iq):
        """Retune for one frame (TX_ONLY: no RX, no listen-before-talk)."""
        LoRa = self._LoRa
        self.listening = False
        self.lora.init(
            mode=LoRa.LORA,
            region=LoRa.EU868,
            frequency=freq_hz,
            tx_power=power_dbm,
            bandwidth=self.bandwidth(bw_hz),
            sf=sf,
            preamble=preamble,
            coding_rate=self.coding(cr),
            power_mode=LoRa.TX_ONLY,
            tx_iq=bool(iq),
            rx_iq=False,
            public=True,
        )

    def send(self, data):
        """Start sending data (non-blocking: returns while the frame goes out)."""
        self.tx_done = False
        self.sock.send(data)

    # -- IRQ side ----------------------------------------------------------------------------
    def _irq(self, lora):
        # Pycom IRQ thread: an exception escaping here would stop every callback for good.
        try:
            events = lora.events()
            if events & 1:  # RX_PACKET_EVENT
                self.rx_irqs += 1
            if events & 2:  # TX_PACKET_EVENT
                self.tx_done = True
            wake = self.wake
            if wake is not None:
                wake()
        except Exception:
            pass

    # -- main-loop side ----------------------------------------------------------------------
    def capture(self):
        """Move the frames waiting in the radio into the ring; returns how many were read."""
        sock = self.sock
        if sock is None:
            return 0
        got = 0
        last = None
        while True:
            try:
                data = sock.recv(256)
            except OSError:  # EAGAIN on firmware that raises instead of returning b''
                data = None
            if not data:
                break
            got += 1
            if last is not None:
                self.nometa += 1  # an older frame of this batch: stats() no longer describe it
                self._drop_last()
            last = self._store(data)
        if got == 0:
            return 0
        self.frames += got
        if last is not None:
            try:
                st = self.lora.stats()
            except Exception:
                self.nometa += 1
                return got  # the frame stays without metadata: not forwarded
            last.tmst = st.rx_timestamp & _MASK
            last.rssi = int(st.rssi)
            snr_x10 = int(round(st.snr * 10))
            if snr_x10 > 1000:
                snr_x10 = 1000
            elif snr_x10 < -1000:
                snr_x10 = -1000
            last.snr_x10 = snr_x10
        return got

    def _store(self, data):
        if self._written - self._read >= RX_SLOTS:
            self.overflow += 1
            return None
        frame = self.ring[self._written % RX_SLOTS]
        size = len(data)
        if size > FRAME_MAX:
            size = FRAME_MAX
        frame.buf[0:size] = data[0:size]
        frame.size = size
        frame.tmst = None  # no metadata yet
        self._written += 1
        return frame

    def _drop_last(self):
        if self._written > self._read:
            self._written -= 1

    def pending(self):
        return self._written - self._read

    def peek(self):
        """The oldest frame in the ring (valid until pop()), or None."""
        if self._written == self._read:
            return None
        return self.ring[self._read % RX_SLOTS]

    def pop(self):
        if self._written > self._read:
            self._read += 1
