"""Real models and data for the PyTorch drop-in: the tests, the benchmark and the README use
them, so "it trains the same" is shown on the same models everywhere.

- :func:`digits`: scikit-learn's bundled handwritten digits (1797 images of 8x8 pixels, ten
  classes; no download), scaled to [0, 1] and split train/test with a seed.
- :class:`DigitsMLP`: 64 -> 128 -> 64 -> 10 with ReLU (17,226 parameters).
- :class:`DigitsCNN`: two 3x3 convolutions (16 and 32 channels), 2x2 max-pooling, a linear
  classifier (9,930 parameters), on the images as 1x8x8.
- :func:`wide_mlp`: an MLP of about 10 million parameters (1024 -> 2048 -> 2048 -> 1024 ->
  1024 -> 10), for timing a step where the optimizer's memory traffic matters.
- :func:`train`: the plain torch training loop (zero_grad, forward, backward, step), returning
  the loss of every step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class Digits:
    """The digits split: images ``(n, 64)`` in [0, 1], integer labels ``(n,)``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def digits(seed: int = 0, test_fraction: float = 0.25, dtype=torch.float32) -> Digits:
    """scikit-learn's ``load_digits`` (bundled with the package), pixels / 16, shuffled with
    ``seed`` and split into train and test."""
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(seed).permutation(len(data.target))
    x = torch.tensor(data.data[order] / 16.0, dtype=dtype)
    y = torch.tensor(data.target[order], dtype=torch.long)
    n_test = int(round(test_fraction * len(y)))
    return Digits(x[n_test:], y[n_test:], x[:n_test], y[:n_test])


class DigitsMLP(nn.Module):
    """64 -> 128 -> 64 -> 10, ReLU: logits of the ten digits from the 64 pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(len(x), 64))


class DigitsCNN(nn.Module):
    """conv 3x3 (16) -> ReLU -> conv 3x3 (32) -> ReLU -> max-pool 2x2 -> linear (512 -> 10),
    on the pixels as a 1x8x8 image."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x.reshape(len(x), 1, 8, 8))
        return self.classifier(h.flatten(1))


def wide_mlp(inputs: int = 1024, classes: int = 10) -> nn.Module:
    """An MLP of 9.45 million parameters: inputs -> 2048 -> 2048 -> 1024 -> 1024 -> classes."""
    widths = [inputs, 2048, 2048, 1024, 1024]
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], classes))
    return nn.Sequential(*layers)


def parameter_count(model: nn.Module) -> int:
    """The number of trainable numbers in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = 1,
    batch_size: int = 64,
    seed: int = 0,
    scheduler=None,
    step_seconds: list | None = None,
) -> list[float]:
    """Mini-batch training with cross-entropy: per epoch a seeded shuffle, then for each batch
    ``zero_grad(); loss.backward(); step()`` (and ``scheduler.step()`` per batch if given).
    Returns the loss of every step, in order; ``step_seconds`` (a list) receives the wall time
    of each training step (zero_grad to step)."""
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), batch_size):
            idx = order[start : start + batch_size]
            began = time.perf_counter()
            optimizer.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            if step_seconds is not None:
                step_seconds.append(time.perf_counter() - began)
            if scheduler is not None:
                scheduler.step()
            losses.append(float(loss.detach()))
    return losses


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of ``x`` that ``model`` classifies as ``y``."""
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())
