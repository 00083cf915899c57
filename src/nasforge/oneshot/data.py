"""The data of a supernet phase: the task's training and validation splits as batches, and
the validation accuracy of one path on the shared weights."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from nasforge.spaces.supernet import Supernet

__all__ = ["Batch", "PhaseData", "recalibrated_accuracy"]


@dataclass(frozen=True, slots=True)
class Batch:
    """Inputs of one forward pass and the targets of the rows its loss reads.

    Attributes:
        inputs: The supernet's inputs (a graph's ``(x, edge_index)``, or a batch ``(x,)``).
        target: (R,) class labels of the rows read.
        rows: (R,) output rows read (a graph's node ids), or ``None`` for every row.
    """

    inputs: tuple[Tensor, ...]
    target: Tensor
    rows: Tensor | None = None

    def logits(self, net: nn.Module) -> Tensor:
        out: Tensor = net(*self.inputs)
        return out if self.rows is None else out[self.rows]

    def loss(self, net: nn.Module) -> Tensor:
        return F.cross_entropy(self.logits(net), self.target)


class PhaseData:
    """The task's training and validation splits as batches (the test split is never read).

    A graph is one full batch per split; other tasks are shuffled mini-batches of the
    training config's size, in an order drawn from ``generator``.
    """

    def __init__(self, task: Any, batch_size: int, generator: torch.Generator) -> None:
        self.task, self.generator = task, generator
        self.graph = task.modality == "graph"
        if self.graph:
            d = task.data
            inputs = (d.x, d.edge_index)
            train = torch.nonzero(d.train_mask).flatten()
            val = torch.nonzero(d.val_mask).flatten()
            self._train = Batch(inputs, d.y[train], train)
            self._val = Batch(inputs, d.y[val], val)
        else:
            self.batch = min(batch_size, len(task.x_train))
        self._val_order: list[Batch] = []

    def train_batches(self) -> list[Batch]:
        """One epoch of training batches. The validation batches start a new shuffled round
        too, so that everything an epoch draws follows from the generator's state at its
        start (what a checkpoint holds)."""
        if self.graph:
            return [self._train]
        self._val_order = []
        x, y = self.task.x_train, self.task.y_train
        n = len(x)
        perm = torch.randperm(n, generator=self.generator)
        last = n if n % self.batch != 1 or n == 1 else n - 1  # BatchNorm needs 2 rows
        return [
            Batch((x[perm[i : i + self.batch]],), y[perm[i : i + self.batch]])
            for i in range(0, last, self.batch)
        ]

    def val_batch(self) -> Batch:
        """The next validation batch (cycling through shuffled validation batches)."""
        if self.graph:
            return self._val
        if not self._val_order:
            x, y = self.task.x_val, self.task.y_val
            n = len(x)
            perm = torch.randperm(n, generator=self.generator)
            last = n if n % self.batch != 1 or n == 1 else n - 1
            self._val_order = [
                Batch((x[perm[i : i + self.batch]],), y[perm[i : i + self.batch]])
                for i in range(0, last, self.batch)
            ]
        return self._val_order.pop(0)

    def calibration(self, count: int) -> Iterator[Batch]:
        """``count`` training batches in a fixed order (BatchNorm recalibration)."""
        if self.graph:
            yield self._train
            return
        x, y = self.task.x_train, self.task.y_train
        for i in range(0, min(len(x), count * self.batch), self.batch):
            if len(x[i : i + self.batch]) > 1:
                yield Batch((x[i : i + self.batch],), y[i : i + self.batch])

    def accuracy(self, net: nn.Module) -> float:
        """Validation accuracy of ``net`` as routed, in eval mode."""
        net.eval()
        with torch.no_grad():
            if self.graph:
                hits = int((self._val.logits(net).argmax(-1) == self._val.target).sum())
                return hits / len(self._val.target)
            x, y = self.task.x_val, self.task.y_val
            hits = sum(
                int((net(x[i : i + 512]).argmax(-1) == y[i : i + 512]).sum())
                for i in range(0, len(x), 512)
            )
            return hits / len(y)


def recalibrated_accuracy(
    net: Supernet, indices: Sequence[int], data: PhaseData, batches: int
) -> float:
    """Validation accuracy of one path on the shared weights, after resetting BatchNorm's
    running statistics and re-estimating them (a cumulative average) on training batches."""
    net.route_indices(indices)
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    with torch.no_grad():
        for batch in data.calibration(batches):
            net(*batch.inputs)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    return data.accuracy(net)
