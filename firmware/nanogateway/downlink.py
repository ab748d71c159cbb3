"""Downlinks of the nano gateway: the TX_ACK decision for a PULL_RESP, a bounded queue of
scheduled frames, and exact-time transmission on the LoPy radio.

decide() is pure: given the decoded txpk, the radio clock now (ticks_cpu µs, uint32), the
queue and the duty-cycle accountant, it answers a TX_ACK error name and, for NONE, a Plan.
Checks, in order (the reference lora_pkt_fwd order, then ours):
  INTERNAL_ERROR    what the LoPy's raw LoRa API cannot send: FSK, SF below 7, a coding rate
                    other than 4/5..4/8, more than 255 bytes, a preamble above 255 symbols
                    (Pycom keeps it in 8 bits);
  GPS_UNLOCKED      tmms/time without tmst (no GPS: no absolute-time TX);
  TX_FREQ           rfch other than 0 (one RF chain) or freq outside 863-870 MHz; any EU868
                    frequency is fine (RX2 869.525 MHz): the radio is retuned for the TX;
  TX_POWER          powe below the radio's 2 dBm; above tx_power_max_dbm the frame goes out
                    at tx_power_max_dbm (powe is the server's upper bound: ChirpStack asks
                    27 dBm for RX2 at 869.525 MHz, which no LoPy does, and refusing would
                    kill RX2);
  TOO_LATE          (tmst - now) mod 2^32 < lead_us, or tmst in the past (offset >= 2^31);
  TOO_EARLY         offset beyond CLASS_A_HORIZON_US;
  COLLISION_PACKET  airtime overlapping a queued or sending frame, with a guard of
                    PREP_US + tx_start_latency_us either side (the next frame's radio set-up);
  QUEUE_FULL        all QUEUE_LEN slots taken;
  DUTY_CYCLE_OVERFLOW  the lib's accountant keeps the sub-band closed at the TX instant.
imme=true is sent as soon as possible: at now + lead_us, or after the queued frames.
ipol is honoured by value (tx_iq = ipol); ncrc cannot be: Pycom's raw mode always adds the
payload CRC, which a LoRaWAN receiver accepts (the explicit header announces it), so the frame
is sent with it and its airtime is counted with it.

Timing numbers (µs): PREP_US 20000 — the coarse Timer.Alarm fires this long before the send
call: the radio is re-initialised for TX (Pycom LoRa task, SPI) and the rest is a spin on
ticks_cpu; lead_us = PREP_US + LEAD_MARGIN_US (20000, main-loop and GC latency) +
tx_start_latency_us, 40 ms by default (the reference forwarder needs 32.5 ms). The class-A
horizon is 16 s: RX2 after the longest RxDelay (15 s) + 1 s; the PULL_RESP always arrives after
the uplink, so a tmst further ahead is not a class-A answer.
The achieved timing error logged per downlink is ticks_cpu at the send call minus
(tmst - tx_start_latency_us): with a calibrated latency, how far the preamble starts from tmst.
"""

import airtime
import eu868
import semtech
from errors import RegionError

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


PREP_US = const(20000)
LEAD_MARGIN_US = const(20000)
CLASS_A_HORIZON_US = const(16000000)
QUEUE_LEN = const(8)
TX_POWER_MIN_DBM = const(2)
SF_MIN = const(7)
PAYLOAD_MAX = const(255)
PREAMBLE_DEFAULT = const(8)
PREAMBLE_MIN = const(6)
PREAMBLE_MAX = const(255)
# a send call this late (µs after its instant) is still made; later, the frame is dropped
TX_LATE_TOLERANCE_US = const(1000)

_MASK = 0xFFFFFFFF
_HALF = 0x80000000
_WRAP = 0x100000000

# Slot states
FREE = const(0)
QUEUED = const(1)
SENDING = const(2)


def offset_us(later, earlier):
    """Signed µs from earlier to later on the 32-bit tick clock (both uint32)."""
    diff = (later - earlier) & _MASK
    return diff - _WRAP if diff >= _HALF else diff


def lead_us(tx_start_latency_us):
    """Minimum tmst - now for a downlink to be sent on time (the TOO_LATE threshold)."""
    return PREP_US + LEAD_MARGIN_US + tx_start_latency_us


