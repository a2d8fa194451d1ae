"""The one place the agentbox version is defined (pyproject, binaries and installers read it)."""

__version__ = "0.1.0"

# The PyPI distribution (`agentbox` on PyPI is an unrelated project); command and import stay
# `agentbox`. A test keeps pyproject.toml's name equal to it.
DISTRIBUTION = "agentbox-wasm"
