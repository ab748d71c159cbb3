"""Bumps a module-level counter twice and shows it: each board must see its own module."""

import sys

import counter

counter.bump()
counter.bump()
print("main", BOOT_CAUSE, counter.value(), sys.platform, "counter" in sys.modules)  # noqa: F821 - set by boot.py
