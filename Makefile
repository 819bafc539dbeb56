# The README's two commands: `make demo` and `make test`. Each creates .venv when missing.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export XLA_FLAGS ?= --xla_force_host_platform_device_count=1
export JAX_PLATFORMS ?= cpu
# pytest processes for `make test` (pytest-xdist; test files stay whole on one process, so a
# file's module fixtures run once): every core this process may use, at most 4
TEST_WORKERS ?= $(shell $(PY) -c "import os; print(min(4, len(os.sched_getaffinity(0))))" 2>/dev/null || echo 2)

.PHONY: demo test test-slow test-badinput test-browser lint bench install docs

$(STAMP): requirements.lock pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/outlearn run configs/demo.toml

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=20

test-badinput: $(STAMP)
	$(BIN)/python -m pytest -m badinput -q

# The report in headless Chromium at 1400 px and 390 px (installs Debian's chromium if missing).
test-browser: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	$(BIN)/python -m pytest -m browser -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

# docs/config.md, the config reference, from the config models (a test fails when it is stale)
docs: $(STAMP)
	$(BIN)/outlearn explain --markdown > docs/config.md.tmp && mv docs/config.md.tmp docs/config.md

bench: $(STAMP)
	$(BIN)/python benchmarks/collect.py
	$(BIN)/python benchmarks/train.py
