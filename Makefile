# Two commands do everything on a fresh machine with Python 3.11 and make:
#   make run    start Linkway on its embedded default (Temporal dev server, Tansu, SQLite)
#   make test   lint, type-check and run the whole test suite
#   make bench  Linkway against the raw floor of its own stack (docs/benchmarks.md)
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit docs bench bench-quick clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Linkway needs $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The embedded default runs the demo pathway profile (durations in seconds) unless told
# otherwise: LINKWAY_PATHWAY_PROFILE=default make run
run: $(STAMP)
	LINKWAY_PATHWAY_PROFILE=$${LINKWAY_PATHWAY_PROFILE:-demo} exec $(BIN)/linkway dev

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/linkway docs --check
	$(BIN)/pytest -q -n 3 --dist loadfile

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

docs: $(STAMP)
	$(BIN)/linkway docs

# Not part of `make test`: minutes of load, and figures are for people to read, never
# assertions. The table prints; JSON goes to var/bench/.
bench: $(STAMP)
	$(BIN)/python -m bench

# Tiny sizes: checks only that every benchmark still produces a number.
bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) var
