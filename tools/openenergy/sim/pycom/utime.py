"""`utime` / `time` of a simulated Pycom board (esp32/mods/modutime.c of firmware 1.20.x).

ticks_ms/ticks_us come from the wall clock (gettimeofday, i.e. the RTC): they restart at 0 on a
reset and jump when the RTC is set or NTP-synced. ticks_cpu is the monotonic µs counter since
boot. All wrap at 2**32; ticks_diff(end, start) is the signed 32-bit difference.
"""

import calendar
import time as _host_time

from . import new_module

MASK = 0xFFFFFFFF


def ticks_diff(end, start):
    diff = (int(end) - int(start)) & MASK
    return diff - 0x100000000 if diff & 0x80000000 else diff


def ticks_add(ticks, delta):
    return (int(ticks) + int(delta)) & MASK


def _tuple(seconds):
    t = _host_time.gmtime(seconds)
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, t.tm_wday, t.tm_yday)


def make(session):
    board = session.board
    zone = [0]

    def ticks_ms():
        session.poll_yield()
        return (board.rtc_us() // 1000) & MASK

    def ticks_us():
        session.poll_yield()
        return board.rtc_us() & MASK

    def ticks_cpu():
        session.poll_yield()
        return board.ticks_cpu()

    def time():
        session.poll_yield()
        return board.rtc_us() // 1_000_000

    def localtime(secs=None):
        if secs is None:
            secs = board.rtc_us() // 1_000_000
        return _tuple(int(secs) + zone[0])

    def gmtime(secs=None):
        if secs is None:
            secs = board.rtc_us() // 1_000_000
        return _tuple(int(secs))

    def mktime(t):
        t = tuple(t)
        if not 8 <= len(t) <= 9:
            raise TypeError("mktime needs a tuple of length 8 or 9 (%d given)" % len(t))
        return zone[0] + calendar.timegm((t[0], t[1], t[2], t[3], t[4], t[5], 0, 0, 0))

    def sleep(seconds):
        ms = int(1000 * float(seconds))
        session.sleep_local(max(0, ms) * 1000)

    def sleep_ms(ms):
        session.sleep_local(max(0, int(ms)) * 1000)

    def sleep_us(us):
        session.sleep_local(max(0, int(us)))

    def timezone(*args):
        if not args or args[0] is None:
            return zone[0]
        zone[0] = int(args[0])
        return None

    return new_module(
        "utime",
        {
            "ticks_ms": ticks_ms,
            "ticks_us": ticks_us,
            "ticks_cpu": ticks_cpu,
            "ticks_diff": ticks_diff,
            "ticks_add": ticks_add,
            "time": time,
            "localtime": localtime,
            "gmtime": gmtime,
            "mktime": mktime,
            "sleep": sleep,
            "sleep_ms": sleep_ms,
            "sleep_us": sleep_us,
            "timezone": timezone,
        },
    )
