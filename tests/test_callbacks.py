"""The callback protocol: typed events, hook order, failures reported once, resume."""

import io
import logging
import sys

import pytest
from test_resume import Crash, crash_at  # one crash-at-the-k-th-event observer
from test_runner import config

from firepbt.api import resume, run
from firepbt.cli import main
from firepbt.core.errors import ConfigError
from firepbt.report.live import PlainProgress
from firepbt.runner.callbacks import Callback
from firepbt.runner.events import (
    Check,
    Checkpoint,
    Copy,
    End,
    Fault,
    OtherEvent,
    Result,
    Start,
    WorkerRole,
    parse_event,
)
from firepbt.runner.journal import read_events


class Recorder(Callback):
    """Records every hook call, in order."""

    def __init__(self):
        self.calls = []
        self.events = []

    def on_run_start(self, info):
        self.calls.append(("run_start", info))

    def on_event(self, event):
        self.events.append(event)
        super().on_event(event)

    def on_start(self, event):
        self.calls.append(("start", event))

    def on_result(self, event):
        self.calls.append(("result", event))

    def on_decision(self, event):
        self.calls.append(("decision", event))

    def on_checkpoint(self, event):
        self.calls.append(("checkpoint", event))

    def on_end(self, event):
        self.calls.append(("end", event))

    def on_run_end(self, info, result):
        self.calls.append(("run_end", result))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_every_journal_line_parses_to_a_typed_event_and_back(tmp_path, mode):
    run(config("fire", mode=mode), tmp_path)
    kinds = set()
    for line in read_events(tmp_path):
        ev = parse_event(line)
        assert not isinstance(ev, OtherEvent), line
        assert ev.to_dict() == line
        kinds.add(ev.kind)
    assert {"start", "result", "hparams", "copy", "assign", "free", "check", "end"} <= kinds


def test_unknown_kinds_are_kept_whole():
    ev = parse_event({"ev": "from_the_future", "x": 1})
    assert isinstance(ev, OtherEvent) and ev.name == "from_the_future"
    assert ev.to_dict() == {"ev": "from_the_future", "x": 1}
    extra = parse_event({"ev": "end", "step": 3, "note": "new field"})
    assert isinstance(extra, End) and extra.step == 3
    assert extra.to_dict() == {"ev": "end", "step": 3, "note": "new field"}
    # optional fields a line lacks stay out; fields a newer version adds are kept
    fault = {"ev": "fault", "reason": "timeout", "worker": 3, "action": "killed", "timeout_s": 5}
    ev = parse_event(fault)
    assert isinstance(ev, Fault) and ev.slot is None and ev.extra == {"timeout_s": 5}
    assert ev.to_dict() == fault


def test_hooks_see_the_journal_in_order_between_run_start_and_run_end(tmp_path):
    rec = Recorder()
    seen = []
    result = run(config("fire"), tmp_path, callbacks=[rec, seen.append])
    journal = list(read_events(tmp_path))
    journalled = [e.to_dict() for e in rec.events if not isinstance(e, Checkpoint)]
    assert journalled == journal
    assert [e.to_dict() for e in seen] == [e.to_dict() for e in rec.events]  # a function too
    kinds = [k for k, _ in rec.calls]
    assert kinds[0] == "run_start" and kinds[1] == "start"
    assert kinds[-2:] == ["end", "run_end"]
    info = rec.calls[0][1]
    assert info.out_dir == tmp_path and not info.resumed and info.history == ()
    assert info.roles[0] == WorkerRole("member", 1) and info.roles[-1] == WorkerRole(
        "evaluator", None
    )
    assert rec.calls[-1][1] == result
    assert kinds.count("result") == sum(ev["ev"] == "result" for ev in journal)
    decisions = [e for k, e in rec.calls if k == "decision"]
    assert any(isinstance(e, Copy) for e in decisions) and any(
        isinstance(e, Check) for e in decisions
    )
    assert all(isinstance(e, Result) for k, e in rec.calls if k == "result")
    assert isinstance(rec.calls[1][1], Start)
    # a checkpoint at each ready point (400 steps / 50), shown only to callbacks
    checkpoints = [e for k, e in rec.calls if k == "checkpoint"]
    assert [c.seq for c in checkpoints] == list(range(1, len(checkpoints) + 1))
    assert len(checkpoints) == 7 and all(c.bytes > 0 for c in checkpoints)


