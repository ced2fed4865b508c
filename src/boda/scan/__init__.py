"""``boda scan``: rate every image in a folder and keep the results in a catalog.

>>> from boda.scan import scan            # doctest: +SKIP
>>> summary = scan("photos/")             # doctest: +SKIP
>>> summary.flag_counts                   # doctest: +SKIP
{'blurry': 3, 'dark': 0, 'light': 0, 'low_information': 0, 'grayscale': 0,
 'odd_aspect_ratio': 0, 'odd_size': 0, 'exact_duplicate': 0, 'near_duplicate': 2}

Every output field is described in ``docs/scan.md``.
"""

from boda.scan._analyze import (
    ANALYSIS_VERSION,
    DESCRIPTIVE_MEASURES,
    analyze_file,
    analyze_pixels,
)
from boda.scan._exclude import DEFAULT_EXCLUDES, Excludes
from boda.scan._flags import (
    default_thresholds,
    derive_flags,
    describe_rules,
    flag_descriptions,
    resolve_thresholds,
)
from boda.scan._pipeline import ScanSummary, default_workers, same_mtime, scan
from boda.scan._walk import FoundFile, walk_images

__all__ = [
    "ANALYSIS_VERSION",
    "DEFAULT_EXCLUDES",
    "DESCRIPTIVE_MEASURES",
    "Excludes",
    "FoundFile",
    "ScanSummary",
    "analyze_file",
    "analyze_pixels",
    "default_thresholds",
    "default_workers",
    "derive_flags",
    "describe_rules",
    "flag_descriptions",
    "resolve_thresholds",
    "same_mtime",
    "scan",
    "walk_images",
]
