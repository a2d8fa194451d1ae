"""Every example in README.md and docs/*.md runs as written (issue 14: docs that cannot drift).

Fenced blocks are read by their language:

- ``sh``: each command (a line, with its heredoc or backslash-continued lines) runs in /bin/sh
  in a fresh working directory holding a copy of examples/, after the block's earlier commands
  (so a block may build on itself). ``agentbox`` on PATH, ``.venv/bin/agentbox`` and the
  placeholder paths in PLACEHOLDERS all run this checkout's CLI (``sys.executable -m
  agentbox``). A command exits 0, or the code its trailing comment names (``# exit code 2``).
  A command that cannot run here matches one of SKIPPED, each with its reason, and is reported
  as a skipped test, never passed over in silence.
- ``python``: host code runs as a file with this Python; code for inside the sandbox (it does
  ``import skills``) runs with ``agentbox run -``. Both exit 0. An expression statement whose
  trailing comment is a Python literal (``session.run(...).stdout  # '3.14\\n'``) is asserted
  equal to it. SKIPPED_PYTHON lists the blocks that cannot run here.
- ``json``: parses (a fragment such as ``"agentbox": {...}`` as the inside of an object); each
  MCP server entry in it (an object with ``command``) is started as an MCP client starts it,
  must answer ``initialize`` and run ``print(1)``; an ``args`` list without a command must be
  options ``agentbox`` accepts.
- ``toml``: parses; an ``agentbox.toml`` (``[limits]`` or ``[skills.*]``) is loaded by
  ``agentbox run --config``.
- ``text`` or no language: not code (help output, diagrams, trees).

A block in any other language fails test_every_block_has_a_language_this_test_reads.
"""

import ast
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tokenize
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.helpers import HANG_GUARD_SECONDS

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="the docs' shell examples are POSIX sh"
)

SHELL_LANGUAGES = {"sh", "bash", "shell"}
NOT_CODE = {"", "text"}
LANGUAGES = SHELL_LANGUAGES | NOT_CODE | {"python", "json", "jsonl", "toml"}

# Commands the docs show that cannot run in a test, as regular expressions matched at the start
# of the command as written; each with the reason the skipped test reports.
SKIPPED = [
    # Create the venv, build the guest, run the whole suite or build binaries: far too heavy to
    # run from a test; tests/test_docs.py keeps the README's table of what each runs equal to
    # the Makefile.
    (r"make\b", "a make target (its recipe is checked against the Makefile in tests/test_docs.py)"),
    # Package managers and pip install released builds from the network; the tests run this
    # checkout instead.
    (r"(brew|winget|scoop) install\b", "installs a released build from the network"),
    (r"\S*python3? -m pip install\b|\S*pip3? install\b", "installs from PyPI (network)"),
    (r"python3? -m venv\b", "creates a virtual environment; the tests use this checkout's"),
    # The fetch example reaches https://example.com/; tests/test_examples.py runs the same
    # example against a local HTTP server.
    (r"AGENTBOX_FETCH_ALLOW=example\.com ", "fetches https://example.com/ (network)"),
    # Talks to a running `agentbox serve` with the token it printed;
    # tests/mcp/test_http_server.py drives that server.
    (r"curl\b", "needs a running `agentbox serve` and its token"),
    # A Ray cluster at an address of the user's; tests/batch/test_batch_ray.py starts a real
    # cluster and runs the same command against it.
    (r"agentbox batch \S+ -o \S+ --ray\b", "needs a Ray cluster (tested in tests/batch)"),
    # Downloads 94 MiB and builds for minutes, or removes the user's installed image;
    # tests/data_image/ installs, lists and refuses through the same commands.
    (r"(\S*/)?agentbox image (install|remove)\b", "installs or removes the data image (minutes)"),
    # Needs the data image installed (minutes to build); tests/data_image/ runs the same
    # commands against an installed image.
    (
        r"(\S*/)?agentbox \S+ --image data\b",
        "needs the data image installed (tested in tests/data_image)",
    ),
]

