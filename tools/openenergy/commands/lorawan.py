"""`openenergy lorawan decode HEX`: decode a LoRaWAN 1.0.x PHYPayload into one JSON object.

Output contract (one JSON object on stdout, hex lowercase, multi-byte identifiers written most
significant byte first, the way lora-packet and ChirpStack show them):

- every frame: ``mtype`` (JoinRequest, JoinAccept, UnconfirmedDataUp, UnconfirmedDataDown,
  ConfirmedDataUp, ConfirmedDataDown, Proprietary), ``major`` (int), ``mic`` (8 hex digits),
  ``mic_valid`` (true/false, null when the key it needs was not given);
- data frames: ``dev_addr`` (8 hex digits), ``fctrl`` {``adr``, ``adr_ack_req``, ``ack``,
  ``fpending``, ``fopts_len``}, ``fcnt`` (the 16-bit wire value), ``fopts`` (hex), ``fport``
  (int or null), ``frm_payload`` (hex: plaintext when the key for its FPort was given —
  AppSKey for FPort > 0, NwkSKey for FPort 0 — else as on the wire), ``decrypted`` (true when
  frm_payload is plaintext; false without FPort). ``mic_valid`` uses the wire FCnt as the
  32-bit counter, so it is right while the session's counter is below 65536;
- JoinRequest: ``join_eui``, ``dev_eui`` (16 hex digits), ``dev_nonce`` (4 hex digits);
- JoinAccept: ``encrypted`` (true without --appkey: then ``mic`` and ``mic_valid`` are null);
  with --appkey also ``join_nonce``, ``net_id`` (6 hex digits each), ``dev_addr``,
  ``rx1_dr_offset``, ``rx2_dr``, ``rx_delay`` (wire value; 0 means 1 s), ``cflist`` (hex or null);
- Proprietary: ``payload`` (hex).
Bad hex, a bad key length or an undecodable frame: one line on stderr, exit status 2. Keys are
never printed.
"""

import binascii
import json

import lorawan
import otaa

from openenergy.cli import CliError


def register(subparsers):
    parser = subparsers.add_parser(
        "lorawan",
        help="decode LoRaWAN 1.0.x frames",
        description="LoRaWAN 1.0.x frame tools.",
    )
    sub = parser.add_subparsers(dest="lorawan_command", metavar="ACTION")
    sub.required = True
    decode = sub.add_parser(
        "decode",
        help="decode a PHYPayload (hex) into JSON",
        description="Decode a LoRaWAN 1.0.x PHYPayload given in hex; print one JSON object. "
        "With keys: check the MIC, decrypt the payload or the JoinAccept.",
    )
    decode.add_argument("hex", metavar="HEX", help="the PHYPayload in hex (spaces allowed)")
    decode.add_argument(
        "--nwkskey", metavar="KEY", help="NwkSKey (32 hex digits): MIC, FPort 0 payload"
    )
    decode.add_argument(
        "--appskey", metavar="KEY", help="AppSKey (32 hex digits): FPort > 0 payload"
    )
    decode.add_argument(
        "--appkey", metavar="KEY", help="AppKey (32 hex digits): join MIC, JoinAccept"
    )
    decode.set_defaults(func=run_decode)


def _hex_bytes(text, what):
    compact = "".join(text.split())
    if compact[:2].lower() == "0x":
        compact = compact[2:]
    if not compact:
        raise CliError(f"{what}: empty")
    try:
        return binascii.unhexlify(compact)
    except (binascii.Error, ValueError):
        raise CliError(
            f"{what}: not valid hex (expected an even number of 0-9a-f digits)"
        ) from None


def _key(text, option):
    if text is None:
        return None
    try:
        key = _hex_bytes(text, option)
    except CliError:
        raise CliError(f"{option}: expected 32 hex digits (a 16-byte key)") from None
    if len(key) != 16:
        raise CliError(f"{option}: expected 32 hex digits (a 16-byte key), got {len(key)} bytes")
    return key


def _hex(data):
    return binascii.hexlify(bytes(data)).decode()


def decode_to_dict(phy, nwkskey=None, appskey=None, appkey=None):
    """The JSON-ready dict `lorawan decode` prints (see the module docstring)."""
    frame = lorawan.decode(phy)
    out = {"mtype": lorawan.mtype_name(frame.mtype), "major": frame.major}
    if frame.is_data():
        out["dev_addr"] = f"{frame.dev_addr:08x}"
        out["fctrl"] = {
            "adr": frame.adr,
            "adr_ack_req": frame.adr_ack_req,
            "ack": frame.ack,
            "fpending": frame.fpending,
            "fopts_len": len(frame.fopts),
        }
        out["fcnt"] = frame.fcnt
        out["fopts"] = _hex(frame.fopts)
        out["fport"] = frame.fport
        payload_key = None
        if frame.fport is not None:
            payload_key = nwkskey if frame.fport == 0 else appskey
        if payload_key is not None:
            out["frm_payload"] = _hex(lorawan.decrypt_frm_payload(frame, nwkskey, appskey))
            out["decrypted"] = True
        else:
            out["frm_payload"] = _hex(frame.frm_payload)
            out["decrypted"] = False
        out["mic"] = _hex(frame.mic)
        out["mic_valid"] = None if nwkskey is None else lorawan.verify_mic(frame, nwkskey)
    elif frame.mtype == lorawan.MTYPE_JOIN_REQUEST:
        out["join_eui"] = _hex(frame.join_eui)
        out["dev_eui"] = _hex(frame.dev_eui)
        out["dev_nonce"] = f"{frame.dev_nonce:04x}"
        out["mic"] = _hex(frame.mic)
        out["mic_valid"] = None if appkey is None else otaa.verify_join_request(frame, appkey)
    elif frame.mtype == lorawan.MTYPE_JOIN_ACCEPT:
        if appkey is None:
            out["encrypted"] = True
            out["mic"] = None
            out["mic_valid"] = None
        else:
            accept = otaa.decrypt_join_accept(frame, appkey)
            out["encrypted"] = False
            out["join_nonce"] = f"{accept.join_nonce:06x}"
            out["net_id"] = f"{accept.net_id:06x}"
            out["dev_addr"] = f"{accept.dev_addr:08x}"
            out["rx1_dr_offset"] = accept.rx1_dr_offset
            out["rx2_dr"] = accept.rx2_dr
            out["rx_delay"] = accept.rx_delay
            out["cflist"] = None if accept.cflist is None else _hex(accept.cflist)
            out["mic"] = _hex(accept.mic)
            out["mic_valid"] = accept.mic_valid
    else:
        out["payload"] = _hex(frame.payload)
        out["mic"] = _hex(frame.mic)
        out["mic_valid"] = None
    return out


def run_decode(args):
    phy = _hex_bytes(args.hex, "HEX")
    nwkskey = _key(args.nwkskey, "--nwkskey")
    appskey = _key(args.appskey, "--appskey")
    appkey = _key(args.appkey, "--appkey")
    print(json.dumps(decode_to_dict(phy, nwkskey, appskey, appkey)))
    return 0
