# airflow-provider-ringcx: every target installs what it needs from the committed constraints file.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: help install lint typecheck test test-fast demo airflow soak bench test-ui chromium simulator clean constraints

help:
	@echo "make demo      - run the example DAG against the simulator and a local S3 server, print what landed"
	@echo "make test      - install, then ruff, mypy and the whole test suite (integration and e2e included)"
	@echo "make test-fast - ruff, then the unit tests only (no simulator, S3 server, Airflow or subprocess)"
	@echo "make airflow   - airflow standalone wired to the simulator and local S3 (Ctrl-C stops it)"
	@echo "make soak      - a simulated day with random faults, prints the invariants"
	@echo "make bench     - throughput, memory and budget benchmarks against baselines"
	@echo "make test-ui   - end-to-end UI test in headless Chromium (screenshots in artifacts/)"
	@echo "make simulator - run the RingCX simulator on 127.0.0.1:8765"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python constraints.txt pyproject.toml simulator/pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt uv
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/uv pip install --quiet --python $(BIN)/python \
		-c constraints.txt -e '.[test]' -e ./simulator
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

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

soak: $(STAMP)
	$(BIN)/pytest -m slow tests/reliability -p no:cacheprovider -s

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

simulator: $(STAMP)
	$(BIN)/python -m ringcx_simulator --host 127.0.0.1 --port 8765

# Re-resolve the pins (needs the package index); commit the result.
constraints: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra test --python-version 3.11 --no-header --no-annotate \
		--no-emit-package airflow-provider-ringcx --no-emit-package ringcx-simulator -o constraints.txt

clean:
	rm -rf $(VENV) .airflow .demo .pytest_cache .mypy_cache .ruff_cache artifacts
