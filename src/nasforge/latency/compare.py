"""Predicted against measured latency: error and rank correlation over a sample."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError
from nasforge.latency.table import LatencyTable
from nasforge.latency.timing import measure_architecture
from nasforge.spaces.base import SearchSpace

__all__ = ["LatencyComparison", "LatencyRow", "compare_latency", "latency_sample"]


@dataclass(frozen=True, slots=True)
class LatencyComparison:
    """How well predicted latencies match measured ones.

    Attributes:
        n: Number of architectures.
        mape: Mean absolute percentage error of the prediction (%).
        median_ape: Median absolute percentage error (%).
        spearman: Spearman rank correlation of predicted and measured.
        kendall: Kendall's tau of predicted and measured.
    """

    n: int
    mape: float
    median_ape: float
    spearman: float
    kendall: float


def compare_latency(predicted: Sequence[float], measured: Sequence[float]) -> LatencyComparison:
    """Errors and rank correlations of ``predicted`` against ``measured`` (same order).

    Raises:
        ConfigError: If the sequences differ in length, have fewer than 2 values, or
            ``measured`` holds a value <= 0.
    """
    from scipy.stats import kendalltau, spearmanr

    if len(predicted) != len(measured) or len(measured) < 2:
        raise ConfigError(
            f"need two sequences of equal length >= 2, got {len(predicted)} predicted and "
            f"{len(measured)} measured"
        )
    pred, meas = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    if not (meas > 0).all():
        raise ConfigError("measured latencies must be > 0")
    ape = np.abs(pred - meas) / meas * 100
    return LatencyComparison(
        n=len(meas),
        mape=float(ape.mean()),
        median_ape=float(np.median(ape)),
        spearman=float(spearmanr(pred, meas).statistic),
        kendall=float(kendalltau(pred, meas).statistic),
    )


@dataclass(frozen=True, slots=True)
class LatencyRow:
    """One architecture of :func:`latency_sample`: predicted and measured latency in ms."""

    arch: Architecture
    predicted: float
    measured: float


def latency_sample(
    task: str | Any,
    space: str | SearchSpace | None = None,
    *,
    n: int = 20,
    backend: str = "torch",
    seed: int = 0,
    warmup: int = 3,
    repeats: int = 10,
    data_root: str | os.PathLike[str] | None = None,
    hyper: Any = None,
    cache: str | os.PathLike[str] | None = None,
    refresh: bool = False,
    device: str = "cpu",
) -> tuple[LatencyTable, list[LatencyRow]]:
    """Build or load the table of ``task``, then predict and measure ``n`` random
    architectures of distinct canonical keys (what ``nasforge latency`` prints).

    Args:
        task: A task spec (see :func:`nasforge.tasks.task_forms`) or a task object.
        space: A space or its name; default: the task's (``gnn`` or ``nb201``).
        n: Architectures to draw (fewer if the space runs out).
        backend: One of :data:`~nasforge.latency.timing.BACKENDS`.
        seed: Seed of the sample.
        warmup: Untimed calls before each timing.
        repeats: Timed calls per timing.
        data_root: Folder holding ``<Name>/raw/`` for Planetoid tasks.
        hyper: Model settings; default: the task's (e.g. NAS-Bench-Graph's for Planetoid,
            the small network for images) when ``space`` is the task's kind of space.
        cache: Folder of stored tables (default
            :func:`~nasforge.latency.cache.latency_cache_dir`).
        refresh: Measure the table again even if it is stored.
        device: Where the torch backend runs (``cpu``, ``auto``, ``cuda``, ``cuda:N``); each
            device has its own table.

    Raises:
        ConfigError: For an unknown task, space, backend or device, a space without tables,
            or ``n < 1``.
        LatencyTableError: As :meth:`LatencyTable.for_task`.
    """
    from nasforge.tasks.base import task_setup

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be an integer >= 1, got {n!r}")
    setup = task_setup(task, space, data_root=data_root, seed=seed)
    space_obj, task = setup.space, setup.task
    table = LatencyTable.for_task(
        space_obj,
        task,
        hyper if hyper is not None else setup.hyper,
        backend=backend,
        warmup=warmup,
        repeats=repeats,
        cache=cache,
        refresh=refresh,
        device=device,
    )
    rows: list[LatencyRow] = []
    for arch in space_obj.sample_distinct(n, np.random.default_rng(seed)):
        measured = measure_architecture(
            space_obj,
            arch,
            task,
            table.hyper,
            backend=backend,
            warmup=warmup,
            repeats=repeats,
            device=device,
        )
        rows.append(LatencyRow(arch, table.predict(arch), measured))
    return table, rows
