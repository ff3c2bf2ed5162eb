# The one entry point. `make test` and `make demo` set everything up on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
# The demo needs the package alone (msgspec and filelock): a fresh clone's `make demo` does not
# wait for the test tools. `make test` adds them to the same environment.
BASE_STAMP := $(VENV)/.installed-base

.PHONY: install demo test lint typecheck unit soak bench bench-quick clean

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "journal needs Python 3.10 or newer"'
	$(PYTHON) -m venv $(VENV)

$(BASE_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@touch $(BASE_STAMP)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP) $(BASE_STAMP)

install: $(STAMP)

demo: $(BASE_STAMP)
	$(BIN)/journal demo

lint: $(STAMP)
	$(BIN)/ruff format --check journal tests benchmarks examples
	$(BIN)/ruff check journal tests benchmarks examples
	$(BIN)/lint-imports

# The example apps are checked on their own: the tests load them by path, not as packages.
typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy examples/flask_chat
	$(BIN)/mypy examples/langgraph_chat

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

# Longer crash, damage and property runs (minutes, not part of `make test`).
soak: $(STAMP)
	JOURNAL_SOAK=1 $(BIN)/pytest tests/crash tests/property tests/core tests/concurrency

BENCH_STAMP := $(VENV)/.installed-bench

# The baselines are optional: if they cannot be installed, their rows are skipped with a note.
$(BENCH_STAMP): $(STAMP)
	-$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,bench]" && touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks

bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
