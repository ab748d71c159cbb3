"""The Semtech UDP v2 side of the nano gateway: PUSH_DATA per received frame, PULL_DATA
keepalives, the stat report, token matching, and dispatch of the server's datagrams.

Counters in stat are counted, per report interval (as the reference lora_pkt_fwd does):
rxnb frames the radio delivered, rxok those with a good CRC (Pycom's driver drops CRC-failed
frames itself, so here every delivered frame), rxfw frames sent in a PUSH_DATA, ackr the share
of PUSH_DATA datagrams whose PUSH_ACK came back with the right token (0 when none was sent,
as in the reference), dwnb PULL_RESP received,
txnb frames transmitted. No stat is sent before NTP sync (a stat needs a true time); the
counters then carry over to the first report.
The server counts as lost after KEEPALIVES_LOST PULL_DATA in a row without their PULL_ACK;
the link then re-creates its socket (with back-off). Malformed datagrams are dropped with a
rate-limited warning; a PULL_RESP whose header is sound but whose txpk is not is answered with
TX_ACK INTERNAL_ERROR, so the server can fall back at once instead of waiting for a timeout.
Times: now_ms is the gateway's monotonic ms clock, now_us the radio clock (ticks_cpu).
"""

import semtech
from errors import SemtechError

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


KEEPALIVES_LOST = const(3)
PUSH_TOKENS = const(8)
UDP_BUF = const(1024)
BAD_LOG_MS = const(10000)
_MASK = 0xFFFFFFFF


