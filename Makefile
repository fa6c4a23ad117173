# Two entry points a fresh machine needs: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/harvester: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(BIN)/harvester

demo: $(BIN)/harvester
	$(BIN)/harvester demo --out demo-out

lint: $(BIN)/harvester
	$(BIN)/ruff check harvester tests benchmarks
	$(BIN)/ruff format --check harvester tests benchmarks
	$(BIN)/mypy --strict

test: lint
	$(BIN)/pytest -q

bench: $(BIN)/harvester
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
