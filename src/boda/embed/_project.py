"""Two-dimensional maps of feature vectors: PCA and t-SNE (numpy in, numpy out)."""

from __future__ import annotations

import numbers

import numpy as np

from boda.core.numbers import whole_number
from boda.errors import InvalidParameterError, MissingDependencyError

#: The projections :func:`project` knows.
METHODS = ("pca", "tsne")
#: The largest t-SNE seed (scikit-learn's ``random_state`` is a 32-bit unsigned number).
MAX_SEED = 2**32 - 1


def _check_vectors(vectors: object, least: int) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise InvalidParameterError(
            f"vectors must be a 2-D array (one row per image), got shape {x.shape}")
    if x.shape[0] < least:
        raise InvalidParameterError(
            f"a map needs at least {least} vectors, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise InvalidParameterError("vectors hold NaN or infinite values")
    return x


def pca(vectors: np.ndarray, components: int = 2) -> np.ndarray:
    """Project ``vectors`` on their first principal components.

    The rows are centred and projected on the right singular vectors of the
    largest singular values (Pearson 1901; Jolliffe, *Principal Component
    Analysis*, 2nd ed., 2002, §1.1: the directions of largest variance).  Each
    component's sign is fixed so that its largest loading is positive, so the
    result does not depend on the SVD routine.

    Parameters
    ----------
    vectors : array_like
        ``(N, D)`` feature vectors, ``N >= 2``.
    components : int
        How many components (at most ``min(N, D)``).

    Returns
    -------
    numpy.ndarray
        ``(N, components)`` float64 coordinates.

    Raises
    ------
    InvalidParameterError
        Not a 2-D finite array, fewer than 2 rows, or too many components.

    Examples
    --------
    >>> import numpy as np
    >>> pca(np.array([[0.0, 0.0], [1.0, 0.0], [4.0, 0.1]]), 1).round(2).ravel()
    array([-1.67, -0.67,  2.33])
    """
    x = _check_vectors(vectors, 2)
    if not (whole_number(components) and 1 <= components <= min(x.shape)):
        raise InvalidParameterError(
            f"components must be a whole number between 1 and {min(x.shape)} for "
            f"{x.shape[0]} vectors of {x.shape[1]} values, got {components!r}")
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:components]
    largest = np.abs(axes).argmax(axis=1)
    axes *= np.sign(axes[np.arange(components), largest])[:, None]
    return centred @ axes.T


def tsne_available() -> None:
    """Raise :class:`MissingDependencyError` when scikit-learn (t-SNE) is missing."""
    try:
        import sklearn.manifold  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "scikit-learn", "map", "a t-SNE map (the PCA map does not)"
        ) from None


def tsne(vectors: np.ndarray, *, perplexity: float = 30.0, seed: int = 0,
         threads: int | None = None) -> np.ndarray:
    """A two-dimensional t-SNE map of ``vectors`` (van der Maaten & Hinton 2008).

    Neighbours in feature space stay neighbours on the map: the similarities
    ``p_ij`` (Gaussian kernels whose widths give each point ``perplexity``
    effective neighbours, eq. 1 and the symmetrised ``p_ij`` of §3.1) are
    matched by Student-t similarities ``q_ij`` on the map (eq. 4) by minimising
    KL(P‖Q) (eq. 2).  This calls scikit-learn's Barnes-Hut implementation (van
    der Maaten 2014) with its defaults (PCA start, learning rate
    ``max(N / 48, 50)``, 1 000 iterations), seeded; distances between maps are not meaningful, only
    who sits near whom.

    Parameters
    ----------
    vectors : array_like
        ``(N, D)`` feature vectors, ``N >= 4``.
    perplexity : float
        Effective number of neighbours; lowered to ``(N - 1) / 3`` for small
        ``N`` (t-SNE needs ``perplexity < N``).
    seed : int
        Seed of the optimisation, 0 to ``2**32 - 1``: the same seed gives the
        same map.
    threads : int or None
        CPU threads of the optimisation (OpenMP); None: the libraries' default.
        On a busy machine one thread can be several times faster than all.

    Returns
    -------
    numpy.ndarray
        ``(N, 2)`` float64 coordinates (all zeros when the rows are all the same,
        as :func:`pca` gives them).

    Raises
    ------
    InvalidParameterError
        Not a 2-D finite array, fewer than 4 rows, a perplexity that is not
        positive, or a seed outside 0 to ``2**32 - 1``.
    MissingDependencyError
        scikit-learn is not installed (``pip install 'boda[map]'``).

    References
    ----------
    L. van der Maaten and G. Hinton, "Visualizing Data using t-SNE", JMLR 9,
    2008.  L. van der Maaten, "Accelerating t-SNE using Tree-Based Algorithms",
    JMLR 15, 2014.
    """
    x = _check_vectors(vectors, 4)
    if not (isinstance(perplexity, numbers.Real) and not isinstance(perplexity, bool)
            and perplexity > 0):
        raise InvalidParameterError(f"perplexity must be a positive number, got {perplexity!r}")
    if not (whole_number(seed) and 0 <= seed <= MAX_SEED):
        raise InvalidParameterError(
            f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    tsne_available()
    if not np.ptp(x, axis=0).any():
        # all rows the same: one spot (scikit-learn's PCA start divides by their zero
        # spread, and its optimisation then crashes the process)
        return np.zeros((x.shape[0], 2))
    from sklearn.manifold import TSNE

    perplexity = min(float(perplexity), (x.shape[0] - 1) / 3)
    model = TSNE(2, perplexity=perplexity, init="pca", learning_rate="auto",
                 random_state=seed)  # fmt: skip
    if threads is None:
        return np.asarray(model.fit_transform(x), dtype=np.float64)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        return np.asarray(model.fit_transform(x), dtype=np.float64)


def project(vectors: np.ndarray, method: str = "tsne", *, seed: int = 0,
            perplexity: float = 30.0, threads: int | None = None) -> np.ndarray:
    """``(N, 2)`` map coordinates of ``vectors`` by ``method`` (:func:`pca` or
    :func:`tsne`, with its ``seed``, ``perplexity`` and ``threads``); a missing
    scikit-learn is said, never replaced by PCA silently."""
    if method not in METHODS:
        raise InvalidParameterError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "pca":
        return pca(vectors, 2)
    return tsne(vectors, perplexity=perplexity, seed=seed, threads=threads)
