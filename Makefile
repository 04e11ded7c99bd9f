# trainyard developer commands. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements/constraints.txt | cksum | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help install demo test test-fast services render check lint lock bench bench-demo clean clean-all

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[record,train,evaluate,export,dev]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv and install trainyard with every step's dependencies

# PASSIVE: OpenMP threads sleep instead of spinning between ops, ~2.6x faster on a busy CPU.
demo: install ## run the whole pipeline locally on generated sample data (output in ./runs)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/trainyard run --local --parallel 2

services: ## install what the integration tests start (PostgreSQL)
	@scripts/install-test-services.sh

test: install services ## run the whole test suite (unit, integration, end-to-end)
	$(BIN)/python -m pytest

test-fast: install ## unit tests only (no services, no end-to-end run)
	$(BIN)/python -m pytest -m "not integration and not e2e"

render: install ## regenerate the workflow YAML and the chart templates from the Hera definitions
	$(BIN)/trainyard render

check: install ## fail when generated files are stale; lint the rendered manifests
	$(BIN)/trainyard render --check
	$(BIN)/trainyard lint

bench: install ## speed figures beside their anchors (BENCH_ARGS="--coco-images 5000 ..." for larger runs)
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

bench-demo: install ## time `make demo` in a fresh folder: each step, and the test plates it reads (about 5 min)
	$(BIN)/python scripts/bench_demo.py $(BENCH_ARGS)

lock: install ## re-lock every image's dependencies with hashes (images/*/requirements.txt); UPGRADE=1: newest allowed
	UV=$(BIN)/uv scripts/lock-images.sh $(if $(UPGRADE),--upgrade)

clean: ## remove local run folders and caches (keeps .venv, the registry, the database and the sample data)
	@echo "removing runs/local-* and .pytest_cache; kept: runs/registry (models), runs/trainyard.sqlite (history), runs/sample-dataset"
	@echo "  (everything: make clean-all; old runs and unpromoted models only: trainyard prune --models --yes)"
	rm -rf runs/local-* .pytest_cache

clean-all: ## remove ./runs entirely: runs, registered models, the database and the sample dataset
	@echo "removing ./runs: every run, the model registry, the run database and the sample dataset"
	rm -rf runs .pytest_cache
