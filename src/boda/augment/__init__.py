"""Seeded image augmentations for numpy ``(H, W, C)`` and torch ``(B, C, H, W)`` images.

Every function takes either form with the same parameters. Geometric ops return
``(image, Transform)``: :meth:`Transform.points`, :meth:`Transform.boxes` and
:meth:`Transform.mask` move keypoints, boxes and masks the same way. Random ops
take ``seed`` (an int or a ``numpy.random.Generator``) and return what they drew.

- Geometric: :func:`hflip`, :func:`vflip`, :func:`rotate`, :func:`affine`
  (rotation/scale/shear/translation), :func:`crop`, :func:`resized_crop`,
  :func:`random_resized_crop`, :func:`warp_affine` / :func:`warp_affine_torch`.
- Photometric: :func:`adjust_brightness`, :func:`adjust_contrast`,
  :func:`adjust_saturation`, :func:`adjust_hue`, :func:`color_jitter`,
  :func:`grayscale`, :func:`gaussian_blur`, :func:`solarize`, :func:`posterize`,
  :func:`equalize`, :func:`autocontrast`, :func:`adjust_sharpness`.
- Batch mixing: :func:`cutout`, :func:`mixup`, :func:`cutmix`.
- Policies: :func:`rand_augment`, :func:`simclr_views`, :func:`moco_v2_views`,
  :func:`random_view` (a batch with per-image draws).
"""

from boda.augment._color import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    adjust_sharpness,
    autocontrast,
    color_jitter,
    equalize,
    gaussian_blur,
    gaussian_kernel1d,
    grayscale,
    posterize,
    solarize,
)
from boda.augment._geometric import (
    Transform,
    affine,
    affine_matrix,
    crop,
    hflip,
    random_resized_crop,
    random_resized_crop_params,
    resized_crop,
    rotate,
    vflip,
    warp_affine,
    warp_affine_torch,
)
from boda.augment._mix import cutmix, cutout, mixup
from boda.augment._recipes import (
    RANDAUGMENT_OPS,
    moco_v2_views,
    rand_augment,
    random_view,
    simclr_views,
)

__all__ = [
    "RANDAUGMENT_OPS",
    "Transform",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "adjust_sharpness",
    "affine",
    "affine_matrix",
    "autocontrast",
    "color_jitter",
    "crop",
    "cutmix",
    "cutout",
    "equalize",
    "gaussian_blur",
    "gaussian_kernel1d",
    "grayscale",
    "hflip",
    "mixup",
    "moco_v2_views",
    "posterize",
    "rand_augment",
    "random_resized_crop",
    "random_resized_crop_params",
    "random_view",
    "resized_crop",
    "rotate",
    "simclr_views",
    "solarize",
    "vflip",
    "warp_affine",
    "warp_affine_torch",
]
