# The README's two commands: `make run` and `make test`; `make check` and `make unit` while working.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: install run test test-deps check unit bench docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,dev]'
	touch $(STAMP)

run: install
	$(VENV)/bin/sipd $(ARGS)

test-deps:
	sh tests/install-deps.sh

test: install test-deps
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Lint (ruff) and type check (mypy), as configured in pyproject.toml.
check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Every test that needs no daemon, no peer process and no pjsua2 (markers set in tests/conftest.py),
# spread over the machine's cores.
unit: install
	$(VENV)/bin/python -m pytest -q -n auto -m "not daemon and not peer and not pjsua2" $(PYTEST_ARGS)

bench: install
	$(VENV)/bin/python -m bench

docs: install
	$(VENV)/bin/python -m sipd.rpc.apidoc > docs/api.md

clean:
	rm -rf $(VENV) build *.egg-info
