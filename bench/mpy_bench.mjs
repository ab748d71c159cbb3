// Runs bench/bench_lib.py's measure() under real MicroPython (wasm, in node) and measures the heap
// each lib/*.py module keeps after import. Prints one line: @@BENCH@@{"speed": {...}, "heap": [...]}.
// Usage: node bench/mpy_bench.mjs [SECONDS_PER_METRIC]   (as tests/mpy/run_lib_tests.mjs: lib/*.py
// is copied into the wasm file system; the wasm build has no cryptolib, so AES is the pure one).
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";
import url from "node:url";

const here = path.dirname(url.fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const seconds = Number(process.argv[2] || 1.5);
const libNames = fs.readdirSync(path.join(root, "lib")).filter((n) => n.endsWith(".py")).sort();

async function freshVm() {
  let out = "";
  const mp = await loadMicroPython({
    heapsize: 8 * 1024 * 1024,
    stdout: (t) => { out += t + "\n"; },
    stderr: (t) => { out += t + "\n"; },
  });
  mp.FS.mkdir("/lib");
  mp.FS.mkdir("/bench");
  for (const name of libNames) mp.FS.writeFile("/lib/" + name, fs.readFileSync(path.join(root, "lib", name)));
  mp.FS.writeFile("/bench/bench_lib.py", fs.readFileSync(path.join(here, "bench_lib.py")));
  return { mp, output: () => out };
}

function lastJson(text, marker) {
  const lines = text.split("\n").filter((l) => l.startsWith(marker));
  if (!lines.length) throw new Error(text.slice(-800));
  return JSON.parse(lines[lines.length - 1].slice(marker.length));
}

async function runPy(code) {
  const vm = await freshVm();
  try {
    vm.mp.runPython(code);
  } catch (e) {
    throw new Error(String(e).split("\n").filter(Boolean).slice(-1)[0]);
  }
  return lastJson(vm.output(), "@@OUT@@");
}

// In this wasm build gc.collect() only marks a collection as pending; it runs when JavaScript next
// enters MicroPython. So each reading of the heap starts a new runPython call on the same VM.
async function importDelta(mod, deps) {
  const vm = await freshVm();
  const call = (code) => {
    try {
      vm.mp.runPython(code);
    } catch (e) {
      throw new Error(String(e).split("\n").filter(Boolean).slice(-1)[0]);
    }
  };
  call(`
import sys, json, gc
sys.path.insert(0, '/lib')
for d in ${JSON.stringify(deps)}:
    __import__(d)
gc.collect()
`);
  call(`
_before = gc.mem_alloc()
import ${mod}
gc.collect()
`);
  call(`
print('@@OUT@@' + json.dumps(gc.mem_alloc() - _before))
`);
  return lastJson(vm.output(), "@@OUT@@");
}

const libModules = libNames.map((n) => n.slice(0, -3));
const libList = JSON.stringify(libModules);

const speed = await runPy(`
import sys, json
sys.path.insert(0, '/lib')
sys.path.insert(0, '/bench')
import bench_lib
r = bench_lib.measure(True, ${seconds})
print('@@OUT@@' + json.dumps(r))
`);

const version = await runPy(`
import sys, json
print('@@OUT@@' + json.dumps('%d.%d.%d' % sys.implementation.version[:3]))
`);

const heap = [];
for (const mod of libModules) {
  try {
    // Which lib modules does it pull in?
    const deps = await runPy(`
import sys, json
sys.path.insert(0, '/lib')
before = set(sys.modules)
import ${mod}
lib = ${libList}
print('@@OUT@@' + json.dumps(sorted(m for m in sys.modules if m not in before and m in lib and m != '${mod}')))
`);
    const withDeps = await importDelta(mod, []);
    const own = await importDelta(mod, deps);
    heap.push({ module: mod, own, with_deps: withDeps, deps });
  } catch (e) {
    heap.push({ module: mod, error: String(e.message || e).slice(0, 160) });
  }
}

process.stdout.write("@@BENCH@@" + JSON.stringify({ version, speed, heap }) + "\n");
