"""Pareto dominance, non-dominated sorting, crowding and hypervolume against brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError
from nasforge.objective import Direction, Objective
from nasforge.pareto import (
    crowding_distance,
    dominates,
    first_front,
    hypervolume,
    nondominated_sort,
    pareto_front,
    reference_point,
    trial_hypervolume,
)
from nasforge.result import Status
from nasforge.store.base import TrialRecord

ACC = Objective("val_acc", Direction.MAXIMIZE)
LAT = Objective("latency_ms", Direction.MINIMIZE)

points_2d = st.lists(
    st.tuples(st.integers(0, 9), st.integers(0, 9)).map(lambda p: tuple(map(float, p))),
    min_size=1,
    max_size=25,
)
points_3d = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5)).map(
        lambda p: tuple(map(float, p))
    ),
    min_size=1,
    max_size=12,
)


def _trial(number: int, acc: float, lat: float, status: Status = Status.COMPLETE) -> TrialRecord:
    return TrialRecord(
        id=number,
        experiment_id=1,
        number=number,
        arch=Architecture("gnn", {"n": number}),
        key=f"k{number}",
        status=status,
        metrics={"val_acc": acc},
        costs={"latency_ms": lat},
    )


def test_dominates_needs_one_strict_improvement() -> None:
    assert dominates((2, 1), (1, 1))
    assert not dominates((1, 1), (1, 1))
    assert not dominates((2, 0), (1, 1))


@given(points_2d)
def test_nondominated_sort_matches_brute_force(points: list[tuple[float, ...]]) -> None:
    fronts = nondominated_sort(points)
    assert sorted(i for f in fronts for i in f) == list(range(len(points)))
    first = {i for i in range(len(points)) if not any(dominates(q, points[i]) for q in points)}
    assert set(fronts[0]) == first
    for level, front in enumerate(fronts[1:], start=1):  # each later point is dominated by
        for i in front:  # a point of the front just before it, and by none of its own front
            assert any(dominates(points[j], points[i]) for j in fronts[level - 1])
            assert not any(dominates(points[j], points[i]) for j in front)


def _grid_volume(points: list[tuple[float, ...]], reference: tuple[float, ...]) -> float:
    """Unit cells above ``reference`` dominated by some point (integer coordinates)."""
    ranges = [range(int(r), 10) for r in reference]
    count = 0
    for cell in itertools.product(*ranges):  # the cell [c, c+1) in every dimension
        if any(all(p[d] >= c + 1 for d, c in enumerate(cell)) for p in points):
            count += 1
    return float(count)


@given(points_2d)
def test_hypervolume_2d_counts_dominated_cells(points: list[tuple[float, ...]]) -> None:
    assert hypervolume(points, (0.0, 0.0)) == _grid_volume(points, (0.0, 0.0))


@settings(max_examples=60)
@given(points_3d)
def test_hypervolume_3d_counts_dominated_cells(points: list[tuple[float, ...]]) -> None:
    assert hypervolume(points, (0.0, 0.0, 0.0)) == _grid_volume(points, (0.0, 0.0, 0.0))


def test_hypervolume_ignores_points_not_beating_the_reference() -> None:
    assert hypervolume([(1.0, 5.0), (3.0, 0.5)], (2.0, 1.0)) == 0.0
    assert hypervolume([(3.0, 3.0)], (2.0, 1.0)) == pytest.approx(2.0)
    assert hypervolume([], (0.0, 0.0)) == 0.0


def test_crowding_gives_boundaries_infinity_and_spreads_the_middle() -> None:
    points = [(0.0, 4.0), (1.0, 3.0), (3.0, 1.0), (4.0, 0.0)]
    distance = crowding_distance(points, [0, 1, 2, 3])
    assert math.isinf(distance[0]) and math.isinf(distance[3])
    assert distance[1] == pytest.approx(distance[2])
    assert distance[1] == pytest.approx((3 - 0) / 4 + (4 - 1) / 4)


def test_pareto_front_keeps_non_dominated_complete_trials_only() -> None:
    trials = [
        _trial(0, 0.80, 5.0),
        _trial(1, 0.85, 9.0),
        _trial(2, 0.70, 2.0),
        _trial(3, 0.75, 6.0),  # dominated by 0
        _trial(4, 0.99, 1.0, Status.INFEASIBLE),  # would dominate all, but violates a bound
        _trial(5, 0.90, 20.0, Status.FAILED),
        _trial(6, 0.80, 5.0),  # same values as 0: only the earliest is kept
        _trial(7, math.nan, 1.0),
    ]
    front = pareto_front(trials, [ACC, LAT])
    assert [t.number for t in front] == [1, 0, 2]  # best accuracy first


def test_trial_hypervolume_in_natural_units() -> None:
    trials = [_trial(0, 0.8, 5.0), _trial(1, 0.6, 2.0)]
    # boxes [0, 0.8] x [5, 10] and [0, 0.6] x [2, 10] against (acc 0, latency 10)
    expected = 0.8 * 5 + 0.6 * 3
    assert trial_hypervolume(trials, [ACC, LAT], [0.0, 10.0]) == pytest.approx(expected)


def test_reference_point_defaults_and_errors() -> None:
    trials = [_trial(0, 0.8, 5.0), _trial(1, 0.6, 7.5), _trial(2, 0.9, 99.0, Status.FAILED)]
    assert reference_point([ACC, LAT], None, trials) == [0.0, 7.5]
    assert reference_point([ACC, LAT], {"latency_ms": 50}, trials) == [0.0, 50.0]
    with pytest.raises(ConfigError, match="give a reference value"):
        reference_point([ACC, LAT])
    with pytest.raises(ConfigError, match="not objectives"):
        reference_point([ACC, LAT], {"params": 1.0}, trials)


def test_hypervolume_agrees_with_monte_carlo_on_random_fronts() -> None:
    rng = np.random.default_rng(0)
    pts = [tuple(p) for p in rng.random((30, 3))]
    exact = hypervolume(pts, (0.0, 0.0, 0.0))
    samples = rng.random((200_000, 3))
    arr = np.asarray(pts)
    covered = (samples[:, None, :] <= arr[None, :, :]).all(axis=2).any(axis=1)
    assert exact == pytest.approx(covered.mean(), abs=0.01)


@given(points_2d)
def test_first_front_sweep_matches_the_sort(points: list[tuple[float, ...]]) -> None:
    assert first_front(points) == sorted(nondominated_sort(points)[0])


@settings(max_examples=60)
@given(points_3d)
def test_first_front_in_three_dimensions_matches_the_sort(points: list[tuple[float, ...]]) -> None:
    assert first_front(points) == sorted(nondominated_sort(points)[0])


def test_pareto_front_of_thousands_of_trials_is_fast() -> None:
    rng = np.random.default_rng(1)
    trials = [_trial(i, float(a), float(b)) for i, (a, b) in enumerate(rng.random((5000, 2)))]
    front = pareto_front(trials, [ACC, LAT])  # an O(N^2) sort would take minutes here
    points = [(t.metrics["val_acc"], -t.costs["latency_ms"]) for t in trials]
    expected = {trials[i].number for i in first_front(points)}
    assert {t.number for t in front} == expected
