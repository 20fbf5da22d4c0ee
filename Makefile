# Two commands on a fresh machine: `make book` (the compendium) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test book install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

book: $(STAMP)
	@echo "make book: not yet - the compendium (grid, notebooks, Jupyter Book) is issue 3."
	@echo "Today: $(VENV)/bin/radcore synth / train / evaluate (see README.md)."

clean:
	rm -rf _build data/synthetic runs
