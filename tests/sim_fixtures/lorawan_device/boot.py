"""Boot: no heartbeat LED, so the console shows only what main.py prints."""

import pycom

pycom.heartbeat(False)
