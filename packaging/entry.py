"""Entry script of the PyInstaller binary: the `agentbox` command.

The fallback engines run scripts in a child process; in a frozen binary that child is the binary
itself, started with `--agentbox-fallback-child` (see agentbox/engines/_child.py).
"""

import sys

if sys.argv[1:] == ["--agentbox-fallback-child"]:
    from agentbox.engines._child import child_main

    child_main()
else:
    from agentbox.cli import main

    main()
