"""The examples in examples/ work as the README says, against a real local HTTP server."""

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import run_cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def local_site() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>hello from the host</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/page"
    server.shutdown()


def test_hello_example() -> None:
    result = run_cli("run", str(EXAMPLES / "hello.py"))
    assert result.returncode == 0, result.stderr
    assert b"inside agentbox" in result.stdout
    assert b"host environment visible: nothing" in result.stdout


def test_fetch_url_skill_allows_listed_hosts_only(local_site: str) -> None:
    skills_file = str(EXAMPLES / "skills" / "fetch_url.py")
    demo = str(EXAMPLES / "fetch_demo.py")
    allowed = run_cli(
        "run", "--skills", skills_file, demo, local_site, env={"AGENTBOX_FETCH_ALLOW": "127.0.0.1"}
    )
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.decode().splitlines() == [
        "200 text/html 32 characters",
        "direct network access fails: URLError",
    ]
    refused = run_cli("run", "--skills", skills_file, demo, local_site)
    assert (
        refused.stdout.decode().splitlines()[0]
        == "refused: host '127.0.0.1' is not on the allowlist"
    )
