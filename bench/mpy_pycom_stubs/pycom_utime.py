"""Pycom's utime on the bench's virtual clock (registered as `utime` by _harness.install()).

ticks_ms/us/cpu are uint32 and wrap at 2^32 as on Pycom firmware; time() and the RTC count from
_harness.EPOCH_S. sleep_* let virtual time pass (Timer alarms fire, bench hooks run).
mktime/gmtime/localtime are MicroPython's own (1970 epoch, UTC).
"""

import time as _time

import _harness

_MASK = 0xFFFFFFFF
_HALF = 0x80000000
_WRAP = 0x100000000

mktime = _time.mktime
gmtime = _time.gmtime
localtime = _time.gmtime


def ticks_us():
    return _harness.now_us() & _MASK


def ticks_cpu():
    return _harness.now_us() & _MASK


def ticks_ms():
    return (_harness.now_us() // 1000) & _MASK


def ticks_diff(end, start):
    diff = (end - start) & _MASK
    return diff - _WRAP if diff >= _HALF else diff


def ticks_add(ticks, delta):
    return (ticks + delta) & _MASK


def time():
    return _harness.EPOCH_S + _harness.now_us() // 1000000


def sleep_us(us):
    _harness.idle(us if us > 0 else 0)


def sleep_ms(ms):
    _harness.idle(ms * 1000 if ms > 0 else 0)


def sleep(seconds):
    _harness.idle(int(seconds * 1000000) if seconds > 0 else 0)
