# wgpy: the two set-up commands of the README, and a few more.
#   make demo    the main job on a default
#   make test    the whole test suite (creates .venv, installs what the tests need)
#   make bench   the benchmarks

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: demo test bench system-packages clean

# Debian packages the tests and the tunnel use; installed (as root) only when one is missing.
system-packages:
	@sh scripts/system-packages.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: system-packages $(STAMP)
	$(VENV)/bin/wgpy demo

test: system-packages $(STAMP)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
