"""What every batch worker holds: warm sandboxes built from a picklable `BatchSettings`.

The same `TaskRunner` serves a local worker process and a Ray actor, so both modes give the
same result for the same task. Each task starts from the pristine snapshot; the `Sandbox`
objects (per distinct limits) hold settings, the loaded, compiled guest and, by default, one
recycled instance whose memory is put back after every task (`BatchSettings.recycle`, see
`agentbox.engines.wasm.recycle`): cheaper than a new instance per task. The alternative kept
for measuring, wasmtime's pooling allocator (`BatchSettings.pooling`, see
`agentbox.engines.wasm.pooling`), makes a new instance per task in a memory slot reused rather
than mapped and unmapped each time; on this project's VM it did not make tasks cheaper
(docs/batch.md, Sizing).
"""

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentbox.batch.tasks import Task, TaskResult
from agentbox.limits import Limits

if TYPE_CHECKING:
    from pathlib import Path

    from agentbox.engines.wasm.pooling import PoolingSettings
    from agentbox.sandbox import Sandbox
    from agentbox.skills import Skill

# Sandboxes kept per worker for distinct per-task limits (memory, output cap, fuel).
_MAX_SANDBOXES = 16


class WorkerStuck(RuntimeError):
    """Runs abandoned inside host calls hold this worker's memory slots: it cannot run more
    tasks, and its process should exit (it is replaced, and the task runs on another)."""


@dataclass(frozen=True)
class BatchSettings:
    """Everything a worker needs to build its sandboxes: plain values, so it pickles (to a
    worker process or a Ray actor on another machine). `limits` are the batch's caps."""

    limits: Limits = field(default_factory=Limits)
    engine: str = "wasm"
    image: str = "default"
    mounts: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    files: tuple[tuple[str, bytes], ...] = ()
    """Read-only inputs every task sees under /input (`--file`), read once by the driver."""
    skill_files: tuple[str, ...] = ()
    skill_commands: tuple[str, ...] = ()
    config_path: str | None = None
    recycle: bool = True
    """Each worker reuses one instance per sandbox, its memory put back to the snapshot after
    every task (`agentbox.engines.wasm.recycle`); False: a fresh instance per task."""
    pooling: bool = False
    """wasmtime's pooling allocator in each worker, instead of a new memory mapping per task:
    measure it with `benchmarks/batch.py` (it did not pay on this project's VM)."""
    resident_memory: int = 0
    """With pooling, bytes of each slot's memory kept mapped between tasks: no page faults
    there, but freeing rewrites all of them (it cost more than the faults it saved here)."""

    def skills(self) -> "list[Skill]":
        from agentbox.config import load_config
        from agentbox.skills.command import command_skill, parse_skill_option
        from agentbox.skills.from_file import load_skills_file

        skills = list(load_config(self.config_path).skills) if self.config_path else []
        for path in self.skill_files:
            skills.extend(load_skills_file(path))
        for text in self.skill_commands:
            skills.append(command_skill(*parse_skill_option(text)))
        return skills

    def with_absolute_paths(self) -> "BatchSettings":
        """Paths resolved here, so a worker started elsewhere (another cwd) finds them."""
        import dataclasses

        def absolute(path: str) -> str:
            return os.path.abspath(path)

        mounts = []
        for text in self.mounts:
            host, colon, rest = text.partition(":")
            mounts.append(f"{absolute(host)}{colon}{rest}")
        return dataclasses.replace(
            self,
            mounts=tuple(mounts),
            skill_files=tuple(absolute(path) for path in self.skill_files),
            config_path=absolute(self.config_path) if self.config_path else None,
        )


