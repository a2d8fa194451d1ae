"""The one place the agentbox version is defined (pyproject, binaries and installers read it)."""

__version__ = "0.1.0"
