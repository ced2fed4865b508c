"""Colorimetry primitives shared by the I/O layer and :mod:`boda.color` (numpy only).

:func:`boda.io.read_image` converts embedded colour profiles to sRGB
(:mod:`boda._icc`) and may not import :mod:`boda.color`, an analyzer layer
above it; both need the same few formulas, so they live here, once:

- the sRGB primaries and the D65 white (as xy chromaticities) and the
  Bradford cone-response matrix;
- xy chromaticity -> XYZ (:func:`xy_to_xyz`), the normalised primary matrix
  of an RGB space (:func:`normalised_primary_matrix`) and the von Kries-type
  chromatic adaptation matrix (:func:`chromatic_adaptation_matrix`);
- the IEC 61966-2-1 transfer curves: :func:`srgb_to_linear` and
  :func:`linear_to_srgb` for colour values of any range and float dtype
  (:mod:`boda.color`'s public functions of the same names check their input
  and call these), and :func:`srgb_encode`, the clipped float32 form the
  image reader writes pixels with.

The functions take float arrays and do no input checking: the public layers
above validate and convert, with their own error messages.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SRGB_PRIMARIES_XY",
    "D65_XY",
    "BRADFORD",
    "xy_to_xyz",
    "normalised_primary_matrix",
    "chromatic_adaptation_matrix",
    "srgb_to_linear",
    "linear_to_srgb",
    "srgb_encode",
]

#: ITU-R BT.709 / IEC 61966-2-1 sRGB primaries (red, green, blue) as xy.
SRGB_PRIMARIES_XY: tuple[tuple[float, float], ...] = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))

#: xy of CIE illuminant D65 (2° observer), the sRGB reference white.
D65_XY: tuple[float, float] = (0.3127, 0.3290)

#: Bradford cone-response matrix (Lam 1985; as in ICC.1 Annex E, Lindbloom,
#: LittleCMS and colour-science).
BRADFORD: tuple[tuple[float, float, float], ...] = (
    (0.8951, 0.2664, -0.1614),
    (-0.7502, 1.7135, 0.0367),
    (0.0389, -0.0685, 1.0296),
)

# IEC 61966-2-1 transfer curve: a linear segment of slope 12.92 below 0.04045
# (encoded) / 0.0031308 (linear), a 2.4 power with offset 0.055 above it.
_THRESH_ENCODED = 0.04045
_THRESH_LINEAR = 0.0031308


def xy_to_xyz(xy: np.ndarray) -> np.ndarray:
    """XYZ tristimulus values with Y = 1 of the chromaticity ``xy``.

    X = x / y, Y = 1, Z = (1 - x - y) / y: the definition of the chromaticity
    coordinates (x = X / (X + Y + Z), y = Y / (X + Y + Z)) solved for X and Z.

    Parameters
    ----------
    xy : array_like
        ``(..., 2)`` chromaticities.

    Returns
    -------
    numpy.ndarray
        ``(..., 3)`` float64.  ``y = 0`` gives infinities (no luminance ratio).

    References
    ----------
    CIE 15:2004, *Colorimetry*, 3rd edition: chromaticity coordinates.

    Examples
    --------
    >>> xy_to_xyz(D65_XY).round(5).tolist()
    [0.95046, 1.0, 1.08906]
    """
    xy = np.asarray(xy, dtype=np.float64)
    x, y = xy[..., 0], xy[..., 1]
    return np.stack([x / y, np.ones_like(x), (1.0 - x - y) / y], axis=-1)


def normalised_primary_matrix(primaries_xy: np.ndarray, white_xyz: np.ndarray) -> np.ndarray:
    """Linear RGB -> XYZ matrix of an RGB space given by its primaries and white.

    The columns are the primaries' XYZ (:func:`xy_to_xyz`) scaled so that
    RGB = (1, 1, 1) maps to ``white_xyz``.

    Parameters
    ----------
    primaries_xy : array_like
        ``(3, 2)`` xy chromaticities of red, green and blue.
    white_xyz : array_like
        ``(3,)`` XYZ of the reference white (usually with Y = 1).

    Returns
    -------
    numpy.ndarray
        ``(3, 3)`` float64, applied as ``matrix @ rgb``.

    Raises
    ------
    numpy.linalg.LinAlgError
        The primaries are collinear (no RGB space).

    References
    ----------
    SMPTE RP 177-1993, *Derivation of Basic Television Color Equations*,
    eq. 3.3 (the normalized primary matrix).

    Examples
    --------
    >>> m = normalised_primary_matrix(SRGB_PRIMARIES_XY, xy_to_xyz(D65_XY))
    >>> m[1].round(4).tolist()  # the luminance row: Rec. 709 luma weights
    [0.2126, 0.7152, 0.0722]
    """
    columns = np.ascontiguousarray(xy_to_xyz(primaries_xy).T)
    return columns * np.linalg.solve(columns, np.asarray(white_xyz, dtype=np.float64))


def chromatic_adaptation_matrix(
    source_white: np.ndarray, target_white: np.ndarray, cone_response: np.ndarray | tuple = BRADFORD
) -> np.ndarray:
    """The von Kries-type matrix adapting XYZ seen under ``source_white`` to ``target_white``.

    M⁻¹ · diag(ρ_t / ρ_s) · M, with ρ = M · white the cone responses of each
    white; with the Bradford matrix (the default) this is the "linear
    Bradford" transform of ICC.1 Annex E, LittleCMS and colour-science's
    ``matrix_chromatic_adaptation_VonKries``.

    Parameters
    ----------
    source_white, target_white : array_like
        ``(3,)`` XYZ of the two whites.
    cone_response : array_like
        ``(3, 3)`` cone-response matrix M (:data:`BRADFORD`, von Kries's
        Hunt-Pointer-Estévez fundamentals, the identity for XYZ scaling...).

    Returns
    -------
    numpy.ndarray
        ``(3, 3)`` float64, applied as ``matrix @ xyz``.

    References
    ----------
    K. M. Lam, *Metamerism and Colour Constancy*, PhD thesis, University of
    Bradford, 1985; ICC.1:2010 Annex E.

    Examples
    --------
    >>> icc_d50 = [0.9642, 1.0, 0.8249]  # the ICC profile connection space white
    >>> chromatic_adaptation_matrix(xy_to_xyz(D65_XY), icc_d50).round(4)
    array([[ 1.0479,  0.0229, -0.0502],
           [ 0.0296,  0.9905, -0.0171],
           [-0.0093,  0.0151,  0.7517]])
    """
    m = np.asarray(cone_response, dtype=np.float64)
    ratio = (m @ np.asarray(target_white)) / (m @ np.asarray(source_white))
    return np.linalg.inv(m) @ np.diag(ratio) @ m


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """Decode sRGB values to linear light (the sRGB decoding curve), any range.

    C_lin = C / 12.92 for C <= 0.04045, else ((C + 0.055) / 1.055) ** 2.4;
    below 0 the linear segment continues, above 1 the power curve, and NaN
    propagates (:func:`boda.color.srgb_to_linear` is this with its input
    checked and converted).

    Parameters
    ----------
    c : numpy.ndarray
        float32 or float64 encoded values, any shape.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype (a 0-d array for 0-d input).

    References
    ----------
    IEC 61966-2-1:1999, *Multimedia systems and equipment - Colour measurement
    and management - Part 2-1: Default RGB colour space - sRGB*.

    Examples
    --------
    >>> srgb_to_linear(np.array([0.0, 0.04045, 0.5, 1.0])).round(6).tolist()
    [0.0, 0.003131, 0.214041, 1.0]
    """
    # In-place power branch, then the linear branch copied over where it applies
    # (fewer temporaries than np.where; matters for whole images).
    out = np.asarray(np.add(c, 0.055, dtype=c.dtype))  # asarray: 0-d input gives a scalar
    out /= 1.055
    with np.errstate(invalid="ignore"):
        np.power(out, 2.4, out=out)
    np.copyto(out, c / 12.92, where=c <= _THRESH_ENCODED)
    return out


def linear_to_srgb(c: np.ndarray, *, clip: bool = False) -> np.ndarray:
    """Encode linear-light values to sRGB (the inverse of :func:`srgb_to_linear`), any range.

    C = 12.92 C_lin for C_lin <= 0.0031308, else 1.055 C_lin ** (1/2.4) - 0.055,
    extended beyond ``[0, 1]`` like :func:`srgb_to_linear` so that round trips
    hold for out-of-gamut colours (:func:`boda.color.linear_to_srgb` is this
    with its input checked and converted).

    Parameters
    ----------
    c : numpy.ndarray
        float32 or float64 linear values, any shape.
    clip : bool
        Clip the result to ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype.  In float32, linear 1 encodes to 0.99999994 (the
        rounding of 1.055 - 0.055); :func:`srgb_encode` keeps it at 1.

    References
    ----------
    IEC 61966-2-1:1999, *Default RGB colour space - sRGB*.

    Examples
    --------
    >>> linear_to_srgb(np.array([0.0, 0.0031308, 0.214041140, 1.0])).round(6).tolist()
    [0.0, 0.04045, 0.5, 1.0]
    """
    with np.errstate(invalid="ignore"):
        out = np.asarray(np.power(c, 1 / 2.4, dtype=c.dtype))
    out *= 1.055
    out -= 0.055
    np.copyto(out, c * 12.92, where=c <= _THRESH_LINEAR)
    return np.clip(out, 0, 1, out=out) if clip else out


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Encode linear pixels to sRGB for an image: clipped to ``[0, 1]`` first, float32.

    The same curve as :func:`linear_to_srgb`, computed as
    ``p + 0.055 (p - 1)`` with ``p = C_lin ** (1/2.4)`` instead of
    ``1.055 p - 0.055``, so that linear 1 stays exactly 1.0 in float32 and a
    white pixel of a converted file reads back as 255 / 65535.  This is what
    :func:`boda.io.read_image` applies after converting a colour profile;
    elsewhere the two forms differ by one float32 step at most (1.2e-7).

    Parameters
    ----------
    linear : numpy.ndarray
        Linear values, any shape (float32 pixels, as the reader has them).

    Returns
    -------
    numpy.ndarray
        float32, same shape, in ``[0, 1]``.

    References
    ----------
    IEC 61966-2-1:1999, *Default RGB colour space - sRGB*.

    Examples
    --------
    >>> pixels = np.array([-0.5, 0.0031308, 0.5, 2.0], np.float32)
    >>> srgb_encode(pixels).astype(float).round(6).tolist()
    [0.0, 0.04045, 0.735357, 1.0]
    >>> float(srgb_encode(np.float32(1.0))), float(linear_to_srgb(np.float32(1.0)))
    (1.0, 0.9999999403953552)
    """
    if isinstance(linear, np.ndarray) and linear.dtype == np.float32 and linear.ndim:
        # The reader's case: in chunks, in place, the same float32 operations
        # (bit-identical), with temporaries of a few MB instead of a few images.
        out = np.empty(linear.shape, np.float32)
        flat_in, flat_out = linear.reshape(-1), out.reshape(-1)
        for start in range(0, flat_in.size, _ENCODE_CHUNK):
            chunk = slice(start, start + _ENCODE_CHUNK)
            _srgb_encode_float32(flat_in[chunk], flat_out[chunk])
        return out
    linear = np.clip(linear, 0.0, 1.0)
    powered = np.power(np.maximum(linear, np.float32(_THRESH_LINEAR)), np.float32(1 / 2.4))
    # 1.055 p - 0.055 written as p + 0.055 (p - 1): white stays exactly 1 in float32
    high = powered - np.float32(1.0)
    high *= np.float32(0.055)
    high += powered
    return np.where(linear <= _THRESH_LINEAR, linear * np.float32(12.92), high).astype(np.float32)


#: Values per chunk of :func:`srgb_encode` on float32 (1 MB temporaries, cache-sized).
_ENCODE_CHUNK = 1 << 18


def _srgb_encode_float32(linear: np.ndarray, out: np.ndarray) -> None:
    """:func:`srgb_encode` of 1-D float32 ``linear`` written into ``out``: the same
    operations in the same order (so the same floats), with ``out`` as the work buffer."""
    np.clip(linear, 0.0, 1.0, out=out)
    low = out <= _THRESH_LINEAR
    scaled = out[low] * np.float32(12.92)
    np.maximum(out, np.float32(_THRESH_LINEAR), out=out)
    np.power(out, np.float32(1 / 2.4), out=out)
    # 1.055 p - 0.055 written as p + 0.055 (p - 1): white stays exactly 1 in float32
    high = out - np.float32(1.0)
    high *= np.float32(0.055)
    out += high
    out[low] = scaled
