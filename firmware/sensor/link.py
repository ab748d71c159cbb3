"""LoRaWAN link of the sensor image over Pycom's native stack (network.LoRa in LORAWAN mode).

What the native stack does not do, this module does (pycom-micropython-sigfox modlora.c, 1.20.x):
- Duty cycle: the stack runs with LoRaMac's duty-cycle check switched off, so every uplink and
  JoinRequest here goes through lib/dutycycle's accountant (and JoinBackoff for joins).
- Join back-off: lora.join() retries every 10 s by itself until a JoinAccept comes; here each
  attempt is one JoinRequest (timeout below 10 s), then lora.init() cancels the stack's retry and
  the next attempt waits for the randomised retry_delay_ms() within the aggregated budget.
- Frame counters (nvram_save lost counters in the field: issues #68, #307, #381, #582): before
  each send oe_fup (uplinks started) is written to NVS, after it nvram_save() runs and oe_fsv
  takes the same value. At boot a restored session is trusted only if oe_fup == oe_fsv; any
  doubt erases it and joins again. After each send stats().tx_counter (the FCnt the MAC used,
  exact for a blocking send) must be >= oe_fnx, the lowest FCnt not yet used, else the session
  is dropped: counters only move forward.
- Single-channel plan: channels 0..2 (which EU868 cannot remove) all become the nano gateway's
  frequency (DR0..5, as LoRaMac-node requires for them; SO_DR and join(dr=) pin the DR), 3..15
  are removed; re-applied after restore, join and before each send,
  since a CFList or NewChannelReq may add channels.
- Link check: after LINK_CHECK_AFTER unanswered confirmed uplinks the next uplink goes confirmed
  as a check (needs_check); one more without ACK drops the session and joins again.
"""

import airtime
import dutycycle
import eu868
import store
import utime

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


SENT = const(0)  # unconfirmed uplink sent
ACKED = const(1)  # confirmed uplink acknowledged
NOT_ACKED = const(2)  # confirmed uplink sent, no ACK after the retries
WAIT = const(3)  # the sub-band is closed: nothing sent, see wait_ms
DOWN = const(4)  # no session (join pending) or the session was just dropped
TOO_BIG = const(5)  # the stack refused the size at its current DR

TX_RETRIES = const(1)  # confirmed uplinks: one retransmission by the stack (same FCnt)
LINK_CHECK_AFTER = const(3)
JOIN_WAIT_MAX_MS = const(9800)  # below the stack's own 10 s JoinRequest repeat
FOPTS_RESERVE = const(5)  # room left for MAC answers riding in FOpts (LinkADRAns + DevStatusAns)
_JOIN_REQUEST_LEN = const(23)
_JOIN_ACCEPT_LEN = const(33)
_PHY_OVERHEAD = const(13)  # MHDR 1 + FHDR 7 + FPort 1 + MIC 4
_MULTI_CHANNEL_HZ = 868100000  # accounting frequency when the stack picks the channel
_TX_PACKET_EVENT = const(0x02)
_TX_FAILED_EVENT = const(0x04)
try:
    import uerrno as _errno
except ImportError:
    import errno as _errno

# lwIP / Linux numbers where the port's errno module lacks the name (MicroPython's often does)
_EMSGSIZE = getattr(_errno, "EMSGSIZE", 90)
_ENETDOWN = getattr(_errno, "ENETDOWN", 100)


def _sf_bw(dr):
    try:
        return eu868.dr_to_sf_bw(dr)
    except ValueError:
        return (12, 125000)


def frame_airtime_ms(dr, payload_len):
    """Time on air (ms, rounded up) of an uplink with payload_len application bytes at dr."""
    sf, bw = _sf_bw(dr)
    phy = _PHY_OVERHEAD + payload_len
    if phy > 255:
        phy = 255
    return airtime.time_on_air_ms_ceil(sf, bw, phy)


def join_wait_ms(dr):
    """How long one join attempt waits: JoinRequest, JOIN_ACCEPT_DELAY2, the JoinAccept at
    RX2's DR0 and a margin, capped below the stack's own 10 s repeat."""
    sf, bw = _sf_bw(dr)
    wait = (
        airtime.time_on_air_ms_ceil(sf, bw, _JOIN_REQUEST_LEN)
        + eu868.JOIN_ACCEPT_DELAY2_MS
        + airtime.time_on_air_ms_ceil(12, 125000, _JOIN_ACCEPT_LEN, 1, 8, False)
        + 300
    )
    return wait if wait < JOIN_WAIT_MAX_MS else JOIN_WAIT_MAX_MS


