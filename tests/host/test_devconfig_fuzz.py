"""devconfig on the host: the example files validate; fuzzed configurations raise only ConfigError,
name a real field, never echo a secret; valid ones survive the device JSON round trip."""

import json
import re
import tomllib
from pathlib import Path

import devconfig
import pytest
from errors import ConfigError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {
    "sensor": ROOT / "examples" / "sensor.toml",
    "nanogateway": ROOT / "examples" / "nanogateway.toml",
}
FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ALL_KEYS = sorted(
    set(devconfig._SENSOR_KEYS + devconfig._GATEWAY_KEYS + devconfig._S0_KEYS + devconfig._TIC_KEYS)
)
FIELD = re.compile(r"^(config|[a-z_0-9]+)(\[\d+\])?(\.[a-z_0-9]+)?: ")


def example(name):
    with open(EXAMPLES[name], "rb") as f:
        return tomllib.load(f)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_files_validate(name):
    cfg = devconfig.validate(example(name))
    assert cfg["image"] == name
    assert devconfig.load_toml(str(EXAMPLES[name])) == cfg
    assert devconfig.from_json(devconfig.to_json(cfg)) == cfg
    for secret in devconfig.secrets(cfg):
        text = secret.hex() if isinstance(secret, bytes) else secret
        assert text.lower() not in repr(cfg).lower()


def test_examples_pair_up():
    sensor = devconfig.validate(example("sensor"))
    gateway = devconfig.validate(example("nanogateway"))
    assert sensor["single_channel"] and sensor["frequency_hz"] == gateway["frequency_hz"]
    assert sensor["sf"] == gateway["sf"] and gateway["bw_khz"] == 125


def test_device_file_load(tmp_path):
    cfg = devconfig.validate(example("nanogateway"))
    path = tmp_path / "config.json"
    path.write_text(devconfig.to_json(cfg))
    assert devconfig.load(str(path)) == cfg
    path.write_text(json.dumps(dict(cfg.to_dict(), keepalive_s=60)))
    assert str(pytest.raises(ConfigError, devconfig.load, str(path)).value).startswith(
        "keepalive_s: "
    )
    assert str(
        pytest.raises(ConfigError, devconfig.load, str(tmp_path / "missing.json")).value
    ).startswith("config: ")


def test_bad_toml_is_a_config_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('image = "sensor"\nimage = "sensor"\n')
    text = str(pytest.raises(ConfigError, devconfig.load_toml, str(path)).value)
    assert text.startswith("config: invalid TOML") and "\n" not in text


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "P13",
            "P4",
            "P20",
            "auto",
            "EU868",
            "4/5",
            "0011223344556677",
            "2B7E151628AED2A6ABF7158809CF4F3C",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(ALL_KEYS) | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def check(raw):
    try:
        cfg = devconfig.validate(raw)
    except ConfigError as exc:
        text = str(exc)
        assert "\n" not in text, text
        if "unknown key" in text:
            return None
        assert FIELD.match(text), text
        root = re.split(r"[.\[:]", text, maxsplit=1)[0]
        assert (
            root in ALL_KEYS
            or root == "config"
            or (isinstance(raw, dict) and root in [str(k)[:60] for k in raw])
        ), text
        return None
    again = devconfig.from_json(devconfig.to_json(cfg))
    assert again == cfg
    return cfg


@FUZZ
@given(json_values)
def test_arbitrary_values_raise_only_config_error(raw):
    check(raw)


@FUZZ
@given(
    st.sampled_from(["sensor", "nanogateway"]),
    st.dictionaries(st.sampled_from(ALL_KEYS), json_values, max_size=8),
)
def test_arbitrary_dicts_raise_only_config_error(image, raw):
    raw["image"] = image
    check(raw)


@FUZZ
@given(st.sampled_from(["sensor", "nanogateway"]), st.data())
def test_one_bad_value_names_a_field(name, data):
    raw = example(name)
    key = data.draw(st.sampled_from(sorted(raw)))
    raw[key] = data.draw(json_values)
    check(raw)


@FUZZ
@given(st.sampled_from(["s0", "tic"]), st.data())
def test_one_bad_nested_value_names_a_field(table, data):
    raw = example("sensor")
    target = raw["s0"][0] if table == "s0" else raw["tic"]
    key = data.draw(st.sampled_from(devconfig._S0_KEYS if table == "s0" else devconfig._TIC_KEYS))
    target[key] = data.draw(json_values)
    try:
        devconfig.validate(raw)
    except ConfigError as exc:
        assert str(exc).startswith(("s0[0].", "tic.", "s0:", "s0[0]:")), str(exc)


# Symbols and digits only, at least 6: cannot occur by chance inside a message.
secret_text = st.text(alphabet="!#$%&*+=?@^~0123456789", min_size=6, max_size=70)


@FUZZ
@given(secret_text, secret_text)
def test_secrets_never_in_messages_or_repr(app_key, password):
    sensor = example("sensor")
    sensor["app_key"] = app_key
    gateway = example("nanogateway")
    gateway["wifi_password"] = password
    with pytest.raises(ConfigError) as exc:
        devconfig.validate(sensor)
    assert app_key not in str(exc.value)
    try:
        cfg = devconfig.validate(gateway)
    except ConfigError as exc:
        assert password not in str(exc)
    else:
        assert password not in repr(cfg) and password not in str(cfg.redacted())
        assert cfg.to_dict()["wifi_password"] == password


@FUZZ
@given(st.binary(min_size=16, max_size=16))
def test_any_valid_app_key_is_redacted(key):
    sensor = example("sensor")
    sensor["app_key"] = key.hex()
    cfg = devconfig.validate(sensor)
    assert cfg["app_key"] == key
    assert key.hex() not in repr(cfg).lower() and cfg.redacted()["app_key"] == "***"
