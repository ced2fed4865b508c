"""Tabulated colorimetric data shipped with boda, loaded on first use.

The tables live as files in ``boda/data/color`` (see ``boda/data/README.md`` for
their sources and licences); this module only reads them, so algorithms never
hold inline tables.  Small constants that standards give as a handful of
numbers (illuminant chromaticities, primaries) are in :mod:`boda.color._illuminants`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import NamedTuple

import numpy as np

__all__ = ["cmfs_cie1931_xyz", "cmfs_wright_guild_rgb", "ciede2000_test_data", "Cmfs"]


class Cmfs(NamedTuple):
    """Colour-matching functions: ``wavelengths`` (nm, ``(N,)``) and ``values`` (``(N, 3)``)."""

    wavelengths: np.ndarray
    values: np.ndarray


def _read_table(filename: str, **kwargs: object) -> np.ndarray:
    path = resources.files("boda").joinpath("data", "color", filename)
    with resources.as_file(path) as p:
        return np.genfromtxt(p, dtype=np.float64, **kwargs)


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


@lru_cache(maxsize=1)
def cmfs_cie1931_xyz() -> Cmfs:
    """CIE 1931 2° standard observer x̄ ȳ z̄, 360–830 nm in 1 nm steps.

    Returns read-only arrays (cached); copy before modifying.

    References
    ----------
    CIE 015:2018 *Colorimetry*, 4th ed., Table 1 (as tabulated in colour-science).
    """
    table = _read_table("cie1931_2deg_xyz_cmfs.csv", delimiter=",", skip_header=1)
    return Cmfs(_readonly(table[:, 0].copy()), _readonly(table[:, 1:4].copy()))


@lru_cache(maxsize=1)
def cmfs_wright_guild_rgb() -> Cmfs:
    """Wright & Guild (CIE 1931) 2° r̄ ḡ b̄ for the 700 / 546.1 / 435.8 nm primaries.

    380–780 nm in 5 nm steps; r̄ is negative between about 440 and 545 nm, the
    reason the CIE defined the all-positive XYZ system.

    References
    ----------
    Wright (1929), Guild (1932); CIE 1931 RGB colour-matching functions as
    tabulated in colour-science (``CIE 1931 2 Degree Standard Observer`` RGB CMFs).
    """
    table = _read_table("wright_guild_1931_2deg_rgb_cmfs.csv", delimiter=",", skip_header=1)
    return Cmfs(_readonly(table[:, 0].copy()), _readonly(table[:, 1:4].copy()))


@lru_cache(maxsize=1)
def ciede2000_test_data() -> dict[str, np.ndarray]:
    """Sharma, Wu & Dalal (2005) CIEDE2000 test pairs with intermediate values.

    Returns
    -------
    dict of str to numpy.ndarray
        ``lab1``, ``lab2`` (34, 3); ``a1_prime``, ``c1_prime``, ``h1_prime``,
        ``a2_prime``, ``c2_prime``, ``h2_prime``, ``h_bar_prime``, ``G``, ``T``,
        ``S_L``, ``S_C``, ``S_H``, ``R_T`` and ``delta_e`` (34,).

    References
    ----------
    G. Sharma, W. Wu, E. N. Dalal, "The CIEDE2000 color-difference formula:
    Implementation notes, supplementary test data, and mathematical
    observations", *Color Res. Appl.* 30(1), 21–30, 2005, Table 1.
    """
    t = _read_table("ciede2000_test_data.txt", comments="#")
    out = {
        "lab1": t[:, 2:5],
        "a1_prime": t[:, 5],
        "c1_prime": t[:, 6],
        "h1_prime": t[:, 7],
        "h_bar_prime": t[:, 8],
        "G": t[:, 9],
        "T": t[:, 10],
        "S_L": t[:, 11],
        "S_C": t[:, 12],
        "S_H": t[:, 13],
        "R_T": t[:, 14],
        "delta_e": t[:, 15],
        "lab2": t[:, 17:20],
        "a2_prime": t[:, 20],
        "c2_prime": t[:, 21],
        "h2_prime": t[:, 22],
    }
    return {k: _readonly(np.ascontiguousarray(v)) for k, v in out.items()}
