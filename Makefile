# The two commands: `make run` starts Ruckus, `make test` runs the tests.
# Both create the virtual environment on first use.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: run test lint clean bench bench-fleet bench-pragmas bench-elements bench-storage

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev,dev-server]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/ruckus dev

lint: $(BIN)/.installed
	$(BIN)/ruff check .

test: $(BIN)/.installed
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-compose.sh
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

bench: $(BIN)/.installed
	$(BIN)/python -m bench.run

bench-fleet: $(BIN)/.installed
	$(BIN)/python -m bench.run --fleet 100,300,1000

bench-pragmas: $(BIN)/.installed
	$(BIN)/python -m bench.pragmas

bench-elements: $(BIN)/.installed
	$(BIN)/python -m bench.elements

bench-storage: $(BIN)/.installed
	$(BIN)/python -m bench.storage

.PHONY: chaos
chaos: $(BIN)/.installed
	$(BIN)/python -m chaos.run
