"""Zero-cost proxies on gnn, nb201 and mlp models, the ProxyEvaluator in a real search, and
the rankings that warm starts and ``nasforge proxies`` use."""

from __future__ import annotations

import copy
import math
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.api import make_strategy
from nasforge.architecture import Architecture
from nasforge.budget import Budget
from nasforge.errors import ConfigError, InvalidArchitectureError
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.evaluators.proxies import ProxyEvaluator, rank_by_proxy, rank_sample
from nasforge.evaluators.training import TrainingEvaluator
from nasforge.experiment import Experiment
from nasforge.objective import Direction
from nasforge.proxies import (
    PROXIES,
    SYNFLOW_OF_ZERO,
    fisher,
    grad_norm,
    jacov,
    make_batch,
    score,
    snip,
    synflow,
)
from nasforge.result import Status
from nasforge.spaces.gnn import GnnHyper, GnnSpace
from nasforge.spaces.mlp import MlpSpace
from nasforge.spaces.nb201 import Nb201Hyper, Nb201Space
from nasforge.store.sql import SqlStore
from nasforge.tasks.image import load_digits
from nasforge.tasks.node import NodeClassificationTask, planted_partition
from nasforge.tasks.supervised import SupervisedTask
from nasforge.tasks.tabular import load_builtin, tabular_task
from nasforge.train.cost import count_params

GNN, NB201, MLP = GnnSpace(), Nb201Space(), MlpSpace()
GRAPH = NodeClassificationTask("synthetic", planted_partition(nodes=120, features=8, seed=3))
GNN_HYPER = GnnHyper(hidden=16, dropout=0.5)
NB201_HYPER = Nb201Hyper(channels=4, cells_per_stage=1)
CONV_CELL = ("nor_conv_3x3", "nor_conv_1x1", "skip_connect", "none", "avg_pool_3x3", "nor_conv_3x3")


@cache
def digits() -> SupervisedTask:
    return load_digits()


@cache
def tabular(name: str) -> SupervisedTask:
    return load_builtin(name)


def mlp(widths: tuple[int, ...], *, activation: str = "relu", norm: str = "none") -> Architecture:
    """An architecture of the default mlp space (unused widths filled with 16)."""
    filler = (16,) * (MLP.max_depth - len(widths))
    arch = Architecture.create(
        "mlp",
        depth=len(widths),
        widths=(*widths, *filler),
        activation=activation,
        dropout=0.1,
        norm=norm,
    )
    MLP.validate(arch)
    return arch


