# The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: install run test test-deps bench docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

run: install
	$(VENV)/bin/sipd $(ARGS)

test-deps:
	sh tests/install-deps.sh

test: install test-deps
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: install
	$(VENV)/bin/python -m bench

docs: install
	$(VENV)/bin/python -m sipd.rpc.apidoc > docs/api.md

clean:
	rm -rf $(VENV) build *.egg-info
