# Two commands: `make all` (the benchmark, default offline config) and `make test`.
# Extra Snakemake flags: make all ARGS="--configfile config/paper.yaml"

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=

.PHONY: all test install

all: $(STAMP)
	$(VENV)/bin/snakemake all --cores 8 $(ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

install: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml is newer than the last install.
$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -e '.[test]'
	touch $@
