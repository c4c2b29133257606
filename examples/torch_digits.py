"""FIRE PBT tunes the learning rate and momentum of an MLP on scikit-learn's digits."""

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from firepbt.torch import TorchTrainable


class DigitsMLP(TorchTrainable):
    num_threads = 1  # many workers share the machine's cores

    def build(self, seed, width=64, batch_size=32):
        x, y = load_digits(return_X_y=True)  # 1797 8x8 images, no download
        x = torch.tensor(x / 16.0, dtype=torch.float32)
        y = torch.tensor(y)
        split = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
        self.train_x, self.train_y = x[split[:1400]], y[split[:1400]]
        # validation data on the network's device (cpu, or the slot's GPU: `devices`)
        self.val_x, self.val_y = x[split[1400:]].to(self.device), y[split[1400:]].to(self.device)
        model = torch.nn.Sequential(
            torch.nn.Linear(64, width), torch.nn.ReLU(), torch.nn.Linear(width, 10)
        )
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)  # lr, momentum: set by firepbt

        def epoch(generator):  # one shuffled pass; randomness only from `generator`
            order = torch.randperm(len(self.train_y), generator=generator)
            for i in range(0, len(order), batch_size):
                idx = order[i : i + batch_size]
                yield self.train_x[idx], self.train_y[idx]

        return model, optimizer, epoch

    def loss(self, batch):
        x, y = batch
        return F.cross_entropy(self.model(x), y)

    def score(self):  # Q: validation accuracy (direction = "max")
        return float((self.model(self.val_x).argmax(1) == self.val_y).float().mean())
