"""Full-batch training of node classifiers with early stopping on validation accuracy."""

from __future__ import annotations

import copy
import math
import operator
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn
from torch_geometric.data import Data

from nasforge.errors import ConfigError
from nasforge.train import progress, threads
from nasforge.train.device import model_device
from nasforge.train.fastops import exact_ops

__all__ = [
    "Distill",
    "EpochLog",
    "FitOutcome",
    "StopRule",
    "TrainConfig",
    "TrainOutcome",
    "TrainingDiverged",
    "cpu_state",
    "diverged_reason",
    "make_optimizer",
    "make_schedule",
    "train_node_classifier",
]

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine")
SELECTIONS = ("metric", "loss")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """How to train one candidate.

    Attributes:
        epochs: Maximum number of epochs (the fidelity).
        lr: Learning rate.
        weight_decay: L2 penalty passed to the optimizer.
        optimizer: ``adam`` or ``sgd``.
        patience: Stop after this many epochs without a better validation accuracy
            (``None``: train all ``epochs``).
        seed: Seeds the weights and dropout: the same seed gives the same run.
        batch_size: Examples per step for image and tabular tasks (graphs train full-batch).
        momentum: SGD momentum (0: plain SGD, as NAS-Bench-Graph; ignored by Adam).
        schedule: ``constant`` learning rate, or ``cosine`` annealing to 0 over ``epochs``.
        on_divergence: ``fail`` raises :class:`TrainingDiverged` when the loss becomes NaN or
            infinite (a search then fails the trial); ``keep_best`` stops there and keeps the
            best epoch before it, as NAS-Bench-Graph's training loop did.
        select: Which epoch's validation and test values a run reports (and patience counts
            from): ``metric``, the best validation metric (accuracy, or RMSE for regression);
            or ``loss``, the lowest validation loss, as NAS-Bench-Graph's training loop did.
            For regression the two are the same epoch.
        exact: Train with PyTorch's reference ops, its default Adam and the usual memory
            layout (bitwise reproducible with code that uses them, such as
            NAS-Bench-Graph's) instead of the faster paths (:mod:`~nasforge.train.fastops`,
            fused Adam, images channels last on a CPU), which draw dropout from another random
            stream and round differently, with the same distribution.
    """

    epochs: int = 200
    lr: float = 0.01
    weight_decay: float = 5e-4
    optimizer: str = "adam"
    patience: int | None = 100
    seed: int = 0
    batch_size: int = 128
    momentum: float = 0.0
    schedule: str = "constant"
    on_divergence: str = "fail"
    select: str = "metric"
    exact: bool = False

    OPTIONS: ClassVar[tuple[str, ...]] = (
        "lr",
        "weight_decay",
        "optimizer",
        "patience",
        "batch_size",
        "momentum",
        "schedule",
        "select",
        "exact",
    )
    """The settings a user may override per search (``training={...}``, the CLI's flags)."""

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ConfigError(f"lr must be a positive number, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        if self.on_divergence not in ("fail", "keep_best"):
            raise ConfigError(
                f"on_divergence must be 'fail' or 'keep_best', got {self.on_divergence!r}"
            )
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
            )
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be >= 1 or None, got {self.patience}")
        if self.select not in SELECTIONS:
            raise ConfigError(f"select must be one of {', '.join(SELECTIONS)}, got {self.select!r}")

    def describe(self) -> dict[str, Any]:
        """The settings as plain data, for an experiment's stored configuration.

        ``select`` and ``exact`` are left out at their defaults, so that experiments stored
        before they existed still resume.
        """
        out = asdict(self)
        if self.select == "metric":
            del out["select"]
        if not self.exact:
            del out["exact"]
        return out


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    """Result of one training run; test accuracy is read at the best-validation epoch."""

    val_acc: float
    test_acc: float
    best_epoch: int
    epochs_run: int
    wall_time: float
    curve: list[dict[str, float]] = field(default_factory=list)
    state: dict[str, torch.Tensor] | None = None
    diverged_at: int | None = None
    stopped: str | None = None


@dataclass(frozen=True, slots=True)
class FitOutcome:
    """One training run of any task: the validation metric's best epoch and the test metric
    there (what :meth:`nasforge.tasks.base.Task.fit` returns).

    ``metric`` is ``acc`` (higher is better) or ``rmse`` (lower is better, in the targets'
    units).
    """

    metric: str
    val: float
    test: float
    best_epoch: int
    epochs_run: int
    wall_time: float
    curve: list[dict[str, float]] = field(default_factory=list)
    state: dict[str, torch.Tensor] | None = None
    diverged_at: int | None = None
    stopped: str | None = None


