"""Entry script of the PyInstaller binary: the `agentbox` command."""

from agentbox.cli import main

main()
