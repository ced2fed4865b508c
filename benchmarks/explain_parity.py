"""Grad-CAM / Grad-CAM++ / Score-CAM: parity, time and peak memory against
pytorch-grad-cam and torchcam.

Run from the repository root::

    .venv/bin/python benchmarks/explain_parity.py

boda and torchcam run in ``.venv``; pytorch-grad-cam (PyPI ``grad-cam``) runs in
a separate venv, ``.cam-venv`` (override with ``BODA_CAM_PYTHON``), because it
declares a torchvision dependency.  Set it up with::

    python3 -m venv .cam-venv
    .cam-venv/bin/pip install torch==2.13.0          # the CPU wheel
    .cam-venv/bin/pip install --no-deps grad-cam ttach
    .cam-venv/bin/pip install numpy opencv-python-headless tqdm matplotlib scikit-learn scipy

plus a torchvision *import stub* in that venv's site-packages only (grad-cam
imports torchvision at module level for pre-processing helpers that the CAM
classes never call; the stub raises if used) -- see docs/explain.md.

Every library runs in its own fresh subprocess with
``torch.set_num_threads(BODA_THREADS)`` (default 1: on a shared machine two
threads per process stall unpredictably) on the same saved input tensor.
Timing is interleaved: ``BODA_ROUNDS`` rounds (default 3), each starting one
process per library in a rotating order; a process makes one warm-up call, then
``BODA_REPEATS`` timed calls (default 5; 1 for Score-CAM at 224 px).  The table
gives the median over all timed calls and the spread of the per-round medians.
Peak memory is the subprocess's peak resident set size (``VmHWM``, reset
through ``/proc/self/clear_refs`` once the model and input are loaded, so
imports do not hide it), reported in full and as the increase over the RSS
just before the first call (median over rounds).

Each library runs at its documented defaults.  Score-CAM chunk sizes: boda 16
(8 above 128 x 128 px), pytorch-grad-cam 16 (its ``batch_size`` attribute default),
torchcam 32;
``BODA_SCORECAM_BATCH`` forces one value for all three.  ``BODA_BASELINE_SRC``
(a ``src`` folder of an older boda, e.g. from ``git archive``) adds that
version as a fourth library, ``boda-before``, run as the earlier benchmark ran
it (Score-CAM chunks of 16).  ``BODA_PARTS`` (``parity`` / ``timing`` /
``precision``: boda's bfloat16 maps against its float32 ones, in-process),
``BODA_MODELS`` (``resnet56`` / ``resnet18``), ``BODA_METHODS`` (timed
methods: ``gradcam`` / ``scorecam``) and ``BODA_PARITY_METHODS`` (the boda
methods of the parity rows, e.g. ``scorecam-torchcam``) select parts of the run.

boda's Score-CAM rows: ``boda`` builds its inference copy (default
``inference_copy="auto"``: BatchNorm folded and convolutions fused with their
ReLU / residual sum in eager oneDNN calls at 32 px; folded, frozen by
TorchScript and run with oneDNN Graph fusion at 224 px) in the warm-up call
(``inference_min_forwards = 1``; by default it is built once 8 (pointwise) or 32
(fused) batched forwards ran on an unchanged model: the 2nd call at 32 px, the
1st at 224 px), so its timed calls are the steady state of a long run;
``boda-eager`` turns the copy off (what the first call costs at 32 px);
``boda-fold`` / ``boda-pointwise`` / ``boda-fused`` force one kind of copy; ``boda-bf16`` is
``precision="bfloat16"`` with the default copy.  The copy's build time
is printed under the table.  The parity maps come from ``boda`` (with the copy).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAM_PYTHON = os.environ.get("BODA_CAM_PYTHON", str(ROOT / ".cam-venv" / "bin" / "python"))
THREADS = int(os.environ.get("BODA_THREADS", "1"))
PARTS = os.environ.get("BODA_PARTS", "parity,timing")  # also "precision" (bf16 vs f32)
MODELS = os.environ.get("BODA_MODELS", "resnet56,resnet18")  # one model: "resnet56"
METHODS = os.environ.get("BODA_METHODS", "gradcam,scorecam")  # timed methods
PARITY_METHODS = os.environ.get("BODA_PARITY_METHODS", "")  # boda methods of the parity rows
REPEATS = int(os.environ.get("BODA_REPEATS", "5"))
ROUNDS = int(os.environ.get("BODA_ROUNDS", "3"))
SC_BATCH = int(os.environ.get("BODA_SCORECAM_BATCH", "0"))  # 0: each library's default
BASELINE_SRC = os.environ.get("BODA_BASELINE_SRC", "")
KODAK = ROOT / "tests" / "data" / "kodak"
PARITY_224 = int(os.environ.get("BODA_PARITY_224", "1"))  # Score-CAM at 224 px is slow
LAYER = {"resnet56": "layer3", "resnet18": "layer4"}


_SRC = [ROOT / "src"]  # the boda being measured; a worker for "boda-before" swaps it


def _boda_path() -> None:
    if str(_SRC[0]) not in sys.path:
        sys.path.insert(0, str(_SRC[0]))


# --------------------------------------------------------------------------- models
def build_model(name: str):
    """The two benchmark models: shipped CIFAR ResNet-56, seeded ResNet-18-like net."""
    import torch
    from torch import nn

    if name == "resnet56":
        _boda_path()
        from boda.nn import load_model

        return load_model("resnet56-cifar10").model.eval()

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu(y + (x if self.down is None else self.down(x)))

    def stage(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(Block(cin, cout, stride), Block(cout, cout, 1))

    class ResNet18(nn.Module):  # He et al. 2016, Table 1, 18-layer column
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = stage(64, 64, 1)
            self.layer2 = stage(64, 128, 2)
            self.layer3 = stage(128, 256, 2)
            self.layer4 = stage(256, 512, 2)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512, 1000)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.pool(x), 1))

    torch.manual_seed(0)
    model = ResNet18()
    # Random but non-degenerate BN statistics, so the random net is not all-flat.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


# --------------------------------------------------------------------------- worker
def _make_explainer(lib: str, method: str, model, layer: str, target: int):
    """Return ``f(x) -> (B, H, W) numpy maps`` for one library and method."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    if lib in ("boda", "boda-before", "boda-eager", "boda-fold", "boda-fused",
               "boda-pointwise", "boda-bf16"):
        _boda_path()
        from boda.explain import GradCAM, GradCAMPlusPlus, ScoreCAM

        if lib == "boda-before":  # the earlier benchmark's settings
            kw = {"batch_size": SC_BATCH or 16} if method == "scorecam" else {}
            exp = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus,
                   "scorecam": ScoreCAM}[method](model, layer, **kw)
            return lambda x: exp(x, target=target).numpy()
        sc_kw = {"batch_size": SC_BATCH} if SC_BATCH else {}
        if method == "scorecam-torchcam-def":
            # Diagnostic, no boda code: torchcam 0.5's Score-CAM definition written out
            # (masks min-max scaled *before* upsampling, weights softmax over channels of
            # logit_c(X o M_k) - logit_c(X)), to show where the two libraries part.
            def tc_def(x):
                acts = {}
                h = model.get_submodule(layer).register_forward_hook(
                    lambda m, i, o: acts.setdefault("a", o.detach()))
                with torch.no_grad():
                    base = model(x)[0, target]
                    h.remove()
                    a = acts["a"][0]
                    n = a - a.amin(dim=(1, 2), keepdim=True)
                    n = n / (n.amax(dim=(1, 2), keepdim=True) + 1e-8)
                    masks = F.interpolate(n[:, None], size=x.shape[-2:], mode="bilinear",
                                          align_corners=False)
                    s = torch.cat([model(x * masks[i : i + 32])[:, target]
                                   for i in range(0, masks.shape[0], 32)])
                    m = torch.relu(torch.einsum("c,chw->hw", torch.softmax(s - base, 0), a))
                m = F.interpolate(m[None, None], size=x.shape[-2:], mode="bilinear",
                                  align_corners=False)[0]
                return ((m - m.min()) / (m.max() - m.min())).numpy()

            return tc_def
        if lib == "boda-bf16":
            sc_kw["precision"] = "bfloat16"
        exp = {
            "gradcam": lambda: GradCAM(model, layer),
            "gradcam++": lambda: GradCAMPlusPlus(model, layer),
            "gradcam++-eps": lambda: GradCAMPlusPlus(model, layer, eps=1e-6),
            "gradcam++-torchcam": lambda: GradCAMPlusPlus(model, layer, alpha="grad-squared"),
            "scorecam": lambda: ScoreCAM(model, layer, **sc_kw),
            "scorecam-aligned": lambda: ScoreCAM(model, layer, align_corners=True, **sc_kw),
            # each library's own convention, as boda options
            "scorecam-pgc-logit": lambda: ScoreCAM(
                model, layer, softmax=False, weighting="channel-softmax", align_corners=True,
                **sc_kw),
            "scorecam-torchcam": lambda: ScoreCAM(
                model, layer, softmax=False, weighting="channel-softmax",
                mask_scaling="activation", **sc_kw),
        }[method]()
        # The inference copy is built once 8 (32 when fused) batched forwards ran on an
        # unchanged model (the 2nd Score-CAM call at 32 px); build it in the first call, so
        # that the timed calls (and the parity maps) show the steady state of a long run.
        exp.inference_min_forwards = 1
        if lib == "boda-eager":
            exp.inference_copy = False  # what a call costs before the copy exists
        if lib in ("boda-fold", "boda-fused", "boda-pointwise"):  # "auto": see docs/explain.md
            exp.inference_copy = lib[5:]

        def run_boda(x):
            return exp(x, target=target).numpy()

        run_boda.explainer = exp
        return run_boda

    if lib == "torchcam":
        from torchcam import methods

        cls = {"gradcam": methods.GradCAM, "gradcam++": methods.GradCAMpp,
               "scorecam": methods.ScoreCAM}[method]
        kw = {"batch_size": SC_BATCH} if method == "scorecam" and SC_BATCH else {}
        size = 32 if layer == "layer3" else 224
        exp = cls(model, layer, input_shape=(3, size, size), **kw)

        def run(x):
            if method == "scorecam":
                with torch.no_grad():
                    out = model(x)
            else:
                out = model(x)
            m = exp([target] * x.shape[0], out)[0]
            m = F.interpolate(m[:, None], size=x.shape[-2:], mode="bilinear",
                              align_corners=False)[:, 0]
            lo = m.amin(dim=(1, 2), keepdim=True)
            return ((m - lo) / (m.amax(dim=(1, 2), keepdim=True) - lo + 1e-12)).detach().numpy()

        return run

    # pytorch-grad-cam
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cls = {"gradcam": pgc.GradCAM, "gradcam++": pgc.GradCAMPlusPlus,
           "scorecam": pgc.ScoreCAM, "scorecam-logit": pgc.ScoreCAM}[method]
    exp = cls(model=model, target_layers=[dict(model.named_modules())[layer]])
    if method.startswith("scorecam"):
        if SC_BATCH:
            exp.batch_size = SC_BATCH  # else the library's default, 16
        import tqdm  # silence its per-batch progress bars (they cost time, not results)

        tqdm.tqdm = lambda it, *a, **k: it
    if method == "scorecam":
        # pytorch-grad-cam weights channels by softmax_k(score_k); with the score
        # log p_c the weights are p_c / sum_k p_c: Wang et al.'s probabilities up to
        # a factor, which the min-max normalisation removes.
        class LogProb:
            def __call__(self, out):
                return torch.log_softmax(out, dim=-1)[..., target]

        tg = LogProb()
    else:  # grad-cams, and "scorecam-logit" = the library's default logit target
        tg = ClassifierOutputTarget(target)
    return lambda x: np.asarray(exp(input_tensor=x, targets=[tg] * x.shape[0]))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def worker(spec: dict) -> None:
    import numpy as np
    import torch

    if spec["lib"] == "boda-before":
        _SRC[0] = Path(BASELINE_SRC)
    torch.set_num_threads(THREADS)
    model = build_model(spec["model"])
    x = torch.from_numpy(np.load(spec["input"]))
    f = _make_explainer(spec["lib"], spec["method"], model, LAYER[spec["model"]],
                        spec["target"])
    if spec["mode"] == "maps":
        np.save(spec["output"], f(x).astype(np.float32))
        return
    # Reset the kernel's peak-RSS mark (Linux >= 4.0) so that importing torch and
    # loading the model do not hide the explainer's own peak.
    Path("/proc/self/clear_refs").write_text("5")
    base_kb = _status_kb("VmRSS")
    f(x)  # warm-up (its peak counts too)
    times = []
    for _ in range(spec["repeats"]):
        t = time.perf_counter()
        f(x)
        times.append(time.perf_counter() - t)
    peak_kb = _status_kb("VmHWM")
    cache = getattr(getattr(f, "explainer", None), "_inference", None)
    build = None if cache is None else cache.build_seconds
    print(json.dumps({"times": times, "load": os.getloadavg()[0], "peak_mb": peak_kb / 1024,
                      "extra_mb": (peak_kb - base_kb) / 1024, "build_s": build}))


