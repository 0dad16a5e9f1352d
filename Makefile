# Every target creates .venv if missing and installs what it needs; torch is pinned (CPU) by constraints.txt.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip
export HF_HUB_OFFLINE := 1
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

.PHONY: demo test bench gpu-check figures install clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install --quiet -c constraints.txt -e '.[all]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/pndmkit order

test: install
	$(BIN)/python -m pytest -n 2 -q

bench: install
	$(BIN)/python -m analysis.bench

# The prepared GPU check (analysis/gpu_check.py): no install, since a GPU machine's own python3 holds the CUDA build
# of torch (the pinned one here is CPU-only). GPU_CHECK_OUT=DIR writes elsewhere; add --overwrite to replace a result.
GPU_CHECK_OUT ?= analysis/results/gpu_check
gpu-check:
	PYTHONPATH=$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH} $(PY) -m analysis.gpu_check --out $(GPU_CHECK_OUT)

figures: install
	$(BIN)/python -m paper_figures

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
