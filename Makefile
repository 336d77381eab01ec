# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CORES   ?= 2
TEST_WORKERS ?= 2
# The greedy job selector: the default ILP one solves a CBC problem per scheduling round, which
# costs the demo's many seconds-long jobs more than it gains (docs/benchmarks.md).
SNAKE   := $(BIN)/snakemake --configfile config/demo.yaml --cores $(CORES) --scheduler greedy
# `make report CONFIG=config/config.yaml`: the HTML report of any config's run.
CONFIG  ?= config/demo.yaml
EXPERIMENT = $(shell sed -n 's/^experiment:[[:space:]]*\([^[:space:]#]*\).*/\1/p' $(CONFIG))

.PHONY: venv demo test report clean-demo lint gpu-check

venv: $(STAMP)

$(STAMP): requirements.txt requirements-extra.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements-extra.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(SNAKE) all
	$(MAKE) --no-print-directory report CONFIG=config/demo.yaml
	@echo "Artefacts: results/demo/paper/  (tables .md/.tex/.csv/.html, figures .png/.pdf, claims.md)"

# Two workers, one test file each at a time (module fixtures such as the mini demo run once).
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# On a GPU node: the paper's networks at full size, random weights, no downloads (benchmarks/gpu.py).
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu.py

# Every table inline and the claims check on the front page (needs the finished run's outputs).
report: $(STAMP)
	$(BIN)/snakemake --configfile $(CONFIG) --cores 1 --report results/$(EXPERIMENT)/report.html
	@echo "Report: results/$(EXPERIMENT)/report.html"

# Also part of `make test` (tests/test_conventions.py).
lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakemake --lint --configfile config/demo.yaml
	$(BIN)/python -m snakefmt --check Snakefile workflow/rules

clean-demo:
	rm -rf results/demo logs/demo
