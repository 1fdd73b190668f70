# Fresh machine: `make demo` and `make test` create .venv and install everything themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch is pinned to the CPU wheel that lies on this machine's disk; an open range could pull CUDA.
TORCH  := torch==2.13.0

.PHONY: install demo test test-fast test-all lint bench real-study results clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/fusiondx demo --out demo_out

# The suite CI runs, a worker per core (pytest-xdist; a file's tests stay on one worker, so its
# module fixtures are built once; each worker trains on one thread, FUSIONDX_THREADS=1): 7.2 min
# on 2 quiet cores (2109 tests, 2026-12-01). Tests marked `slow` (every strategy trained on 800
# cases, killed studies, the search) and `realdata` (../shared/data) run with `make test-all`.
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not realdata" -n auto --maxprocesses 4 --dist loadfile --durations=25

# The fast lane: the contract suites of every registry, the layer order and the pure maths; no
# training (38 s on 2 cores, 823 tests). Run it while editing; `make test` before pushing.
FAST := tests/common/test_fusions.py tests/common/test_encoders.py tests/common/test_heads.py \
	tests/common/test_readers.py tests/common/test_task_types.py tests/common/test_registries.py \
	tests/common/test_attention_dropout.py tests/evaluation/test_weights.py tests/evaluation/test_regions.py \
	tests/evaluation/test_text_metrics.py tests/evaluation/test_survival_metrics.py tests/fusion/test_fusions_basic.py \
	tests/test_layers.py tests/test_catalog.py
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(FAST)

test-all: $(STAMP)
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist loadfile --durations=25

# Every table of BENCHMARKS.md (about an hour; installs the peer libraries on first use).
bench: $(STAMP)
	$(PY) -m bench all

# The fusion study on the real subsets in ../shared/data (skips cleanly without them); rewrites
# their results in the README and docs/real-data.md. About 40 minutes on 2 cores.
real-study: $(STAMP)
	$(PY) -m bench.results --only ptbxl,ptbxl_no_report,nih_cxr,mimic_iv,pneumoniamnist

# Every documented study, then every generated number in README.md and docs/ (about 3 hours on
# 2 cores; run it on a quiet machine).
results: $(STAMP)
	$(PY) -m bench.results

# The gates CI runs before the tests (also as pre-commit hooks: .pre-commit-config.yaml).
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) demo_out runs .pytest_cache