# Python blocks that cannot run here, by a line they contain; each with its reason.
SKIPPED_PYTHON = [
    # The Skills section's sandbox-side example fetches https://example.com/ through the
    # fetch_url skill; tests/test_examples.py runs that skill against a local HTTP server.
    ('skills.fetch_url(url="https://example.com/")', "fetches https://example.com/ (network)"),
    # The data image is installed on request only; tests/data_image/ runs it.
    ('Sandbox(image="data")', "needs the data image installed (tested in tests/data_image)"),
]

# Paths the docs use for where a user put agentbox (MCP configs, warm-up lines). In the tests
# each runs this checkout's CLI ("agentbox") or this Python ("python").
PLACEHOLDERS = {
    "agentbox": "agentbox",
    "/Users/me/bin/agentbox-macos-arm64": "agentbox",
    "/opt/homebrew/bin/agentbox": "agentbox",
    "/Users/me/.venvs/agentbox/bin/agentbox": "agentbox",
    "~/.venvs/agentbox/bin/agentbox": "agentbox",
    "/Users/me/src/agentbox/.venv/bin/agentbox": "agentbox",
    "/Users/me/.venvs/agentbox/bin/python": "python",
}

EXPECTED_EXIT = re.compile(r"#.*\bexit(?:s| code|s with code)? (\d+)\b")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence
    language: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        fence = re.match(r"^(\s*)(```+)\s*([\w+-]*)", lines[index])
        if not fence:
            index += 1
            continue
        indent, ticks, language = fence.groups()
        body = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(ticks):
            body.append(lines[index][len(indent) :])
            index += 1
        blocks.append(Block(path, index - len(body), language.lower(), "\n".join(body) + "\n"))
        index += 1
    return blocks


ALL_BLOCKS = [block for path in DOCS for block in fenced_blocks(path)]


@dataclass(frozen=True)
class Command:
    block: Block
    line: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.block.path.relative_to(ROOT)}:{self.line}"

    @property
    def expected_exit(self) -> int:
        found = EXPECTED_EXIT.search(self.text.splitlines()[0])
        return int(found.group(1)) if found else 0

    @property
    def skip_reason(self) -> str | None:
        for pattern, reason in SKIPPED:
            if re.match(pattern, self.text):
                return reason
        return None


def shell_commands(block: Block) -> list[Command]:
    """The commands of a shell block as sh reads them: a line, plus the lines of its heredocs
    and of its backslash continuations. Blank lines and comment lines are not commands."""
    commands: list[Command] = []
    lines = block.text.splitlines()
    index = 0
    while index < len(lines):
        first = index
        if not lines[index].strip() or lines[index].lstrip().startswith("#"):
            index += 1
            continue
        text = [lines[index]]
        while text[-1].endswith("\\") and index + 1 < len(lines):
            index += 1
            text.append(lines[index])
        for heredoc in HEREDOC.finditer(" ".join(text)):
            word = heredoc.group(2)
            while index + 1 < len(lines):
                index += 1
                text.append(lines[index])
                if lines[index].strip() == word:
                    break
        commands.append(Command(block, block.line + 1 + first, "\n".join(text)))
        index += 1
    return commands


SHELL_BLOCKS = [block for block in ALL_BLOCKS if block.language in SHELL_LANGUAGES]
COMMANDS = [command for block in SHELL_BLOCKS for command in shell_commands(block)]
PYTHON_BLOCKS = [block for block in ALL_BLOCKS if block.language == "python"]
JSON_BLOCKS = [block for block in ALL_BLOCKS if block.language == "json"]
JSONL_BLOCKS = [block for block in ALL_BLOCKS if block.language == "jsonl"]
TOML_BLOCKS = [block for block in ALL_BLOCKS if block.language == "toml"]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A user's working directory: a copy of examples/, `.venv/bin/agentbox` and `agentbox` on
    PATH (in bin/) both running this checkout's CLI."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    for folder in (tmp_path / "bin", tmp_path / ".venv" / "bin"):
        folder.mkdir(parents=True)
        shim = folder / "agentbox"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m agentbox "$@"\n')
        shim.chmod(0o755)
    return tmp_path


