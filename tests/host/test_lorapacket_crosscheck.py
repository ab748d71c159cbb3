"""Cross-check lib/lorawan + lib/otaa against npm lora-packet on 1,100 seeded random cases.

Python builds every frame; one node run (tests/host/lorapacket_check.mjs) decodes it, checks the
MIC, decrypts it and builds the same frame from the same fields with lora-packet. We compare
field by field, and lora-packet's encoding byte for byte with ours.
"""

import json
import random
import shutil
import subprocess
from pathlib import Path

import lorawan
import otaa
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "host" / "lorapacket_check.mjs"
SEED = 20240611
COUNTS = {"data": 700, "join_request": 150, "join_accept": 150, "session_keys": 100}

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / "node_modules" / "lora-packet").is_dir(),
    reason="node and npm lora-packet are needed (make setup installs them)",
)


def _data_case(rng):
    mtype = rng.choice((2, 3, 4, 5))
    uplink = mtype % 2 == 0
    nwk = rng.randbytes(16)
    app = rng.randbytes(16)
    dev_addr = rng.getrandbits(32)
    fcnt32 = rng.choice((rng.getrandbits(16), rng.getrandbits(32), 0, 0xFFFF, 0x10000, 0xFFFFFFFF))
    shape = rng.random()
    if shape < 0.15:
        fport, payload = None, b""
    elif shape < 0.3:
        fport, payload = 0, rng.randbytes(rng.randrange(0, 30))
    else:
        fport, payload = (
            rng.randrange(1, 256),
            rng.randbytes(rng.choice((0, 1, 15, 16, 17, rng.randrange(0, 222)))),
        )
    fopts = b"" if fport == 0 else rng.randbytes(rng.choice((0, 0, 1, 5, 15)))
    flags = {
        "adr": rng.random() < 0.5,
        "adr_ack_req": uplink and rng.random() < 0.5,
        "ack": rng.random() < 0.5,
        "fpending": (not uplink) and rng.random() < 0.5,
    }
    phy = lorawan.build_data(
        mtype, dev_addr, fcnt32, nwk, app, fport, payload, fopts=fopts, **flags
    )
    return dict(
        kind="data",
        phy=phy.hex(),
        nwkskey=nwk.hex(),
        appskey=app.hex(),
        mtype=mtype,
        dev_addr=f"{dev_addr:08x}",
        fcnt32=fcnt32,
        fport=fport,
        payload=payload.hex(),
        fopts=fopts.hex(),
        **flags,
    )


def _join_request_case(rng):
    key = rng.randbytes(16)
    join_eui = rng.randbytes(8)
    dev_eui = rng.randbytes(8)
    dev_nonce = rng.getrandbits(16)
    phy = otaa.build_join_request(join_eui, dev_eui, dev_nonce, key)
    return dict(
        kind="join_request",
        phy=phy.hex(),
        appkey=key.hex(),
        join_eui=join_eui.hex(),
        dev_eui=dev_eui.hex(),
        dev_nonce=dev_nonce,
    )


def _join_accept_case(rng):
    key = rng.randbytes(16)
    join_nonce = rng.getrandbits(24)
    net_id = rng.getrandbits(24)
    dev_addr = rng.getrandbits(32)
    rx1_dr_offset = rng.randrange(8)
    rx2_dr = rng.randrange(16)
    rx_delay = rng.randrange(16)
    freqs = []
    if rng.random() < 0.5:
        freqs = [rng.randrange(0, 1 << 24) * 100 for _ in range(rng.randrange(0, 6))]
    cflist = otaa.encode_cflist(freqs) if (freqs or rng.random() < 0.3) else None
    phy = otaa.build_join_accept(
        key, join_nonce, net_id, dev_addr, rx1_dr_offset, rx2_dr, rx_delay, cflist
    )
    return dict(
        kind="join_accept",
        phy=phy.hex(),
        appkey=key.hex(),
        join_nonce=join_nonce,
        net_id=net_id,
        dev_addr=f"{dev_addr:08x}",
        dl_settings=(rx1_dr_offset << 4) | rx2_dr,
        rx1_dr_offset=rx1_dr_offset,
        rx2_dr=rx2_dr,
        rx_delay=rx_delay,
        cflist=cflist.hex() if cflist is not None else "",
        freqs=(freqs + [0] * 5)[:5] if cflist is not None else [],
    )


def _session_keys_case(rng):
    key = rng.randbytes(16)
    join_nonce, net_id, dev_nonce = rng.getrandbits(24), rng.getrandbits(24), rng.getrandbits(16)
    nwk, app = otaa.derive_session_keys(key, join_nonce, net_id, dev_nonce)
    return dict(
        kind="session_keys",
        appkey=key.hex(),
        join_nonce=join_nonce,
        net_id=net_id,
        dev_nonce=dev_nonce,
        nwkskey=nwk.hex(),
        appskey=app.hex(),
    )


