"""Which known tasks a new task resembles, from the architectures measured on both
(landmarking: the new task's scores of a few probe architectures, and of every architecture
evaluated since, ranked against each known task's scores of the same architectures).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MIN_SHARED", "Match", "match_tasks"]

MIN_SHARED = 3
"""Architectures measured on both tasks before their ranking is compared."""


@dataclass(frozen=True)
class Match:
    """How much a known task is like the new one.

    Attributes:
        index: The known task's position in the list given to :func:`match_tasks`.
        rho: Spearman's rank correlation of the two tasks' scores on the shared
            architectures (0 with fewer than :data:`MIN_SHARED`, or with ties only).
        shared: How many architectures both measured.
        weight: Its share in the knowledge-based prediction (the weights sum to 1).
    """

    index: int
    rho: float
    shared: int
    weight: float


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < MIN_SHARED or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    from scipy.stats import rankdata  # scipy.stats takes a while to import: when used

    ra, rb = rankdata(a), rankdata(b)
    rho = float(np.corrcoef(ra, rb)[0, 1])
    return rho if np.isfinite(rho) else 0.0


def match_tasks(
    known: Sequence[Mapping[str, float]], observed: Mapping[str, float], *, power: float = 2.0
) -> list[Match]:
    """Each known task's match with the new task's ``observed`` scores (key -> score).

    A task's weight is its positive rank correlation raised to ``power`` (a sharper choice
    of the most similar); while no task correlates positively, or too few architectures are
    shared, every task weighs the same.
    """
    rhos: list[tuple[float, int]] = []
    for scores in known:
        shared = [k for k in observed if k in scores]
        a = np.array([observed[k] for k in shared], dtype=float)
        b = np.array([scores[k] for k in shared], dtype=float)
        rhos.append((_spearman(a, b), len(shared)))
    raw = np.array([max(rho, 0.0) ** power for rho, _ in rhos])
    weights = raw / raw.sum() if raw.sum() > 0 else np.full(len(rhos), 1.0 / max(len(rhos), 1))
    return [Match(i, rho, shared, float(weights[i])) for i, (rho, shared) in enumerate(rhos)]
