# Two commands on a fresh clone: `make demo` and `make test`. Both create (or reuse) .venv and
# install what they need; nothing is downloaded at run time.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test venv clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,quality,neural]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) run.py demo --out demo.mp4

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) demo.mp4
