"""An OTAA device on Pycom's native LoRaWAN stack, using the Pycom API only.

Each wake: restore the session after deep sleep (or join; optionally on one channel, for a
nano gateway), send an unconfirmed uplink, on the
first wake also a too-big payload and a confirmed uplink, read any downlink, check the frame
counter against its own copy in NVS, save the session, deep-sleep. Prints one line per step.
"""

import socket
import time

import machine
import pycom
import ubinascii
import ujson
from network import LoRa

with open("config.json") as f:
    cfg = ujson.load(f)

events = []


def on_lora(lora):
    events.append(lora.events())


def nvs_int(key, default):
    try:
        return pycom.nvs_get(key)
    except ValueError:
        return default


lora = LoRa(mode=LoRa.LORAWAN, region=LoRa.EU868)
lora.callback(LoRa.RX_PACKET_EVENT | LoRa.TX_PACKET_EVENT | LoRa.TX_FAILED_EVENT, on_lora)
if cfg["single_channel_hz"]:
    for i in range(3, 16):
        lora.remove_channel(i)
    for i in range(3):
        lora.add_channel(i, frequency=cfg["single_channel_hz"], dr_min=0, dr_max=5)
wakes = nvs_int("wakes", 0)
pycom.nvs_set("wakes", wakes + 1)
last_fcnt = nvs_int("fcnt", -1)

s = socket.socket(socket.AF_LORA, socket.SOCK_RAW)
if machine.reset_cause() == machine.DEEPSLEEP_RESET:
    lora.nvram_restore()
    print("restore", lora.has_joined())
if not lora.has_joined():
    try:
        s.send(b"early")
    except OSError as e:
        print("send before join", e.args[0])
    app_eui = ubinascii.unhexlify(cfg["app_eui"])
    app_key = ubinascii.unhexlify(cfg["app_key"])
    lora.join(activation=LoRa.OTAA, auth=(app_eui, app_key), timeout=0)
    waited = 0
    while not lora.has_joined():
        time.sleep(1)
        waited += 1
    print("joined", waited)
    last_fcnt = -1

s.setsockopt(socket.SOL_LORA, socket.SO_DR, cfg["dr"])
s.bind(cfg["port"])
s.setblocking(True)
s.send(bytes([wakes, 1]))
st = lora.stats()
if st.tx_counter <= last_fcnt:
    print("fcnt regressed", last_fcnt, st.tx_counter)
last_fcnt = st.tx_counter
print("up", st.tx_counter, st.sftx, st.tx_trials, st.tx_time_on_air, st.tx_frequency)

if cfg["extras"] and wakes == 0:
    try:
        s.send(bytes(243))
    except OSError as e:
        print("too big", e.args[0])
    s.setsockopt(socket.SOL_LORA, socket.SO_CONFIRMED, True)
    s.send(b"\x02")
    st = lora.stats()
    last_fcnt = st.tx_counter
    print("confirmed", st.tx_counter, st.tx_trials)
    s.setsockopt(socket.SOL_LORA, socket.SO_CONFIRMED, False)

s.setblocking(False)
data, port = s.recvfrom(64)
while data:
    print("down", port, ubinascii.hexlify(data))
    data, port = s.recvfrom(64)
st = lora.stats()
print("rx", st.rssi, st.snr, st.sfrx)
pycom.nvs_set("fcnt", last_fcnt)
lora.nvram_save()
print("events", events)
if wakes + 1 < cfg["wakes"]:
    machine.deepsleep(cfg["sleep_ms"])
print("done")
