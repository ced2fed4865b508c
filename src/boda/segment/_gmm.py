"""Full-covariance Gaussian mixtures for GrabCut's colour models (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ColorGMM", "kmeans_labels", "orchard_bouman_labels", "quadratic_features"]

#: Added to a covariance diagonal (in 0..255 colour units) so that a component
#: fitted on a flat patch stays invertible; OpenCV's grabcut uses the same value.
COV_RIDGE = 0.01

#: Samples used to seed and run k-means; larger sets are randomly subsampled
#: (the centres barely move, the cost drops from O(N) to O(1) per iteration).
_KMEANS_SAMPLES = 20000


def kmeans_labels(
    samples: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 10
) -> np.ndarray:
    """Cluster ``samples`` ``(N, d)`` into ``k`` groups (k-means++ seeds, Lloyd steps).

    Returns the label of every sample, ``(N,)`` int.  The centres are fitted on
    at most ``_KMEANS_SAMPLES`` random samples, then every sample gets the label
    of its nearest centre.
    """
    n = samples.shape[0]
    fit = samples if n <= _KMEANS_SAMPLES else samples[rng.choice(n, _KMEANS_SAMPLES, False)]
    k = min(k, fit.shape[0])
    # k-means++ seeding (Arthur & Vassilvitskii 2007).
    centres = [fit[rng.integers(fit.shape[0])]]
    d2 = ((fit - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        idx = rng.choice(fit.shape[0], p=d2 / total) if total > 0 else rng.integers(fit.shape[0])
        centres.append(fit[idx])
        d2 = np.minimum(d2, ((fit - fit[idx]) ** 2).sum(1))
    c = np.stack(centres)
    for _ in range(iterations):
        labels = _nearest(fit, c)
        new = c.copy()
        for j in range(k):
            members = fit[labels == j]
            if members.shape[0]:
                new[j] = members.mean(0)
        if np.allclose(new, c):
            break
        c = new
    return _nearest(samples, c)


def orchard_bouman_labels(samples: np.ndarray, k: int) -> np.ndarray:
    """Split ``samples`` ``(N, d)`` into ``k`` clusters by Orchard & Bouman's binary splitting.

    Starting from one cluster, the cluster whose covariance has the largest
    eigenvalue is cut in two by the plane through its mean normal to that
    eigenvector, until there are ``k`` clusters (or no cluster has any spread
    left).  Deterministic: no random seeds, so the colour models and the cut do
    not change from run to run.  Returns the label of every sample, ``(N,)`` int.

    References
    ----------
    M. T. Orchard, C. A. Bouman, "Color quantization of images", IEEE Trans.
    Signal Processing 39(12), 1991.  Used to start the colour mixtures of
    Bayesian matting (Chuang et al., CVPR 2001) and of GrabCut implementations
    (Talbot & Xu, "Implementing GrabCut", 2006).
    """
    x = np.asarray(samples, dtype=np.float64)
    labels = np.zeros(x.shape[0], dtype=np.intp)
    members = [np.arange(x.shape[0])]
    splits = [_principal_split(x[members[0]])]
    while len(members) < k:
        j = int(np.argmax([s[0] for s in splits]))
        spread, side = splits[j]
        if not spread > 0:
            break  # every cluster is a single colour
        idx = members[j]
        members[j], new = idx[~side], idx[side]
        labels[new] = len(members)
        members.append(new)
        splits[j] = _principal_split(x[members[j]])
        splits.append(_principal_split(x[new]))
    return labels


def _principal_split(x: np.ndarray) -> tuple[float, np.ndarray]:
    """Largest covariance eigenvalue of ``x`` and which samples lie beyond the mean along it."""
    if x.shape[0] < 2:
        return 0.0, np.zeros(x.shape[0], bool)
    centred = x - x.mean(0)
    vals, vecs = np.linalg.eigh(centred.T @ centred / x.shape[0])
    side = centred @ vecs[:, -1] > 0
    if side.all() or not side.any():
        return 0.0, side
    return float(vals[-1]), side


def _nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = (x * x).sum(1)[:, None] - 2.0 * x @ centres.T + (centres * centres).sum(1)[None, :]
    return np.argmin(d, axis=1)


@dataclass
class ColorGMM:
    """A Gaussian mixture over colours, each component with a full covariance.

    Attributes
    ----------
    weights : numpy.ndarray
        ``(K,)`` mixing weights pi_k (0 for a component that lost all samples).
    means : numpy.ndarray
        ``(K, d)`` component means.
    inv_covs : numpy.ndarray
        ``(K, d, d)`` inverse covariances.
    log_dets : numpy.ndarray
        ``(K,)`` log-determinants of the covariances.
    """

    weights: np.ndarray
    means: np.ndarray
    inv_covs: np.ndarray
    log_dets: np.ndarray

    @classmethod
    def fit(cls, samples: np.ndarray, labels: np.ndarray, k: int) -> ColorGMM:
        """Maximum-likelihood parameters given each sample's component (GrabCut step 2)."""
        return cls.from_features(quadratic_features(samples), labels, k)

    @classmethod
    def from_features(cls, features: np.ndarray, labels: np.ndarray, k: int) -> ColorGMM:
        """:meth:`fit` from :func:`quadratic_features`; samples labelled ``k`` are left out.

        The per-component sums of ``[z_i z_j, z_i, 1]`` are the sufficient
        statistics: counts, means and covariances follow without copying the
        samples of each component.
        """
        n_feat = features.shape[0]
        d = int(round((np.sqrt(8 * n_feat + 1) - 3) / 2))  # n_feat = d(d+1)/2 + d + 1
        q = d * (d + 1) // 2
        sums = np.stack([np.bincount(labels, f, minlength=k + 1)[:k] for f in features], 1)
        counts = sums[:, -1]
        weights = counts / max(counts.sum(), 1.0)
        means = np.zeros((k, d))
        inv_covs = np.repeat(np.eye(d)[None], k, 0)
        log_dets = np.zeros(k)
        iu = np.triu_indices(d)
        for j in np.nonzero(counts)[0]:
            mu = sums[j, q : q + d] / counts[j]
            second = np.zeros((d, d))
            second[iu] = sums[j, :q] / counts[j]
            second = second + np.triu(second, 1).T
            cov = second - np.outer(mu, mu) + COV_RIDGE * np.eye(d)
            means[j] = mu
            inv_covs[j] = np.linalg.inv(cov)
            log_dets[j] = np.linalg.slogdet(cov)[1]
        return cls(weights, means, inv_covs, log_dets)

    def component_costs(self, features: np.ndarray) -> np.ndarray:
        """``-log(pi_k N(z | mu_k, Sigma_k))`` for every component and sample, ``(K, N)``.

        ``features`` is :func:`quadratic_features` of the samples: the quadratic
        form of each component is linear in them, so all components cost one
        matrix product.  Components with zero weight cost ``inf``.
        """
        k, d = self.means.shape
        iu = np.triu_indices(d)
        coef = np.empty((features.shape[0], k))
        for j in range(k):
            p = self.inv_covs[j]
            quad = (p + p.T - np.diag(np.diag(p)))[iu]  # off-diagonal terms appear twice
            pm = p @ self.means[j]
            coef[: iu[0].size, j] = 0.5 * quad
            coef[iu[0].size : -1, j] = -pm
            coef[-1, j] = 0.5 * (self.means[j] @ pm + self.log_dets[j] + d * np.log(2 * np.pi))
        with np.errstate(divide="ignore"):
            coef[-1] -= np.log(self.weights)
        alive = self.weights > 0
        coef[:, ~alive] = 0.0
        # (K, N) so that the min/argmin over components runs along contiguous rows.
        out = coef.T @ features
        out[~alive] = np.inf
        return out


def quadratic_features(samples: np.ndarray) -> np.ndarray:
    """``[z_i z_j (i <= j), z_i, 1]`` of each sample, ``(d(d+1)/2 + d + 1, N)`` float64.

    ``(z - mu)^T P (z - mu)`` is a linear function of these, which turns the
    log-likelihood of every component into one matrix product.
    """
    x = np.asarray(samples, dtype=np.float64)
    iu = np.triu_indices(x.shape[1])
    # Feature-major so that each feature is a contiguous row (bincount, matmul).
    xt = np.ascontiguousarray(x.T)
    return np.concatenate([xt[iu[0]] * xt[iu[1]], xt, np.ones((1, x.shape[0]))], axis=0)
