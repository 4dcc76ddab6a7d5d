# Two commands for a fresh machine: `make serve` and `make test`. Everything else is a helper of those.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install serve test lint check-schema browser bench schema clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Migrate, seed demo data (once) and serve GraphiQL on http://127.0.0.1:8000/graphql
serve: install
	$(BIN)/gateway db upgrade
	$(BIN)/gateway seed
	$(BIN)/gateway serve

## Lint, type-check, schema drift, then the whole suite (SQLite, PostgreSQL, browser)
test: install browser lint check-schema
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check-schema: install
	$(BIN)/gateway schema check

schema: install
	$(BIN)/gateway schema export

## Debian packages the suite uses: chromium (the GraphiQL browser tests) and postgresql-client (pg_dump and
## pg_restore for `gateway db backup/restore`). Installed when we are root with apt; else the tests that need
## them skip locally and fail under CI=true.
browser:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v pg_dump >/dev/null 2>&1 || missing="$$missing postgresql-client"; \
	if [ -z "$$missing" ]; then \
		echo "debian packages: chromium and postgresql-client present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "missing and cannot install here:$$missing (the tests that need them skip; fail under CI=true)"; \
	fi

## Gateway vs. a naive N+1 Strawberry app on the same data (wrk from Debian when we can install it)
bench: install
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } || \
		echo "wrk not available: bench falls back to its Python load generator"
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info gateway.db gateway.db-wal gateway.db-shm