class Plan:
    """A downlink decided for transmission: its own copy of every parameter and of the data."""

    def __init__(self, start, freq_hz, sf, bw_hz, cr, power, preamble, iq, data, toa_us):
        self.start = start  # uint32 tmst of the first preamble symbol
        self.freq_hz = freq_hz
        self.sf = sf
        self.bw_hz = bw_hz
        self.cr = cr  # 1..4 for 4/5..4/8
        self.power = power
        self.preamble = preamble
        self.iq = iq
        self.data = data  # bytes (immutable)
        self.toa_us = toa_us


class Slot:
    """One entry of the downlink queue (preallocated; FREE, QUEUED or SENDING)."""

    def __init__(self):
        self.state = FREE
        self.plan = None
        self.token = 0
        self.start = 0
        self.end = 0
        self.call = 0
        self.alarm = None


class DownlinkQueue:
    """A fixed set of QUEUE_LEN slots; nothing grows."""

    def __init__(self, size=QUEUE_LEN):
        self.slots = [Slot() for _ in range(size)]

    def busy(self):
        """Slots holding a frame (QUEUED or SENDING), in no particular order."""
        return [s for s in self.slots if s.state != FREE]

    def count(self):
        n = 0
        for s in self.slots:
            if s.state != FREE:
                n += 1
        return n

    def add(self, plan, token, latency_us):
        """Put plan into a free slot and return it, or None when the queue is full."""
        for s in self.slots:
            if s.state == FREE:
                s.state = QUEUED
                s.plan = plan
                s.token = token
                s.start = plan.start
                s.end = (plan.start + plan.toa_us) & _MASK
                s.call = (plan.start - latency_us) & _MASK
                s.alarm = None
                return s
        return None

    def release(self, slot):
        slot.state = FREE
        slot.plan = None
        slot.alarm = None

    def next_queued(self, now):
        """The QUEUED slot with the earliest start (relative to now), or None."""
        best = None
        best_off = 0
        for s in self.slots:
            if s.state == QUEUED:
                off = offset_us(s.start, now)
                if best is None or off < best_off:
                    best = s
                    best_off = off
        return best

    def sending(self):
        for s in self.slots:
            if s.state == SENDING:
                return s
        return None


def guard_us(tx_start_latency_us):
    """Gap kept between two frames: the second one's radio set-up starts this long before it."""
    return PREP_US + tx_start_latency_us


def _collides(start_off, end_off, queue, now, guard):
    # First busy slot whose [start - guard, end + guard) meets [start_off, end_off).
    for s in queue.slots:
        if s.state != FREE:
            q_start = offset_us(s.start, now)
            q_end = q_start + s.plan.toa_us
            if start_off < q_end + guard and q_start < end_off + guard:
                return s
    return None


