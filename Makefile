# The two commands of the README: `make demo` and `make test`. Both set up everything first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db
# TensorFlow's C++ log off below FATAL (its ERROR lines of a good CPU run; aelatent.console)
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: setup demo test test-fast lint check bench ui clean browser postgres server server-stop screenshots

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
	$(BIN)/python -m aelatent.io.server_stack start --dir .server

server-stop: setup
	$(BIN)/python -m aelatent.io.server_stack stop --dir .server

demo: setup
	PATH="$(abspath $(BIN)):$$PATH" mlflow run . -e main --env-manager local

## The whole suite with the coverage of src/aelatent (lines and branches; pyproject.toml).
test: setup browser postgres
	$(BIN)/python -m pytest --cov --cov-report=term --durations=25

test-fast: setup
	$(BIN)/python -m pytest -m "not e2e"

lint: setup
	$(BIN)/ruff check src tests benchmarks mlproject scripts

## What CI checks before the tests (and .pre-commit-config.yaml before a commit).
check: setup
	$(BIN)/ruff format --check src tests benchmarks mlproject scripts
	$(BIN)/ruff check src tests benchmarks mlproject scripts
	$(BIN)/mypy

bench: setup
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

ui: setup
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI)

## The README's MLflow UI screenshots (docs/img/) from a tiny study in a temporary store.
screenshots: setup browser
	$(BIN)/python scripts/ui_screenshots.py

clean:
	rm -rf mlruns mlflow.db optuna.db reports
