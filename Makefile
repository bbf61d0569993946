# The two commands of the README: `make demo` and `make test`.
# Both create .venv if it is missing, install the package with its dev extras (again only
# when pyproject.toml changes) and make sure PostgreSQL is running (`make test`: and that
# pgbouncer is installed, for the pooler tests). `make test` checks that
# the sync twin of ims_repo/db/_async is what scripts/async_to_sync.py generates, runs the
# import-linter contracts of pyproject.toml (the layers), and lints the SQL before the
# tests: the query files with sqlfluff (.sqlfluff), the migrations with squawk (.squawk.toml);
# then scripts/smoke-wheel proves the built wheel, installed in a fresh venv with no extras,
# from outside the repository (the checkout's editable install cannot show a file missing
# from the wheel).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ims-repo-installed
IMS_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/ims_demo

.PHONY: demo test install bench bench-aio docs

demo: install
	PYTHON=$(BIN)/python scripts/ensure-postgres "$(IMS_DATABASE_URL)"
	IMS_DATABASE_URL="$(IMS_DATABASE_URL)" $(BIN)/ims-repo demo

test: install
	@PYTHON=$(BIN)/python scripts/ensure-postgres \
		|| echo "make: no PostgreSQL server; the tests will start a throwaway one if they can"
	scripts/ensure-pgbouncer
	$(BIN)/python scripts/async_to_sync.py --check
	$(BIN)/python scripts/filter_docs.py --check
	$(BIN)/ruff check ims_repo tests scripts smoke setup.py
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/sqlfluff lint ims_repo/queries docs/examples
	$(BIN)/squawk migrations/*.sql
	PYTHON=$(PYTHON) scripts/smoke-wheel
	$(BIN)/pytest

# The API reference, built with pdoc from the docstrings into build/docs (gitignored):
# open build/docs/index.html. tests/test_api_reference.py builds it too, and fails on a
# broken build, a public name without a docstring or a find() whose filters are stale.
docs: install
	$(BIN)/python scripts/api_reference.py build/docs

# The benchmark of SPEC §8 (needs the `bench` extra, SQLAlchemy): prints the three-way
# table; e.g. `make bench BENCH_ARGS="--size 20000 --write-doc"`.
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

# The async benchmarks of issue 12 (AsyncDatabase vs async psycopg, tasks vs threads,
# async vs sync ingest); e.g. `make bench-aio BENCH_ARGS="--size 20000 --write-doc"`.
bench-aio: install
	$(BIN)/python -m bench.aio $(BENCH_ARGS)

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml setup.py Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@
