"""Random search decider (paper Section 4.1.1)."""

import numpy as np
import pytest

from firepbt.algorithms import RandomSearch, RelativeSchedule, SetHparams
from firepbt.core.space import LogUniform, SearchSpace

SPACE = SearchSpace({"lr": LogUniform(0.01, 0.3)})


def test_samples_once_and_never_exploits():
    d = RandomSearch(SPACE, 5, np.random.default_rng(0), steps=100, eval_interval=10)
    cmds = d.start()
    assert [c.worker for c in cmds] == list(range(5))
    for step in range(10, 110, 10):
        for w in range(5):
            assert d.on_result(w, step, float(w)) == []
        assert d.on_ready(range(5)) == []


def test_relative_schedule_warmup_then_decays():
    sched = RelativeSchedule("lr", warmup=0.1, decays=(0.5, 0.75), factor=0.1)
    d = RandomSearch(SPACE, 2, np.random.default_rng(0), steps=100, eval_interval=5, schedule=sched)
    start = d.start()
    base = d.base[0]["lr"]
    assert start[0].hparams["lr"] == pytest.approx(base * 0.5)  # (0 + 5) / 10
    seen = {}
    for step in range(5, 100, 5):
        for c in d.on_result(0, step, 1.0):
            assert isinstance(c, SetHparams) and c.reason == "schedule"
            seen[step] = c.hparams["lr"] / base
    assert seen == pytest.approx({5: 1.0, 50: 0.1, 75: 0.01})
