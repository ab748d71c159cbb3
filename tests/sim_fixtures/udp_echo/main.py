"""Joins WiFi, sends "ping N" to the echo server and prints what comes back (or a timeout)."""

import time

import usocket
from network import WLAN

wlan = WLAN(mode=WLAN.STA)
wlan.connect("lab", auth=(WLAN.WPA2, "secret"), timeout=10000)
while not wlan.isconnected():
    time.sleep_ms(100)
print("ip", wlan.ifconfig()[0])
addr = usocket.getaddrinfo("echo.sim", 9999)[0][-1]
sock = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
sock.settimeout(2)
for n in range(3):
    start = time.ticks_ms()
    sock.sendto(b"ping %d" % n, addr)
    try:
        data, src = sock.recvfrom(64)
        print("reply", data, time.ticks_diff(time.ticks_ms(), start))
    except TimeoutError:
        print("timeout", time.ticks_diff(time.ticks_ms(), start))
    time.sleep(1)