@dataclass(frozen=True, eq=False)
class Distill:
    """Knowledge distillation from a trained teacher (Hinton et al., "Distilling the Knowledge
    in a Neural Network", 2015): the training loss becomes ``(1 - weight) * loss + weight *
    soft``, where ``soft`` is ``temperature**2 * KL(teacher || student)`` of the outputs
    softened by ``temperature`` for classification, and the mean squared difference of the
    outputs for regression.

    Attributes:
        teacher: The trained network; it is run in eval mode, without gradients.
        temperature: Softening of classification outputs.
        weight: Share of the soft loss, in [0, 1].
    """

    teacher: nn.Module
    temperature: float = 4.0
    weight: float = 0.9

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.weight <= 1.0:
            raise ConfigError(f"the distillation weight must be in [0, 1], got {self.weight}")

    def targets(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The teacher's outputs on ``inputs``."""
        self.teacher.eval()
        with torch.no_grad():
            out: torch.Tensor = self.teacher(*inputs)
        return out

    def loss(
        self, hard: torch.Tensor, student: torch.Tensor, teacher: torch.Tensor, *, regression: bool
    ) -> torch.Tensor:
        """The combined loss of a batch: ``hard`` (the task's loss), the student's and the
        teacher's outputs on the same rows."""
        if regression:
            soft = nn.functional.mse_loss(student, teacher.view_as(student))
        else:
            t = self.temperature
            soft = nn.functional.kl_div(
                nn.functional.log_softmax(student / t, dim=-1),
                nn.functional.log_softmax(teacher / t, dim=-1),
                reduction="batchmean",
                log_target=True,
            ) * (t * t)
        return (1.0 - self.weight) * hard + self.weight * soft


def cpu_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies of a state dict (to save, or to keep past the model)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def diverged_reason(epoch: int | None) -> str | None:
    """What a run that diverged at ``epoch`` (and kept its best epoch before) reports."""
    if epoch is None:
        return None
    return f"loss diverged at epoch {epoch}; best of the epochs before"


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer ``config`` names, over all of ``model``'s parameters.

    Unless ``config.exact``, Adam is PyTorch's fused implementation (all parameters updated
    in one native call, the same update up to rounding) where this torch and the parameters'
    device have one; otherwise PyTorch's default implementation.
    """
    params = list(model.parameters())
    if config.optimizer == "adam":
        # not SGD: fused with momentum it fails once some parameters have a momentum buffer
        # and others not (a supernet trains only the sampled paths), and it gained little
        if not config.exact and params:
            try:
                return torch.optim.Adam(
                    params, lr=config.lr, weight_decay=config.weight_decay, fused=True
                )
            except (RuntimeError, TypeError, ValueError):  # no fused kernel for these here
                pass
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params,
        lr=config.lr,
        weight_decay=config.weight_decay,
        momentum=config.momentum,
        nesterov=config.momentum > 0,
    )


def make_schedule(
    opt: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-epoch learning-rate schedule, or ``None`` for a constant rate."""
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    return None


StopRule = Callable[[Sequence[Mapping[str, float]], int], str | None]
"""Called after each epoch with the curve so far and the planned epochs; a reason stops."""


@dataclass
class EpochLog:
    """What both trainers record after each epoch: the curve, the best validation epoch (with
    the validation and test values and, optionally, the weights there), patience and the stop
    rule.

    The best epoch is the one with the best *score*: the validation metric, or another value
    the trainer passes (the validation loss, for ``TrainConfig.select == "loss"``).

    Args:
        config: Epochs and patience.
        better: Whether a score beats another (``>`` for accuracy, ``<`` for a loss).
        worst: The starting best score (``-inf`` when larger is better).
        keep_state: Keep a copy of the weights at the best epoch.
        stop: Optional rule that may end the run after an epoch.
    """

    config: TrainConfig
    better: Callable[[float, float], bool]
    worst: float
    keep_state: bool = False
    stop: StopRule | None = None
    curve: list[dict[str, float]] = field(default_factory=list)
    best_score: float = 0.0
    best_val: float = math.nan
    best_test: float = math.nan
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    stopped: str | None = None

    def __post_init__(self) -> None:
        self.best_score = self.worst

    def end_epoch(
        self,
        model: nn.Module,
        point: dict[str, float],
        val: float,
        test: float,
        score: float | None = None,
    ) -> bool:
        """Record epoch ``point["epoch"]`` (``score``: what ranks it, ``val`` if None); True
        when training should end here."""
        epoch = int(point["epoch"])
        self.curve.append(point)
        progress.epoch_done(epoch, self.config.epochs)  # for the search's live display
        threads.between_epochs()  # take up cores other workers of the search left idle
        key = val if score is None else score
        if self.better(key, self.best_score):
            self.best_score, self.best_epoch = key, epoch
            self.best_val, self.best_test = val, test
            if self.keep_state:
                state = copy.deepcopy(model.state_dict())
                for name, value in state.items():  # weights trained channels last
                    if not value.is_contiguous():
                        state[name] = value.contiguous()
                self.best_state = state
        elif self.config.patience is not None and epoch - self.best_epoch >= self.config.patience:
            return True
        if self.stop is not None and epoch < self.config.epochs:
            self.stopped = self.stop(self.curve, self.config.epochs)
        return self.stopped is not None


