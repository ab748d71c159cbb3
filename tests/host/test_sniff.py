"""`openenergy sniff` over a real UDP socket: a gateway's datagrams built with lib/semtech.py."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import lorawan
import meterpayload
import otaa
import pytest
import semtech
from openenergy import cli, provisioning
from openenergy.commands import sniff

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=f"{ROOT / 'lib'}{os.pathsep}{ROOT / 'tools'}")
GATEWAY = bytes.fromhex("AA555A0000000001")
DEV_ADDR = 0x26011234
NWKSKEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
APPSKEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
APP_KEY = bytes.fromhex("F0E1D2C3B4A5968778695A4B3C2D1E0F")
REPORT = bytes.fromhex(
    "11010004d2038410040001e240000a00050000000f2205f0020045b3520012d687"
)  # docs/payload-format.md 9.1


@pytest.fixture
def keys(tmp_path):
    sessions = tmp_path / "sessions.toml"
    sessions.write_text(
        "[[session]]\n"
        f'dev_addr = "{DEV_ADDR:08X}"\nnwkskey = "{NWKSKEY.hex()}"\nappskey = "{APPSKEY.hex()}"\n'
        'name = "chaufferie"\n'
    )
    request = provisioning.Request(name="bureau", dev_eui="70B3D57ED0000001", app_key=APP_KEY)
    creds = provisioning.provision(request, tmp_path / "credentials").path
    return [str(sessions), str(creds)]


def rxpk(data, freq_hz=868100000, rssi=-57, lsnr_x10=75, stat=1):
    return semtech.format_rxpk(
        123456789, freq_hz, "SF7BW125", "4/5", rssi, lsnr_x10, data,
        time=semtech.rxpk_time((2024, 5, 1, 10, 0, 0, 250000)), stat=stat,
    )  # fmt: skip


def uplink(fcnt, payload=REPORT, fport=1, nwkskey=NWKSKEY, dev_addr=DEV_ADDR):
    return lorawan.build_data(
        lorawan.MTYPE_UNCONFIRMED_UP, dev_addr, fcnt, nwkskey, APPSKEY, fport, payload
    )


def stat_text():
    return semtech.format_stat(semtech.stat_time((2024, 5, 1, 10, 0, 0)), 5, 4, 4, 1000, 1, 1)


class Listener:
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "openenergy", "sniff", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=ENV,
        )
        first = self.proc.stderr.readline()
        assert first.startswith("listening on 127.0.0.1:"), first
        self.port = int(first.split()[2].rsplit(":", 1)[1])
        self.banner = first
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(5)

    def send(self, datagram):
        self.sock.sendto(datagram, ("127.0.0.1", self.port))

    def reply(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65535)
        except TimeoutError:
            return None

    def finish(self):
        out, err = self.proc.communicate(timeout=30)
        self.sock.close()
        return self.proc.returncode, out, self.banner + err


def test_acks_decodes_and_decrypts(keys):
    listener = Listener("--keys", keys[0], "--keys", keys[1], "--count", "5", "--timeout", "30")
    listener.send(semtech.encode_pull_data(0x1234, GATEWAY))
    assert listener.reply() == semtech.encode_pull_ack(0x1234)

    join = otaa.build_join_request(bytes(8), bytes.fromhex("70B3D57ED0000001"), 0x0102, APP_KEY)
    push = semtech.encode_push_data(0x0001, GATEWAY, [rxpk(join)], stat_text())
    listener.send(push)
    assert listener.reply() == semtech.encode_push_ack(0x0001)

    listener.send(b"\x02\x00\x00\x00garbage")  # bad PUSH_DATA: dropped, no ack, like the bridge
    assert listener.reply(timeout=0.5) is None

    frames = [rxpk(uplink(12)), rxpk(uplink(13, nwkskey=APPSKEY), freq_hz=868300000)]
    listener.send(semtech.encode_push_data(0x0002, GATEWAY, frames))
    assert listener.reply() == semtech.encode_push_ack(0x0002)
    listener.send(
        semtech.encode_push_data(
            0x0003, GATEWAY, [rxpk(uplink(1, dev_addr=0x26019999)), rxpk(join[:-1] + b"\x00")]
        )
    )
    assert listener.reply() == semtech.encode_push_ack(0x0003)

    code, out, err = listener.finish()
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 6
    assert lines[0].endswith(
        "gw AA555A0000000001 868.100000 SF7BW125 rssi -57 lsnr 7.5 JoinRequest "
        "dev_eui 70B3D57ED0000001 join_eui 0000000000000000 dev_nonce 258 mic ok bureau"
    )
    assert " stat rxnb 5 rxok 4 rxfw 4 ackr 100" in lines[1]
    head, decoded = lines[2].split(" mic ok chaufferie ")
    assert head.endswith("UnconfirmedDataUp dev_addr 26011234 fcnt 12 fport 1")
    assert json.loads(decoded) == meterpayload.decode(1, REPORT)
    assert "868.300000" in lines[3] and "fcnt 13 fport 1 mic bad chaufferie payload " in lines[3]
    assert lines[4].endswith(
        f"dev_addr 26019999 fcnt 1 fport 1 payload {uplink(1, dev_addr=0x26019999)[9:-4].hex()}"
    )
    assert lines[5].endswith("mic bad bureau")
    assert "dropped: " in err and err.count("\n") == 2
    for secret in (NWKSKEY, APPSKEY, APP_KEY):
        for form in (secret.hex(), secret.hex().upper()):
            assert form not in out + err


def test_json_lines_and_timeout(keys):
    listener = Listener("--keys", keys[0], "--timeout", "3", "--json")
    listener.send(
        semtech.encode_push_data(7, GATEWAY, [rxpk(uplink(3, fport=10, payload=b"\x1a\x07"))])
    )
    assert listener.reply() == semtech.encode_push_ack(7)
    listener.send(semtech.encode_push_data(8, GATEWAY, [rxpk(b"\x40\x01", stat=-1)]))
    assert listener.reply() == semtech.encode_push_ack(8)
    code, out, err = listener.finish()  # stops on --timeout
    assert code == 0, err
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["type"] == "rxpk" and first["freq"] == "868.100000" and first["lsnr"] == 7.5
    assert first["frame"]["decoded"] == {
        "kind": "command", "version": 1, "commands": [{"cmd": "get_config"}]
    }  # fmt: skip
    assert first["frame"]["mic"] == "ok" and first["frame"]["payload"] == "1a07"
    assert second["frame"] == {"error": "CRC bad"}


def test_sniffer_unit_cases():
    sessions = {DEV_ADDR: sniff.Session(DEV_ADDR, NWKSKEY, APPSKEY)}
    sniffer = sniff.Sniffer(sessions)
    reply, records, error = sniffer.handle(
        semtech.encode_pull_resp(1, semtech.format_txpk(869525000, "SF12BW125", b"x", imme=True))
    )
    assert reply is None and records == [] and "PULL_RESP" in error
    reply, records, error = sniffer.handle(semtech.encode_tx_ack(9, GATEWAY, "TOO_LATE"))
    assert reply is None and error is None
    assert sniff.format_line(records[0]).endswith("gw AA555A0000000001 TX_ACK TOO_LATE")
    # a frame whose FCnt passed 65535: the session's 32-bit counter follows it
    for fcnt in (65534, 65535, 65536, 65537):
        _, records, _ = sniffer.handle(semtech.encode_push_data(1, GATEWAY, [rxpk(uplink(fcnt))]))
        assert records[0]["frame"]["mic"] == "ok" and records[0]["frame"]["fcnt"] == fcnt & 0xFFFF
    _, records, _ = sniffer.handle(
        semtech.encode_push_data(1, GATEWAY, [rxpk(uplink(65538, fport=1, payload=b"\x11"))])
    )
    line = sniff.format_line(records[0])
    assert "payload 11 (not decoded: header: frame ends at byte 1, 6 more bytes needed)" in line
    _, records, _ = sniffer.handle(
        semtech.encode_push_data(1, GATEWAY, [rxpk(b"\xe0\x00\x00\x00\x00")])
    )
    assert "Proprietary" in sniff.format_line(records[0])


@pytest.mark.parametrize(
    "content, expected",
    [
        ('[[session]]\ndev_addr = "2601"\nnwkskey = "%s"\nappskey = "%s"\n', "session[0].dev_addr"),
        (
            '[[session]]\ndev_addr = "26011234"\nnwkskey = "%s00"\nappskey = "%s"\n',
            "session[0].nwkskey",
        ),
        (
            '[[session]]\ndev_addr = "26011234"\nnwkskey = "%s"\nappsky = "%s"\n',
            "session[0].appsky",
        ),
        ("nothing = 1\n# %s %s\n", "session: expected [[session]] tables"),
    ],
)
def test_bad_keys_files_name_the_field(tmp_path, capsys, content, expected):
    path = tmp_path / "k.toml"
    text = content.replace("%s", NWKSKEY.hex(), 1).replace("%s", APPSKEY.hex(), 1)
    path.write_text(text)
    assert (
        cli.main(["sniff", "--listen", "127.0.0.1:0", "--keys", str(path), "--timeout", "1"]) == 2
    )
    err = capsys.readouterr().err
    assert err.startswith(f"openenergy sniff: error: {expected}") and err.count("\n") == 1
    assert NWKSKEY.hex() not in err and APPSKEY.hex() not in err


def test_listen_errors(capsys):
    assert cli.main(["sniff", "--listen", "nowhere"]) == 2
    assert "--listen: expected HOST:PORT" in capsys.readouterr().err
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        assert cli.main(["sniff", "--listen", f"127.0.0.1:{port}", "--timeout", "1"]) == 2
    assert f"--listen: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_help_teaches(capsys):
    with pytest.raises(SystemExit):
        cli.main(["sniff", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "[[session]]" in out and "--count" in out
