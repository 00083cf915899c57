"""Small graphs shared by tests."""

from __future__ import annotations

import torch
from torch_geometric.data import Data

from nasforge.tasks.node import planted_partition


def sparse_features(*, nodes: int, features: int, seed: int, **graph: float) -> Data:
    """A planted-partition graph whose features are mostly zeros (about 10% kept), as a bag
    of words is, so that the models take them as a sparse tensor. ``graph``: more settings
    of :func:`~nasforge.tasks.node.planted_partition`."""
    data = planted_partition(nodes=nodes, features=features, seed=seed, **graph)  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(seed)
    data.x = data.x * (torch.rand(data.x.shape, generator=gen) < 0.1)
    return data
