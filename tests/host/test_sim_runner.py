"""The scenario runner and `openenergy sim run`: real images end to end through the nano gateway
to the server emulator, the report, determinism, faults at their time, errors that name the
field, exit codes."""

import json
import socket
import textwrap
from pathlib import Path

import pytest
from errors import ConfigError
from openenergy import cli
from openenergy.sim import report as report_mod
from openenergy.sim import scenario
from openenergy.sim.runner import LNS_HOST_NAME, Runner, parse_lns_url

S = 1_000_000
MIN = 60 * S
FIXTURES = Path(__file__).resolve().parent.parent / "sim_fixtures"

SMALL = """
seed = 11
duration = "9m"
stagger = "20s"

[[gateway]]
name = "gw"
position = [0, 0]

[[device]]
name = "m"
position = [20, 5]
config = { report_interval_s = 60 }
meter = { kind = "s0", channel = 1, load_w = 2400 }
"""


def write(tmp_path, text, name="sc.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path, text, **overrides):
    return scenario.load(write(tmp_path, text), **overrides)


def run(tmp_path, text, **options):
    sc = load(tmp_path, text)
    with Runner(sc, **options) as runner:
        return runner.run(), runner


def only_device(report):
    (eui, device), *rest = report["devices"].items()
    assert not rest
    return eui, device


def test_real_images_join_and_deliver_every_reading(tmp_path):
    report, runner = run(tmp_path, SMALL)
    for key in ("seed", "simulated_s", "wall_s", "server", "devices", "gateways", "totals"):
        assert key in report
    assert report["seed"] == 11 and report["simulated_s"] == 540.0
    server = report["server"]
    for key in ("uplinks", "joins", "mic_failures", "fcnt_replays", "downlinks_sent"):
        assert isinstance(server[key], int)
    assert server["joins"] == 1 and server["mic_failures"] == 0 and server["fcnt_replays"] == 0
    eui, dev = only_device(report)
    spec = runner.scenario.board("m")
    assert eui == spec.lora_mac.hex()  # DevEUI = the board's LoRa MAC
    for key in ("name", "joined", "join_attempts", "uplinks_sent", "uplinks_received"):
        assert key in dev
    assert dev["name"] == "m" and dev["joined"] and dev["join_attempts"] == 1
    assert dev["uplinks_received"] >= 6 and dev["uplinks_sent"] >= dev["uplinks_received"]
    # readings taken every minute; those of the last 5 minutes are not expected yet
    assert dev["readings_expected"] >= 3
    assert dev["readings_received"] == dev["readings_expected"]
    assert dev["readings_missing"] == []
    assert dev["meter_index_truth"] == dev["meter_index_server"] > 0
    assert dev["meter_unit"] == "pulses"
    (gw_eui, gw), *_ = report["gateways"].items()
    assert gw_eui == bytes(spec.mac[:0]).hex() + runner.plans[0].eui.hex()
    assert gw["rx_frames"] >= dev["uplinks_received"] + 1  # + the JoinRequest
    assert gw["forwarded"] == gw["rx_frames"]
    assert gw["tx_frames"] >= 1 and sum(gw["tx_ack"].values()) >= gw["tx_frames"]
    totals = report["totals"]
    assert totals["uplinks_received"] == server["uplinks"] == dev["uplinks_received"]
    assert totals["pdr"] == dev["pdr"]
    assert report["radio"]["frames"] >= gw["rx_frames"] + gw["tx_frames"]
    assert dev["crashes"] == 0 and gw["crashes"] == 0


def test_generated_identities_and_base_configuration(tmp_path):
    sc = load(tmp_path, SMALL)
    with Runner(sc) as runner:
        gw, dev = runner.plans
        assert dev.raw_config["single_channel"] is True
        assert dev.raw_config["frequency_hz"] == gw.config["frequency_hz"] == 868100000
        assert dev.raw_config["sf"] == 7 and dev.raw_config["adr"] is False
        assert dev.raw_config["s0"] == [{"pin": "P10", "pull": "up", "pulses_per_kwh": 1000}]
        assert gw.raw_config["server_host"] == LNS_HOST_NAME
        assert gw.raw_config["server_port"] == runner.lns_address[1]
        flash = json.loads(dev.board.read_file("/flash/config.json"))
        assert flash["dev_eui"] == sc.board("m").lora_mac.hex().upper()
        assert flash["app_key"] == dev.identity[2].hex().upper()
        assert runner.server.devices[dev.identity[0].hex()]["name"] == "m"
    with Runner(load(tmp_path, SMALL)) as again:
        assert again.plans[1].identity == dev.identity
    with Runner(load(tmp_path, SMALL.replace("seed = 11", "seed = 12"))) as other:
        assert other.plans[1].identity[1:] != dev.identity[1:]


def test_same_seed_same_report_and_trace(tmp_path):
    traces = []
    reports = []
    for k in range(2):
        trace = tmp_path / ("t%d.jsonl" % k)
        report, _ = run(tmp_path, SMALL.replace('"9m"', '"6m"'), trace=str(trace))
        traces.append(trace.read_bytes())
        reports.append(report)
    assert traces[0] == traces[1] and len(traces[0]) > 10000
    assert report_mod.without_wall(reports[0]) == report_mod.without_wall(reports[1])
    trace = tmp_path / "t2.jsonl"
    run(tmp_path, SMALL.replace('"9m"', '"6m"').replace("seed = 11", "seed = 5"), trace=str(trace))
    assert trace.read_bytes() != traces[0]


ONE_S0 = (
    "report_interval_s = 60 }",
    'report_interval_s = 60, s0 = [{ pin = "P13", pull = "none" }] }',
)


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            [("report_interval_s = 60", "report_interval_s = 5")],
            r"^device 'm' config: report_interval_s: expected an integer 60\.\.65535, got 5$",
        ),
        (
            [("position = [0, 0]", "position = [0, 0]\nconfig = { sf = 13 }")],
            r"^gateway 'gw' config: sf: expected an integer 7\.\.12",
        ),
        (
            [ONE_S0, ("channel = 1", "channel = 2")],
            r"^device 'm'.meter.channel: the device configuration has no s0 input 2",
        ),
        (
            [('kind = "s0", channel = 1,', 'kind = "tic",'), ONE_S0],
            r"^device 'm'.meter.kind: the device configuration has no \[tic\] input",
        ),
        ([("load_w = 2400", "watts = 2400")], r"^device 'm'.meter.watts: unknown key"),
        (
            [("position = [20, 5]", 'position = [20, 5]\nimage = "nope"')],
            r"^device 'm'.image: expected 'sensor', 'nanogateway' or a folder",
        ),
        (
            [("report_interval_s = 60", 'report_interval_s = 60, app_key = "00"')],
            r"^device 'm' config: app_key: expected 32 hex digits",
        ),
        (
            [
                ("report_interval_s = 60", 'report_interval_s = 60, dev_eui = "70B3D57ED0000001"'),
                (
                    "[[device]]",
                    '[[device]]\nname = "twin"\nconfig = { dev_eui = "70b3d57ed0000001" }\n'
                    'meter = { kind = "s0", load_w = 5 }\n\n[[device]]',
                ),
            ],
            r"^device 'm' config: dev_eui: 70b3d57ed0000001 is already the DevEUI of 'twin'",
        ),
    ],
)
def test_bad_scenarios_raise_config_errors_naming_the_field(tmp_path, changes, message):
    text = SMALL
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    sc = load(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        Runner(sc)


def test_scenario_groups_and_repeated_power_cuts(tmp_path):
    text = SMALL.replace('name = "m"', 'name = "m"\ncount = 3') + textwrap.dedent(
        """
        [[fault]]
        kind = "power_cut"
        target = "m"
        count = 4
        at = "1m"
        within = "5m"
        duration = "10s"
        """
    )
    sc = load(tmp_path, text)
    cuts = [f for f in sc.faults if f.kind == "power_cut"]
    assert len(cuts) == 12 and {f.target for f in cuts} == {"m-1", "m-2", "m-3"}
    assert all(MIN <= f.at_us < 6 * MIN and f.duration_us == 10 * S for f in cuts)
    assert [f.at_us for f in load(tmp_path, text).faults] == [f.at_us for f in sc.faults]
    powers = sorted(b.power_on_us for b in sc.devices)
    assert len(set(powers)) == 3 and powers[-1] < 20 * S
    with pytest.raises(ConfigError, match=r"^fault\[0\].count: only a power_cut repeats"):
        load(tmp_path, text.replace('kind = "power_cut"', 'kind = "wifi_outage"'))


FAULTS = (
    SMALL
    + """
[[fault]]
kind = "power_cut"
target = "m"
at = "3m"
duration = "30s"

[[fault]]
kind = "wifi_outage"
target = "gw"
at = "4m"
duration = "1m"

[[fault]]
kind = "server_outage"
at = "5m30s"
duration = "1m"

[[fault]]
kind = "radio_loss"
target = "gw"
at = "7m"
duration = "1m"
probability = 1.0

[[fault]]
kind = "clock_drift"
target = "m"
at = "8m"
ppm = 30
"""
)


def test_faults_are_applied_at_their_time(tmp_path):
    sc = load(tmp_path, FAULTS.replace('at = "5m30s"', "at = 330"))
    with Runner(sc, capture_trace=True) as runner:
        report = runner.run()
        records = runner.world.trace.records
        lns = runner.server
    faults = [(r["t"], r["fault"], r["phase"]) for r in records if r["kind"] == "fault"]
    assert faults == [
        (3 * MIN, "power_cut", "start"),
        (3 * MIN + 30 * S, "power_cut", "end"),
        (4 * MIN, "wifi_outage", "start"),
        (5 * MIN, "wifi_outage", "end"),
        (330 * S, "server_outage", "start"),
        (390 * S, "server_outage", "end"),
        (7 * MIN, "radio_loss", "start"),
        (8 * MIN, "radio_loss", "end"),
        (8 * MIN, "clock_drift", "start"),
    ]
    offs = [r["t"] for r in records if r["kind"] == "power_off" and r["board"] == "m"]
    ons = [r["t"] for r in records if r["kind"] == "power_on" and r["board"] == "m"]
    assert offs == [3 * MIN] and ons[-1] == 3 * MIN + 30 * S
    links = [(r["t"], r["up"]) for r in records if r["kind"] == "wifi_link"]
    assert links == [(4 * MIN, False), (5 * MIN, True)]
    drops = [r["t"] for r in records if r["kind"] == "udp_drop" and r["reason"] == "receiver_down"]
    assert drops and all(330 * S <= t < 390 * S for t in drops) and lns.online
    lost = [
        r
        for r in records
        if r["kind"] == "radio_frame"
        and 7 * MIN <= r["end_us"] < 8 * MIN
        and any(x["radio"] == "gw" for x in r["receivers"])
    ]
    assert lost and all(
        x["outcome"] != "received" for r in lost for x in r["receivers"] if x["radio"] == "gw"
    )
    _, dev = only_device(report)
    assert dev["power_cuts"] == 1 and dev["boots"] == 2
    # 2.4 kW at 1000 imp/kWh: a pulse every 1.5 s, 20 of them during the 30 s cut
    assert 18 <= dev["meters"][0]["pulses_unpowered"] <= 21
    assert report["faults"]["count"] == {
        "power_cut": 1,
        "wifi_outage": 1,
        "server_outage": 1,
        "radio_loss": 1,
        "clock_drift": 1,
    }


def test_fixture_image_device_uses_its_own_config(tmp_path):
    text = f"""
    seed = 3
    duration = "5m"
    stagger = "5s"

    [[gateway]]
    name = "gw"

    [[device]]
    name = "fx"
    image = "{FIXTURES / "lorawan_device"}"
    position = [10, 0]
    config = {{ single_channel_hz = 868100000, wakes = 2, extras = false }}
    """
    report, runner = run(tmp_path, text)
    plan = runner.plans[1]
    assert not plan.uses_devconfig
    assert plan.identity[1].hex() == "70b3d57ed0000001"  # app_eui of the fixture's config.json
    eui, dev = only_device(report)
    assert eui == runner.scenario.board("fx").lora_mac.hex()
    assert dev["joined"] and dev["joins"] == 1
    assert dev["uplinks_sent"] == 2 and dev["uplinks_received"] == 2
    assert dev["readings_expected"] is None and dev["meters"] == []
    lines = [line for _, line in plan.board.console]
    assert "done" in lines, lines


def test_external_lns_gets_the_gateways_datagrams(tmp_path):
    bridge = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bridge.bind(("127.0.0.1", 0))
    bridge.setblocking(False)
    port = bridge.getsockname()[1]
    try:
        sc = load(tmp_path, SMALL.replace('"9m"', '"30s"'))
        with Runner(sc, lns="udp://localhost:%d" % port) as runner:
            report = runner.run()
            eui = runner.plans[0].eui
        assert runner.server is None and report["server"] is None
        assert report["lns"] == "udp://localhost:%d" % port
        _, dev = only_device(report)
        assert dev["uplinks_received"] is None
        got = []
        while True:
            try:
                got.append(bridge.recv(4096))
            except BlockingIOError:
                break
        pulls = [d for d in got if len(d) == 12 and d[3] == 2]
        assert pulls and all(d[4:12] == eui for d in pulls)
    finally:
        bridge.close()
    with pytest.raises(ConfigError, match="server_outage needs the server emulator"):
        Runner(load(tmp_path, FAULTS), lns="udp://127.0.0.1:%d" % port)


@pytest.mark.parametrize(
    "text, ok",
    [
        ("udp://127.0.0.1:1700", ("127.0.0.1", 1700)),
        ("udp://localhost:17", ("localhost", 17)),
        ("http://x:1700", None),
        ("udp://host", None),
        ("udp://host:0", None),
    ],
)
def test_parse_lns_url(text, ok):
    if ok is None:
        with pytest.raises(ConfigError, match="^--lns: expected udp://HOST:PORT"):
            parse_lns_url(text)
    else:
        assert parse_lns_url(text) == ok


def test_cli_run_writes_report_and_plot(tmp_path, capsys):
    path = write(tmp_path, SMALL)
    out = tmp_path / "out" / "r.json"
    png = tmp_path / "out" / "p.png"
    code = cli.main(
        ["sim", "run", str(path), "--until", "6m", "--seed", "4", "--json", str(out),
         "--plot", str(png)]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(out.read_text())
    assert report["seed"] == 4 and report["simulated_s"] == 360.0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Devices" in captured.out and "Gateways" in captured.out
    assert "packet delivery ratio" in captured.out and "board-hours/s" in captured.out
    assert "\x1b[" not in captured.err  # no progress bar when not on a terminal


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--until", "soon"], "duration: expected a duration"),
        (["--lns", "tcp://x:1"], "--lns: expected udp://HOST:PORT"),
        (["--lns", "udp://192.0.2.1:1700"], "not on this machine's loopback"),
        (["--seed", "x"], None),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    path = write(tmp_path, SMALL)
    try:
        code = cli.main(["sim", "run", str(path)] + argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    if message is not None:
        assert message in err and len(err.strip().splitlines()) == 1


def test_cli_missing_scenario_and_bad_config(tmp_path, capsys):
    assert cli.main(["sim", "run", str(tmp_path / "none.toml")]) == 2
    assert "no such file" in capsys.readouterr().err
    path = write(tmp_path, SMALL.replace("report_interval_s = 60", "report_interval_s = 5"))
    assert cli.main(["sim", "run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "openenergy sim: error: device 'm' config: report_interval_s: "
        "expected an integer 60..65535, got 5"
    )


def test_sim_board_subcommand_is_registered_when_its_module_imports():
    parser = cli.build_parser()
    sim = parser._subparsers._group_actions[0].choices["sim"]
    choices = sim._subparsers._group_actions[0].choices
    assert "run" in choices
    try:
        import openenergy.sim.pty_board  # noqa: F401
    except ImportError:
        assert "board" not in choices
    else:
        assert "board" in choices


@pytest.mark.slow
def test_demo_building_day_every_reading_reaches_the_server():
    root = Path(__file__).resolve().parents[2]
    sc = scenario.load(root / "examples" / "building.toml")
    with Runner(sc) as runner:
        report = runner.run()
    assert report["server"]["fcnt_replays"] == 0
    for dev in report["devices"].values():
        assert dev["joined"] and dev["crashes"] == 0, dev
        assert dev["readings_expected"] >= 90, dev
        assert dev["readings_received"] == dev["readings_expected"], dev
        assert dev["meter_index_truth"] == dev["meter_index_server"], dev
    print("demo wall time %.1f s, %d events" % (report["wall_s"], report["events"]))
