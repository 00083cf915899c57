"""Successive halving, Hyperband and ASHA: rung ladders, promotions, resume, real training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.strategies.test_conformance import CountingEvaluator

import nasforge
from nasforge import api
from nasforge.api import make_strategy
from nasforge.budget import Budget
from nasforge.errors import ConfigError
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.experiment import Experiment
from nasforge.objective import Objective
from nasforge.result import Result
from nasforge.spaces.gnn import GnnSpace
from nasforge.store.sql import SqlStore
from nasforge.strategies.multifidelity import rungs

OBJECTIVE = Objective("val_acc")


def test_rung_ladder() -> None:
    assert rungs(1, 27, 3) == (1, 3, 9, 27)
    assert rungs(1, 9, 3) == (1, 3, 9)
    assert rungs(2, 20, 3) == (2, 7, 20)
    assert rungs(5, 5, 3) == (5,)
    assert rungs(1, 100, 4) == (2, 6, 25, 100)
    with pytest.raises(ConfigError, match="min_fidelity must be <= max_fidelity"):
        rungs(10, 5, 3)


def _sequence(name: str, steps: int, **options: int) -> list[tuple[str, int | None, float]]:
    """(key, fidelity, val_acc) of each proposal of a strategy driven one at a time."""
    ev = CountingEvaluator()
    strategy = make_strategy(name, ev.space, objective=OBJECTIVE, seed=0, options=options)
    out = []
    for _ in range(steps):
        (arch,) = strategy.ask(1)
        fidelity = strategy.fidelity_for(arch)
        result = ev.evaluate(arch, fidelity)
        out.append((ev.space.canonical_key(arch), fidelity, result.metrics["val_acc"]))
        strategy.tell(arch, result.visible())
    return out


def test_hyperband_brackets_follow_the_schedule() -> None:
    seq = _sequence("hyperband", 9 + 3 + 1 + 5 + 1 + 3, min_fidelity=1, max_fidelity=9, eta=3)
    fids = [f for _, f, _ in seq]
    # bracket s=2: 9 at 1 epoch, best 3 at 3, best 1 at 9; s=1: 5 at 3, best 1 at 9; s=0: 3 at 9
    assert fids == [1] * 9 + [3] * 3 + [9] + [3] * 5 + [9] + [9] * 3
    assert len({k for k, _, _ in seq[13:18]} | {k for k, _, _ in seq[:9]}) == 14  # new archs
    assert seq[18][0] in {k for k, _, _ in seq[13:18]}


def test_promotions_are_the_best_of_their_rung() -> None:
    seq = _sequence("successive-halving", 13 + 9, min_fidelity=1, max_fidelity=9, eta=3)
    rung0 = sorted(seq[:9], key=lambda s: -s[2])
    promoted = seq[9:12]
    assert [f for _, f, _ in promoted] == [3, 3, 3]
    assert {k for k, _, _ in promoted} == {k for k, _, _ in rung0[:3]}
    best_at_3 = max(promoted, key=lambda s: s[2])
    assert seq[12][:2] == (best_at_3[0], 9)
    assert [f for _, f, _ in seq[13:22]] == [1] * 9  # the next bracket starts afresh


def test_asha_promotes_without_waiting() -> None:
    seq = _sequence("asha", 40, min_fidelity=1, max_fidelity=9, eta=3)
    fids = [f for _, f, _ in seq]
    assert fids[:3] == [1, 1, 1]
    assert fids[3] == 3  # with 3 results at rung 0, the best one moves up at once
    assert 9 in fids
    # every architecture at a higher rung was first trained at the rung below
    first_seen: dict[str, int] = {}
    for key, fidelity, _ in seq:
        assert fidelity is not None
        if key in first_seen:
            assert fidelity > first_seen[key]
        else:
            first_seen[key] = fidelity
            assert fidelity == 1


@pytest.mark.parametrize("name", ["asha", "hyperband", "successive-halving"])
def test_resume_continues_the_same_search(name: str, tmp_path: Path) -> None:
    options = {"min_fidelity": 1, "max_fidelity": 9, "eta": 3}

    def run(db: Path, budgets: list[int]) -> list[tuple[str, int | None]]:
        for amount in budgets:
            ev = CountingEvaluator()
            strategy = make_strategy(name, ev.space, objective=OBJECTIVE, seed=3, options=options)
            with SqlStore(db) as store:
                exp = Experiment(
                    name="mf", space=ev.space, evaluator=ev, strategy=strategy, store=store
                )
                exp.run(Budget.parse(f"{amount}trials"))
                stored = store.trials(exp.record.id)
        return [(t.key, t.fidelity) for t in stored]

    straight = run(tmp_path / "a.db", [40])
    resumed = run(tmp_path / "b.db", [7, 19, 40])
    assert resumed == straight


def test_asha_on_real_training_keeps_the_best_at_full_fidelity(db_path: Path) -> None:
    result = nasforge.search(
        task="tabular:wine",
        strategy="asha",
        budget="12trials",
        seed=0,
        name="asha",
        db=db_path,
        epochs=9,
    )
    trials = api.trials("asha", db=db_path)
    assert {t.fidelity for t in trials} <= {1, 3, 9}
    assert min(t.fidelity or 0 for t in trials) == 1
    for t in trials:
        assert len(t.curve) <= (t.fidelity or 0)
    stored = api.best("asha", db=db_path)
    assert result.best is not None and stored is not None
    assert stored.number == result.best.number
    top = max(t.fidelity or 0 for t in trials)
    assert stored.fidelity == top
    exp = api.list_experiments(db=db_path)[0]
    assert exp.config["strategy_options"] == {"min_fidelity": 1, "max_fidelity": 9, "eta": 3}


def test_bad_options() -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    with pytest.raises(ConfigError, match="eta must be an integer >= 2"):
        make_strategy("asha", ev.space, objective=OBJECTIVE, seed=0, options={"eta": 1})
    with pytest.raises(ConfigError, match="min_fidelity must be <= max_fidelity"):
        make_strategy(
            "hyperband",
            ev.space,
            objective=OBJECTIVE,
            seed=0,
            options={"min_fidelity": 50, "max_fidelity": 10},
        )


# -- bookkeeping kept as results arrive (the loop at scale) ------------------------------------
def _drive_async(strategy: Any, steps: int, check: Any) -> None:
    """Ask and tell ``steps`` times with up to 4 trials in flight, told out of order, with
    ties and failures; ``check(strategy)`` runs before every proposal and may return the
    (key, fidelity) the proposal must be."""
    import zlib
    from dataclasses import replace as with_fidelity

    space = strategy.space
    rng = np.random.default_rng(0)
    flight: list[tuple[Any, str, int]] = []
    for step in range(steps):
        expected = check(strategy)
        (arch,) = strategy.ask(1)
        fidelity = strategy.fidelity_for(arch)
        flight.append((arch, space.canonical_key(arch), fidelity))
        if expected is not None:
            assert (flight[-1][1], fidelity) == expected
        while len(flight) > 4 or (flight and step % 5 == 0):
            arch, key, fid = flight.pop(int(rng.integers(len(flight))))
            if "gat" in key and fid == strategy.ladder[0]:
                result = Result.failed("gat fails at the lowest rung")
            else:
                value = round((zlib.crc32(key.encode()) % 1000) / 1000 * fid / 27, 2)
                result = Result(metrics={"val_acc": value})
            strategy.tell(arch, with_fidelity(result, fidelity=fid))
            if step % 5:
                break


def _brackets_from_scratch(strategy: Any) -> list[Any]:
    """Every bracket of a Hyperband search, rebuilt from its results and pending proposals in
    order of arrival: the rule the strategy keeps up as results arrive."""
    from nasforge.strategies.multifidelity import _Bracket

    starters: dict[int, list[str]] = {r: [] for r in range(len(strategy.ladder))}
    seen: set[str] = set()
    for rung in range(len(strategy.ladder)):
        for key in [*strategy.results[rung], *sorted(strategy._pending[rung])]:
            if key not in seen:
                seen.add(key)
                starters[rung].append(key)  # first appeared at this rung: a starter
    brackets: list[_Bracket] = []
    used = dict.fromkeys(starters, 0)
    index = 0
    while True:
        bracket = strategy._bracket(index)
        take = starters[bracket.base][used[bracket.base] : used[bracket.base] + bracket.size]
        used[bracket.base] += len(take)
        bracket.members.append(take)
        brackets.append(bracket)
        index += 1
        if len(take) < bracket.size and all(used[r] >= len(q) for r, q in starters.items()):
            return brackets


@pytest.mark.parametrize("name", ["hyperband", "successive-halving"])
def test_open_brackets_are_those_rebuilt_from_scratch(name: str) -> None:
    def check(strategy: Any) -> None:
        opened = strategy._brackets()
        full = _brackets_from_scratch(strategy)
        assert [(b.base, b.members) for b in full[len(full) - len(opened) :]] == [
            (b.base, b.members) for b in opened
        ]
        assert strategy._n_closed == len(full) - len(opened)

    strategy = make_strategy(name, GnnSpace(), objective=Objective("val_acc"), seed=3)
    _drive_async(strategy, 600, check)
    assert strategy._n_closed > 5  # brackets were closed and kept out


def test_asha_promotes_what_a_sort_of_each_rung_gives() -> None:
    """The paper's rule, by sorting every rung: the best not-yet-promoted architecture of
    the highest rung where it is among the top 1/eta."""
    promotions = []

    def expect(strategy: Any) -> tuple[str, int] | None:
        for rung in range(len(strategy.ladder) - 2, -1, -1):
            finished = list(strategy.results[rung])
            top = strategy._top(rung, finished, len(finished) // strategy.eta)
            waiting = [k for k in top if not strategy._known(rung + 1, k)]
            if waiting:
                promotions.append(waiting[0])
                return waiting[0], strategy.ladder[rung + 1]
        return None

    strategy = make_strategy("asha", GnnSpace(), objective=Objective("val_acc"), seed=3)
    _drive_async(strategy, 600, expect)
    assert len(promotions) > 50
