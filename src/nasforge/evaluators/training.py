"""Evaluate architectures by building and training them on a task."""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from typing import Any

import torch

from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError
from nasforge.evaluators.base import Evaluator
from nasforge.objective import Direction, Objective
from nasforge.result import Result
from nasforge.spaces.gnn import GnnSpace
from nasforge.spaces.gnn_model import GnnHyper
from nasforge.tasks.graph import NodeClassificationTask
from nasforge.train.cost import count_flops, count_params, measure_latency_ms
from nasforge.train.trainer import TrainConfig, TrainingDiverged, train_node_classifier

__all__ = ["TrainingEvaluator"]


class TrainingEvaluator(Evaluator):
    """Builds each ``gnn`` architecture with PyG and trains it on a node-classification task.

    Reports ``val_acc`` (best validation accuracy), ``test_acc`` at that epoch (stored, never
    shown to strategies), the learning curve, and the costs ``params``, ``flops`` (dense FLOPs
    of one forward pass over the whole graph) and ``latency_ms`` (median full-graph inference
    time on this machine). The fidelity is the number of epochs. A diverging loss or an error
    while building or training fails the trial with the reason.

    Args:
        task: The graph and its split.
        space: The ``gnn`` space (or a variant with fewer ops).
        hyper: Model hyperparameters.
        train: Optimiser settings, epochs (the default fidelity), patience and seed.
        latency: Measure inference latency (a few extra forward passes per trial).
    """

    metrics = ("val_acc",)

    def __init__(
        self,
        *,
        task: NodeClassificationTask,
        space: GnnSpace,
        hyper: GnnHyper | None = None,
        train: TrainConfig | None = None,
        latency: bool = True,
    ) -> None:
        self.task = task
        self.space = space
        self.space_name = space.name
        self.hyper = hyper or GnnHyper()
        self.train = train or TrainConfig()
        self.latency = latency
        self.objectives = (Objective("val_acc", Direction.MAXIMIZE),)

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        if arch.space != self.space_name:
            raise InvalidArchitectureError(
                f"this evaluator trains space {self.space_name!r}, got {arch.space!r}"
            )
        config = replace(self.train, epochs=budget) if budget else self.train
        start = time.perf_counter()
        data = self.task.data
        torch.manual_seed(config.seed)
        model = self.space.build(arch, self.task, self.hyper)
        try:
            outcome = train_node_classifier(model, data, config)
        except TrainingDiverged as exc:
            return Result.failed(str(exc), wall_time=time.perf_counter() - start)
        model.eval()

        def forward() -> object:
            return model(data.x, data.edge_index)

        costs: dict[str, float] = {
            "params": float(count_params(model)),
            "flops": float(count_flops(forward)),
        }
        if self.latency:
            costs["latency_ms"] = measure_latency_ms(forward)
        return Result(
            metrics={"val_acc": outcome.val_acc},
            test_metrics={"test_acc": outcome.test_acc},
            costs=costs,
            curve=tuple(outcome.curve),
            fidelity=config.epochs,
            wall_time=time.perf_counter() - start,
            reason=(
                None
                if outcome.diverged_at is None
                else f"loss diverged at epoch {outcome.diverged_at}; best of the epochs before"
            ),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "training",
            "task": self.task.describe(),
            "hyper": self.hyper.to_dict(),
            "train": asdict(self.train),
        }
