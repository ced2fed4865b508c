"""The exposure step of the keep rule (:func:`boda.report.duplicate_sets`): in a burst,
boda keeps a well-exposed frame over a blown-out or dark one that scores sharper, and
still the sharpest of equally exposed frames.

Exposure is judged within the set, from the stored lightness scores (no image is read
again): see ``_exposure_errors`` in ``boda.report._keep``.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from scan_helpers import chosen_catalog

from boda.duplicates import hamming
from boda.report import _keep as export
from boda.report import catalog_records, duplicate_sets
from boda.scan import scan

# -- a real burst: frames of one Kodak photo, scanned -------------------------------------------


def _frame(src: Path, dst: Path, *, gain: float = 1.0, sigma: float = 0, dx: int = 0,
           crisp: bool = False) -> None:
    """One frame of a burst: shifted by ``dx`` px, blurred, exposed ``gain`` times the
    light (linear), or sharpened (``crisp``: the sharpness score goes up)."""
    image = Image.open(src).convert("RGB")
    w, h = image.size
    image = image.crop((20 + dx, 20, w - 20 + dx, h - 20)).resize((300, 200), Image.LANCZOS)
    if sigma:
        image = image.filter(ImageFilter.GaussianBlur(sigma))
    if gain != 1.0:
        linear = (np.asarray(image, dtype=np.float32) / 255) ** 2.2 * gain
        image = Image.fromarray((linear.clip(0, 1) ** (1 / 2.2) * 255).astype(np.uint8))
    if crisp:
        image = image.filter(ImageFilter.UnsharpMask(radius=1, percent=80, threshold=0))
    image.save(dst, quality=92)


@pytest.fixture(scope="module")
def bursts(tmp_path_factory, kodak_paths) -> dict[str, dict]:
    """Bursts of kodim01 (one folder each), scanned: every frame's record by name."""
    src = next(p for p in kodak_paths if p.stem == "kodim01")
    root = tmp_path_factory.mktemp("bursts")
    plans = {
        # +2.8 EV, clipped highlights, sharpened: the sharpest score of its burst
        "blown": {"good": {}, "soft": {"sigma": 0.7, "dx": 2},
                  "blown": {"gain": 7.0, "dx": 3, "crisp": True}},
        "dark": {"good": {}, "soft": {"sigma": 0.7, "dx": 2},
                 "dark": {"gain": 0.1, "dx": -2, "crisp": True}},  # -3.3 EV
        "pair": {"good": {}, "blown": {"gain": 7.0, "dx": 3, "crisp": True}},
        "even": {"good": {}, "soft": {"sigma": 0.7, "dx": 2}, "bright": {"gain": 1.2, "dx": 1}},
    }
    out = {}
    for name, frames in plans.items():
        folder = root / name
        folder.mkdir()
        for frame, how in frames.items():
            _frame(src, folder / f"{frame}.jpg", **how)
        scan(folder)
        out[name] = {"folder": folder,
                     "records": {r["path"]: r for r in catalog_records(folder)}}
    return out


def _only_set(burst: dict) -> export.DuplicateSet:
    sets = duplicate_sets(burst["folder"])
    assert len(sets) == 1  # every frame is a near duplicate of the kept one
    return sets[0]


def _score(burst: dict, name: str, score: str = "blurry") -> float:
    return burst["records"][f"{name}.jpg"]["scores"][score]


@pytest.mark.parametrize("bad", ["blown", "dark"])
def test_a_badly_exposed_frame_that_scores_sharper_is_not_kept(bursts, bad):
    burst = bursts[bad]
    # what made the former rule keep it: the sharpest score, and no flag of its own
    assert _score(burst, bad) > _score(burst, "good") > _score(burst, "soft")
    assert all(set(r["flags"]) == {"near_duplicate"} for r in burst["records"].values())
    ev = 2.2 * math.log2(_score(burst, bad, "mean_lightness")
                         / _score(burst, "good", "mean_lightness"))
    assert abs(ev) > 1.5
    chosen = _only_set(burst)
    assert chosen.keep == "good.jpg"
    assert chosen.redundant == tuple(sorted([f"{bad}.jpg", "soft.jpg"]))


def test_equally_exposed_frames_keep_the_sharpest(bursts):
    # +0.26 EV (gain 1.2 in linear light, pixels shifted): within half a stop of the
    # reference frame, so the sharpness decides among the three
    burst = bursts["even"]
    ev = 2.2 * math.log2(_score(burst, "bright", "mean_lightness")
                         / _score(burst, "good", "mean_lightness"))
    assert 0.1 < ev < 0.5
    ranked = sorted(burst["records"], key=lambda p: -burst["records"][p]["scores"]["blurry"])
    assert _only_set(burst).keep == ranked[0]


def test_a_pair_keeps_the_frame_nearer_mid_grey(bursts):
    # two frames, no majority: the reference is the one whose mean lightness is nearer
    # mid-grey, so the blown-out frame is 2+ EV off and the well-exposed one is kept
    burst = bursts["pair"]
    assert _score(burst, "blown") > _score(burst, "good")
    assert _only_set(burst) == export.DuplicateSet(
        keep="good.jpg", redundant=("blown.jpg",), linked=(), exact_groups=(),
        near_groups=(1,))


# -- chosen scores: a catalog of records with the flags a scan derives -----------------------------

def _catalog(path: Path, frames: list[dict]) -> Path:
    return chosen_catalog(path, frames)


