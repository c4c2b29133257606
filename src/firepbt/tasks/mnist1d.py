"""MNIST-1D (Greydanus 2020) classified by a small MLP in PyTorch, as a firepbt trainable.

The data are generated offline by ``mnist1d.data.make_dataset`` with a fixed seed (never
its download path): 10,000 samples of length 40, split 6000 train / 2000 validation (the
objective Q, accuracy, maximised) / 2000 test. The model is an MLP 40-100-100-10 (ReLU)
trained by SGD with momentum 0.9, weight decay 5e-4 and batch 128; the tuned
hyperparameter is ``lr``. Each worker uses one torch thread.

:meth:`MNIST1D.state_dict` holds the model, the optimiser (momentum buffers) and the
data-order generator, so a copied network continues exactly as its source would.
Needs the ``bench`` extra (``torch==2.13.0``, ``mnist1d``).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

__all__ = ["MNIST1D", "load_data", "reference_schedules"]

_DATA: dict[tuple[int, int], dict[str, np.ndarray]] = {}


def load_data(num_samples: int = 10_000, data_seed: int = 42) -> dict[str, np.ndarray]:
    """The dataset split 60% train / 20% validation / 20% test (cached per process)."""
    key = (int(num_samples), int(data_seed))
    if key not in _DATA:
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples = int(num_samples)
        args.train_split = 0.6
        args.seed = int(data_seed)
        state = np.random.get_state()  # make_dataset seeds numpy's global generator
        try:
            d = make_dataset(args)
        finally:
            np.random.set_state(state)
        half = len(d["y_test"]) // 2
        _DATA[key] = {
            "x_train": d["x"].astype(np.float32),
            "y_train": d["y"].astype(np.int64),
            "x_val": d["x_test"][:half].astype(np.float32),
            "y_val": d["y_test"][:half].astype(np.int64),
            "x_test": d["x_test"][half:].astype(np.float32),
            "y_test": d["y_test"][half:].astype(np.int64),
        }
    return _DATA[key]


class MNIST1D:
    """MLP on MNIST-1D (hyperparameter ``lr``; objective: validation accuracy, maximised)."""

    accepted_hparams = ("lr",)  # the search space may name only these

    def __init__(
        self,
        seed: int,
        num_samples: int = 10_000,
        hidden: int = 100,
        batch_size: int = 128,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        data_seed: int = 42,
    ) -> None:
        import torch

        torch.set_num_threads(1)
        self.torch = torch
        data = load_data(num_samples, data_seed)
        self.x = {k: torch.from_numpy(data[f"x_{k}"]) for k in ("train", "val", "test")}
        self.y = {k: torch.from_numpy(data[f"y_{k}"]) for k in ("train", "val", "test")}
        self.batch_size = int(batch_size)
        gen = torch.Generator().manual_seed(int(seed) % (2**63))
        width = self.x["train"].shape[1]
        self.model = torch.nn.Sequential(
            torch.nn.Linear(width, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, 10),
        )
        with torch.no_grad():  # torch's default init, drawn from the worker's seed
            for layer in self.model:
                if isinstance(layer, torch.nn.Linear):
                    bound = 1.0 / math.sqrt(layer.in_features)
                    layer.weight.uniform_(-bound, bound, generator=gen)
                    layer.bias.uniform_(-bound, bound, generator=gen)
        self.opt = torch.optim.SGD(
            self.model.parameters(), lr=0.1, momentum=momentum, weight_decay=weight_decay
        )
        self.rng = np.random.default_rng(seed)
        self.diverged = False

    def train(self, steps: int, hparams: dict[str, Any]) -> None:
        torch = self.torch
        lr = float(hparams["lr"])
        for group in self.opt.param_groups:
            group["lr"] = lr
        n = self.x["train"].shape[0]
        loss_fn = torch.nn.functional.cross_entropy
        for _ in range(int(steps)):
            idx = torch.from_numpy(self.rng.integers(0, n, self.batch_size))
            loss = loss_fn(self.model(self.x["train"][idx]), self.y["train"][idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            if not math.isfinite(float(loss.detach())):
                self.diverged = True  # a diverged network stays diverged (SPEC "Bad scores")
                return

    def _accuracy(self, split: str) -> float:
        with self.torch.no_grad():
            logits = self.model(self.x[split])
        if self.diverged or not bool(self.torch.isfinite(logits).all()):
            return math.nan
        return float((logits.argmax(1) == self.y[split]).float().mean())

    def evaluate(self) -> float:
        return self._accuracy("val")

    def test(self) -> float:
        return self._accuracy("test")

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.opt.state_dict()),
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "diverged": self.diverged,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.diverged = bool(state["diverged"])


def step_schedule(total_steps: int, peak: float) -> list[dict[str, Any]]:
    """The hand-tuned shape: ``peak``, then x0.1 at 50% and x0.01 at 75% of training."""
    a, b = total_steps // 2, (3 * total_steps) // 4
    return [
        {"start": 0, "end": a, "hparams": {"lr": peak}},
        {"start": a, "end": b, "hparams": {"lr": peak * 0.1}},
        {"start": b, "end": total_steps, "hparams": {"lr": peak * 0.01}},
    ]


def reference_schedules(
    total_steps: int, args: dict[str, Any], grid: list[float], seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Best constant lr and best step schedule over ``grid`` (chosen by validation)."""
    out: dict[str, dict[str, Any]] = {}
    shapes = {
        "constant": lambda lr: [{"start": 0, "end": total_steps, "hparams": {"lr": lr}}],
        "step": lambda lr: step_schedule(total_steps, lr),
    }
    labels = {"constant": "best constant lr", "step": "tuned step schedule (x0.1 at 50%, 75%)"}
    for name, shape in shapes.items():
        best: dict[str, Any] | None = None
        for lr in grid:
            net = MNIST1D(seed, **args)
            for seg in shape(lr):
                net.train(seg["end"] - seg["start"], seg["hparams"])
            val, test = net.evaluate(), net.test()
            if math.isfinite(val) and (best is None or val > best["score"]):
                best = {"score": val, "test": test, "lr": lr, "schedule": shape(lr)}
        assert best is not None
        best["label"] = labels[name]
        out[name] = best
    return out
