"""Executors: where trainables run (in-process; processes and Ray build on the same base)."""

from firepbt.executors.base import Executor, Task, TaskResult
from firepbt.executors.inprocess import InProcessExecutor

__all__ = ["Executor", "InProcessExecutor", "Task", "TaskResult"]
