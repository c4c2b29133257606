"""MLflow tracking (``[log.mlflow]``, ``pip install 'firepbt[mlflow]'``).

One parent MLflow run for the experiment, with one nested child run per worker
(``mlflow.parentRunId``): MLflow's convention for hyperparameter searches (the parent
holds the search, each child a trial; the UI folds the children under the parent), and
the same shape as the W&B logger (:mod:`firepbt.report.wandb`). A worker's child run
holds everything that worker trained; its params and tags name its role and
sub-population, so the UI can filter and compare them.

What is logged, with MLflow's ``step`` = the steps *this worker* has trained (which only
grows; the network's own step, which jumps on a weight copy, is the metric ``net_step``):

* each child run (params ``worker``, ``role``, ``subpopulation``; tags ``firepbt.role``,
  ``firepbt.subpopulation``): ``Q`` and every numeric hyperparameter at each result, as
  they change (PBT's hyperparameters are a schedule, so they are metrics, not params; a
  categorical one is the tag ``hparam.<name>``, its latest value), ``diverged`` when a
  score is not finite, and at each weight copy into it ``copied_from`` (the source
  worker) and ``exploit``, ``assign`` or ``success`` = 1: points on its charts;
* the parent run (params: the config, flattened; tags ``firepbt.run_dir``):
  ``best_Q`` (the best score so far by the run's ``best`` rule, ``runner/best.py:
  BestSoFar``), ``exploits`` and ``evaluator_successes`` with ``step`` = the furthest
  network step; at the end the artifacts ``result.json``, ``best_schedule.json``,
  ``results.txt`` (the table of ``firepbt show``) and the tables ``weight_copies.json``
  and ``results_table.json`` (MLflow's table view), and the metrics ``best_score``,
  ``best_test``.

Metrics are buffered and sent in batches (one ``log_batch`` per run) at each checkpoint,
when a run has 1000 waiting (MLflow's batch limit), every 30 seconds and at the end:
a database store costs milliseconds per call. The runs' ids are kept in
``DIR/mlflow.json``; ``firepbt resume DIR`` sets them running again and logs on. Since
the buffer is sent at each checkpoint, what a crash loses is mostly what the resumed
run regenerates. The tracking URI is ``tracking_uri`` (a relative SQLite path is made
absolute), else ``MLFLOW_TRACKING_URI``, else MLflow's default (``sqlite:///mlflow.db``);
a resumed run uses the one its ``mlflow.json`` recorded.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from firepbt.config.settings import MlflowSettings
from firepbt.report.results import HEADER, format_table, summary_rows
from firepbt.report.tally import COPY_COLUMNS, RunTally
from firepbt.runner.callbacks import RunInfo
from firepbt.runner.checkpoint import atomic_write
from firepbt.runner.events import Checkpoint, Copy, Decision, Result, WorkerRole

IDS_FILE = "mlflow.json"
BATCH = 1000  # metrics per log_batch call (MLflow's limit)
FLUSH_SECONDS = 30.0


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"algorithm": {"name": "fire"}}`` -> ``{"algorithm.name": "fire"}``."""
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = json.dumps(v) if not isinstance(v, str) else v
    return out


def absolute_uri(uri: str | None) -> str | None:
    """A relative SQLite URI (``sqlite:///mlflow.db``) made absolute, so that the run ids
    kept in ``DIR/mlflow.json`` name the same database from any directory."""
    prefix = "sqlite:///"
    if uri and uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        path, _, query = uri[len(prefix) :].partition("?")
        if path and path != ":memory:":
            return prefix + str(Path(path).resolve()) + (f"?{query}" if query else "")
    return uri


