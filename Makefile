# hikisig: make demo | make test | make bench | make lint | make install
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install hikisig with its dev tools

DEMO := demo-output

demo: install  ## synthesise the default study, run the main job, print where the report is
	$(BIN)/hikisig demo --out $(DEMO)

test: install lint  ## run the whole test suite (PostgreSQL tests against a throwaway server)
	scripts/ensure-chromium.sh
	scripts/with-postgres.sh $(BIN)/python -m pytest -q -n 2

lint: install  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install  ## benchmarks (timings belong here, not in tests; about 1.5 hours; HIKISIG_BENCH_DIR: 8 GB of scratch space)
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_synth.py
	$(BIN)/python benchmarks/bench_stats.py
	$(BIN)/python benchmarks/bench_scale_parquet.py
	$(BIN)/python benchmarks/bench_scale_permutation.py
	$(BIN)/python benchmarks/bench_demo.py
	$(BIN)/python benchmarks/bench_run_wide.py
	$(BIN)/python benchmarks/bench_web_load.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache demo-output
