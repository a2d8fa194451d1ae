"""`python -m agentbox` is the `agentbox` command."""

from agentbox.cli import main

main()
