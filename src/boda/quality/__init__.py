"""No-reference image quality: blur, exposure, information; MSE/PSNR/SSIM with a reference.

The scan calls :func:`analyze` on images decoded to :data:`ANALYSIS_MAX_SIDE`;
:func:`sharpness` is the calibrated blur verdict, and the individual measures
are public for study and comparison.  Blur measures are evaluated at a 640 px
reference scale so that one threshold serves every image size (see
``docs/quality.md``).
"""

from boda.quality._analyze import ANALYSIS_MAX_SIDE, QualityReport, QualityThresholds, analyze
from boda.quality._blur import (
    blur_effect,
    fft_high_frequency,
    laplacian_variance,
    tenengrad,
    wavelet_energy,
)
from boda.quality._exposure import ExposureStats, entropy, exposure_stats
from boda.quality._reference import compare, mse, psnr, ssim
from boda.quality._scale import REFERENCE_SIDE, to_reference_gray
from boda.quality._sharpness import (
    BLUR_THRESHOLD,
    SharpnessResult,
    anisotropy_weight,
    detail_ratio,
    noise_variance,
    sharpness,
    sharpness_score,
)
from boda.quality._tong import TONG_EDGE_THRESHOLD, TongResult, tong_blur

__all__ = [
    "ANALYSIS_MAX_SIDE",
    "BLUR_THRESHOLD",
    "REFERENCE_SIDE",
    "TONG_EDGE_THRESHOLD",
    "ExposureStats",
    "QualityReport",
    "QualityThresholds",
    "SharpnessResult",
    "TongResult",
    "analyze",
    "anisotropy_weight",
    "blur_effect",
    "compare",
    "detail_ratio",
    "entropy",
    "exposure_stats",
    "fft_high_frequency",
    "laplacian_variance",
    "mse",
    "noise_variance",
    "psnr",
    "sharpness",
    "sharpness_score",
    "ssim",
    "tenengrad",
    "to_reference_gray",
    "tong_blur",
    "wavelet_energy",
]
