"""docs/mcp.md states the server caps as `agentbox/limits.py` defines them."""

from pathlib import Path

from agentbox import limits

DOCS = Path(__file__).resolve().parent.parent.parent / "docs" / "mcp.md"


def test_the_documented_server_caps_are_the_defined_ones() -> None:
    text = " ".join(DOCS.read_text().split())
    for stated in [
        f"While {limits.MAX_ABANDONED_RUNS} such runs are held",
        f"add up to {limits.MAX_ABANDONED_MEMORY_BYTES // limits.MIB // 1024} GiB",
        f"at most {limits.MAX_ONE_SHOT_RUNS} in progress",
        f"at most {limits.MAX_REQUEST_BYTES // limits.MIB} MiB",
        f"longer than {limits.MAX_REQUEST_BYTES} bytes",
        f"within {limits.HTTP_HEAD_TIMEOUT_SECONDS:g} s",
        f"at most {limits.MAX_HTTP_CONNECTIONS} connections",
    ]:
        assert stated in text, stated
