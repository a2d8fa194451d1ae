"""`python -m agentbox.batch.worker FD`: a local batch worker (see `agentbox.batch.local`)."""

import sys

from agentbox.batch.channel import Channel
from agentbox.batch.local import serve

if __name__ == "__main__":
    serve(Channel.from_descriptor(int(sys.argv[1])))
