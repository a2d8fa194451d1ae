# Thin wrappers over plain Python scripts: every step also runs without make (see each recipe).
PYTHON ?= python3
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
GUEST := agentbox/guest/sandbox.wasm
GUEST_SOURCES := $(shell find guest/src guest/wit guest/build.py -type f -name '*.py' -o -type f -name '*.wit')

.PHONY: setup guest demo test lint format bench bin archive smoke installers clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --quiet --upgrade pip
	$(VENV_PYTHON) -m pip install --quiet --group dev -e '.[fallback,mcp,serve]'
	touch $@

guest: $(GUEST)

$(GUEST): $(GUEST_SOURCES) | setup
	$(VENV_PYTHON) guest/build.py

demo: guest
	$(VENV)/bin/agentbox run examples/hello.py

test: guest
	$(VENV_PYTHON) -m pytest -n 2 -m "not binary"

lint: setup
	$(VENV_PYTHON) -m ruff check .
	$(VENV_PYTHON) -m ruff format --check .
	$(VENV_PYTHON) -m mypy

format: setup
	$(VENV_PYTHON) -m ruff format .
	$(VENV_PYTHON) -m ruff check --fix .

bench: guest
	$(VENV_PYTHON) benchmarks/startup.py

bin: guest
	$(VENV_PYTHON) packaging/build_binary.py

# The onedir archive package managers install (faster starts than the single file).
archive: guest
	$(VENV_PYTHON) packaging/build_binary.py --archive

# Builds the binary itself (or uses AGENTBOX_BINARY=path) and smoke-tests it.
smoke: guest
	$(VENV_PYTHON) -m pytest -m binary tests/binary

installers: setup
	$(VENV_PYTHON) packaging/render_installers.py

clean:
	rm -rf build dist $(GUEST) agentbox/guest/sandbox.json
