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

Inputs and dtypes
-----------------
- numpy: one image ``(H, W[, C])``; lists and PIL images go through
  :func:`numpy.asarray`. torch: a ``(B, C, H, W)`` batch; a ``(C, H, W)``
  tensor is refused (use ``x[None]``). Empty images are refused.
- Batch mixing takes batches only: numpy ``(N, H, W, C)`` (one image:
  ``img[None]``), torch ``(B, C, H, W)``.
- Photometric ops, the policies and :func:`mixup` convert uint8 / uint16 / bool
  numpy input as :func:`boda.core.image.as_float_image` does (uint8 / 255,
  uint16 / 65535, bool 0/1) and return float32 in ``[0, 1]``, equal to the
  result for the same image given as float32.
- Geometric ops, :func:`cutout` and :func:`cutmix` only move, copy or zero
  pixels: they keep the dtype and its scale (uint8 stays uint8 in 0..255,
  bilinear samples rounded), so masks and label maps can go through them.
  An integer array thus always holds integer-scale values and a float array
  ``[0, 1]`` values: no op mixes the two silently. Convert once up front with
  :func:`~boda.core.image.as_float_image` to work in float32 throughout.
- Tensors follow the same rule: photometric ops, the policies and
  :func:`mixup` turn uint8 / uint16 / bool tensors (``read_image`` output)
  into float32 in ``[0, 1]``; geometric ops keep the tensor's dtype.

Seeding and DataLoader workers
------------------------------
``seed=None`` draws fresh OS entropy on every call: augmentations differ
between workers but no seeding (``torch.manual_seed``, ``np.random.seed``)
makes a run repeat. A ``numpy.random.Generator`` kept on a ``Dataset`` is
*copied* into every ``DataLoader`` worker, so all workers would draw the same
augmentations (for SimCLR / MoCo: duplicate views in a batch). Give each worker
its own generator from torch's per-worker seed, which is distinct per worker,
new every epoch and reproducible with ``torch.manual_seed`` (or the loader's
``generator=``)::

    def seed_worker(worker_id):
        info = torch.utils.data.get_worker_info()
        info.dataset.rng = np.random.default_rng(info.seed)

    loader = DataLoader(dataset, num_workers=4, worker_init_fn=seed_worker)

and draw with ``seed=self.rng`` in ``__getitem__``. The op table
:data:`RANDAUGMENT_OPS` holds plain functions, so datasets that keep ops from it
pickle (the ``spawn`` start method).
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