def train_node_classifier(
    model: nn.Module,
    data: Data,
    config: TrainConfig,
    *,
    keep_state: bool = False,
    stop: StopRule | None = None,
    distill: Distill | None = None,
) -> TrainOutcome:
    """Train ``model`` on ``data.train_mask``; evaluate every epoch on validation and test.

    The model is built by the caller (seed it with ``torch.manual_seed(config.seed)`` first)
    and trains where it is: the graph is moved to the model's device. This seeds dropout.
    Validation accuracy (or, with ``config.select == "loss"``, validation
    loss) picks the reported epoch and drives early stopping; the returned validation and
    test accuracies are the ones at that epoch (earliest on ties), and the curve holds only
    training loss and validation metrics. ``stop`` (e.g. a learning-curve predictor) may end
    the run after any epoch; its reason is returned as ``stopped``. With ``distill``, the
    loss also follows a teacher's outputs (:class:`Distill`).

    Raises:
        TrainingDiverged: When the training loss becomes NaN or infinite.
    """
    torch.manual_seed(config.seed)
    opt = make_optimizer(model, config)
    schedule = make_schedule(opt, config)
    device = model_device(model)  # the graph goes where the model is (as is on the CPU)
    x, edge_index, y = data.x.to(device), data.edge_index.to(device), data.y.to(device)
    train_mask, val_mask, test_mask = (
        m.to(device) for m in (data.train_mask, data.val_mask, data.test_mask)
    )
    soft = None if distill is None else distill.targets(x, edge_index)[train_mask]
    n_val, n_test = int(val_mask.sum()), int(test_mask.sum())
    by_loss = config.select == "loss"
    if by_loss:
        log = EpochLog(config, operator.lt, math.inf, keep_state=keep_state, stop=stop)
    else:
        log = EpochLog(config, operator.gt, -1.0, keep_state=keep_state, stop=stop)
    start = time.perf_counter()
    epoch = 0
    diverged_at: int | None = None
    with exact_ops(config.exact):  # the model's ops: fast or PyTorch's reference
        for epoch in range(1, config.epochs + 1):
            model.train()
            opt.zero_grad(set_to_none=True)
            out = model(x, edge_index)  # (N, C) logits
            loss = nn.functional.cross_entropy(out[train_mask], y[train_mask])
            if distill is not None and soft is not None:
                loss = distill.loss(loss, out[train_mask], soft, regression=False)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                if config.on_divergence == "fail" or log.best_epoch == 0:
                    raise TrainingDiverged(f"training loss became {loss_value} at epoch {epoch}")
                diverged_at = epoch
                break
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            if schedule is not None:
                schedule.step()

            model.eval()
            with torch.no_grad():
                out = model(x, edge_index)
                correct = out.argmax(dim=-1) == y
                val_acc = int(correct[val_mask].sum()) / n_val
                test_acc = int(correct[test_mask].sum()) / n_test
                val_loss = None
                if by_loss:
                    val_loss = float(nn.functional.cross_entropy(out[val_mask], y[val_mask]))
            point = {"epoch": float(epoch), "train_loss": loss_value, "val_acc": val_acc}
            if val_loss is not None:
                point["val_loss"] = val_loss
            if log.end_epoch(model, point, val_acc, test_acc, val_loss):
                break
    return TrainOutcome(
        val_acc=log.best_val,
        test_acc=log.best_test,
        best_epoch=log.best_epoch,
        epochs_run=epoch,
        wall_time=time.perf_counter() - start,
        curve=log.curve,
        state=log.best_state,
        diverged_at=diverged_at,
        stopped=log.stopped,
    )
