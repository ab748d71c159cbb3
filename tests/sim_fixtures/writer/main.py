"""Rewrites /flash/state.json atomically (temp file, then rename) forever, slowly."""

import os
import time

import ujson

generation = 0
try:
    with open("/flash/state.json") as f:
        generation = ujson.load(f)["generation"]
except OSError:
    pass
print("start", generation)
while True:
    generation += 1
    body = ujson.dumps({"generation": generation, "pad": "x" * 200})
    f = open("/flash/state.tmp", "w")
    try:
        f.write(body[:100])
        time.sleep_ms(3)
        f.write(body[100:])
        time.sleep_ms(3)
    finally:
        f.close()
    time.sleep_ms(3)
    os.rename("/flash/state.tmp", "/flash/state.json")
    time.sleep_ms(11)
