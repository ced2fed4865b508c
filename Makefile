# Two set-up commands (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,torch,web]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/boda scan examples/images --report out/demo-report

test: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/python -m pytest -n 2 -q

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) out examples/images/.boda
