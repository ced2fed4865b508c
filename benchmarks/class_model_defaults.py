"""Why ``boda.explain.class_model``'s defaults regularise: plain ascent against the defaults.

Gradient ascent on a class score (Simonyan et al. 2014) without regularisation climbs to
the class quickly but through pixels no image has: values far outside [0, 1] and
high-frequency noise.  L2 decay (Simonyan, Eq. 1), jitter and periodic blur (Yosinski et
al. 2015) trade a little of the class probability for a picture.  For each of the ten
CIFAR-10 classes of the shipped ResNet-20 (100 steps each), this prints the mean
probability reached (and the worst), the share of pixels outside [0, 1] once the
normalisation is undone, the mean total variation, and the share of spectral energy
above a quarter of the sampling frequency.

Run: ``.venv/bin/python benchmarks/class_model_defaults.py`` (about 2 minutes).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from boda.explain import class_model, model_logits
from boda.nn import load_model

CONFIGS = {
    "plain ascent (the old defaults)": dict(lr=0.5, l2=1e-3, jitter=0, blur_every=0),
    "class_model's defaults": {},
}


def picture_properties(image: torch.Tensor, mean: torch.Tensor, std: torch.Tensor):
    """Share of pixels outside [0, 1], total variation, high-frequency energy share."""
    pixels = image * std + mean
    outside = float(((pixels < 0) | (pixels > 1)).float().mean())
    p = pixels.clamp(0, 1)
    tv = float((p[..., 1:, :] - p[..., :-1, :]).abs().mean()
               + (p[..., :, 1:] - p[..., :, :-1]).abs().mean())
    energy = torch.fft.fft2(p - p.mean(dim=(2, 3), keepdim=True)).abs().pow(2)
    fy = torch.fft.fftfreq(p.shape[2]).abs().view(-1, 1)
    fx = torch.fft.fftfreq(p.shape[3]).abs().view(1, -1)
    high = torch.maximum(fy, fx) > 0.25
    return outside, tv, float(energy[..., high].sum() / energy.sum().clamp_min(1e-12))


def main() -> None:
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    loaded = load_model("resnet20-cifar10")
    mean = torch.tensor(loaded.mean).view(1, 3, 1, 1)
    std = torch.tensor(loaded.std).view(1, 3, 1, 1)
    print("| settings | probability, mean (worst) | pixels outside [0, 1] | total variation "
          "| energy above fs/4 |")
    print("|---|---:|---:|---:|---:|")
    for name, settings in CONFIGS.items():
        rows = []
        for target in range(10):
            result = class_model(loaded.model, target, steps=100, **settings)
            with torch.no_grad():
                prob = model_logits(loaded.model(result.image)).softmax(1)[0, target].item()
            rows.append((prob, *picture_properties(result.image, mean, std)))
        a = np.array(rows)
        print(f"| {name} | {a[:, 0].mean():.2f} ({a[:, 0].min():.2f}) | {a[:, 1].mean():.0%} "
              f"| {a[:, 2].mean():.3f} | {a[:, 3].mean():.1%} |")


if __name__ == "__main__":
    main()
