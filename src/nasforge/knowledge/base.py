"""What earlier searches measured: known tasks read from stores and from shipped tables.

A :class:`KnownTask` is one task's validation scores of architectures of one space, keyed by
canonical key and oriented so that larger is better. :func:`read_knowledge` gathers them from

* stores (SQLite files or PostgreSQL URLs, read only): every COMPLETE trial of every search
  experiment (not compression experiments: their scores are of pruned networks), grouped by
  the task the experiment measured (its benchmark or task text) and its space; experiments
  of one task and space are merged (an architecture's best score);
* the NAS-Bench-Graph tables of the nine datasets, read from the installed
  ``nas-bench-graph`` package (validation accuracy only).

Test metrics are never read. The search's own experiment and, for a search on a benchmark
table, that very table are left out: they are the search, not knowledge about it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError, InvalidArchitectureError, StoreError
from nasforge.paths import store_label
from nasforge.result import Status

if TYPE_CHECKING:
    from nasforge.spaces.base import SearchSpace

__all__ = [
    "TABLES",
    "Knowledge",
    "KnownTask",
    "read_knowledge",
    "store_tasks",
    "table_tasks",
    "task_label",
]

TABLES = "nas-bench-graph"
"""The name of the shipped knowledge: NAS-Bench-Graph's nine tables."""


@dataclass(frozen=True)
class KnownTask:
    """One task's measured architectures.

    Attributes:
        label: The task (``"nas-bench-graph:cora"``, ``"node:cora"``, ``"image:digits"``).
        source: Where it was read: a store's absolute path or its URL without password, or
            the shipped tables.
        space: The space its architectures belong to.
        metric: The validation metric its scores come from.
        scores: Canonical key -> validation score, oriented so that larger is better.
        archs: Canonical key -> an architecture with that key.
        experiments: The experiments (or table) it was read from.
    """

    label: str
    source: str
    space: str
    metric: str
    scores: Mapping[str, float]
    archs: Mapping[str, Architecture]
    experiments: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.scores)

    def percentiles(self) -> dict[str, float]:
        """Canonical key -> the share of this task's architectures scoring lower (ties share
        the mean rank), in (0, 1]."""
        from scipy.stats import rankdata  # scipy.stats takes a while to import: when used

        keys = list(self.scores)
        ranks = rankdata([self.scores[k] for k in keys]) / len(keys)
        return dict(zip(keys, ranks.tolist(), strict=True))


@dataclass
class Knowledge:
    """Known tasks, and what was left out of them (with the reason), for the search to say."""

    tasks: list[KnownTask] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def usable_for(self, space: SearchSpace) -> Knowledge:
        """The known tasks whose architectures ``space`` accepts, each restricted to those
        architectures (renamed to ``space``); tasks with none are left out, with a note."""
        kept: list[KnownTask] = []
        left: dict[str, list[str]] = {}  # source -> labels left out
        for task in self.tasks:
            scores: dict[str, float] = {}
            archs: dict[str, Architecture] = {}
            for key, arch in task.archs.items():
                own = arch if arch.space == space.name else Architecture(space.name, arch.genes)
                if not _valid(space, own):
                    continue
                scores[key], archs[key] = task.scores[key], own
            if len(scores) < 2:
                left.setdefault(task.source, []).append(task.label)
                continue
            kept.append(
                KnownTask(
                    task.label,
                    task.source,
                    task.space,
                    task.metric,
                    scores,
                    archs,
                    task.experiments,
                )
            )
        notes = list(self.notes) + [
            f"left out: {', '.join(labels)} ({source}): space {space.name!r} accepts none "
            "of their architectures"
            for source, labels in left.items()
        ]
        return Knowledge(kept, notes)


def _valid(space: SearchSpace, arch: Architecture) -> bool:
    try:
        space.validate(arch)
    except InvalidArchitectureError:
        return False
    return True


def task_label(source: Mapping[str, Any] | None) -> str | None:
    """The task an experiment measured, from its stored ``source`` (``None`` if unknown)."""
    if not source:
        return None
    label = source.get("benchmark") or source.get("task")
    return str(label) if label else None


