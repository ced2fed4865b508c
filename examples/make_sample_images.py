"""Build ``examples/images``: a small folder that shows each ``boda scan`` flag but odd_size.

From a few Kodak photos (``../shared/data/kodak24`` relative to the repository
root, or ``$BODA_SHARED_DATA/kodak24``) this writes, through
:func:`boda.io.write_image`:

- six sharp originals (JPEG q=90),
- ``blurry_gaussian.jpg`` (Gaussian blur, sigma=3) and ``blurry_motion.jpg``
  (a 25-pixel linear motion blur at 20 degrees) -> ``blurry``,
- ``dark_underexposed.jpg`` (exposure -5.5 stops) -> ``dark``,
- ``light_overexposed.jpg`` (exposure +4.5 stops, clipped) -> ``light``,
- ``low_information_sky.jpg`` (the sky blurred, contrast cut to 2 %: a
  near-flat gray-blue) -> ``low_information``,
- ``panorama_strip.jpg`` (a 6:1 strip) -> ``odd_aspect_ratio``,
- ``more/parrots_copy.jpg`` (the same pixels as ``parrots.jpg``, in a
  subfolder to show recursion) -> ``exact_duplicate``,
- ``hats_resized.jpg`` (``hats.jpg`` resized to 0.6x and recompressed at
  q=80) -> ``near_duplicate``,

plus ``LICENSE.md`` naming the source.  Everything is deterministic (no
randomness is used; the JPEG encoder is), so running it again reproduces the
committed files byte for byte.

Run from the repository root::

    .venv/bin/python examples/make_sample_images.py
    boda scan examples/images
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from boda.color import linear_to_srgb, srgb_to_linear
from boda.io import read_image, write_image

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("BODA_SHARED_DATA", HERE.parent.parent / "shared" / "data"))

#: output name -> Kodak file of the sharp originals.
ORIGINALS = {
    "house.jpg": "kodim01.png",
    "hats.jpg": "kodim03.png",
    "motocross.jpg": "kodim05.png",
    "rafting.jpg": "kodim14.png",
    "lighthouse.jpg": "kodim21.png",
    "parrots.jpg": "kodim23.png",
}
QUALITY = 90


def expose(img: np.ndarray, stops: float) -> np.ndarray:
    """Scale linear light by ``2**stops`` (clipping highlights), like a camera's exposure.

    Exposure changes happen in linear light: IEC 61966-2-1 decoding and encoding.
    """
    return linear_to_srgb(np.clip(srgb_to_linear(img) * 2.0**stops, 0.0, 1.0)).astype(np.float32)


def motion_blur(img: np.ndarray, length: int = 25, angle_deg: float = 20.0) -> np.ndarray:
    """Convolve with a normalised line of ``length`` pixels at ``angle_deg`` (camera shake)."""
    kernel = np.zeros((length, length), np.float64)
    c = (length - 1) / 2
    t = np.linspace(-c, c, 4 * length)
    rows = np.round(c - t * np.sin(np.radians(angle_deg))).astype(int)
    cols = np.round(c + t * np.cos(np.radians(angle_deg))).astype(int)
    kernel[rows, cols] = 1.0
    kernel /= kernel.sum()
    return np.stack(
        [ndimage.convolve(img[:, :, ch], kernel, mode="reflect") for ch in range(3)], axis=2
    )


def kodak(name: str) -> np.ndarray:
    path = DATA / "kodak24" / name
    if not path.is_file():
        raise SystemExit(f"{path} not found; set BODA_SHARED_DATA to the shared data folder")
    return read_image(path)


def build(out: Path) -> dict[str, str]:
    """Write every sample into ``out``; return ``{relative path: what it shows}``."""
    made: dict[str, str] = {}

    def save(rel: str, image: np.ndarray, what: str, quality: int = QUALITY) -> None:
        write_image(out / rel, image, quality=quality)
        made[rel] = what

    for rel, source in ORIGINALS.items():
        save(rel, kodak(source), f"sharp original ({source})")

    save(
        "blurry_gaussian.jpg",
        ndimage.gaussian_filter(kodak("kodim08.png"), sigma=(3, 3, 0)),
        "kodim08, Gaussian blur sigma=3 (out of focus) -> blurry",
    )
    save(
        "blurry_motion.jpg",
        motion_blur(kodak("kodim19.png")),
        "kodim19, 25 px linear motion blur at 20 degrees (camera shake) -> blurry",
    )
    save(
        "dark_underexposed.jpg",
        expose(kodak("kodim24.png"), -5.5),
        "kodim24, exposure -5.5 stops -> dark",
    )
    save(
        "light_overexposed.jpg",
        expose(kodak("kodim06.png"), 4.5),
        "kodim06, exposure +4.5 stops, highlights clipped -> light",
    )
    # The sky above the island, blurred, stretched back to 4:3 (a smooth
    # image, so linear interpolation is enough) and its contrast cut to 2 %
    # around the mean: a few gray levels, like a shot into fog.
    sky = ndimage.gaussian_filter(kodak("kodim16.png")[:125], sigma=(25, 25, 0), mode="nearest")
    sky = ndimage.zoom(sky, (3.0, 1.0, 1.0), order=1)
    sky = np.clip(sky.mean() + 0.02 * (sky - sky.mean()), 0.0, 1.0)
    save(
        "low_information_sky.jpg",
        sky,
        "kodim16, the sky blurred (sigma=25), stretched to 4:3, contrast cut to 2 % "
        "(nearly flat) -> low_information",
    )
    strip = kodak("kodim16.png")
    top = 190
    save(
        "panorama_strip.jpg",
        strip[top : top + round(strip.shape[1] / 6)],
        "kodim16, a 6:1 horizontal strip -> odd_aspect_ratio",
    )
    # Same pixels written again: the encoder is deterministic, so the files are
    # identical byte for byte (and decode to identical pixels either way).
    save(
        "more/parrots_copy.jpg",
        kodak(ORIGINALS["parrots.jpg"]),
        "copy of parrots.jpg in a subfolder -> exact_duplicate",
    )
    small = read_image(out / "hats.jpg", max_side=round(0.6 * 500))
    save(
        "hats_resized.jpg",
        small,
        "hats.jpg resized to 0.6x (Lanczos) and recompressed at q=80 -> near_duplicate",
        quality=80,
    )
    return made


LICENSE_TEXT = """\
# Sample images: source and licence

Every picture in this folder is derived from the **Kodak Lossless True Color
Image Suite** (Eastman Kodak, PhotoCD PCD0992; 500x500 crops as distributed in
the cszn/FFDNet test sets), which Kodak released for unrestricted use.  The
edits below were made by `examples/make_sample_images.py`; the derived files
may be used under the same terms.

| file | what it is |
|---|---|
{rows}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "images", help="output folder")
    args = parser.parse_args()
    made = build(args.out)
    rows = "\n".join(f"| `{rel}` | {what} |" for rel, what in made.items())
    (args.out / "LICENSE.md").write_text(LICENSE_TEXT.format(rows=rows), encoding="utf-8")
    copy, original = args.out / "more/parrots_copy.jpg", args.out / "parrots.jpg"
    assert copy.read_bytes() == original.read_bytes(), "exact duplicate must be identical"
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {len(made)} images to {args.out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
