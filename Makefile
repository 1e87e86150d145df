# The two commands: `make run` and `make test`. Everything else is set up on the way.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# make run serves this machine only; HOST=0.0.0.0 make run lets the clinic's network in.
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint typecheck unit migrate seed reset-demo bench bench-search bench-lock simulate load screens clean help

help:
	@echo "make run    - install, migrate the SQLite file, seed a demo clinic, serve on $(HOST):$(PORT) (HOST=0.0.0.0 for the network)"
	@echo "make reset-demo - delete the demo database (var/) and seed it afresh (stop make run first)"
	@echo "make test   - install dev tools, run ruff, the layering contract, mypy and the suite (SQLite + PostgreSQL)"
	@echo "make simulate - replay the clinic-day scenarios and compare routing (into $(SIM_OUT); UPDATE_RESULTS=1 rewrites bench/)"
	@echo "make load     - a minute of mixed load on PostgreSQL: 5xx, invariants, p95 per endpoint"
	@echo "make bench-search - search as you type over 100,000 mothers, PostgreSQL and SQLite (bench/RESULTS.md)"
	@echo "make bench-lock - SQLite writes while a client holds half a body or floods bogus logins (bench/RESULTS.md)"
	@echo "make screens  - screenshots of every console screen into docs/screens/ (needs chromium)"

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

migrate: $(VENV)/.installed
	$(PY) -m app.cli migrate

# SEED_ARGS=--no-day seeds the clinic without today's visits (the README's curl walk-through
# follows its own mother from a quiet clinic).
SEED_ARGS ?=
seed: migrate
	$(PY) -m app.cli seed-demo --if-empty $(SEED_ARGS)

# uvicorn through the CLI: its own log lines are JSON like the service's (app/ops/serving.py).
run: seed
	$(PY) -m app.cli serve --host $(HOST) --port $(PORT)

# Back to a freshly seeded demo clinic (the embedded SQLite database only; stop `make run`).
reset-demo: $(VENV)/.installed
	$(PY) -m app.cli reset-demo --yes $(SEED_ARGS)

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check app sim tools tests
	$(VENV)/bin/ruff format --check app sim tools tests
	$(VENV)/bin/lint-imports  # the layering: .importlinter, docs/architecture.md

typecheck: $(VENV)/.dev-installed
	$(VENV)/bin/mypy

# Two workers (pytest-xdist): every test still runs, on both databases; PYTEST_WORKERS=0 runs
# them in this process. loadgroup keeps the real-concurrency tests on one worker (conftest.py).
PYTEST_WORKERS ?= 2
unit: $(VENV)/.dev-installed
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

test: lint typecheck unit

bench: $(VENV)/.dev-installed
	@command -v wrk >/dev/null || { echo "bench needs wrk (apt-get install wrk) and PostgreSQL on 127.0.0.1:5432"; exit 2; }
	$(PY) bench/feed_bench.py

bench-search: $(VENV)/.dev-installed
	$(PY) bench/search_bench.py

bench-lock: $(VENV)/.dev-installed
	$(PY) bench/lock_bench.py

load: $(VENV)/.dev-installed
	$(PY) bench/load.py --seconds 60 --mothers 120

# The tracked results (bench/out, bench/RESULTS.md) change only when asked: UPDATE_RESULTS=1.
SIM_OUT ?= var/simulate
UPDATE_RESULTS ?=
simulate: $(VENV)/.dev-installed
ifeq ($(UPDATE_RESULTS),1)
	$(PY) -m sim simulate bench/scenarios/*.json --out bench/out --results bench/RESULTS.md
else
	$(PY) -m sim simulate bench/scenarios/*.json --out $(SIM_OUT)
endif

# A demo-seeded server, a little of a clinic day through the API, then every screen in Debian's
# Chromium at the size it is judged at (desk 1366x768, phone 375x667, TV 1920x1080).
screens: $(VENV)/.dev-installed
	$(PY) -m tools.screens

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
