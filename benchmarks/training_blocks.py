"""Training blocks on CPU: NMS on 10k boxes and batched SimCLR-view augmentation.

Protocol
--------
NMS. 10 000 float32 boxes from 1 000 "objects" (centres uniform over a
1333x800 image, sides log-uniform in 16-256 px, aspect 1/2-2), each seen by 10
jittered proposals (centre +- 0.1 side, side x exp(N(0, 0.1))); scores uniform
in [0, 1); IoU threshold 0.5. Compared:

- ``boda.detect.nms`` (sweep over x-sorted boxes, blocks of ranks);
- the anchor: the classic greedy loop in numpy (Fast R-CNN's ``py_cpu_nms``:
  take the best box, drop what overlaps it, repeat);
- boda's previous implementation (full IoU matrix, then a Python loop over the
  rows; it holds N x N x 2 float32 temporaries, about 3 GB at 10k boxes), run in
  two repetitions only (``--previous-n`` gives it fewer boxes);
- ``boda.detect.batched_nms`` with 80 random classes, for information.

torchvision's CPU ``nms`` would be the natural anchor, but torchvision is not
importable here (no CPU wheel matching torch 2.13.0+cpu): the script says so
and tries it anyway.

Augmentation. The SimCLR view without blur (Chen et al. 2020, App. A):
random-resized crop (scale 0.08-1, aspect 3/4-4/3) to the input size,
horizontal flip p=0.5, colour jitter (0.8, 0.8, 0.8, 0.2) p=0.8, grayscale
p=0.2, with per-image random draws, on a random float32 batch of
64x3x224x224 (ImageNet size) and 256x3x32x32 (CIFAR size). Compared:

- the anchor: ``kornia.augmentation`` (RandomResizedCrop, RandomHorizontalFlip,
  ColorJitter, RandomGrayscale) on the batch;
- ``boda.augment.random_view`` (``p_blur=0``): per-image draws, batched work
  (one warp for all crops, one call per jitter step);
- boda's torch ops in a loop over ``(1, C, H, W)`` slices (per-image draws);
- boda's torch form, one draw for the whole batch (what one call on a
  ``(B, C, H, W)`` tensor does: all images get the same crop and jitter);
- a straightforward per-image numpy loop (boda's numpy form, ``(H, W, C)``).

Timing: every repetition runs every method once, in turn (interleaved), so
machine noise hits all of them alike; the table gives the median time, the
median of the per-repetition ratios to the anchor, and their min-max spread.
torch runs on one thread by default (``--threads``), like numpy: on a shared
2-core machine two torch threads were slower and far noisier than one.

Run: ``.venv/bin/python benchmarks/training_blocks.py`` (about two minutes on 2
cores; ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from boda import augment as A
from boda.detect import batched_nms, box_iou, nms

# ----------------------------------------------------------------- NMS


def clustered_boxes(n: int = 10_000, per_object: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    objects = n // per_object
    centre = rng.uniform([0, 0], [1333, 800], size=(objects, 2))
    side = np.exp(rng.uniform(np.log(16), np.log(256), size=objects))
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=objects))
    wh = np.stack([side / np.sqrt(aspect), side * np.sqrt(aspect)], 1)
    c = np.repeat(centre, per_object, 0) + rng.normal(0, 0.1, (n, 2)) * np.repeat(wh, per_object, 0)
    s = np.repeat(wh, per_object, 0) * np.exp(rng.normal(0, 0.1, (n, 2)))
    boxes = np.concatenate([c - s / 2, c + s / 2], 1).astype(np.float32)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    return torch.from_numpy(boxes), torch.from_numpy(scores)


def nms_numpy_loop(boxes: np.ndarray, scores: np.ndarray, thr: float) -> np.ndarray:
    """Fast R-CNN's py_cpu_nms, with the stable score order and the ``> thr`` rule."""
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
        h = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou.astype(np.float64) <= thr]
    return np.asarray(keep, dtype=np.int64)


def nms_previous(boxes: torch.Tensor, scores: torch.Tensor, thr: float) -> torch.Tensor:
    """boda's NMS before the sweep: dense IoU matrix and a loop over its rows."""
    order = torch.argsort(scores, descending=True, stable=True)
    iou = box_iou(boxes[order], boxes[order])
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > thr
    return order[torch.tensor(keep, dtype=torch.long)]


def torchvision_nms():
    try:
        from torchvision.ops import nms as tv_nms  # noqa: F401
    except Exception as err:  # noqa: BLE001 - any import failure means "not available"
        return None, f"{type(err).__name__}: {err}".splitlines()[0][:100]
    return tv_nms, ""


# ----------------------------------------------------------------- augmentation

JITTER = (0.8, 0.8, 0.8, 0.2)  # SimCLR, strength s = 1


def _view(x, size, rng):
    x, _ = A.random_resized_crop(x, size, scale=(0.08, 1.0), seed=rng)
    if rng.random() < 0.5:
        x, _ = A.hflip(x)
    if rng.random() < 0.8:
        x, _ = A.color_jitter(x, *JITTER, seed=rng)
    if rng.random() < 0.2:
        x = A.grayscale(x)
    return x


def boda_torch_per_image(batch, rng):
    size = tuple(batch.shape[-2:])
    return torch.cat([_view(batch[i : i + 1], size, rng) for i in range(len(batch))])


def boda_random_view(batch, rng):
    return A.random_view(batch, tuple(batch.shape[-2:]), jitter=JITTER, p_blur=0.0, seed=rng)


def boda_torch_one_draw(batch, rng):
    return _view(batch, tuple(batch.shape[-2:]), rng)


