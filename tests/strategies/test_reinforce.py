"""The REINFORCE controller: real loop, learning, determinism, spaces, options."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nasforge.architecture import Architecture
from nasforge.budget import Budget
from nasforge.errors import ConfigError
from nasforge.evaluators.base import Evaluator
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.experiment import Experiment
from nasforge.objective import Objective
from nasforge.result import Result
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.gnn import GnnSpace
from nasforge.spaces.mlp import MlpSpace
from nasforge.spaces.nb201 import Nb201Space
from nasforge.store.sql import SqlStore
from nasforge.strategies.reinforce import Reinforce

OBJ = Objective("val_acc")


class FakeEvaluator(Evaluator):
    """A deterministic score computed from the genes, for any space."""

    metrics = ("val_acc",)
    objectives = (OBJ,)

    def __init__(self, space: SearchSpace, score: Callable[[Architecture], float]) -> None:
        self.space_name = space.name
        self.score = score

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        return Result(metrics={"val_acc": self.score(arch)}, test_metrics={"test_acc": 0.0})

    def describe(self) -> dict[str, Any]:
        return {"kind": "fake", "space": self.space_name}


def _gcn_share(arch: Architecture) -> float:
    _, ops = GnnSpace.genes(arch)
    return sum(op == "gcn" for op in ops) / len(ops)


def _drive(strategy: Reinforce, evaluator: Evaluator, steps: int) -> list[str]:
    keys = []
    for _ in range(steps):
        (arch,) = strategy.ask(1)
        keys.append(strategy.space.canonical_key(arch))
        strategy.tell(arch, evaluator.evaluate(arch).visible())
    return keys


def test_importing_the_module_does_not_import_torch() -> None:
    code = "import sys, nasforge.strategies.reinforce; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_runs_100_distinct_archs_in_the_experiment_loop(db_path: Path) -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    strategy = Reinforce(ev.space, objective=OBJ, seed=0)
    with SqlStore(db_path) as store:
        exp = Experiment(name="rl", space=ev.space, evaluator=ev, strategy=strategy, store=store)
        summary = exp.run(Budget(100))
        stored = store.trials(exp.record.id)
    assert summary.archs == 100 == len({t.key for t in stored})
    assert summary.stop_reason == "budget spent"
    assert strategy.updates == len(strategy.history) >= 100  # batch_size 1: one step per result
    assert strategy.baseline is not None and 0.0 < strategy.baseline < 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_policy_learns_an_obvious_optimum(seed: int) -> None:
    """Reward = share of 'gcn' ops: the policy's own samples end up mostly gcn."""
    space = GnnSpace()
    ev = FakeEvaluator(space, _gcn_share)
    strategy = Reinforce(space, objective=OBJ, seed=seed)

    def policy_gcn_share() -> float:  # the mean reward of 500 fresh policy samples
        tokens = strategy.policy.sample(np.random.default_rng(123), 500)
        return float(np.mean([_gcn_share(strategy.arch_of(t)) for t in tokens]))

    before = strategy.choice_probabilities()["gcn"]  # op_0, the first searched choice
    share_before = policy_gcn_share()
    _drive(strategy, ev, 200)
    after = strategy.choice_probabilities()["gcn"]
    assert abs(before - 1 / 9) < 0.03  # starts near uniform over the 9 ops
    assert after > before + 0.1
    assert share_before < 0.2 < 0.6 < policy_gcn_share()


def test_same_seed_same_proposals_and_resume_continues() -> None:
    ev = NasBenchGraphEvaluator(dataset="citeseer")
    straight = Reinforce(ev.space, objective=OBJ, seed=3)
    keys = _drive(straight, ev, 60)
    assert _drive(Reinforce(ev.space, objective=OBJ, seed=3), ev, 60) == keys
    assert _drive(Reinforce(ev.space, objective=OBJ, seed=4), ev, 60) != keys
    # a fresh strategy told the first 30 results continues exactly as the straight run did
    resumed = Reinforce(ev.space, objective=OBJ, seed=3)
    for arch, _ in straight.history[:30]:
        resumed.tell(arch, ev.evaluate(arch).visible())
    assert _drive(resumed, ev, 30) == keys[30:]


def test_leaves_torch_global_state_alone() -> None:
    """The controller runs on one thread, but the caller's thread count is restored."""
    ev = NasBenchGraphEvaluator(dataset="cora")
    caller = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rng_state = torch.random.get_rng_state()
        _drive(Reinforce(ev.space, objective=OBJ, seed=0), ev, 5)
        assert torch.get_num_threads() == 2
        assert torch.equal(torch.random.get_rng_state(), rng_state)
    finally:
        torch.set_num_threads(caller)