def store_tasks(target: str, *, exclude: str | None = None) -> list[KnownTask]:
    """The known tasks of the store at ``target``, read without writing to it.

    Args:
        target: A SQLite path or a database URL.
        exclude: An experiment's name to leave out (the search's own).

    Raises:
        StoreError: If there is no nasforge store at ``target`` (a missing file, another
            application's database), with one line saying so.
    """
    from nasforge.compression.plan import compression_of
    from nasforge.store.sql import open_store  # SQLAlchemy: when a store is read

    store = open_store(target, create=False)
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    try:
        for record in store.list_experiments():
            if record.name == exclude or compression_of(record) is not None:
                continue  # the search itself; pruned networks say nothing of architectures
            try:
                search = record.search
            except ConfigError:
                continue  # an objective this version cannot read: not knowledge
            label = task_label(search.source) or f"experiment {record.name}"
            objective = search.objective
            group = groups.setdefault(
                (label, search.space, objective.metric),
                {"scores": {}, "archs": {}, "experiments": []},
            )
            group["experiments"].append(record.name)
            for trial in store.trials(record.id, status=Status.COMPLETE):
                score = objective.score_of(True, trial.metrics, trial.costs)
                if not math.isfinite(score):
                    continue
                if score > group["scores"].get(trial.key, -math.inf):
                    group["scores"][trial.key] = score
                    group["archs"][trial.key] = trial.arch
    finally:
        store.close()
    shown = store_label(target)  # a URL's password is never shown
    return [
        KnownTask(label, shown, space, metric, g["scores"], g["archs"], tuple(g["experiments"]))
        for (label, space, metric), g in groups.items()
        if g["scores"]
    ]


def table_tasks(*, exclude: str | None = None) -> list[KnownTask]:
    """NAS-Bench-Graph's nine datasets as known tasks (validation accuracy; ROC-AUC for
    proteins), read from the installed package; ``exclude`` leaves one label out."""
    from nasforge.benchmarks.nas_bench_graph import DATASETS

    return [_table_task(d) for d in DATASETS if f"{TABLES}:{d}" != exclude]


@cache
def _table_task(dataset: str) -> KnownTask:
    from nasforge.evaluators.benchmark import NasBenchGraphEvaluator

    evaluator = NasBenchGraphEvaluator(dataset=dataset)
    table = evaluator.table
    scores: dict[str, float] = {}
    archs: dict[str, Architecture] = {}
    for key, (arch, arch_hash) in _keyed(evaluator.space_name).items():
        if arch_hash in table:
            scores[key], archs[key] = table[arch_hash].valid, arch
    return KnownTask(
        f"{TABLES}:{dataset}",
        "NAS-Bench-Graph table (nas-bench-graph package)",
        evaluator.space_name,
        "val_acc",
        scores,
        archs,
        (f"{TABLES}:{dataset}",),
    )


@cache
def _keyed(space_name: str) -> dict[str, tuple[Architecture, int]]:
    """Every architecture of a NAS-Bench-Graph space by canonical key, with the benchmark's
    hash (computed once per space and process: the eight ``gnn`` tables share them)."""
    from nasforge.evaluators.benchmark import NasBenchGraphEvaluator

    evaluator = NasBenchGraphEvaluator(
        dataset="proteins" if space_name == "gnn-proteins" else "cora"
    )
    space = evaluator.space
    out: dict[str, tuple[Architecture, int]] = {}
    for arch in space.enumerate():
        key = space.canonical_key(arch)
        if key not in out:
            out[key] = (arch, evaluator.arch_hash(arch))
    return out


def read_knowledge(
    stores: Sequence[str],
    *,
    tables: bool = True,
    exclude_experiment: str | None = None,
    exclude_task: str | None = None,
    current: str | None = None,
) -> Knowledge:
    """Known tasks from ``stores`` and (with ``tables``) the shipped tables.

    Args:
        stores: Store paths or URLs, read only.
        tables: Add NAS-Bench-Graph's nine tables.
        exclude_experiment: The search's own experiment, left out of ``current``.
        exclude_task: The search's own benchmark table (e.g. ``"nas-bench-graph:cora"``),
            left out of the shipped tables.
        current: The search's own store; a missing or empty one is no error (the search
            creates it), unlike a named source.

    Raises:
        StoreError: If a named store cannot be read (one line: which, and why).
    """
    found = Knowledge()
    for target in _unique(stores):
        if target != current and "://" not in target and not Path(target).exists():
            raise StoreError(
                f"knowledge source {target}: no such file; name a store that nasforge "
                "searches wrote (a SQLite file or a database URL)"
            )  # a path: nothing secret in it
        try:
            tasks = store_tasks(target, exclude=exclude_experiment if target == current else None)
        except StoreError as exc:
            if target == current:
                found.notes.append(
                    f"the search's own store {store_label(target)} holds no other search yet"
                )
                continue
            raise StoreError(f"knowledge source {store_label(target)}: {exc}") from None
        if not tasks:
            found.notes.append(f"{store_label(target)} holds no completed trial of another search")
        found.tasks.extend(tasks)
    if tables:
        found.tasks.extend(table_tasks(exclude=exclude_task))
    return found


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
