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
HS     := $(BIN)/hikisig --db $(DEMODB) --study example-synthetic

demo: install  ## run the demo end to end and print where the results are
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(HS) init
	$(HS) import participants examples/data/participants.csv
	$(HS) import measurements examples/data/lab_wide.csv --unit-row
	$(HS) info
	$(HS) export anndata $(DEMO)/example.h5ad
	$(HS) export w4m $(DEMO)/w4m
	@echo "Demo results: store $(DEMODB), exports in $(DEMO)/ (example.h5ad, w4m/)"

test: install lint  ## run the whole test suite (PostgreSQL tests against a throwaway server)
	scripts/with-postgres.sh $(BIN)/python -m pytest -q

lint: install  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install  ## benchmarks (timings belong here, not in tests)
	$(BIN)/python benchmarks/bench_import.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache demo-output
