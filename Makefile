# Pilar — make help lists the commands. Everything runs inside .venv, created on first use.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PILAR := $(BIN)/pilar
# The local PostgreSQL used by `make test` (second pass) and `make bench`.
PG_URL ?= postgres://postgres@127.0.0.1:5432/pilar
B ?=

.DEFAULT_GOAL := help
.PHONY: help demo demo-federation serve test test-sqlite test-postgres lint format bench messages clean

help: ## List the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Pilar needs Python 3.11 or newer"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

messages: $(STAMP) ## Compile the translation catalogues (.po → .mo)
	$(PILAR) i18n_compile

demo: $(STAMP) messages ## Set up an SQLite node with ~10,000 synthetic persons and serve it on :8000
	PILAR_ENV=demo $(PILAR) demo

demo-federation: $(STAMP) messages ## Four federated nodes (hub, two institutes, auditor) on :8100–8103 under var/federation/
	PILAR_ENV=demo $(PILAR) federation demo

serve: $(STAMP) messages ## Serve Pilar on :8000 with the configured database (DATABASE_URL)
	$(PILAR) migrate --noinput
	$(PILAR) serve

test: $(STAMP) messages ## Lint, then the whole suite on SQLite and on PostgreSQL (when reachable)
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite: $(STAMP) messages ## The suite on SQLite
	env -u DATABASE_URL $(BIN)/pytest

test-postgres: $(STAMP) messages ## The suite on PostgreSQL at PG_URL; required when PILAR_REQUIRE_POSTGRES=1
	@if $(BIN)/python -m pilar.core.dbcheck "$(PG_URL)"; then \
		DATABASE_URL="$(PG_URL)" $(BIN)/pytest; \
	elif [ "$$PILAR_REQUIRE_POSTGRES" = "1" ]; then \
		echo "PostgreSQL at $(PG_URL) is required (PILAR_REQUIRE_POSTGRES=1) but not reachable"; exit 1; \
	else \
		echo "PostgreSQL at $(PG_URL) not reachable: PostgreSQL pass skipped (CI requires it)"; \
	fi

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check src bench tools
	$(BIN)/ruff format --check src bench tools
	$(BIN)/mypy src bench tools

format: $(STAMP) ## Format the code with ruff
	$(BIN)/ruff format src bench tools
	$(BIN)/ruff check --fix src bench tools

bench: $(STAMP) messages ## Benchmarks on PostgreSQL (B=<name> for one; durations in the README); results in bench/results/
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	DATABASE_URL="$(PG_URL)" $(BIN)/python -m bench $(B)

clean: ## Remove the virtual environment and local data
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
