// Runs firmware image files under real MicroPython (the npm wasm build, in node) on the bench's
// Pycom stubs (bench/mpy_pycom_stubs/: machine, network, pycom, usocket, utime, ...).
//
// Usage: node bench/mpy_image_harness.mjs SPEC.json      (or "-" to read the spec from stdin)
// SPEC: {"files": [[host_path, vm_path], ...],   e.g. ["firmware/sensor/app.py", "/flash/app.py"]
//        "run": "python code",                   run once the files are in place
//        "repeat": "python code" (optional),     then run again and again, each time as a new
//                                                top-level call, until it sets the global
//                                                harness_done to True (at most max_calls times)
//        "heapsize": bytes (optional, default 8 MiB), "cwd": "/flash" (optional)}
// Why "repeat": this wasm build (the pyscript variant) only collects garbage when JavaScript
// enters MicroPython at the top level; gc.collect() inside a call just marks one as pending. A
// bench that measures the heap returns to JavaScript and reads gc.mem_alloc() at the start of
// the next call (bench/mpy_pycom_stubs/_harness.py: request / take_pending).
// The stubs are copied to /stubs; the code usually starts with
//   import sys; sys.path[:0] = ['/stubs', '/flash', '/flash/lib']; import _harness; _harness.install()
// and prints its figures on a line starting with @@RESULT@@ (JSON). Everything MicroPython prints
// goes to stdout; an uncaught Python exception is printed after @@ERROR@@ and the exit code is 1.
// Generic on purpose: bench/bench_images.py builds the specs (image files from the manifest,
// the driver code), and other benches can run their own code the same way.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";
import url from "node:url";

const here = path.dirname(url.fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const stubsDir = path.join(here, "mpy_pycom_stubs");

const arg = process.argv[2];
if (!arg) {
  process.stderr.write("usage: node bench/mpy_image_harness.mjs SPEC.json|-\n");
  process.exit(2);
}
const spec = JSON.parse(fs.readFileSync(arg === "-" ? 0 : arg, "utf8"));

const mp = await loadMicroPython({
  heapsize: spec.heapsize || 8 * 1024 * 1024,
  stdout: (t) => process.stdout.write(t + "\n"),
  stderr: (t) => process.stdout.write(t + "\n"),
});

function mkdirs(dir) {
  const parts = dir.split("/").filter(Boolean);
  let at = "";
  for (const part of parts) {
    at += "/" + part;
    try {
      mp.FS.mkdir(at);
    } catch (e) {
      // exists already
    }
  }
}

function put(host, vm) {
  mkdirs(path.posix.dirname(vm));
  mp.FS.writeFile(vm, fs.readFileSync(path.resolve(root, host)));
}

for (const name of fs.readdirSync(stubsDir)) {
  if (name.endsWith(".py")) put(path.join(stubsDir, name), "/stubs/" + name);
}
for (const [host, vm] of spec.files || []) put(host, vm);
mkdirs(spec.cwd || "/flash");

try {
  mp.runPython("import os\nos.chdir(" + JSON.stringify(spec.cwd || "/flash") + ")\n");
  mp.runPython(spec.run);
  if (spec.repeat) {
    const maxCalls = spec.max_calls || 100000;
    let calls = 0;
    while (!mp.globals.get("harness_done")) {
      if (++calls > maxCalls) throw new Error("harness: repeat did not finish in " + maxCalls + " calls");
      mp.runPython(spec.repeat);
    }
  }
} catch (e) {
  process.stdout.write("@@ERROR@@" + String(e && e.message ? e.message : e) + "\n");
  process.exit(1);
}
