"""Wakes, counts wakes in NVS and RTC memory, reports causes, deep-sleeps for config period."""

import machine
import pycom
import ram
import ujson

try:
    wakes = pycom.nvs_get("wakes")
except ValueError:
    wakes = 0
pycom.nvs_set("wakes", wakes + 1)

rtc = machine.RTC()
mem = rtc.memory()
rtc_count = mem[0] if mem else 0
rtc.memory(bytes([(rtc_count + 1) & 0xFF]))

ram.touch()
with open("config.json") as f:
    period_ms = ujson.load(f)["period_ms"]
print("wake", wakes, rtc_count, ram.touched, machine.reset_cause(), machine.wake_reason()[0])
machine.deepsleep(period_ms)
