"""A real small network for the PyTorch helper's tests: an MLP on synthetic classes."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from firepbt.integrations.torch import TorchTrainable


def two_moons(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two noisy interleaved half circles: a small non-linear classification problem."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    t = torch.rand(n, generator=g) * torch.pi
    x = torch.stack([torch.cos(t) + y * 1.0, torch.sin(t) * (1 - 2 * y) + y * 0.5], dim=1)
    return x + 0.15 * torch.randn(n, 2, generator=g), y


class MLP(TorchTrainable):
    num_threads = 1

    def build(self, seed, width=32, dropout=0.1, n=512, batch_size=32, data_seed=0):
        self.x, self.y = two_moons(n, data_seed)
        # validation data on the network's device (score() runs there); batches are moved
        self.x_val, self.y_val = (t.to(self.device) for t in two_moons(256, data_seed + 1))
        model = torch.nn.Sequential(
            torch.nn.Linear(2, width),
            torch.nn.ReLU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(width, 2),
        )
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def epoch(generator):
            order = torch.randperm(n, generator=generator)
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                yield self.x[idx], self.y[idx]

        return model, optimizer, epoch

    def loss(self, batch):
        x, y = batch
        return F.cross_entropy(self.model(x), y)

    def score(self):
        return float((self.model(self.x_val).argmax(1) == self.y_val).float().mean())

    def test(self):
        with self.evaluating():
            return float(F.cross_entropy(self.model(self.x_val), self.y_val))


class AdamMLP(MLP):
    def build(self, seed, **args):
        model, _, epoch = super().build(seed, **args)
        return model, torch.optim.AdamW(model.parameters(), lr=1e-3), epoch


class DropoutMLP(MLP):
    """Tunes the dropout rate too: declared in ``handled_hparams``, set by the override."""

    handled_hparams = ("dropout",)

    def apply_hparams(self, hparams):
        super().apply_hparams(hparams)
        self.model[2].p = hparams["dropout"]
