"""`agentbox batch`: many tasks, each in a fresh sandbox, on every core (or a Ray cluster)."""

import contextlib
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from types import FrameType
from typing import Any

import click

from agentbox.cli.options import resolved_image, resolved_limits, sandbox_options
from agentbox.errors import UsageError


class _Interrupts:
    """Ctrl-C (and SIGTERM) raise KeyboardInterrupt, except while a result line is being
    written: then the interrupt waits until the line is whole, so the file stays valid."""

    def __init__(self) -> None:
        self._writing = False
        self.pending: int | None = None
        self.received: int | None = None

    def install(self) -> None:
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, self._handle)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        self.received = number
        if self._writing:
            self.pending = number
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        self._writing = True
        try:
            yield
        finally:
            self._writing = False
        if self.pending is not None:
            raise KeyboardInterrupt


def _read_tasks(path: str) -> bytes:
    if path == "-":
        if sys.stdin is None or sys.stdin.closed:
            raise UsageError("cannot read tasks from stdin: stdin is closed")
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        raise UsageError(f"cannot read tasks from {path!r}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"cannot read tasks from {path!r}: it is a directory") from None
    except OSError as error:
        raise UsageError(f"cannot read {path!r}: {error.strerror or error}") from None


def _open_output(path: str) -> int:
    if path == "-":
        return sys.stdout.fileno()
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as error:
        raise UsageError(f"cannot write results to {path!r}: {error.strerror or error}") from None


def _summary(counts: Counter[str], total: int, seconds: float, skipped: int) -> str:
    rate = total / seconds if seconds > 0 else 0.0
    parts = [
        f"{counts['passed']} passed",
        f"{counts['failed']} failed",
        f"{counts['limit']} hit a limit",
        f"{counts['error']} errors",
    ]
    noun = "task" if total == 1 else "tasks"
    line = f"agentbox: {total} {noun}: {', '.join(parts)} in {seconds:.1f} s ({rate:.0f} tasks/s)"
    if skipped:
        line += f"; {skipped} skipped (already in the results file)"
    return line


@click.command()
@click.argument("tasks_path", metavar="TASKS.jsonl|-")
@click.option(
    "-o",
    "--output",
    "output_path",
    required=True,
    metavar="RESULTS.jsonl|-",
    help="Where results go, one JSON line per task as it finishes. An existing file is "
    "resumed: tasks whose id it holds are skipped.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes, each holding a warm sandbox [default: one per core]. With --ray: "
    "actors (each uses one CPU) [default: every CPU of the cluster].",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="auto",
    default=None,
    metavar="[ADDRESS]",
    help="Run on the Ray cluster at ADDRESS (host:6379), or, alone, the one `ray start` runs "
    "here (or RAY_ADDRESS). Write it after TASKS or as --ray=ADDRESS. Needs the `ray` extra.",
)
@sandbox_options
@click.pass_context
def batch(
    ctx: click.Context,
    /,
    tasks_path: str,
    output_path: str,
    workers: int | None,
    ray_address: str | None,
    **options: Any,
) -> None:
    """Run every task of TASKS.jsonl (or - for stdin) in a fresh sandbox.

    \b
    A task is one JSON object per line: {"id": ..., "code": ...} and optionally "stdin",
    "args", and its own "timeout", "memory", "max_output" and "fuel" (capped by this
    command's). Results stream to RESULTS as tasks finish (see docs/batch.md). Exit code 0
    once every task has a result, whatever the tasks did; 2 for bad input (a duplicate id,
    an unreadable file); 130 on Ctrl-C, which leaves only whole lines: rerun to resume.
    """
    from agentbox.batch.api import make_pool, prepare
    from agentbox.batch.files import append_line, parse_tasks, resume
    from agentbox.batch.runner import BatchSettings
    from agentbox.cli.options import parse_env
    from agentbox.config import load_config
    from agentbox.input_files import from_options, load_files
    from agentbox.limits import Limits

    if options["confirm_skills"]:
        raise UsageError("--confirm-skills cannot be used with batch: workers have no terminal")
    config = load_config(options["config_path"])
    limits = Limits(**resolved_limits(ctx, options, config.limits))
    settings = BatchSettings(
        limits=limits,
        engine=options["engine"],
        image=resolved_image(ctx, options, config.image),
        mounts=tuple(options["mounts"]),
        env=tuple(parse_env(options["env"], dict(os.environ)).items()),
        files=load_files(from_options(options["input_files"]), limits.memory // 2),
        skill_files=tuple(options["skill_files"]),
        skill_commands=tuple(options["skill_commands"]),
        config_path=str(config.path) if config.path else None,
    )
    settings.skills()  # a bad skills file is refused here, once, not by every worker
    items = parse_tasks(_read_tasks(tasks_path), "stdin" if tasks_path == "-" else tasks_path)
    done = resume(output_path) if output_path != "-" else None
    if done is not None and done.repaired:
        click.echo(f"agentbox: {output_path}: dropped an unfinished last line", err=True)
    todo = [item for item in items if done is None or not done.covers(item)]
    skipped = len(items) - len(todo)

    interrupts = _Interrupts()
    interrupts.install()
    descriptor = _open_output(output_path)
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    bar = _progress_bar(len(todo))
    if ray_address is None:  # no more local workers than tasks to run
        from agentbox.batch.local import default_workers

        workers = max(1, min(workers or default_workers(), len(todo)))
    pool = make_pool(settings, workers, ray_address, progress=_echo_progress(bar))
    results = pool.run(prepare(todo, limits))
    try:
        for result in results:
            with interrupts.writing():
                append_line(descriptor, result.dumps())
                counts[result.status] += 1
                if bar is not None:
                    bar.update(1)
    except KeyboardInterrupt:
        results.close()
        if bar is not None:
            bar.close()
        written = sum(counts.values())
        click.echo(
            f"agentbox: interrupted after {written} of {len(todo)} results; "
            "the results file holds whole lines only: rerun the same command to resume",
            err=True,
        )
        sys.exit(128 + (interrupts.received or signal.SIGINT))
    finally:
        results.close()
        if descriptor != sys.stdout.fileno():
            os.close(descriptor)
    if bar is not None:
        bar.close()
    click.echo(_summary(counts, len(todo), time.perf_counter() - started, skipped), err=True)


def _progress_bar(total: int) -> Any:
    """A progress bar with rate and ETA when stderr is a terminal; None when it is piped."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="task", file=sys.stderr, dynamic_ncols=True, smoothing=0.05)


def _echo_progress(bar: Any) -> Any:
    def echo(message: str) -> None:
        if bar is not None:
            bar.write(message, file=sys.stderr)
        else:
            click.echo(message, err=True)

    return echo
