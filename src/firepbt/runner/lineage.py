"""Lineage of every network and the schedules it implies (SPEC "Lineage and schedules").

Each weight copy creates a new network node that forks from the source's node at the
source's step; training appends segments (start, end, hparams) to the node a worker
holds. The schedule of a network at a step walks the forks back to a fresh
initialisation. The whole structure is rebuilt from the journal (``result`` and ``copy``
events), so it is the journal, not this object, that is the source of truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Segment = dict[str, Any]  # {"start": int, "end": int, "hparams": {...}}


@dataclass
class Network:
    """One network: the node it forked from (None: a fresh initialisation), at which step, and its segments."""

    parent: int | None
    fork_step: int
    segments: list[Segment] = field(default_factory=list)


class Lineage:
    """Networks, forks and the segments trained on each."""

    def __init__(self, n_initial: int = 0) -> None:
        self.nets: list[Network] = [Network(None, 0) for _ in range(n_initial)]

    def fork(self, src_net: int, step: int) -> int:
        """A new network copied from ``src_net`` at ``step``; returns its id."""
        self.nets.append(Network(src_net, step))
        return len(self.nets) - 1

    def train(self, net: int, start: int, end: int, hparams: Mapping[str, Any]) -> None:
        """Record that ``net`` trained from ``start`` to ``end`` with ``hparams``."""
        segs = self.nets[net].segments
        if segs and segs[-1]["end"] == start and segs[-1]["hparams"] == hparams:
            segs[-1]["end"] = end
        else:
            segs.append({"start": start, "end": end, "hparams": dict(hparams)})

    def schedule(self, net: int, step: int) -> list[Segment]:
        """Segments that produced network ``net`` as it was at ``step``, merged."""
        chain: list[tuple[int, int]] = []  # (net, up to step), newest first
        cur: int | None = net
        upto = step
        while cur is not None:
            chain.append((cur, upto))
            node = self.nets[cur]
            upto = min(upto, node.fork_step)
            cur = node.parent
        out: list[Segment] = []
        for node_id, limit in reversed(chain):
            for seg in self.nets[node_id].segments:
                start, end = seg["start"], min(seg["end"], limit)
                if end <= start:
                    continue
                if out and out[-1]["end"] == start and out[-1]["hparams"] == seg["hparams"]:
                    out[-1]["end"] = end
                else:
                    out.append({"start": start, "end": end, "hparams": dict(seg["hparams"])})
        return out

    def ancestry(self, net: int) -> list[int]:
        """Network ids from ``net`` back to its fresh initialisation."""
        out = []
        cur: int | None = net
        while cur is not None:
            out.append(cur)
            cur = self.nets[cur].parent
        return out

    @classmethod
    def from_events(cls, events: Iterable[Mapping[str, Any]]) -> Lineage:
        """The lineage a journal's ``start``, ``copy`` and ``result`` events describe."""
        lin = cls()
        for ev in events:
            kind = ev.get("ev")
            if kind == "start":
                lin = cls(int(ev["workers"]))
            elif kind == "copy":
                new = lin.fork(int(ev["src_net"]), int(ev["step"]))
                if new != ev["net"]:
                    raise ValueError(f"journal: copy creates net {ev['net']}, expected {new}")
            elif kind == "result":
                lin.train(int(ev["net"]), int(ev["start"]), int(ev["step"]), ev["hparams"])
        return lin
