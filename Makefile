# nasforge: `make demo` and `make test` install what they need into the current Python.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
LINTED := $(wildcard src tests benchmarks)
DEMO_DB ?= nasforge-demo.db

.PHONY: demo test test-under-load install-core install-dev lint typecheck pytest clean

install-core:
	$(PIP) install --quiet --disable-pip-version-check -e .

install-dev:
	$(PIP) install --quiet --disable-pip-version-check -e ".[dev]"

## demo: a NAS-Bench-Graph search on Cora with embedded defaults (no download, no server)
demo: install-core
	$(PYTHON) -m nasforge.demo --db $(DEMO_DB)

## test: lint, format check, type check and the test suite
test: install-dev lint typecheck pytest

## test-under-load: the test suite with a CPU-bound process on each core (not part of CI):
## tests that depend on timing must hold on a busy machine
test-under-load: install-dev
	$(PYTHON) scripts/with-load.py -- $(MAKE) pytest PYTHON=$(PYTHON)

lint:
	$(PYTHON) -m ruff check $(LINTED)
	$(PYTHON) -m ruff format --check $(LINTED)

typecheck:
	$(PYTHON) -m mypy

pytest:
	bash scripts/postgres-binaries.sh
	bash scripts/ensure-chromium.sh
	$(PYTHON) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm \
		nasforge-demo-report.html nasforge-demo-report-digits.html
