# airflow-provider-ringcx: every target installs what it needs from the committed constraints file.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# An editable install leaves *.egg-info in the source tree; with the repo root on sys.path (pytest, python -m)
# Airflow would then see every entry point of the provider twice (plugins "already registered").
EGG_INFO_CLEAN := rm -rf airflow_provider_ringcx.egg-info simulator/ringcx_simulator.egg-info
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: help install lint typecheck test test-fast demo airflow soak bench test-ui chromium simulator clean constraints \
	test-compat constraints-compat compose-env redis-server test-distributed

help:
	@echo "make demo      - archive a window of two sub-accounts (one DAG each) from the simulator into local S3"
	@echo "make test      - install, then ruff, mypy and the whole test suite (integration and e2e included)"
	@echo "make test-fast - ruff, then the unit tests only (no simulator, S3 server, Airflow or subprocess)"
	@echo "make airflow   - airflow standalone wired to the simulator and local S3 (Ctrl-C stops it)"
	@echo "make soak      - a simulated day with random faults, prints the invariants"
	@echo "make bench     - throughput, memory and budget benchmarks against baselines"
	@echo "make test-ui   - end-to-end UI test in headless Chromium (screenshots in artifacts/)"
	@echo "make test-compat - unit tests and one dag.test() on the oldest claimed Airflow (3.2), in .venv-compat"
	@echo "make test-distributed - the example DAG on the CeleryExecutor: two workers, Redis broker and budget"
	@echo "make simulator - run the RingCX simulator on 127.0.0.1:8765 (sub-accounts 99999999, 88888888)"
	@echo "make compose-env - once before docker compose up: secrets and AIRFLOW_UID into the git-ignored .env"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python constraints.txt pyproject.toml simulator/pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt uv
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/uv pip install --quiet --python $(BIN)/python \
		-c constraints.txt -e '.[test]' -e ./simulator
	$(EGG_INFO_CLEAN)
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck redis-server
	$(BIN)/pytest

# The Redis budget backend's tests (tests/hooks/test_budget_redis*.py) run a real redis-server on a free
# loopback port: Debian's, installed here when missing (like chromium for test-ui). make test-fast needs none.
REDIS_SERVER ?= /usr/bin/redis-server

redis-server:
	@test -x $(REDIS_SERVER) || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends redis-server; }

# The unit tier (tests/conftest.py marks every test that talks to a real peer "integration"); well under a
# minute. mypy (~20 s) is left to make test / make typecheck. pytest's exit code 5 (no test ran) fails it.
test-fast: lint
	$(BIN)/pytest -m "not integration and not slow and not ui" -p no:cacheprovider --durations=10

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

airflow: $(STAMP)
	$(BIN)/python scripts/standalone.py

# The browser test: Debian's chromium (apt-get, if missing) + the playwright package pinned in
# constraints-ui.txt (it drives /usr/bin/chromium; no browser is downloaded). Screenshots: artifacts/ui/.
CHROMIUM ?= /usr/bin/chromium
UI_STAMP := $(VENV)/.installed-ui

$(UI_STAMP): $(STAMP) constraints-ui.txt
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/uv pip install --quiet --python $(BIN)/python \
		-c constraints.txt -r constraints-ui.txt
	touch $(UI_STAMP)

chromium:
	@test -x $(CHROMIUM) || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium fonts-liberation; }

test-ui: $(UI_STAMP) chromium
	RINGCX_UI=1 RINGCX_UI_CHROMIUM=$(CHROMIUM) $(BIN)/pytest -m ui tests/ui -p no:cacheprovider

# The CeleryExecutor for real (tests/dags/test_celery_workers.py, marker "distributed"; ~3 min): two
# `airflow celery worker` processes with their own budget dirs, redis-server as broker, result backend and
# shared budget ([ringcx] budget_backend = redis), scheduler + api-server + dag-processor on SQLite (the
# workers never open the metadata DB in Airflow 3). The celery provider is the [test-distributed] extra,
# installed here only.
DIST_STAMP := $(VENV)/.installed-distributed

$(DIST_STAMP): $(STAMP) constraints.txt pyproject.toml
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/uv pip install --quiet --python $(BIN)/python \
		-c constraints.txt -e '.[test,test-distributed]' -e ./simulator
	$(EGG_INFO_CLEAN)
	touch $(DIST_STAMP)

