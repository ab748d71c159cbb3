"""Counts pulses on P10 (falling edges) and ticks of a periodic alarm; a pulse on P11 makes a
handler raise, which kills the IRQs thread for good."""

import time

from machine import Pin, Timer

pulses = 0
ticks = 0


def on_pulse(pin):
    global pulses
    pulses += 1


def on_tick(alarm):
    global ticks
    ticks += 1


def on_bad(arg):
    raise ValueError("bad handler %s" % arg)


p10 = Pin("P10", mode=Pin.IN, pull=Pin.PULL_UP)
p10.callback(Pin.IRQ_FALLING, on_pulse)
p11 = Pin("P11", mode=Pin.IN, pull=Pin.PULL_DOWN)
p11.callback(Pin.IRQ_RISING, on_bad, arg="P11")
alarm = Timer.Alarm(on_tick, ms=100, periodic=True)
while True:
    time.sleep(1)
    print("status", pulses, ticks)
