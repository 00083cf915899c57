"""Evaluate architectures by building and training them on a task."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Collection
from dataclasses import replace
from typing import Any

import torch

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError, InvalidArchitectureError
from nasforge.evaluators.base import Evaluator
from nasforge.latency.timing import BACKENDS, measure_costs
from nasforge.result import Result, Status
from nasforge.spaces.base import SearchSpace
from nasforge.stopping import LearningCurveStopper
from nasforge.tasks.base import Task
from nasforge.train.cost import count_flops, count_params
from nasforge.train.device import check_device, device_name, resolve_device, to_device
from nasforge.train.trainer import (
    StopRule,
    TrainConfig,
    TrainingDiverged,
    cpu_state,
    diverged_reason,
)

__all__ = ["TrainingEvaluator"]


class TrainingEvaluator(Evaluator):
    """Builds each architecture and trains it on a task.

    The space builds the model (``space.build(arch, task, hyper)``) and the task trains it
    with its own trainer (``task.fit``): graph tasks full-batch, image and tabular tasks in
    mini-batches. Reports the best validation metric (``val_acc``, or ``val_rmse`` for
    regression), the test metric at that epoch (stored, never shown to strategies), the
    learning curve, and the costs ``params``, ``flops`` (dense FLOPs of one forward pass on
    the task's example inputs: the whole graph, or one example) and ``latency_ms`` (median
    inference time on this machine, on the same inputs), plus ``latency_pred_ms`` for spaces
    that predict latency. The fidelity is the number of epochs. A diverging loss or an error
    while building or training fails the trial with the reason.

    Args:
        task: The data (a :class:`~nasforge.tasks.base.Task`).
        space: A space whose models take the task's kind of data.
        hyper: Model settings of the space (its defaults if ``None``).
        train: Optimiser settings, epochs (the default fidelity), patience and seed.
        latency: Measure inference latency (a few extra forward passes per trial).
        latency_backend: ``"torch"`` (the model as trained) or ``"onnxruntime"`` (the model
            exported to ONNX and run by ONNX Runtime on the CPU; needs ``nasforge[onnx]``),
            for the measured ``latency_ms`` and the table behind ``latency_pred_ms``.
        stopper: Learning-curve early stopping: a run it stops is stored as PRUNED with its
            curve so far and the reason.
        keep_weights: Return the trained weights with each COMPLETE result
            (``Result.weights``: the state dict of the best validation epoch, the one the test
            metric was computed with, as CPU tensors) for the search to save as safetensors.
            It does not change the results, so it is not part of :meth:`describe`.
        device: Where candidates train and are timed: ``auto`` (CUDA when there is a GPU),
            ``cpu``, ``cuda`` (a worker of a local search with several workers takes GPU
            ``worker % GPUs``) or ``cuda:N`` (see :mod:`nasforge.train.device`). Resolved in
            the process that trains; each result names the device and its name. Not part of
            :meth:`describe`: a search resumes on another device.

    Raises:
        ConfigError: If the space cannot build models for the task, or ``device`` is not a
            device spec.
    """

    def __init__(
        self,
        *,
        task: Task,
        space: SearchSpace,
        hyper: Any = None,
        train: TrainConfig | None = None,
        latency: bool = True,
        stopper: LearningCurveStopper | None = None,
        latency_backend: str = "torch",
        keep_weights: bool = False,
        device: str = "auto",
    ) -> None:
        space.check_task(task)
        self.device = check_device(device)
        self.latency_backend = _check_latency_backend(latency_backend)
        self.stopper = stopper
        self.keep_weights = keep_weights
        self.task = task
        self.space = space
        self.space_name = space.name
        self.hyper = hyper if hyper is not None else space.default_settings()
        self.train = train or TrainConfig()
        self.latency = latency
        costs: tuple[str, ...] = (
            ("params", "flops", "latency_ms") if latency else ("params", "flops")
        )
        if space.predicts_latency:
            costs += ("latency_pred_ms",)  # from a per-operation latency table
        self._latency_table: Any = None
        self.objectives = (task.objective,)
        self.metrics: tuple[str, ...] = (task.objective.metric, *costs)

    @property
    def max_fidelity(self) -> int:
        """The epochs a full training runs (multi-fidelity strategies' top rung)."""
        return self.train.epochs

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        if arch.space != self.space_name:
            raise InvalidArchitectureError(
                f"this evaluator trains space {self.space_name!r}, got {arch.space!r}"
            )
        config = replace(self.train, epochs=budget) if budget else self.train
        start = time.perf_counter()
        device = resolve_device(self.device)
        torch.manual_seed(config.seed)
        # built on the CPU from the seed, then moved: the same initial weights on any device
        model = self.space.build(arch, self.task, self.hyper).to(device)
        try:
            fit = self.task.fit(model, config, keep_state=self.keep_weights, stop=self._stop_rule())
        except TrainingDiverged as exc:
            return Result.failed(str(exc), wall_time=time.perf_counter() - start)
        model.eval()

        costs = self._costs(model, to_device(self.task.example_inputs(), device))
        status = Status.PRUNED if fit.stopped else Status.COMPLETE
        return Result(
            status=status,
            metrics={f"val_{fit.metric}": fit.val},
            test_metrics={f"test_{fit.metric}": fit.test},
            costs=costs,
            curve=tuple(fit.curve),
            fidelity=config.epochs,
            wall_time=time.perf_counter() - start,
            reason=fit.stopped or diverged_reason(fit.diverged_at),
            weights=cpu_state(fit.state) if status is Status.COMPLETE and fit.state else None,
            device=str(device),
            device_name=device_name(device),
        )

    def known_costs(self, arch: Architecture, names: Collection[str]) -> dict[str, float]:
        """``params`` and ``flops`` of ``arch``'s model, built but not trained, and
        ``latency_pred_ms``: its latency predicted from a per-operation table measured once on
        this machine (FBNet style; see :class:`nasforge.latency.LatencyTable`)."""
        out: dict[str, float] = {}
        if "latency_pred_ms" in names and "latency_pred_ms" in self.metrics:
            out["latency_pred_ms"] = self.latency_table().predict(arch)
        wanted = {"params", "flops"} & set(names)
        if not wanted:
            return out
        model = self.space.build(arch, self.task, self.hyper)
        model.eval()
        out["params"] = float(count_params(model))
        if "flops" in wanted:
            inputs = self.task.example_inputs()
            out["flops"] = float(count_flops(lambda: model(*inputs)))
        return {name: out[name] for name in (*wanted, *out.keys() - {"params", "flops"})}

    def latency_table(self) -> Any:
        """The per-operation latency table of this space and task on this evaluator's device
        (measured once per device and stored; read from the cache afterwards)."""
        if self._latency_table is None:
            from nasforge.latency.table import LatencyTable

            self._latency_table = LatencyTable.for_task(
                self.space, self.task, self.hyper, backend=self.latency_backend, device=self.device
            )
        return self._latency_table

    def bind(self, store: str, experiment: str) -> None:
        """Learning-curve early stopping reads the search's finished curves from the store."""
        if self.stopper is not None:
            self.stopper.bind(store, experiment)

    def _stop_rule(self) -> StopRule | None:
        return None if self.stopper is None else self.stopper.should_stop

    def _costs(self, model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict[str, float]:
        return measure_costs(model, inputs, latency=self.latency_backend if self.latency else None)

    def describe(self) -> dict[str, Any]:
        hyper = self.hyper.to_dict() if hasattr(self.hyper, "to_dict") else None
        out = {
            "kind": "training",
            "task": self.task.describe(),
            "hyper": hyper,
            "train": self.train.describe(),
        }
        if self.stopper is not None:
            out["stopping"] = self.stopper.options()
        if self.latency_backend != "torch":
            out["latency_backend"] = self.latency_backend
        return out


def _check_latency_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ConfigError(f"unknown latency backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if backend == "onnxruntime" and importlib.util.find_spec("onnxruntime") is None:
        raise ConfigError(
            "the onnxruntime latency backend needs the onnx extra: pip install 'nasforge[onnx]'"
        )
    return backend
