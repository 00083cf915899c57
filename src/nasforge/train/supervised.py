"""Mini-batch training of image and tabular models, with early stopping on validation."""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

from nasforge.train import fastops
from nasforge.train.device import model_device
from nasforge.train.fastops import exact_ops
from nasforge.train.trainer import (
    Distill,
    EpochLog,
    FitOutcome,
    StopRule,
    TrainConfig,
    TrainingDiverged,
    make_optimizer,
    make_schedule,
)

__all__ = ["FitOutcome", "Splits", "predict", "score", "train_supervised"]

_EVAL_BATCH = 1024


class Splits(Protocol):
    """What :func:`train_supervised` reads of a task
    (:class:`~nasforge.tasks.supervised.SupervisedTask`)."""

    @property
    def kind(self) -> str: ...

    @property
    def x_train(self) -> torch.Tensor: ...

    @property
    def y_train(self) -> torch.Tensor: ...

    @property
    def x_val(self) -> torch.Tensor: ...

    @property
    def y_val(self) -> torch.Tensor: ...

    @property
    def x_test(self) -> torch.Tensor: ...

    @property
    def y_test(self) -> torch.Tensor: ...

    @property
    def metric(self) -> str: ...


def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's outputs on ``x`` in eval mode, computed in chunks on the model's device
    (where the outputs stay)."""
    model.eval()
    device = model_device(model)
    with torch.no_grad():
        return torch.cat(
            [model(x[i : i + _EVAL_BATCH].to(device)) for i in range(0, len(x), _EVAL_BATCH)]
        )


def score(out: torch.Tensor, y: torch.Tensor, kind: str, scale: tuple[float, float]) -> float:
    """Accuracy for classification; RMSE in the targets' units for regression."""
    if kind == "classification":
        return float((out.argmax(dim=-1) == y).float().mean())
    mean, std = scale
    pred = out.view_as(y) * std + mean
    return float(torch.sqrt(((pred - y) ** 2).mean()))


def train_supervised(
    model: nn.Module,
    task: Splits,
    config: TrainConfig,
    *,
    keep_state: bool = False,
    stop: StopRule | None = None,
    distill: Distill | None = None,
) -> FitOutcome:
    """Train ``model`` on ``task``'s training split in shuffled mini-batches.

    Cross-entropy for classification; mean squared error on targets standardised with the
    training split's mean and deviation for regression (metrics are reported in the original
    units). After every epoch the validation and test metrics are computed; the returned
    values are the ones at the best validation epoch (earliest on ties; by validation loss
    with ``config.select == "loss"``), and the curve holds only the training loss and
    validation metrics. The model is built by the caller (seed it with
    ``torch.manual_seed(config.seed)`` first) and trains where it is: the data is moved to
    the model's device. ``config.seed`` also fixes the batch order and
    dropout. ``stop`` may end the run after any epoch; its reason is returned as ``stopped``.
    With ``distill``, the loss also follows a teacher's outputs
    (:class:`~nasforge.train.trainer.Distill`).

    Raises:
        TrainingDiverged: When the training loss becomes NaN or infinite (with
            ``on_divergence="fail"``, or before any epoch completed).
    """
    torch.manual_seed(config.seed)
    order = torch.Generator().manual_seed(config.seed)
    opt = make_optimizer(model, config)
    schedule = make_schedule(opt, config)
    regression = task.kind == "regression"
    device = model_device(model)  # the data goes where the model is (as is on the CPU)
    x, y = task.x_train.to(device), task.y_train.to(device)
    x_val, y_val = task.x_val.to(device), task.y_val.to(device)
    x_test, y_test = task.x_test.to(device), task.y_test.to(device)
    if regression:
        mean, std = float(y.mean()), float(y.std()) or 1.0
        target = (y - mean) / std
        loss_fn: nn.Module = nn.MSELoss()
    else:
        mean, std = 0.0, 1.0
        target = y
        loss_fn = nn.CrossEntropyLoss()
    soft = None if distill is None else distill.targets(x)  # (N, outputs), teacher's units
    better: Callable[[float, float], bool] = operator.lt if regression else operator.gt
    metric = task.metric
    n = len(x)
    batch = min(config.batch_size, n)
    worst = math.inf if regression else -math.inf
    # for regression the validation loss (MSE) ranks epochs as the RMSE does
    by_loss = config.select == "loss" and not regression
    if by_loss:
        better, worst = operator.lt, math.inf
    log = EpochLog(config, better, worst, keep_state=keep_state, stop=stop)
    diverged_at: int | None = None
    start = time.perf_counter()
    epoch = 0
    # the model's ops and layout: fast, or PyTorch's reference
    with exact_ops(config.exact), fastops.image_layout(model, x) as layout:
        for epoch in range(1, config.epochs + 1):
            model.train()
            perm = torch.randperm(n, generator=order).to(device)
            total, seen = 0.0, 0
            finite = True
            # drop a last batch of one example: BatchNorm cannot train on it
            last = n if n % batch != 1 or n == 1 else n - 1
            for i in range(0, last, batch):
                idx = perm[i : i + batch]
                opt.zero_grad(set_to_none=True)
                out = model(x[idx].contiguous(memory_format=layout))
                loss: torch.Tensor = loss_fn(
                    out.view_as(target[idx]) if regression else out, target[idx]
                )
                if distill is not None and soft is not None:
                    loss = distill.loss(loss, out, soft[idx], regression=regression)
                value = float(loss.detach())
                if not math.isfinite(value):
                    finite = False
                    break
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                total += value * len(idx)
                seen += len(idx)
            if not finite:
                if config.on_divergence == "fail" or log.best_epoch == 0:
                    raise TrainingDiverged(f"training loss became {value} at epoch {epoch}")
                diverged_at = epoch
                break
            if schedule is not None:
                schedule.step()
            val_out = predict(model, x_val)
            val = score(val_out, y_val, task.kind, (mean, std))
            test = score(predict(model, x_test), y_test, task.kind, (mean, std))
            val_loss = float(nn.functional.cross_entropy(val_out, y_val)) if by_loss else None
            if not math.isfinite(val):
                if config.on_divergence == "fail" or log.best_epoch == 0:
                    raise TrainingDiverged(f"validation {metric} became {val} at epoch {epoch}")
                diverged_at = epoch
                break
            point = {"epoch": float(epoch), "train_loss": total / seen, f"val_{metric}": val}
            if val_loss is not None:
                point["val_loss"] = val_loss
            if log.end_epoch(model, point, val, test, val_loss):
                break
    return FitOutcome(
        metric=metric,
        val=log.best_val,
        test=log.best_test,
        best_epoch=log.best_epoch,
        epochs_run=epoch,
        wall_time=time.perf_counter() - start,
        curve=log.curve,
        state=log.best_state,
        diverged_at=diverged_at,
        stopped=log.stopped,
    )