def _lock_file(settings: BatchSettings) -> int | None:
    """An open lock file beside the compiled guest in this machine's cache, if the cache lacks
    it (None once it is cached, or where the cache folder is unusable: each worker then
    compiles in memory, as any run would)."""
    if settings.engine not in ("wasm", "auto"):
        return None
    try:
        import fcntl  # noqa: F401 - not on Windows: no lock there

        from agentbox import native_folders

        artifact = _artifact(settings)
        if artifact.exists():
            return None
        if not artifact.parent.exists():
            native_folders.make_private(artifact.parent)
        if native_folders.problem(artifact.parent) is not None:
            return None
        return os.open(artifact.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except Exception:  # noqa: BLE001 - no lock: at worst two workers both compile
        return None


def _artifact(settings: BatchSettings) -> "Path":
    """Where the compile cache keeps the compiled image this batch runs."""
    from agentbox.engines.wasm import compile_cache, core_runtime, images, runtime
    from agentbox.engines.wasm.guest_image import guest_image

    fuel = settings.limits.fuel is not None
    if settings.image == images.DATA_IMAGE:
        image = images.load_data_image()
        description = core_runtime.engine_description(fuel)
        return compile_cache.artifact_path(image, description, image.name)
    return compile_cache.artifact_path(guest_image(), runtime.engine_description(fuel))


@contextlib.contextmanager
def _compile_lock(settings: BatchSettings) -> Iterator[None]:
    """Held while a worker loads the guest: of the workers that start at once on a machine
    whose cache lacks it, one compiles it (with its progress line) and the others, waiting
    here, then load what it cached."""
    descriptor = _lock_file(settings)
    if descriptor is None:
        yield
        return
    try:
        import fcntl

        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


class TaskRunner:
    """Runs tasks one at a time, each from the pristine snapshot, with the guest loaded once."""

    def __init__(
        self, settings: BatchSettings, progress: Callable[[str], None] | None = None
    ) -> None:
        self.settings = settings
        self._skills = settings.skills()
        self._progress = progress
        self._sandboxes: dict[tuple[int, int, int | None], Sandbox] = {}
        self._pooling = self._use_pooling(settings)
        with _compile_lock(settings):
            self._sandbox(settings.limits).warmup()

    @staticmethod
    def _use_pooling(settings: BatchSettings) -> "PoolingSettings | None":
        """Pooled slots for one run at a time, as large as the batch's memory cap (no task may
        ask for more). Not in a process whose engine is already built (it cannot change)."""
        if not settings.pooling or settings.engine not in ("wasm", "auto"):
            return None
        from agentbox.engines.wasm import pooling, runtime

        wanted = pooling.PoolingSettings(
            slots=pooling.slots_for(1),
            memory=settings.limits.memory,
            keep_resident=settings.resident_memory,
        )
        return wanted if runtime.use_pooling(wanted) else None

    def _sandbox(self, limits: Limits) -> "Sandbox":
        from agentbox.sandbox import Sandbox

        key = (limits.memory, limits.max_output, limits.fuel)  # the rest is the batch's
        sandbox = self._sandboxes.get(key)
        if sandbox is None:
            if len(self._sandboxes) >= _MAX_SANDBOXES:
                self._sandboxes.clear()
            sandbox = Sandbox(
                timeout=limits.timeout,
                memory=limits.memory,
                max_output=limits.max_output,
                fuel=limits.fuel,
                scratch=limits.scratch,
                max_output_files=limits.max_output_files,
                mounts=self.settings.mounts,
                files=dict(self.settings.files),
                env=dict(self.settings.env),
                skills=self._skills,
                engine=self.settings.engine,
                image=self.settings.image,
                progress=self._progress,
                recycle=self.settings.recycle and self._pooling is None,
            )
            self._sandboxes[key] = sandbox
        return sandbox

    def run(self, task: Task, limits: Limits) -> TaskResult:
        """`task` in a pristine sandbox under `limits` (already capped by the batch's)."""
        if self._pooling is not None:
            from agentbox.engines.wasm.pooling import wait_for_a_slot

            if not wait_for_a_slot(self._pooling):
                raise WorkerStuck("runs stuck in host calls hold every memory slot")
        result = self._sandbox(limits).run(
            task.code,
            args=task.args,
            stdin=task.stdin,
            timeout=limits.timeout,
            files=dict(task.files),
        )
        return TaskResult.from_run(task.id, result)
