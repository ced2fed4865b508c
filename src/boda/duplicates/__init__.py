"""Exact and near-duplicate images (numpy only).

- :func:`pixel_hash` fingerprints decoded pixels: equal strings mean the same
  picture, whatever file format or metadata it was stored with.
- :func:`phash` (DCT) and :func:`dhash` (difference) are 64-bit perceptual
  hashes that survive resizing, recompression and small edits; compare them
  with :func:`hamming`.
- :func:`find_exact_duplicates` groups equal keys; :func:`find_near_duplicates`
  clusters hashes within :data:`DEFAULT_MAX_DISTANCE` bits (single linkage,
  exact, multi-index hashing: about 30 s for a million hashes on one core).
- :func:`phash_pair` gives an image's pHash and the pHash of its left-right
  mirror image from one DCT; :func:`find_near_duplicates_mirrored` clusters
  with mirror images counted as near duplicates too.
"""

from boda.duplicates._clusters import (
    DEFAULT_MAX_DISTANCE,
    find_exact_duplicates,
    find_near_duplicates,
    find_near_duplicates_mirrored,
    nearest_distances,
)
from boda.duplicates._hashes import (
    FLAT_PHASHES,
    HASH_BITS,
    MIN_PHASH_SIDE,
    dhash,
    hamming,
    phash,
    phash_pair,
    pixel_hash,
)

__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "FLAT_PHASHES",
    "HASH_BITS",
    "MIN_PHASH_SIDE",
    "dhash",
    "find_exact_duplicates",
    "find_near_duplicates",
    "find_near_duplicates_mirrored",
    "hamming",
    "nearest_distances",
    "phash",
    "phash_pair",
    "pixel_hash",
]