def user_environment(workdir: Path) -> dict[str, str]:
    """The environment of a user who installed agentbox: no AGENTBOX_* setting of the test run
    leaks in except the compile cache's location (the suite's cache is warm)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AGENTBOX_")}
    if "AGENTBOX_CACHE_DIR" in os.environ:
        env["AGENTBOX_CACHE_DIR"] = os.environ["AGENTBOX_CACHE_DIR"]
    env["PATH"] = f"{workdir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)  # this checkout, whatever else is installed
    return env


def resolve_placeholders(text: str, workdir: Path) -> str:
    """Replace the docs' placeholder paths (whole words only) with what runs this checkout."""
    targets = {"agentbox": str(workdir / "bin" / "agentbox"), "python": sys.executable}
    for placeholder, kind in PLACEHOLDERS.items():
        if placeholder != "agentbox":  # bare `agentbox` already finds bin/agentbox on PATH
            pattern = rf"(?<![^\s'\"]){re.escape(placeholder)}(?![^\s'\";|&)])"
            text = re.sub(pattern, lambda _match, kind=kind: targets[kind], text)
    return text


def _report(completed: subprocess.CompletedProcess[str]) -> str:
    return f"exit {completed.returncode}\nstdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"


@pytest.mark.parametrize("command", COMMANDS, ids=[command.where for command in COMMANDS])
def test_shell_command_runs_as_written(command: Command, workdir: Path) -> None:
    reason = command.skip_reason
    if reason is not None:
        pytest.skip(f"{command.where}: {reason}: {command.text.splitlines()[0]}")
    earlier = [
        other
        for other in shell_commands(command.block)
        if other.line < command.line and other.skip_reason is None
    ]
    script = "\n".join([*(other.text for other in earlier), command.text]) + "\n"
    completed = subprocess.run(
        ["/bin/sh", "-c", resolve_placeholders(script, workdir)],
        cwd=workdir,
        env=user_environment(workdir),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS * 2,
    )
    assert completed.returncode == command.expected_exit, (
        f"{command.where}: `{command.text}`\n{_report(completed)}"
    )


def checked(source: str) -> str:
    """`source` with each one-line expression statement whose trailing comment is a Python
    literal turned into an assertion that it equals that literal, evaluated once (a call is left
    alone: its comment tells what it prints, not what it returns)."""
    comments = {
        token.start[0]: token.string[1:].strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Expr) or isinstance(node.value, ast.Call | ast.Constant):
            continue
        if node.lineno != node.end_lineno or node.lineno not in comments:
            continue
        try:
            expected = ast.literal_eval(comments[node.lineno])
        except (ValueError, SyntaxError):
            continue  # prose, not a value
        line = lines[node.lineno - 1]
        expression = line[node.col_offset : node.end_col_offset]
        lines[node.lineno - 1] = (
            f"{line[: node.col_offset]}assert (_value := ({expression})) == {expected!r}, _value"
        )
    return "\n".join(lines) + "\n"


def _python_skip_reason(block: Block) -> str | None:
    for line, reason in SKIPPED_PYTHON:
        if line in block.text:
            return reason
    return None


def _runs_in_the_sandbox(block: Block) -> bool:
    return bool(re.search(r"^\s*import skills\b", block.text, re.MULTILINE))


