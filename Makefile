# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CORES   ?= 2
TEST_WORKERS ?= 2
SNAKE   := $(BIN)/snakemake --configfile config/demo.yaml --cores $(CORES)

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
	$(SNAKE) --report results/demo/report.html
	@echo
	@echo "Artefacts: results/demo/paper/  (tables .md/.tex/.csv, figures .png/.pdf, claims.md)"
	@echo "Report:    results/demo/report.html"

# Two workers, one test file each at a time (module fixtures such as the mini demo run once).
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# On a GPU node: the paper's networks at full size, random weights, no downloads (benchmarks/gpu.py).
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu.py

lint: $(STAMP)
	$(BIN)/snakemake --lint --configfile config/demo.yaml

clean-demo:
	rm -rf results/demo logs/demo
