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

DEMO   := demo-output
DEMODB := $(DEMO)/demo.db
HS     := $(BIN)/hikisig --db $(DEMODB)

demo: install  ## run the demo end to end and print where the results are
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(HS) synth --out $(DEMO)/synthetic-study --db $(DEMODB)
	$(HS) info
	$(HS) assess score --instrument hq25 $(DEMO)/synthetic-study/responses_hq25.csv --out $(DEMO)/hq25_scores.csv
	$(HS) assess criteria $(DEMO)/synthetic-study/criteria.csv --out $(DEMO)/criteria_status.csv
	$(HS) export anndata $(DEMO)/synthetic-study.h5ad
	$(HS) stats --severity hq25 --out $(DEMO)/stats.csv
	$(HS) model discriminate --out $(DEMO)/model-discriminate
	$(HS) model severity --out $(DEMO)/model-severity
	@echo "Demo results in $(DEMO)/: store demo.db, synthetic-study/ (with truth.json), hq25_scores.csv, criteria_status.csv, synthetic-study.h5ad, stats.csv, model-discriminate/, model-severity/ (see model_card.md)"

test: install lint  ## run the whole test suite (PostgreSQL tests against a throwaway server)
	scripts/with-postgres.sh $(BIN)/python -m pytest -q

lint: install  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install  ## benchmarks (timings belong here, not in tests)
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_synth.py
	$(BIN)/python benchmarks/bench_stats.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache demo-output
