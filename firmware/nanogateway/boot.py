"""Nano gateway boot: make /flash/lib importable and quiet the heartbeat LED; nothing here can
fail the boot (main.py reports configuration problems itself)."""

import sys

if "/flash/lib" not in sys.path:
    sys.path.append("/flash/lib")

try:
    import pycom

    pycom.heartbeat(False)
except Exception:
    pass
