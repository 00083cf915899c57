"""Pareto dominance, fronts and hypervolume for multi-objective searches.

Points are compared in *score* space: every objective oriented so that larger is better
(:meth:`Objective.score`). Helpers that take trials or natural-unit values do the orienting.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from nasforge.errors import ConfigError
from nasforge.objective import Direction, Objective
from nasforge.result import Status
from nasforge.store.base import TrialRecord

__all__ = [
    "crowding_distance",
    "dominates",
    "first_front",
    "hypervolume",
    "nondominated_sort",
    "objective_values",
    "pareto_front",
    "reference_point",
    "trial_hypervolume",
]


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when score vector ``a`` is at least as good as ``b`` everywhere and better once."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True)
    )


def nondominated_sort(points: Sequence[Sequence[float]]) -> list[list[int]]:
    """Indices of ``points`` grouped into fronts: front 0 is non-dominated, and so on.

    The fast non-dominated sort of Deb et al., "A fast and elitist multiobjective genetic
    algorithm: NSGA-II" (2002): O(M N^2).
    """
    n = len(points)
    dominated_by: list[list[int]] = [[] for _ in range(n)]  # i dominates these
    counts = [0] * n  # how many dominate i
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(points[i], points[j]):
                dominated_by[i].append(j)
                counts[j] += 1
            elif dominates(points[j], points[i]):
                dominated_by[j].append(i)
                counts[i] += 1
    fronts: list[list[int]] = []
    current = [i for i in range(n) if counts[i] == 0]
    while current:
        fronts.append(current)
        following: list[int] = []
        for i in current:
            for j in dominated_by[i]:
                counts[j] -= 1
                if counts[j] == 0:
                    following.append(j)
        current = sorted(following)
    return fronts


def first_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated ``points`` (front 0), in O(n log n) for two objectives."""
    if not points or len(points[0]) != 2:  # O(M N^2): each point against every other
        return [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    kept: list[int] = []
    best_second = -math.inf
    last: tuple[float, float] | None = None
    for i in order:  # each point is dominated iff an earlier one reaches its second value
        point = (points[i][0], points[i][1])
        if point[1] > best_second:
            kept.append(i)
            best_second, last = point[1], point
        elif point == last:  # an equal point does not dominate
            kept.append(i)
    return sorted(kept)


def crowding_distance(points: Sequence[Sequence[float]], front: Sequence[int]) -> dict[int, float]:
    """NSGA-II crowding distance of each index of ``front`` (boundary points get inf)."""
    distance = {i: 0.0 for i in front}
    if len(front) <= 2:
        return {i: math.inf for i in front}
    for m in range(len(points[front[0]])):
        ordered = sorted(front, key=lambda i: points[i][m])
        low, high = points[ordered[0]][m], points[ordered[-1]][m]
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        if high == low:
            continue
        for k in range(1, len(ordered) - 1):
            gap = points[ordered[k + 1]][m] - points[ordered[k - 1]][m]
            distance[ordered[k]] += gap / (high - low)
    return distance


def objective_values(trial: TrialRecord, objectives: Sequence[Objective]) -> list[float]:
    """The trial's value of each objective (a metric or a cost), NaN where missing."""
    return [o.value_in(trial.metrics, trial.costs) for o in objectives]


def _eligible(trial: TrialRecord, objectives: Sequence[Objective]) -> bool:
    values = objective_values(trial, objectives)
    return trial.status is Status.COMPLETE and all(math.isfinite(v) for v in values)


def pareto_front(
    trials: Iterable[TrialRecord], objectives: Sequence[Objective]
) -> list[TrialRecord]:
    """The non-dominated COMPLETE trials with finite values of every objective.

    INFEASIBLE, FAILED and PRUNED trials never enter the front. Among trials with the same
    values only the earliest is kept. Sorted by the first objective, best first.
    """
    if not objectives:
        raise ConfigError("a Pareto front needs at least one objective")
    candidates = [t for t in trials if _eligible(t, objectives)]
    top = max((t.fidelity or 0 for t in candidates), default=0)
    candidates = [t for t in candidates if (t.fidelity or 0) == top]  # comparable ones only
    scores = [
        [o.score(v) for o, v in zip(objectives, objective_values(t, objectives), strict=True)]
        for t in candidates
    ]
    front: list[TrialRecord] = []
    seen: set[tuple[float, ...]] = set()
    for i in sorted(first_front(scores), key=lambda i: candidates[i].number):
        point = tuple(scores[i])
        if point not in seen:
            seen.add(point)
            front.append(candidates[i])
    front.sort(key=lambda t: (-objectives[0].score(objective_values(t, objectives)[0]), t.number))
    return front


def hypervolume(points: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """Volume dominated by score vectors ``points`` (larger is better) above ``reference``.

    Exact, by slicing one dimension at a time (the HSO scheme of While et al., "A faster
    algorithm for calculating hypervolume", 2006); fine for fronts of a few hundred points in
    2 or 3 dimensions. Points that do not strictly beat ``reference`` in every objective add
    nothing.
    """
    dims = len(reference)
    kept = [tuple(p) for p in points if all(x > r for x, r in zip(p, reference, strict=True))]
    if dims == 0 or not kept:
        return 0.0
    return _hso(sorted(set(kept)), tuple(reference))


def _hso(points: list[tuple[float, ...]], reference: tuple[float, ...]) -> float:
    if len(reference) == 1:
        return max(p[0] for p in points) - reference[0]
    if len(reference) == 2:  # one sweep: O(n log n)
        total, reach = 0.0, reference[0]
        ordered = sorted(points, key=lambda p: p[1], reverse=True)
        for k, point in enumerate(ordered):
            reach = max(reach, point[0])
            lower = ordered[k + 1][1] if k + 1 < len(ordered) else reference[1]
            total += (reach - reference[0]) * (point[1] - lower)
        return total
    # sweep the last dimension from the best value down; each slab's volume is the
    # (d-1)-dimensional hypervolume of the points reaching at least that high
    ordered = sorted(points, key=lambda p: p[-1], reverse=True)
    total = 0.0
    for k, point in enumerate(ordered):
        lower = ordered[k + 1][-1] if k + 1 < len(ordered) else reference[-1]
        height = point[-1] - lower
        if height > 0:
            total += height * _hso([p[:-1] for p in ordered[: k + 1]], reference[:-1])
    return total


def reference_point(
    objectives: Sequence[Objective],
    given: Mapping[str, float] | None = None,
    trials: Iterable[TrialRecord] = (),
) -> list[float]:
    """The hypervolume reference point in natural units.

    ``given`` maps metric names to values. An objective it does not name gets 0 when
    maximised (the worst accuracy) and, when minimised, the worst (largest) value among the
    COMPLETE ``trials``: the front then spans what the search found, and the point must be
    stated with the hypervolume, as hypervolumes against different points do not compare.

    Raises:
        ConfigError: If ``given`` names a metric that is not an objective, or a minimised
            objective has neither a given value nor a finite value among ``trials``.
    """
    given = dict(given or {})
    names = [o.metric for o in objectives]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ConfigError(
            f"reference point names {unknown}, which are not objectives; objectives: {names}"
        )
    complete = [t for t in trials if t.status is Status.COMPLETE]
    out: list[float] = []
    for o in objectives:
        if o.metric in given:
            out.append(float(given[o.metric]))
        elif o.direction is Direction.MAXIMIZE:
            out.append(0.0)
        else:
            values = [o.value_in(t.metrics, t.costs) for t in complete]
            finite = [v for v in values if math.isfinite(v)]
            if not finite:
                raise ConfigError(
                    f"give a reference value for the minimised objective {o.metric!r}, e.g. "
                    f"--reference {o.metric}=<worst acceptable value>"
                )
            out.append(max(finite))
    return out


def trial_hypervolume(
    trials: Iterable[TrialRecord], objectives: Sequence[Objective], reference: Sequence[float]
) -> float:
    """Hypervolume of the Pareto front of ``trials`` against ``reference`` (natural units)."""
    front = pareto_front(trials, objectives)
    scores = [
        [o.score(v) for o, v in zip(objectives, objective_values(t, objectives), strict=True)]
        for t in front
    ]
    ref = [o.score(r) for o, r in zip(objectives, reference, strict=True)]
    return hypervolume(scores, ref)
