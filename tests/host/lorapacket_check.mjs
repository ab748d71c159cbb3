// Cross-check helper: decodes, verifies and re-encodes a batch of LoRaWAN frames with npm
// lora-packet (an independent implementation) and prints what it found as one JSON document.
// Usage: node lorapacket_check.mjs CASES.json  -> stdout {"results": [...]} (same order as cases)
// Each case: {kind: "data" | "join_request" | "join_accept" | "session_keys", ...} as written by
// tests/host/test_lorapacket_crosscheck.py. Hex in and out; multi-byte ids MSB first.
import lora_packet from "lora-packet";
import fs from "node:fs";

const hex = (s) => Buffer.from(s || "", "hex");
const out = (b) => (b ? Buffer.from(b).toString("hex") : null);

function fcntMsb(fcnt32) {
  // B0/Ai carry FCnt as 4 little-endian bytes; lora-packet takes the upper two separately, LE.
  const hi = Math.floor(fcnt32 / 65536);
  return Buffer.from([hi & 0xff, (hi >> 8) & 0xff]);
}

function dataCase(c) {
  const nwk = hex(c.nwkskey);
  const app = hex(c.appskey);
  const msb = fcntMsb(c.fcnt32);
  const p = lora_packet.fromWire(hex(c.phy));
  const r = {
    mtype: p.getMType(),
    dir: p.getDir(),
    dev_addr: out(p.DevAddr),
    fcnt: p.getFCnt(),
    fport: p.getFPort(),
    fopts: out(p.FOpts),
    adr: p.getFCtrlADR(),
    adr_ack_req: p.getFCtrlADRACKReq(),
    ack: p.getFCtrlACK(),
    fpending: p.getFCtrlFPending(),
    mic: out(p.MIC),
    mic_ok: lora_packet.verifyMIC(p, nwk, undefined, msb),
    mic_ok_wrong_key: lora_packet.verifyMIC(p, app, undefined, msb),
    plaintext: p.getFPort() === null ? "" : out(lora_packet.decrypt(p, app, nwk, msb)),
  };
  const built = lora_packet.fromFields(
    {
      MType: c.mtype,
      DevAddr: hex(c.dev_addr),
      FCtrl: { ADR: c.adr, ADRACKReq: c.adr_ack_req, ACK: c.ack, FPending: c.fpending },
      FCnt: c.fcnt32 % 65536,
      FOpts: hex(c.fopts),
      FPort: c.fport === null ? undefined : c.fport,
      payload: hex(c.payload),
    },
    app,
    nwk,
    undefined,
    msb
  );
  // fromFields computes no MIC when there is no FPort: (re)compute it in every case.
  lora_packet.recalculateMIC(built, nwk, undefined, msb);
  r.built = out(built.getPHYPayload());
  return r;
}

function joinRequestCase(c) {
  const key = hex(c.appkey);
  const p = lora_packet.fromWire(hex(c.phy));
  const built = lora_packet.fromFields(
    {
      MType: "Join Request",
      AppEUI: hex(c.join_eui),
      DevEUI: hex(c.dev_eui),
      DevNonce: Buffer.from([c.dev_nonce >> 8, c.dev_nonce & 0xff]),
    },
    undefined,
    undefined,
    key
  );
  return {
    mtype: p.getMType(),
    join_eui: out(p.AppEUI),
    dev_eui: out(p.DevEUI),
    dev_nonce: out(p.DevNonce),
    mic: out(p.MIC),
    mic_ok: lora_packet.verifyMIC(p, undefined, key),
    built: out(built.getPHYPayload()),
  };
}

function be(value, size) {
  const b = Buffer.alloc(size);
  for (let i = size - 1; i >= 0; i--) {
    b[i] = value % 256;
    value = Math.floor(value / 256);
  }
  return b;
}

function joinAcceptCase(c) {
  const key = hex(c.appkey);
  const p = lora_packet.fromWire(hex(c.phy));
  const d = lora_packet.fromWire(lora_packet.decryptJoinAccept(p, key));
  const built = lora_packet.fromFields(
    {
      MType: "Join Accept",
      AppNonce: be(c.join_nonce, 3),
      NetID: be(c.net_id, 3),
      DevAddr: hex(c.dev_addr),
      DLSettings: c.dl_settings,
      RxDelay: c.rx_delay,
      CFList: hex(c.cflist),
    },
    undefined,
    undefined,
    key
  );
  return {
    mtype: p.getMType(),
    join_nonce: out(d.AppNonce),
    net_id: out(d.NetID),
    dev_addr: out(d.DevAddr),
    rx1_dr_offset: d.getDLSettingsRxOneDRoffset(),
    rx2_dr: d.getDLSettingsRxTwoDataRate(),
    rx_delay: d.getRxDelayDel(),
    cflist: out(d.CFList),
    cflist_freqs: d.CFList.length === 16
      ? [d.getCFListFreqChFour(), d.getCFListFreqChFive(), d.getCFListFreqChSix(),
        d.getCFListFreqChSeven(), d.getCFListFreqChEight()].map((b) => parseInt(out(b), 16) * 100)
      : [],
    mic: out(d.MIC),
    mic_ok: lora_packet.verifyMIC(d, undefined, key),
    built: out(built.getPHYPayload()),
  };
}

function sessionKeysCase(c) {
  const keys = lora_packet.generateSessionKeys(
    hex(c.appkey),
    be(c.net_id, 3),
    be(c.join_nonce, 3),
    be(c.dev_nonce, 2)
  );
  return { nwkskey: out(keys.NwkSKey), appskey: out(keys.AppSKey) };
}

const handlers = {
  data: dataCase,
  join_request: joinRequestCase,
  join_accept: joinAcceptCase,
  session_keys: sessionKeysCase,
};

const cases = JSON.parse(fs.readFileSync(process.argv[2], "utf8")).cases;
const results = cases.map((c) => {
  try {
    return handlers[c.kind](c);
  } catch (e) {
    return { error: String(e && e.message ? e.message : e) };
  }
});
process.stdout.write(JSON.stringify({ results }) + "\n");