def _numeric(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


class MlflowLogger(RunTally):
    """Logs a run to MLflow (see the module for what, where and why)."""

    def __init__(self, settings: MlflowSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or MlflowSettings()
        self.client: Any = None
        self.parent = ""
        self.children: list[str] = []
        self.roles: tuple[WorkerRole, ...] = ()
        self.buffer: dict[str, list[Any]] = {}  # run id -> Metric
        self.tags: dict[str, list[Any]] = {}  # run id -> RunTag
        self.waiting = 0
        self.last_flush = time.monotonic()

    # -- start ---------------------------------------------------------------------

    def on_run_start(self, info: RunInfo) -> None:
        """Create (or, on resume, reopen) the parent run and one nested run per worker."""
        from mlflow import MlflowClient
        from mlflow.entities import Param, RunTag

        cfg = info.config
        self.begin(info)
        path = info.out_dir / IDS_FILE
        ids: dict[str, Any] | None = None
        if path.is_file():
            ids = json.loads(path.read_text(encoding="utf-8"))
        uri = (ids or {}).get("tracking_uri") or absolute_uri(self.settings.tracking_uri)
        self.client = client = MlflowClient(tracking_uri=uri)
        name = self.settings.run_name or info.name
        if ids is not None and len(ids.get("workers", [])) == len(info.roles):
            self.parent, self.children = ids["parent"], list(ids["workers"])
            for run_id in [self.parent, *self.children]:
                client.update_run(run_id, status="RUNNING")
        else:
            exp = client.get_experiment_by_name(self.settings.experiment)
            exp_id = (
                exp.experiment_id if exp else client.create_experiment(self.settings.experiment)
            )
            tags = {"firepbt.run_dir": str(info.out_dir), "firepbt.role": "controller"}
            self.parent = client.create_run(exp_id, run_name=name, tags=tags).info.run_id
            self.children = []
            for w, role in enumerate(info.roles):
                tags = {
                    "mlflow.parentRunId": self.parent,
                    "firepbt.role": role.role,
                    "firepbt.subpopulation": str(role.subpop or ""),
                    "firepbt.worker": str(w),
                }
                run = client.create_run(exp_id, run_name=f"{name}/{role.name(w)}", tags=tags)
                self.children.append(run.info.run_id)
            ids = {
                "tracking_uri": absolute_uri(client.tracking_uri),
                "experiment_id": exp_id,
                "parent": self.parent,
                "workers": self.children,
            }
            atomic_write(path, (json.dumps(ids, indent=1) + "\n").encode())
            params = [Param(k, v[:6000]) for k, v in flatten(cfg.to_dict()).items()]
            for i in range(0, len(params), 100):
                client.log_batch(self.parent, params=params[i : i + 100])
            for w, role in enumerate(info.roles):
                client.log_batch(
                    self.children[w],
                    params=[
                        Param("worker", str(w)),
                        Param("role", role.role),
                        Param("subpopulation", str(role.subpop or "")),
                    ],
                    tags=[RunTag("firepbt.run_dir", str(info.out_dir))],
                )
        for ev in info.history:  # resumed: the state at the checkpoint, not logged again
            self.track(ev)

    # -- events --------------------------------------------------------------------

    def metric(self, run_id: str, key: str, value: float, step: int) -> None:
        """Buffer one metric point of ``run_id`` (sent by :meth:`flush`)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.buffer.setdefault(run_id, []).append(Metric(key, float(value), now, int(step)))
        self.waiting += 1

    def tag(self, run_id: str, key: str, value: str) -> None:
        """Buffer a tag of ``run_id`` (the latest value of a key wins)."""
        from mlflow.entities import RunTag

        self.tags.setdefault(run_id, []).append(RunTag(key, value))

    def log_parent(self) -> None:
        """The parent's numbers at the furthest network step."""
        step = self.population_step
        if self.best is not None:
            self.metric(self.parent, "best_Q", self.best, step)
        self.metric(self.parent, "exploits", self.counts["exploit"], step)
        self.metric(self.parent, "evaluator_successes", self.counts["success"], step)

    def on_result(self, event: Result) -> None:
        """Q (or ``diverged``), ``net_step`` and the hyperparameters, in the worker's run."""
        changed = self.track(event)
        w = event.worker
        run, step = self.children[w], self.trained[w]
        if event.score is None:
            self.metric(run, "diverged", 1, step)
        else:
            self.metric(run, "Q", event.score, step)
        self.metric(run, "net_step", event.step, step)
        for k, v in event.hparams.items():
            if _numeric(v):
                self.metric(run, k, v, step)
            else:
                self.tag(run, f"hparam.{k}", str(v))
        if changed:
            self.log_parent()
        self.maybe_flush()

    def on_decision(self, event: Decision) -> None:
        """A weight copy: a point in the destination worker's run (``copied_from``, reason)."""
        if not isinstance(event, Copy):
            return
        changed = self.track(event)
        run, step = self.children[event.dst], self.trained.get(event.dst, 0)
        self.metric(run, "copied_from", event.src, step)
        self.metric(run, event.reason, 1, step)
        if changed:
            self.log_parent()
        self.maybe_flush()

    def on_checkpoint(self, event: Checkpoint) -> None:
        """Send the buffer at each checkpoint: a crash then loses what resume regenerates."""
        self.flush()

    def maybe_flush(self) -> None:
        """Send the buffer when a run has a full batch waiting or 30 seconds have passed."""
        full = any(len(ms) >= BATCH for ms in self.buffer.values())
        if full or time.monotonic() - self.last_flush >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Send what is buffered: one ``log_batch`` per run (1000 metrics at most each)."""
        buffer, tags = self.buffer, self.tags
        self.buffer, self.tags, self.waiting = {}, {}, 0
        self.last_flush = time.monotonic()
        for run_id in sorted(set(buffer) | set(tags)):
            metrics = buffer.get(run_id, [])
            run_tags = list({t.key: t for t in tags.get(run_id, [])}.values())  # latest
            for i in range(0, max(len(metrics), 1), BATCH):
                self.client.log_batch(
                    run_id, metrics=metrics[i : i + BATCH], tags=run_tags if i == 0 else []
                )

    # -- end -----------------------------------------------------------------------

    def on_run_end(self, info: RunInfo, result: dict[str, Any] | None) -> None:
        """Send what is left, the tables and artifacts; mark every run finished or failed."""
        client = self.client
        if client is None:
            return
        status = "FINISHED" if result is not None else "FAILED"
        try:
            self.flush()
            if self.copies:
                rows = self.copy_rows()
                table = {c: [row[i] for row in rows] for i, c in enumerate(COPY_COLUMNS)}
                client.log_table(self.parent, table, "weight_copies.json")
            if result is not None:
                self.log_result(info, result)
        finally:
            for run_id in [*self.children, self.parent]:
                client.set_terminated(run_id, status)

    def log_result(self, info: RunInfo, result: dict[str, Any]) -> None:
        """The result, best schedule and results table as the parent run's artifacts."""
        client, run = self.client, self.parent
        rows = summary_rows([(info.name, result)])
        best = result.get("best")
        schedule = best["schedule"] if best else []
        client.log_dict(run, result, "result.json")
        client.log_dict(run, schedule, "best_schedule.json")
        client.log_text(run, format_table(rows) + "\n", "results.txt")
        client.log_table(
            run, {h: [r[i] for r in rows] for i, h in enumerate(HEADER)}, "results_table.json"
        )
        if best:
            self.metric(run, "best_score", best["score"], self.population_step)
            if best.get("test") is not None:
                self.metric(run, "best_test", best["test"], self.population_step)
            self.flush()