class FailsAt(Callback):
    def __init__(self, k):
        self.k, self.n = k, 0

    def on_result(self, event):
        self.n += 1
        if self.n == self.k:
            raise OSError(28, "No space left on device")


def test_a_failing_callback_is_reported_once_and_the_run_goes_on(tmp_path, caplog):
    ref = tmp_path / "ref"
    run(config("fire"), ref)
    bad, rec = FailsAt(5), Recorder()
    with caplog.at_level(logging.WARNING, logger="firepbt"):
        result = run(config("fire"), tmp_path / "run", callbacks=[bad, rec])
    assert bad.n == 5  # switched off after its failure
    warnings = [r.getMessage() for r in caplog.records if r.name == "firepbt"]
    assert len(warnings) == 1
    assert "callback FailsAt failed in on_event(result)" in warnings[0]
    assert "No space left on device" in warnings[0]
    log = (tmp_path / "run/callback-errors.log").read_text()
    assert "Traceback" in log and "OSError" in log
    # the other callback saw everything; journal and result are the ones of a clean run
    assert rec.calls[-1] == ("run_end", result)
    assert (tmp_path / "run/events.jsonl").read_bytes() == (ref / "events.jsonl").read_bytes()
    assert (tmp_path / "run/result.json").read_bytes() == (ref / "result.json").read_bytes()


def test_run_end_is_called_with_none_when_the_run_stops_on_an_error(tmp_path):
    rec = Recorder()
    with pytest.raises(Crash):
        run(config("fire"), tmp_path, observers=[crash_at(50)], callbacks=[rec])
    assert rec.calls[-1] == ("run_end", None)


def test_a_resumed_run_tells_callbacks_the_journal_so_far(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(Crash):
        run(config("fire"), out, observers=[crash_at(300)])
    rec = Recorder()
    stream = io.StringIO()
    view = PlainProgress(stream, min_interval=0)
    result = resume(out, callbacks=[rec, view])
    info = rec.calls[0][1]
    assert info.resumed and info.checkpoint is not None and info.history
    journal = list(read_events(out))
    history = [e.to_dict() for e in info.history]
    assert history == journal[: len(history)]
    after = [e.to_dict() for e in rec.events if not isinstance(e, Checkpoint)]
    assert history + after == journal  # no event missed, none twice
    assert after[0]["ev"] == "resume"
    assert rec.calls[-1] == ("run_end", result)
    # the live view was rebuilt from the history: it knows the whole population
    assert view.view.ended and view.view.done() == 400
    assert "step 400/400" in stream.getvalue()


def test_a_logger_whose_package_is_missing_fails_before_anything_is_written(
    tmp_path, monkeypatch, capsys
):
    for package, extra in [("wandb", "wandb"), ("mlflow", "mlflow")]:
        monkeypatch.setitem(sys.modules, package, None)  # as if not installed
        cfg = config("random", log={package: True})
        with pytest.raises(ConfigError, match=rf"log.{package}: .*firepbt\[{extra}\]"):
            run(cfg, tmp_path / package)
        assert not (tmp_path / package).exists()
    toml = tmp_path / "exp.toml"
    toml.write_text(
        'trainable = "toys:Climb"\nsteps = 100\neval_interval = 10\nready_interval = 50\n'
        '[space.lr]\nkind = "log_uniform"\nlow = 0.001\nhigh = 1.0\n'
        '[algorithm]\nname = "random"\npopulation = 2\n[log]\nwandb = true\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["run", str(toml), "--out", str(tmp_path / "cli"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0] == (
        "firepbt: error: log.wandb: needs the wandb package (pip install 'firepbt[wandb]')"
    )
    assert not (tmp_path / "cli").exists()
