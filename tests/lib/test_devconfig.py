"""devconfig: defaults, one error per field naming it, pins, secrets never shown, JSON round trip."""

import devconfig
from errors import ConfigError
from testkit import h, raises

APP_KEY = "2B7E151628AED2A6ABF7158809CF4F3C"
WIFI_PASSWORD = "correct-horse-battery"


def sensor(**changes):
    raw = {
        "image": "sensor",
        "dev_eui": "0011223344556677",
        "app_key": APP_KEY,
        "s0": [{"pin": "P13", "pull": "none"}],
    }
    for key in changes:
        if changes[key] is None:
            raw.pop(key, None)
        else:
            raw[key] = changes[key]
    return raw


def gateway(**changes):
    raw = {
        "image": "nanogateway",
        "server_host": "192.168.1.10",
        "wifi_ssid": "lab",
        "wifi_password": WIFI_PASSWORD,
    }
    for key in changes:
        if changes[key] is None:
            raw.pop(key, None)
        else:
            raw[key] = changes[key]
    return raw


def error(raw):
    return str(raises(ConfigError, devconfig.validate, raw))


def assert_error(raw, field):
    text = error(raw)
    assert text.startswith(field + ": "), (field, text)
    assert "\n" not in text
    assert APP_KEY not in text and APP_KEY.lower() not in text and WIFI_PASSWORD not in text
    return text


def test_sensor_defaults():
    cfg = devconfig.validate(sensor())
    assert cfg["image"] == "sensor" and cfg["log_level"] == "info" and cfg["region"] == "EU868"
    assert cfg["dev_eui"] == h("0011223344556677")
    assert cfg["join_eui"] == bytes(8)
    assert cfg["app_key"] == h(APP_KEY)
    assert cfg["single_channel"] is False and cfg["frequency_hz"] is None
    assert cfg["adr"] is True and cfg["dr"] == 5 and cfg["sf"] == 7
    assert cfg["confirmed"] == "alarms" and cfg["report_interval_s"] == 900 and cfg["history"] == 4
    assert cfg["led"] is True and cfg["deep_sleep"] is False and cfg["low_battery_mv"] == 0
    assert cfg["s0"] == [
        {
            "pin": "P13",
            "pulses_per_kwh": 1000,
            "debounce_ms": 30,
            "pull": "none",
            "flow_high": 0,
            "no_pulse_h": 0,
            "leak_h": 0,
        }
    ]
    assert cfg["tic"] is None
    assert cfg.get("nothing", 7) == 7 and "s0" in cfg and cfg.history == 4


def test_gateway_defaults():
    cfg = devconfig.validate(gateway())
    assert cfg["server_port"] == 1700 and cfg["gateway_eui"] is None
    assert cfg["frequency_hz"] == 868100000 and cfg["sf"] == 7 and cfg["bw_khz"] == 125
    assert cfg["coding_rate"] == "4/5" and cfg["tx_power_max_dbm"] == 14
    assert (
        cfg["ntp_server"] == "pool.ntp.org"
        and cfg["keepalive_s"] == 5
        and cfg["stat_interval_s"] == 30
    )
    assert cfg["tx_start_latency_us"] == 0 and cfg["latitude"] is None
    assert cfg["wifi_password"] == WIFI_PASSWORD


def test_single_channel_sensor():
    cfg = devconfig.validate(sensor(single_channel=True, frequency_hz=868100000, sf=9))
    assert (
        cfg["frequency_hz"] == 868100000
        and cfg["sf"] == 9
        and cfg["dr"] == 3
        and cfg["adr"] is False
    )
    cfg = devconfig.validate(sensor(single_channel=True, frequency_hz=869525000, dr=0))
    assert cfg["sf"] == 12
    assert_error(sensor(single_channel=True), "frequency_hz")
    assert_error(sensor(single_channel=True, frequency_hz=868100000, adr=True), "adr")
    assert_error(sensor(frequency_hz=868100000), "frequency_hz")
    assert_error(sensor(sf=7, dr=3), "dr")
    text = assert_error(sensor(single_channel=True, frequency_hz=868.1), "frequency_hz")
    assert "integer" in text


def test_tic_defaults_and_pins():
    cfg = devconfig.validate(sensor(s0=None, tic={}))
    assert cfg["tic"] == {"uart": 1, "pin": "P4", "mode": "auto"} and cfg["s0"] == []
    cfg = devconfig.validate(sensor(tic={"uart": 2, "mode": "standard"}))
    assert cfg["tic"]["pin"] == "P9"
    assert_error(sensor(s0=[{"pin": "P4"}], tic={}), "tic.pin")


