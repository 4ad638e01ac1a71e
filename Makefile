# The two commands of the README: `make demo` and `make test`. Both set up everything first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db
# TensorFlow's C++ log off below FATAL (its ERROR lines of a good CPU run; aelatent.console)
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: setup demo test test-fast lint bench ui clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

## Headless Chromium for the report rendering test (Debian's package; needs root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

demo: setup
	PATH="$(abspath $(BIN)):$$PATH" mlflow run . -e main --env-manager local

test: setup browser
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not e2e"

lint: setup
	$(BIN)/ruff check src tests benchmarks mlproject

bench: setup
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

ui: setup
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI)

clean:
	rm -rf mlruns mlflow.db optuna.db reports
