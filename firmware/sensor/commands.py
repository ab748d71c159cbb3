"""Live settings of the sensor image and the downlink commands that change them (FPort 10).

Settings starts from the validated configuration; accepted commands change it and are kept in
/flash/oe_over.json (tied to the configuration file's fingerprint, so re-provisioning resets them).
handle() decodes a command frame with lib/meterpayload, range-checks each command against what
this sensor supports, applies the valid ones in order and returns the status trigger
(docs/payload-format.md section 6): rejected if any command was refused, else changed if any
changed something, else request.
"""

import meterpayload
from errors import PayloadError

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


TRIGGER_BOOT = const(0)
TRIGGER_REQUEST = const(1)
TRIGGER_CHANGED = const(2)
TRIGGER_REJECTED = const(3)

INTERVAL_MIN_S = const(60)  # devconfig's REPORT_INTERVAL_MIN_S
DR_MAX = const(5)  # EU868 DR0..DR5 (SF12..SF7 at 125 kHz)
CONFIRMED = meterpayload.CONFIRMED_POLICIES


class Settings:
    """What downlinks may change: interval, history, DR/ADR, confirmed policy, thresholds.

    thresholds: one [flow_high, no_pulse_h, leak_h] per S0 channel (0 = off).
    """

    def __init__(self, config):
        self.single_channel = config["single_channel"]
        self.fixed_dr = config["dr"]
        self.interval_s = config["report_interval_s"]
        self.history = config["history"]
        self.dr = config["dr"]
        self.adr = config["adr"]
        self.confirmed = config["confirmed"]
        self.thresholds = [
            [entry["flow_high"], entry["no_pulse_h"], entry["leak_h"]] for entry in config["s0"]
        ]

    def overrides(self):
        return {
            "interval_s": self.interval_s,
            "history": self.history,
            "dr": self.dr,
            "adr": self.adr,
            "confirmed": self.confirmed,
            "thresholds": self.thresholds,
        }

    def apply_overrides(self, saved):
        """Take back overrides() output; entries that no longer fit the configuration are skipped."""
        value = saved.get("interval_s")
        if type(value) is int and INTERVAL_MIN_S <= value <= 65535:
            self.interval_s = value
        value = saved.get("history")
        if type(value) is int and 0 <= value <= 255:
            self.history = value
        dr = saved.get("dr")
        adr = saved.get("adr")
        if type(dr) is int and (adr is True or adr is False) and dr_allowed(self, dr, adr):
            self.dr = dr
            self.adr = adr
        value = saved.get("confirmed")
        if value in CONFIRMED:
            self.confirmed = value
        value = saved.get("thresholds")
        if isinstance(value, list) and len(value) == len(self.thresholds):
            for ch in range(len(value)):
                entry = value[ch]
                if isinstance(entry, list) and len(entry) == 3:
                    if all(type(v) is int and 0 <= v <= 65535 for v in entry):
                        self.thresholds[ch] = list(entry)

    def threshold_records(self):
        """(channel, flow_high, no_pulse_h, leak_h) per channel, for the status frame."""
        return [(ch,) + tuple(self.thresholds[ch]) for ch in range(len(self.thresholds))]


def dr_allowed(settings, dr, adr):
    """DR0..5; with single_channel the gateway's DR only and no ADR (ADR would leave its SF)."""
    if not 0 <= dr <= DR_MAX:
        return False
    if settings.single_channel:
        return dr == settings.fixed_dr and not adr
    return True


class Outcome:
    """What handle() decided: the status trigger and the actions left to the caller."""

    def __init__(self):
        self.trigger = TRIGGER_REQUEST
        self.presets = []  # (channel, index) to set
        self.rejoin = False
        self.settings_changed = False
        self.radio_changed = False  # dr or adr
        self.interval_changed = False


def handle(settings, data, channels):
    """Apply the command frame `data` (FPort 10) to settings; returns an Outcome.

    channels: number of S0 channels (preset_counter / set_thresholds on others are refused).
    A frame that does not decode is refused as a whole (trigger rejected, nothing applied).
    """
    out = Outcome()
    try:
        frame = meterpayload.decode(meterpayload.FPORT_COMMAND, bytes(data))
    except PayloadError:
        out.trigger = TRIGGER_REJECTED
        return out
    rejected = False
    changed = False
    for cmd in frame["commands"]:
        name = cmd["cmd"]
        if name == "set_interval":
            value = cmd["interval_s"]
            if value < INTERVAL_MIN_S:
                rejected = True
            elif value != settings.interval_s:
                settings.interval_s = value
                out.interval_changed = True
                changed = True
        elif name == "set_history":
            if cmd["history"] != settings.history:
                settings.history = cmd["history"]
                changed = True
        elif name == "preset_counter":
            if cmd["channel"] >= channels:
                rejected = True
            else:
                out.presets.append((cmd["channel"], cmd["index"]))
                changed = True
        elif name == "set_thresholds":
            ch = cmd["channel"]
            if ch >= channels:
                rejected = True
            else:
                new = [cmd["flow_high"], cmd["no_pulse_h"], cmd["leak_h"]]
                if new != settings.thresholds[ch]:
                    settings.thresholds[ch] = new
                    changed = True
        elif name == "set_dr":
            dr = cmd["dr"]
            adr = cmd["adr"]
            if not dr_allowed(settings, dr, adr):
                rejected = True
            elif dr != settings.dr or adr != settings.adr:
                settings.dr = dr
                settings.adr = adr
                out.radio_changed = True
                changed = True
        elif name == "set_confirmed":
            if cmd["confirmed"] != settings.confirmed:
                settings.confirmed = cmd["confirmed"]
                changed = True
        elif name == "rejoin":
            out.rejoin = True
        # get_config: nothing to apply, the status frame answers it
    out.settings_changed = changed
    if rejected:
        out.trigger = TRIGGER_REJECTED
    elif changed:
        out.trigger = TRIGGER_CHANGED
    return out


def status_frame(buf, trigger, firmware, settings, status, seq, battery_mv, tic_mode):
    """Encode the status answer (FPort 3) into buf; returns its length."""
    return meterpayload.encode_status_into(
        buf,
        trigger,
        firmware,
        status,
        seq & 0xFFFF,
        settings.interval_s,
        settings.history,
        settings.dr,
        settings.adr,
        CONFIRMED.index(settings.confirmed),
        battery_mv if 0 <= battery_mv <= 0xFFFF else 0,
        tic_mode,
        settings.threshold_records(),
    )