@pytest.mark.parametrize(
    ("space", "score"),
    [
        (Nb201Space(), lambda a: sum(op == "nor_conv_3x3" for op in a["ops"]) / 6),
        (MlpSpace(), lambda a: a["depth"] / 10 + (a["activation"] == "relu")),
    ],
    ids=["nb201", "mlp"],
)
def test_searches_the_nb201_and_mlp_spaces(
    space: SearchSpace, score: Callable[[Architecture], float], db_path: Path
) -> None:
    ev = FakeEvaluator(space, score)
    strategy = Reinforce(space, objective=OBJ, seed=0)
    with SqlStore(db_path) as store:
        exp = Experiment(name="s", space=space, evaluator=ev, strategy=strategy, store=store)
        summary = exp.run(Budget(60))
        stored = store.trials(exp.record.id)
    assert summary.archs == 60 == len({t.key for t in stored})
    for trial in stored:
        space.validate(trial.arch)
    assert strategy.updates == 60


@pytest.mark.parametrize("space", [GnnSpace(), Nb201Space(), MlpSpace()], ids=lambda s: s.name)
def test_params_of_inverts_from_choices(space: SearchSpace) -> None:
    rng = np.random.default_rng(0)
    strategy = Reinforce(space, objective=OBJ, seed=0)
    for _ in range(200):
        arch = space.sample(rng)
        assert space.from_choices(space.to_choices(arch)) == arch
        assert strategy.arch_of(strategy.tokens_of(arch)) == arch


def _opaque_space() -> SearchSpace:
    """A space of a class the strategy does not know (its methods are never called)."""

    def stub(*args: object) -> Any:
        raise AssertionError("not called")

    cls = type("OpaqueSpace", (SearchSpace,), dict.fromkeys(SearchSpace.__abstractmethods__, stub))
    space: SearchSpace = cls()
    space.name = "opaque"
    return space


def test_refuses_a_space_without_to_choices() -> None:
    with pytest.raises(ConfigError, match=r"'opaque' \(OpaqueSpace\) does not provide it"):
        Reinforce(_opaque_space(), objective=OBJ, seed=0)


def test_exhausts_a_small_space_without_repeats() -> None:
    space = GnnSpace(name="tiny", ops=("gcn", "sage", "skip"), n_nodes=2)
    ev = FakeEvaluator(space, _gcn_share)
    strategy = Reinforce(space, objective=OBJ, seed=0)
    keys = []
    while archs := strategy.ask(1):
        keys.append(space.canonical_key(archs[0]))
        strategy.tell(archs[0], ev.evaluate(archs[0]))
    assert len(keys) == len(set(keys)) == space.size


def test_failed_results_are_rewarded_below_the_worst() -> None:
    space = GnnSpace()
    strategy = Reinforce(space, objective=OBJ, seed=0, baseline_decay=0.5)
    archs = list(itertools.islice(space.enumerate(), 4))
    strategy.tell(archs[0], Result.failed("oom"))  # nothing finite yet: not learned from
    assert strategy.baseline is None and strategy.updates == 0
    strategy.tell(archs[1], Result(metrics={"val_acc": 0.5}))  # the baseline starts here
    strategy.tell(archs[2], Result(metrics={"val_acc": 0.7}))  # 0.5 * 0.5 + 0.5 * 0.7
    assert strategy.baseline == pytest.approx(0.6)
    strategy.tell(archs[3], Result.failed("diverged"))  # reward 0.5 - (0.7 - 0.5) = 0.3
    assert strategy.baseline == pytest.approx(0.45)
    assert strategy.updates == 3


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("hidden_size", 0, "hidden_size must be an integer >= 1, got 0"),
        ("lr", 0.0, r"lr must be a finite number > 0, got 0.0"),
        ("lr", math.nan, r"lr must be a finite number > 0, got nan"),
        ("baseline_decay", 1.0, r"baseline_decay must be a number in \[0, 1\), got 1.0"),
        ("entropy_weight", -1e-4, "entropy_weight must be a finite number >= 0"),
        ("temperature", "hot", "temperature must be a finite number > 0, got 'hot'"),
        ("tanh_constant", 0, "tanh_constant must be a finite number > 0, or None"),
        ("batch_size", True, "batch_size must be an integer >= 1, got True"),
    ],
)
def test_rejects_bad_options(option: str, value: Any, message: str) -> None:
    options: dict[str, Any] = {option: value}
    with pytest.raises(ConfigError, match=message):
        Reinforce(GnnSpace(), objective=OBJ, **options)
