"""Retrieval: for a search, the known tasks most like its task and the known architectures
nearest to its best one (``nasforge similar``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nasforge.errors import ConfigError
from nasforge.knowledge.base import Knowledge, read_knowledge, task_label
from nasforge.knowledge.similarity import match_tasks
from nasforge.result import Status

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.spaces.base import SearchSpace
    from nasforge.store.base import TrialRecord

__all__ = ["ENCODINGS", "Measured", "Neighbour", "Similar", "SimilarTask", "similar_to"]

ENCODINGS = ("auto", "universal")
"""``auto``: the space's own encoding; ``universal``: the built model's computation graph."""

UNIVERSAL_POOL = 500
"""Known architectures given universal distances at most (each needs a model built and run):
the nearest by the space's own encoding."""


@dataclass(frozen=True)
class SimilarTask:
    """A known task and how the search's task ranks alike (Spearman's rho on the architectures
    both measured; its weight as the transfer strategy would give it)."""

    label: str
    source: str
    rho: float
    shared: int
    weight: float
    best: Architecture
    best_score: float


@dataclass(frozen=True)
class Measured:
    """One known task's measurement of an architecture."""

    label: str
    source: str
    score: float
    percentile: float


@dataclass(frozen=True)
class Neighbour:
    """A known architecture near the search's best, and the tasks that measured it."""

    distance: float
    arch: Architecture
    key: str
    measured: tuple[Measured, ...]


@dataclass(frozen=True)
class Similar:
    """What :func:`similar_to` found for one search."""

    name: str
    task: str | None
    best: TrialRecord
    evaluated: int
    tasks: tuple[SimilarTask, ...]
    neighbours: tuple[Neighbour, ...]
    notes: tuple[str, ...]


def similar_to(
    name: str,
    *,
    db: str,
    space: SearchSpace,
    trials: Sequence[TrialRecord],
    source: dict[str, object] | None,
    objective_scores: dict[str, float],
    knowledge: Sequence[str] = (),
    tables: bool = True,
    top: int = 10,
    encoding: str = "auto",
) -> Similar:
    """The known tasks and architectures most like the search ``name``'s.

    Args:
        name: The search (its own experiment is left out of the knowledge).
        db: Its store; the knowledge's default source.
        space: Its space.
        trials: Its trials.
        source: Its stored data source (which task it measured).
        objective_scores: Canonical key -> its oriented validation score, COMPLETE trials.
        knowledge: Stores to read (default: ``db``).
        tables: Add NAS-Bench-Graph's tables.
        top: How many neighbours.
        encoding: ``"auto"`` (the space's) or ``"universal"``.

    Raises:
        ConfigError: For an unknown encoding, or a search with no completed trial.
    """
    if encoding not in ENCODINGS:
        raise ConfigError(f"unknown encoding {encoding!r}; valid: {', '.join(ENCODINGS)}")
    complete = [t for t in trials if t.status is Status.COMPLETE and t.key in objective_scores]
    if not complete:
        raise ConfigError(f"experiment {name!r} has no completed trial to compare")
    best = max(complete, key=lambda t: (objective_scores[t.key], -t.number))
    label = task_label(source)
    found: Knowledge = read_knowledge(
        list(knowledge) or [db],
        tables=tables,
        exclude_experiment=name,
        exclude_task=label,
        current=db,
    ).usable_for(space)
    matches = match_tasks([t.scores for t in found.tasks], objective_scores)
    tasks = sorted(
        (
            SimilarTask(
                task.label,
                task.source,
                m.rho,
                m.shared,
                m.weight,
                task.archs[(k := max(task.scores, key=lambda key: (task.scores[key], key)))],
                task.scores[k],
            )
            for task, m in zip(found.tasks, matches, strict=True)
        ),
        key=lambda s: (-s.rho, s.label),
    )
    notes = list(found.notes)
    neighbours = _neighbours(space, best.arch, found, top, encoding, notes)
    return Similar(name, label, best, len(complete), tuple(tasks), tuple(neighbours), tuple(notes))


def _distances(
    encode: Callable[[Architecture], np.ndarray], arch: Architecture, others: list[Architecture]
) -> np.ndarray:
    codes = np.stack([np.asarray(encode(a), dtype=np.float64) for a in others])
    own = np.asarray(encode(arch), dtype=np.float64)
    return np.asarray(np.sqrt(((codes - own) ** 2).sum(axis=1)))


def _neighbours(
    space: SearchSpace,
    arch: Architecture,
    found: Knowledge,
    top: int,
    encoding: str,
    notes: list[str],
) -> list[Neighbour]:
    """The ``top`` measurements of known architectures nearest to ``arch`` (Euclidean
    distance of encodings; one row per task that measured an architecture)."""
    if not found.tasks or top < 1:
        return []
    archs: dict[str, Architecture] = {}
    for task in found.tasks:
        for key, known in task.archs.items():
            archs.setdefault(key, known)
    keys = sorted(archs)
    distance = _distances(space.encode, arch, [archs[k] for k in keys])
    if encoding == "universal":
        from nasforge.knowledge.encoding import UniversalEncoder

        if len(keys) > UNIVERSAL_POOL:  # a model built per architecture: the nearest few
            keep = np.argsort(distance, kind="stable")[:UNIVERSAL_POOL]
            keys = [keys[int(i)] for i in sorted(keep)]
            notes.append(
                f"universal distances of the {UNIVERSAL_POOL} known architectures nearest by "
                f"the space's own encoding (of {len(archs)})"
            )
        distance = _distances(UniversalEncoder(space), arch, [archs[k] for k in keys])
    percentiles = [task.percentiles() for task in found.tasks]
    rows: list[Neighbour] = []
    for i in np.argsort(distance, kind="stable")[:top]:
        key = keys[int(i)]
        measured = tuple(
            Measured(task.label, task.source, task.scores[key], pct[key])
            for task, pct in zip(found.tasks, percentiles, strict=True)
            if key in task.scores
        )
        rows.append(Neighbour(float(distance[i]), archs[key], key, measured))
    return rows
