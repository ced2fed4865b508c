"""Spectra to colour: SPD integration, the spectral locus and the Planckian locus."""

from __future__ import annotations

import math

import numpy as np

from boda.color._datasets import cmfs_cie1931_xyz
from boda.errors import InvalidParameterError

__all__ = [
    "spectrum_to_xyz",
    "wavelength_to_xy",
    "spectral_locus",
    "blackbody_spd",
    "planckian_xy",
]

# Second radiation constant c2 = hc/k in m·K, the value CIE 015:2018 prescribes
# (ITS-90) for Planckian radiators; c1 cancels in chromaticity.
_C1 = 3.741771e-16
_C2 = 1.4388e-2


def _cmfs_at(wavelengths: np.ndarray) -> np.ndarray:
    cm = cmfs_cie1931_xyz()
    # Linear interpolation of the 1 nm table; zero outside 360–830 nm.
    return np.stack(
        [np.interp(wavelengths, cm.wavelengths, cm.values[:, i], left=0.0, right=0.0)
         for i in range(3)],
        axis=-1,
    )  # fmt: skip


def _numbers(values: object, name: str, what: str) -> np.ndarray:
    """``values`` as float64, or an error naming the argument (not numpy's words)."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        shown = repr(values)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise InvalidParameterError(f"{name} must be {what}, got {shown}") from None


def _check_spectrum(
    wavelengths: object, values: object, name: str = "values"
) -> tuple[np.ndarray, np.ndarray]:
    w = _numbers(wavelengths, "wavelengths", "a 1-D array of wavelengths in nm")
    v = _numbers(values, name, "an array of spectral values, one per wavelength")
    if w.ndim != 1 or w.size < 2:
        raise InvalidParameterError(
            f"wavelengths must be a 1-D array of at least 2 values in nm, got shape {w.shape}"
        )
    if not np.isfinite(w).all():
        raise InvalidParameterError("wavelengths must be finite numbers (nm), got NaN or inf")
    if np.any(np.diff(w) <= 0):
        raise InvalidParameterError("wavelengths must be strictly increasing (nm)")
    if w[-1] < 360.0 or w[0] > 830.0:
        raise InvalidParameterError(
            f"wavelengths {w[0]:g}–{w[-1]:g} miss the CIE 1931 table (360–830 nm), so every "
            "colour would be black: give them in nm (from micrometres multiply by 1000, "
            "from metres by 1e9)"
        )
    if v.shape[-1:] != w.shape:
        raise InvalidParameterError(
            f"spectral values must have the wavelengths on their last axis: {name} {v.shape}, "
            f"wavelengths {w.shape}"
        )
    return w, v


def spectrum_to_xyz(
    wavelengths: np.ndarray,
    values: np.ndarray,
    *,
    illuminant: np.ndarray | None = None,
    normalize: bool = True,
) -> np.ndarray:
    """Integrate a spectrum against the CIE 1931 2° colour-matching functions.

    X = k ∫ S(λ) R(λ) x̄(λ) dλ (likewise Y, Z), by the trapezoidal rule on the
    given wavelengths, with the CMFs linearly interpolated (zero outside
    360–830 nm).

    Parameters
    ----------
    wavelengths : array_like
        ``(N,)`` strictly increasing wavelengths in nm.
    values : array_like
        ``(..., N)`` spectral values.  Without ``illuminant`` they are a light
        source's spectral power distribution; with it, reflectance or
        transmittance factors.
    illuminant : array_like, optional
        ``(N,)`` SPD of the light the sample is seen under, on the same
        wavelengths.  Not a name: boda ships no illuminant spectra (for E use
        ``np.ones_like(wavelengths)``, for A ``blackbody_spd(wavelengths, 2856.0)``,
        for D65 a table of CIE 015:2018).
    normalize : bool
        With ``illuminant``: k makes the perfect reflector Y = 1.  Without:
        k makes the source itself Y = 1.  ``False`` gives k = 1 (raw integral).

    Returns
    -------
    numpy.ndarray
        ``(..., 3)`` float64 XYZ.  A source spectrum with no power in 360–830 nm
        gives NaN when normalised.

    Raises
    ------
    InvalidParameterError
        Wavelengths not strictly increasing, not finite or outside 360–830 nm
        altogether (given in µm, say); values or illuminant of the wrong length
        or not numbers (an illuminant name); an illuminant with no power in
        360–830 nm.

    References
    ----------
    CIE 015:2018, eq. 7.1–7.2.

    Examples
    --------
    >>> w = np.arange(360.0, 831.0)
    >>> xyz = spectrum_to_xyz(w, np.ones_like(w))       # equal-energy white E
    >>> (xyz / xyz.sum()).round(3).tolist()
    [0.333, 0.333, 0.333]
    """
    w, v = _check_spectrum(wavelengths, values)
    cm = _cmfs_at(w)
    if illuminant is not None:
        if isinstance(illuminant, str):
            raise InvalidParameterError(
                f"illuminant must be the light's SPD on the same wavelengths, an array of "
                f"shape ({w.size},), not a name ({illuminant!r}): boda ships no illuminant "
                "spectra.  For E use np.ones_like(wavelengths), for A "
                "blackbody_spd(wavelengths, 2856.0), for D65 a table of CIE 015:2018; "
                f"whitepoint({illuminant!r}) gives the white's XYZ"
            )
        _, s = _check_spectrum(w, illuminant, "illuminant")
        if s.ndim != 1:
            raise InvalidParameterError("illuminant must be a 1-D SPD on the same wavelengths")
        cm = cm * s[:, None]
    # trapezoid weights so that sum(weights * f) = ∫ f dλ
    dw = np.diff(w)
    weights = np.zeros_like(w)
    weights[:-1] += dw / 2
    weights[1:] += dw / 2
    wcm = cm * weights[:, None]
    xyz = v @ wcm
    if normalize:
        ref = wcm[:, 1].sum() if illuminant is not None else xyz[..., 1:2]
        if illuminant is not None and not ref > 0:
            raise InvalidParameterError(
                "the illuminant has no power in 360–830 nm (its Y is 0 or not a number), so "
                "nothing can be normalised to it; give its SPD, or normalize=False"
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            xyz = xyz / ref
    return xyz


def wavelength_to_xy(wavelength: np.ndarray | float) -> np.ndarray:
    """Chromaticity (x, y) of monochromatic light, a point on the spectral locus.

    Parameters
    ----------
    wavelength : float or array_like
        Wavelength(s) in nm, within 360–830.

    Returns
    -------
    numpy.ndarray
        ``(..., 2)`` float64.

    Raises
    ------
    InvalidParameterError
        A wavelength outside the 360–830 nm table.

    Examples
    --------
    >>> wavelength_to_xy(520.0).round(4).tolist()
    [0.0743, 0.8338]
    """
    w = _numbers(wavelength, "wavelength", "a number or an array of numbers (nm)")
    if np.any(~np.isfinite(w)) or np.any((w < 360) | (w > 830)):
        raise InvalidParameterError("wavelengths must be within 360–830 nm (CIE 1931 table)")
    xyz = _cmfs_at(w.ravel()).reshape(*w.shape, 3)
    return xyz[..., :2] / xyz.sum(axis=-1, keepdims=True)


def spectral_locus(start: float = 380.0, stop: float = 700.0, step: float = 1.0):
    """The spectral locus: ``(wavelengths, xy)`` from ``start`` to ``stop`` nm.

    The default range stops at 700 nm, past which the CIE 1931 chromaticity
    stays (within 1e-4) at the red end; close the horseshoe with the line of
    purples from the last point back to the first.

    Raises
    ------
    InvalidParameterError
        ``step`` not a positive number, or a wavelength outside 360–830 nm.
    """
    if not (isinstance(step, int | float | np.integer | np.floating) and 0 < step < np.inf):
        raise InvalidParameterError(f"step must be a positive number of nm, got {step!r}")
    numbers = int | float | np.integer | np.floating
    if not (
        isinstance(start, numbers) and isinstance(stop, numbers)
        and np.isfinite(start) and np.isfinite(stop) and start <= stop
    ):  # fmt: skip
        raise InvalidParameterError(
            f"start and stop must be wavelengths in nm (360–830) with start <= stop, got "
            f"{start!r}, {stop!r}"
        )
    w = np.arange(start, stop + step / 2, step, dtype=np.float64)
    return w, wavelength_to_xy(w)


def blackbody_spd(wavelengths: np.ndarray, temperature: float | np.ndarray) -> np.ndarray:
    """Planck's law: spectral radiant exitance of a black body, W·m⁻²·m⁻¹ (per metre).

    M(λ, T) = c1 λ⁻⁵ / (exp(c2 / (λ T)) − 1), c1 = 3.741771e-16 W·m²,
    c2 = 1.4388e-2 m·K (CIE 015:2018 values).

    Parameters
    ----------
    wavelengths : array_like
        ``(N,)`` in nm.
    temperature : float or array_like
        Kelvin, ``(...)``; the result is ``(..., N)``.
    """
    return np.exp(_log_planck(wavelengths, temperature))


def _log_planck(wavelengths: np.ndarray, temperature: float | np.ndarray) -> np.ndarray:
    """``log`` of Planck's law ``c1 / (lam^5 (exp(c2 / (lam t)) - 1))`` (CIE 015:2018
    eq. 7.1), ``(..., N)`` for wavelengths in nm, arguments checked; finite where
    ``exp`` overflows (short wavelengths, a cold body):
    ``log(exp(x) - 1) = x + log(1 - exp(-x))``."""
    lam = _numbers(wavelengths, "wavelengths", "an array of wavelengths in nm") * 1e-9
    t = _numbers(temperature, "temperature", "a number or an array of numbers (kelvin)")[..., None]
    if np.any(t <= 0):
        raise InvalidParameterError("temperature must be positive (kelvin)")
    if not np.all(lam > 0):
        raise InvalidParameterError("wavelengths must be positive numbers (nm)")
    x = _C2 / (lam * t)
    return math.log(_C1) - 5.0 * np.log(lam) - x - np.log(-np.expm1(-x))


def planckian_xy(temperature: float | np.ndarray) -> np.ndarray:
    """Chromaticity (x, y) of a black body at ``temperature`` kelvin (the Planckian locus).

    Planck's law integrated against the CIE 1931 2° CMFs at 1 nm over
    360–830 nm.

    Parameters
    ----------
    temperature : float or array_like
        Kelvin, ``(...)``.

    Returns
    -------
    numpy.ndarray
        ``(..., 2)``.

    References
    ----------
    CIE 015:2018, section 9.5 and eq. 7.1.

    Examples
    --------
    >>> planckian_xy(2856.0).round(4).tolist()   # CIE illuminant A
    [0.4475, 0.4074]
    """
    cm = cmfs_cie1931_xyz()
    # Scaled by its peak in the range before exp: a body of a few hundred kelvin
    # or less radiates ~1e-300 here or nothing at all in float64, but its colour is
    # still that of its long-wavelength end (it was NaN, 0 / 0).
    log_spd = _log_planck(cm.wavelengths, temperature)
    xyz = np.exp(log_spd - log_spd.max(axis=-1, keepdims=True)) @ cm.values
    return xyz[..., :2] / xyz.sum(axis=-1, keepdims=True)
