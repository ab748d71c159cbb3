// Runs the JavaScript codecs (tools/codecs/*.js) on a batch of cases, the way network servers do:
// each file is evaluated as a plain script (no modules) in a fresh node `vm` context and, when
// npm quickjs-emscripten is installed, in QuickJS (the engine ChirpStack v4 embeds).
// Usage: node js_codec_check.mjs CASES.json  -> stdout one JSON document:
//   {"es5": {file: null | "syntax error"}, "engines": {"node": [...], "quickjs": [...] | null}}
// Each case: {op: "uplink" | "downlink" | "encode" | "thingsboard", hex, fport, data, event};
// each result: {data} | {bytes (hex), fport} | {errors} | a ThingsBoard converter result.
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const codecs = path.resolve(here, "..", "..", "tools", "codecs");
const codecSource = fs.readFileSync(path.join(codecs, "openenergy.js"), "utf8");
const tbSource = fs.readFileSync(path.join(codecs, "thingsboard-uplink.js"), "utf8");
const cases = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));

// The batch runner evaluated inside each engine: plain ES5 too, so QuickJS runs it as is.
const RUNNER = `
function oeHexToBytes(hex) {
  var out = [];
  for (var i = 0; i < hex.length; i += 2) out.push(parseInt(hex.substring(i, i + 2), 16));
  return out;
}
function oeBytesToHex(bytes) {
  var out = "";
  for (var i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
  return out;
}
function oeUtf8Bytes(text) {
  var s = unescape(encodeURIComponent(text));
  var out = [];
  for (var i = 0; i < s.length; i++) out.push(s.charCodeAt(i));
  return out;
}
function oeRunCase(c) {
  var fport = c.fport === null ? undefined : c.fport;
  if (c.op === "uplink") return decodeUplink({ bytes: oeHexToBytes(c.hex), fPort: fport });
  if (c.op === "downlink") return decodeDownlink({ bytes: oeHexToBytes(c.hex), fPort: fport });
  if (c.op === "encode") {
    var r = encodeDownlink({ data: c.data });
    if (r.bytes) return { bytes: oeBytesToHex(r.bytes), fport: r.fPort, errors: r.errors };
    return r;
  }
  if (c.op === "thingsboard") return Decoder(oeUtf8Bytes(JSON.stringify(c.event)), { ts: "0" });
  return { errors: ["unknown op " + c.op] };
}
function oeRunAll(cases) {
  var out = [];
  for (var i = 0; i < cases.length; i++) {
    try {
      out.push(oeRunCase(cases[i]));
    } catch (e) {
      out.push({ thrown: String(e && e.message ? e.message : e) });
    }
  }
  return JSON.stringify(out);
}
`;

const SCRIPT =
  codecSource +
  "\nfunction Decoder(payload, metadata) {\n" +
  tbSource +
  "\n}\n" +
  RUNNER;

function runNode() {
  const context = vm.createContext({});
  vm.runInContext(SCRIPT, context, { filename: "codecs.js" });
  context.oeCases = JSON.parse(JSON.stringify(cases));
  return JSON.parse(vm.runInContext("oeRunAll(oeCases)", context));
}

async function runQuickJS() {
  let quickjs;
  try {
    quickjs = await import("quickjs-emscripten");
  } catch {
    return null;
  }
  const QuickJS = await quickjs.getQuickJS();
  const ctx = QuickJS.newContext();
  try {
    const result = ctx.evalCode(SCRIPT + "\noeRunAll(" + JSON.stringify(cases) + ")");
    if (result.error) {
      const error = ctx.dump(result.error);
      result.error.dispose();
      throw new Error("QuickJS: " + JSON.stringify(error));
    }
    const text = ctx.dump(result.value);
    result.value.dispose();
    return JSON.parse(text);
  } finally {
    ctx.dispose();
  }
}

async function es5Check() {
  let acorn;
  try {
    acorn = await import("acorn");
  } catch {
    return null;
  }
  const out = {};
  for (const [name, source, options] of [
    ["openenergy.js", codecSource, {}],
    ["thingsboard-uplink.js", tbSource, { allowReturnOutsideFunction: true }],
  ]) {
    try {
      acorn.parse(source, { ecmaVersion: 5, ...options });
      out[name] = null;
    } catch (e) {
      out[name] = String(e.message);
    }
  }
  return out;
}

const report = {
  es5: await es5Check(),
  engines: { node: runNode(), quickjs: await runQuickJS() },
};
process.stdout.write(JSON.stringify(report));
