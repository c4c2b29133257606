"""A PyTorch helper: a model, an optimiser, batches and a score become a trainable.

Subclass :class:`TorchTrainable` and implement three methods::

    build(self, seed, **args) -> (model, optimizer, epoch)
        # epoch(generator) -> an iterable over one pass of training batches; it must draw
        # its randomness (shuffling, augmentation) only from the torch.Generator it is given
    loss(self, batch) -> torch.Tensor        # the training loss of one batch
    score(self) -> float                     # the objective Q (firepbt calls evaluate())

``build`` runs under a torch RNG seeded from the worker's seed, so parameter
initialisation needs no seeding of its own; data sets shared by all workers should be
made from a fixed seed in ``args``, not from ``seed``.

**Hyperparameters set on the optimiser.** Before every ``train`` call,
:meth:`TorchTrainable.apply_hparams` writes each hyperparameter whose name is a key of
the optimiser's param groups into every group: ``lr``, ``momentum``, ``weight_decay``,
``dampening``, ``eps``, ``alpha``, … whatever the optimiser has. ``beta1`` and ``beta2``
set the two halves of ``betas`` (Adam, AdamW). Any other hyperparameter is your code's
to use, and must be declared in ``handled_hparams``: a search space naming a
hyperparameter that is neither an optimiser key nor declared is refused before training
(``space.momentun: ... does not use a hyperparameter named 'momentun' (did you mean
'momentum'?)``), since tuning it would change nothing. All of them are in
``self.hparams`` during ``loss``/``train_step``. To add one (a dropout rate, a per-group
lr), declare it and override ``apply_hparams``, calling ``super()``::

    handled_hparams = ("dropout",)

    def apply_hparams(self, hparams):
        super().apply_hparams(hparams)
        self.model.dropout.p = hparams["dropout"]

**State.** ``state_dict`` holds the model's and optimiser's state, this network's own
torch CPU RNG state (training runs under it and leaves the global RNG untouched) and the
data position: the data generator's state at the start of the current epoch and the number
of batches taken since. Loading it replays the epoch up to that position, so a copied
network trains on exactly the batches and random draws the source would have: the
next losses match bit for bit on CPU. On a CUDA device the network's CUDA RNG state is
in it too.

**Devices.** ``device`` (``"cpu"``, ``"cuda:0"``, ...; the process executor passes its
slot's device) is where the model and its optimiser state live: the model is moved there
after ``build`` (``self.device`` is set before ``build`` runs, for data you keep on the
device) and every training batch is moved there (:meth:`TorchTrainable.to_device`);
``score``/``test`` must put their own data on ``self.device``. ``state_dict`` is on the
CPU, so a state moves between processes and nodes and loads onto any device.

Evaluation (``evaluate``, and a ``test`` you wrap in ``with self.evaluating():``) runs
in eval mode without gradients and never advances the training RNG or data position.

Set ``num_threads = 1`` on the subclass to call ``torch.set_num_threads(1)`` when a
network is built (sensible when many workers share a machine's cores).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

__all__ = ["Epoch", "TorchTrainable"]

Epoch = Callable[[torch.Generator], Iterable[Any]]


class TorchTrainable:
    """Base class of a firepbt trainable around a PyTorch model; see the module docstring."""

    num_threads: int | None = None
    # hyperparameters your code uses beyond the optimiser's keys (apply_hparams, loss)
    handled_hparams: tuple[str, ...] = ()

    def __init__(self, seed: int, device: str | torch.device | None = None, **args: Any) -> None:
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        # the process executor passes its slot's device ("cuda:0" as seen in the slot)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        init_seed, data_seed = np.random.SeedSequence(seed).generate_state(2)
        self.hparams: dict[str, Any] = {}
        self.last_loss: float | None = None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(init_seed))
            model, self.optimizer, self.epoch = self.build(seed, **args)
            self.rng_state = torch.get_rng_state()
        # moved in place: the optimiser (no state yet) keeps pointing at the same parameters
        self.model = model.to(self.device)
        self.cuda_rng_state: torch.Tensor | None = None
        if self.device.type == "cuda":
            with torch.random.fork_rng(devices=[self._cuda_index()]):
                torch.cuda.manual_seed(int(init_seed))
                self.cuda_rng_state = torch.cuda.get_rng_state(self.device)
        self.generator = torch.Generator().manual_seed(int(data_seed))
        self._start_epoch()

    # -- to implement -------------------------------------------------------------------

    def build(self, seed: int, **args: Any) -> tuple[torch.nn.Module, torch.optim.Optimizer, Epoch]:
        """Return ``(model, optimizer, epoch)``; ``epoch(generator)`` yields one pass of batches. To implement."""
        raise NotImplementedError

    def loss(self, batch: Any) -> torch.Tensor:
        """The training loss of one batch. To implement."""
        raise NotImplementedError

    def score(self) -> float:
        """The objective Q, run in eval mode without gradients. To implement."""
        raise NotImplementedError

    # -- hooks ----------------------------------------------------------------------------

    def accepted_hparams(self) -> set[str]:
        """The optimiser's keys (``beta1``/``beta2`` with ``betas``) and ``handled_hparams``:
        what :meth:`apply_hparams` and your code use (the trainable protocol's declaration)."""
        names = set(self.handled_hparams)
        for group in self.optimizer.param_groups:
            names |= {k for k in group if k != "params"}
            if "betas" in group:
                names |= {"beta1", "beta2"}
        return names

    def apply_hparams(self, hparams: dict[str, Any]) -> None:
        """Write the optimiser's hyperparameters into every param group."""
        for group in self.optimizer.param_groups:
            for name, value in hparams.items():
                if name in group and name != "params":
                    group[name] = value
            if "betas" in group and ("beta1" in hparams or "beta2" in hparams):
                b1, b2 = group["betas"]
                group["betas"] = (hparams.get("beta1", b1), hparams.get("beta2", b2))

    def train_step(self, batch: Any) -> float:
        """One optimiser step on ``batch``; returns the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(batch)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    # -- the trainable protocol -----------------------------------------------------------

    def train(self, steps: int, hparams: dict[str, Any]) -> None:
        """Apply ``hparams``, then take ``steps`` optimiser steps under the network's own RNG."""
        self.hparams = dict(hparams)
        self.apply_hparams(self.hparams)
        self.model.train()
        with self.own_rng():
            for _ in range(steps):
                self.last_loss = self.train_step(self.to_device(self.next_batch()))

    def evaluate(self) -> float:
        """``score()`` in eval mode, without gradients or advancing the training RNG."""
        with self.evaluating():
            return float(self.score())

    def state_dict(self) -> dict[str, Any]:
        """A copy of the model, optimiser, RNG and data position, on the CPU (see the module docstring)."""
        # on the CPU: a state moves between processes and nodes, and loads on any device
        return _to(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "rng": self.rng_state,
                "cuda_rng": self.cuda_rng_state,
                "epoch_rng": self.epoch_state,
                "position": self.position,
                "hparams": self.hparams,
                "last_loss": self.last_loss,
            },
            torch.device("cpu"),
            clone=True,
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`, replaying the epoch up to its data position."""
        state = copy.deepcopy(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for buffers in self.optimizer.state.values():  # onto this network's device
            for name, value in buffers.items():
                if isinstance(value, torch.Tensor) and name != "step":
                    buffers[name] = value.to(self.device)
        self.rng_state = state["rng"]
        if self.device.type == "cuda" and state.get("cuda_rng") is not None:
            self.cuda_rng_state = state["cuda_rng"]  # a state from a CPU network keeps ours
        self.hparams = state["hparams"]
        self.last_loss = state["last_loss"]
        self.generator.set_state(state["epoch_rng"])
        self._start_epoch(skip=state["position"])

    # -- helpers ----------------------------------------------------------------------

    @contextmanager
    def own_rng(self) -> Iterator[None]:
        """Run under this network's torch RNG stream; the global one is left as it was."""
        with torch.random.fork_rng(devices=self._rng_devices()):
            self._set_rng()
            yield
            self.rng_state = torch.get_rng_state()
            if self.cuda_rng_state is not None:
                self.cuda_rng_state = torch.cuda.get_rng_state(self.device)

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode, no gradients, a throwaway copy of the network's RNG stream.

        Evaluation never advances the training stream, so a network trains the same
        whether or not (and how often) it was evaluated: replay relies on it.
        """
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=self._rng_devices()):
                self._set_rng()
                yield
        finally:
            self.model.train(was_training)

    def to_device(self, batch: Any) -> Any:
        """``batch`` with its tensors (in tuples, lists, dicts) on this network's device."""
        return _to(batch, self.device)

    def _cuda_index(self) -> int:
        return self.device.index if self.device.index is not None else torch.cuda.current_device()

    def _rng_devices(self) -> list[int]:
        return [self._cuda_index()] if self.cuda_rng_state is not None else []

    def _set_rng(self) -> None:
        torch.set_rng_state(self.rng_state)
        if self.cuda_rng_state is not None:
            torch.cuda.set_rng_state(self.cuda_rng_state, self.device)

    def next_batch(self) -> Any:
        """The next training batch, starting a new epoch when one ends."""
        try:
            batch = next(self.batches)
        except StopIteration:
            self._start_epoch()
            try:
                batch = next(self.batches)
            except StopIteration:
                raise ValueError("the epoch iterable yielded no batch") from None
        self.position += 1
        return batch

    def _start_epoch(self, skip: int = 0) -> None:
        self.epoch_state = self.generator.get_state()
        self.batches = iter(self.epoch(self.generator))
        self.position = 0
        for _ in range(skip):
            self.next_batch()


def _to(obj: Any, device: torch.device, clone: bool = False) -> Any:
    """``obj`` with every tensor in it on ``device`` (each one a copy if ``clone``)."""
    if isinstance(obj, torch.Tensor):
        moved = obj.to(device)
        return moved.clone() if clone and moved is obj else moved
    if isinstance(obj, dict):
        return {k: _to(v, device, clone) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [_to(v, device, clone) for v in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    return copy.deepcopy(obj) if clone else obj
