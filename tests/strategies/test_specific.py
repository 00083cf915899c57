"""Behaviour particular to each strategy."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from nasforge.budget import Budget
from nasforge.errors import ConfigError
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.experiment import Experiment
from nasforge.objective import Objective
from nasforge.spaces.gnn import PROTEINS_OPS, GnnSpace
from nasforge.store.sql import SqlStore
from nasforge.strategies import LocalSearch, RandomSearch, RegularizedEvolution

OBJ = Objective("val_acc")


def test_random_search_exhausts_a_finite_space_without_repeats() -> None:
    space = GnnSpace(name="gnn-proteins", ops=PROTEINS_OPS)
    strategy = RandomSearch(space, objective=OBJ, seed=0)
    ev = NasBenchGraphEvaluator(dataset="proteins")
    keys = []
    while archs := strategy.ask(1):
        keys.append(space.canonical_key(archs[0]))
        strategy.tell(archs[0], ev.evaluate(archs[0]).visible())
    assert len(keys) == len(set(keys)) == space.size == 2021


def test_evolution_options_are_validated() -> None:
    space = GnnSpace()
    with pytest.raises(ConfigError, match="sample_size must be <= population_size"):
        RegularizedEvolution(space, objective=OBJ, population_size=5, sample_size=6)
    with pytest.raises(ConfigError, match="population_size must be an integer >= 2"):
        RegularizedEvolution(space, objective=OBJ, population_size=1)
    with pytest.raises(ConfigError, match="n_init must be an integer >= 1"):
        LocalSearch(space, objective=OBJ, n_init=0)


def test_evolution_population_ages_out_the_oldest() -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    strategy = RegularizedEvolution(ev.space, objective=OBJ, seed=0, population_size=10)
    told = []
    for _ in range(25):
        (arch,) = strategy.ask(1)
        strategy.tell(arch, ev.evaluate(arch).visible())
        told.append(arch)
    assert [a for a, _ in strategy.population] == told[-10:]


def test_local_search_ends_in_local_optima() -> None:
    """Every time local search restarts, its last climb ended where no neighbour is better."""
    ev = NasBenchGraphEvaluator(dataset="citeseer")
    space = ev.space
    strategy = LocalSearch(space, objective=OBJ, seed=1, n_init=5)
    for _ in range(400):
        (arch,) = strategy.ask(1)
        strategy.tell(arch, ev.evaluate(arch).visible())
    scores = strategy.scores
    optima = [
        key
        for key in scores
        if all(
            space.canonical_key(n) in scores and scores[space.canonical_key(n)] <= scores[key]
            for n in space.neighbors(strategy._archs[key])
        )
    ]
    assert optima, "400 steps of local search reach at least one verified local optimum"
    best = max(scores.values())
    assert best > np.median(list(scores.values()))
    assert all(math.isfinite(v) for v in scores.values())


def test_resumed_random_search_continues_the_uninterrupted_sequence(tmp_path: Path) -> None:
    """Replaying history into a fresh strategy continues, rather than repeats, its stream."""
    ev = NasBenchGraphEvaluator(dataset="cora")

    def run(name: str, budgets: list[int]) -> tuple[list[str], list[RandomSearch]]:
        strategies = []
        with SqlStore(tmp_path / f"{name}.db") as store:
            for budget in budgets:
                strategy = RandomSearch(ev.space, objective=OBJ, seed=5)
                strategies.append(strategy)
                exp = Experiment(
                    name=name, space=ev.space, evaluator=ev, strategy=strategy, store=store
                )
                exp.run(Budget(budget))
            keys = [t.key for t in store.trials(exp.record.id)]
        return keys, strategies

    straight, _ = run("straight", [600])
    resumed, strategies = run("resumed", [200, 400, 600])
    assert resumed == straight
    # the rebuilt strategies never fell back to enumerating the space
    assert all(s._unseen_pool is None for s in strategies)


def test_random_search_proposes_the_same_in_parallel_as_in_sequence() -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    sequential = RandomSearch(ev.space, objective=OBJ, seed=2)
    seq_keys = []
    for _ in range(6):
        (arch,) = sequential.ask(1)
        seq_keys.append(ev.space.canonical_key(arch))
        sequential.tell(arch, ev.evaluate(arch).visible())
    parallel = RandomSearch(ev.space, objective=OBJ, seed=2)
    batch = parallel.ask(2)  # two in flight, as with two workers
    par_keys = [ev.space.canonical_key(a) for a in batch]
    for arch in batch:
        parallel.tell(arch, ev.evaluate(arch).visible())
    for _ in range(2):
        pair = parallel.ask(2)
        par_keys += [ev.space.canonical_key(a) for a in pair]
        for arch in reversed(pair):  # results arrive in any order
            parallel.tell(arch, ev.evaluate(arch).visible())
    assert par_keys == seq_keys
