"""Random search without replacement (Li and Talwalkar, "Random Search and Reproducibility for
Neural Architecture Search", 2019)."""

from __future__ import annotations

from nasforge.architecture import Architecture
from nasforge.strategies.base import Strategy

__all__ = ["RandomSearch"]


class RandomSearch(Strategy):
    """Uniform samples of the space, never proposing an architecture twice (by canonical key).

    Ignores the results, so it serves any number of objectives.
    """

    name = "random"
    multi_objective = True

    def _propose(self) -> Architecture | None:
        return self.sample_unseen()
