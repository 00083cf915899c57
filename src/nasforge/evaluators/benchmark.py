"""Evaluators that look architectures up in tabular NAS benchmarks."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from nas_bench_graph import Arch

from nasforge.architecture import Architecture
from nasforge.benchmarks.nas_bench_graph import DATASETS, NasBenchGraphTable, load_table
from nasforge.errors import ConfigError, InvalidArchitectureError
from nasforge.evaluators.base import Evaluator
from nasforge.objective import Direction, Objective
from nasforge.result import Result
from nasforge.spaces.gnn import GNN_OPS, PROTEINS_OPS, GnnSpace

__all__ = ["NasBenchGraphEvaluator"]


class NasBenchGraphEvaluator(Evaluator):
    """Look-up of NAS-Bench-Graph (Qin et al., 2022) tables for the ``gnn`` space.

    Reports ``val_acc`` (the search objective; ROC-AUC for proteins, as in the benchmark, but
    named alike so the same objective applies to all 9 datasets), ``test_acc`` (stored, never
    shown to strategies), ``latency_ms`` and ``params``. Architectures are looked up by the
    benchmark's own ``Arch.valid_hash()``.

    Args:
        dataset: One of cora, citeseer, pubmed, cs, physics, photo, computers, arxiv, proteins.
    """

    lookup = True
    metrics = ("val_acc", "latency_ms", "params")

    def __init__(self, *, dataset: str) -> None:
        if dataset not in DATASETS:
            raise ConfigError(
                f"unknown NAS-Bench-Graph dataset {dataset!r}; valid: {', '.join(DATASETS)}"
            )
        self.dataset = dataset
        self.space = (
            GnnSpace(name="gnn-proteins", ops=PROTEINS_OPS)
            if dataset == "proteins"
            else GnnSpace(name="gnn", ops=GNN_OPS)
        )
        self.space_name = self.space.name
        self.objectives = (Objective("val_acc", Direction.MAXIMIZE),)
        self._table: NasBenchGraphTable | None = None

    @property
    def table(self) -> NasBenchGraphTable:
        """The dataset's table (read on first use)."""
        if self._table is None:
            self._table = load_table(self.dataset)
        return self._table

    def arch_hash(self, arch: Architecture) -> int:
        """The benchmark's hash of ``arch`` (after validating it against the space)."""
        self.space.validate(arch)
        links, ops = GnnSpace.genes(arch)
        return int(Arch(list(links), list(ops)).valid_hash())

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        if arch.space != self.space_name:
            raise InvalidArchitectureError(
                f"nas-bench-graph:{self.dataset} scores space {self.space_name!r}, "
                f"got an architecture of {arch.space!r}"
            )
        start = time.perf_counter()
        key = self.arch_hash(arch)
        try:
            row = self.table[key]
        except KeyError:
            return Result.failed(f"architecture hash {key} is not in the {self.dataset} table")
        return Result(
            metrics={"val_acc": row.valid},
            test_metrics={"test_acc": row.test},
            costs={"latency_ms": row.latency_s * 1e3, "params": row.params_m * 1e6},
            wall_time=time.perf_counter() - start,
        )

    def known_costs(self, arch: Architecture, names: Collection[str]) -> dict[str, float]:
        """``latency_ms`` and ``params`` read from the table (no evaluation)."""
        row = self.table.rows.get(self.arch_hash(arch))
        if row is None:
            return {}
        costs = {"latency_ms": row.latency_s * 1e3, "params": row.params_m * 1e6}
        return {name: costs[name] for name in names if name in costs}

    def describe(self) -> dict[str, Any]:
        return {"kind": "nas-bench-graph", "dataset": self.dataset}
