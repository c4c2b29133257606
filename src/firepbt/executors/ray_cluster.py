"""The Ray side of the Ray executor: the slot actor, and finding and starting a cluster.

``_Slot`` is the actor each slot runs (it builds trainables, runs tasks, tests and
replays where its node is); :func:`check_address`, :func:`init_local_ray` (a local Ray
that listens on 127.0.0.1 only) and :func:`slots_that_fit` are how
:mod:`firepbt.executors.ray` reaches and sizes a cluster.
"""

from __future__ import annotations

import math
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import ray
from ray.exceptions import (
    RayError,
    RayTaskError,
)

from firepbt.core.errors import ConfigError, UserCodeError
from firepbt.core.trainable import TrainableSpec
from firepbt.executors.base import TaskResult, replay_on, run_task, take_test


class _StateLost(Exception):
    """The state an actor was asked to load is gone from the object store."""


class _Slot:
    """The actor: one trainable, reused."""

    def __init__(self, spec: TrainableSpec, sys_path: list[str]) -> None:
        for p in reversed(sys_path):
            if p not in sys.path:
                sys.path.insert(0, p)
        self.spec = spec
        self.cls = spec.resolve()
        self.net: Any = None
        self.held: int | None = None

    def ready(self) -> tuple[int, str]:
        return os.getpid(), ray.get_runtime_context().get_node_id()

    def build(self, seed: int, key: int) -> tuple[bool, Any]:
        self.net = self.cls(seed=seed, **dict(self.spec.args))
        self.spec.check(self.net)
        self.held = key
        return True, self.net.state_dict()

    def _load(self, key: int, box: list[Any]) -> None:
        if self.net is None:
            self.net = self.cls(seed=0, **dict(self.spec.args))
        if self.held != key:
            self.held = None
            try:
                state = ray.get(box[0])
            except RayError as exc:  # lost with its node: not the network's fault
                raise _StateLost(f"{type(exc).__name__}") from None
            self.net.load_state_dict(state)
            self.held = key

    def run(self, task: Any, key_in: int, box: list[Any], key_out: int) -> tuple[Any, Any]:
        try:
            self._load(key_in, box)
        except _StateLost as exc:
            return ("lost", str(exc)), None
        except Exception as exc:  # the state could not be loaded: as diverged, no new state
            t = task
            result = TaskResult(t.worker, t.token, t.steps, t.hparams, math.nan, repr(exc))
            return (result, False), None
        result = run_task(self.net, task)
        self.held = key_out
        return (result, True), self.net.state_dict()

    def replay(
        self, seed: int, schedule: list[dict[str, Any]], chunk: int
    ) -> dict[str, Any] | UserCodeError:
        try:
            return replay_on(self.cls(seed=seed, **dict(self.spec.args)), schedule, chunk)
        except UserCodeError as exc:  # the user's test() raised: the controller stops
            return exc

    def test(self, key: int, box: list[Any]) -> float | UserCodeError | None:
        """The test score; the user's test() raising comes back as the error (stop)."""
        try:
            self._load(key, box)
        except Exception:  # the state is lost with its node: no test score
            return None
        try:
            return take_test(self.net)
        except UserCodeError as exc:
            return exc


def check_address(address: str) -> None:
    """An unreachable cluster is a config error, found before anything starts."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"ray.address: expected 'host:port' or 'ray://host:port', got {address!r}"
        )
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"ray.address: cannot reach Ray at {address} ({exc})") from None


def init_local_ray(num_cpus: int, **kwargs: Any) -> None:
    """Start a private single-machine Ray that listens on 127.0.0.1 only.

    ``_node_ip_address="127.0.0.1"`` alone is not enough: Ray replaces a loopback node
    address by the machine's routable one when clusters are enabled
    (``services.resolve_ip_for_localhost``), and its servers then listen on every
    interface. Ray's own switch for a machine that must not form a cluster,
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (``ray_constants.ENABLE_RAY_CLUSTER``), makes
    it keep the loopback address; it is read at import, so it is set for ``ray.init``.
    """
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            _node_ip_address="127.0.0.1",
            **kwargs,
        )
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def slots_that_fit(nodes: Sequence[Mapping[str, Any]], cpus: float, gpus: float) -> int:
    """How many actors reserving ``cpus`` and ``gpus`` the alive nodes can hold at once."""
    total = 0
    for node in nodes:
        if not node.get("Alive", node.get("alive", False)):
            continue
        res = node.get("Resources", {})
        fits = []
        for need, have in ((cpus, res.get("CPU", 0.0)), (gpus, res.get("GPU", 0.0))):
            if need > 0:
                fits.append(int(have // need + 1e-9))
        total += min(fits) if fits else 1_000_000
    return total


def _resources(available: bool = False) -> str:
    try:
        res = ray.available_resources() if available else ray.cluster_resources()
    except Exception:
        return "unknown resources"
    return f"{res.get('CPU', 0):g} CPU, {res.get('GPU', 0):g} GPU"


def _cause(exc: BaseException) -> str:
    """The user's error inside a Ray exception, on one line."""
    if isinstance(exc, RayTaskError) and exc.cause is not None:
        exc = exc.cause
    text = str(exc).strip().splitlines()
    errors = [line for line in text if "Error" in line]
    return (errors[-1] if errors else text[-1] if text else type(exc).__name__).strip()