def test_pin_rules():
    assert devconfig.validate(sensor(s0=[{"pin": "p20"}]))["s0"][0]["pin"] == "P20"
    assert devconfig.validate(sensor(s0=[{"pin": "P20"}]))["s0"][0]["pull"] == "up"
    for bad in ("P0", "P1", "P2", "P5", "P6", "P7", "P12", "P24", "P05", "Q3", "P", "", 13):
        assert_error(sensor(s0=[{"pin": bad}]), "s0[0].pin")
    text = assert_error(sensor(s0=[{"pin": "P14", "pull": "up"}]), "s0[0].pull")
    assert "input-only" in text
    assert_error(sensor(s0=[{"pin": "P20"}, {"pin": "P20"}]), "s0[1].pin")
    assert_error(sensor(s0=[{"pin": "P20"}, {"pin": "P21"}, {"pin": "P22"}]), "s0")
    assert_error(sensor(deep_sleep=True, s0=[{"pin": "P11"}]), "s0[0].pin")
    assert devconfig.validate(sensor(deep_sleep=True, s0=[{"pin": "P10"}]))["deep_sleep"] is True
    assert_error(sensor(s0=[]), "s0")


def test_every_sensor_field_error_names_the_field():
    cases = (
        ("image", {"image": "toaster"}),
        ("log_level", sensor(log_level="loud")),
        ("region", sensor(region="US915")),
        ("led", sensor(led="on")),
        ("dev_eui", sensor(dev_eui="001122334455667")),
        ("dev_eui", sensor(dev_eui=None)),
        ("dev_eui", sensor(dev_eui="00112233445566zz")),
        ("join_eui", sensor(join_eui=12)),
        ("app_key", sensor(app_key=APP_KEY[:-1])),
        ("app_key", sensor(app_key=APP_KEY[:-1] + "G")),
        ("app_key", sensor(app_key=None)),
        ("single_channel", sensor(single_channel=1)),
        ("frequency_hz", sensor(single_channel=True, frequency_hz=870000001)),
        ("sf", sensor(sf=6)),
        ("dr", sensor(dr=6)),
        ("adr", sensor(adr="yes")),
        ("confirmed", sensor(confirmed="maybe")),
        ("report_interval_s", sensor(report_interval_s=59)),
        ("report_interval_s", sensor(report_interval_s=65536)),
        ("history", sensor(history=256)),
        ("deep_sleep", sensor(deep_sleep=0)),
        ("low_battery_mv", sensor(low_battery_mv=-1)),
        ("s0", sensor(s0={"pin": "P13"})),
        ("s0[0]", sensor(s0=["P13"])),
        ("s0[0].pin", sensor(s0=[{}])),
        ("s0[0].pulses_per_kwh", sensor(s0=[{"pin": "P20", "pulses_per_kwh": 0}])),
        ("s0[0].debounce_ms", sensor(s0=[{"pin": "P20", "debounce_ms": 29}])),
        ("s0[0].pull", sensor(s0=[{"pin": "P20", "pull": "sideways"}])),
        ("s0[0].flow_high", sensor(s0=[{"pin": "P20", "flow_high": 65536}])),
        ("s0[0].no_pulse_h", sensor(s0=[{"pin": "P20", "no_pulse_h": True}])),
        ("s0[0].leak_h", sensor(s0=[{"pin": "P20", "leak_h": 1.5}])),
        ("s0[0].colour", sensor(s0=[{"pin": "P20", "colour": "blue"}])),
        ("tic", sensor(tic=[])),
        ("tic.uart", sensor(tic={"uart": 0})),
        ("tic.pin", sensor(tic={"pin": "P1"})),
        ("tic.mode", sensor(tic={"mode": "linky"})),
        ("tic.baud", sensor(tic={"baud": 1200})),
        ("wifi_ssid", sensor(wifi_ssid="lab")),
        ("colour", sensor(colour="red")),
    )
    for field, raw in cases:
        assert_error(raw, field)


