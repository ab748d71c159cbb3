"""openenergy host tools: flash, provision, decode, simulate. The device modules live in lib/."""

__version__ = "0.1.0"
