# Taskmill developer tasks. `make` alone lists them.
# The test suite itself lives in scripts/test; this file only prepares what it needs.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --no-print-directory

PIP_FLAGS := --quiet --disable-pip-version-check
# Extra arguments for pytest in `make test`, e.g. make test ARGS="-k claim -x".
ARGS ?=
# The port of `make serve`, e.g. make serve PORT=8001.
PORT ?= 8000

.PHONY: help sysdeps venvs .venv .venv-django60 .venv-peers test chaos lint fmt demo serve bench clean

help: ## List the targets
	@echo "Taskmill make targets:"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Quick runs: TASKMILL_TEST_ONLY=sqlite make test    (one database)"
	@echo "            make test ARGS='-k claim'              (extra pytest arguments)"
	@echo "            scripts/test -k claim                  (same, venvs already built)"

sysdeps: ## Install libmariadb-dev, pkg-config and chromium (Debian) if missing
	@scripts/install-sysdeps

venvs: .venv .venv-django60 ## Build both virtualenvs

.venv: .venv/.installed ## Main virtualenv: Django 6.1, test, lint and type tools
.venv-django60: .venv-django60/.installed ## Second virtualenv: Django 6.0, test tools only

# The stamp is rebuilt (pip install into the existing venv) when the project metadata or the
# pins change; the venv itself is recreated only when its interpreter doesn't run or is < 3.12.
.venv/.installed: pyproject.toml requirements/dev.txt requirements/docs.txt | sysdeps
	@$(call ensure_venv,.venv)
	.venv/bin/python -m pip install $(PIP_FLAGS) -e . -r requirements/dev.txt
	@touch $@

.venv-django60/.installed: pyproject.toml requirements/django60.txt | sysdeps
	@$(call ensure_venv,.venv-django60)
	.venv-django60/bin/python -m pip install $(PIP_FLAGS) -e . -r requirements/django60.txt
	@touch $@

# The peers' virtualenv: Huey, Celery, PgQueuer and matplotlib for `make bench`, kept apart
# from .venv so they never change what Taskmill is tested with. Not part of `make venvs`.
.venv-peers: .venv-peers/.installed ## Peers virtualenv for make bench: Huey, Celery, PgQueuer, matplotlib
.venv-peers/.installed: requirements/peers.txt
	@$(call ensure_venv,.venv-peers)
	.venv-peers/bin/python -m pip install $(PIP_FLAGS) -r requirements/peers.txt
	@touch $@

define ensure_venv
if ! $(1)/bin/python -c 'import sys; raise SystemExit(sys.version_info < (3, 12))' 2>/dev/null; then \
	python=$$(scripts/find-python); \
	echo "creating $(1) with $$python"; \
	rm -rf $(1); \
	"$$python" -m venv $(1); \
fi
endef

test: sysdeps .venv .venv-django60 ## Run everything: lint, checks, tests on 3 databases x 2 Djangos
	scripts/test $(ARGS)

# The chaos suite at full size (10,000-task kill storms, ...) on each database; `make test`
# runs the same tests in a bounded form. Pick databases with TASKMILL_TEST_ONLY, as for test.
chaos: sysdeps .venv .venv-django60 ## Run tests/chaos at full size on every database (long)
	TASKMILL_CHAOS=long TASKMILL_TEST_COVERAGE=0 TASKMILL_TEST_STAGE_TIMEOUT=7200 \
		scripts/test --chaos-only $(ARGS)

lint: .venv ## ruff check, ruff format --check, mypy
	@status=0; \
	.venv/bin/ruff check . || status=1; \
	.venv/bin/ruff format --check . || status=1; \
	.venv/bin/mypy taskmill tests || status=1; \
	exit $$status

fmt: .venv ## Apply ruff fixes and formatting
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

demo: .venv ## Migrate and run the example project's demo: a real worker, a tour, a summary
	cd example && ../.venv/bin/python manage.py migrate --noinput && ../.venv/bin/python manage.py taskmill_demo

serve: .venv ## Run the example site with its embedded worker on 127.0.0.1:8000 (PORT=... to change)
	cd example && ../.venv/bin/python manage.py migrate --noinput \
		&& ../.venv/bin/python manage.py demo_superuser --port $(PORT) \
		&& exec ../.venv/bin/python manage.py runserver 127.0.0.1:$(PORT)

# A peer that failed to install is reported as such in the table; the bench still runs.
# Extra arguments for python -m bench, e.g. make bench BENCH_ARGS="--quick --databases sqlite".
BENCH_ARGS ?=
bench: .venv ## Run the benchmarks, Taskmill and its peers (python -m bench)
	@$(MAKE) .venv-peers || echo "make bench: building .venv-peers failed; the peers will be reported as not installed"
	@# Bytecode written once, as an installed package has it: with PYTHONDONTWRITEBYTECODE set,
	@# every worker start would otherwise compile Taskmill again and count that as start-up.
	.venv/bin/python -m compileall -q taskmill bench
	.venv/bin/python -m bench $(BENCH_ARGS)

.PHONY: docs docs-serve package-check

docs: .venv ## Build the documentation site into site/ (MkDocs, warnings are errors)
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict

docs-serve: .venv ## Serve the documentation with live reload on http://127.0.0.1:8000
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs serve

package-check: .venv ## Build the wheel and sdist, install the wheel in a clean venv, run the example's worker
	.venv/bin/python scripts/check_package.py

clean: ## Remove virtualenvs, caches and build output
	rm -rf .venv .venv-django60 .venv-peers .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov build dist site
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