# (family, task, space, hyper, architectures covering the family's ops)
FAMILIES = {
    "gnn": lambda: (
        GRAPH,
        GNN,
        GNN_HYPER,
        [
            GNN.make([0, 1, 2, 3], ["gat", "gcn", "gin", "cheb"]),
            GNN.make([0, 0, 1, 1], ["sage", "arma", "graph", "fc"]),
            GNN.make([0, 1, 1, 0], ["gcn", "skip", "arma", "skip"]),
        ],
    ),
    "nb201": lambda: (
        digits(),
        NB201,
        NB201_HYPER,
        [NB201.make(CONV_CELL), NB201.make(["avg_pool_3x3", "skip_connect"] * 3)],
    ),
    "mlp-classification": lambda: (
        tabular("breast_cancer"),
        MLP,
        None,
        [mlp((32, 16), norm="batch"), mlp((64,), activation="tanh", norm="layer")],
    ),
    "mlp-regression": lambda: (
        tabular("diabetes"),
        MLP,
        None,
        [mlp((32, 16), activation="gelu"), mlp((16, 16, 16), norm="batch")],
    ),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_proxy_is_finite_and_deterministic(family: str) -> None:
    task, space, hyper, archs = FAMILIES[family]()
    ev = ProxyEvaluator(task=task, space=space, hyper=hyper, proxies=PROXIES, seed=1)
    again = ProxyEvaluator(task=task, space=space, hyper=hyper, proxies=PROXIES, seed=1)
    for arch in archs:
        result = ev.evaluate(arch)
        assert result.status is Status.COMPLETE, result.reason
        assert set(result.metrics) == {f"proxy_{p}" for p in PROXIES}
        assert all(math.isfinite(v) for v in result.metrics.values())
        assert result.metrics["proxy_snip"] > 0 and result.metrics["proxy_grad_norm"] > 0
        assert result.metrics["proxy_fisher"] > 0
        assert result.metrics["proxy_params"] == count_params(ev.build_model(arch))
        assert result.costs["params"] == result.metrics["proxy_params"]
        assert result.costs["flops"] == result.metrics["proxy_flops"] > 0
        assert result.test_metrics == {} and result.fidelity is None
        if arch == archs[0]:
            assert again.evaluate(arch).metrics == result.metrics  # same seed, same numbers


def test_the_seed_changes_weights_and_batch_but_not_the_costs() -> None:
    task = tabular("breast_cancer")
    arch = mlp((32, 16))
    a = ProxyEvaluator(task=task, space=MLP, proxies=PROXIES, seed=0).evaluate(arch)
    b = ProxyEvaluator(task=task, space=MLP, proxies=PROXIES, seed=1).evaluate(arch)
    assert a.metrics["proxy_snip"] != b.metrics["proxy_snip"]
    assert a.metrics["proxy_synflow"] != b.metrics["proxy_synflow"]
    assert a.costs == b.costs


def test_building_leaves_the_global_random_state_alone() -> None:
    ev = ProxyEvaluator(task=GRAPH, space=GNN, hyper=GNN_HYPER, seed=0)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ev.evaluate(GNN.make([0, 1, 2, 3], ["gcn", "gat", "sage", "fc"]))
    assert torch.equal(torch.rand(3), expected)


def test_shared_pass_equals_each_proxy_alone() -> None:
    for task, space, hyper, archs in (FAMILIES["gnn"](), FAMILIES["nb201"]()):
        ev = ProxyEvaluator(task=task, space=space, hyper=hyper, seed=0)
        model = ev.build_model(archs[0])
        shared = score(lambda m=model: copy.deepcopy(m), ev.batch, PROXIES)
        for name, proxy in (
            ("snip", snip),
            ("grad_norm", grad_norm),
            ("fisher", fisher),
            ("jacov", jacov),
            ("synflow", synflow),
        ):
            assert proxy(copy.deepcopy(model), ev.batch) == pytest.approx(shared[name], rel=1e-5)


def test_synflow_grows_with_width() -> None:
    ev = ProxyEvaluator(task=tabular("breast_cancer"), space=MLP, proxies=["synflow"])
    narrow = ev.evaluate(mlp((16, 16))).metrics["proxy_synflow"]
    wide = ev.evaluate(mlp((128, 128))).metrics["proxy_synflow"]
    assert wide > narrow + 1  # ln S: more than e times larger


def test_synflow_beyond_float32_is_a_finite_log() -> None:
    """A deep network whose SynFlow score overflows float32 (and its gradients would, without
    the rescaled backward pass) gets a finite ``ln S``."""
    space = MlpSpace(depths=(64,), widths=(256,), activations=("relu",), norms=("batch",))
    arch = space.sample(np.random.default_rng(0))
    ev = ProxyEvaluator(task=tabular("breast_cancer"), space=space, proxies=["synflow"])
    value = ev.evaluate(arch).metrics["proxy_synflow"]
    assert math.log(torch.finfo(torch.float32).max) < value < math.log(1e308)


def test_the_zero_cell_scores_below_a_conv_cell() -> None:
    ev = ProxyEvaluator(
        task=digits(), space=NB201, hyper=NB201_HYPER, proxies=["synflow", "snip", "grad_norm"]
    )
    zero = ev.evaluate(NB201.make(["none"] * 6))
    conv = ev.evaluate(NB201.make(CONV_CELL))
    assert zero.ok and conv.ok
    assert zero.metrics["proxy_synflow"] == SYNFLOW_OF_ZERO < conv.metrics["proxy_synflow"]
    # the output of the zero cell ignores its input: no weight gets any gradient
    assert zero.metrics["proxy_snip"] == 0 < conv.metrics["proxy_snip"]
    assert zero.metrics["proxy_grad_norm"] == 0 < conv.metrics["proxy_grad_norm"]


def test_jacov_is_at_most_minus_the_batch_size() -> None:
    """``-sum(ln(v + k) + 1/(v + k))`` over the eigenvalues of a correlation matrix (trace B)
    is largest, about -B, when the Jacobian rows are uncorrelated."""
    task = tabular("breast_cancer")
    ev = ProxyEvaluator(task=task, space=MLP, proxies=["jacov"], batch_size=16)
    for arch in (mlp((32, 16)), mlp((256,), activation="tanh")):
        value = ev.evaluate(arch).metrics["proxy_jacov"]
        assert value <= -16 + 1e-3


def test_batches_are_real_seeded_data() -> None:
    task = tabular("breast_cancer")
    a, b = make_batch(task, seed=0, batch_size=32), make_batch(task, seed=1, batch_size=32)
    assert a.inputs[0].shape == (32, 30) and not torch.equal(a.inputs[0], b.inputs[0])
    assert torch.equal(a.inputs[0], make_batch(task, seed=0, batch_size=32).inputs[0])
    rows = {tuple(r.tolist()) for r in task.x_train}
    assert all(tuple(r.tolist()) in rows for r in a.inputs[0])  # drawn from the train split
    graph = make_batch(GRAPH, seed=0, max_rows=10)
    train = torch.nonzero(GRAPH.data.train_mask).flatten()
    assert graph.rows is not None and torch.equal(graph.rows, train)
    assert len(graph.probe) == 10 and bool(GRAPH.data.train_mask[graph.probe].all())
    regression = make_batch(tabular("diabetes"), seed=0)
    assert regression.regression and regression.target.dtype == torch.float32


def test_a_diverging_loss_fails_the_trial_with_the_reason() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 4))
    task = tabular_task(x, rng.normal(size=100) * 1e30, kind="regression", name="huge")
    ev = ProxyEvaluator(task=task, space=MLP, proxies=["synflow", "snip"])
    result = ev.evaluate(mlp((16,)))  # squared errors of 1e60 overflow float32
    assert result.status is Status.FAILED and result.metrics == {}
    assert result.reason == "ProxyError: the loss on the batch is inf"


