"""Which labels does a model's feature space disagree with?  The k-nearest-neighbour
vote of Bahri, Jiang & Gupta (2020), numpy only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from boda.errors import InvalidParameterError

#: Rows of similarities computed at once (rows x N float64 in memory).
_CHUNK_ENTRIES = 8_000_000


@dataclass(frozen=True)
class NeighbourVote:
    """The vote of one item's ``k`` nearest labelled neighbours.

    Attributes
    ----------
    agreement : float
        Share of the neighbours that carry the item's own label (NaN for an
        unlabelled item).
    majority : int
        The label most of them carry (ties: the one whose nearest holder is
        nearest).
    suspect : bool
        The item is labelled and another label has more votes than its own: a
        candidate label error (Bahri et al. 2020 remove these; a tie with its
        own label does not count).
    """

    agreement: float
    majority: int
    suspect: bool


def _normalised(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def neighbour_votes(
    vectors: np.ndarray, labels: Sequence[int | None], k: int = 10, *, metric: str = "cosine"
) -> list[NeighbourVote]:
    """For each item, how its ``k`` nearest labelled neighbours are labelled.

    Deep k-NN (Bahri, Jiang & Gupta, "Deep k-NN for Noisy Labels", ICML 2020,
    Algorithm 1): in the feature space of a trained model's layer, an example
    whose label differs from the majority label of its ``k`` nearest neighbours
    is likely mislabelled.  Neighbours are the other labelled items (an
    unlabelled item gets a vote but casts none), by cosine similarity or
    Euclidean distance, exactly (chunked brute force; Euclidean distances of
    the rows centred on the labelled items' mean, so a large part all rows
    share does not swamp their differences).

    Parameters
    ----------
    vectors : array_like
        ``(N, D)`` features, one row per item.
    labels : sequence of int or None
        The label of each item (a class index), None for an unlabelled one.
    k : int
        Neighbours that vote (fewer when fewer other items are labelled).
    metric : {"cosine", "euclidean"}
        How near is measured.

    Returns
    -------
    list of NeighbourVote
        One per item, in order.

    Raises
    ------
    InvalidParameterError
        Shapes that disagree, ``k < 1``, an unknown metric, non-finite vectors,
        or fewer than 2 labelled items.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0, 1], [0.1, 1], [0.2, 1], [1, 0.0], [1, 0.1], [1, 0.2]])
    >>> [v.suspect for v in neighbour_votes(x, [0, 0, 1, 1, 1, 1], k=2)]
    [False, False, True, False, False, False]
    """
    # float64: in float32, the similarities of features that share a large common part
    # (all near one direction) differ below its precision, and neighbours come out in
    # the wrong order
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(labels):
        raise InvalidParameterError(
            f"vectors must be (N, D) with one label per row; got shape {x.shape} and "
            f"{len(labels)} labels")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidParameterError(f"k must be a whole number >= 1, got {k!r}")
    if metric not in ("cosine", "euclidean"):
        raise InvalidParameterError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    if not np.isfinite(x).all():
        raise InvalidParameterError("vectors hold NaN or infinite values")
    voters = np.array([i for i, label in enumerate(labels) if label is not None])
    if voters.size < 2:
        raise InvalidParameterError("a neighbour vote needs at least 2 labelled items")
    voter_labels = np.array([labels[i] for i in voters])
    if metric == "cosine":
        x = _normalised(x)
    else:
        # distances do not change when every row moves alike: centred, the expansion
        # |a|^2 - 2ab + |b|^2 below no longer cancels for features that share a large
        # common part (1e4 + 1e-3 noise gave wrong neighbours uncentred)
        x = x - x[voters].mean(axis=0)
    pool = x[voters]
    kk = min(k, voters.size - 1)
    votes: list[NeighbourVote] = []
    step = max(1, _CHUNK_ENTRIES // voters.size)
    for start in range(0, x.shape[0], step):
        rows = x[start:start + step]
        if metric == "cosine":
            near = rows @ pool.T  # larger is nearer
        else:
            near = -(np.square(rows).sum(1)[:, None] - 2 * rows @ pool.T
                     + np.square(pool).sum(1)[None, :])
        # an item is not its own neighbour
        own = np.searchsorted(voters, np.arange(start, start + rows.shape[0]))
        is_voter = (own < voters.size) & (voters[np.minimum(own, voters.size - 1)]
                                          == np.arange(start, start + rows.shape[0]))
        near[np.flatnonzero(is_voter), own[is_voter]] = -np.inf
        # kk < the pool, and an item's own column is -inf: never among its kk nearest
        top = np.argpartition(-near, kk - 1, axis=1)[:, :kk]
        order = np.take_along_axis(near, top, axis=1).argsort(axis=1, kind="stable")[:, ::-1]
        top = np.take_along_axis(top, order, axis=1)  # nearest first
        for r, neighbours in enumerate(top):
            got = voter_labels[neighbours]
            values, counts = np.unique(got, return_counts=True)
            best = int(counts.max())
            tied = set(values[counts == best].tolist())
            majority = int(next(label for label in got if label in tied))  # nearest of the tied
            label = labels[start + r]
            same = int(np.sum(got == label)) if label is not None else 0
            agreement = same / len(got) if label is not None else float("nan")
            # a tie with its own label is no evidence against it
            suspect = bool(label is not None and same < best)
            votes.append(NeighbourVote(agreement, majority, suspect))
    return votes
