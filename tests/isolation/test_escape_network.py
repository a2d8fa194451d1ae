"""Network: no WASI socket capability is granted, so nothing leaves the sandbox. A real TCP
listener and UDP socket on 127.0.0.1 check that no connection and no byte ever arrive."""

import socket
import textwrap
from collections.abc import Iterator

import pytest

from agentbox import ExitCode, Sandbox
from tests.helpers import run_cli


class Listeners:
    def __init__(self) -> None:
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.tcp_port = self.tcp.getsockname()[1]
        self.udp_port = self.udp.getsockname()[1]

    def assert_untouched(self) -> None:
        self.tcp.settimeout(0.3)
        with pytest.raises(TimeoutError):
            connection, peer = self.tcp.accept()
            connection.close()
            pytest.fail(f"the guest connected to the host listener from {peer}")
        self.udp.setblocking(False)
        with pytest.raises(BlockingIOError):
            data, peer = self.udp.recvfrom(65536)
            pytest.fail(f"the guest sent {data!r} to the host UDP socket from {peer}")

    def close(self) -> None:
        self.tcp.close()
        self.udp.close()


@pytest.fixture
def listeners() -> Iterator[Listeners]:
    opened = Listeners()
    yield opened
    opened.close()


ATTEMPTS = {
    "create_connection": "socket.create_connection(('127.0.0.1', TCP), timeout=2).sendall(b'x')",
    "raw connect": "s = socket.socket(); s.connect(('127.0.0.1', TCP)); s.sendall(b'x')",
    "ipv6 connect": "socket.create_connection(('::1', TCP), timeout=2)",
    "udp sendto": "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', UDP))",
    "udp connect+send": (
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(('127.0.0.1', UDP)); "
        "s.send(b'x')"
    ),
    "bind+listen": "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); s.accept()",
    "getaddrinfo": "socket.getaddrinfo('localhost', TCP)",
    "gethostbyname": "socket.gethostbyname('localhost')",
    "socketpair": "socket.socketpair()",
    "fresh _socket module": (
        "import _imp, importlib.machinery as m\n"
        "raw = _imp.create_builtin(m.ModuleSpec('_socket', None, origin='built-in'))\n"
        "raw.socket(raw.AF_INET, raw.SOCK_STREAM).connect(('127.0.0.1', TCP))"
    ),
    "urllib": "import urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{TCP}/', timeout=2)",
    "http.client": (
        "import http.client; c = http.client.HTTPConnection('127.0.0.1', TCP, timeout=2); "
        "c.request('GET', '/')"
    ),
    "asyncio": ("import asyncio\nasyncio.run(asyncio.open_connection('127.0.0.1', TCP))"),
}

TEMPLATE = textwrap.dedent(
    """
    import socket, sys
    TCP, UDP = int(sys.argv[1]), int(sys.argv[2])
    try:
        exec(sys.argv[3])
    except Exception as error:
        print("BLOCKED", type(error).__name__, error)
    else:
        print("LEAK")
    """
)


@pytest.mark.parametrize("statement", ATTEMPTS.values(), ids=ATTEMPTS.keys())
def test_network_is_denied(image_sandbox: Sandbox, listeners: Listeners, statement: str) -> None:
    args = [str(listeners.tcp_port), str(listeners.udp_port), statement]
    result = image_sandbox.run(TEMPLATE, args=args)
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.limit is None
    assert result.stdout.startswith("BLOCKED "), result.stdout
    listeners.assert_untouched()


def test_socket_creation_is_a_permission_error(sandbox: Sandbox) -> None:
    """The documented symptom (docs/security.md): PermissionError, before any address is used."""
    result = sandbox.run("import socket\nsocket.socket()")
    assert result.exit_code == ExitCode.SCRIPT_ERROR
    assert result.stderr.rstrip().splitlines()[-1].startswith("PermissionError")


def test_network_is_denied_through_the_cli(listeners: Listeners) -> None:
    code = TEMPLATE.encode()
    statement = ATTEMPTS["create_connection"]
    completed = run_cli(
        "run", "-", str(listeners.tcp_port), str(listeners.udp_port), statement, stdin=code
    )
    assert completed.returncode == ExitCode.OK, completed.stderr
    assert completed.stdout.startswith(b"BLOCKED ")
    listeners.assert_untouched()


def test_network_is_denied_with_a_rw_mount(listeners: Listeners, tmp_path) -> None:
    """Granting files does not grant sockets."""
    box = Sandbox(timeout=20, mounts=[f"{tmp_path}:/data:rw"])
    args = [str(listeners.tcp_port), str(listeners.udp_port), ATTEMPTS["raw connect"]]
    result = box.run(TEMPLATE, args=args)
    assert result.stdout.startswith("BLOCKED "), result.stdout
    listeners.assert_untouched()
