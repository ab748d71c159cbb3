"""Nano gateway entry point: everything lives in gateway.py (main() never returns)."""

import gateway

gateway.main()
