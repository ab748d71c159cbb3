"""`openenergy lorawan decode`: the exact JSON contract on the published vectors, errors, no keys."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from openenergy.cli import main

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests" / "vectors" / "lorawan.json").read_text())
DATA_KEYS = {
    "mtype",
    "major",
    "dev_addr",
    "fctrl",
    "fcnt",
    "fopts",
    "fport",
    "frm_payload",
    "decrypted",
    "mic",
    "mic_valid",
}
FCTRL_KEYS = {"adr", "adr_ack_req", "ack", "fpending", "fopts_len"}
JOIN_REQUEST_KEYS = {"mtype", "major", "join_eui", "dev_eui", "dev_nonce", "mic", "mic_valid"}
JOIN_ACCEPT_KEYS = {
    "mtype",
    "major",
    "encrypted",
    "join_nonce",
    "net_id",
    "dev_addr",
    "rx1_dr_offset",
    "rx2_dr",
    "rx_delay",
    "cflist",
    "mic",
    "mic_valid",
}


def run(capsys, *argv):
    code = main(["lorawan", "decode", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def decode_json(capsys, *argv):
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def _all_keys():
    keys = set()
    for section in ("data", "join_request", "join_accept", "session_keys"):
        for v in VECTORS[section]:
            for name in ("nwkskey", "appskey", "appkey"):
                if name in v and v[name].strip("0"):
                    keys.add(v[name])
    return keys


@pytest.mark.parametrize("v", VECTORS["data"], ids=lambda v: v["name"])
def test_data_vectors_with_keys(capsys, v):
    e = v["expect"]
    got = decode_json(capsys, v["phy"], "--nwkskey", v["nwkskey"], "--appskey", v["appskey"])
    fctrl = int(e["fctrl"], 16)
    uplink = e["mtype"].endswith("Up")
    assert got == {
        "mtype": e["mtype"],
        "major": 0,
        "dev_addr": e["dev_addr"],
        "fctrl": {
            "adr": bool(fctrl & 0x80),
            "adr_ack_req": uplink and bool(fctrl & 0x40),
            "ack": bool(fctrl & 0x20),
            "fpending": (not uplink) and bool(fctrl & 0x10),
            "fopts_len": fctrl & 0x0F,
        },
        "fcnt": e["fcnt"],
        "fopts": e["fopts"],
        "fport": e["fport"],
        "frm_payload": e["frm_payload"],
        "decrypted": True,
        "mic": e["mic"],
        "mic_valid": True,
    }
    assert set(got) == DATA_KEYS and set(got["fctrl"]) == FCTRL_KEYS


@pytest.mark.parametrize("v", VECTORS["data"], ids=lambda v: v["name"])
def test_data_vectors_without_keys(capsys, v):
    got = decode_json(capsys, v["phy"])
    phy = bytes.fromhex(v["phy"])
    wire_payload = phy[9 + len(bytes.fromhex(v["expect"]["fopts"])) : -4].hex()
    assert got["frm_payload"] == wire_payload
    assert got["decrypted"] is False
    assert got["mic_valid"] is None
    assert got["mic"] == v["expect"]["mic"]


def test_only_the_key_for_the_port_decrypts(capsys):
    v = VECTORS["data"][0]  # FPort 1
    got = decode_json(capsys, v["phy"], "--nwkskey", v["nwkskey"])
    assert got["decrypted"] is False and got["mic_valid"] is True
    got = decode_json(capsys, v["phy"], "--appskey", v["appskey"])
    assert got["decrypted"] is True and got["mic_valid"] is None
    assert got["frm_payload"] == v["expect"]["frm_payload"]
    fport0 = [x for x in VECTORS["data"] if x["expect"]["fport"] == 0][0]
    got = decode_json(capsys, fport0["phy"], "--nwkskey", fport0["nwkskey"])
    assert got["decrypted"] is True and got["frm_payload"] == fport0["expect"]["frm_payload"]
    got = decode_json(capsys, fport0["phy"], "--appskey", fport0["appskey"])
    assert got["decrypted"] is False


def test_wrong_nwkskey_gives_mic_invalid(capsys):
    v = VECTORS["data"][0]
    got = decode_json(capsys, v["phy"], "--nwkskey", "00" * 16)
    assert got["mic_valid"] is False


def test_no_fport_frame(capsys):
    v = [x for x in VECTORS["data"] if x["name"] == "lp-uplink-empty"][0]
    frame = "40f17dbe4900030000000000"  # no FPort, MIC zero
    got = decode_json(capsys, frame, "--nwkskey", v["nwkskey"], "--appskey", v["appskey"])
    assert got["fport"] is None and got["frm_payload"] == "" and got["decrypted"] is False
    assert got["mic_valid"] is False


@pytest.mark.parametrize("v", VECTORS["join_request"], ids=lambda v: v["name"])
def test_join_request_vectors(capsys, v):
    e = v["expect"]
    got = decode_json(capsys, v["phy"], "--appkey", v["appkey"])
    assert got == {
        "mtype": "JoinRequest",
        "major": 0,
        "join_eui": e["join_eui"],
        "dev_eui": e["dev_eui"],
        "dev_nonce": e["dev_nonce"],
        "mic": e["mic"],
        "mic_valid": True,
    }
    assert set(got) == JOIN_REQUEST_KEYS
    assert decode_json(capsys, v["phy"])["mic_valid"] is None
    assert decode_json(capsys, v["phy"], "--appkey", "11" * 16)["mic_valid"] is False


@pytest.mark.parametrize("v", VECTORS["join_accept"], ids=lambda v: v["name"])
def test_join_accept_vectors(capsys, v):
    e = v["expect"]
    dl = int(e["dl_settings"], 16)
    got = decode_json(capsys, v["phy"], "--appkey", v["appkey"])
    assert got == {
        "mtype": "JoinAccept",
        "major": 0,
        "encrypted": False,
        "join_nonce": e["join_nonce"],
        "net_id": e["net_id"],
        "dev_addr": e["dev_addr"],
        "rx1_dr_offset": (dl >> 4) & 7,
        "rx2_dr": dl & 15,
        "rx_delay": e["rx_delay"],
        "cflist": e["cflist"],
        "mic": e["mic"],
        "mic_valid": True,
    }
    assert set(got) == JOIN_ACCEPT_KEYS
    assert decode_json(capsys, v["phy"]) == {
        "mtype": "JoinAccept",
        "major": 0,
        "encrypted": True,
        "mic": None,
        "mic_valid": None,
    }


def test_join_accept_with_cflist(capsys):
    import otaa

    key = bytes.fromhex("00112233445566778899aabbccddeeff")
    cflist = otaa.encode_cflist([867100000, 867300000])
    phy = otaa.build_join_accept(key, 1, 0x13, 0x26000001, 2, 3, 1, cflist)
    got = decode_json(capsys, phy.hex(), "--appkey", key.hex())
    assert got["cflist"] == cflist.hex()
    assert (got["rx1_dr_offset"], got["rx2_dr"], got["rx_delay"]) == (2, 3, 1)
    assert got["net_id"] == "000013" and got["join_nonce"] == "000001"


def test_proprietary_and_hex_spelling(capsys):
    got = decode_json(capsys, "E0 AA BB CC DD 01")
    assert got == {
        "mtype": "Proprietary",
        "major": 0,
        "payload": "aa",
        "mic": "bbccdd01",
        "mic_valid": None,
    }
    v = VECTORS["data"][0]
    assert decode_json(capsys, "0x" + v["phy"].upper())["fcnt"] == v["expect"]["fcnt"]


BAD_INPUTS = [
    (["zz"], "HEX"),
    (["abc"], "HEX"),
    ([""], "HEX"),
    (["40f17dbe49"], "data frame"),
    (["c0f17dbe4900020001954378762b11ff0d"], "MType"),
    (["2000"], "phy"),
    (["40010000000f000000000000"], "FOptsLen"),
    ([VECTORS["data"][0]["phy"], "--nwkskey", "1234"], "--nwkskey"),
    ([VECTORS["data"][0]["phy"], "--appskey", "44024241ed4ce9a68c6a8bc055233fd3ff"], "--appskey"),
    ([VECTORS["data"][0]["phy"], "--nwkskey", "44024241ed4ce9a68c6a8bc055233fdX"], "--nwkskey"),
    ([VECTORS["join_request"][0]["phy"], "--appkey", "98929b92c49edba9676d646d3b6124"], "--appkey"),
]


@pytest.mark.parametrize("argv,named", BAD_INPUTS)
def test_bad_input_exit_2_one_line(capsys, argv, named):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert named in lines[0]
    assert "Traceback" not in err
    for option, value in zip(argv[1::2], argv[2::2], strict=True):
        assert option.startswith("--")
        assert value[:8].lower() not in err.lower()


def test_no_key_in_any_output(capsys):
    keys = _all_keys()
    assert len(keys) >= 4
    outputs = []
    for v in VECTORS["data"]:
        outputs.append(run(capsys, v["phy"], "--nwkskey", v["nwkskey"], "--appskey", v["appskey"]))
        outputs.append(
            run(capsys, v["phy"][:20], "--nwkskey", v["nwkskey"], "--appskey", v["appskey"])
        )
        outputs.append(
            run(capsys, v["phy"], "--nwkskey", v["nwkskey"][:30], "--appskey", v["appskey"])
        )
    for section in ("join_request", "join_accept"):
        for v in VECTORS[section]:
            outputs.append(run(capsys, v["phy"], "--appkey", v["appkey"]))
            outputs.append(run(capsys, v["phy"], "--appkey", v["appkey"] + "0"))
    assert any(code == 2 for code, _o, _e in outputs)
    for _code, out, err in outputs:
        for key in keys:
            assert key not in (out + err).lower()


def test_console_script_end_to_end():
    exe = Path(sys.executable).parent / "openenergy"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "openenergy.cli"]
    v = VECTORS["data"][0]
    proc = subprocess.run(
        cmd + ["lorawan", "decode", v["phy"], "--nwkskey", v["nwkskey"], "--appskey", v["appskey"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["frm_payload"] == "74657374"
    proc = subprocess.run(
        cmd + ["lorawan", "decode", "xyz"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
