// Runs a portable lib test module (tests/lib/test_*.py) under real MicroPython (wasm, in node).
// Usage: node run_lib_tests.mjs TEST_FILE
// Copies lib/*.py to /lib, tests/lib/testkit.py and the test file to /tests, the vectors to
// /vectors, runs every test_* function and prints one JSON line: {"passed":[...],"failed":[...]}.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";
import url from "node:url";

const here = path.dirname(url.fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
const testFile = path.resolve(process.argv[2]);
const heapsize = Number(process.env.MPY_HEAP || 8 * 1024 * 1024);

let out = "";
const mp = await loadMicroPython({
  heapsize,
  stdout: (t) => { out += t + "\n"; },
  stderr: (t) => { out += t + "\n"; },
});
for (const dir of ["/lib", "/tests", "/vectors"]) mp.FS.mkdir(dir);
for (const name of fs.readdirSync(path.join(root, "lib"))) {
  if (name.endsWith(".py")) mp.FS.writeFile("/lib/" + name, fs.readFileSync(path.join(root, "lib", name)));
}
mp.FS.writeFile("/tests/testkit.py", fs.readFileSync(path.join(root, "tests", "lib", "testkit.py")));
mp.FS.writeFile("/tests/" + path.basename(testFile), fs.readFileSync(testFile));
mp.FS.writeFile("/vectors/lorawan.json", fs.readFileSync(path.join(root, "tests", "vectors", "lorawan.json")));

const modname = path.basename(testFile, ".py");
try {
  mp.runPython(`
import sys, json
sys.path.insert(0, '/lib')
sys.path.insert(0, '/tests')
import testkit
testkit.VECTORS_PATH = '/vectors/lorawan.json'
mod = __import__('${modname}')
passed = []
failed = []
for name in sorted(dir(mod)):
    if name.startswith('test_'):
        try:
            getattr(mod, name)()
            passed.append(name)
        except Exception as e:
            sys.print_exception(e)
            failed.append([name, '%s: %s' % (type(e).__name__, e)])
print('@@RESULT@@' + json.dumps({'passed': passed, 'failed': failed}))
`);
} catch (e) {
  out += "@@RESULT@@" + JSON.stringify({ passed: [], failed: [["<import>", String(e)]] }) + "\n";
}
process.stdout.write(out);
