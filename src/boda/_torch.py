"""The guard in front of boda's PyTorch features: a clear error when torch is missing.

``boda.nn``, ``boda.explain``, ``boda.detect`` and ``boda.models`` import this
module first, so ``import boda.explain`` (and ``boda explain``) without PyTorch
says which extra to install instead of ending in a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

from boda.core.lazy import require_torch

require_torch("this part of boda (models, explanations, detection, training losses)")