def _run(lib: str, spec: dict) -> str:
    python = CAM_PYTHON if lib == "pytorch-grad-cam" else sys.executable
    spec = {**spec, "lib": lib}
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS),
           "TQDM_DISABLE": "1"}
    res = subprocess.run([python, __file__, "--worker", json.dumps(spec)], capture_output=True,
                         text=True, env=env, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{lib} {spec['method']} {spec['model']} failed:\n{res.stderr[-3000:]}")
    return res.stdout


# --------------------------------------------------------------------------- driver
def _inputs(tmp: Path) -> dict:
    """Three Kodak images per model, normalised the way the model expects."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT / "src"))
    from boda.io import read_image
    from boda.nn import IMAGENET_MEAN, IMAGENET_STD, image_to_tensor

    out = {}
    names = ["kodim20.png", "kodim23.png", "kodim03.png"]
    paths = [KODAK / n for n in names if (KODAK / n).exists()] or sorted(KODAK.glob("*.png"))[:3]
    for model, size in (("resnet56", 32), ("resnet18", 224)):
        if model not in MODELS:
            continue
        x = torch.cat([image_to_tensor(read_image(p), size=(size, size), mean=IMAGENET_MEAN,
                                       std=IMAGENET_STD) for p in paths])
        torch.set_num_threads(THREADS)
        with torch.no_grad():
            targets = build_model(model)(x).argmax(1).tolist()  # each image's predicted class
        files = []
        for i in range(x.shape[0] if model == "resnet56" else PARITY_224):
            p = tmp / f"{model}_{i}.npy"
            np.save(p, x[i : i + 1].numpy())
            files.append(str(p))
        out[model] = (files, targets)
    return out


def _corr(a, b) -> float:
    import numpy as np

    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(np.corrcoef(a, b)[0, 1])


def main() -> None:
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    libs = ["pytorch-grad-cam", "torchcam"]
    try:
        subprocess.run([CAM_PYTHON, "-c", "import pytorch_grad_cam"], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"pytorch-grad-cam not importable with {CAM_PYTHON}: {exc}; torchcam only")
        libs = ["torchcam"]
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        inputs = _inputs(tmp)

        if "parity" in PARTS:
            _parity(inputs, libs, tmp)
        if "timing" in PARTS:
            _timing(inputs, libs)
        if "precision" in PARTS:
            _precision(inputs)


#: Parity rows: (label, boda method, {library: its method}).
PARITY_ROWS = [
    ("Grad-CAM", "gradcam", {"pytorch-grad-cam": "gradcam", "torchcam": "gradcam"}),
    ("Grad-CAM++ (Eq. 19)", "gradcam++",
     {"pytorch-grad-cam": "gradcam++", "torchcam": "gradcam++"}),
    ("Grad-CAM++, boda `eps=1e-6`", "gradcam++-eps", {"pytorch-grad-cam": "gradcam++"}),
    ("Grad-CAM++, boda `alpha=\"grad-squared\"` (torchcam's effective weights)",
     "gradcam++-torchcam", {"torchcam": "gradcam++"}),
    ("Score-CAM (default, `align_corners=False`)", "scorecam",
     {"pytorch-grad-cam": "scorecam", "torchcam": "scorecam"}),
    ("Score-CAM, boda `align_corners=True`", "scorecam-aligned",
     {"pytorch-grad-cam": "scorecam"}),
    ("Score-CAM, pytorch-grad-cam's default logit target", "scorecam",
     {"pytorch-grad-cam": "scorecam-logit"}),
    ("Score-CAM, boda `softmax=False, weighting=\"channel-softmax\", align_corners=True`",
     "scorecam-pgc-logit", {"pytorch-grad-cam": "scorecam-logit"}),
    ("Score-CAM, boda `softmax=False, weighting=\"channel-softmax\", "
     "mask_scaling=\"activation\"`", "scorecam-torchcam", {"torchcam": "scorecam"}),
    ("Score-CAM, torchcam's definition re-computed in the script (diagnostic)",
     "scorecam-torchcam-def", {"torchcam": "scorecam"}),
]


def _precision(inputs: dict) -> None:
    """boda's ``precision="bfloat16"`` against its float32 maps, in this process."""
    import numpy as np
    import torch

    _boda_path()
    from boda.explain import Occlusion, ScoreCAM

    torch.set_num_threads(THREADS)
    print("\n## bfloat16 against float32 (Pearson r per image, max |difference| of the "
          "[0, 1] maps)\n")
    print("| model | method | path | r per image | max abs. difference |")
    print("|---|---|---|---|---|")
    for model_name, (files, targets) in inputs.items():
        model = build_model(model_name)
        layer = LAYER[model_name]
        methods = {"Score-CAM": lambda p, m=model, la=layer: ScoreCAM(m, la, precision=p)}
        if model_name == "resnet56":
            methods["occlusion (8, 4)"] = lambda p, m=model: Occlusion(
                m, window=8, stride=4, precision=p)
        for label, make in methods.items():
            for path, least in (("model under autocast", None), ("inference copy", 1)):
                rs, diffs = [], []
                for f, t in zip(files, targets[: len(files)], strict=True):
                    x = torch.from_numpy(np.load(f))
                    maps = []
                    for p in ("float32", "bfloat16"):
                        exp = make(p)
                        if least is not None:
                            exp.inference_min_forwards = least
                        else:
                            exp.inference_copy = False
                        maps.append(exp(x, target=t).numpy())
                    rs.append(_corr(maps[0], maps[1]))
                    diffs.append(float(np.abs(maps[0] - maps[1]).max()))
                print(f"| {model_name} | {label} | {path} | "
                      + ", ".join(f"{r:.5f}" for r in rs) + f" | {max(diffs):.4f} |", flush=True)


def _parity(inputs: dict, libs: list[str], tmp: Path) -> None:
    import numpy as np

    n = {m: len(v[0]) for m, v in inputs.items()}
    print(f"## Parity (Pearson correlation of the full-size maps, min over the Kodak images: "
          f"{n.get('resnet56', 0)} at 32 px, {n.get('resnet18', 0)} at 224 px)\n")
    print("| model | method | vs pytorch-grad-cam | vs torchcam |")
    print("|---|---|---|---|")
    for model, (files, targets) in inputs.items():
        for label, bm, refs in PARITY_ROWS:
            if PARITY_METHODS and bm not in PARITY_METHODS.split(","):
                continue
            cells = []
            for lib in ("pytorch-grad-cam", "torchcam"):
                if lib not in refs or lib not in libs:
                    cells.append("–" if lib not in refs else "n/a")
                    continue
                rs = []
                for i, f in enumerate(files):
                    spec = {"model": model, "input": f, "target": targets[i], "mode": "maps"}
                    ref = tmp / f"{lib}_{refs[lib]}_{model}_{i}.npy"
                    if not ref.exists():
                        _run(lib, {**spec, "method": refs[lib], "output": str(ref)})
                    mine = tmp / f"boda_{bm}_{model}_{i}.npy"
                    if not mine.exists():
                        _run("boda", {**spec, "method": bm, "output": str(mine)})
                    rs.append(_corr(np.load(mine), np.load(ref)))
                cells.append(f"{min(rs):.5f}")
            print(f"| {model} | {label} | " + " | ".join(cells) + " |", flush=True)


def _timing(inputs: dict, libs: list[str]) -> None:
    import numpy as np

    boda_libs = ["boda", "boda-eager", "boda-fold", "boda-pointwise", "boda-fused", "boda-bf16"]
    before = ["boda-before"] if BASELINE_SRC else []
    batch = f"{SC_BATCH} in all" if SC_BATCH else "each library's default"
    print(f"\n## Time and peak memory per image ({THREADS} thread(s), Score-CAM chunks: "
          f"{batch}; {ROUNDS} interleaved rounds)\n")
    print("| model | method | library | median ms | round medians ms (min–max) | calls "
          "| peak RSS MB | peak − loaded MB | time ÷ boda | extra memory ÷ boda | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    builds = []
    references: dict[tuple[str, str], float | None] = {}  # pytorch-grad-cam's median
    for model, (files, targets) in inputs.items():
        for method in [m for m in ("gradcam", "scorecam") if m in METHODS.split(",")]:
            # The inference copy and bfloat16 only concern Score-CAM's masked forwards.
            all_libs = [*(boda_libs if method == "scorecam" else ["boda"]), *libs, *before]
            reps = REPEATS if (model, method) != ("resnet18", "scorecam") else 1
            spec = {"model": model, "input": files[0], "target": targets[0], "mode": "time",
                    "method": method, "repeats": reps}
            runs: dict[str, list[dict]] = {lib: [] for lib in all_libs}
            for r in range(ROUNDS):
                order = all_libs[r % len(all_libs):] + all_libs[: r % len(all_libs)]
                for lib in order:
                    runs[lib].append(json.loads(_run(lib, spec)))
            med = {lib: statistics.median(t for run in rs for t in run["times"])
                   for lib, rs in runs.items()}
            extra = {lib: statistics.median(run["extra_mb"] for run in rs)
                     for lib, rs in runs.items()}
            references[model, method] = med.get("pytorch-grad-cam")
            for lib, rs in runs.items():
                rounds = [1000 * statistics.median(run["times"]) for run in rs]
                print(f"| {model} | {method} | {lib} | {1000 * med[lib]:.1f} | "
                      f"{min(rounds):.1f}–{max(rounds):.1f} | {sum(len(x['times']) for x in rs)} | "
                      f"{statistics.median(x['peak_mb'] for x in rs):.0f} | {extra[lib]:.0f} | "
                      f"{med[lib] / med['boda']:.2f} | "
                      f"{extra[lib] / max(extra['boda'], 1e-9):.2f} | "
                      f"{float(np.mean([x['load'] for x in rs])):.1f} |", flush=True)
                b = [x["build_s"] for x in rs if x.get("build_s") is not None]
                if b:
                    builds.append(f"{model} {method} {lib}: {statistics.median(b):.2f} s")
    if builds:
        print("\nInference-copy build time (in the warm-up call; median over rounds): "
              + "; ".join(builds))
    for (model, method), reference in references.items():
        if method == "scorecam" and reference is not None:
            _print_floor(model, inputs[model][0][0], reference)


def _matmul_rate() -> float:
    """This machine's float32 matrix-multiply rate (FLOP/s) at ``BODA_THREADS`` threads:
    the best of 10 products of two 2048 x 2048 matrices, after 3 warm-up ones."""
    import torch

    torch.set_num_threads(THREADS)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(10):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2.0 * 2048**3 / best


def _print_floor(model_name: str, input_file: str, reference_s: float) -> None:
    """The least time Score-CAM's masked forwards of one image can take in float32 here.

    Score-CAM must run one forward per non-constant channel of the target layer (each
    masked input is different, and the network is not linear in it).  Their
    convolutions' arithmetic, done at the rate of a large float32 matrix product (the
    best case of oneDNN's kernels; 3x3 convolutions of 16-64 channels reach less), gives
    a floor no implementation of Eq. 5-6 in float32 goes under on this machine; the
    target "2x faster than pytorch-grad-cam" is only reachable where pytorch-grad-cam
    takes more than twice it.
    """
    import numpy as np
    import torch
    from scorecam_floor import count_macs  # this folder's script, on sys.path

    model = build_model(model_name)
    x = torch.from_numpy(np.load(input_file))
    captured = {}
    layer = dict(model.named_modules())[LAYER[model_name]]
    hook = layer.register_forward_hook(lambda m, i, o: captured.__setitem__("a", o))
    try:
        flops = 2.0 * count_macs(model, x)  # the convolutions' and linear layers'
    finally:
        hook.remove()
    acts = captured["a"][0]
    forwards = int((acts.amax(dim=(1, 2)) > acts.amin(dim=(1, 2))).sum())
    rate = _matmul_rate()
    floor_s = forwards * flops / rate
    print(f"\nCompute floor, {model_name} Score-CAM (float32, {THREADS} thread(s)): "
          f"{forwards} masked forwards x {flops / 1e9:.3f} GFLOP = "
          f"{forwards * flops / 1e9:.1f} GFLOP; at this machine's 2048x2048 matrix-product "
          f"rate ({rate / 1e9:.0f} GFLOP/s) that is {1000 * floor_s:.1f} ms, against "
          f"{1000 * reference_s / 2:.1f} ms for 2x pytorch-grad-cam's median "
          f"({1000 * reference_s:.1f} ms): the 2x target "
          + ("is reachable only above" if reference_s / 2 > floor_s else "is below")
          + " the floor on this machine.", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(json.loads(sys.argv[2]))
    else:
        main()