def run_python_block(block: Block, workdir: Path) -> subprocess.CompletedProcess[str]:
    if _runs_in_the_sandbox(block):
        command = [str(workdir / "bin" / "agentbox"), "run", "-"]
        stdin = block.text
    else:
        script = workdir / "snippet.py"
        script.write_text(checked(block.text))
        command, stdin = [sys.executable, str(script)], ""
    return subprocess.run(
        command,
        cwd=workdir,
        env=user_environment(workdir),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS * 2,
    )


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[block.where for block in PYTHON_BLOCKS])
def test_python_block_runs_as_pasted(block: Block, workdir: Path) -> None:
    reason = _python_skip_reason(block)
    if reason is not None:
        pytest.skip(f"{block.where}: {reason}")
    completed = run_python_block(block, workdir)
    assert completed.returncode == 0, f"{block.where}:\n{block.text}\n{_report(completed)}"


def test_sandbox_side_blocks_run_in_the_sandbox(workdir: Path) -> None:
    """A block that imports `skills` is code for inside the sandbox: it runs there (no skills
    offered), and a host-side block runs on the host."""
    code = "import skills\nimport sys\n\nprint(sys.platform, skills.list())\n"
    inside = run_python_block(Block(ROOT / "README.md", 1, "python", code), workdir)
    assert (inside.returncode, inside.stdout) == (0, "wasi []\n"), _report(inside)
    host = "import sys\n\nprint(sys.platform)\n"
    outside = run_python_block(Block(ROOT / "README.md", 1, "python", host), workdir)
    assert (outside.returncode, outside.stdout) == (0, f"{sys.platform}\n"), _report(outside)


def parse_json(block: Block) -> Any:
    text = block.text.strip()
    return json.loads("{" + text + "}" if text.startswith('"') else text)


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item)


SERVER_CONFIGS = [
    (block, config)
    for block in JSON_BLOCKS
    for config in _objects(parse_json(block))
    if "command" in config
]
ARGS_ALONE = [
    (block, config["args"])
    for block in JSON_BLOCKS
    for config in _objects(parse_json(block))
    if "args" in config and "command" not in config
]


@pytest.mark.parametrize("block", JSON_BLOCKS, ids=[block.where for block in JSON_BLOCKS])
def test_json_block_parses(block: Block) -> None:
    assert parse_json(block), f"{block.where}: empty"


@pytest.mark.parametrize("block", JSONL_BLOCKS, ids=[block.where for block in JSONL_BLOCKS])
def test_jsonl_block_is_one_object_per_line(block: Block) -> None:
    lines = [line for line in block.text.splitlines() if line.strip()]
    assert lines, f"{block.where}: empty"
    assert all(isinstance(json.loads(line), dict) for line in lines), block.where


async def _initialize_and_run(params: Any) -> tuple[str, Any]:
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    with anyio.fail_after(HANG_GUARD_SECONDS * 2):
        async with (
            stdio_client(params) as (read, write),
            ClientSession(read, write) as session,
        ):
            initialized = await session.initialize()
            result = await session.call_tool("run_python", {"code": "print(1)"})
            return initialized.server_info.name, result


@pytest.mark.parametrize(
    ("block", "config"),
    SERVER_CONFIGS,
    ids=[f"{block.where}:{config['command']}" for block, config in SERVER_CONFIGS],
)
def test_mcp_client_config_starts_a_working_server(
    block: Block, config: dict[str, Any], workdir: Path
) -> None:
    """Started as an MCP client starts it: the command, its args, the client's default
    environment plus the config's `env` (and the suite's compile cache, if it moved it)."""
    pytest.importorskip("mcp", reason="the MCP extra is not installed (make setup-test)")
    from mcp import StdioServerParameters

    assert config["command"] in PLACEHOLDERS, (
        f"{block.where}: add {config['command']!r} to PLACEHOLDERS (what it stands for)"
    )
    command = resolve_placeholders(config["command"], workdir)
    if command == "agentbox":
        command = str(workdir / "bin" / "agentbox")
    env = dict(config.get("env", {}))
    if "AGENTBOX_CACHE_DIR" in os.environ:
        env.setdefault("AGENTBOX_CACHE_DIR", os.environ["AGENTBOX_CACHE_DIR"])
    params = StdioServerParameters(command=command, args=config["args"], env=env, cwd=str(workdir))
    name, result = anyio.run(_initialize_and_run, params)
    assert name == "agentbox"
    assert not result.is_error, result
    assert result.structured_content["stdout"] == "1\n"


