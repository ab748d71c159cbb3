"""`socket`, as the nano gateway imports it: the usocket stub's names (_harness.install() maps
the name to the usocket module object itself)."""

from usocket import *  # noqa: F403
