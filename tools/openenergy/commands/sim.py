"""`openenergy sim`: run a simulated building (`sim run`) or a virtual board on a pty (`sim board`).

    openenergy sim run SCENARIO.toml [--seed N] [--until DURATION] [--json REPORT.json]
        [--trace TRACE.jsonl] [--lns udp://HOST:PORT] [--realtime] [--plot FILE.png]

A progress bar on a terminal (none otherwise), then a summary table: per device, per gateway,
server totals, packet delivery ratio, and the simulator's speed. Exit 0 when the run completes,
2 (one line on stderr) on bad input. The scenario format: docs/scenario.md.
"""

import importlib
import os
import sys

from ..cli import CliError

PTY_BOARD_MODULE = "openenergy.sim.pty_board"


def register(subparsers):
    parser = subparsers.add_parser(
        "sim",
        help="simulate boards running the real firmware (a building, a virtual board)",
        description="Simulate LoPy boards running the unmodified firmware on a virtual radio "
        "and a virtual clock.",
    )
    sub = parser.add_subparsers(dest="sim_command", metavar="SUBCOMMAND")
    sub.required = True
    run = sub.add_parser(
        "run",
        help="run a scenario (docs/scenario.md) and report what the server received",
        description="Run a scenario on the virtual clock: gateways, devices, meters, faults; "
        "print a summary and optionally write the JSON report, the trace and a plot.",
    )
    run.add_argument("scenario", metavar="SCENARIO.toml", help="the scenario file")
    run.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    run.add_argument(
        "--until", metavar="DURATION", default=None, help="simulated duration (90s, 15m, 6h, 2d)"
    )
    run.add_argument("--json", metavar="REPORT.json", default=None, help="write the JSON report")
    run.add_argument(
        "--trace", metavar="TRACE.jsonl", default=None, help="write every event as JSON lines"
    )
    run.add_argument(
        "--lns",
        metavar="udp://HOST:PORT",
        default=None,
        help="no server emulator: the gateways send to this Semtech UDP address "
        "(a ChirpStack gateway bridge); use with --realtime",
    )
    run.add_argument(
        "--realtime", action="store_true", help="run at wall-clock speed (for a real bridge)"
    )
    run.add_argument(
        "--plot", metavar="FILE.png", default=None, help="plot consumption per meter (PNG)"
    )
    run.set_defaults(func=_run)
    _register_board(sub)


