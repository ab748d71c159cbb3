# openenergy — every set-up step lives here, so a fresh clone needs only `make demo` / `make test`.
# The editable install lists lib/ modules at install time: adding one (lib/ mtime) reinstalls.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: all demo test check lint bench clean

all: test

$(STAMP): pyproject.toml setup.py lib
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(STAMP) $(NODE_STAMP)

## The simulated building: one nano gateway, a few meters, one simulated day.
demo: $(STAMP)
	mkdir -p out
	$(VENV)/bin/openenergy sim run examples/building.toml --json out/building.json --plot out/building.png

## The whole suite (what CI runs).
test: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest -q

## The fast suite: everything but the scenarios marked slow.
check: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check lib firmware tools tests bench
	$(VENV)/bin/ruff format --check lib firmware tools tests bench

bench: $(STAMP) $(NODE_STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) node_modules out .pytest_cache