class Forwarder:
    """One gateway's upstream protocol state.

    eui: 8 bytes; link: link.Link (send, ready, rxpk_time, stat_time, server_lost,
    server_alive); handle_txpk(txpk, token) -> TX_ACK error name; counters() -> (frames
    delivered by the radio, frames transmitted), both cumulative; rf: (freq_hz, datr, codr);
    location: (lati, long, alti) or None; token: the first token (random at boot).
    """

    def __init__(
        self,
        eui,
        link,
        handle_txpk,
        counters,
        log,
        rf,
        keepalive_ms,
        stat_ms,
        location=None,
        token=0,
    ):
        self.eui = eui
        self.link = link
        self.handle_txpk = handle_txpk
        self.counters = counters
        self.log = log
        self.freq_hz, self.datr, self.codr = rf
        self.keepalive_ms = keepalive_ms
        self.stat_ms = stat_ms
        self.location = location
        self.token = token & 0xFFFF
        self._buf = bytearray(UDP_BUF)
        self._mv = memoryview(self._buf)
        self._ack = bytearray(semtech.HEADER_EUI_SIZE + 48)
        self._ack_mv = memoryview(self._ack)
        self._push_tokens = [-1] * PUSH_TOKENS
        self._push_next = 0
        self.pull_token = None
        self.missed = 0
        self.server_up = False
        self.next_pull_ms = None
        self.next_stat_ms = None
        self._bad = 0
        self._bad_logged_ms = None
        self._nosync_logged = False
        # per report interval
        self.rxfw = 0
        self.up_sent = 0
        self.up_acked = 0
        self.dwnb = 0
        self._rx_base = 0
        self._tx_base = 0
        # cumulative
        self.forwarded = 0
        self.unsent = 0
        self.stats_sent = 0
        self.malformed = 0
        self.tx_acks = 0

    def _next_token(self):
        self.token = semtech.next_token(self.token)
        return self.token

    # -- upstream ------------------------------------------------------------------------------
    def opened(self, now_ms):
        """The link has a new socket: a PULL_DATA goes out at once."""
        self.next_pull_ms = now_ms
        self.pull_token = None
        if self.next_stat_ms is None:
            self.next_stat_ms = now_ms + self.stat_ms

    def uplink(self, frame, now_us):
        """Forward one received frame (radio.RxFrame with metadata) in a PUSH_DATA."""
        link = self.link
        if not link.ready:
            self.unsent += 1
            return False
        time = link.rxpk_time((now_us - frame.tmst) & _MASK)
        try:
            rxpk = semtech.format_rxpk(
                frame.tmst,
                self.freq_hz,
                self.datr,
                self.codr,
                frame.rssi,
                frame.snr_x10,
                frame.data(),
                None if time is None else semtech.rxpk_time(time),
            )
            token = self._next_token()
            size = semtech.pack(
                self._buf, semtech.PUSH_DATA, token, self.eui, semtech.push_data_body((rxpk,))
            )
        except SemtechError as exc:
            self.unsent += 1
            self.log.exc(exc, "uplink not forwarded")
            return False
        if not link.send(self._mv[:size]):
            self.unsent += 1
            return False
        self._sent_push(token)
        self.rxfw += 1
        self.forwarded += 1
        snr = frame.snr_x10
        self.log.info(
            "uplink %d B rssi %d snr %s%d.%d tmst %d -> PUSH_DATA 0x%04x",
            frame.size,
            frame.rssi,
            "-" if snr < 0 else "",
            abs(snr) // 10,
            abs(snr) % 10,
            frame.tmst,
            token,
        )
        return True

    def _sent_push(self, token):
        self._push_tokens[self._push_next] = token
        self._push_next = (self._push_next + 1) % PUSH_TOKENS
        self.up_sent += 1

    def tick(self, now_ms):
        """Keepalive and stat when due; returns ms until the next one (None: no link)."""
        if not self.link.ready or self.next_pull_ms is None:
            return None
        if now_ms >= self.next_pull_ms:
            self._pull(now_ms)
        if now_ms >= self.next_stat_ms:
            self._stat(now_ms)
        wait = self.next_pull_ms - now_ms
        if self.next_stat_ms - now_ms < wait:
            wait = self.next_stat_ms - now_ms
        return wait if wait > 0 else 0

    def _pull(self, now_ms):
        if self.pull_token is not None:
            self.missed += 1
            if self.missed >= KEEPALIVES_LOST:
                self.log.warning("no PULL_ACK for %d keepalives", self.missed)
                self.missed = 0
                self.pull_token = None
                if self.server_up:
                    self.server_up = False
                self.link.server_lost()
        token = self._next_token()
        size = semtech.pack(self._buf, semtech.PULL_DATA, token, self.eui)
        self.next_pull_ms = now_ms + self.keepalive_ms
        if self.link.send(self._mv[:size]):
            self.pull_token = token

    def _stat(self, now_ms):
        self.next_stat_ms = now_ms + self.stat_ms
        t = self.link.stat_time()
        if t is None:
            if not self._nosync_logged:
                self._nosync_logged = True
                self.log.warning("stat withheld until NTP sync (no true time yet)")
            return
        rx_total, tx_total = self.counters()
        rxnb = rx_total - self._rx_base
        txnb = tx_total - self._tx_base
        ackr_x10 = self.up_acked * 1000 // self.up_sent if self.up_sent else 0
        if ackr_x10 > 1000:
            ackr_x10 = 1000
        loc = self.location
        try:
            if loc is None:
                stat = semtech.format_stat(
                    semtech.stat_time(t), rxnb, rxnb, self.rxfw, ackr_x10, self.dwnb, txnb
                )
            else:
                stat = semtech.format_stat(
                    semtech.stat_time(t),
                    rxnb,
                    rxnb,
                    self.rxfw,
                    ackr_x10,
                    self.dwnb,
                    txnb,
                    loc[0],
                    loc[1],
                    loc[2],
                )
            token = self._next_token()
            size = semtech.pack(
                self._buf, semtech.PUSH_DATA, token, self.eui, semtech.push_data_body((), stat)
            )
        except SemtechError as exc:
            self.log.exc(exc, "stat not sent")
            return
        if not self.link.send(self._mv[:size]):
            return
        self.log.info(
            "stat 0x%04x: rxnb %d rxok %d rxfw %d ackr %d.%d%% dwnb %d txnb %d",
            token,
            rxnb,
            rxnb,
            self.rxfw,
            ackr_x10 // 10,
            ackr_x10 % 10,
            self.dwnb,
            txnb,
        )
        self.stats_sent += 1
        self._rx_base = rx_total
        self._tx_base = tx_total
        self.rxfw = 0
        self.up_sent = 0
        self.up_acked = 0
        self.dwnb = 0
        self._sent_push(token)  # this datagram's ack counts in the next interval

    # -- downstream ----------------------------------------------------------------------------
    def datagram(self, data, now_ms):
        """Handle one datagram from the server."""
        if len(data) < semtech.HEADER_SIZE:
            self._malformed(now_ms, "%d bytes, shorter than a header" % len(data))
            return
        ptype = data[3]
        try:
            if ptype == semtech.PUSH_ACK or ptype == semtech.PULL_ACK:
                packet = semtech.decode(data)
            elif ptype == semtech.PULL_RESP:
                packet = semtech.decode(data, semtech.PULL_RESP)
            else:
                self._malformed(now_ms, "unexpected type 0x%02x" % ptype)
                return
        except SemtechError as exc:
            self._malformed(now_ms, str(exc))
            if ptype == semtech.PULL_RESP and (data[0] == 1 or data[0] == 2):
                self.dwnb += 1
                self._tx_ack(data[1] | (data[2] << 8), semtech.ERR_INTERNAL_ERROR)
            return
        if ptype == semtech.PUSH_ACK:
            self._push_ack(packet.token)
        elif ptype == semtech.PULL_ACK:
            self._pull_ack(packet.token)
        else:
            self.dwnb += 1
            error = self.handle_txpk(packet.txpk, packet.token)
            self._tx_ack(packet.token, error)

    def _push_ack(self, token):
        tokens = self._push_tokens
        for i in range(PUSH_TOKENS):
            if tokens[i] == token:
                tokens[i] = -1
                self.up_acked += 1
                return
        self.log.debug("PUSH_ACK 0x%04x matches no PUSH_DATA", token)

    def _pull_ack(self, token):
        if token != self.pull_token:
            self.log.debug("PULL_ACK 0x%04x matches no PULL_DATA", token)
            return
        self.pull_token = None
        self.missed = 0
        if not self.server_up:
            self.server_up = True
            self.log.info("server answers (PULL_ACK)")
        self.link.server_alive()

    def _tx_ack(self, token, error):
        size = semtech.pack(self._ack, semtech.TX_ACK, token, self.eui, semtech.tx_ack_body(error))
        if self.link.send(self._ack_mv[:size]):
            self.tx_acks += 1

    def _malformed(self, now_ms, why):
        self.malformed += 1
        self._bad += 1
        last = self._bad_logged_ms
        if last is None or now_ms - last >= BAD_LOG_MS:
            self.log.warning("%d malformed datagram(s) dropped; last: %s", self._bad, why)
            self._bad = 0
            self._bad_logged_ms = now_ms
