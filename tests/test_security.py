"""Untrusted inputs: model files, image files and catalogs built to hurt.

Each test rebuilds, small, a case of the session-13 security review and checks
that boda refuses it cleanly (a one-line ``BodaError``) or reads it safely.
"""

from __future__ import annotations

import pytest

# -- model files ------------------------------------------------------------------------------


def _scripted_writer(marker) -> object:
    """A TorchScript module whose ``__setstate__`` creates ``marker`` while it is loaded."""
    import torch
    from torch import nn

    class Trigger(nn.Module):
        def __init__(self, path: str):
            super().__init__()
            self.path = path

        def forward(self, x):
            return x

        @torch.jit.export
        def __getstate__(self):
            return (self.path, self.training)

        @torch.jit.export
        def __setstate__(self, state: tuple[str, bool]):
            # from_file(shared=True) opens the file with O_CREAT and maps it shared.
            t = torch.from_file(state[0], shared=True, size=4, dtype=torch.uint8)
            t.fill_(66)
            self.path = state[0] + str(int(t.sum().item()) * 0)
            self.training = state[1]

    class Net(nn.Module):
        def __init__(self, path: str):
            super().__init__()
            self.trigger = Trigger(path)
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(self.trigger(x).mean((2, 3)))

    return torch.jit.script(Net(str(marker)))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit
def test_torchscript_files_are_refused_unless_trusted(tmp_path):
    import torch
    from typer.testing import CliRunner

    from boda.cli import app
    from boda.errors import ModelError
    from boda.io import write_image
    from boda.nn import load_model

    marker = tmp_path / "written_by_the_model"
    path = tmp_path / "model.pt"
    torch.jit.save(_scripted_writer(marker), str(path))
    marker.unlink(missing_ok=True)  # scripting runs nothing, but be sure

    with pytest.raises(ModelError, match="trust_code=True") as err:
        load_model(path)
    assert "runs code" in str(err.value) and "--trust-model-code" in str(err.value)
    assert not marker.exists()

    import numpy as np

    write_image(tmp_path / "a.png", np.full((8, 8, 3), 0.5, np.float32))
    result = CliRunner().invoke(
        app, ["explain", str(tmp_path / "a.png"), "--model", str(path), "--method", "saliency"]
    )
    assert result.exit_code == 1 and "--trust-model-code" in result.output
    assert "Traceback" not in result.output and not marker.exists()

    # The opt-in loads it (and shows why it is needed: the file's code ran).
    lm = load_model(path, trust_code=True)
    assert marker.exists() and lm.model(torch.rand(1, 3, 4, 4)).shape == (1, 2)


def test_pickles_stay_refused_even_with_trust_code(tmp_path):
    import torch

    from boda.errors import ModelError
    from boda.nn import load_model

    marker = tmp_path / "unpickled"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    torch.save({"fc.weight": torch.zeros(2, 2), "x": Evil()}, path)
    with pytest.raises(ModelError, match="pickled Python objects"):
        load_model(path, arch="resnet20", trust_code=True)
    assert not marker.exists()


def test_absurd_shapes_are_refused_before_the_model_is_built(tmp_path, monkeypatch):
    import torch
    from torch import nn

    from boda.errors import ModelError
    from boda.nn import load_model
    from boda.nn._models import ARCHITECTURES

    real_builds = []

    def probe(num_classes: int) -> nn.Module:
        # Built on the meta device, a layer costs nothing; built for real, record it.
        if torch.empty(0).device.type != "meta":
            real_builds.append(num_classes)
        return nn.Sequential(nn.Flatten(), nn.Linear(4, num_classes))

    monkeypatch.setitem(ARCHITECTURES, "probe", probe)
    # 10^6 classes from a file of a few hundred bytes (a stride-0 expanded tensor); a
    # real file could claim 10^8 (25.6 GB for resnet20), the probe shows the order.
    huge = torch.zeros(1, 1).expand(10**6, 1)
    path = tmp_path / "huge.pt"
    torch.save({"1.weight": huge, "1.bias": torch.zeros(1).expand(10**6)}, path)
    assert path.stat().st_size < 10_000
    with pytest.raises(ModelError, match=r"size mismatch for 1.weight.*\(1000000, 4\)"):
        load_model(path, arch="probe")
    assert real_builds == []

    # Keys of another architecture: refused before building too (strict loading).
    torch.save({"fc.weight": huge}, path)
    with pytest.raises(ModelError, match="missing keys"):
        load_model(path, arch="probe")
    assert real_builds == []

    # The review's case (resnet20 and a lone fc.weight): refused before building.
    with pytest.raises(ModelError, match="do not fit architecture 'resnet20'"):
        load_model(path, arch="resnet20")

    # A fitting checkpoint still loads, and builds once.
    good = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    torch.save(good.state_dict(), path)
    lm = load_model(path, arch="probe")
    assert real_builds == [3]
    torch.testing.assert_close(lm.model[1].weight, good[1].weight)


