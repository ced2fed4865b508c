"""Full-covariance Gaussian mixtures for GrabCut's colour models (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ColorGMM", "kmeans_labels"]

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
        n, d = samples.shape
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        weights = counts / max(n, 1)
        means = np.zeros((k, d))
        inv_covs = np.zeros((k, d, d))
        log_dets = np.zeros(k)
        eye = np.eye(d)
        for j in range(k):
            if counts[j] == 0:
                inv_covs[j] = eye
                continue
            x = samples[labels == j]
            mu = x.mean(0)
            diff = x - mu
            cov = diff.T @ diff / counts[j] + COV_RIDGE * eye
            means[j] = mu
            inv_covs[j] = np.linalg.inv(cov)
            log_dets[j] = np.linalg.slogdet(cov)[1]
        return cls(weights, means, inv_covs, log_dets)

    def component_costs(self, samples: np.ndarray) -> np.ndarray:
        """``-log(pi_k N(z | mu_k, Sigma_k))`` for every sample and component, ``(N, K)``.

        Components with zero weight cost ``inf``.
        """
        n, d = samples.shape
        k = self.weights.shape[0]
        out = np.empty((n, k))
        const = 0.5 * d * np.log(2.0 * np.pi)
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights)
        for j in range(k):
            if self.weights[j] == 0:
                out[:, j] = np.inf
                continue
            diff = samples - self.means[j]
            maha = np.einsum("nd,nd->n", diff @ self.inv_covs[j], diff)
            out[:, j] = 0.5 * maha + (0.5 * self.log_dets[j] + const - log_w[j])
        return out
