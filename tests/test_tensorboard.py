"""TensorBoard logging: the event files read back match the journal."""

import pytest
from test_resume import Crash, crash_at
from test_runner import config

from firepbt.api import run
from firepbt.config import Config
from firepbt.core.errors import ConfigError
from firepbt.runner.journal import read_events

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)


def expected_scalars(events):
    """tag -> [(worker's trained steps, value)] from the journal."""
    roles = events[0]["roles"]
    trained, out = {}, {}
    for ev in events:
        if ev["ev"] != "result":
            continue
        w = ev["worker"]
        role, subpop = roles[w]
        prefix = f"P{subpop}/member_{w}" if role == "member" else f"evaluators/evaluator_{w}"
        trained[w] = trained.get(w, 0) + ev["step"] - ev["start"]
        values = {"Q": ev["score"], **ev["hparams"]}
        for name, v in values.items():
            if v is not None:
                out.setdefault(f"{prefix}/{name}", []).append((trained[w], v))
    return out


def test_event_files_hold_every_workers_q_and_hparams(tmp_path):
    run(config("fire", tensorboard=True), tmp_path)
    events = list(read_events(tmp_path))
    assert events[0]["config"]["log"]["tensorboard"] is True
    acc = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    want = expected_scalars(events)
    assert tags == set(want)
    assert {"P1/member_0/Q", "P2/member_4/lr", "evaluators/evaluator_8/Q"} <= tags
    for tag, points in want.items():
        got = [(s.step, s.value) for s in acc.Scalars(tag)]
        assert [s for s, _ in got] == [s for s, _ in points], tag
        assert [v for _, v in got] == pytest.approx([v for _, v in points], rel=1e-6), tag


def test_tensorboard_is_off_by_default(tmp_path):
    run(config("random"), tmp_path)
    assert not (tmp_path / "tensorboard").exists()


def test_tensorboard_must_be_a_boolean():
    with pytest.raises(ConfigError, match="tensorboard: expected bool"):
        config("random", tensorboard="yes")
    cfg = config("random", tensorboard=True)
    assert Config.from_dict(cfg.to_dict()).tensorboard is True


def test_a_resumed_run_goes_on_logging_at_the_workers_steps(tmp_path):
    """After ``resume`` the logger counts each worker's steps from the journal up to the
    checkpoint, so the new event file continues every curve (before issue 10 it wrote
    nothing after a resume)."""
    from firepbt.api import resume

    with pytest.raises(Crash):
        run(config("pbt", tensorboard=True), tmp_path, observers=[crash_at(200)])
    resume(tmp_path)
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2
    acc = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    want = expected_scalars(list(read_events(tmp_path)))
    assert set(acc.Tags()["scalars"]) == set(want)
    for tag, points in want.items():
        got = sorted({(s.step, s.value) for s in acc.Scalars(tag)})  # repeats after resume
        assert [s for s, _ in got] == [s for s, _ in points], tag
        assert [v for _, v in got] == pytest.approx([v for _, v in points], rel=1e-6), tag
