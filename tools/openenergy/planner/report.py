"""What `openenergy plan` shows: the table, the one-sentence answer, the PNG curve, the JSON file.

A record is a dict with at least "sensors" and "der" (delivery ratio, 0..1); the model adds
"offered_load", "aloha_der" and the loss counts. Both engines' records go through here.
"""

import json
import math


def format_interval(seconds):
    """900 -> '15 min', 3600 -> '1 h', 45 -> '45 s', 5400 -> '1.5 h'."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size and (seconds / size) * 10 == round((seconds / size) * 10):
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def describe(settings):
    """'SF7/125 kHz, a 21-byte payload (34-byte frame, 77.1 ms) every 15 min'"""
    return (
        f"SF{settings['sf']}/{settings['bw_hz'] // 1000} kHz, a {settings['payload']}-byte "
        f"payload ({settings['phy_len']}-byte frame, {settings['airtime_ms']:.1f} ms) every "
        f"{format_interval(settings['interval_s'])}"
    )


def _gateways(count):
    return "one gateway serves" if count == 1 else f"{count} gateways serve"


def _capacity_phrase(capacity, target, short=False):
    """capacity: (kind, n), kind 'exact', 'about', 'at least', 'fewer than' or 'none'.
    short drops the noun and 'delivery' (for the second figure of the sentence)."""
    kind, n = capacity
    pct = f"≥ {target * 100:g} %"
    tail = pct if short else f"{pct} delivery"
    if kind == "none":
        return f"none at {tail}" if short else f"not even one sensor at {tail}"
    noun = "" if short else (" sensors" if n != 1 else " sensor")
    if kind in ("at least", "fewer than"):
        return f"{kind} {n}{noun} at {tail}"
    word = "about " if kind == "about" else ""
    return f"up to {word}{n}{noun} at {tail}"


def answer_sentence(settings, cap99, cap90):
    """The one-sentence answer, e.g. 'With SF7/125 kHz, ... every 15 min, one gateway serves up
    to 69 sensors at ≥ 99 % delivery (up to 747 at ≥ 90 %).'"""
    first = _capacity_phrase(cap99, 0.99)
    second = _capacity_phrase(cap90, 0.90, short=True)
    return f"With {describe(settings)}, {_gateways(settings['gateways'])} {first} ({second})."


def capacity_from_curve(records, target):
    """Where the curve crosses target, interpolated in log(sensors) between the points around
    the crossing: ('about', n); ('at least', last count) when every point is above target;
    ('fewer than', first count) when every point is below it (('none', 0) if that is 1)."""
    points = sorted((r["sensors"], r["der"]) for r in records)
    if not points or points[0][1] < target:
        first = points[0][0] if points else 1
        return ("none", 0) if first <= 1 else ("fewer than", first)
    for (n0, d0), (n1, d1) in zip(points, points[1:], strict=False):
        if d1 < target:
            x = (d0 - target) / (d0 - d1)
            return ("about", int(math.exp(math.log(n0) + x * (math.log(n1) - math.log(n0)))))
    return ("at least", points[-1][0])


def _percent(value):
    return f"{value * 100:.2f} %"


def table_rows(records):
    """Header and rows (strings) of the table."""
    header = ["sensors", "load G", "delivery", "ALOHA e^-2G", "collided"]
    losses = ["collided"]
    # the firmware engine: the model's prediction for the same sensors beside the run's DER
    model_column = any("model_der" in r for r in records)
    if model_column:
        header.insert(3, "model, same sensors")
    # the other causes of loss only when they occur
    for key, name in (("too_weak", "out of range"), ("half_duplex", "gateway deaf")):
        if any(r.get(key) for r in records):
            losses.append(key)
            header.append(name)
    rows = []
    for r in records:
        sent = r.get("sent") or 0
        row = [
            str(r["sensors"]),
            f"{r['offered_load']:.4f}" if "offered_load" in r else "",
            _percent(r["der"]),
            _percent(r["aloha_der"]) if "aloha_der" in r else "",
        ]
        if model_column:
            row.insert(3, _percent(r["model_der"]) if r.get("model_der") is not None else "")
        for key in losses:
            row.append(_percent(r[key] / sent) if sent and key in r else "")
        rows.append(row)
    return header, rows


def print_table(records, title, file=None):
    """The table with rich when it is installed, else as aligned plain text."""
    header, rows = table_rows(records)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        Console = None
    if Console is not None:
        table = Table(title=title, title_justify="left")
        for name in header:
            table.add_column(name, justify="right")
        for row in rows:
            table.add_row(*row)
        Console(file=file, soft_wrap=True).print(table)
        return
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = [title, "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    for row in rows:
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    print("\n".join(lines), file=file)


def write_json(path, records, settings):
    """One entry per sensor count: the record plus the settings it was computed with."""
    entries = [dict(record, **settings) for record in records]
    with open(path, "w", encoding="utf-8") as out:
        json.dump(entries, out, indent=2)
        out.write("\n")


def write_png(path, records, settings, cap99=None, cap90=None):
    """DER against sensors (log scale) with the pure-ALOHA line e^(-2G) beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sensors = np.array([r["sensors"] for r in records], dtype=float)
    der = np.array([r["der"] for r in records])
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    low, high = sensors.min(), sensors.max()
    if high <= low:
        low, high = low / 2.0, high * 2.0
    grid = np.geomspace(max(low, 1.0), high, 200)
    load_per_sensor = settings["airtime_ms"] / 1000.0 / settings["interval_s"]
    aloha = np.exp(-2.0 * grid * load_per_sensor)
    ax.plot(grid, aloha, "--", color="0.45", label="pure ALOHA, e^(-2G)")
    ax.plot(sensors, der, "o-", color="tab:blue", label=f"{settings['engine']} engine")
    bottom = max(0.0, math.floor((min(der.min(), aloha.min(), 0.9) - 0.03) * 20.0) / 20.0)
    for target in (0.99, 0.90):
        ax.axhline(target, color="0.8", linewidth=0.8)
        ax.text(grid[0], target, f" {target * 100:g} %", va="bottom", fontsize=8, color="0.4")
    for cap, target in ((cap99, 0.99), (cap90, 0.90)):
        if cap and cap[0] in ("exact", "about") and low <= cap[1] <= high:
            ax.axvline(cap[1], color="tab:green", linewidth=0.8, linestyle=":")
            label = f" {cap[1]} sensors at {target * 100:g} %"
            ax.text(cap[1], bottom, label, rotation=90, va="bottom", fontsize=8, color="tab:green")
    ax.set_xscale("log")
    ax.set_ylim(bottom, 1.005)
    ax.set_xlabel("sensors per gateway" if settings["gateways"] == 1 else "sensors")
    ax.set_ylabel("packet delivery ratio (DER)")
    gw = "one nano gateway" if settings["gateways"] == 1 else f"{settings['gateways']} gateways"
    ax.set_title(f"{gw}: {describe(settings)}", fontsize=9)
    ax.grid(True, which="both", color="0.92")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