def test_every_gateway_field_error_names_the_field():
    cases = (
        ("server_host", gateway(server_host=None)),
        ("server_host", gateway(server_host="bad host")),
        ("server_host", gateway(server_host="")),
        ("server_port", gateway(server_port=0)),
        ("server_port", gateway(server_port=65536)),
        ("gateway_eui", gateway(gateway_eui="AABBCC")),
        ("frequency_hz", gateway(frequency_hz=862999999)),
        ("frequency_hz", gateway(frequency_hz="868100000")),
        ("sf", gateway(sf=13)),
        ("bw_khz", gateway(bw_khz=62)),
        ("coding_rate", gateway(coding_rate="4/9")),
        ("tx_power_max_dbm", gateway(tx_power_max_dbm=21)),
        ("wifi_ssid", gateway(wifi_ssid=None)),
        ("wifi_ssid", gateway(wifi_ssid="x" * 33)),
        ("wifi_password", gateway(wifi_password="short")),
        ("wifi_password", gateway(wifi_password="x" * 65)),
        ("wifi_password", gateway(wifi_password=12345678)),
        ("ntp_server", gateway(ntp_server="pool ntp org")),
        ("keepalive_s", gateway(keepalive_s=11)),
        ("stat_interval_s", gateway(stat_interval_s=5)),
        ("tx_start_latency_us", gateway(tx_start_latency_us=-1)),
        ("latitude", gateway(latitude=91)),
        ("longitude", gateway(longitude="east")),
        ("altitude_m", gateway(altitude_m=1.5)),
        ("dev_eui", gateway(dev_eui="0011223344556677")),
        ("log_level", gateway(log_level=3)),
    )
    for field, raw in cases:
        assert_error(raw, field)


def test_messages_describe_the_problem_without_the_secret():
    assert (
        error(sensor(dev_eui="001122334455667"))
        == "dev_eui: expected 16 hex digits, got 15 characters"
    )
    text = error(sensor(app_key=APP_KEY + "0"))
    assert text == "app_key: expected 32 hex digits, got 33 characters"
    text = error(sensor(app_key="Z" + APP_KEY[1:]))
    assert text == "app_key: expected 32 hex digits, got a non-hex character at position 1"
    text = error(gateway(wifi_password="hunter2"))
    assert "hunter2" not in text and text.startswith("wifi_password: ")
    assert error(sensor(colour="red")) == "colour: unknown key for image sensor"
    assert error("not a table") == "config: expected a table of keys, got str"


def test_gateway_values():
    cfg = devconfig.validate(
        gateway(
            gateway_eui="aabbccfffe001122",
            latitude=48,
            longitude=2.35,
            altitude_m=35,
            wifi_password="",
            log_level="DEBUG",
        )
    )
    assert (
        cfg["gateway_eui"] == h("AABBCCFFFE001122")
        and cfg["latitude"] == 48.0
        and cfg["wifi_password"] == ""
    )
    assert cfg["log_level"] == "debug"
    assert devconfig.gateway_eui_from_mac(h("240ac4123456")) == h("240ac4fffe123456")
    raises(ConfigError, devconfig.gateway_eui_from_mac, b"\x01\x02")


def test_redaction():
    cfg = devconfig.validate(sensor())
    for text in (repr(cfg), str(cfg), str(cfg.redacted())):
        assert APP_KEY not in text and APP_KEY.lower() not in text and "***" in text
        assert "0011223344556677" in text
    assert cfg.redacted()["app_key"] == "***"
    assert cfg.to_dict()["app_key"] == APP_KEY
    gw = devconfig.validate(gateway())
    assert WIFI_PASSWORD not in repr(gw) and gw.redacted()["wifi_password"] == "***"
    assert (
        devconfig.is_secret("app_key")
        and devconfig.is_secret("nwk_s_key")
        and devconfig.is_secret("api_secret")
    )
    assert not devconfig.is_secret("dev_eui")
    assert devconfig.secrets(cfg) == [h(APP_KEY)] and devconfig.secrets(gw) == [WIFI_PASSWORD]


def test_json_round_trip():
    for raw in (
        sensor(tic={"mode": "historique"}, single_channel=True, frequency_hz=868300000),
        gateway(latitude=1.5),
    ):
        cfg = devconfig.validate(raw)
        text = devconfig.to_json(cfg)
        assert devconfig.from_json(text) == cfg
        assert devconfig.validate(cfg) == cfg
    assert str(raises(ConfigError, devconfig.from_json, "{not json")).startswith("config: ")
    assert str(raises(ConfigError, devconfig.from_json, "[]")).startswith("config: ")


def test_null_means_default():
    cfg = devconfig.validate(sensor(history=None, tic=None))
    assert cfg["history"] == 4 and cfg["tic"] is None
    raw = sensor()
    raw["history"] = None  # JSON null
    assert devconfig.validate(raw)["history"] == 4


def test_config_error_is_a_value_error():
    assert isinstance(raises(ValueError, devconfig.validate, {}), ConfigError)
