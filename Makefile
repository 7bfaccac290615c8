# IED back office. `make run` starts the whole product; `make test` runs the suite on PostgreSQL.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test test-sqlite bench bench-delivery faults lint audit install install-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: web server, RQ worker with scheduler, embedded Redis and a local mail catcher (Ctrl-C stops all)
run: $(VENV)/.installed
	$(FLASK) db upgrade
	$(FLASK) ied seed-demo --if-empty
	MAIL_CATCHER_ENABLED=1 $(FLASK) ied dev

## test: the suite on a throwaway PostgreSQL cluster and a real Redis, both torn down afterwards
test: $(VENV)/.installed-dev
	IED_TEST_DB=postgres $(BIN)/pytest $(PYTEST_ARGS)

## test-sqlite: the same suite on SQLite
test-sqlite: $(VENV)/.installed-dev
	IED_TEST_DB=sqlite $(BIN)/pytest $(PYTEST_ARGS)

## bench: every hot page over HTTP under gunicorn at 10k and 1M leads against its floors; writes docs/benchmarks.md
bench: $(VENV)/.installed-dev
	$(BIN)/python tests/bench/bench_pages.py $(BENCH_ARGS)

## bench-delivery: emails/s with 2 workers to a local SMTP sink vs a no-op RQ job's rate; fails on a missed target
bench-delivery: $(VENV)/.installed-dev
	$(BIN)/python -m tests.bench.bench_delivery $(BENCH_ARGS)

## faults: 1,000 deliveries through SMTP trouble, workers SIGKILLed, Redis down 30 s; fails on a figure off
faults: $(VENV)/.installed-dev
	$(BIN)/python -m tests.faults.run_faults $(FAULTS_ARGS)

## lint: ruff's checks and its formatter, as CI runs them
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check ied tests
	$(BIN)/ruff format --check ied tests

## audit: pip-audit of every installed dependency against PyPI's vulnerability data; fails when any
## package could not be audited (--strict), so an unreachable service is never a clean report
audit: $(VENV)/.installed-audit
	$(BIN)/pip-audit --strict --skip-editable --progress-spinner off $(AUDIT_ARGS)

$(VENV)/.installed-audit: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,audit]'
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed
