"""Boot script: sets a name main.py reads (boot.py and main.py share one namespace)."""

import machine

BOOT_CAUSE = machine.reset_cause()
print("boot", BOOT_CAUSE)
