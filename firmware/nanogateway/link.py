"""The nano gateway's way to its server: WiFi station, DNS, one UDP socket, NTP.

Nothing here waits without a bound: WLAN.connect returns at once and is polled (Pycom raises
the connect timeout from the next isconnected()), NTP is machine.RTC().ntp_sync in the
background, and the one blocking call, getaddrinfo, runs only when WiFi is up and the
gateway has nothing to send soon. Reconnects back off: the WiFi driver keeps trying during
each connect timeout (and by itself after a link loss), and a new connect follows each
timeout at once with the timeout doubled, 10 s up to 60 s, so the driver is never idle and
the link is back within seconds of the access point; the socket is re-created with a fresh
DNS lookup after the server was lost, at most every 5, 10, 20, 30 s; a failed lookup is
retried after 2 s doubling to 30 s, the last address staying in use meanwhile. Datagrams from
any address but the server's are dropped (counted).
wait() polls the UDP socket and a watched stream (the radio's AF_LORA socket: Pycom's
lora_socket_ioctl answers MP_STREAM_POLL), so it ends when either becomes readable; when the
watched stream cannot be polled it sleeps at most the fallback period given to watch().
Times are int ms of the gateway's monotonic clock (never the RTC: it jumps at NTP sync).
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


WIFI_TIMEOUT_FIRST_MS = const(10000)
WIFI_TIMEOUT_MAX_MS = const(60000)
RECONNECT_FIRST_MS = const(5000)
RECONNECT_MAX_MS = const(30000)
DNS_RETRY_FIRST_MS = const(2000)
DNS_RETRY_MAX_MS = const(30000)
NTP_RETRY_MS = const(600000)
UDP_MAX = const(1024)  # a PULL_RESP with a 255-byte payload is ~600 bytes


class Backoff:
    """Delays doubling from first_ms up to max_ms; reset() after a success."""

    def __init__(self, first_ms, max_ms):
        self.first_ms = first_ms
        self.max_ms = max_ms
        self.delay_ms = first_ms
        self.next_ms = None  # None: may act now

    def ready(self, now_ms):
        return self.next_ms is None or now_ms >= self.next_ms

    def fail(self, now_ms):
        """Note a failure at now_ms; returns the wait before the next attempt."""
        delay = self.delay_ms
        self.next_ms = now_ms + delay
        self.delay_ms = delay * 2 if delay * 2 < self.max_ms else self.max_ms
        return delay

    def reset(self):
        self.delay_ms = self.first_ms
        self.next_ms = None


class Link:
    """WiFi + server address + UDP socket + NTP, driven by tick(now_ms).

    wlan: network.WLAN in STA mode; socket_mod/select_mod: socket and select modules; rtc:
    machine.RTC(); utime: the utime module (mktime/gmtime/sleep_ms); log: an oelog logger.
    """

    def __init__(self, wlan, socket_mod, select_mod, rtc, utime, cfg, log):
        self.wlan = wlan
        self._socket = socket_mod
        self._select = select_mod
        self.rtc = rtc
        self._utime = utime
        self.ssid = cfg["wifi_ssid"]
        self._password = cfg["wifi_password"]
        self.host = cfg["server_host"]
        self.port = cfg["server_port"]
        self.ntp_server = cfg["ntp_server"]
        self.log = log
        self.wifi_up = False
        self.addr = None
        self.sock = None
        self.poller = None
        self.watching = False  # the poller includes the watched stream
        self._watched = None
        self._fallback_ms = 0
        self.need_dns = True
        self._connect_started = None
        self._wifi_timeout_ms = WIFI_TIMEOUT_FIRST_MS
        self._dns_backoff = Backoff(DNS_RETRY_FIRST_MS, DNS_RETRY_MAX_MS)
        self._reconnect_backoff = Backoff(RECONNECT_FIRST_MS, RECONNECT_MAX_MS)
        self._lost = False
        self._ntp_started_ms = None
        self.opened = 0  # sockets opened (first one included)
        self.foreign = 0  # datagrams from other addresses, dropped
        self.wifi_losses = 0
        self.connects = 0
        self.dns_failures = 0
        self.send_errors = 0

    # -- WiFi ----------------------------------------------------------------------------------
    def _connect(self, now_ms):
        # connect() returns at once; the driver keeps trying for the whole timeout, so a new
        # attempt follows each timeout at once, with a longer timeout each time.
        auth = (self.wlan.WPA2, self._password) if self._password else None
        self._connect_started = now_ms
        self.connects += 1
        self.log.info("WiFi: connecting to %s", self.ssid)
        try:
            self.wlan.connect(self.ssid, auth=auth, timeout=self._wifi_timeout_ms)
        except Exception as exc:
            self.log.exc(exc, "WiFi: connect failed")

    def _isconnected(self):
        try:
            return bool(self.wlan.isconnected())
        except Exception:  # Pycom: the connect timeout surfaces here (TimeoutError)
            return False

    def start(self, now_ms):
        self._connect(now_ms)

    @property
    def ready(self):
        """WiFi up and a socket open towards the server's address."""
        return self.wifi_up and self.sock is not None

    def tick(self, now_ms, may_block=True):
        """Advance WiFi/DNS/socket/NTP; may_block=False defers the DNS lookup (a downlink is
        due soon). Returns True when the socket was (re)opened in this call."""
        connected = self._isconnected()
        if not connected:
            if self.wifi_up:
                self.wifi_up = False
                self.wifi_losses += 1
                self.log.warning("WiFi: link lost")
                self._close()
                self.need_dns = True
                self._connect_started = now_ms  # the driver reconnects by itself meanwhile
            started = self._connect_started
            if started is None or now_ms - started >= self._wifi_timeout_ms:
                if started is not None:
                    self.log.warning(
                        "WiFi: not connected after %d s", self._wifi_timeout_ms // 1000
                    )
                    self._wifi_timeout_ms = min(2 * self._wifi_timeout_ms, WIFI_TIMEOUT_MAX_MS)
                self._connect(now_ms)
            return False
        if not self.wifi_up:
            self.wifi_up = True
            self._connect_started = None
            self._wifi_timeout_ms = WIFI_TIMEOUT_FIRST_MS
            try:
                ip = self.wlan.ifconfig()[0]
            except Exception:
                ip = "?"
            self.log.info("WiFi: connected, address %s", ip)
            self.need_dns = True
            self._start_ntp(now_ms)
        elif self._ntp_started_ms is not None and now_ms - self._ntp_started_ms > NTP_RETRY_MS:
            if not self.synced():
                self._start_ntp(now_ms)
        if self._lost and self._reconnect_backoff.ready(now_ms):
            self._lost = False
            wait = self._reconnect_backoff.fail(now_ms)
            self.log.warning(
                "server lost: new socket after a DNS lookup (next time in %d s at the earliest)",
                wait // 1000,
            )
            self._close()
            self.need_dns = True
        if self.need_dns and may_block and self._dns_backoff.ready(now_ms):
            self._resolve(now_ms)
        if self.sock is None and self.addr is not None:
            return self._open()
        return False

    # -- NTP -----------------------------------------------------------------------------------
    def _start_ntp(self, now_ms):
        self._ntp_started_ms = now_ms
        if self.synced():
            return
        try:
            self.rtc.ntp_sync(self.ntp_server)  # update_period: the default 3600 s
            self.log.info("NTP: syncing with %s", self.ntp_server)
        except Exception as exc:
            self.log.exc(exc, "NTP: ntp_sync failed")

    def synced(self):
        try:
            return bool(self.rtc.synced())
        except Exception:
            return False

    def rxpk_time(self, age_us):
        """UTC time of an event age_us ago as (Y, M, D, h, m, s, µs), or None before NTP sync."""
        if not self.synced():
            return None
        utime = self._utime
        t = self.rtc.now()
        secs = utime.mktime((t[0], t[1], t[2], t[3], t[4], t[5], 0, 0))
        us = t[6] - age_us
        secs += us // 1000000
        us = us % 1000000
        g = utime.gmtime(secs)
        return (g[0], g[1], g[2], g[3], g[4], g[5], us)

    def stat_time(self):
        """Now as (Y, M, D, h, m, s, ...) or None before NTP sync."""
        if not self.synced():
            return None
        return self.rtc.now()

    # -- DNS and socket ------------------------------------------------------------------------
    def _resolve(self, now_ms):
        try:
            addr = self._socket.getaddrinfo(self.host, self.port)[0][-1]
        except Exception as exc:
            self.dns_failures += 1
            wait = self._dns_backoff.fail(now_ms)
            self.log.warning(
                "DNS: cannot resolve %s (%s); retry in %d s", self.host, exc, wait // 1000
            )
            return  # the last known address, if any, stays in use meanwhile
        self._dns_backoff.reset()
        self.need_dns = False
        if self.addr is None or addr[0] != self.addr[0] or addr[1] != self.addr[1]:
            self.log.info("server %s:%d is at %s", self.host, self.port, addr[0])
            self._close()
        self.addr = addr

    def _open(self):
        try:
            sock = self._socket.socket(self._socket.AF_INET, self._socket.SOCK_DGRAM)
            sock.setblocking(False)
        except Exception as exc:
            self.log.exc(exc, "UDP: cannot create the socket")
            return False
        self.sock = sock
        self.opened += 1
        self._new_poller()
        return True

    def _new_poller(self):
        self.poller = None
        self.watching = False
        select = self._select
        if select is None or (self.sock is None and self._watched is None):
            return
        try:
            poller = select.poll()
            if self.sock is not None:
                poller.register(self.sock, select.POLLIN)
        except Exception:
            return
        if self._watched is not None:
            try:
                poller.register(self._watched, select.POLLIN)
                self.watching = True
            except Exception as exc:
                self.log.warning("poll: cannot watch the radio socket (%s)", exc)
        self.poller = poller

    def watch(self, stream, fallback_ms):
        """Let wait() also end when stream is readable; when it cannot be polled, wait() sleeps
        at most fallback_ms."""
        self._watched = stream
        self._fallback_ms = fallback_ms
        self._new_poller()

    def _close(self):
        sock = self.sock
        self.sock = None
        self._new_poller()
        if sock is not None:
            try:
                sock.close()
            except Exception:
                pass

    def server_lost(self):
        """The forwarder saw no PULL_ACK for several keepalives: re-create the socket with a
        fresh DNS lookup, no more often than the back-off allows (done by tick())."""
        self._lost = True

    def server_alive(self):
        self._reconnect_backoff.reset()
        self._lost = False

    # -- datagrams -----------------------------------------------------------------------------
    def send(self, buf):
        """sendto the server; False when there is no link or the stack refuses."""
        if not self.ready:
            return False
        try:
            self.sock.sendto(buf, self.addr)
            return True
        except Exception as exc:
            self.send_errors += 1
            self.log.debug("UDP: send failed (%s)", exc)
            return False

    def recv(self):
        """The next datagram from the server (bytes), or None when none is waiting.
        Datagrams from other addresses are dropped here."""
        sock = self.sock
        while sock is not None:
            try:
                data, addr = sock.recvfrom(UDP_MAX)
            except Exception:  # EAGAIN: nothing waiting
                return None
            if addr[0] == self.addr[0] and addr[1] == self.addr[1]:
                return data
            self.foreign += 1
            self.log.debug("UDP: %d bytes from %s dropped (not the server)", len(data), addr[0])
        return None

    def wait(self, timeout_ms):
        """Sleep up to timeout_ms, returning early when a datagram arrives or the watched stream
        is readable. True when a datagram may be waiting (always True without a working poll,
        so the caller tries recv)."""
        if timeout_ms < 0:
            timeout_ms = 0
        poller = self.poller
        if poller is not None:
            try:
                ready = poller.poll(self._bounded(timeout_ms))
            except Exception:
                self.poller = None
                self.watching = False
            else:
                watched = self._watched
                for entry in ready:
                    if entry[0] is not watched:
                        return True
                return False
        self._utime.sleep_ms(self._bounded(timeout_ms))
        return self.sock is not None

    def _bounded(self, timeout_ms):
        # A radio frame ends the wait only when the poll includes the watched stream.
        if self._watched is not None and not self.watching and timeout_ms > self._fallback_ms:
            return self._fallback_ms
        return timeout_ms
