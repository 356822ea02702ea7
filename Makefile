# Maestro: `make run` serves the whole product, `make test` runs every test, `make bench` measures.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 8000

.PHONY: run test bench install assets migrate seed lint clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(VENV)/bin/activate
	$(PIP) install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

install: $(VENV)/.installed assets

# Mermaid for the diagram pages and Log4brains for the ADR export tests, from the lock file.
# Without npm the pages fall back to ASCII and the Log4brains test is skipped.
assets:
	@if command -v npm >/dev/null 2>&1; then \
		if [ ! -f node_modules/mermaid/dist/mermaid.min.js ] || [ ! -d node_modules/@log4brains/core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
			npm ci --no-audit --no-fund --loglevel=error || echo "npm ci failed: diagrams will show the ASCII view"; \
		fi; \
	else echo "npm not found: diagram pages will show the ASCII view and the Mermaid source"; fi

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py load_specialists
	$(PY) manage.py seed_demo
	PORT=$(PORT) $(PY) manage.py ensure_admin

run: seed
	DEBUG=$${DEBUG:-1} PORT=$(PORT) $(PY) manage.py serve --port $(PORT)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# `make bench faults` runs one benchmark: words after `bench` name modules, not make targets.
ifeq (bench,$(firstword $(MAKECMDGOALS)))
BENCH_NAMES := $(wordlist 2,$(words $(MAKECMDGOALS)),$(MAKECMDGOALS))
$(eval $(BENCH_NAMES):;@:)
endif

bench: install
	$(PY) -m bench $(BENCH_NAMES) $(BENCH_ARGS)

lint: install
	$(PY) -m ruff check .

clean:
	rm -rf var .pytest_cache
