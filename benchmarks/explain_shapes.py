"""Explanation quality on the synthetic shapes benchmark, and speed against torchcam.

Run from the repository root::

    .venv/bin/python benchmarks/explain_shapes.py            # 200 images
    BODA_EXPLAIN_N=500 .venv/bin/python benchmarks/explain_shapes.py

Table 1: the shipped ``shapes-cnn`` on ``make_shapes(N, seed=0)`` (never used
for training), explaining the true class.  Pointing game with a 2 px tolerance
(15 px at 224 px, scaled to 32 px); deletion/insertion AUC (Petsiuk et al.
2018); Average Drop / Increase (Chattopadhay et al. 2018).  The anchor is a
random map (uniform noise, seeded): ratios are method / random.

Table 2: seconds per batch of 16 on resnet20-cifar10, boda against torchcam
(same batch, same layer, measured in the same run; ratio < 1: boda faster).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from boda.explain import make_explainer, make_shapes, normalize_maps
from boda.explain.metrics import (
    average_drop_increase,
    deletion_curve,
    insertion_curve,
    pointing_game,
)
from boda.nn import image_to_tensor, load_model

METHODS = [
    "cam", "gradcam", "gradcam++", "scorecam", "saliency", "smoothgrad",
    "guided", "guided-gradcam", "occlusion",
]  # fmt: skip


def _baseline(name: str, n: int) -> torch.Tensor:
    if name == "random":
        return torch.rand(n, 32, 32, generator=torch.Generator().manual_seed(0))
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    g = torch.exp(-((yy - 15.5) ** 2 + (xx - 15.5) ** 2) / (2 * 8.0**2))
    return g.expand(n, 32, 32).clone()


def quality(n: int) -> None:
    lm = load_model("shapes-cnn")
    ds = make_shapes(n, seed=0)
    x = image_to_tensor(ds.images, mean=lm.mean, std=lm.std)
    y = torch.from_numpy(ds.labels)
    with torch.no_grad():
        acc = float((lm.model(x).argmax(1) == y).float().mean())
    print(f"shapes-cnn accuracy on {n} held-out images: {acc:.3f}\n")
    rows = []
    for name in ["random", "center", *METHODS]:
        t0 = time.perf_counter()
        if name in ("random", "center"):
            maps = _baseline(name, n)
        else:
            with make_explainer(name, lm.model, lm.target_layer) as ex:
                maps = torch.cat([ex(x[s : s + 50], y[s : s + 50]) for s in range(0, n, 50)])
        ms = 1000 * (time.perf_counter() - t0) / n
        maps = normalize_maps(maps)
        pg = pointing_game(maps, ds.masks, tolerance=2)["accuracy"]
        dele = float(deletion_curve(lm.model, x, maps, y, steps=16).auc.mean())
        ins = float(insertion_curve(lm.model, x, maps, y, steps=16).auc.mean())
        ad = average_drop_increase(lm.model, x, maps, y)
        rows.append((name, pg, dele, ins, ad["average_drop"], ad["average_increase"], ms))
    anchor = rows[0]
    print("| method | pointing ↑ | ×random | deletion AUC ↓ | ×random | insertion AUC ↑ | ×random "
          "| avg drop % ↓ | increase % ↑ | ms / image |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r[0]} | {r[1]:.3f} | {r[1] / anchor[1]:.2f} | {r[2]:.3f} | {r[2] / anchor[2]:.2f} "
            f"| {r[3]:.3f} | {r[3] / anchor[3]:.2f} | {r[4]:.1f} | {r[5]:.1f} | {r[6]:.2f} |"
        )


def speed(repeats: int = 5) -> None:
    try:
        import torchcam.methods as tc
    except ImportError:
        print("\n(torchcam not installed: speed table skipped)")
        return
    lm = load_model("resnet20-cifar10")
    model = lm.model
    x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    cls = list(range(10)) + list(range(6))

    def ours(name: str) -> None:
        with make_explainer(name, model, "layer3") as ex:
            ex(x, cls, upsample=False)

    def theirs(name: str) -> None:
        if name == "cam":
            with tc.CAM(model, "layer3", "linear") as ex:
                with torch.no_grad():
                    model(x)
                ex(class_idx=cls)
        elif name == "scorecam":
            with tc.ScoreCAM(model, "layer3", batch_size=64) as ex:
                with torch.no_grad():
                    model(x)
                ex(class_idx=cls)
        else:
            cls_ = {"gradcam": tc.GradCAM, "gradcam++": tc.GradCAMpp}[name]
            with cls_(model, "layer3") as ex:
                ex(class_idx=cls, scores=model(x))
            model.zero_grad(set_to_none=True)

    def best(fn, name) -> float:
        fn(name)  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn(name)
            times.append(time.perf_counter() - t)
        return min(times)

    print("\n| method (resnet20, batch 16) | boda s | torchcam s | boda / torchcam |")
    print("|---|---|---|---|")
    for name in ["cam", "gradcam", "gradcam++", "scorecam"]:
        a, b = best(ours, name), best(theirs, name)
        print(f"| {name} | {a:.4f} | {b:.4f} | {a / b:.2f} |")


if __name__ == "__main__":
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    torch.set_num_threads(int(os.environ.get("BODA_THREADS", "1")))
    quality(int(os.environ.get("BODA_EXPLAIN_N", "200")))
    speed()
