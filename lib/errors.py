"""Error types of the openenergy lib: every decoder raises one of these, never another exception.

All derive from ValueError so callers that only care about "bad input" can catch that.
"""


class OpenEnergyError(ValueError):
    """Base of every error the lib raises on bad input."""


class CryptoError(OpenEnergyError):
    """A key or block of the wrong size."""


class FrameError(OpenEnergyError):
    """A LoRaWAN frame that cannot be decoded, built or verified."""


class MacCommandError(FrameError):
    """A MAC command (FOpts / FPort 0 payload) that cannot be decoded or built."""


class RegionError(OpenEnergyError):
    """A frequency, data rate or channel outside the region's rules."""


class PayloadError(OpenEnergyError):
    """A meter payload that cannot be decoded or encoded."""


class SemtechError(OpenEnergyError):
    """A Semtech UDP packet-forwarder datagram that breaks the protocol."""


class ConfigError(OpenEnergyError):
    """A device configuration value that breaks the schema (names the field)."""


class TicError(OpenEnergyError):
    """A Linky TIC frame or group that cannot be parsed."""
