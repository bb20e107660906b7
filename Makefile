# TinyTorch: every target creates and uses the project-local virtual environment .venv/.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test demo build check lint bench mutation confinement services browser clean help

help:
	@echo "make install  create .venv and install tinytorch, tito and the test tools"
	@echo "make demo     install, then take a throwaway workspace through the first modules"
	@echo "make test     install, then lint, check the layers and generated files, run the whole test suite"
	@echo "make build    regenerate the package and notebooks from source/"
	@echo "make check    lint, check the import layers (lint-imports) and that generated files match source/"
	@echo "make bench    run the benchmarks against PyTorch CPU"
	@echo "make mutation mechanical mutants of every module's solutions against its tests (docs/mutation/)"
	@echo "make confinement  install bubblewrap, which tito grade confines student code with (root, apt-get)"
	@echo "make services install Redis and PostgreSQL, for grading over a queue and its tests (root, apt-get)"
	@echo "make browser  install Chromium and its driver, for the capstone page's browser test (root, apt-get)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ipykernel)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

test: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/tito build --check
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

demo: install
	$(BIN)/python -m tito.demo

build: install
	$(BIN)/tito build

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

check: lint
	$(BIN)/tito build --check

bench: install
	$(BIN)/python -m benchmarks

# Not part of `make test` or CI: minutes per module. MODULES="02 05" narrows it.
mutation: install
	$(BIN)/python -m autograder.mutation $(MODULES) --jobs 2

# `tito grade` runs student code in a bubblewrap sandbox (docs/instructors.md, Confinement):
# a system package, installed here when it is missing and this is root with apt-get. This
# never fails: without it, `tito grade` refuses to grade unless told --no-confine.
confinement:
	@if command -v bwrap >/dev/null 2>&1; then \
	  echo "bubblewrap: $$(command -v bwrap)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing bubblewrap with apt-get"; \
	  if apt-get install -y -qq bubblewrap >/dev/null 2>&1 \
	    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq bubblewrap >/dev/null 2>&1; }; then \
	    echo "bubblewrap: installed"; \
	  else echo "could not install bubblewrap: tito grade will refuse to grade without --no-confine"; fi; \
	else \
	  echo "bubblewrap (bwrap) is missing: install it as root (apt-get install bubblewrap) for tito grade to confine student code"; \
	fi

# Grading over a queue (docs/instructors.md, section 8) runs on Redis and PostgreSQL; its tests
# (tests/scale/) start their own on loopback ports and skip without the programs, except in CI.
# Installed here when missing and this is root with apt-get; never fails.
services:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing="$$missing postgresql"; \
	if [ -z "$$missing" ]; then \
	  echo "services: redis-server and postgresql are installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing$$missing with apt-get"; \
	  if apt-get install -y -qq $$missing >/dev/null 2>&1 \
	    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $$missing >/dev/null 2>&1; }; then \
	    echo "services: installed$$missing"; \
	  else echo "could not install$$missing: the queue's tests will skip (fail in CI)"; fi; \
	else \
	  echo "missing:$$missing; install as root (apt-get install$$missing) to grade over a queue and test it"; \
	fi

# The capstone page's test (tests/serving/test_page.py) drives Debian's headless Chromium with
# selenium; it skips without chromium and chromedriver, except in CI. Installed here when missing
# and this is root with apt-get; never fails.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  echo "browser: $$(command -v chromium) and $$(command -v chromedriver)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium and chromium-driver with apt-get"; \
	  if apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
	    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; }; then \
	    echo "browser: installed"; \
	  else echo "could not install chromium: the browser test will skip (fail in CI)"; fi; \
	else \
	  echo "chromium or chromedriver is missing; install as root (apt-get install chromium chromium-driver) for the browser test"; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
