# The README's two commands: `make run` and `make test`. Each installs what it needs first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
CONFIG  ?= configs/demo.yaml
PYTEST_ARGS ?=

.PHONY: install install-local install-ray run demo-replay test bench lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# llama-cpp-python ships only its source on PyPI: the build takes ~9 min on 2 cores.
$(VENV)/.installed-local: setup.cfg $(VENV)/.installed
	@$(BIN)/python -c "import llama_cpp" 2>/dev/null || \
	  echo ">>> building llama-cpp-python from source (about 9 minutes on 2 cores; it is built once)"
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install -q -e '.[dev,local]'
	touch $@

# the ray extra (plain `ray`, ~285 MB, 25-60 s): `make test` installs it so its tests run on every CI run
$(VENV)/.installed-ray: setup.cfg $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev,ray]'
	touch $@

install: $(VENV)/.installed

install-local: $(VENV)/.installed-local

install-ray: $(VENV)/.installed-ray

run: install-local
	$(BIN)/swarm --run-dir .swarm up $(CONFIG)

demo-replay: install
	$(BIN)/swarm --run-dir .swarm-replay up configs/replay-demo.yaml

test: install-local install-ray
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install-local install-ray
	@for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: install
	$(BIN)/python -m compileall -q orchestrator agents bus memory tests bench

clean:
	rm -rf .swarm .swarm-replay build *.egg-info