MAKERS = {
    "data": _data_case,
    "join_request": _join_request_case,
    "join_accept": _join_accept_case,
    "session_keys": _session_keys_case,
}


def _mtype_text(mtype):
    return {
        2: "Unconfirmed Data Up",
        3: "Unconfirmed Data Down",
        4: "Confirmed Data Up",
        5: "Confirmed Data Down",
    }[mtype]


def _check_data(c, r):
    assert r["mtype"] == _mtype_text(c["mtype"])
    assert r["dir"] == ("up" if c["mtype"] % 2 == 0 else "down")
    assert r["dev_addr"] == c["dev_addr"]
    assert r["fcnt"] == c["fcnt32"] & 0xFFFF
    assert r["fport"] == c["fport"]
    assert r["fopts"] == c["fopts"]
    for flag in ("adr", "ack"):
        assert r[flag] == c[flag], flag
    if c["mtype"] % 2 == 0:
        assert r["adr_ack_req"] == c["adr_ack_req"]
        assert r["fpending"] is False  # bit 4: ClassB on uplinks, never set here
    else:
        assert r["fpending"] == c["fpending"]
        assert r["adr_ack_req"] is False
    assert r["mic"] == c["phy"][-8:]
    assert r["mic_ok"] is True
    assert r["mic_ok_wrong_key"] is False
    assert r["plaintext"] == c["payload"]
    assert r["built"] == c["phy"]
    # Our own decoder on the same frame, for completeness.
    f = lorawan.decode(bytes.fromhex(c["phy"]))
    assert lorawan.verify_mic(f, bytes.fromhex(c["nwkskey"]), c["fcnt32"])
    plain = lorawan.decrypt_frm_payload(
        f, bytes.fromhex(c["nwkskey"]), bytes.fromhex(c["appskey"]), c["fcnt32"]
    )
    assert plain.hex() == c["payload"]


def _check_join_request(c, r):
    assert r["mtype"] == "Join Request"
    assert r["join_eui"] == c["join_eui"]
    assert r["dev_eui"] == c["dev_eui"]
    assert r["dev_nonce"] == f"{c['dev_nonce']:04x}"
    assert r["mic"] == c["phy"][-8:]
    assert r["mic_ok"] is True
    assert r["built"] == c["phy"]


def _check_join_accept(c, r):
    assert r["mtype"] == "Join Accept"
    assert r["join_nonce"] == f"{c['join_nonce']:06x}"
    assert r["net_id"] == f"{c['net_id']:06x}"
    assert r["dev_addr"] == c["dev_addr"]
    assert r["rx1_dr_offset"] == c["rx1_dr_offset"]
    assert r["rx2_dr"] == c["rx2_dr"]
    assert r["rx_delay"] == c["rx_delay"]
    assert r["cflist"] == c["cflist"]
    assert r["cflist_freqs"] == c["freqs"]
    assert r["mic_ok"] is True
    assert r["built"] == c["phy"]
    accept = otaa.decrypt_join_accept(bytes.fromhex(c["phy"]), bytes.fromhex(c["appkey"]))
    assert accept.mic_valid and accept.mic.hex() == r["mic"]


def _check_session_keys(c, r):
    assert r["nwkskey"] == c["nwkskey"]
    assert r["appskey"] == c["appskey"]


CHECKS = {
    "data": _check_data,
    "join_request": _check_join_request,
    "join_accept": _check_join_accept,
    "session_keys": _check_session_keys,
}


def _cases():
    rng = random.Random(SEED)
    cases = []
    for kind, count in COUNTS.items():
        cases.extend(MAKERS[kind](rng) for _ in range(count))
    rng.shuffle(cases)
    return cases


def _run_node(cases, tmp_path):
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"cases": cases}))
    proc = subprocess.run(
        ["node", str(SCRIPT), str(path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)["results"]


def test_lorapacket_agrees_on_random_frames_joins_and_keys(tmp_path):
    cases = _cases()
    assert len(cases) >= 1000
    results = _run_node(cases, tmp_path)
    assert len(results) == len(cases)
    failures = []
    for i, (case, result) in enumerate(zip(cases, results, strict=True)):
        try:
            assert "error" not in result, result.get("error")
            CHECKS[case["kind"]](case, result)
        except AssertionError as exc:
            failures.append(f"case {i} ({case['kind']}): {exc}")
    assert not failures, f"{len(failures)} mismatches, first: {failures[:5]}"


def test_crosscheck_detects_a_corrupted_frame(tmp_path):
    # The harness itself can fail: flip one payload bit and lora-packet must disagree.
    case = _data_case(random.Random(1))
    while not case["payload"]:
        case = _data_case(random.Random(len(case["phy"])))
    phy = bytearray.fromhex(case["phy"])
    phy[-5] ^= 0x01
    case["phy"] = phy.hex()
    (result,) = _run_node([case], tmp_path)
    assert result["mic_ok"] is False
    with pytest.raises(AssertionError):
        _check_data(case, result)
