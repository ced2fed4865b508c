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

Every (library, method, model) runs in its own fresh subprocess with
``torch.set_num_threads(BODA_THREADS)`` (default 2) on the same saved input
tensor: one warm-up call, then the median of ``BODA_REPEATS`` calls (default 5;
3 for Score-CAM at 224 px).  Peak memory is the subprocess's peak resident set
size (``VmHWM``, reset through ``/proc/self/clear_refs`` once the model and input
are loaded, so imports do not hide it), reported in full and as the increase
over the RSS just before the first call.
Score-CAM uses the same batch of masked inputs in all three libraries
(``BODA_SCORECAM_BATCH``, default 16 = pytorch-grad-cam's default).
"""

from __future__ import annotations

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
THREADS = int(os.environ.get("BODA_THREADS", "2"))
PARTS = os.environ.get("BODA_PARTS", "parity,timing")  # run one part with "parity" / "timing"
REPEATS = int(os.environ.get("BODA_REPEATS", "5"))
SC_BATCH = int(os.environ.get("BODA_SCORECAM_BATCH", "16"))
KODAK = ROOT / "tests" / "data" / "kodak"
PARITY_224 = int(os.environ.get("BODA_PARITY_224", "1"))  # Score-CAM at 224 px is slow
LAYER = {"resnet56": "layer3", "resnet18": "layer4"}


# --------------------------------------------------------------------------- models
def build_model(name: str):
    """The two benchmark models: shipped CIFAR ResNet-56, seeded ResNet-18-like net."""
    import torch
    from torch import nn

    if name == "resnet56":
        sys.path.insert(0, str(ROOT / "src"))
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

    if lib == "boda":
        sys.path.insert(0, str(ROOT / "src"))
        from boda.explain import GradCAM, GradCAMPlusPlus, ScoreCAM

        if method == "scorecam":
            exp = ScoreCAM(model, layer, batch_size=SC_BATCH)
        else:
            exp = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus}[method](model, layer)
        return lambda x: exp(x, target=target).numpy()

    if lib == "torchcam":
        from torchcam import methods

        cls = {"gradcam": methods.GradCAM, "gradcam++": methods.GradCAMpp,
               "scorecam": methods.ScoreCAM}[method]
        kw = {"batch_size": SC_BATCH} if method == "scorecam" else {}
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

    if method == "scorecam-aligned":
        # Diagnostic only: pytorch-grad-cam upsamples Score-CAM masks with
        # UpsamplingBilinear2d (align_corners=True); boda, torchcam and the
        # authors' code use align_corners=False.  Swap it to isolate that convention.
        class _Up(torch.nn.Module):
            def __init__(self, size):
                super().__init__()
                self.size = size

            def forward(self, a):
                return F.interpolate(a, size=self.size, mode="bilinear", align_corners=False)

        torch.nn.UpsamplingBilinear2d = _Up
        method = "scorecam"
    cls = {"gradcam": pgc.GradCAM, "gradcam++": pgc.GradCAMPlusPlus,
           "scorecam": pgc.ScoreCAM, "scorecam-logit": pgc.ScoreCAM}[method]
    exp = cls(model=model, target_layers=[dict(model.named_modules())[layer]])
    if method.startswith("scorecam"):
        exp.batch_size = SC_BATCH
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
    print(json.dumps({"median_s": statistics.median(times), "min_s": min(times),
                      "load": os.getloadavg()[0], "peak_mb": peak_kb / 1024,
                      "extra_mb": (peak_kb - base_kb) / 1024}))


def _run(lib: str, spec: dict) -> str:
    python = CAM_PYTHON if lib == "pytorch-grad-cam" else sys.executable
    spec = {**spec, "lib": lib}
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "TQDM_DISABLE": "1"}
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


def _parity(inputs: dict, libs: list[str], tmp: Path) -> None:
    import numpy as np

    print(f"## Parity (Pearson correlation of the full-size maps, min over "
          f"{len(inputs['resnet56'][0])} Kodak images at 32 px, "
          f"{len(inputs['resnet18'][0])} at 224 px)\n")
    print("| model | method | vs pytorch-grad-cam | vs torchcam |")
    print("|---|---|---|---|")
    for model, (files, targets) in inputs.items():
        for method in ("gradcam", "gradcam++", "scorecam", "scorecam-aligned",
                       "scorecam-logit"):
            cells = []
            for lib in libs:
                if method in ("scorecam-aligned", "scorecam-logit") and lib == "torchcam":
                    cells.append("–")
                    continue
                rs = []
                for i, f in enumerate(files):
                    spec = {"model": model, "input": f, "target": targets[i], "mode": "maps"}
                    ref = tmp / f"{lib}_{method}_{model}_{i}.npy"
                    _run(lib, {**spec, "method": method, "output": str(ref)})
                    bm = "scorecam" if method.startswith("scorecam") else method
                    mine = tmp / f"boda_{bm}_{model}_{i}.npy"
                    if not mine.exists():
                        _run("boda", {**spec, "method": bm, "output": str(mine)})
                    rs.append(_corr(np.load(mine), np.load(ref)))
                cells.append(f"{min(rs):.5f}")
            if "pytorch-grad-cam" not in libs:
                cells.insert(0, "n/a")
            print(f"| {model} | {method} | " + " | ".join(cells) + " |", flush=True)


def _timing(inputs: dict, libs: list[str]) -> None:
    print(f"\n## Time and peak memory per image ({THREADS} threads, Score-CAM batch "
          f"{SC_BATCH})\n")
    print("| model | method | library | median ms | best ms | peak RSS MB | peak − loaded MB "
          "| median × boda | best × boda | extra memory × boda | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for model, (files, targets) in inputs.items():
        for method in ("gradcam", "scorecam"):
            reps = REPEATS if (model, method) != ("resnet18", "scorecam") else min(REPEATS, 3)
            spec = {"model": model, "input": files[0], "target": targets[0], "mode": "time",
                    "method": method, "repeats": reps}
            rows = {lib: json.loads(_run(lib, spec)) for lib in ["boda", *libs]}
            b = rows["boda"]
            for lib, r in rows.items():
                print(f"| {model} | {method} | {lib} | {1000 * r['median_s']:.1f} | "
                      f"{1000 * r['min_s']:.1f} | {r['peak_mb']:.0f} | {r['extra_mb']:.0f} | "
                      f"{r['median_s'] / b['median_s']:.2f} | {r['min_s'] / b['min_s']:.2f} | "
                      f"{r['extra_mb'] / max(b['extra_mb'], 1e-9):.2f} | {r['load']:.1f} |",
                      flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(json.loads(sys.argv[2]))
    else:
        main()
