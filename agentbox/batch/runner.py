"""What every batch worker holds: warm sandboxes built from a picklable `BatchSettings`.

The same `TaskRunner` serves a local worker process and a Ray actor, so both modes give the
same result for the same task. Each task runs in a fresh sandbox instance; the `Sandbox`
objects (per distinct limits) only hold settings and the loaded, compiled guest.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentbox.batch.tasks import Task, TaskResult
from agentbox.limits import Limits

if TYPE_CHECKING:
    from agentbox.sandbox import Sandbox
    from agentbox.skills import Skill

# Sandboxes kept per worker for distinct per-task limits (memory, output cap, fuel).
_MAX_SANDBOXES = 16


@dataclass(frozen=True)
class BatchSettings:
    """Everything a worker needs to build its sandboxes: plain values, so it pickles (to a
    worker process or a Ray actor on another machine). `limits` are the batch's caps."""

    limits: Limits = field(default_factory=Limits)
    engine: str = "wasm"
    image: str = "default"
    mounts: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    skill_files: tuple[str, ...] = ()
    skill_commands: tuple[str, ...] = ()
    config_path: str | None = None

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


class TaskRunner:
    """Runs tasks one at a time in fresh instances, with the guest loaded once (warm)."""

    def __init__(
        self, settings: BatchSettings, progress: Callable[[str], None] | None = None
    ) -> None:
        self.settings = settings
        self._skills = settings.skills()
        self._progress = progress
        self._sandboxes: dict[tuple[int, int, int | None], Sandbox] = {}
        self._sandbox(settings.limits).warmup()

    def _sandbox(self, limits: Limits) -> "Sandbox":
        from agentbox.sandbox import Sandbox

        key = (limits.memory, limits.max_output, limits.fuel)
        sandbox = self._sandboxes.get(key)
        if sandbox is None:
            if len(self._sandboxes) >= _MAX_SANDBOXES:
                self._sandboxes.clear()
            sandbox = Sandbox(
                timeout=limits.timeout,
                memory=limits.memory,
                max_output=limits.max_output,
                fuel=limits.fuel,
                mounts=self.settings.mounts,
                env=dict(self.settings.env),
                skills=self._skills,
                engine=self.settings.engine,
                image=self.settings.image,
                progress=self._progress,
            )
            self._sandboxes[key] = sandbox
        return sandbox

    def run(self, task: Task, limits: Limits) -> TaskResult:
        """`task` in a fresh sandbox under `limits` (already capped by the batch's)."""
        result = self._sandbox(limits).run(
            task.code, args=task.args, stdin=task.stdin, timeout=limits.timeout
        )
        return TaskResult.from_run(task.id, result)
