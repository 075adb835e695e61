# wgpy: the two set-up commands of the README, and a few more.
#   make demo    the main job on a default
#   make test    the whole test suite (creates .venv, installs what the tests need)
#   make install the wgpy command on PATH: a venv of its own in $(PREFIX)/lib/wgpy, linked as $(PREFIX)/bin/wgpy
#   make uninstall                               remove them again
#   make bench   the benchmarks (the tunnel benchmark needs root; docs/performance.md)
#   make fuzz TARGET=receive_path SECONDS=600    one fuzz target under atheris (tests/fuzz/run.py --list)
#   make fuzz-coverage                           coverage of wgpy/core reached by the fuzz corpora

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
FUZZ_STAMP := $(VENV)/.installed-fuzz
TARGET  ?= receive_path
SECONDS ?= 60
PREFIX  ?= /usr/local

.PHONY: demo test install uninstall bench fuzz fuzz-coverage system-packages clean

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

# As pipx does: the command in a venv of its own (not the checkout's .venv: the checkout may go), on PATH.
install:
	rm -rf $(PREFIX)/lib/wgpy
	mkdir -p $(PREFIX)/lib $(PREFIX)/bin
	$(PYTHON) -m venv $(PREFIX)/lib/wgpy
	$(PREFIX)/lib/wgpy/bin/pip install --quiet .
	ln -sf $(PREFIX)/lib/wgpy/bin/wgpy $(PREFIX)/bin/wgpy
	@echo "installed $(PREFIX)/bin/wgpy"

uninstall:
	rm -rf $(PREFIX)/lib/wgpy $(PREFIX)/bin/wgpy

bench: system-packages $(STAMP)
	$(VENV)/bin/pip install --quiet -e '.[bench]'
	$(VENV)/bin/python benchmarks/run_all.py

$(FUZZ_STAMP): pyproject.toml $(STAMP)
	$(VENV)/bin/pip install --quiet -e '.[test,fuzz]'
	touch $(FUZZ_STAMP)

fuzz: $(FUZZ_STAMP)
	$(VENV)/bin/python -m tests.fuzz.run $(TARGET) --seconds $(SECONDS)

fuzz-coverage: $(FUZZ_STAMP)
	mkdir -p build/fuzz
	COVERAGE_FILE=build/fuzz/.coverage $(VENV)/bin/python -m coverage run --source=wgpy/core -m tests.fuzz.run --corpus
	COVERAGE_FILE=build/fuzz/.coverage $(VENV)/bin/python -m coverage report

clean:
	rm -rf $(VENV) build *.egg-info
