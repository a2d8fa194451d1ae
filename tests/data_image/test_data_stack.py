"""The data image: numpy, pandas and matplotlib give the native results (expected values are
computed here with plain arithmetic: the host has no numpy), the snapshot's hazards (random
state, threads, the font cache) are handled, and it works through the CLI, the API and a real
MCP client."""

import asyncio
import json
import os
import statistics
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from agentbox import Sandbox
from tests.helpers import run_cli

pytestmark = pytest.mark.data_image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PANDAS_SCRIPT = """
import pandas as pd
frame = pd.DataFrame({"key": [i % 7 for i in range(1000)], "value": [i * 0.5 for i in range(1000)]})
sums = frame.groupby("key")["value"].sum()
print(json.dumps({str(k): float(v) for k, v in sums.items()}))
print(json.dumps(frame["value"].describe().to_dict()))
"""
PLOT_SCRIPT = """
import matplotlib.pyplot as plt
figure, axes = plt.subplots()
axes.plot([0, 1, 2, 3], [0, 1, 4, 9])
axes.set_title("squares")
figure.savefig("/output/plot.png")
print("saved")
"""


def test_numpy_matches_plain_arithmetic(data_sandbox: Sandbox) -> None:
    result = data_sandbox.run(
        textwrap.dedent(
            """
        import json, numpy as np
        a = np.arange(1, 101)
        m = np.array([[2.0, 1.0], [1.0, 3.0]])
        print(json.dumps({
            "sum": int(a.sum()), "mean": float(a.mean()), "dot": int(a @ a),
            "solve": np.linalg.solve(m, np.array([3.0, 5.0])).round(12).tolist(),
            "std": float(a.std()), "int": str(a.dtype),
        }))
        """
        )
    )
    assert result.exit_code == 0, result.stderr
    got = json.loads(result.stdout)
    numbers = range(1, 101)
    assert got["sum"] == sum(numbers)
    assert got["mean"] == sum(numbers) / 100
    assert got["dot"] == sum(n * n for n in numbers)
    assert got["solve"] == [0.8, 1.4]  # 2x + y = 3, x + 3y = 5
    assert got["std"] == pytest.approx(statistics.pstdev(numbers), rel=1e-12)
    assert got["int"] == "int32"  # numpy's default integer on wasm32 (docs/data-image-running.md)


def test_pandas_groupby_and_describe_match(data_sandbox: Sandbox) -> None:
    result = data_sandbox.run("import json\n" + PANDAS_SCRIPT)
    assert result.exit_code == 0, result.stderr
    sums_line, describe_line = result.stdout.splitlines()
    values = [i * 0.5 for i in range(1000)]
    expected = {str(k): sum(v for i, v in enumerate(values) if i % 7 == k) for k in range(7)}
    assert json.loads(sums_line) == pytest.approx(expected)
    described = json.loads(describe_line)
    assert described["count"] == 1000
    assert described["mean"] == pytest.approx(statistics.fmean(values))
    assert described["std"] == pytest.approx(statistics.stdev(values))
    assert described["min"] == 0 and described["max"] == 499.5
    assert described["50%"] == pytest.approx(statistics.median(values))


def test_a_saved_figure_comes_back_as_a_png(data_sandbox: Sandbox) -> None:
    result = data_sandbox.run(PLOT_SCRIPT)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "saved\n"
    [file] = result.files
    assert file.name == "plot.png"
    assert file.media_type == "image/png"
    assert file.data.startswith(PNG_SIGNATURE) and len(file.data) > 5000


def test_random_state_differs_per_fresh_run_and_continues_in_a_session(
    data_sandbox: Sandbox,
) -> None:
    code = "import random, numpy\nprint(random.random(), numpy.random.rand())"
    fresh = {data_sandbox.run(code).stdout for _ in range(3)}
    assert len(fresh) == 3, fresh
    with data_sandbox.session() as session:
        first = session.run(code).stdout
        second = session.run(code).stdout
    assert first != second and first not in fresh


def test_hash_is_fixed_per_build(data_sandbox: Sandbox) -> None:
    """Documented: the snapshot fixes str hashing's seed; the same in every run of a build."""
    code = "print(hash('agentbox'))"
    assert data_sandbox.run(code).stdout == data_sandbox.run(code).stdout


