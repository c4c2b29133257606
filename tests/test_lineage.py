"""Schedules from lineage (SPEC "Lineage and schedules")."""

from firepbt.runner.lineage import Lineage


def seg(start, end, lr):
    return {"start": start, "end": end, "hparams": {"lr": lr}}


def test_schedule_walks_copies_back_to_initialisation():
    lin = Lineage(2)
    lin.train(0, 0, 10, {"lr": 0.1})
    lin.train(0, 10, 20, {"lr": 0.1})  # merged with the previous segment
    lin.train(1, 0, 20, {"lr": 0.5})
    child = lin.fork(0, 20)  # worker 1 copies worker 0 at step 20 ...
    lin.train(0, 20, 40, {"lr": 0.9})  # ... the source trains on: not in the child's past
    lin.train(child, 20, 30, {"lr": 0.05})
    lin.train(child, 30, 40, {"lr": 0.02})
    assert lin.schedule(child, 40) == [seg(0, 20, 0.1), seg(20, 30, 0.05), seg(30, 40, 0.02)]
    assert lin.schedule(child, 25) == [seg(0, 20, 0.1), seg(20, 25, 0.05)]
    assert lin.schedule(0, 40) == [seg(0, 20, 0.1), seg(20, 40, 0.9)]
    assert lin.ancestry(child) == [child, 0]


def test_adjacent_equal_segments_across_a_copy_merge():
    lin = Lineage(1)
    lin.train(0, 0, 10, {"lr": 0.1})
    c = lin.fork(0, 10)
    lin.train(c, 10, 20, {"lr": 0.1})
    assert lin.schedule(c, 20) == [seg(0, 20, 0.1)]


def test_rebuilt_from_events():
    events = [
        {"ev": "start", "workers": 2},
        {"ev": "result", "worker": 0, "net": 0, "start": 0, "step": 10, "hparams": {"lr": 0.1}},
        {"ev": "result", "worker": 1, "net": 1, "start": 0, "step": 10, "hparams": {"lr": 0.2}},
        {"ev": "copy", "src": 0, "dst": 1, "step": 10, "src_net": 0, "net": 2},
        {"ev": "result", "worker": 1, "net": 2, "start": 10, "step": 20, "hparams": {"lr": 0.3}},
    ]
    lin = Lineage.from_events(events)
    assert lin.schedule(2, 20) == [seg(0, 10, 0.1), seg(10, 20, 0.3)]