def numpy_per_image(images, rng):
    size = images[0].shape[:2]
    return [_view(im, size, rng) for im in images]


def kornia_pipeline(size):
    import kornia.augmentation as K

    return torch.nn.Sequential(
        K.RandomResizedCrop(size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)),
        K.RandomHorizontalFlip(p=0.5),
        K.ColorJitter(*JITTER, p=0.8),
        K.RandomGrayscale(p=0.2),
    )


def augment_methods(batch, images, rng) -> dict:
    kornia_aug = kornia_pipeline(tuple(batch.shape[-2:]))
    return {
        "kornia.augmentation (anchor)": lambda: kornia_aug(batch),
        "boda.augment.random_view (batched, per-image draws)": lambda: boda_random_view(
            batch, rng),
        "boda torch, loop over images": lambda: boda_torch_per_image(batch, rng),
        "boda torch, one draw per batch": lambda: boda_torch_one_draw(batch, rng),
        "numpy per-image loop (boda numpy form)": lambda: numpy_per_image(images, rng),
    }


# ----------------------------------------------------------------- timing


def interleaved(methods: dict, repeats: int, few: dict | None = None) -> dict[str, list[float]]:
    """Seconds per call of each method, every repetition running all of them in turn.

    ``few`` names methods too slow to repeat: they run (without warm-up) in the
    first ``few[name]`` repetitions only.
    """
    few = few or {}
    for name, fn in methods.items():  # warm-up
        if name not in few:
            fn()
    times: dict[str, list[float]] = {k: [] for k in methods}
    for rep in range(repeats):
        for name, fn in methods.items():
            if rep >= few.get(name, repeats):
                continue
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def ratio_cells(times, name, anchor):
    # speed-up vs the anchor in each repetition (zip stops at the shorter list)
    r = [a / b for a, b in zip(times[anchor], times[name], strict=False)]
    return f"{statistics.median(r):.2f}x ({min(r):.2f}-{max(r):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--previous-n", type=int, default=10_000,
                    help="boxes given to the previous (dense) NMS")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: fair to the one-core numpy loops, and stable "
                    "on a busy machine)")
    ap.add_argument("--quick", action="store_true", help="small sizes, 3 repeats")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    reps = 3 if args.quick else args.repeats
    n = 2000 if args.quick else 10_000
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}")

    # ---- NMS
    boxes, scores = clustered_boxes(n)
    b_np, s_np = boxes.numpy(), scores.numpy()
    classes = torch.from_numpy(np.random.default_rng(1).integers(0, 80, n))
    prev_n = min(args.previous_n, n)
    tv, why = torchvision_nms()
    keep = nms(boxes, scores, 0.5)
    same = np.array_equal(keep.numpy(), nms_numpy_loop(b_np, s_np, 0.5))
    same_prev = torch.equal(nms(boxes[:prev_n], scores[:prev_n], 0.5),
                            nms_previous(boxes[:prev_n], scores[:prev_n], 0.5))
    methods = {
        "numpy greedy loop (anchor)": lambda: nms_numpy_loop(b_np, s_np, 0.5),
        "boda.detect.nms": lambda: nms(boxes, scores, 0.5),
        f"boda previous (dense matrix), {prev_n} boxes": lambda: nms_previous(
            boxes[:prev_n], scores[:prev_n], 0.5),
        "boda.detect.batched_nms, 80 classes": lambda: batched_nms(boxes, scores, classes, 0.5),
    }
    if tv is not None:
        methods["torchvision.ops.nms"] = lambda: tv(boxes, scores, 0.5)
    prev_name = f"boda previous (dense matrix), {prev_n} boxes"
    times = interleaved(methods, reps, few={prev_name: 2})
    anchor = "numpy greedy loop (anchor)"
    print(f"\n### NMS, {n} clustered boxes, IoU 0.5, {len(keep)} kept "
          f"(median of {reps} interleaved runs)\n")
    print("| method | time (ms) | speed-up vs numpy loop (min-max) |")
    print("|---|---:|---:|")
    for name in methods:
        print(f"| {name} | {1000 * statistics.median(times[name]):.1f} | "
              f"{ratio_cells(times, name, anchor)} |")
    print(f"\nboda.detect.nms keeps the same indices as the numpy loop: {same}; "
          f"as the previous implementation ({prev_n} boxes): {same_prev}. "
          f"The previous implementation ran in the first 2 repetitions only.")
    if tv is None:
        print(f"torchvision.ops.nms: not importable on this machine ({why}).")

    # ---- augmentation
    configs = [(16, 64), (64, 32)] if args.quick else [(64, 224), (256, 32)]
    for batch_size, side in configs:
        rng_data = np.random.default_rng(0)
        batch = torch.from_numpy(rng_data.random((batch_size, 3, side, side), dtype=np.float32))
        images = [np.ascontiguousarray(im.permute(1, 2, 0).numpy()) for im in batch]
        torch.manual_seed(0)
        methods = augment_methods(batch, images, np.random.default_rng(0))
        with torch.no_grad():
            times = interleaved(methods, reps)
        anchor = "kornia.augmentation (anchor)"
        print(f"\n### SimCLR view (crop + flip + jitter + grayscale), batch "
              f"{batch_size}x3x{side}x{side} (median of {reps} interleaved runs)\n")
        print("| method | images/s | speed-up vs kornia (min-max) |")
        print("|---|---:|---:|")
        for name in methods:
            ips = batch_size / statistics.median(times[name])
            print(f"| {name} | {ips:.0f} | {ratio_cells(times, name, anchor)} |")


if __name__ == "__main__":
    main()
