"""Regularized evolution (Real et al., "Regularized Evolution for Image Classifier
Architecture Search", AAAI 2019), single- and multi-objective."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError
from nasforge.objective import Objective
from nasforge.pareto import crowding_distance, nondominated_sort
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy, check_positive_int

__all__ = ["RegularizedEvolution"]


class RegularizedEvolution(Strategy):
    """Aging evolution: tournament selection, one mutation per child, the oldest member dies.

    The first ``population_size`` proposals are random (without replacement). Afterwards each
    proposal mutates the best of ``sample_size`` members drawn from the population, which holds
    the ``population_size`` most recently told results (failed ones excluded).

    With several objectives the tournament ranks its sample as NSGA-II ranks a population
    (Deb et al., "A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II", 2002): by
    non-dominated front within the living population, then by crowding distance in that front
    (boundary points first), so that parents come from the Pareto front and spread along it.
    Aging still removes the oldest member, as in the single-objective method.

    Args:
        population_size: Members kept alive (P in the paper).
        sample_size: Tournament size (S in the paper); at most ``population_size``.
    """

    name = "evolution"
    multi_objective = True

    def __init__(
        self,
        space: SearchSpace,
        *,
        objective: Objective | Sequence[Objective],
        seed: int | None = None,
        population_size: int = 20,
        sample_size: int = 5,
    ) -> None:
        super().__init__(space, objective=objective, seed=seed)
        self.population_size = check_positive_int("population_size", population_size, 2)
        self.sample_size = check_positive_int("sample_size", sample_size)
        if sample_size > population_size:
            raise ConfigError(
                f"sample_size must be <= population_size, got sample_size={sample_size}, "
                f"population_size={population_size}"
            )
        # (architecture, oriented scores: one per objective)
        self.population: deque[tuple[Architecture, tuple[float, ...]]] = deque(
            maxlen=population_size
        )

    def _propose(self) -> Architecture | None:
        if len(self.population) < self.population_size:
            return self.sample_unseen()
        members = list(self.population)
        picks = self.rng.choice(len(members), size=self.sample_size, replace=False)
        if len(self.objectives) == 1:
            parent = max((members[int(i)] for i in picks), key=lambda m: m[1][0])[0]
        else:
            rank = _nsga2_rank([scores for _, scores in members])
            parent = members[int(min(picks, key=lambda i: rank[int(i)]))][0]
        return self.space.mutate(parent, self.rng)

    def _observe(self, arch: Architecture, key: str, score: float) -> None:
        if all(s > -math.inf for s in self.last_scores):
            self.population.append((arch, self.last_scores))

    def options(self) -> dict[str, Any]:
        return {"population_size": self.population_size, "sample_size": self.sample_size}


def _nsga2_rank(points: Sequence[Sequence[float]]) -> list[tuple[int, float]]:
    """Sort key of each point: (front index, -crowding distance); smaller is better."""
    rank: list[tuple[int, float]] = [(0, 0.0)] * len(points)
    for level, front in enumerate(nondominated_sort(points)):
        for i, distance in crowding_distance(points, front).items():
            rank[i] = (level, -distance)
    return rank