@pytest.mark.parametrize(
    ("block", "args"), ARGS_ALONE, ids=[block.where for block, _ in ARGS_ALONE]
)
def test_mcp_args_are_options_agentbox_accepts(block: Block, args: list[str]) -> None:
    """An `args` example without its command: every option in it exists (`--help` ends the
    parse before values such as a folder that is only on the writer's machine are checked)."""
    completed = subprocess.run(
        [sys.executable, "-m", "agentbox", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
    )
    assert completed.returncode == 0, f"{block.where}: {args}\n{_report(completed)}"


@pytest.mark.parametrize("block", TOML_BLOCKS, ids=[block.where for block in TOML_BLOCKS])
def test_toml_block_parses_and_agentbox_loads_it(block: Block, workdir: Path) -> None:
    data = tomllib.loads(block.text)
    if not {"limits", "skills"} & set(data):
        return  # not an agentbox.toml: parsing it is all there is to check
    (workdir / "agentbox.toml").write_text(block.text)
    completed = subprocess.run(
        [str(workdir / "bin" / "agentbox"), "run", "--config", "agentbox.toml", "-"],
        cwd=workdir,
        env=user_environment(workdir),
        input="print('loaded')",
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
    )
    assert (completed.returncode, completed.stdout) == (0, "loaded\n"), _report(completed)


def test_every_block_has_a_language_this_test_reads() -> None:
    unknown = [
        f"{block.where}: ```{block.language}"
        for block in ALL_BLOCKS
        if block.language not in LANGUAGES
    ]
    assert unknown == [], "teach tests/test_docs_examples.py to run these, or mark them text"


def test_the_docs_show_commands_this_test_runs() -> None:
    """The parametrized tests above are not vacuous: the README's own examples are among them."""
    runnable = [command for command in COMMANDS if command.skip_reason is None]
    assert any(".venv/bin/agentbox run -" in command.text for command in runnable)
    assert any("asyncio.run(main())" in block.text for block in PYTHON_BLOCKS)
    assert len(SERVER_CONFIGS) >= 6  # one per install path, and the env example


def test_commands_are_split_as_sh_reads_them() -> None:
    block = Block(
        ROOT / "README.md",
        10,
        "sh",
        "# a comment\n"
        "agentbox run - <<'EOF'\n"
        "print(1)\n"
        "EOF\n"
        "\n"
        "agentbox run missing.py  # exit code 2\n"
        "agentbox run \\\n"
        "  --json -\n"
        "make demo   # builds the guest\n",
    )
    commands = shell_commands(block)
    assert [(command.line, command.text) for command in commands] == [
        (12, "agentbox run - <<'EOF'\nprint(1)\nEOF"),
        (16, "agentbox run missing.py  # exit code 2"),
        (17, "agentbox run \\\n  --json -"),
        (19, "make demo   # builds the guest"),
    ]
    assert [command.expected_exit for command in commands] == [0, 2, 0, 0]
    assert [command.skip_reason is None for command in commands] == [True, True, True, False]


def test_literal_comments_become_assertions() -> None:
    source = "x = 'a'\nx[0]  # 'a'\nx.upper()  # 'A'\nprint(x)  # a\nx  # the value, in prose\n"
    assert checked(source).splitlines() == [
        "x = 'a'",
        "assert (_value := (x[0])) == 'a', _value",
        "x.upper()  # 'A'",
        "print(x)  # a",
        "x  # the value, in prose",
    ]
