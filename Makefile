# Every target sets itself up: on a fresh machine with only python3, `make demo` and
# `make test` create .venv and install the project into it first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint dev validate bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/cloudglue-pipeline demo

test: $(STAMP) lint
	$(PY) -m pytest -q -n 2 --dist loadgroup

lint: $(STAMP)
	$(PY) -m ruff check pipeline pipeline_tests bench

dev: $(STAMP)
	$(VENV)/bin/cloudglue-pipeline dev

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) data .dagster_home
