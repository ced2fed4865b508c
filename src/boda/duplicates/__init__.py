"""Exact and near-duplicate images (numpy only).

- :func:`pixel_hash` fingerprints decoded pixels: equal strings mean the same
  picture, whatever file format or metadata it was stored with.
- :func:`phash` (DCT) and :func:`dhash` (difference) are 64-bit perceptual
  hashes that survive resizing, recompression and small edits; compare them
  with :func:`hamming`.
- :func:`find_exact_duplicates` groups equal keys; :func:`find_near_duplicates`
  clusters hashes within :data:`DEFAULT_MAX_DISTANCE` bits (single linkage,
  exact, multi-index hashing: about 30 s for a million hashes on one core).
"""

from boda.duplicates._clusters import (
    DEFAULT_MAX_DISTANCE,
    find_exact_duplicates,
    find_near_duplicates,
    nearest_distances,
)
from boda.duplicates._hashes import (
    FLAT_PHASHES,
    HASH_BITS,
    MIN_PHASH_SIDE,
    dhash,
    hamming,
    phash,
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
    "hamming",
    "nearest_distances",
    "phash",
    "pixel_hash",
]
