# Two commands on a fresh clone: `make demo` and `make test`. Both create (or reuse) .venv and
# install what they need; nothing is downloaded at run time.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint venv clean

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,quality,neural,audio]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) run.py demo --out demo.mp4

# Lint runs first: style and errors (ruff), types of the kernels and the engine core (mypy), and
# the import contracts that keep the architecture one-directional (import-linter).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

test: lint
	$(PY) -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) demo.mp4