def _scores(sharp: float, mean: float | None, p05=None, p50=None, p95=None) -> dict:
    """Scores of a frame: ``blurry`` (sharpness) and its lightness (luma, 0-1); the
    percentiles default to unclipped values around the mean."""
    if mean is None:
        return {"blurry": sharp}
    return {"blurry": sharp, "mean_lightness": mean,
            "p05_lightness": mean / 3 if p05 is None else p05,
            "p50_lightness": mean if p50 is None else p50,
            "p95_lightness": min(0.99, mean * 1.5) if p95 is None else p95}


def _keep(tmp_path, *frames: tuple[str, dict]) -> str:
    path = _catalog(tmp_path / "c.db", [{"name": n, "scores": s} for n, s in frames])
    (only,) = duplicate_sets(path)
    return only.keep


def test_a_pair_within_half_a_stop_keeps_the_sharper(tmp_path):
    # 0.45 against 0.52: 0.46 EV apart, one step is 0.5
    assert _keep(tmp_path, ("a.jpg", _scores(0.6, 0.45)), ("b.jpg", _scores(0.9, 0.52))) == "b.jpg"


def test_a_pair_of_a_bright_scene_keeps_the_frame_nearer_mid_grey(tmp_path):
    # snow: 0.78 and a brighter 0.95 (p95 clipped); the sharper brighter one is not kept
    keep = _keep(tmp_path, ("snow.jpg", _scores(0.6, 0.78)),
                 ("snow+1.jpg", _scores(0.9, 0.95, p95=1.0)))
    assert keep == "snow.jpg"


def test_newly_clipped_tones_count_even_within_half_a_stop(tmp_path):
    # a bright scene whose sky is clipped already (p95 = 1): a frame 0.3 EV brighter that
    # also clips its median is worse exposed, though the sharpest
    frames = [("a.jpg", _scores(0.60, 0.673, p50=0.93, p95=1.0)),
              ("b.jpg", _scores(0.62, 0.673, p50=0.93, p95=1.0)),
              ("c.jpg", _scores(0.95, 0.74, p50=1.0, p95=1.0))]
    assert _keep(tmp_path, *frames) == "b.jpg"


def test_the_reference_is_the_median_frame(tmp_path):
    # three dark frames and two well exposed ones: the majority sets the exposure (a
    # night scene), so the sharpest dark frame keeps
    frames = [("night1.jpg", _scores(0.7, 0.12)), ("night2.jpg", _scores(0.8, 0.13)),
              ("night3.jpg", _scores(0.75, 0.12)),
              ("day1.jpg", _scores(0.99, 0.45)), ("day2.jpg", _scores(0.98, 0.46))]
    assert _keep(tmp_path, *frames) == "night2.jpg"


def test_records_without_lightness_keep_the_sharpest(tmp_path):
    # a catalog of an analysis that stored no lightness: the rule is what it was
    frames = [("a.jpg", _scores(0.5, None)), ("b.jpg", _scores(0.9, None)),
              ("c.jpg", _scores(0.7, 0.95))]
    assert _keep(tmp_path, *frames) == "b.jpg"


def test_pixels_come_before_exposure_and_exposure_before_sharpness(tmp_path):
    # the bigger frames keep over a smaller, better-exposed and sharper one (a downscaled
    # export is not kept over the original); of the two big ones, the one nearer the
    # reference exposure keeps over the sharper, 2 EV brighter one
    frames = [{"name": "small.jpg", "scores": _scores(0.99, 0.45), "size": 48},
              {"name": "big.jpg", "scores": _scores(0.9, 0.95, p95=1.0), "size": 64},
              {"name": "big2.jpg", "scores": _scores(0.6, 0.5), "size": 64}]
    (only,) = duplicate_sets(_catalog(tmp_path / "c.db", frames))
    assert only.keep == "big2.jpg"


def test_other_flags_still_come_first(tmp_path):
    # well-exposed frames flagged blurry are not kept over an overexposed unflagged one
    frames = [("blurry.jpg", _scores(0.2, 0.45)), ("bright.jpg", _scores(0.7, 0.9)),
              ("blurry2.jpg", _scores(0.3, 0.46))]
    assert _keep(tmp_path, *frames) == "bright.jpg"


def test_every_redundant_frame_is_a_direct_copy_of_the_frame_kept(tmp_path, monkeypatch):
    # bursts of random exposures, sharpness and pHash walks (chains): the set split runs
    # on the new keep order, and still lists only direct copies of each set's kept frame
    rng = random.Random(5)
    frames = []
    for burst in range(10):
        base = rng.getrandbits(63) | 1 << 63
        for k in range(rng.randrange(2, 12)):
            value = base
            for _ in range(k * 2):
                value ^= 1 << rng.randrange(63)
            mean = rng.choice([0.45, 0.47, 0.12, 0.9, 0.3, 0.6])
            frames.append({"name": f"b{burst}/{k}.jpg", "phash": value,
                           "scores": _scores(rng.random(), mean)})
    path = _catalog(tmp_path / "c.db", frames)
    records = {r["path"]: r for r in catalog_records(path)}
    sets = duplicate_sets(path)
    seen = [p for s in sets for p in (s.keep, *s.redundant)]
    assert len(seen) == len(set(seen)) and len(sets) >= 10
    for s in sets:
        for p in s.redundant:
            assert hamming(records[p]["phash"], records[s.keep]["phash"]) <= 10
    monkeypatch.setattr(export, "_SMALL_SET", 0)  # the numpy split: the same sets
    assert duplicate_sets(path) == sets
