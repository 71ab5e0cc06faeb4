# Works on a machine with only python3: uv is bootstrapped into .tools/ when missing.
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif
RUN := $(UV) run --frozen

.PHONY: setup test lint pytest demo bench bench-large bench-scale fmt docs model-mutants

$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

# Bytecode is compiled up front, as pip does at install: where PYTHONDONTWRITEBYTECODE
# is set, Python would otherwise compile every module again in every process.
setup: $(UV)
	$(UV) sync --frozen --all-packages --compile-bytecode
	$(RUN) python -m compileall -q contactsync providers

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

pytest: setup
	$(RUN) pytest -q

test: lint pytest

# Each tests/model/mutants/*.patch applied to a scratch copy: the model suite must fail.
model-mutants: setup
	$(RUN) python tests/model/mutants/run.py

docs: setup
	NO_MKDOCS_2_WARNING=1 $(RUN) mkdocs build --strict --site-dir site

demo: setup
	$(RUN) contactsync demo

bench: setup
	$(RUN) python bench/run.py

bench-large: setup
	$(RUN) python bench/run.py --large
	$(RUN) python bench/memory.py
	$(RUN) python bench/nightly.py

# 1, 2 and 3 Celery workers (needs redis-server and PostgreSQL).
bench-scale: setup
	$(RUN) python bench/scale.py

fmt: setup
	$(RUN) ruff format .
	$(RUN) ruff check --fix .
