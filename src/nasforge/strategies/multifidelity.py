"""Multi-fidelity search over epochs: successive halving, Hyperband and ASHA.

Each strategy proposes an architecture together with a fidelity (through ``fidelity_for``): a
rung of the geometric ladder ``r_k = max_fidelity / eta**(K - k)``, ``k = 0..K``, with
``K = floor(log_eta(max_fidelity / min_fidelity))``. New architectures are drawn at random and
start at a low rung; the best ``1/eta`` of a rung are trained again, from scratch, at the next
one. Every evaluation is its own trial with its fidelity and learning curve; the search's best
is the best architecture at the highest fidelity reached.

The strategies keep no state besides what they were told: rung membership and promotions
follow from the stored results, so a search rebuilt from its trials continues where it
stopped (brackets are formed in the order results were stored).

References:
    Jamieson & Talwalkar, "Non-stochastic Best Arm Identification and Hyperparameter
    Optimization", AISTATS 2016 (successive halving). Li et al., "Hyperband: A Novel
    Bandit-Based Approach to Hyperparameter Optimization", JMLR 2018. Li et al., "A System for
    Massively Parallel Hyperparameter Tuning", MLSys 2020 (ASHA).
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError
from nasforge.objective import Objective
from nasforge.result import Result
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy, check_positive_int

__all__ = ["Asha", "Hyperband", "SuccessiveHalving", "rungs"]


def rungs(min_fidelity: int, max_fidelity: int, eta: int) -> tuple[int, ...]:
    """The fidelity ladder from about ``min_fidelity`` up to ``max_fidelity``, factor ``eta``.

    Raises:
        ConfigError: If ``min_fidelity > max_fidelity`` or ``eta < 2``.
    """
    if min_fidelity > max_fidelity:
        raise ConfigError(
            f"min_fidelity must be <= max_fidelity, got min_fidelity={min_fidelity}, "
            f"max_fidelity={max_fidelity}"
        )
    top = math.floor(math.log(max_fidelity / min_fidelity) / math.log(eta) + 1e-9)
    ladder = [max(1, round(max_fidelity / eta ** (top - k))) for k in range(top + 1)]
    return tuple(sorted(set(ladder)))


DEFAULT_ETA = 3
"""The reduction factor between rungs unless told."""


class _MultiFidelity(Strategy):
    """What the three strategies share: the ladder, rung results and pending proposals."""

    @classmethod
    def option_defaults(cls, *, max_fidelity: int | None) -> dict[str, Any]:
        """With a training evaluator, the top rung is its epochs (a full training) and the
        lowest ``eta**2`` times fewer; without fidelities, the options' own defaults."""
        if max_fidelity is None:
            return {}
        return {
            "max_fidelity": max_fidelity,
            "min_fidelity": max(1, round(max_fidelity / DEFAULT_ETA**2)),
        }

    def __init__(
        self,
        space: SearchSpace,
        *,
        objective: Objective,
        seed: int | None = None,
        min_fidelity: int = 1,
        max_fidelity: int = 27,
        eta: int = DEFAULT_ETA,
    ) -> None:
        super().__init__(space, objective=objective, seed=seed)
        self.min_fidelity = check_positive_int("min_fidelity", min_fidelity)
        self.max_fidelity = check_positive_int("max_fidelity", max_fidelity)
        self.eta = check_positive_int("eta", eta, minimum=2)
        self.ladder = rungs(self.min_fidelity, self.max_fidelity, self.eta)
        self._rung_of = {r: k for k, r in enumerate(self.ladder)}
        self.results: list[dict[str, float]] = [{} for _ in self.ladder]  # rung -> key -> score
        self.arch_of: dict[str, Architecture] = {}
        self._pending: defaultdict[int, set[str]] = defaultdict(set)  # rung -> keys in flight
        self._next: dict[str, list[int]] = defaultdict(list)  # key -> fidelities to hand out

    # -- bookkeeping --------------------------------------------------------------------------
    def _observe(self, arch: Architecture, key: str, score: float) -> None:
        fidelity = self._last_fidelity
        self.arch_of.setdefault(key, arch)
        if fidelity is None:  # an evaluator without fidelities: the rung it was asked for
            rung = next((r for r in sorted(self._pending) if key in self._pending[r]), None)
        else:
            rung = self._rung_of.get(fidelity)
        if rung is None:
            return  # a result at another fidelity (e.g. an earlier search's) has no rung
        self._pending[rung].discard(key)
        if key not in self.results[rung]:  # the first result counts
            self.results[rung][key] = score
            self._recorded(rung, key, score)

    def _recorded(self, rung: int, key: str, score: float) -> None:
        """Hook: ``key`` has its result ``score`` at ``rung`` (once per rung)."""

    def _submitted(self, rung: int, key: str) -> None:
        """Hook: ``key`` was proposed at ``rung``."""

    def tell(self, arch: Architecture, result: Result) -> None:
        self._last_fidelity = result.fidelity
        super().tell(arch, result)

    def _submit(self, arch: Architecture, rung: int) -> Architecture:
        key = self.space.canonical_key(arch)
        self.arch_of.setdefault(key, arch)
        self._pending[rung].add(key)
        self._next[key].append(self.ladder[rung])
        self._submitted(rung, key)
        return arch

    def fidelity_for(self, arch: Architecture) -> int | None:
        queue = self._next.get(self.space.canonical_key(arch))
        return queue.pop(0) if queue else self.ladder[0]

    def _known(self, rung: int, key: str) -> bool:
        return key in self.results[rung] or key in self._pending[rung]

    def _new(self, rung: int) -> Architecture | None:
        arch = self.sample_unseen()
        return None if arch is None else self._submit(arch, rung)

    def _top(self, rung: int, keys: list[str], count: int) -> list[str]:
        """The ``count`` best of ``keys`` at ``rung`` with a finite score (stable on ties)."""
        scored = [k for k in keys if self.results[rung].get(k, -math.inf) > -math.inf]
        scored.sort(key=lambda k: -self.results[rung][k])
        return scored[:count]

    def options(self) -> dict[str, Any]:
        return {
            "min_fidelity": self.min_fidelity,
            "max_fidelity": self.max_fidelity,
            "eta": self.eta,
        }

    _last_fidelity: int | None = None