def _register_board(sub):
    """`sim board`, provided by openenergy.sim.pty_board when it is installed."""
    try:
        module = importlib.import_module(PTY_BOARD_MODULE)
    except ImportError:
        return
    board = sub.add_parser(
        "board",
        help="a virtual board on a pseudo-terminal (raw REPL, for mpremote and flashing)",
        description=(module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else None,
    )
    module.add_arguments(board)
    board.set_defaults(func=module.main)


def _run(args):
    from openenergy.sim import report as report_mod
    from openenergy.sim import runner as runner_mod
    from openenergy.sim import scenario as scenario_mod

    sc = scenario_mod.load(args.scenario, seed=args.seed, duration=args.until)
    lns = runner_mod.parse_lns_url(args.lns) if args.lns else None
    trace = None
    if args.trace:
        trace = _output_path(args.trace, "--trace")
    for option, path in (("--json", args.json), ("--plot", args.plot)):
        if path:
            _output_path(path, option)
    runner = runner_mod.Runner(sc, trace=trace, lns=lns, realtime=args.realtime)
    if lns is not None and not args.realtime:
        print(
            "openenergy sim run: note: --lns without --realtime sends to the bridge as fast as "
            "the simulation runs; its timing checks will fail",
            file=sys.stderr,
        )
    try:
        report = _run_with_progress(runner, sc)
        if args.json:
            report_mod.write_json(report, args.json)
        if args.plot:
            report_mod.plot(runner, args.plot)
    finally:
        runner.close()
    print_summary(report, sc, sys.stdout)
    if args.json:
        print("report: %s" % args.json)
    if args.plot:
        print("plot: %s" % args.plot)
    if args.trace:
        print("trace: %s" % args.trace)
    return 0


def _output_path(path, option):
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise CliError("%s: cannot create %s (%s)" % (option, folder, exc.strerror)) from None
    if os.path.isdir(path):
        raise CliError("%s: %s is a directory" % (option, path))
    return path


def _run_with_progress(runner, sc):
    if not sys.stderr.isatty():
        return runner.run()
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]simulating[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.fields[sim]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(
            os.path.basename(sc.source), total=sc.duration_us, sim=_duration(0)
        )

        def advance(now_us, total_us):
            progress.update(task, completed=now_us, sim=_duration(now_us // 1_000_000))

        return runner.run(on_progress=advance)


def _duration(seconds):
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = "%02d:%02d:%02d" % (hours, minutes, secs)
    return "%dd %s" % (days, text) if days else text


def _fmt(value, digits=None):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if digits is not None:
        return "%.*f" % (digits, value)
    return str(value)


def _pct(value):
    return "-" if value is None else "%.1f %%" % (100 * value)


def _meter_cell(entry, key):
    meters = entry.get("meters") or []
    if not meters:
        return "-"
    return " / ".join(_fmt(m.get(key), 3) for m in meters)


def print_summary(report, sc, stream):
    """The end-of-run tables (rich; plain text when stream is not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    tty = hasattr(stream, "isatty") and stream.isatty()
    console = Console(file=stream, width=None if tty else 160)
    devices = Table(title="Devices", title_justify="left", show_lines=False)
    for column in (
        "name",
        "DevEUI",
        "joined",
        "join tries",
        "uplinks sent",
        "received",
        "PDR",
        "readings exp.",
        "received",
        "meter kWh (truth)",
        "kWh (server)",
        "match",
    ):
        left = column in ("name", "DevEUI")
        devices.add_column(column, justify="left" if left else "right", no_wrap=left)
    for eui, d in report["devices"].items():
        truth, server = d.get("meter_index_truth"), d.get("meter_index_server")
        match = "-" if server is None or truth is None else ("ok" if truth == server else "DIFF")
        devices.add_row(
            d["name"],
            eui,
            _fmt(d["joined"]),
            _fmt(d["join_attempts"]),
            _fmt(d["uplinks_sent"]),
            _fmt(d["uplinks_received"]),
            _pct(d["pdr"]),
            _fmt(d["readings_expected"]),
            _fmt(d["readings_received"]),
            _meter_cell(d, "kwh_truth"),
            _meter_cell(d, "kwh_server"),
            match,
        )
    console.print(devices)
    gateways = Table(title="Gateways", title_justify="left")
    for column in ("name", "EUI", "rx frames", "forwarded", "tx frames", "TX_ACK"):
        gateways.add_column(
            column, justify="left" if column in ("name", "EUI", "TX_ACK") else "right"
        )
    for eui, g in report["gateways"].items():
        acks = ", ".join("%s %d" % item for item in g["tx_ack"].items()) or "-"
        gateways.add_row(
            g["name"],
            eui,
            _fmt(g["rx_frames"]),
            _fmt(g["forwarded"]),
            _fmt(g["tx_frames"]),
            acks,
        )
    console.print(gateways)
    server = report["server"]
    totals = report["totals"]
    if server is not None:
        console.print(
            "server: %d uplinks, %d joins, %d MIC failures, %d FCnt replays, %d downlinks sent"
            % (
                server["uplinks"],
                server["joins"],
                server["mic_failures"],
                server["fcnt_replays"],
                server["downlinks_sent"],
            ),
            highlight=False,
        )
        console.print(
            "packet delivery ratio %s (%d of %d uplinks); readings %d of %d expected"
            % (
                _pct(totals["pdr"]),
                totals["uplinks_received"],
                totals["uplinks_sent"],
                totals["readings_received"],
                totals["readings_expected"],
            ),
            highlight=False,
        )
    else:
        console.print("server: %s (not emulated)" % report["lns"], highlight=False)
    crashed = [
        (entry["name"], entry["first_crash"])
        for group in (report["devices"], report["gateways"])
        for entry in group.values()
        if entry["crashes"]
    ]
    for name, text in crashed:
        console.print("[bold red]%s crashed[/]:\n%s" % (name, text), highlight=False)
    wall = report["wall_s"] or 0.0
    simulated = report["simulated_s"]
    boards = len(report["devices"]) + len(report["gateways"])
    if wall > 0:
        console.print(
            "simulated %s in %.1f s of wall time (%.0fx real time): %.1f uplinks/s, "
            "%.1f board-hours/s, %d events"
            % (
                _duration(simulated),
                wall,
                simulated / wall,
                totals["uplinks_sent"] / wall,
                boards * simulated / 3600.0 / wall,
                report["events"],
            ),
            highlight=False,
        )
