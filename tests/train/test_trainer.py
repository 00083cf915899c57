"""The trainer: learns, is deterministic for a seed, stops early, reports divergence."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from tests.graphs import sparse_features

from nasforge.errors import ConfigError
from nasforge.spaces.gnn import GnnHyper, GnnSpace
from nasforge.tasks.node import NodeClassificationTask, planted_partition
from nasforge.train.cost import count_flops, count_params, measure_latency_ms
from nasforge.train.trainer import TrainConfig, TrainingDiverged, train_node_classifier

SPACE = GnnSpace()
TASK = NodeClassificationTask(
    "synthetic", planted_partition(nodes=300, features=16, p_in=0.05, signal=1.0, seed=1)
)
ARCH = SPACE.make([0, 1, 0, 0], ["gcn", "gcn", "sage", "skip"])


def _train(config: TrainConfig) -> tuple[float, float, list[dict[str, float]]]:
    torch.manual_seed(config.seed)
    model = SPACE.build(ARCH, TASK, GnnHyper(hidden=16, dropout=0.3))
    out = train_node_classifier(model, TASK.data, config)
    return out.val_acc, out.test_acc, out.curve


def test_learns_the_planted_partition() -> None:
    val, test, curve = _train(TrainConfig(epochs=60, lr=0.01, seed=0))
    assert val > 0.8 and test > 0.8
    assert curve[-1]["train_loss"] < curve[0]["train_loss"]
    assert set(curve[0]) == {"epoch", "train_loss", "val_acc"}  # no test metric in the curve


def test_same_seed_same_run_other_seed_other_run() -> None:
    a = _train(TrainConfig(epochs=30, seed=3))
    assert a == _train(TrainConfig(epochs=30, seed=3))
    assert a[2] != _train(TrainConfig(epochs=30, seed=4))[2]


def test_early_stopping_and_best_epoch() -> None:
    torch.manual_seed(0)
    model = SPACE.build(ARCH, TASK, GnnHyper(hidden=16))
    out = train_node_classifier(model, TASK.data, TrainConfig(epochs=500, patience=5, seed=0))
    assert out.epochs_run < 500 and out.epochs_run - out.best_epoch == 5
    assert out.val_acc == max(p["val_acc"] for p in out.curve)


def test_divergence_is_reported() -> None:
    torch.manual_seed(0)
    model = SPACE.build(ARCH, TASK, GnnHyper(hidden=16))
    with pytest.raises(TrainingDiverged, match="training loss became"):
        train_node_classifier(
            model, TASK.data, TrainConfig(epochs=50, lr=1e30, optimizer="sgd", patience=None)
        )


def test_config_rules() -> None:
    with pytest.raises(ConfigError, match="optimizer must be one of adam, sgd"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ConfigError, match="epochs must be >= 1"):
        TrainConfig(epochs=0)


def test_costs() -> None:
    model = SPACE.build(ARCH, TASK, GnnHyper(hidden=16))
    model.eval()

    def forward() -> object:
        return model(TASK.data.x, TASK.data.edge_index)

    assert count_params(model) == sum(p.numel() for p in model.parameters())
    assert count_flops(forward) > 2 * TASK.num_nodes * 16 * 16  # at least one dense layer
    assert 0 < measure_latency_ms(forward, warmup=1, repeats=3) < 5_000


def test_keep_best_stops_at_divergence_with_the_epochs_before() -> None:
    torch.manual_seed(0)
    model = SPACE.build(ARCH, TASK, GnnHyper(hidden=16))
    # the loss is finite at first, then blows up under a huge learning rate
    config = TrainConfig(
        epochs=200, lr=5e3, optimizer="sgd", patience=None, on_divergence="keep_best"
    )
    out = train_node_classifier(model, TASK.data, config)
    assert out.diverged_at is not None and out.best_epoch < out.diverged_at
    assert len(out.curve) == out.diverged_at - 1
    with pytest.raises(ConfigError, match="on_divergence must be"):
        TrainConfig(on_divergence="ignore")


def test_select_loss_reports_the_epoch_of_lowest_validation_loss() -> None:
    torch.manual_seed(0)
    model = SPACE.build(ARCH, TASK, GnnHyper(hidden=16, dropout=0.3))
    config = TrainConfig(epochs=80, lr=0.05, patience=None, seed=0, select="loss")
    out = train_node_classifier(model, TASK.data, config)
    losses = [p["val_loss"] for p in out.curve]
    assert len(losses) == 80 and all(math.isfinite(v) for v in losses)
    assert out.best_epoch == losses.index(min(losses)) + 1  # earliest on ties
    assert out.val_acc == out.curve[out.best_epoch - 1]["val_acc"]
    # the default ranks by accuracy, and records no validation loss
    torch.manual_seed(0)
    model = SPACE.build(ARCH, TASK, GnnHyper(hidden=16, dropout=0.3))
    by_acc = train_node_classifier(model, TASK.data, replace(config, select="metric"))
    assert "val_loss" not in by_acc.curve[0]
    assert by_acc.val_acc == max(p["val_acc"] for p in by_acc.curve)
    assert [p["val_acc"] for p in by_acc.curve] == [p["val_acc"] for p in out.curve]


def test_exact_and_fast_ops_each_repeat_their_run_and_both_learn() -> None:
    """On mostly-zero features the fast ops draw their dropout masks from another stream:
    each path repeats itself for a seed, both learn, and only ``exact`` is in the record."""
    task = NodeClassificationTask(
        "synthetic", sparse_features(nodes=300, features=60, seed=0, p_in=0.05, signal=2.0)
    )
    runs = {}
    for exact in (False, True, False):
        config = TrainConfig(epochs=60, seed=1, exact=exact, patience=None)
        torch.manual_seed(1)
        model = SPACE.build(ARCH, task, GnnHyper(hidden=16, dropout=0.5))
        out = train_node_classifier(model, task.data, config)
        assert out.val_acc > 0.6, exact  # four classes: chance is 0.25
        curve = [p["train_loss"] for p in out.curve]
        assert runs.setdefault(exact, curve) == curve
    assert runs[True] != runs[False]
    assert "exact" not in TrainConfig().describe()  # stored configs from before it still match
    assert TrainConfig(exact=True).describe()["exact"] is True


def test_select_rules_and_describe() -> None:
    with pytest.raises(ConfigError, match="select must be one of metric, loss, got 'acc'"):
        TrainConfig(select="acc")
    assert "select" not in TrainConfig().describe()  # stored configs from before it still match
    assert TrainConfig(select="loss").describe()["select"] == "loss"
