"""Training the shipped shapes CNN, reproducibly, on the CPU."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from boda.explain._synthetic import make_shapes
from boda.nn import cpu_threads, image_to_tensor
from boda.nn._shapes_cnn import ShapesCNN

__all__ = ["SHAPES_MEAN", "SHAPES_STD", "train_shapes_cnn", "shapes_tensors"]

#: Input normalisation of the shapes CNN (on [0, 1] RGB values).
SHAPES_MEAN: tuple[float, ...] = (0.5, 0.5, 0.5)
SHAPES_STD: tuple[float, ...] = (0.25, 0.25, 0.25)


def shapes_tensors(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)``: normalised inputs ``(n, 3, 32, 32)`` and labels of :func:`make_shapes`."""
    ds = make_shapes(n, seed=seed)
    x = image_to_tensor(ds.images, mean=SHAPES_MEAN, std=SHAPES_STD)
    return x, torch.from_numpy(ds.labels)


def train_shapes_cnn(
    *,
    epochs: int = 100,
    per_epoch: int = 2000,
    batch_size: int = 50,
    lr: float = 2e-3,
    seed: int = 0,
    threads: int | None = 1,
) -> ShapesCNN:
    """Train :class:`boda.nn.ShapesCNN` on fresh synthetic images every epoch.

    Adam with a cosine learning-rate schedule; epoch ``e`` uses
    ``make_shapes(per_epoch, seed=1000 * seed + e + 1)`` (seed 0 of
    :func:`make_shapes` is never used for training, keep it for evaluation).
    The shipped ``shapes-cnn`` weights are ``train_shapes_cnn()`` (defaults).

    Returns
    -------
    ShapesCNN
        In eval mode.
    """
    # fork_rng: the seeding must not reset the caller's global random stream.
    with cpu_threads(threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = ShapesCNN()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        total = int(epochs) * (int(per_epoch) // int(batch_size))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
        gen = torch.Generator().manual_seed(int(seed))
        model.train()
        for e in range(int(epochs)):
            x, y = shapes_tensors(int(per_epoch), 1000 * int(seed) + e + 1)
            order = torch.randperm(x.shape[0], generator=gen)
            for s in range(0, x.shape[0] - int(batch_size) + 1, int(batch_size)):
                idx = order[s : s + int(batch_size)]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    return model.eval()