class Asha(_MultiFidelity):
    """Asynchronous successive halving (ASHA; Li et al., MLSys 2020).

    Whenever a worker is free: promote the best not-yet-promoted architecture of the highest
    rung where it is among the top ``1/eta`` of that rung's results, else start a new random
    architecture at the lowest rung. No worker ever waits for a rung to fill.

    Args:
        min_fidelity: Lowest rung (epochs).
        max_fidelity: Highest rung (epochs); the search's result is judged here.
        eta: Reduction factor between rungs (>= 2).
    """

    name = "asha"

    def __init__(self, space: SearchSpace, **options: Any) -> None:
        super().__init__(space, **options)
        # Kept as results arrive, so that a proposal costs O(log n) per rung rather than a
        # sort of the rung: per rung, its finite results ranked (-score, arrival, key), and
        # the same for those not yet promoted (not known at the next rung).
        self._ranked: list[list[tuple[float, int, str]]] = [[] for _ in self.ladder]
        self._open: list[list[tuple[float, int, str]]] = [[] for _ in self.ladder]
        self._entry: list[dict[str, tuple[float, int, str]]] = [{} for _ in self.ladder]

    def _recorded(self, rung: int, key: str, score: float) -> None:
        self._submitted(rung, key)
        if score > -math.inf:
            entry = (-score, len(self.results[rung]) - 1, key)
            self._entry[rung][key] = entry
            bisect.insort(self._ranked[rung], entry)
            if rung + 1 < len(self.ladder) and not self._known(rung + 1, key):
                bisect.insort(self._open[rung], entry)

    def _submitted(self, rung: int, key: str) -> None:
        """``key`` is known at ``rung``: it no longer waits for promotion below it."""
        if rung == 0:
            return
        entry = self._entry[rung - 1].get(key)
        if entry is None:
            return
        waiting = self._open[rung - 1]
        i = bisect.bisect_left(waiting, entry)
        if i < len(waiting) and waiting[i] == entry:
            del waiting[i]

    def _propose(self) -> Architecture | None:
        for rung in range(len(self.ladder) - 2, -1, -1):
            waiting = self._open[rung]
            if not waiting:
                continue
            # the best not promoted, if it is among the top 1/eta of the rung's results
            best = waiting[0]
            if bisect.bisect_left(self._ranked[rung], best) < len(self.results[rung]) // self.eta:
                return self._submit(self.arch_of[best[2]], rung + 1)
        return self._new(0)


@dataclass
class _Bracket:
    """One run of successive halving: ``size`` architectures from rung ``base`` up."""

    base: int
    size: int
    members: list[list[str]] = field(default_factory=list)  # per stage: keys


