"""Maps and neighbourhoods of feature vectors (numpy only).

- :func:`pca`, :func:`tsne`, :func:`project`: two-dimensional maps of the
  features of a model's layer (:class:`boda.explain.FeatureIndex`), so a
  dataset can be looked at as a whole (``boda map``).
- :func:`neighbour_votes`: the labels of each item's nearest neighbours in that
  space, which flag likely label errors (Deep k-NN, Bahri et al. 2020).
"""

from boda.embed._labels import NeighbourVote, neighbour_votes
from boda.embed._project import METHODS, pca, project, tsne

__all__ = ["METHODS", "NeighbourVote", "neighbour_votes", "pca", "project", "tsne"]
