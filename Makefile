# Two commands do all set-up on a fresh machine (Python 3.10+, PyPI only):
#   make parity   -- the main job: `resnet parity` on CPU (GPU with DEVICE=auto when one exists)
#   make test     -- lint + the pytest suite
# Both create or refresh .venv when pyproject.toml or constraints.txt change.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVICE ?= cpu
PARITY_ARGS ?=
PYTEST_ARGS ?= -n 2

.PHONY: venv parity test lint docs bench clean
venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

parity: $(STAMP)
	$(BIN)/resnet parity --device $(DEVICE) $(PARITY_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/resnet bench

clean:
	rm -rf $(VENV) site .pytest_cache .ruff_cache .hypothesis