class BrokenSpace(MlpSpace):
    """Builds models whose forward pass raises."""

    def build(self, arch: Architecture, task: object, hyper: object = None) -> torch.nn.Module:
        model = super().build(arch, task, hyper)  # type: ignore[arg-type]

        def boom(*args: object) -> torch.Tensor:
            raise RuntimeError("op not supported on this input")

        model.forward = boom  # type: ignore[method-assign]
        return model


def test_an_exception_fails_the_trial_and_misuse_raises() -> None:
    ev = ProxyEvaluator(task=tabular("breast_cancer"), space=BrokenSpace(), proxies=["snip"])
    result = ev.evaluate(mlp((16,)))
    assert result.status is Status.FAILED
    assert result.reason == "RuntimeError: op not supported on this input"
    with pytest.raises(InvalidArchitectureError, match="scores space 'mlp'"):
        ev.evaluate(GNN.make([0, 1, 2, 3], ["gcn"] * 4))


def test_configuration_errors_name_the_rule() -> None:
    task = tabular("breast_cancer")
    with pytest.raises(ConfigError, match=r"unknown proxy 'naswot'; valid: synflow, snip"):
        ProxyEvaluator(task=task, space=MLP, proxies=["naswot"])
    with pytest.raises(ConfigError, match="must be among the proxies computed"):
        ProxyEvaluator(task=task, space=MLP, proxies=["snip"], objective="synflow")
    with pytest.raises(ConfigError, match="distinct"):
        ProxyEvaluator(task=task, space=MLP, proxies=["snip", "snip"])
    with pytest.raises(ConfigError, match=r"needs an nb201 .* or mlp .* space; got space 'gnn'"):
        ProxyEvaluator(task=task, space=GNN)
    with pytest.raises(ConfigError, match="batch_size and max_rows must be >= 2"):
        ProxyEvaluator(task=task, space=MLP, batch_size=1)


