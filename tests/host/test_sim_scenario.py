"""Scenario files: durations, replicas, generated identities, and errors that name the field."""

import pytest
from errors import ConfigError
from openenergy.sim import scenario


@pytest.mark.parametrize(
    "text, us",
    [
        ("90s", 90_000_000),
        ("15m", 900_000_000),
        ("6h", 21_600_000_000),
        ("2d", 172_800_000_000),
        ("250ms", 250_000),
        (30, 30_000_000),
        ("1.5s", 1_500_000),
    ],
)
def test_durations(text, us):
    assert scenario.parse_duration_us(text) == us


@pytest.mark.parametrize("bad", ["15 minutes", "-3s", "", True, "h"])
def test_bad_durations_name_the_field(bad):
    with pytest.raises(ConfigError, match="^fault.at: expected a duration"):
        scenario.parse_duration_us(bad, "fault.at")


def _minimal(**extra):
    data = {
        "seed": 7,
        "duration": "1h",
        "gateway": [{"name": "gw", "position": [0, 0]}],
        "device": [{"name": "m", "position": [10, 0], "count": 3}],
    }
    data.update(extra)
    return data


def test_replicas_get_distinct_names_macs_and_positions():
    sc = scenario.parse(_minimal())
    names = [b.name for b in sc.boards()]
    assert names == ["gw", "m-1", "m-2", "m-3"]
    assert len({b.mac for b in sc.boards()}) == 4
    assert len({b.position for b in sc.devices}) == 3
    assert sc.devices[0].lora_mac[3:5] == b"\xff\xfe" and len(sc.devices[0].lora_mac) == 8


def test_identities_are_deterministic_per_seed():
    a, b, c = (
        scenario.parse(_minimal()),
        scenario.parse(_minimal()),
        scenario.parse(_minimal(seed=8)),
    )
    assert [x.mac for x in a.boards()] == [x.mac for x in b.boards()]
    assert [x.mac for x in a.boards()] != [x.mac for x in c.boards()]


def test_cli_seed_and_duration_override_the_file():
    sc = scenario.parse(_minimal(), seed=99, duration="2d")
    assert sc.seed == 99 and sc.duration_us == 172_800_000_000


@pytest.mark.parametrize(
    "change, message",
    [
        ({"device": [{"name": "m", "position": [1]}]}, r"^device 'm'.position: expected \[x, y\]"),
        ({"device": [{"name": "m", "colour": "red"}]}, r"^device\[0\]: unknown key 'colour'"),
        ({"device": [{"name": "gw"}]}, r"^device 'gw'.name: 'gw' is used twice"),
        ({"fault": [{"kind": "meteor", "at": "1h"}]}, r"^fault\[0\].kind: expected one of"),
        (
            {"fault": [{"kind": "power_cut", "target": "nobody"}]},
            r"^fault\[0\].target: expected the name of a board",
        ),
        (
            {"fault": [{"kind": "radio_loss", "probability": 2}]},
            r"^fault\[0\].probability: expected a number 0..1",
        ),
        (
            {"fault": [{"kind": "server_outage", "target": "gw"}]},
            r"^fault\[0\].target: a server_outage has no target",
        ),
        ({"seed": "x"}, r"^seed: expected an integer"),
        ({"extra": 1}, r"^scenario: unknown key 'extra'"),
    ],
)
def test_errors_name_the_field(change, message):
    with pytest.raises(ConfigError, match=message):
        scenario.parse(_minimal(**change))


def test_faults_parsed_with_times():
    sc = scenario.parse(
        _minimal(
            fault=[
                {"kind": "power_cut", "target": "m-2", "at": "30m", "duration": "90s"},
                {"kind": "clock_drift", "target": "gw", "ppm": 40},
            ]
        )
    )
    cut, drift = sc.faults
    assert (cut.kind, cut.target, cut.at_us, cut.duration_us) == (
        "power_cut",
        "m-2",
        1_800_000_000,
        90_000_000,
    )
    assert drift.ppm == 40.0 and drift.duration_us == sc.duration_us


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        scenario.load(tmp_path / "nope.toml")
