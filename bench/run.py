"""Run every benchmark in bench/ (bench_*.py, each with a main()) and print their figures.

Run: make bench   (or .venv/bin/python bench/run.py [NAME ...] to pick some: `lib`, `sim` …)
Figures only — no benchmark asserts anything; bench/RESULTS.md keeps the latest table.
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv):
    # Options (like --quick) are left in sys.argv for the benches; other words pick benches.
    wanted = set(a for a in argv if not a.startswith("-"))
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem[len("bench_") :]
        if wanted and name not in wanted:
            continue
        print("=" * 72)
        print("bench/%s" % path.name)
        print("=" * 72, flush=True)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.main()
        print(flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
