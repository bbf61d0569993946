# The two commands of the README: `make demo` and `make test`.
# Both create .venv if it is missing, install the package with its dev extras (again only
# when pyproject.toml changes) and make sure PostgreSQL is running.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ims-repo-installed
IMS_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/ims_demo

.PHONY: demo test install

demo: install
	PYTHON=$(BIN)/python scripts/ensure-postgres "$(IMS_DATABASE_URL)"
	IMS_DATABASE_URL="$(IMS_DATABASE_URL)" $(BIN)/ims-repo demo

test: install
	@PYTHON=$(BIN)/python scripts/ensure-postgres \
		|| echo "make: no PostgreSQL server; the tests will start a throwaway one if they can"
	$(BIN)/ruff check ims_repo tests
	$(BIN)/mypy
	$(BIN)/pytest

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@
