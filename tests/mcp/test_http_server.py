"""`agentbox serve` as a real process on 127.0.0.1, driven with a real HTTP client (urllib)."""

import contextlib
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# `serve` is not in the CLI's command table yet, so start the Click command directly.
SERVE = "from agentbox.cli.serve import serve; serve(prog_name='agentbox serve')"


class Server:
    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        scheme: str = "Bearer",
    ) -> tuple[int, dict[str, Any]]:
        data = body if isinstance(body, bytes) else None
        if body is not None and data is None:
            data = json.dumps(body).encode()
        headers = {"Authorization": f"{scheme} {self.token if token is None else token}"}
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def run(self, code: str, **fields: Any) -> dict[str, Any]:
        status, body = self.request("POST", "/run", {"code": code, **fields})
        assert status == 200, body
        return body


@contextlib.contextmanager
def started_server(cwd: Path, *options: str, stderr: Any = None, **popen: Any) -> Iterator[Server]:
    """`agentbox serve --port 0 OPTIONS` as a real process, until the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        cwd=cwd,
        env=dict(os.environ),
        **popen,
    )
    try:
        url = re.search(r"listening on (\S+)", process.stdout.readline()).group(1)
        token = re.fullmatch(r"token: (\S+)\n", process.stdout.readline()).group(1)
        yield Server(url, token)
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with started_server(tmp_path_factory.mktemp("serve"), "--timeout", "5") as running:
        yield running


def test_listens_on_loopback_only(server: Server) -> None:
    assert server.url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize("token", ["", "wrong", "x" * 43])
def test_requests_without_the_token_are_refused(server: Server, token: str) -> None:
    status, body = server.request("POST", "/run", {"code": "print(1)"}, token=token)
    assert status == 401
    assert "token" in body["error"]
    assert server.request("GET", "/sessions", token=token)[0] == 401


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer ", "bEaReR"])
def test_the_scheme_is_case_insensitive(server: Server, scheme: str) -> None:
    """RFC 7235: `bearer TOKEN` is as good as `Bearer TOKEN`; the token itself is not."""
    status, body = server.request("POST", "/run", {"code": "print(1)"}, scheme=scheme)
    assert (status, body["stdout"]) == (200, "1\n")
    wrong = server.request("POST", "/run", {"code": "print(1)"}, token="wrong", scheme=scheme)
    assert wrong[0] == 401
    assert server.request("GET", "/skills", token=server.token.upper(), scheme=scheme)[0] == 401
    assert server.request("GET", "/skills", scheme="Basic")[0] == 401


def test_run_returns_the_json_result(server: Server) -> None:
    body = server.run("print(6 * 7)")
    assert body["stdout"] == "42\n"
    assert body["ok"] is True
    assert body["exit_code"] == 0
    failed = server.run("raise SystemExit(3)")
    assert failed["ok"] is False
    assert failed["exit_code"] == 3


def test_sessions_keep_state_and_are_isolated(server: Server) -> None:
    server.run("x = 1", session="h-a")
    assert server.run("print(x)", session="h-a")["stdout"] == "1\n"
    assert "NameError" in server.run("print(x)", session="h-b")["stderr"]
    assert server.run("import sys; print(sys.stdin.read())", stdin="in")["stdout"] == "in\n"


def test_timeout_resets_the_session_and_the_server_goes_on(server: Server) -> None:
    body = server.run("while True: pass", session="h-slow", timeout=1)
    assert body["limit"] == "timeout"
    assert body["session_reset"] is True
    assert server.run("print('alive')")["stdout"] == "alive\n"


def test_list_and_close_sessions(server: Server) -> None:
    server.run("pass", session="h/listed")
    status, listed = server.request("GET", "/sessions")
    assert status == 200
    assert "h/listed" in [item["id"] for item in listed["sessions"]]
    assert server.request("DELETE", "/sessions/h/listed") == (
        200,
        {"session": "h/listed", "closed": True},
    )
    assert server.request("DELETE", "/sessions/h/listed")[0] == 404
    assert server.request("GET", "/skills") == (200, {"skills": []})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        ([1, 2], "JSON object"),
        ({"session": "a"}, "missing field: code"),
        ({"code": 5}, "'code' has the wrong type"),
        ({"code": "pass", "timeout": 0}, "positive"),
        ({"code": "pass", "timeout": True}, "'timeout' has the wrong type"),
        ({"code": "pass", "extra": 1}, "unknown fields: extra"),
        ({"code": "pass", "session": ""}, "non-empty"),
        ({"code": "pass", "files": {"a": "b"}}, "'files' has the wrong type"),
        ({"code": "pass", "files": [{"name": "a"}]}, "one of `text` or `base64`"),
        ({"code": "pass", "files": [{"name": "/etc/x", "text": ""}]}, "must lie under /input/"),
        ({"code": "pass", "files": [{"name": "a", "text": "", "x": 1}]}, "`text` or `base64`"),
    ],
)
def test_bad_requests_get_400(server: Server, body: Any, message: str) -> None:
    status, answer = server.request("POST", "/run", body)
    assert status == 400
    assert message in answer["error"]


def test_oversized_body_gets_413(server: Server) -> None:
    status, answer = server.request("POST", "/run", b"x" * (16 * 1024 * 1024 + 1))
    assert status == 413
    assert "larger than" in answer["error"]


def test_serve_module_is_not_on_the_run_path(tmp_path: Path) -> None:
    code = "import sys, agentbox.cli.run; print('starlette' in sys.modules or 'mcp' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.stdout.strip() == "False"


def test_run_returns_output_files_in_the_json(server: Server) -> None:
    import base64

    from tests.files_script import SCRIPT, png_bytes

    body = server.run(SCRIPT)
    assert body["stdout"] == "8\n"
    files = {entry["name"]: entry for entry in body["files"]}
    assert files["red.png"]["media_type"] == "image/png"
    assert base64.b64decode(files["red.png"]["base64"]) == png_bytes()
    assert base64.b64decode(files["summary.txt"]["base64"]) == b"total 8\n"


def test_run_takes_input_files(server: Server) -> None:
    body = server.run(
        "print(open('/input/in.txt').read(), open('/input/b', 'rb').read())",
        files=[{"name": "in.txt", "text": "hé"}, {"name": "b", "base64": "AAE="}],
    )
    assert body["exit_code"] == 0, body
    assert body["stdout"] == "hé b'\\x00\\x01'\n"