class Link:
    """The LoRaWAN session of the sensor: join, send, receive, persist across deep sleep.

    network, socket_mod: Pycom's `network` and `socket` modules; nvs: store.Nvs; clock: an
    object with now_ms(); rng: zero-argument callable with >= 24 random bits (machine.rng);
    settings: dict with dev_eui, join_eui, app_key, single_channel, frequency_hz, dr, adr.
    """

    def __init__(self, network, socket_mod, nvs, clock, rng, settings, log, leds=None):
        self._network = network
        self._socket = socket_mod
        self.nvs = nvs
        self.clock = clock
        self.rng = rng
        self.log = log
        self.leds = leds
        self.dev_eui = settings["dev_eui"]
        self.join_eui = settings["join_eui"]
        self.app_key = settings["app_key"]
        self.single = settings["single_channel"]
        self.frequency = settings["frequency_hz"]
        self.dr = settings["dr"]
        self.adr = settings["adr"]
        now = clock.now_ms()
        self.duty = dutycycle.DutyCycle()
        self.backoff = dutycycle.JoinBackoff(now)
        self.join_attempt = 0
        self.join_next_ms = now
        self.unanswered = 0
        self.joined = False
        self.just_joined = False  # the caller owes a boot status frame
        self.replays = 0  # sessions dropped because tx_counter went backwards
        self.doubts = 0  # restored sessions refused (oe_fup != oe_fsv)
        self.wait_ms = 0
        self.tx_dr = self.dr  # DR of the last uplink (ADR may change it)
        self.size_cut = 0  # extra bytes kept free after an EMSGSIZE
        self.lora = None
        self.sock = None

    # -- radio and session ---------------------------------------------------------------
    @property
    def band_hz(self):
        """Frequency the duty-cycle accountant charges: the single channel, or the default
        channels' 1 % sub-band (every EU868 LoRaWAN channel sits in a 1 % band or a looser one)."""
        return self.frequency if self.single else _MULTI_CHANNEL_HZ

    def _radio(self):
        lora_cls = self._network.LoRa
        kwargs = {
            "mode": lora_cls.LORAWAN,
            "region": lora_cls.EU868,
            "adr": self.adr,
            "tx_retries": TX_RETRIES,
            "device_class": lora_cls.CLASS_A,
        }
        if self.lora is None:
            self.lora = lora_cls(**kwargs)
        else:
            self.lora.init(**kwargs)  # also stops the stack's own JoinRequest repeats
        self.sock = None

    def _plan(self):
        if not self.single:
            return
        lora = self.lora
        for index in range(3):
            # a default channel keeps DR0..DR5 (LoRaMac-node refuses a narrower range for 0-2);
            # the DR itself is pinned by SO_DR and the join's dr
            lora.add_channel(index, frequency=self.frequency, dr_min=0, dr_max=5)
        for index in range(3, 16):
            lora.remove_channel(index)

    def start(self, restore=True):
        """Bring the radio up; with restore, take the saved session back if it can be trusted."""
        self._radio()
        if not restore:
            self.lora.nvram_erase()
            return False
        self.lora.nvram_restore()
        joined = self.lora.has_joined()
        waited = 0
        while not joined and waited < 500:  # the stack applies a restored session in its task
            utime.sleep_ms(20)
            waited += 20
            joined = self.lora.has_joined()
        nvs = self.nvs
        if joined and (
            nvs.get(store.KEY_SESSION) == 0
            or nvs.get(store.KEY_FCNT_UP) != nvs.get(store.KEY_FCNT_SAVED)
        ):
            self.doubts += 1
            self.log.warning(
                "saved session refused: %d uplinks started, %d saved",
                nvs.get(store.KEY_FCNT_UP),
                nvs.get(store.KEY_FCNT_SAVED),
            )
            joined = False
        if not joined:
            self.lora.nvram_erase()
            self._radio()
            self.joined = False
            return False
        # the restore cleared the stack's saved joined flag: save at once, or a power cut
        # before the next uplink would lose the session
        self.lora.nvram_save()
        self.joined = True
        self._plan()
        return True

    def _socket_ready(self):
        if self.sock is None:
            sock = self._socket.socket(self._socket.AF_LORA, self._socket.SOCK_RAW)
            self.sock = sock
        return self.sock

    def drop_session(self, reason):
        """Forget the session (it will not be used again) and join at the next chance."""
        self.log.warning("session dropped: %s", reason)
        self.joined = False
        self.unanswered = 0
        try:
            self.lora.nvram_erase()
        except Exception:
            pass
        self._radio()
        now = self.clock.now_ms()
        if self.join_next_ms < now:
            self.join_next_ms = now

    @property
    def needs_check(self):
        """True when the next uplink should be confirmed as a link check."""
        return self.unanswered >= LINK_CHECK_AFTER

    def join_due_ms(self, now):
        """Milliseconds until a join attempt is allowed (0: now)."""
        wait = self.join_next_ms - now
        return wait if wait > 0 else 0

    def join(self):
        """One OTAA attempt if the back-off allows it now; True when joined."""
        if self.joined:
            return True
        now = self.clock.now_ms()
        sf, bw = _sf_bw(self.dr)
        request_ms = airtime.time_on_air_ms_ceil(sf, bw, _JOIN_REQUEST_LEN)
        wait = self.join_next_ms - now
        wait2 = self.backoff.wait_ms(now, request_ms)
        if wait2 > wait:
            wait = wait2
        wait2 = self.duty.wait_ms(now, self.band_hz, request_ms)
        if wait2 > wait:
            wait = wait2
        if wait > 0:
            self.join_next_ms = now + wait
            return False
        if self.lora is None:
            self._radio()
        self._plan()
        if self.leds is not None:
            self.leds.joining()
        self.backoff.record(now, request_ms)
        self.duty.record(now, self.band_hz, request_ms)
        try:
            self.lora.join(
                activation=self._network.LoRa.OTAA,
                auth=(self.dev_eui, self.join_eui, self.app_key),
                dr=self.dr,
                timeout=join_wait_ms(self.dr),
            )
        except Exception:
            pass  # TimeoutError: no JoinAccept in time
        if self.lora.has_joined():
            self._joined()
            return True
        self._radio()  # cancel the stack's retry timer
        delay = dutycycle.retry_delay_ms(self.join_attempt, self.rng)
        self.join_attempt += 1
        self.join_next_ms = self.clock.now_ms() + delay
        self.log.info("join attempt %d failed, next in %d s", self.join_attempt, delay // 1000)
        if self.leds is not None:
            self.leds.error()
        return False

    def _joined(self):
        nvs = self.nvs
        nvs.set(store.KEY_SESSION, nvs.get(store.KEY_SESSION) + 1)
        nvs.set(store.KEY_FCNT_UP, 0)
        nvs.set(store.KEY_FCNT_NEXT, 0)
        self.lora.nvram_save()
        nvs.set(store.KEY_FCNT_SAVED, 0)
        self._plan()
        self.joined = True
        self.just_joined = True
        self.join_attempt = 0
        self.unanswered = 0
        self.tx_dr = self.dr
        self.log.info("joined (session %d)", nvs.get(store.KEY_SESSION))
        if self.leds is not None:
            self.leds.joined()

    # -- uplinks and downlinks ---------------------------------------------------------------
    def max_payload(self):
        """Application bytes an uplink may carry now (FOpts reserve and EMSGSIZE cuts deducted)."""
        dr = self.tx_dr if self.adr else self.dr
        try:
            room = eu868.max_app_payload(dr)
        except ValueError:
            room = 51
        room -= FOPTS_RESERVE + self.size_cut
        return room if room > 11 else 11

    def send(self, port, data, confirmed):
        """Send data (bytes-like) on port; returns SENT, ACKED, NOT_ACKED, WAIT, DOWN or TOO_BIG.

        Blocks through the RX windows (and the stack's retries of a confirmed uplink).
        """
        if not self.joined:
            return DOWN
        now = self.clock.now_ms()
        estimate = frame_airtime_ms(self.tx_dr, len(data))
        wait = self.duty.wait_ms(now, self.band_hz, estimate)
        if wait > 0:
            self.wait_ms = wait
            return WAIT
        self._plan()
        nvs = self.nvs
        started = nvs.get(store.KEY_FCNT_UP) + 1
        nvs.set(store.KEY_FCNT_UP, started)  # before the radio can use the counter
        sock = self._socket_ready()
        socket_mod = self._socket
        lora = self.lora
        error = 0
        try:
            sock.bind(port)
            sock.setsockopt(socket_mod.SOL_LORA, socket_mod.SO_CONFIRMED, bool(confirmed))
            if not self.adr:
                sock.setsockopt(socket_mod.SOL_LORA, socket_mod.SO_DR, self.dr)
            sock.setblocking(True)
            lora.events()  # clear old flags
            if self.leds is not None:
                self.leds.sending()
            sock.send(data)
        except OSError as exc:
            error = exc.args[0] if exc.args else -1
        events = lora.events()
        stats = lora.stats()
        lora.nvram_save()
        nvs.set(store.KEY_FCNT_SAVED, started)
        if self.leds is not None:
            self.leds.off()
        done = events & _TX_PACKET_EVENT and not events & _TX_FAILED_EVENT
        floor = nvs.get(store.KEY_FCNT_NEXT)
        if done:
            fcnt = stats.tx_counter & store.MASK32
            if fcnt < floor:
                self.replays += 1
                self.drop_session("FCnt %d went back below %d" % (fcnt, floor))
                return DOWN
            nvs.set(store.KEY_FCNT_NEXT, fcnt + 1)
            if stats.sftx is not None and 0 <= stats.sftx <= 5:
                self.tx_dr = stats.sftx
        elif error != _ENETDOWN:
            nvs.set(store.KEY_FCNT_NEXT, floor + 1)  # a frame may have left: never reuse it
        on_air = stats.tx_time_on_air if stats.tx_time_on_air else estimate
        tries = stats.tx_trials if stats.tx_trials else 1
        self.duty.record(now, self.band_hz, on_air * tries)
        if error == _ENETDOWN:
            self.drop_session("stack reports no network")
            return DOWN
        if error == _EMSGSIZE:
            self.size_cut = self.size_cut + 10 if self.size_cut < 30 else 30
            return TOO_BIG
        if not confirmed:
            return SENT if not error else NOT_ACKED
        if done and not error:
            self.unanswered = 0
            return ACKED
        self.unanswered += 1
        if self.unanswered > LINK_CHECK_AFTER:
            self.drop_session("%d confirmed uplinks without ACK" % self.unanswered)
        return NOT_ACKED

    def receive(self):
        """The next downlink as (port, bytes), or None."""
        if self.sock is None:
            return None
        try:
            self.sock.setblocking(False)
            data, port = self.sock.recvfrom(256)
        except (OSError, ValueError, TypeError):
            return None
        if not data:
            return None
        return (port, data)

    # -- deep sleep ----------------------------------------------------------------------
    def save(self, now):
        """State for RTC memory (deep sleep); also hands the session to nvram_save, which a
        restore cleared."""
        if self.joined:
            self.lora.nvram_save()
            self.nvs.set(store.KEY_FCNT_SAVED, self.nvs.get(store.KEY_FCNT_UP))
        return {
            "duty": list(self.duty.save(now)),
            "jb": list(self.backoff.save(now)),
            "ja": self.join_attempt,
            "jn": self.join_next_ms - now,
            "un": self.unanswered,
            "dr": self.tx_dr,
            "cut": self.size_cut,
        }

    def load(self, state, now, slept_ms):
        """Take back save()'s state after slept_ms of deep sleep (None after a power cut: the
        sub-band is then taken as closed for one maximum-size frame, since what was sent just
        before the cut is unknown)."""
        if state is None:
            dr = self.dr
            self.duty.record(now, self.band_hz, frame_airtime_ms(dr, eu868.max_app_payload(dr)))
            return
        try:
            self.duty.restore(now, tuple(state["duty"]), slept_ms)
            self.backoff.restore(now, tuple(state["jb"]), slept_ms)
            self.join_attempt = state["ja"]
            self.join_next_ms = now + state["jn"] - slept_ms
            self.unanswered = state["un"]
            self.tx_dr = state["dr"]
            self.size_cut = state["cut"]
        except (KeyError, TypeError, ValueError):
            self.load(None, now, 0)
