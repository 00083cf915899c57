"""Look-up of NAS-Bench-201 / NATS-Bench topology results for the ``nb201`` space."""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from typing import Any

from nasforge.architecture import Architecture
from nasforge.benchmarks.nas_bench_201 import (
    DATASETS,
    EPOCHS,
    OPS,
    EntryNotFoundError,
    NasBench201Table,
    detect_format,
    load_table,
    resolve_path,
)
from nasforge.errors import ConfigError, InvalidArchitectureError
from nasforge.evaluators.base import Evaluator
from nasforge.objective import Direction, Objective
from nasforge.result import Result

__all__ = ["NasBench201Evaluator"]


def _arch_str(ops: tuple[str, ...]) -> str:
    """The benchmark's string of a cell from its 6 edge ops (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2)."""
    a, b, c, d, e, f = ops
    return f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|"


class NasBench201Evaluator(Evaluator):
    """Look-up of NAS-Bench-201 results for the ``nb201`` space, from files the user downloaded.

    Papers: "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search"
    (Dong & Yang, ICLR 2020) and "NATS-Bench: Benchmarking NAS Algorithms for Architecture
    Topology and Size" (Dong et al., TPAMI 2021), whose topology search space is the same.

    Reports ``val_acc`` (the search objective), ``test_acc`` (stored, never shown to strategies),
    both fractions averaged over the benchmark's seeds, and the costs ``params``, ``flops``,
    ``latency_ms`` and ``train_time_s`` (the benchmark's training time) where the file has them.
    The fidelity is the number of training epochs, 12 or 200. How validation and test accuracy
    are defined per dataset is in :mod:`nasforge.benchmarks.nas_bench_201`.

    The path and names are checked at construction; the file is read on first use and shared by
    every evaluator of the process. An architecture the file has no result for gives a FAILED
    result, as in :class:`~nasforge.evaluators.benchmark.NasBenchGraphEvaluator`.

    Args:
        path: ``NATS-tss-v1_0-3ffb9-simple`` (directory), ``NAS-Bench-201-v1_1-096897.pth``,
            ``NAS-Bench-201-v1_0-e61699.pth`` or ``NATS-tss-v1_0-3ffb9.pickle.pbz2``; None
            reads ``$NASFORGE_NB201_PATH``.
        dataset: cifar10-valid, cifar10, cifar100 or ImageNet16-120.
        epochs: 200 or 12, the fidelity when ``evaluate`` gets no budget.

    Raises:
        ConfigError: If the dataset or epochs are unknown, or the path is missing or not one of
            the published files (the message says which files and where to get them).
    """

    lookup = True
    metrics = ("val_acc", "params", "flops", "latency_ms", "train_time_s")
    space_name = "nb201"

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] | None = None,
        dataset: str = "cifar10-valid",
        epochs: int = 200,
    ) -> None:
        if dataset not in DATASETS:
            raise ConfigError(
                f"unknown NAS-Bench-201 dataset {dataset!r}; valid: {', '.join(DATASETS)}"
            )
        if epochs not in EPOCHS:
            raise ConfigError(
                f"NAS-Bench-201 epochs must be one of {', '.join(map(str, EPOCHS))}, got {epochs!r}"
            )
        self.path = resolve_path(path).resolve()
        self.format = detect_format(self.path)
        self.dataset = dataset
        self.epochs = epochs
        self.objectives = (Objective("val_acc", Direction.MAXIMIZE),)
        self._table: NasBench201Table | None = None

    @property
    def table(self) -> NasBench201Table:
        """The benchmark's table (read on first use).

        Raises:
            ConfigError: If the file cannot be read or lacks ``dataset`` at ``epochs``.
        """
        if self._table is None:
            table = load_table(self.path)
            table.require(self.dataset, self.epochs)
            self._table = table
        return self._table

    def prepare(self) -> None:
        """Read the table (its index, for the simple directory) and check ``dataset``/``epochs``."""
        _ = self.table

    def __getstate__(self) -> dict[str, Any]:
        # worker processes read the table themselves instead of receiving a copy of it
        return {**self.__dict__, "_table": None}

    def arch_str(self, arch: Architecture) -> str:
        """The benchmark's string of ``arch``, e.g. ``|nor_conv_3x3~0|+|...|skip_connect~2|``.

        Raises:
            InvalidArchitectureError: If ``arch`` is not a NAS-Bench-201 cell.
        """
        if set(arch) != {"ops"}:
            raise InvalidArchitectureError(
                f"an nb201 architecture has exactly one gene, 'ops'; got {sorted(arch)}"
            )
        ops = arch["ops"]
        if not (isinstance(ops, tuple) and len(ops) == 6 and all(op in OPS for op in ops)):
            raise InvalidArchitectureError(
                f"nb201 'ops' must be 6 of {', '.join(OPS)} (edges 1<-0, 2<-0, 2<-1, 3<-0, "
                f"3<-1, 3<-2); got {ops!r}"
            )
        return _arch_str(tuple(str(op) for op in ops))

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        if arch.space != self.space_name:
            raise InvalidArchitectureError(
                f"nas-bench-201:{self.dataset} scores space {self.space_name!r}, "
                f"got an architecture of {arch.space!r}"
            )
        start = time.perf_counter()
        epochs = self._epochs(budget)
        key = self.arch_str(arch)
        try:
            entry = self.table.entry(key, self.dataset, epochs)
        except EntryNotFoundError as exc:
            return Result.failed(
                f"not in {self.path.name}: {exc}", wall_time=time.perf_counter() - start
            )
        costs = {
            name: value
            for name, value in (
                ("params", entry.params),
                ("flops", entry.flops),
                ("latency_ms", entry.latency_ms),
                ("train_time_s", entry.train_time_s),
            )
            if value is not None
        }
        return Result(
            metrics={"val_acc": entry.val_acc},
            test_metrics={} if entry.test_acc is None else {"test_acc": entry.test_acc},
            costs=costs,
            fidelity=epochs,
            wall_time=time.perf_counter() - start,
        )

    def known_costs(self, arch: Architecture, names: Collection[str]) -> dict[str, float]:
        """``params``, ``flops`` and ``latency_ms`` read from the table (no evaluation)."""
        try:
            entry = self.table.entry(self.arch_str(arch), self.dataset, self.epochs)
        except EntryNotFoundError:
            return {}
        costs = {"params": entry.params, "flops": entry.flops, "latency_ms": entry.latency_ms}
        return {name: v for name, v in costs.items() if name in names and v is not None}

    def _epochs(self, budget: int | None) -> int:
        if budget is None:
            return self.epochs
        if budget not in EPOCHS or isinstance(budget, bool):
            raise ConfigError(
                f"NAS-Bench-201 budget must be one of {', '.join(map(str, EPOCHS))} epochs, "
                f"got {budget!r}"
            )
        self.table.require(self.dataset, budget)
        return budget

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "nas-bench-201",
            "path": str(self.path),
            "format": str(self.format),
            "dataset": self.dataset,
            "epochs": self.epochs,
        }
