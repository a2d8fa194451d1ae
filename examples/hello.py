"""A first script for `agentbox run examples/hello.py`: what the sandbox can and cannot do."""

import json
import os
import platform
import sys

print(f"Hello from CPython {platform.python_version()} on {sys.platform}, inside agentbox.")
print("json works:", json.dumps({"answer": 6 * 7}))
print("host environment visible:", dict(os.environ) or "nothing")
try:
    print("host files visible at /:", os.listdir("/") or "nothing")
except OSError as error:
    print("host files:", type(error).__name__, "(nothing is mounted)")
try:
    import socket

    socket.create_connection(("127.0.0.1", 80), timeout=1)
except OSError as error:
    print("network:", type(error).__name__, "(no network in the sandbox)")