def test_a_model_too_big_for_its_checkpoint_is_refused(tmp_path, monkeypatch):
    import torch
    from torch import nn

    from boda.errors import ModelError
    from boda.nn import _models, load_model

    def wide(num_classes: int) -> nn.Module:
        return nn.Sequential(nn.Linear(40, 1000), nn.Linear(1000, num_classes))

    monkeypatch.setitem(_models.ARCHITECTURES, "wide", wide)
    monkeypatch.setattr(_models, "_MIN_BUILD_BYTES", 1000)
    path = tmp_path / "part.pt"
    torch.save({"1.weight": torch.zeros(2, 1000)}, path)  # 8 kB of a 170 kB model
    with pytest.raises(ModelError, match="would take"):
        load_model(path, arch="wide", strict=False)
    monkeypatch.setattr(_models, "_MIN_BUILD_BYTES", 2 * 1024**3)
    assert load_model(path, arch="wide", strict=False).model[1].weight.shape == (2, 1000)


# -- image files ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_garbage_exif_is_ignored_and_said(tmp_path, fmt):
    import numpy as np
    from PIL import Image

    from boda.io import open_image, read_image

    rgb = np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    path = tmp_path / f"garbage_exif.{fmt.lower()}"
    Image.fromarray(rgb).save(path, fmt, exif=bytes(range(256)) * 4, lossless=True)
    decoded = open_image(path)
    assert decoded.exif is None and "EXIF" in decoded.exif_warning
    assert decoded.pixels_uint8 is not None
    np.testing.assert_array_equal(decoded.pixels_uint8, rgb)
    assert read_image(path).shape == (12, 20, 3)
    # A readable EXIF block still orients, with no warning.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(path, fmt, exif=exif.tobytes(), lossless=True)
    good = open_image(path)
    assert good.exif_warning is None and good.pixels.shape == (20, 12, 3)


