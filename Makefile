# The two commands of the README: `make demo` and `make test`. Both set up everything first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db
# TensorFlow's C++ log off below FATAL (its ERROR lines of a good CPU run; aelatent.console)
export TF_CPP_MIN_LOG_LEVEL ?= 3
# Material for MkDocs' end-of-life banner off (`make check`, `make docs`)
export NO_MKDOCS_2_WARNING ?= 1

.PHONY: setup demo demo-figure test test-fast lint check docs bench ui clean browser postgres server server-stop screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev,server]"
	touch $(STAMP)

setup: $(STAMP)

## Headless Chromium for the report rendering test (Debian's package; needs root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

## Debian's PostgreSQL for `make server` and its tests (needs root or sudo).
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

## PostgreSQL + an mlflow server on it (proxied artifacts) under .server/; prints what to export.
server: setup postgres
	$(BIN)/python -m aelatent.ops.server_stack start --dir .server

server-stop: setup
	$(BIN)/python -m aelatent.ops.server_stack stop --dir .server

demo: setup
	PATH="$(abspath $(BIN)):$$PATH" mlflow run . -e main --env-manager local

## The whole suite with the coverage of src/aelatent (lines and branches; pyproject.toml),
## in TEST_WORKERS processes (pytest-xdist), each taking a whole test file at a time, so a
## file's module fixtures (a PostgreSQL stack, a trained model) are made once. Why 2: most
## end-to-end tests wait on `mlflow run` children, so two files at once fill the two cores
## of the machine the suite is sized for. Files start in collection order (tests/conftest.py
## puts the longest first; xdist's own reorder, by number of tests, would start test_main
## last). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: setup browser postgres
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --cov --cov-report=term --durations=25

test-fast: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not e2e"

lint: setup
	$(BIN)/ruff check src tests benchmarks mlproject scripts

## What CI checks before the tests (and .pre-commit-config.yaml before a commit).
## (the docs site too: --strict fails on a broken link, anchor, include or a page left out of the nav)
check: setup
	$(BIN)/ruff format --check src tests benchmarks mlproject scripts
	$(BIN)/ruff check src tests benchmarks mlproject scripts
	$(BIN)/mypy
	site=$$(mktemp -d) && $(BIN)/mkdocs build --strict --site-dir "$$site"; \
	  status=$$?; rm -rf "$$site"; exit $$status

## The documentation site (mkdocs.yml, docs/) on http://127.0.0.1:8000, rebuilt on every edit.
docs: setup
	$(BIN)/mkdocs serve

bench: setup
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

## The MLflow UI on the store; first the URL that opens the runs table (scripts/ui_url.py).
UI_HOST ?= 127.0.0.1
UI_PORT ?= 5000
ui: setup
	$(BIN)/python scripts/ui_url.py --host $(UI_HOST) --port $(UI_PORT)
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --host $(UI_HOST) --port $(UI_PORT)

## The README's picture (docs/img/demo_verdict.png) from the newest evaluate run of case I (make demo first).
demo-figure: setup
	$(BIN)/python scripts/demo_figure.py

## The MLflow UI screenshots of docs/results.md (docs/img/) from a tiny study in a temporary store.
screenshots: setup browser
	$(BIN)/python scripts/ui_screenshots.py

clean:
	rm -rf mlruns mlflow.db optuna.db reports
