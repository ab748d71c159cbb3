"""`openenergy sniff`: listen as the network server's UDP bridge and print what gateways send.

Gateways (the openenergy nano gateway, any Semtech UDP packet forwarder) are pointed at this
listener instead of the ChirpStack gateway bridge. It answers PUSH_DATA with PUSH_ACK and
PULL_DATA with PULL_ACK (lib/semtech.py, with the bridge's strictness: a datagram the bridge
would drop is reported on stderr and not acknowledged), and prints one line per received
frame (rxpk) and per gateway status report (stat). Frames are decoded with lib/lorawan.py;
with session keys (--keys) data frames get their MIC checked, their payload decrypted and, on
the openenergy ports, decoded with lib/meterpayload.py; with a credentials file a JoinRequest
gets its MIC checked. Keys are never printed.

Keys files (TOML, several --keys allowed):
    # session keys of joined devices, from ChirpStack (device > Activation) or the simulator
    [[session]]
    dev_addr = "26011234"
    nwkskey = "…32 hex digits…"
    appskey = "…32 hex digits…"
    name = "chaufferie"          # optional, shown on its lines
  or a credentials file written by `openenergy provision` (dev_eui, app_key: JoinRequest MIC).
"""

import argparse
import json
import socket
import sys
import time
import tomllib
from datetime import UTC, datetime

import lorawan
import maccmd
import meterpayload
import otaa
import semtech
from errors import ConfigError, OpenEnergyError

from openenergy import provisioning
from openenergy.cli import CliError

