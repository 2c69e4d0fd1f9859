# Two commands: `make all` (the benchmark, default offline config) and `make test`; `make report` then
# writes Snakemake's report of that run to results/<config>/report.html (docs/report.md).
# Extra Snakemake flags: make all ARGS="--configfile config/paper.yaml"
# Both install from requirements.lock (every package pinned); `make lock` regenerates it from pyproject.toml.

PYTHON ?= python3
VENV := .venv
LOCK := requirements.lock
STAMP := $(VENV)/.installed
PIP_TOOLS := pip-tools==7.6.2
ARGS ?=
PYTEST_ARGS ?=

.PHONY: all test install lock report rehearsal rehearsal-slurm

all: $(STAMP)
	$(VENV)/bin/snakemake all --cores 8 $(ARGS)

# The paper run in miniature, offline (docs/paper-run.md, "The rehearsal"): config/rehearsal.yaml over
# config/paper.yaml; results/rehearsal/. Through your SLURM: make rehearsal ARGS="--profile <profile>".
rehearsal: $(STAMP)
	$(VENV)/bin/snakemake all --cores 2 $(ARGS) --configfile config/paper.yaml config/rehearsal.yaml

# The rehearsal through a one-node SLURM cluster started on this machine (as root, Debian's slurm-wlm and
# munge; tests/slurm_cluster.py), with profiles/slurm overlaid for its one CPU partition.
rehearsal-slurm: $(STAMP)
	$(VENV)/bin/python tests/slurm_cluster.py all --cores 2 $(ARGS) --configfile config/paper.yaml config/rehearsal.yaml

# Brings the run up to date first (nothing to do after `make all`), then writes the report under a
# temporary name and renames it, so a failed report leaves no half-written file in results/.
report: $(STAMP)
	$(VENV)/bin/snakemake all --cores 8 $(ARGS)
	name=$$($(VENV)/bin/python workflow/scripts/config_name.py $(ARGS)) && \
	$(VENV)/bin/snakemake all $(ARGS) --report results/$$name/report.partial.html && \
	mv results/$$name/report.partial.html results/$$name/report.html && \
	echo "report: results/$$name/report.html"

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

install: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Exact versions from the lock, then the project itself without resolving anything again.
# Reinstall only when the lock or pyproject.toml is newer than the last install.
$(STAMP): $(LOCK) pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -r $(LOCK)
	$(VENV)/bin/pip install --no-deps -e .
	touch $@

# pip-compile pins every transitive dependency of pyproject.toml (test extra included). torch's local
# version tag (+cpu) is dropped so the same pin takes the CPU wheel here and the CUDA build on a GPU machine.
lock: | $(VENV)/bin/python
	$(VENV)/bin/pip install -q '$(PIP_TOOLS)'
	$(VENV)/bin/pip-compile --quiet --extra test --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links --output-file $(LOCK) pyproject.toml
	sed -i -E 's/^(torch==[0-9.]+)\+[a-z0-9]+$$/\1/' $(LOCK)
