"""Sensor image entry point: the wake cycle lives in app.py."""

import app

app.main()