def test_proxy_search_through_the_experiment_loop(db_path: Path) -> None:
    ev = ProxyEvaluator(
        task=GRAPH, space=GNN, hyper=GNN_HYPER, proxies=["synflow", "snip", "jacov"], seed=0
    )
    assert ev.objectives[0].metric == "proxy_synflow"
    assert ev.objectives[0].direction is Direction.MAXIMIZE
    with SqlStore(db_path) as store:
        exp = Experiment(
            name="zero-cost",
            space=GNN,
            evaluator=ev,
            strategy=make_strategy("random", GNN, objective=ev.objectives[0], seed=0),
            store=store,
        )
        summary = exp.run(Budget(4))
        trials = store.trials(exp.record.id)
        record = store.get_experiment("zero-cost")
    assert summary.new_trials == 4 and len(trials) == 4
    assert all(t.status is Status.COMPLETE for t in trials)
    for t in trials:
        assert set(t.metrics) == {"proxy_synflow", "proxy_snip", "proxy_jacov"}
        assert set(t.costs) == {"params", "flops"}
        assert t.metrics == ev.evaluate(t.arch).metrics  # stored as computed
    best = max(trials, key=lambda t: t.metrics["proxy_synflow"])
    assert summary.best is not None and summary.best.number == best.number
    assert record.config["evaluator"]["kind"] == "proxies"
    assert record.config["evaluator"]["proxies"] == ["synflow", "snip", "jacov"]


def test_rank_by_proxy_samples_unseen_architectures_best_first() -> None:
    task = tabular("breast_cancer")
    seen = [MLP.sample(np.random.default_rng(0)) for _ in range(1)]
    ranked = rank_by_proxy(MLP, task, n_samples=6, proxy="snip", seed=0, exclude=seen)
    assert len(ranked) == 6
    keys = [MLP.canonical_key(a) for a, _ in ranked]
    assert len(set(keys)) == 6 and MLP.canonical_key(seen[0]) not in keys
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True)
    ev = ProxyEvaluator(task=task, space=MLP, proxies=["snip"], seed=0, costs=False)
    assert ev.evaluate(ranked[0][0]).costs == {} and ev.metrics == ("proxy_snip",)
    assert all(ev.evaluate(a).metrics["proxy_snip"] == s for a, s in ranked)
    assert rank_by_proxy(MLP, task, n_samples=6, proxy="snip", seed=0, exclude=seen) == ranked


def test_rank_by_proxy_takes_data_and_model_settings_from_a_training_evaluator() -> None:
    trainer = TrainingEvaluator(task=GRAPH, space=GNN, hyper=GNN_HYPER)
    ranked = rank_by_proxy(GNN, trainer, n_samples=3, proxy="params", seed=2)
    ev = ProxyEvaluator(task=GRAPH, space=GNN, hyper=GNN_HYPER, proxies=["params"], seed=2)
    assert [s for _, s in ranked] == [ev.evaluate(a).metrics["proxy_params"] for a, _ in ranked]
    with pytest.raises(ConfigError, match="proxies need data"):
        rank_by_proxy(GNN, NasBenchGraphEvaluator(dataset="cora"), n_samples=3)
    with pytest.raises(ConfigError, match="unknown proxy"):
        rank_by_proxy(GNN, GRAPH, n_samples=3, proxy="zen")


def test_rank_sample_from_a_task_spec() -> None:
    rows = rank_sample("tabular:diabetes", n=4, proxies=["grad_norm", "params"], seed=0)
    assert [r.rank for r in rows] == [1, 2, 3, 4]
    assert all(r.reason is None and set(r.scores) == {"grad_norm", "params"} for r in rows)
    firsts = [r.scores["grad_norm"] for r in rows]
    assert firsts == sorted(firsts, reverse=True)
    assert all(r.arch.space == "mlp" and r.key == MLP.canonical_key(r.arch) for r in rows)
    assert all(r.costs["params"] == r.scores["params"] for r in rows)


def test_rank_sample_from_a_task_object_and_space() -> None:
    rows = rank_sample(digits(), NB201, n=2, proxies=["params"], hyper=NB201_HYPER, seed=0)
    ev = ProxyEvaluator(task=digits(), space=NB201, hyper=NB201_HYPER, proxies=["params"])
    assert [r.scores["params"] for r in rows] == sorted(
        (ev.evaluate(r.arch).metrics["proxy_params"] for r in rows), reverse=True
    )
    assert all(r.scores["params"] < 30_000 for r in rows)  # the tiny network, not C=16, N=5
