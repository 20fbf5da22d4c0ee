# Two commands on a fresh machine: `make book` (the compendium) and `make test`.
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PROFILE ?= quick
WORKERS ?= 2

.PHONY: test book grid bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[book,test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# Synthetic corpora -> grid of runs (resumes) -> analysis notebooks -> Jupyter Book in _build/html.
book: $(STAMP)
	$(VENV)/bin/radcore book --profile $(PROFILE) --workers $(WORKERS)

grid: $(STAMP)
	$(VENV)/bin/radcore grid --profile $(PROFILE) --workers $(WORKERS)

# Speed: DP-LoRA vs LoRA vs full FT per model shape and Opacus mode, then the levers radcore keeps, then
# LoRA / DP-LoRA at adapt_layers 1, 2 and all with the frozen prefix's one-time cost.
# QUICK=1: tiny-bert and minilm only (a few minutes on a 2-core CPU). Results in benchmarks/results/.
bench: $(STAMP)
	$(PY) benchmarks/throughput.py $(if $(QUICK),--quick,)
	$(PY) benchmarks/levers.py $(if $(QUICK),--steps 2 --rounds 1,)
	$(PY) benchmarks/kernel_env.py $(if $(QUICK),--steps 2 --rounds 1,)
	$(PY) benchmarks/adapt_layers.py $(if $(QUICK),--quick,)

clean:
	rm -rf _build data/synthetic runs book/runs book/analysis .cache/radcore
