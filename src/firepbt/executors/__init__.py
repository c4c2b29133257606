"""Executors: where trainables run (in-process, worker processes, Ray actors)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from firepbt.core.errors import ConfigError
from firepbt.executors.base import Executor, Task, TaskResult
from firepbt.executors.inprocess import InProcessExecutor
from firepbt.executors.processes import ProcessExecutor

if TYPE_CHECKING:
    from firepbt.config import Config

__all__ = [
    "Executor",
    "InProcessExecutor",
    "ProcessExecutor",
    "Task",
    "TaskResult",
    "make_executor",
]


def make_executor(config: Config) -> Executor:
    """The executor a config names (``executor``, ``slots``, ``devices``, ``[ray]``,
    ``max_retries``, ``task_timeout``, ``[simulated]``)."""
    if config.executor == "processes":
        return ProcessExecutor(
            config.slots,
            devices=config.devices,
            max_retries=config.max_retries,
            task_timeout=config.task_timeout,
        )
    if config.executor == "ray":
        try:
            from firepbt.executors.ray import RayExecutor  # ray is an optional dependency
        except ImportError as exc:
            raise ConfigError(
                f"executor: 'ray' needs the ray package (pip install 'firepbt[ray]'): {exc}"
            ) from None

        return RayExecutor(
            config.slots,
            address=config.ray.address,
            cpus=config.ray.cpus,
            gpus=config.ray.gpus,
            runtime_env=config.ray.env(),
            node_wait_s=config.ray.node_wait,
            max_retries=config.max_retries,
            task_timeout=config.task_timeout,
        )
    if config.executor == "simulated":
        from firepbt.executors.simulated import SimulatedExecutor

        return SimulatedExecutor(config.simulated, max_retries=config.max_retries)
    return InProcessExecutor(task_timeout=config.task_timeout)
