"""`python -m agentbox.batch.worker FD`: a local batch worker (see `agentbox.batch.local`)."""

import sys
from multiprocessing.connection import Connection

from agentbox.batch.local import serve

if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
