"""Mini-batch training on real tabular and image data."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nasforge.spaces.nb201 import Nb201Hyper, Nb201Space
from nasforge.tasks.image import load_digits
from nasforge.tasks.supervised import SupervisedTask
from nasforge.tasks.tabular import load_builtin
from nasforge.train.supervised import train_supervised
from nasforge.train.trainer import TrainConfig, TrainingDiverged, make_optimizer


def _mlp(task: SupervisedTask, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    features = math.prod(task.input_shape)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(features, 32), nn.ReLU(), nn.Linear(32, task.num_outputs)
    )


def test_classification_learns_and_is_deterministic() -> None:
    task = load_builtin("breast_cancer")
    config = TrainConfig(epochs=15, lr=1e-3, batch_size=32, patience=None, seed=3)
    first = train_supervised(_mlp(task), task, config)
    assert first.metric == "acc"
    assert first.val > 0.93 and first.test > 0.9  # a linear-ish model reaches ~0.95+
    assert len(first.curve) == 15 and first.curve[0]["train_loss"] > first.curve[-1]["train_loss"]
    again = train_supervised(_mlp(task), task, config)
    assert (again.val, again.test, again.best_epoch) == (first.val, first.test, first.best_epoch)
    assert again.curve == first.curve


def test_test_metric_is_read_at_the_best_validation_epoch() -> None:
    task = load_digits()
    out = train_supervised(
        _mlp(task), task, TrainConfig(epochs=8, lr=1e-2, batch_size=64, patience=None)
    )
    vals = [c["val_acc"] for c in out.curve]
    assert out.val == max(vals)
    assert out.best_epoch == vals.index(max(vals)) + 1
    assert 0.85 < out.test <= 1.0


def test_select_loss_reads_the_epoch_of_lowest_validation_loss() -> None:
    task = load_digits()
    config = TrainConfig(epochs=8, lr=1e-2, batch_size=64, patience=None, select="loss")
    out = train_supervised(_mlp(task), task, config)
    losses = [c["val_loss"] for c in out.curve]
    assert out.best_epoch == losses.index(min(losses)) + 1
    assert out.val == out.curve[out.best_epoch - 1]["val_acc"]


def test_regression_reports_rmse_in_target_units() -> None:
    task = load_builtin("diabetes")
    out = train_supervised(
        _mlp(task), task, TrainConfig(epochs=60, lr=1e-2, batch_size=32, patience=15)
    )
    assert out.metric == "rmse"
    spread = float(task.y_val.std())  # predicting the mean scores about this
    assert 40 < out.val < spread  # published MLP/linear baselines: RMSE ~ 53-58
    vals = [c["val_rmse"] for c in out.curve]
    assert out.val == min(vals)


def test_patience_stops_early() -> None:
    task = load_builtin("wine")
    out = train_supervised(
        _mlp(task), task, TrainConfig(epochs=500, lr=1e-2, batch_size=16, patience=5)
    )
    assert out.epochs_run < 500
    assert out.epochs_run - out.best_epoch == 5


def test_divergence_before_any_good_epoch_raises() -> None:
    task = load_builtin("diabetes")
    wild = TrainConfig(epochs=30, lr=1e6, optimizer="sgd", batch_size=16, patience=None)
    with pytest.raises(TrainingDiverged, match="became"):
        train_supervised(_mlp(task), task, wild)


def test_cosine_schedule_and_momentum() -> None:
    task = load_digits()
    config = TrainConfig(
        epochs=5, lr=0.05, optimizer="sgd", momentum=0.9, schedule="cosine", patience=None
    )
    out = train_supervised(_mlp(task), task, config)
    assert out.val > 0.9


def test_fast_adam_is_fused_and_exact_adam_and_sgd_pytorchs_default() -> None:
    model = nn.Linear(3, 2)
    assert make_optimizer(model, TrainConfig(optimizer="adam")).defaults["fused"] is True
    assert not make_optimizer(model, TrainConfig(optimizer="adam", exact=True)).defaults["fused"]
    for exact in (False, True):  # fused SGD fails on supernets' partly trained parameters
        sgd = make_optimizer(model, TrainConfig(optimizer="sgd", momentum=0.9, exact=exact))
        assert not sgd.defaults["fused"]


def test_an_image_model_trained_fast_is_handed_back_contiguous_and_learns_as_the_exact() -> None:
    task = load_digits()
    space = Nb201Space()
    arch = space.make(["nor_conv_3x3", "skip_connect", "nor_conv_1x1"] * 2)
    outcomes = []
    for exact in (False, True):
        torch.manual_seed(0)
        model = space.build(arch, task, Nb201Hyper(channels=4, cells_per_stage=1))
        config = TrainConfig(epochs=3, lr=0.05, optimizer="sgd", momentum=0.9, exact=exact)
        out = train_supervised(model, task, config, keep_state=True)
        assert out.state is not None
        assert all(t.is_contiguous() for t in [*model.state_dict().values(), *out.state.values()])
        outcomes.append(out.val)
    assert min(outcomes) > 0.5  # both learn (10 classes: chance is 0.1)
    assert abs(outcomes[0] - outcomes[1]) < 0.2
