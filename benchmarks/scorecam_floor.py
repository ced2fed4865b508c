"""How fast can Score-CAM's masked forwards on ResNet-56 (32 px) be, in float32, on one core?

Score-CAM scores one masked copy of the input per channel of the target layer:
64 forwards of the CIFAR ResNet-56 for ``layer3``.  Their arithmetic is fixed by
the network (multiply-accumulates counted here from the convolution and linear
shapes), so the time of the fastest float32 path this machine offers is a floor
for any exact Score-CAM.  This script counts the MACs, times the forwards on
one thread through boda's inference copies (BatchNorm folded, channels-last;
the frozen oneDNN-fused TorchScript copy; the eager copy with oneDNN post-ops)
and prints the sustained GFLOP/s.

Compare the floor with pytorch-grad-cam's Score-CAM time from
``benchmarks/explain_parity.py``: a 2x speed-up needs the whole call in half
that time, forwards included.

Run: ``.venv/bin/python benchmarks/scorecam_floor.py``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from boda.nn import inference_copy, load_model

MASKS = 64  # channels of ResNet-56's layer3: one masked forward each
REPEATS = 15


def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one forward of ``x`` (convolutions and linear layers)."""
    total = 0

    def conv_hook(module, _inputs, output):
        nonlocal total
        k = module.weight[0].numel()  # in_channels / groups * kh * kw
        total += output.numel() * k

    def linear_hook(module, _inputs, output):
        nonlocal total
        total += output.numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    with torch.inference_mode():
        model(x)
    for h in handles:
        h.remove()
    return total


def time_forwards(fn, x: torch.Tensor, batch: int) -> float:
    """Median seconds to run all ``MASKS`` inputs through ``fn`` in chunks of ``batch``."""
    times = []
    with torch.inference_mode():
        for i in range(REPEATS + 3):
            t0 = time.perf_counter()
            for s in range(0, MASKS, batch):
                fn(x[s : s + batch])
            if i >= 3:  # the first calls compile and allocate
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    torch.set_num_threads(1)
    model = load_model("resnet56-cifar10").model.eval()
    x = torch.randn(MASKS, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    macs = count_macs(model, x[:1])
    gflop = 2 * macs * MASKS / 1e9
    print(f"ResNet-56, 32 px: {macs / 1e6:.1f} M MACs per image; {MASKS} masked forwards = "
          f"{gflop:.2f} GFLOP\n")
    print("| path | chunk | median ms | GFLOP/s (one core) |")
    print("|---|---:|---:|---:|")
    rows = [("eager model", model)]
    for freeze in (False, True):
        copy = inference_copy(model, x[:16], freeze=freeze)
        rows.append(("folded + fused (TorchScript, oneDNN)" if freeze else "folded", copy))
    rows.append(("folded + pointwise (eager, oneDNN post-ops)",
                 inference_copy(model, x[:16], freeze=False, pointwise=True)))
    for name, fn in rows:
        for batch in (16, 32, 64):
            sec = time_forwards(fn, x, batch)
            print(f"| {name} | {batch} | {1000 * sec:.1f} | {gflop / sec:.0f} |", flush=True)


if __name__ == "__main__":
    main()
