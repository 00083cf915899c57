"""Local search (White et al., "Exploring the Loss Landscape in Neural Architecture Search",
UAI 2021)."""

from __future__ import annotations

import math
from typing import Any

from nasforge.architecture import Architecture
from nasforge.objective import Objective
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy, check_positive_int

__all__ = ["LocalSearch"]


class LocalSearch(Strategy):
    """Best-improvement hill climbing over the space's one-edit neighbourhood, with restarts.

    After ``n_init`` random architectures, the search starts from the best one seen, evaluates
    its unevaluated neighbours in random order and moves to the best neighbour if it beats the
    current architecture. At a local optimum (no neighbour better) it restarts from a new random
    architecture. The state is rebuilt from told results alone, so a resumed search climbs on
    from the best architecture in its history.

    Args:
        n_init: Random architectures evaluated before the first climb.
    """

    name = "local"

    def __init__(
        self,
        space: SearchSpace,
        *,
        objective: Objective,
        seed: int | None = None,
        n_init: int = 10,
    ) -> None:
        super().__init__(space, objective=objective, seed=seed)
        self.n_init = check_positive_int("n_init", n_init)
        self.scores: dict[str, float] = {}
        self._archs: dict[str, Architecture] = {}
        self._current: Architecture | None = None
        self._started = False
        self._restart_key: str | None = None
        self._queue: list[Architecture] = []

    def _observe(self, arch: Architecture, key: str, score: float) -> None:
        if key not in self.scores or score > self.scores[key]:
            self.scores[key] = score
            self._archs[key] = arch

    def _score_of(self, arch: Architecture) -> float:
        return self.scores.get(self.space.canonical_key(arch), -math.inf)

    def _propose(self) -> Architecture | None:
        if len(self.scores) < self.n_init and not self._started:
            return self.sample_unseen()
        while True:
            if self._current is None:
                restart = self._next_start()
                if restart is not None:
                    return restart
                if self._current is None:  # waiting for the restart point's result
                    return self.sample_unseen()
            current = self._current
            assert current is not None
            neighbours = self.space.neighbors(current)
            fresh = [a for a in neighbours if not self.is_seen(a)]
            if fresh:
                return fresh[int(self.rng.integers(len(fresh)))]
            pending = [a for a in neighbours if self.space.canonical_key(a) not in self.scores]
            if pending:  # neighbours proposed but not told yet: explore meanwhile
                return self.sample_unseen()
            best = max(neighbours, key=self._score_of, default=None)
            if best is not None and self._score_of(best) > self._score_of(current):
                self._current = best
            else:  # local optimum: restart from a random architecture
                self._current = None
                self._restart_key = None

    def _next_start(self) -> Architecture | None:
        """Set ``_current`` to the next starting point, or return a random one to evaluate."""
        if not self._started:  # first climb (or first after resuming): best seen so far
            self._started = True
            if self.scores:
                self._current = self._archs[max(self.scores, key=self.scores.__getitem__)]
                return None
        if self._restart_key:  # a restart point was proposed: start there once it is told
            if self._restart_key in self.scores:
                self._current = self._archs[self._restart_key]
                self._restart_key = None
            return None
        arch = self.sample_unseen()
        if arch is not None:
            self._restart_key = self.space.canonical_key(arch)
        return arch

    def options(self) -> dict[str, Any]:
        return {"n_init": self.n_init}