EPILOG = """\
examples:
  # listen where the gateway sends (its server_host/server_port), print every frame
  openenergy sniff --listen 0.0.0.0:1700

  # decrypt and decode the sensors' reports with their session keys
  openenergy sniff --listen 0.0.0.0:1700 --keys sessions.toml

  # check JoinRequests (MIC) with the credentials of `openenergy provision`
  openenergy sniff --listen 0.0.0.0:1700 --keys credentials/chaufferie.toml

  # stop after 5 frames or 60 s; one JSON object per line for scripts
  openenergy sniff --listen 127.0.0.1:1700 --count 5 --timeout 60 --json

a line looks like:
  10:42:07.512 gw AA555A0000000001 868.100000 SF7BW125 rssi -57 lsnr 7.5 UnconfirmedDataUp
    dev_addr 26011234 fcnt 12 fport 1 mic ok chaufferie {"kind": "report", ...}

sessions.toml:
  [[session]]
  dev_addr = "26011234"
  nwkskey = "<32 hex digits>"
  appskey = "<32 hex digits>"
  name = "chaufferie"

Only one program can listen on a port: stop the gateway bridge (or point the gateway here)
while sniffing. Gateways forget a silent server after a while; sniff acknowledges like one.
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "sniff",
        help="listen for gateways (Semtech UDP) and print the frames they forward",
        description="Play the ChirpStack gateway bridge on a UDP port: acknowledge gateways and "
        "print each frame they forward, decoded (and decrypted with session keys).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default="0.0.0.0:1700",
        help="address to listen on (default: %(default)s, the bridge's port)",
    )
    parser.add_argument(
        "--keys",
        metavar="FILE",
        action="append",
        default=[],
        help="session keys ([[session]] tables) or a credentials file; may be repeated",
    )
    parser.add_argument("--count", type=int, metavar="N", help="stop after N frames")
    parser.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(func=run)


# ---------------------------------------------------------------- keys


class Session:
    def __init__(self, dev_addr, nwkskey, appskey, name=None):
        self.dev_addr = dev_addr
        self.nwkskey = nwkskey
        self.appskey = appskey
        self.name = name
        self.fcnt32 = None

    def __repr__(self):
        return "<Session %08x %s>" % (self.dev_addr, self.name or "")


def _key(where, field, value):
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{field}: missing (32 hex digits)")
    text = provisioning.compact_hex(value)
    if len(text) != 32 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise ConfigError(f"{where}.{field}: expected 32 hex digits")
    return bytes.fromhex(text)


def load_keys(paths):
    """({dev_addr: Session}, {dev_eui: (name, app_key)}) from keys files."""
    sessions, devices = {}, {}
    for path in paths:
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except OSError as exc:
            raise ConfigError(f"--keys: cannot read {path} ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"--keys: invalid TOML in {path}: {first}") from None
        if "session" not in raw and "app_key" in raw:
            creds = provisioning.load_credentials(path)
            devices[creds.dev_eui] = (creds.name, creds.app_key)
            continue
        entries = raw.get("session")
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"session: expected [[session]] tables in {path}")
        for i, entry in enumerate(entries):
            where = f"session[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where}: expected a table in {path}")
            unknown = sorted(set(entry) - {"dev_addr", "nwkskey", "appskey", "name"})
            if unknown:
                raise ConfigError(f"{where}.{unknown[0]}: unknown key in {path}")
            addr = entry.get("dev_addr")
            text = provisioning.compact_hex(addr) if isinstance(addr, str) else ""
            if len(text) != 8 or any(c not in "0123456789abcdefABCDEF" for c in text):
                raise ConfigError(f"{where}.dev_addr: expected 8 hex digits in {path}")
            name = entry.get("name")
            if name is not None and not isinstance(name, str):
                raise ConfigError(f"{where}.name: expected a string in {path}")
            try:
                nwk = _key(where, "nwkskey", entry.get("nwkskey"))
                app = _key(where, "appskey", entry.get("appskey"))
            except ConfigError as exc:
                raise ConfigError(f"{exc} in {path}") from None
            sessions[int(text, 16)] = Session(int(text, 16), nwk, app, name)
    return sessions, devices


# ---------------------------------------------------------------- decoding


def _lsnr(x10):
    if x10 is None:
        return None
    return x10 / 10


class Sniffer:
    """Turns datagrams into acknowledgements and printable records (no socket here)."""

    def __init__(self, sessions=None, devices=None):
        self.sessions = sessions or {}
        self.devices = devices or {}

    def handle(self, datagram):
        """-> (reply datagram or None, [record dicts], error text or None)."""
        try:
            packet = semtech.decode(datagram)
        except semtech.SemtechError as exc:
            return None, [], str(exc)
        eui = packet.eui.hex().upper() if packet.eui is not None else None
        if packet.type == semtech.PULL_DATA:
            return semtech.encode_pull_ack(packet.token), [], None
        if packet.type == semtech.TX_ACK:
            return None, [{"type": "tx_ack", "gateway": eui, "error": packet.error}], None
        if packet.type != semtech.PUSH_DATA:
            return None, [], "type: %s is not sent by a gateway" % packet.name
        records = [self.rxpk_record(eui, rx) for rx in packet.rxpk]
        if packet.stat is not None:
            stat = {k: v for k, v in packet.stat.items() if v is not None}
            records.append({"type": "stat", "gateway": eui, **stat})
        return semtech.encode_push_ack(packet.token), records, None

    def rxpk_record(self, eui, rx):
        record = {
            "type": "rxpk",
            "gateway": eui,
            "time": rx["time"],
            "tmst": rx["tmst"],
            "freq": semtech.freq_text(rx["freq_hz"]),
            "datr": rx["datr"],
            "codr": rx["codr"],
            "rssi": rx["rssi"],
            "lsnr": _lsnr(rx["lsnr_x10"]),
            "stat": rx["stat"],
            "size": rx["size"],
        }
        if rx["stat"] != 1:
            record["frame"] = {"error": "CRC %s" % ("bad" if rx["stat"] == -1 else "absent")}
            return record
        record["frame"] = self.frame_record(rx["data"])
        return record

    def frame_record(self, phy):
        try:
            frame = lorawan.decode(phy)
        except OpenEnergyError as exc:
            return {"error": str(exc), "phy": phy.hex()}
        out = {"mtype": lorawan.mtype_name(frame.mtype)}
        if frame.mtype == lorawan.MTYPE_JOIN_REQUEST:
            out["dev_eui"] = frame.dev_eui.hex().upper()
            out["join_eui"] = frame.join_eui.hex().upper()
            out["dev_nonce"] = frame.dev_nonce
            known = self.devices.get(bytes(frame.dev_eui))
            out["mic"] = None
            if known is not None:
                out["name"] = known[0]
                out["mic"] = "ok" if otaa.verify_join_request(frame, known[1]) else "bad"
            return out
        if not frame.is_data():
            out["phy"] = phy.hex()
            return out
        out["dev_addr"] = "%08x" % frame.dev_addr
        out["fcnt"] = frame.fcnt
        out["fport"] = frame.fport
        out["adr"] = frame.adr
        out["ack"] = frame.ack
        out["mic"] = None
        if frame.fopts:
            out["fopts"] = self._mac(frame.fopts, frame.uplink)
        session = self.sessions.get(frame.dev_addr)
        if session is None:
            out["payload"] = frame.frm_payload.hex()
            return out
        if session.name:
            out["name"] = session.name
        full = lorawan.fcnt32(session.fcnt32, frame.fcnt)
        if full is None:
            full = frame.fcnt
        ok = lorawan.verify_mic(frame, session.nwkskey, full)
        out["mic"] = "ok" if ok else "bad"
        if not ok:
            out["payload"] = frame.frm_payload.hex()
            return out
        if frame.uplink:
            session.fcnt32 = full
        plain = lorawan.decrypt_frm_payload(frame, session.nwkskey, session.appskey, full)
        out["payload"] = plain.hex()
        if frame.fport == 0:
            out["mac"] = self._mac(plain, frame.uplink)
        elif frame.fport in meterpayload.KINDS:
            try:
                out["decoded"] = meterpayload.decode(frame.fport, plain)
            except OpenEnergyError as exc:
                out["decode_error"] = str(exc)
        return out

    @staticmethod
    def _mac(data, uplink):
        try:
            return [cmd["name"] for cmd in maccmd.decode(data, uplink)]
        except OpenEnergyError as exc:
            return ["(%s)" % exc]


def format_line(record, now=None):
    """One human-readable line for a record."""
    clock = (now or datetime.now(UTC)).strftime("%H:%M:%S.%f")[:-3]
    if record["type"] == "stat":
        fields = " ".join(
            f"{k} {record[k]}"
            for k in ("rxnb", "rxok", "rxfw", "ackr", "dwnb", "txnb", "lati", "long", "alti")
            if k in record
        )
        return f"{clock} gw {record['gateway']} stat {fields}"
    if record["type"] == "tx_ack":
        return f"{clock} gw {record['gateway']} TX_ACK {record['error']}"
    head = (
        f"{clock} gw {record['gateway']} {record['freq']} {record['datr']} "
        f"rssi {record['rssi']} lsnr {record['lsnr']}"
    )
    frame = record["frame"]
    if "error" in frame:
        return f"{head} undecodable: {frame['error']}"
    parts = [frame["mtype"]]
    if frame["mtype"] == "JoinRequest":
        parts.append(
            f"dev_eui {frame['dev_eui']} join_eui {frame['join_eui']} "
            f"dev_nonce {frame['dev_nonce']}"
        )
    elif "dev_addr" in frame:
        parts.append(f"dev_addr {frame['dev_addr']} fcnt {frame['fcnt']} fport {frame['fport']}")
        if frame.get("fopts"):
            parts.append("fopts " + ",".join(frame["fopts"]))
    if frame.get("mic") is not None:
        parts.append(f"mic {frame['mic']}")
    if frame.get("name"):
        parts.append(frame["name"])
    if "decoded" in frame:
        parts.append(json.dumps(frame["decoded"]))
    elif "decode_error" in frame:
        parts.append(f"payload {frame['payload']} (not decoded: {frame['decode_error']})")
    elif "mac" in frame:
        parts.append("mac " + ",".join(frame["mac"]))
    elif frame.get("payload"):
        parts.append(f"payload {frame['payload']}")
    elif frame.get("phy"):
        parts.append(f"phy {frame['phy']}")
    return f"{head} {' '.join(parts)}"


# ---------------------------------------------------------------- the command


def parse_listen(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise CliError(f"--listen: expected HOST:PORT (e.g. 0.0.0.0:1700), got {text!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def run(args):
    if args.count is not None and args.count < 1:
        raise CliError("--count: expected at least 1")
    if args.timeout is not None and not args.timeout > 0:
        raise CliError("--timeout: expected a number of seconds > 0")
    host, port = parse_listen(args.listen)
    sessions, devices = load_keys(args.keys)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise CliError(f"--listen: cannot listen on {args.listen} ({exc.strerror})") from None
        bound = sock.getsockname()
        print(
            f"listening on {bound[0]}:{bound[1]} (Semtech UDP); "
            f"{len(sessions)} session(s), {len(devices)} device key(s)",
            file=sys.stderr,
            flush=True,
        )
        return _loop(sock, Sniffer(sessions, devices), args)
    finally:
        sock.close()


def _loop(sock, sniffer, args):
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    frames = 0
    while args.count is None or frames < args.count:
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and wait <= 0:
            break
        sock.settimeout(wait)
        try:
            datagram, addr = sock.recvfrom(65535)
        except TimeoutError:
            break
        reply, records, error = sniffer.handle(datagram)
        if reply is not None:
            try:
                sock.sendto(reply, addr)
            except OSError as exc:
                print(f"to {addr[0]}:{addr[1]}: ack not sent ({exc.strerror})", file=sys.stderr)
        if error is not None:
            print(f"from {addr[0]}:{addr[1]}: dropped: {error}", file=sys.stderr, flush=True)
        for record in records:
            print(json.dumps(record) if args.json else format_line(record), flush=True)
            if record["type"] == "rxpk":
                frames += 1
    return 0
