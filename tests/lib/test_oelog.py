"""oelog: levels, lazy formatting, sinks, and secrets redacted from every line."""

import oelog
from testkit import h

APP_KEY_HEX = "2B7E151628AED2A6ABF7158809CF4F3C"


class Capture:
    def __init__(self):
        self.lines = []

    def __call__(self, level, line):
        self.lines.append((level, line))


class Exploding:
    """Formatting this object raises, as a buggy __repr__ would."""

    def __str__(self):
        raise RuntimeError("boom")

    __repr__ = __str__


def setup(level="debug"):
    oelog.reset()
    sink = Capture()
    oelog.configure(level=level, sink=sink)
    return sink


def test_levels_filter_and_format():
    sink = setup("warning")
    log = oelog.get("join")
    log.debug("d %d", 1)
    log.info("i %d", 2)
    log.warning("w %d", 3)
    log.error("e %s", "x")
    log.log(oelog.ERROR, "raw %d%%", 5)
    assert sink.lines == [
        (oelog.WARNING, "W join: w 3"),
        (oelog.ERROR, "E join: e x"),
        (oelog.ERROR, "E join: raw 5%"),
    ]
    assert oelog.get("join") is log
    assert oelog.enabled(oelog.ERROR) and not oelog.enabled(oelog.INFO)


def test_level_names_from_config():
    for name, value in (("debug", 10), ("INFO", 20), ("warning", 30), ("Error", 40), ("off", 100)):
        assert oelog.level_of(name) == value
    sink = setup("off")
    oelog.get("x").error("nothing")
    assert sink.lines == []
    try:
        oelog.level_of("chatty")
    except ValueError as exc:
        assert str(exc).startswith("log_level:")
    else:
        raise AssertionError("no ValueError")


def test_formatting_only_when_enabled():
    sink = setup("info")
    calls = []

    class Counted:
        def __str__(self):
            calls.append(1)
            return "counted"

    oelog.get("lazy").debug("value %s", Counted())
    assert calls == [] and sink.lines == []
    oelog.get("lazy").info("value %s", Counted())
    assert calls == [1] and sink.lines == [(oelog.INFO, "I lazy: value counted")]


def test_message_without_args_is_not_formatted():
    sink = setup()
    oelog.get("m").info("100% sure")
    assert sink.lines == [(oelog.INFO, "I m: 100% sure")]


def test_secrets_redacted_in_every_form():
    sink = setup()
    key = h(APP_KEY_HEX)
    oelog.add_secret(key)
    oelog.add_secret("hunter22")
    log = oelog.get("otaa")
    log.info("key %s", APP_KEY_HEX)
    log.info("key %s", APP_KEY_HEX.lower())
    log.info("raw %s", key)
    log.info("wifi password is hunter22!")
    log.info("ok %s", "0011223344556677")
    texts = [line for _, line in sink.lines]
    for text in texts[:4]:
        assert "***" in text, text
        assert (
            APP_KEY_HEX not in text and APP_KEY_HEX.lower() not in text and "hunter22" not in text
        )
    assert texts[2] == "I otaa: raw b'***'"
    assert texts[3] == "I otaa: wifi password is ***!"
    assert texts[4] == "I otaa: ok 0011223344556677"
    assert oelog.redact("x%sy" % APP_KEY_HEX) == "x***y"


def test_short_or_odd_secrets_are_ignored():
    setup()
    oelog.add_secret("")
    oelog.add_secret("abc")
    oelog.add_secret(None)
    oelog.add_secret(1234)
    assert oelog.redact("abc and 1234") == "abc and 1234"


def test_exceptions_logged_on_one_line_and_redacted():
    sink = setup()
    oelog.add_secret("s3cr3t-value")
    try:
        raise ValueError("bad key s3cr3t-value")
    except ValueError as exc:
        oelog.get("cfg").exc(exc, "loading %s", "config.json")
    assert sink.lines == [(oelog.ERROR, "E cfg: loading config.json: ValueError: bad key ***")]
    oelog.get("cfg").exc(OSError(2), "100% fail")
    assert sink.lines[-1][1].startswith("E cfg: 100% fail: OSError")


def test_logging_never_raises():
    sink = setup()
    log = oelog.get("safe")
    log.info("%d items", "not a number")
    log.info("%s", Exploding())
    assert len(sink.lines) == 2 and "bad log format" in sink.lines[0][1]

    def broken_sink(level, line):
        raise OSError("disk full")

    oelog.configure(sink=broken_sink)
    log.error("still fine")


def test_default_output_is_print():
    oelog.reset()
    oelog.get("p").debug("hidden by the default INFO level")
    oelog.get("p").info("printed")  # goes to stdout; must not raise