test-distributed: $(DIST_STAMP) redis-server
	$(BIN)/pytest -m distributed tests/dags/test_celery_workers.py -p no:cacheprovider --durations=5

soak: $(STAMP)
	$(BIN)/pytest -m slow tests/reliability -p no:cacheprovider -s

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

simulator: $(STAMP)
	$(BIN)/python -m ringcx_simulator --host 127.0.0.1 --port 8765 --sub-account-ids 99999999,88888888

# docker-compose.yaml requires a Fernet key, a JWT secret and an API secret key (no weak defaults): this
# writes them, and AIRFLOW_UID, into .env (0600, git-ignored), once; an existing .env is never overwritten.
# Standard library only: no venv needed to run the stack.
compose-env:
	$(PYTHON) scripts/compose_env.py

# Re-resolve the pins (needs the package index); commit the result.
constraints: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra test --extra test-distributed --python-version 3.11 \
		--no-header --no-annotate \
		--no-emit-package airflow-provider-ringcx --no-emit-package ringcx-simulator -o constraints.txt

# The oldest Airflow that pyproject.toml claims (apache-airflow>=3.2) in its own venv, .venv-compat, pinned by
# constraints-airflow-3.2.txt: the unit tier, then one dag.test() of the example DAG against the simulator
# and moto. Those pins are resolved against the package index as it stood the day after Airflow 3.2.2 came
# out (COMPAT_AS_OF), which is what Airflow's own constraints file for 3.2.2 pins: Airflow 3.2 does not cap
# fastapi or cadwyn, and the newer ones break its execution API (every task of dag.test() fails). For a new
# 3.2.x patch, move COMPAT_AS_OF to the day after its release and run make constraints-compat. uv comes from
# constraints.txt, so this venv needs nothing from .venv.
COMPAT_VENV := .venv-compat
COMPAT_BIN := $(COMPAT_VENV)/bin
COMPAT_STAMP := $(COMPAT_VENV)/.installed
COMPAT_CONSTRAINTS := constraints-airflow-3.2.txt
COMPAT_AIRFLOW := 3.2
COMPAT_AS_OF := 2026-05-30T00:00:00Z
COMPAT_DAG_TEST := tests/dags/test_dag_run.py::test_run_archives_the_window_reports_and_emits_the_asset

$(COMPAT_BIN)/python:
	$(PYTHON) -m venv $(COMPAT_VENV)

$(COMPAT_STAMP): $(COMPAT_BIN)/python $(COMPAT_CONSTRAINTS) constraints.txt pyproject.toml simulator/pyproject.toml
	$(COMPAT_BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt uv
	VIRTUAL_ENV=$(abspath $(COMPAT_VENV)) $(COMPAT_BIN)/uv pip install --quiet --python $(COMPAT_BIN)/python \
		-c $(COMPAT_CONSTRAINTS) -e '.[test]' -e ./simulator
	$(EGG_INFO_CLEAN)
	touch $(COMPAT_STAMP)

# dag.test() on Airflow 3.2 builds a fresh in-process execution API for every task (3.3 reuses one), so the
# one DAG run takes about a minute here; the unit tier about 40 s.
test-compat: $(COMPAT_STAMP)
	$(COMPAT_BIN)/python -c "import airflow, sys; print('Airflow', airflow.__version__); \
		sys.exit(not airflow.__version__.startswith('$(COMPAT_AIRFLOW).'))"
	$(COMPAT_BIN)/pytest -m "not integration and not slow and not ui and not e2e" -p no:cacheprovider -q \
		--durations=5
	$(COMPAT_BIN)/pytest -p no:cacheprovider -q --durations=5 $(COMPAT_DAG_TEST)

# Re-resolve constraints-airflow-3.2.txt (needs the package index); commit the result.
constraints-compat: $(STAMP)
	echo 'apache-airflow==$(COMPAT_AIRFLOW).*' | $(BIN)/uv pip compile pyproject.toml simulator/pyproject.toml - \
		--extra test --python-version 3.11 --exclude-newer $(COMPAT_AS_OF) --no-header --no-annotate \
		--no-emit-package airflow-provider-ringcx --no-emit-package ringcx-simulator -o $(COMPAT_CONSTRAINTS)

clean:
	rm -rf $(VENV) $(COMPAT_VENV) .airflow .demo .pytest_cache .mypy_cache .ruff_cache artifacts