class Hyperband(_MultiFidelity):
    """Hyperband (Li et al., JMLR 2018): successive halving over brackets of varied aggression.

    Brackets cycle from the most exploratory (many architectures from the lowest rung) to
    plain full-fidelity random search (few architectures at the highest rung). Inside a
    bracket the best ``1/eta`` of a stage move up a rung once the whole stage has results.
    With several workers, a bracket waiting for results lets the next bracket start.

    Args:
        min_fidelity: Lowest rung (epochs).
        max_fidelity: Highest rung (epochs); the search's result is judged here.
        eta: Reduction factor between rungs (>= 2).
    """

    name = "hyperband"

    def __init__(self, space: SearchSpace, **options: Any) -> None:
        super().__init__(space, **options)
        # Kept as results arrive, so that a proposal does not rebuild every bracket of the
        # search: per rung, the keys that first appeared there with a result, in order of
        # arrival, and the leading brackets that are closed (every member has its last
        # result: no more work).
        self._first_rung: dict[str, int] = {}
        self._result_starters: list[list[str]] = [[] for _ in self.ladder]
        self._n_closed = 0
        self._closed_used: defaultdict[int, int] = defaultdict(int)

    def _recorded(self, rung: int, key: str, score: float) -> None:
        first = self._first_rung.get(key)
        if first is None:
            self._first_rung[key] = rung
            self._result_starters[rung].append(key)
        elif rung < first:  # a result below its first (another process's): rebuild
            self._rebuild_starters()

    def _rebuild_starters(self) -> None:
        self._first_rung.clear()
        self._result_starters = [[] for _ in self.ladder]
        for rung, results in enumerate(self.results):
            for key in results:
                if key not in self._first_rung:
                    self._first_rung[key] = rung
                    self._result_starters[rung].append(key)
        self._n_closed = 0
        self._closed_used.clear()

    def _bracket_types(self) -> list[int]:
        top = len(self.ladder) - 1
        return list(range(top, -1, -1))  # s = K .. 0: base rung K - s

    def _bracket(self, index: int) -> _Bracket:
        top = len(self.ladder) - 1
        types = self._bracket_types()
        s = types[index % len(types)]
        size = math.ceil((top + 1) / (s + 1) * self.eta**s)
        return _Bracket(base=top - s, size=size)

    def _brackets(self) -> list[_Bracket]:
        """The brackets not closed, built from results and pending proposals in order of
        arrival: each rung's starters (the keys that first appear there, those with results
        first, then those in flight, sorted) fill the brackets based there in turn. The closed
        ones before them are counted once and kept out (they can give no more work)."""
        top = len(self.ladder)
        pending = {
            rung: sorted(k for k in keys if self._first_rung.get(k, top) > rung)
            for rung, keys in self._pending.items()
            if keys
        }  # keys in flight at the rung where they first appear, after those with results

        def queued(rung: int) -> int:
            return len(self._result_starters[rung]) + len(pending.get(rung, ()))

        def take(rung: int, start: int, count: int) -> list[str]:
            done = self._result_starters[rung]
            out = done[start : start + count]
            if len(out) < count:
                lo = max(0, start - len(done))
                out += pending.get(rung, [])[lo : lo + count - len(out)]
            return out

        brackets: list[_Bracket] = []
        used = defaultdict(int, self._closed_used)
        index = self._n_closed
        while True:
            bracket = self._bracket(index)
            members = take(bracket.base, used[bracket.base], bracket.size)
            used[bracket.base] += len(members)
            bracket.members.append(members)
            brackets.append(bracket)
            index += 1
            if len(members) < bracket.size and all(used[r] >= queued(r) for r in range(top)):
                break
        while len(brackets) > 1 and self._closed(brackets[0]):
            bracket = brackets.pop(0)
            self._n_closed += 1
            self._closed_used[bracket.base] += bracket.size
        return brackets

    def _closed(self, bracket: _Bracket) -> bool:
        """Whether a full ``bracket`` has every member's result at its last stage."""
        if len(bracket.members[0]) < bracket.size:
            return False
        rung, members = self._stage(bracket)
        return rung == len(self.ladder) - 1 and all(k in self.results[rung] for k in members)

    def _stage(self, bracket: _Bracket) -> tuple[int, list[str]]:
        """The current stage of a full ``bracket``: its rung and the members due there."""
        rung, members = bracket.base, bracket.members[0]
        while rung + 1 < len(self.ladder) and all(k in self.results[rung] for k in members):
            # the stage is complete: its best 1/eta (with a finite score) move up a rung
            members = self._top(rung, members, max(1, len(members) // self.eta))
            rung += 1
        return rung, members

    def _propose(self) -> Architecture | None:
        for bracket in self._brackets():
            if len(bracket.members[0]) < bracket.size:
                return self._new(bracket.base)
            rung, members = self._stage(bracket)
            for key in members:
                if not self._known(rung, key):
                    return self._submit(self.arch_of[key], rung)
        return None  # unreachable: the last bracket always has room


class SuccessiveHalving(Hyperband):
    """Successive halving (Jamieson & Talwalkar, AISTATS 2016), repeated bracket after bracket.

    Each bracket trains ``eta**K`` random architectures at the lowest rung, then the best
    ``1/eta`` at each next rung up to ``max_fidelity`` (Hyperband's most exploratory bracket).

    Args:
        min_fidelity: Lowest rung (epochs).
        max_fidelity: Highest rung (epochs); the search's result is judged here.
        eta: Reduction factor between rungs (>= 2).
    """

    name = "successive-halving"

    def _bracket_types(self) -> list[int]:
        return [len(self.ladder) - 1]
