VENV ?= .venv
PY := $(if $(wildcard $(VENV)/bin/python),$(VENV)/bin/python,python3)

.PHONY: check test dev bench fmt

check:
	$(PY) -m ruff check worker tests bench
	$(PY) -m ruff format --check worker tests bench
	$(PY) -m mypy

fmt:
	$(PY) -m ruff check --fix worker tests bench
	$(PY) -m ruff format worker tests bench

test:
	./scripts/test

dev:
	./scripts/dev

bench:
	$(PY) -m bench
