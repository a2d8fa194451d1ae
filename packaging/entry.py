"""Entry script of the PyInstaller binary: the `agentbox` command.

The fallback engines run scripts in a child process; in a frozen binary that child is the binary
itself, started with `--agentbox-fallback-child` (see agentbox/engines/_child.py). So are the
workers of `agentbox batch`, with `--agentbox-batch-worker FD` (see agentbox/batch/local.py).
"""

import sys

if sys.argv[1:] == ["--agentbox-fallback-child"]:
    from agentbox.engines._child import child_main

    child_main()
elif sys.argv[1:2] == ["--agentbox-batch-worker"] and len(sys.argv) == 3:
    from agentbox.batch.channel import Channel
    from agentbox.batch.local import serve

    serve(Channel.from_descriptor(int(sys.argv[2])))
else:
    from agentbox.cli import main

    main()
