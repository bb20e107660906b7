# TinyTorch: every target creates and uses the project-local virtual environment .venv/.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test demo build check lint bench clean help

help:
	@echo "make install  create .venv and install tinytorch, tito and the test tools"
	@echo "make demo     install, then take a throwaway workspace through the first modules"
	@echo "make test     install, then lint, check the generated files and run the whole test suite"
	@echo "make build    regenerate the package and notebooks from source/"
	@echo "make check    lint and check that generated files match source/"
	@echo "make bench    run the benchmarks against PyTorch CPU"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ipykernel)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

test: install
	$(BIN)/ruff check .
	$(BIN)/tito build --check
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

demo: install
	$(BIN)/python -m tito.demo

build: install
	$(BIN)/tito build

lint: install
	$(BIN)/ruff check .

check: lint
	$(BIN)/tito build --check

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
