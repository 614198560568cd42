# Two commands on a fresh clone: `make demo` and `make test`. Both create (or reuse) .venv and
# install what they need; nothing is downloaded at run time.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint venv clean test-np2 gpu-prep gpu-check gpu-rehearse

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-cache-dir --upgrade pip
	$(PY) -m pip install --quiet --no-cache-dir -e ".[dev,quality,neural,audio]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) run.py demo --out demo.mp4 --overwrite

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

# numpy 2 without mediapipe (README "numpy 2"): the full install less mediapipe (which pins
# numpy<2 and brings OpenCV), in its own venv; everything that does not track must pass there.
NP2 ?= /tmp/np2venv
$(NP2)/.installed: pyproject.toml
	@test -x $(NP2)/bin/python || $(PYTHON) -m venv $(NP2)
	$(NP2)/bin/python -m pip install --quiet 'numpy>=2,<3' opencv-python-headless torch==2.13.0 \
		numba scipy scikit-image pyyaml safetensors tqdm matplotlib pyvirtualcam imageio-ffmpeg \
		sounddevice 'onnx>=1.16' onnxruntime pytest pytest-timeout
	@touch $@

test-np2: $(NP2)/.installed
	PYTHONPATH=. $(NP2)/bin/python -m pytest -m "not tracking" -q -p no:cacheprovider

# The GPU check (README "The GPU check"): gpu-prep makes .gpu-check/ here (tracked clips,
# profiles; needs ../shared/eval and mediapipe), gpu-check runs on the GPU machine (the working
# tree and .gpu-check/ copied there; `bash bench/gpu_check.sh`), gpu-rehearse runs it here,
# without the CUDA parts, from a copy of exactly what travels, under numpy 2 without mediapipe.
gpu-prep: $(STAMP)
	PUPPETEER_PY=$(PY) bash bench/gpu_prep.sh

gpu-check:
	bash bench/gpu_check.sh

gpu-rehearse: $(NP2)/.installed
	$(PY) -m bench.gpu_check rehearse --python $(NP2)/bin/python