def _large_cases(folder) -> dict:
    """Files in the modes whose reads used to cost several times the decoded size."""
    import cv2
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    h, w = 300, 410
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.dstack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (w + h)]).astype(np.uint8)
    alpha = ((xx // 50 + yy // 50) % 2 * 200 + rng.integers(0, 55, (h, w))).astype(np.uint8)
    c16 = np.dstack([xx * 150, yy * 200, (xx + yy) * 90]).astype(np.uint16)
    exif = Image.Exif()
    exif[0x0112] = 6
    files = {
        "rgba8.png": lambda p: Image.fromarray(np.dstack([rgb, alpha])).save(p),
        "palette_trns.png": lambda p: (
            Image.fromarray(rgb)
            .convert("P", palette=Image.Palette.ADAPTIVE)
            .save(p, transparency=3)
        ),
        "gray16.png": lambda p: Image.fromarray((xx * 150 + yy).astype(np.uint16)).save(p),
        "rgb16.png": lambda p: cv2.imwrite(str(p), c16[:, :, ::-1]),
        "rgba16.png": lambda p: cv2.imwrite(
            str(p), np.dstack([c16[:, :, ::-1], alpha.astype(np.uint16) * 257])
        ),
        "alpha.webp": lambda p: Image.fromarray(np.dstack([rgb, alpha])).save(p, lossless=True),
        "oriented.tif": lambda p: Image.fromarray(rgb).save(p, exif=exif.tobytes()),
        "oriented.png": lambda p: Image.fromarray(rgb).save(p, exif=exif.tobytes()),
    }
    paths = {}
    for name, make in files.items():
        make(folder / name)
        paths[name] = folder / name
    return paths


def test_large_reads_shrink_first_and_match_the_exact_path(tmp_path, monkeypatch):
    import numpy as np

    import boda._io_reduce as reduce
    import boda.io as bio

    for name, path in _large_cases(tmp_path).items():
        for resample in ("box", "lanczos"):
            monkeypatch.setattr(reduce, "EARLY_REDUCE_PIXELS", 10**12)  # the exact path
            exact = bio.open_image(path, 40, resample=resample)
            monkeypatch.setattr(reduce, "EARLY_REDUCE_PIXELS", 10_000)
            monkeypatch.setattr(reduce, "_STRIPE_PIXELS", 5_000)  # several stripes
            early = bio.open_image(path, 40, resample=resample)
            assert early.pixels.shape == exact.pixels.shape, name
            assert early.original_size == exact.original_size, name
            assert (early.has_alpha, early.bit_depth) == (exact.has_alpha, exact.bit_depth), name
            # Rounding, and partial edge blocks taken at the other end when rotated.
            tol = 4.5 / 255 if name == "oriented.png" else 2.5 / 255
            assert np.abs(early.pixels - exact.pixels).max() <= tol, (name, resample)


def test_large_reads_make_no_full_size_copies(tmp_path, monkeypatch):
    import tracemalloc

    from PIL import Image

    import boda._io_reduce as reduce
    import boda.io as bio

    monkeypatch.setattr(reduce, "EARLY_REDUCE_PIXELS", 10_000)
    monkeypatch.setattr(reduce, "_STRIPE_PIXELS", 4_096)
    cases = _large_cases(tmp_path)
    full = 300 * 410

    # Pillow conversions (compositing, palette expansion, 16-bit gray as 32-bit):
    # none may produce an image of the full size, only stripes and the shrunk image.
    largest = []
    convert = Image.Image.convert

    def spy(self, *args, **kwargs):
        out = convert(self, *args, **kwargs)
        largest.append(out.width * out.height)
        return out

    monkeypatch.setattr(Image.Image, "convert", spy)
    for name in ("rgba8.png", "palette_trns.png", "gray16.png"):
        largest.clear()
        bio.open_image(cases[name], 40)
        assert largest and max(largest) < full // 4, name
    monkeypatch.setattr(Image.Image, "convert", convert)

    # 16-bit colour (OpenCV, numpy): floats only for stripes, not for the whole image.
    decoded = full * 4 * 2  # the uint16 BGRA array OpenCV returns
    bio.open_image(cases["rgba16.png"], 40)  # imports and caches
    tracemalloc.start()
    try:
        bio.open_image(cases["rgba16.png"], 40)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The decoded array, the file's bytes (twice) and stripes; floats of the whole
    # image (12 bytes a pixel, 1.5 MB) are not made.
    assert peak < decoded + 2 * cases["rgba16.png"].stat().st_size + 300_000


# -- catalogs ---------------------------------------------------------------------------------

_ROW = "UPDATE images SET {} WHERE relpath = X'612E706E67'"  # a.png
_SET = "INSERT OR REPLACE INTO settings VALUES (?, ?)"
#: Values a hand-edited or damaged catalog can hold where numbers or JSON go.
_DAMAGE = {
    "extra not JSON": (_ROW.format("extra = ?"), ("{not json",)),
    "scores not JSON": (_ROW.format("scores = ?"), ("{1:",)),
    "scores as text": (_ROW.format("scores = ?"), ('{"blurry": "<b>x</b>", "dark": [1]}',)),
    "colours as text": (
        _ROW.format("extra = ?"),
        ('{"dominant_colors": [{"rgb": ["x", 1, 2], "fraction": "y"}, 3]}',),
    ),
    "threshold as text": (_SET, ("thresholds", '{"blurry": "<i>", "dark": 0.8}')),
    "thresholds NaN": (_SET, ("thresholds", '{"blurry": NaN, "dark": 1e308}')),
    "thresholds a list": (_SET, ("thresholds", "[1, 2, 3]")),
    "setting not JSON": (_SET, ("thresholds", "{oops")),
    "to_analyse as text": (
        _SET,
        ("last_scan", '{"complete": false, "started": 1.0, "to_analyse": "many"}'),
    ),
    "raw files odd": (_SET, ("raw_files", '{"<b>": 3, ".cr2": "x", ".nef": true}')),
    "raw files a list": (_SET, ("raw_files", '["x"]')),
    "unknown flag": ("INSERT INTO flags VALUES (1, 'no_such_flag', 1.0, NULL)", ()),
    "flag score text": ("UPDATE flags SET score = 'zz'", ()),
    "flag score NULL": ("UPDATE flags SET score = NULL", ()),
    "group as text": ("UPDATE flags SET group_id = 'g'", ()),
}


def _damaged_catalog(folder, sql: str, params: tuple) -> None:
    import sqlite3

    from boda.catalog import Catalog, ImageRecord

    (folder / ".boda").mkdir(parents=True)
    db = folder / ".boda" / "catalog.db"
    scores = {"blurry": 0.9, "dark": 0.01, "light": 0.5, "low_information": 2.0,
              "detail_ratio": 0.5}  # fmt: skip
    with Catalog(db) as catalog:
        records = [
            ImageRecord(name, 10, 1, "ok", width=4, height=3, format="PNG", pixel_hash="ab",
                        phash=5, scores=scores,
                        extra={"dominant_colors": [{"rgb": [0.1, 0.2, 0.3], "fraction": 1.0}]})
            for name in (b"a.png", b"b.png")
        ]  # fmt: skip
        catalog.write_batch(records)
        catalog.replace_flags([
            (records[0].id, "blurry", 0.9, None), (records[0].id, "exact_duplicate", None, 1),
            (records[1].id, "exact_duplicate", None, 1), (records[1].id, "near_duplicate", 0, 2),
            (records[0].id, "near_duplicate", 0, 2),
        ])  # fmt: skip
        catalog.set_setting("thresholds", {"blurry": 0.5, "dark": 0.1})
    with sqlite3.connect(db) as con:
        con.execute(sql, params)


@pytest.mark.parametrize("damage", sorted(_DAMAGE))
def test_reports_of_a_damaged_catalog_are_written(tmp_path, damage):
    import json

    from typer.testing import CliRunner

    from boda.cli import app

    folder = tmp_path / "photos"
    _damaged_catalog(folder, *_DAMAGE[damage])
    runner = CliRunner()
    for args in (["-o", str(tmp_path / "r.html")], ["--json"], ["--csv", str(tmp_path / "r.csv")]):
        result = runner.invoke(app, ["report", str(folder), *args])
        assert result.exit_code == 0, (damage, args, result.output, result.exception)
        if args == ["--json"]:
            assert len(json.loads(result.stdout)) == 2
    page = (tmp_path / "r.html").read_text()
    assert "<b>x</b>" not in page and "no_such_flag" not in page
    assert "blurry" in page and "exact_duplicate" in page


# -- colour profiles --------------------------------------------------------------------------


def _shared_trc_profile(samples) -> bytes:
    """A P3 matrix profile whose rTRC, gTRC and bTRC all point at one curv table."""
    import struct

    import icc_profiles as ip

    good = bytearray(ip.rgb_profile("p3", ip.SRGB_CURVE))
    table = ip.curve_table(samples)
    (count,) = struct.unpack(">I", good[128:132])
    offset = len(good)
    for at in range(132, 132 + 12 * count, 12):
        if good[at : at + 4] in (b"rTRC", b"gTRC", b"bTRC"):
            good[at + 4 : at + 12] = struct.pack(">II", offset, len(table))
    good += table
    good[0:4] = struct.pack(">I", len(good))
    return bytes(good)


def test_long_tone_curves_are_resampled_and_parsed_once():
    import numpy as np

    from boda import _icc

    n = 100_000
    x = np.linspace(0.0, 1.0, n)
    parsed = _icc.parse_profile(_shared_trc_profile(x**2.2))
    curve = parsed.curves[0]
    assert parsed.curves[1] is curve and parsed.curves[2] is curve  # one parse, one table
    assert curve.kind == "table" and len(curve.params) == _icc.MAX_CURVE_SAMPLES
    ramp = np.linspace(0.0, 1.0, 10_001, dtype=np.float32)
    exact = np.interp(ramp, x, np.round(x**2.2 * 65535) / 65535)
    assert np.abs(curve(ramp) - exact).max() < 1.5 / 65535  # within the samples' rounding
    # Tables of real profiles (up to 4096 samples) are kept as they are.
    short = np.linspace(0.0, 1.0, 4096) ** 1.8
    kept = _icc.parse_profile(_shared_trc_profile(short)).curves[0]
    np.testing.assert_array_equal(kept.params, np.round(short * 65535) / 65535)


def test_the_profile_cache_keeps_no_large_objects(tmp_path):
    import gc
    import tracemalloc

    import numpy as np
    from PIL import Image

    from boda import _icc
    from boda.io import open_image

    paths = []
    for k in range(4):  # distinct profiles with 100 000-sample curves (200 kB each)
        samples = np.linspace(0.0, 1.0, 100_000) ** (1.8 + 0.1 * k)
        path = tmp_path / f"{k}.jpg"
        Image.new("RGB", (8, 8), (90, 120, 200)).save(
            path, icc_profile=_shared_trc_profile(samples)
        )
        paths.append(path)
    open_image(paths[0])  # imports and first-use caches, outside the measure
    _icc.color_plan.cache_clear()
    gc.collect()
    tracemalloc.start()
    try:
        for path in paths:
            decoded = open_image(path)
            assert decoded.converted_from == "p3 (boda test)"
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # The plans stay cached (a second read is a hit) but hold 4096-sample curves and
    # no profile bytes: well under a MB for all four (a tuple of 100 000 floats per
    # curve, three per profile, and the profile as the key took 40 MB).
    assert kept < 1_500_000
    before = _icc.color_plan.cache_info().hits
    open_image(paths[0])
    assert _icc.color_plan.cache_info().hits == before + 1


@pytest.mark.parametrize(
    "curve",
    [
        (1, -2.0, 0.0, 0.0),  # exponent below 0: black goes to infinity
        (0, 0.0),  # exponent 0
        (3, 300.0, 1.5, 0.0, 0.0, 0.0),  # (1.5 X)^300 overflows float32 at white
    ],
)
@pytest.mark.parametrize("gray", [False, True])
def test_profiles_whose_curves_blow_up_are_ignored(tmp_path, curve, gray):
    import warnings

    import icc_profiles as ip
    import numpy as np
    from PIL import Image

    from boda import _icc
    from boda.io import open_image

    tag = ip.curve_parametric(*curve)
    profile = ip.gray_profile(tag) if gray else ip.rgb_profile("p3", tag)
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (16, 16) if gray else (16, 16, 3), dtype=np.uint8)
    path = tmp_path / "a.png"
    Image.fromarray(u8).save(path, icc_profile=profile)
    _icc.color_plan.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decoded = open_image(path)
    assert not caught  # no numpy RuntimeWarning on stderr either
    assert np.isfinite(decoded.pixels).all()
    assert decoded.converted_from is None and "pixels read as sRGB" in decoded.color_warning
    stored = decoded.pixels[..., 0] if gray else decoded.pixels  # read as sRGB: as stored
    np.testing.assert_array_equal(np.round(stored * 255), u8)


def test_a_conversion_that_gives_nan_is_dropped(tmp_path, monkeypatch):
    import icc_profiles as ip
    import numpy as np
    from PIL import Image

    from boda import _icc
    from boda.io import open_image

    u8 = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    path = tmp_path / "p3.png"
    Image.fromarray(u8).save(path, icc_profile=ip.rgb_profile("p3", ip.SRGB_CURVE))

    def broken(self, pixels):
        return np.full(np.shape(pixels), np.nan, np.float32)

    # color_plan tries each new plan on a ramp and caches its verdict: the verdicts
    # made with the broken apply must not outlive this test (nor older ones enter it)
    _icc.color_plan.cache_clear()
    monkeypatch.setattr(_icc.ColorPlan, "apply", broken)
    try:
        decoded = open_image(path)
    finally:
        _icc.color_plan.cache_clear()
    assert np.isfinite(decoded.pixels).all() and "undefined values" in decoded.color_warning
    np.testing.assert_array_equal(np.round(decoded.pixels * 255), u8)


def test_the_shape_check_accepts_what_torch_accepts(tmp_path):
    import torch

    from boda.nn import load_model

    # Checkpoints from before torch 0.4.1 have no BatchNorm num_batches_tracked.
    reference = load_model("resnet20-cifar10").model
    state = {k: v for k, v in reference.state_dict().items() if "num_batches" not in k}
    torch.save(state, tmp_path / "old.pt")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            load_model(tmp_path / "old.pt", arch="resnet20").model(x), reference(x)
        )