def decide(txpk, now, now_ms, queue, duty, power_max_dbm, latency_us, horizon=CLASS_A_HORIZON_US):
    """(error name, Plan or None) for a decoded txpk (semtech.decode(...).txpk).

    now: radio clock (ticks_cpu µs, uint32); now_ms: the duty-cycle clock (int ms, same
    instant); queue: DownlinkQueue; duty: dutycycle.DutyCycle; power_max_dbm: the configured
    maximum; latency_us: the configured radio start-up latency. Pure: changes neither queue
    nor duty.
    """
    lead = lead_us(latency_us)
    guard = guard_us(latency_us)
    if txpk["modu"] != "LORA":
        return semtech.ERR_INTERNAL_ERROR, None
    sf = txpk["sf"]
    bw_hz = txpk["bw_hz"]
    data = txpk["data"]
    preamble = txpk["prea"]
    if preamble is None:
        preamble = PREAMBLE_DEFAULT
    elif preamble < PREAMBLE_MIN:
        preamble = PREAMBLE_MIN  # the reference forwarder's clamp
    try:
        cr = eu868.parse_codr(txpk["codr"])
    except RegionError:
        cr = 0
    if sf < SF_MIN or cr == 0 or len(data) > PAYLOAD_MAX or preamble > PREAMBLE_MAX:
        return semtech.ERR_INTERNAL_ERROR, None

    immediate = txpk["imme"]
    if not immediate and txpk["tmst"] is None:
        return semtech.ERR_GPS_UNLOCKED, None

    freq_hz = txpk["freq_hz"]
    if txpk["rfch"] != 0:
        return semtech.ERR_TX_FREQ, None
    try:
        eu868.check_frequency(freq_hz)
    except RegionError:
        return semtech.ERR_TX_FREQ, None

    power = txpk["powe"]
    if power is None or power > power_max_dbm:
        power = power_max_dbm
    if power < TX_POWER_MIN_DBM:
        return semtech.ERR_TX_POWER, None

    toa = airtime.time_on_air_us(sf, bw_hz, len(data), cr, preamble, True)

    if immediate:
        start_off = lead
        while True:
            hit = _collides(start_off, start_off + toa, queue, now, guard)
            if hit is None:
                break
            start_off = offset_us(hit.start, now) + hit.plan.toa_us + guard
        if start_off > horizon:
            return semtech.ERR_COLLISION_PACKET, None
    else:
        delta = (txpk["tmst"] - now) & _MASK
        if delta >= _HALF or delta < lead:
            return semtech.ERR_TOO_LATE, None
        if delta > horizon:
            return semtech.ERR_TOO_EARLY, None
        start_off = delta
        if _collides(start_off, start_off + toa, queue, now, guard) is not None:
            return semtech.ERR_COLLISION_PACKET, None

    if queue.count() >= len(queue.slots):
        return semtech.ERR_QUEUE_FULL, None

    toa_ms = (toa + 999) // 1000
    if duty.wait_ms(now_ms + start_off // 1000, freq_hz, toa_ms) > 0:
        return semtech.ERR_DUTY_CYCLE_OVERFLOW, None

    start = (now + start_off) & _MASK
    return semtech.ERR_NONE, Plan(
        start, freq_hz, sf, bw_hz, cr, power, preamble, txpk["ipol"], data, toa
    )


class Downlinks:
    """Decide, queue and send downlinks at their tmst.

    radio: radio.Radio (prepare_tx, send, listen, tx_done); duty: dutycycle.DutyCycle;
    ticks: ticks_cpu; alarm(handler, us) -> object with cancel() (machine.Timer.Alarm);
    wake: called from the alarm handler (IRQ context: it only stamps and schedules);
    log: an oelog logger.
    """

    def __init__(self, radio, duty, power_max_dbm, latency_us, ticks, alarm, wake, log):
        self.radio = radio
        self.duty = duty
        self.power_max_dbm = power_max_dbm
        self.latency_us = latency_us
        self.lead_us = lead_us(latency_us)
        self.ticks = ticks
        self._alarm = alarm
        self._wake = wake
        self.log = log
        self.queue = DownlinkQueue()
        self._on_alarm_cb = self._on_alarm
        self.alarm_fired = False
        self.armed = None  # the slot the alarm is armed for
        self.expected_end = 0
        self._decision = None
        # counters (cumulative; the forwarder reports differences)
        self.txnb = 0
        self.missed = 0
        self.failed = 0
        self.accepted = 0
        self.rejected = 0
        # achieved timing error of the send call (µs): count, sum, min, max, last
        self.err_n = 0
        self.err_sum = 0
        self.err_min = 0
        self.err_max = 0
        self.err_last = 0

    # -- decision ----------------------------------------------------------------------------
    def handle(self, txpk, token, now, now_ms):
        """Decide on a PULL_RESP's txpk; queue it when accepted. Returns the TX_ACK error name.

        Nothing is logged here (a console line takes milliseconds): the caller sends the TX_ACK
        first, then calls log_decision()."""
        error, plan = decide(
            txpk, now, now_ms, self.queue, self.duty, self.power_max_dbm, self.latency_us
        )
        if error == semtech.ERR_NONE:
            self.queue.add(plan, token, self.latency_us)
            start_ms = now_ms + offset_us(plan.start, now) // 1000
            self.duty.record(start_ms, plan.freq_hz, (plan.toa_us + 999) // 1000)
            self.accepted += 1
        else:
            self.rejected += 1
        self._decision = (token, error, plan, now, txpk["imme"], txpk["tmst"])
        return error

    def log_decision(self):
        """Log the last decision of handle() (once)."""
        decision = self._decision
        if decision is None:
            return
        self._decision = None
        token, error, plan, now, imme, tmst = decision
        if plan is not None:
            self.log.info(
                "downlink 0x%04x queued: %d B %s SF%d BW%d %d dBm iq=%d at tmst %d (in %d us)",
                token,
                len(plan.data),
                semtech.freq_text(plan.freq_hz),
                plan.sf,
                plan.bw_hz // 1000,
                plan.power,
                1 if plan.iq else 0,
                plan.start,
                offset_us(plan.start, now),
            )
        else:
            self.log.warning(
                "downlink 0x%04x refused: %s (tmst %s, now %d)",
                token,
                error,
                "imme" if imme else ("-" if tmst is None else str(tmst)),
                now,
            )

    # -- IRQ side ----------------------------------------------------------------------------
    def _on_alarm(self, _alarm):
        # Timer.Alarm handler (IRQ thread): set a flag and wake the main loop, nothing else.
        try:
            self.alarm_fired = True
            self._wake()
        except Exception:
            pass

    def _arm(self, slot, now):
        if self.armed is slot:
            return
        if self.armed is not None and self.armed.alarm is not None:
            self._cancel(self.armed)
        delay = offset_us(slot.call, now) - PREP_US
        if delay < 1:
            delay = 1
        try:
            slot.alarm = self._alarm(self._on_alarm_cb, delay)
            self.armed = slot
        except Exception as exc:  # no alarm left: the main loop's own timing still sends it
            self.log.exc(exc, "cannot arm the TX alarm")
            self.armed = None

    def _cancel(self, slot):
        alarm = slot.alarm
        slot.alarm = None
        if alarm is not None:
            try:
                alarm.cancel()
            except Exception:
                pass
        if self.armed is slot:
            self.armed = None

    # -- main-loop side ----------------------------------------------------------------------
    def service(self, now):
        """Advance the transmitter at radio time now; returns µs until it needs the next call
        (None when nothing is queued). Sends a frame (with its spin) when its time has come."""
        sending = self.queue.sending()
        if sending is not None:
            left = offset_us(self.expected_end, now)
            if left > 0 and not self.radio.tx_done:
                return left
            self._finish(sending)
        while True:
            slot = self.queue.next_queued(now)
            if slot is None:
                return None
            until_call = offset_us(slot.call, now)
            if until_call < -TX_LATE_TOLERANCE_US:
                self._drop_late(slot, -until_call)
                continue
            if until_call > PREP_US:
                self._arm(slot, now)
                return until_call - PREP_US
            self._transmit(slot)
            if self.queue.sending() is not None:
                return offset_us(self.expected_end, self.ticks())

    def next_deadline_us(self, now):
        """µs until service() wants to run again, without doing anything (None: idle)."""
        sending = self.queue.sending()
        if sending is not None:
            return offset_us(self.expected_end, now)
        slot = self.queue.next_queued(now)
        if slot is None:
            return None
        return offset_us(slot.call, now) - PREP_US

    def _drop_late(self, slot, late_us):
        self._cancel(slot)
        self.missed += 1
        self.log.error(
            "downlink 0x%04x dropped: the gateway reached its send time %d us late",
            slot.token,
            late_us,
        )
        self.queue.release(slot)

    def _transmit(self, slot):
        plan = slot.plan
        self._cancel(slot)
        self.alarm_fired = False
        radio = self.radio
        try:
            radio.prepare_tx(
                plan.freq_hz, plan.sf, plan.bw_hz, plan.cr, plan.power, plan.preamble, plan.iq
            )
        except Exception as exc:
            self.failed += 1
            self.log.exc(exc, "downlink 0x%04x: radio TX set-up failed", slot.token)
            self.queue.release(slot)
            self._listen()
            return
        call = slot.call
        ticks = self.ticks
        while True:
            now = ticks()
            left = (call - now) & _MASK
            if left == 0 or left >= _HALF:
                break
        error = offset_us(now, call)
        if error > TX_LATE_TOLERANCE_US:
            self._drop_late(slot, error)
            self._listen()
            return
        try:
            radio.send(plan.data)
        except Exception as exc:
            self.failed += 1
            self.log.exc(exc, "downlink 0x%04x: send failed", slot.token)
            self.queue.release(slot)
            self._listen()
            return
        slot.state = SENDING
        self.expected_end = (now + self.latency_us + plan.toa_us) & _MASK
        self._record_error(error)
        self.log.info(
            "downlink 0x%04x sent at tmst %d: timing error %d us",
            slot.token,
            plan.start,
            error,
        )

    def _record_error(self, error):
        if self.err_n == 0 or error < self.err_min:
            self.err_min = error
        if self.err_n == 0 or error > self.err_max:
            self.err_max = error
        self.err_n += 1
        self.err_sum += error
        self.err_last = error

    def _finish(self, slot):
        self.txnb += 1
        self.queue.release(slot)
        self._listen()

    def _listen(self):
        try:
            self.radio.listen()
        except Exception as exc:
            self.log.exc(exc, "radio back to RX failed")
