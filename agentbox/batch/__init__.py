"""Batch runs: many programs, each in a fresh sandbox, on local worker processes or on Ray.

`run_batch(tasks)` and `run_batch_async(tasks)` stream `TaskResult`s as tasks finish; the
`agentbox batch` command is built on them (see docs/batch.md). Built only on the public core.
"""

from agentbox.batch.api import run_batch, run_batch_async
from agentbox.batch.runner import BatchSettings
from agentbox.batch.tasks import Task, TaskResult

__all__ = ["BatchSettings", "Task", "TaskResult", "run_batch", "run_batch_async"]