def test_joblib_and_scikit_learn_with_two_jobs_run_without_threads(
    data_sandbox: Sandbox,
) -> None:
    result = data_sandbox.run(
        """
from joblib import Parallel, delayed
print(Parallel(n_jobs=2)(delayed(abs)(-i) for i in range(5)))
from sklearn.ensemble import RandomForestClassifier
X = [[i, i % 3] for i in range(60)]
y = [int(i >= 30) for i in range(60)]
model = RandomForestClassifier(n_estimators=5, n_jobs=2, random_state=0).fit(X, y)
print(model.predict([[5, 2], [55, 1]]).tolist())
""",
        timeout=300,
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["[0, 1, 2, 3, 4]", "[0, 1]"]


def test_threads_cannot_start_but_the_script_can_catch_it(data_sandbox: Sandbox) -> None:
    result = data_sandbox.run(
        "import threading\ntry:\n    threading.Thread(target=print).start()\n"
        "except RuntimeError as error:\n    print('no threads:', error)\n"
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("no threads:")


def test_numpy_memory_error_is_the_memory_limit() -> None:
    box = Sandbox(image="data", memory="300M", timeout=120)
    result = box.run("import numpy\nprint('go', flush=True)\nx = numpy.ones(60_000_000)")
    assert result.limit == "memory", result.stderr
    assert result.stdout == "go\n"


def test_cli_runs_pandas_and_writes_the_png(tmp_path: Path) -> None:
    script = tmp_path / "plot.py"
    script.write_text(PLOT_SCRIPT)
    out = tmp_path / "out"
    result = run_cli("run", "--image", "data", "--output-dir", str(out), str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"saved\n"
    assert (out / "plot.png").read_bytes().startswith(PNG_SIGNATURE)
    pandas = run_cli(
        "run", "--image", "data", "--json", "-", stdin=b"import json\n" + PANDAS_SCRIPT.encode()
    )
    assert pandas.returncode == 0, pandas.stderr
    assert json.loads(pandas.stdout)["exit_code"] == 0


def test_cli_env_variable_selects_the_image() -> None:
    result = run_cli(
        "run",
        "-",
        stdin=b"import numpy; print(numpy.__version__)",
        env={**os.environ, "AGENTBOX_IMAGE": "data"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"2.")


def test_mcp_client_sees_the_image_and_gets_the_figure() -> None:
    command = [sys.executable, "-m", "agentbox", "mcp", "--image", "data", "--pool-size", "0"]
    params = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(stdio_client(params)) as (read, write),
        portal.wrap_async_context_manager(ClientSession(read, write)) as session,
    ):
        portal.call(session.initialize)
        tools = portal.call(session.list_tools).tools
        [run_python] = [tool for tool in tools if tool.name == "run_python"]
        result: Any = portal.call(lambda: session.call_tool("run_python", {"code": PLOT_SCRIPT}))
    assert "data image" in run_python.description
    assert "numpy 2." in run_python.description and "pandas 3." in run_python.description
    assert not result.is_error, result
    assert result.structured_content["stdout"] == "saved\n"
    images = [block for block in result.content if block.type == "image"]
    assert images and images[0].mime_type == "image/png"


def test_warm_pool_and_run_async_use_the_data_image() -> None:
    box = Sandbox(image="data", pool_size=1, timeout=120)
    try:
        assert box.run("import pandas; print(pandas.__version__[:2])").stdout == "3.\n"
        result = asyncio.run(box.run_async("import numpy; print(numpy.arange(4).sum())"))
    finally:
        box.close()
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "6\n"


def test_batch_runs_tasks_in_the_data_image(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        json.dumps({"id": "a", "code": "import numpy; print(numpy.ones(3).sum())"}) + "\n"
    )
    results = tmp_path / "results.jsonl"
    done = run_cli("batch", str(tasks), "-o", str(results), "--image", "data", "--workers", "1")
    assert done.returncode == 0, done.stderr
    [line] = results.read_text().splitlines()
    assert json.loads(line)["stdout"] == "3.0\n"


def test_serve_runs_the_data_image(tmp_path: Path) -> None:
    from tests.mcp.test_http_server import started_server

    with started_server(tmp_path, "--image", "data", "--pool-size", "0") as server:
        body = server.run(PLOT_SCRIPT)
        session = server.run("import numpy; x = numpy.arange(3)", session="s")
        again = server.run("print(int(x.sum()))", session="s")
    assert body["stdout"] == "saved\n", body
    assert [entry["media_type"] for entry in body["files"]] == ["image/png"]
    assert session["exit_code"] == 0 and again["stdout"] == "3\n"


def test_warmup_says_up_front_that_compiling_takes_minutes() -> None:
    result = run_cli("warmup", "--image", "data")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.decode().splitlines()
    assert "takes minutes" in lines[0]
    assert lines[-1].startswith("agentbox: sandbox ready (")
