"""The Python API: what the CLI calls, usable on its own.

A search is configured once (:class:`~nasforge.config.SearchConfig`), resolved into a
:class:`~nasforge.plan.SearchPlan` (:mod:`nasforge.plan`) and run; everything else here reads
stored experiments.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasforge.budget import Budget
from nasforge.config import SearchConfig, parse_objectives
from nasforge.constraint import Constraint
from nasforge.errors import ConfigError
from nasforge.evaluators.base import BENCHMARKS
from nasforge.execution.base import EXECUTORS
from nasforge.experiment import Progress
from nasforge.knowledge.retrieval import Similar
from nasforge.objective import Objective, best_trial, trial_score
from nasforge.plan import SearchPlan, SearchResult, default_name, plan_search
from nasforge.result import Status
from nasforge.spaces.base import SPACES, space_members, split_members
from nasforge.store.base import DamagedRow, ExperimentRecord, TrialRecord
from nasforge.strategies.base import STRATEGIES, make_strategy, strategy_options
from nasforge.tasks.base import TASKS

__all__ = [
    "Budget",
    "ParetoResult",
    "SearchConfig",
    "SearchPlan",
    "SearchResult",
    "StoreCheck",
    "best",
    "check_store",
    "constraints_of",
    "default_name",
    "experiment",
    "export",
    "list_benchmarks",
    "list_executors",
    "list_experiments",
    "list_spaces",
    "list_strategies",
    "list_tasks",
    "make_strategy",
    "objective_of",
    "objectives_of",
    "pareto",
    "plan",
    "report",
    "search",
    "strategy_options",
    "top",
    "trials",
]


def plan(config: SearchConfig | None = None, /, **settings: Any) -> SearchPlan:
    """Validate a search's settings without running it (or opening anything).

    Args:
        config: The search, configured; or ``None`` and the settings as keywords.
        **settings: The keywords of :meth:`SearchConfig.from_settings` (those of
            :func:`search`), when ``config`` is not given.

    Raises:
        ConfigError: For an unknown name or a bad value.
    """
    if config is not None and settings:
        raise ConfigError(
            f"give a SearchConfig or settings as keywords, not both (got {sorted(settings)})"
        )
    return plan_search(config if config is not None else SearchConfig.from_settings(**settings))


def search(
    config: SearchConfig | None = None,
    /,
    *,
    db: str | os.PathLike[str] | None = None,
    callback: Callable[[Progress], None] | None = None,
    **settings: Any,
) -> SearchResult:
    """Run (or resume) a search and return its summary and best trial.

    Example:
        >>> result = nasforge.search(benchmark="nas-bench-graph:cora", strategy="evolution",
        ...                          budget=100, seed=0, name="my-run")
        >>> result.best.arch, result.best.metrics["val_acc"]

    Args:
        config: The search, configured (:class:`~nasforge.config.SearchConfig`); or
            ``None`` and its settings as keywords.
        db: Store path or SQLAlchemy URL; defaults to ``$NASFORGE_DB`` or ``nasforge.db``.
        callback: Called with a :class:`~nasforge.experiment.Progress` after every new trial.
        **settings: The search's settings (:meth:`SearchConfig.from_settings`; each is
            documented on the part that holds it): ``benchmark`` or ``task``, ``space``,
            ``table``, ``data_root``, ``download``, ``task_options``
            (:class:`~nasforge.config.SourceSettings`); ``strategy``, ``options``, ``seed``
            and the warm start (:class:`~nasforge.config.StrategySettings`); ``epochs``,
            ``training``, ``early_stopping``, ``latency_backend``, ``keep_weights``
            (:class:`~nasforge.config.TrainingSettings`); ``executor``, ``workers``,
            ``ray_address``, ``max_retries``, ``trial_timeout``, ``device``
            (:class:`~nasforge.config.ExecutionSettings`); ``objectives``, ``constraints``
            (:class:`~nasforge.config.GoalSettings`); ``budget`` (distinct architectures
            such as ``100``, or ``"500trials"``, ``"10m"``) and ``name`` (an existing
            experiment is resumed; default ``<benchmark or task>-<strategy>-seed<seed>``).

    Raises:
        ConfigError: For an unknown name or a bad value (nothing is written then).
        StoreError: If the store cannot be opened or written.
    """
    return plan(config, **settings).run(db=db, callback=callback)


def _experiment(name: str, db: str | os.PathLike[str] | None) -> tuple[ExperimentRecord, Any]:
    from nasforge.store.sql import open_store  # SQLAlchemy: when a store is read

    store = open_store(db, create=False)
    try:
        return store.get_experiment(name), store
    except BaseException:
        store.close()
        raise


def experiment(name: str, *, db: str | os.PathLike[str] | None = None) -> ExperimentRecord:
    """The stored record (name, configuration) of experiment ``name``."""
    record, store = _experiment(name, db)
    store.close()
    return record


def trials(name: str, *, db: str | os.PathLike[str] | None = None) -> list[TrialRecord]:
    """All stored trials of experiment ``name``, by number."""
    record, store = _experiment(name, db)
    try:
        return space_members(record, store.trials(record.id))
    finally:
        store.close()


def objective_of(record: ExperimentRecord) -> Objective:
    """The (first) objective an experiment was created with (``record.objective``)."""
    return record.objective


def objectives_of(record: ExperimentRecord) -> tuple[Objective, ...]:
    """All objectives of an experiment, in order (``record.objectives``)."""
    return record.objectives


def constraints_of(record: ExperimentRecord) -> tuple[Constraint, ...]:
    """The hard constraints an experiment was created with (``record.constraints``)."""
    return record.constraints


def top(name: str, n: int, *, db: str | os.PathLike[str] | None = None) -> list[TrialRecord]:
    """The ``n`` best COMPLETE trials of experiment ``name`` on its objective, best first."""
    if n < 1:
        raise ConfigError(f"the number of top trials must be >= 1, got {n}")
    record, store = _experiment(name, db)
    try:
        objective = objective_of(record)
        stored = space_members(record, store.trials(record.id))
        ranked = [t for t in stored if trial_score(t, objective) > -math.inf]
    finally:
        store.close()
    ranked.sort(key=lambda t: (-trial_score(t, objective), t.number))
    return ranked[:n]


def best(name: str, *, db: str | os.PathLike[str] | None = None) -> TrialRecord | None:
    """The best COMPLETE trial of experiment ``name`` on its stored objective."""
    record, store = _experiment(name, db)
    try:
        return best_trial(space_members(record, store.trials(record.id)), objective_of(record))
    finally:
        store.close()


def similar(
    name: str,
    *,
    db: str | os.PathLike[str] | None = None,
    knowledge: Sequence[str] = (),
    tables: bool = True,
    top: int = 10,
    encoding: str = "auto",
) -> Similar:
    """The known tasks most like search ``name``'s task (by how they rank the architectures it
    evaluated) and the known architectures nearest to its best one (by encoding distance).

    Args:
        name: The search.
        db: Its store, read only (the knowledge's default source too).
        knowledge: Stores of earlier searches to compare with (default: ``db``).
        tables: Add NAS-Bench-Graph's nine tables.
        top: How many nearest architectures.
        encoding: ``"auto"`` (the space's own) or ``"universal"`` (the built model's graph).

    Raises:
        StoreError: For a store or knowledge source that cannot be read.
        ConfigError: For a search with no completed trial, or an unknown encoding.
    """
    from nasforge.knowledge.retrieval import similar_to
    from nasforge.store.sql import store_target

    record, store = _experiment(name, db)
    try:
        stored = space_members(record, store.trials(record.id))
    finally:
        store.close()
    space = SPACES.create(record.search.space)
    objective = objective_of(record)
    scores: dict[str, float] = {}
    for t in stored:
        if t.status is Status.COMPLETE:
            value = objective.score_of(True, t.metrics, t.costs)
            if math.isfinite(value) and value > scores.get(t.key, -math.inf):
                scores[t.key] = value
    return similar_to(
        name,
        db=store_target(db),
        space=space,
        trials=stored,
        source=dict(record.search.source or {}),
        objective_scores=scores,
        knowledge=knowledge,
        tables=tables,
        top=top,
        encoding=encoding,
    )


@dataclass(frozen=True, slots=True)
class ParetoResult:
    """The Pareto front of an experiment and its hypervolume."""

    objectives: tuple[Objective, ...]
    front: list[TrialRecord]
    reference: list[float]
    hypervolume: float
    feasible: int
    infeasible: int


def pareto(
    name: str,
    *,
    db: str | os.PathLike[str] | None = None,
    objectives: Sequence[str | Objective] | None = None,
    reference: Mapping[str, float] | None = None,
) -> ParetoResult:
    """The Pareto front of experiment ``name`` and its hypervolume against a reference point.

    Args:
        name: A stored experiment.
        db: Store path or URL.
        objectives: Objectives to take the front on; default the experiment's own (for a
            single-objective search, give e.g. ``["val_acc:max", "latency_ms:min"]`` to see
            the trade-off among its trials).
        reference: The reference point in natural units, by metric; maximised objectives
            default to 0, minimised ones to their worst value among the complete trials
            (see :func:`nasforge.pareto.reference_point`).

    Raises:
        ConfigError: For a missing experiment, fewer than two objectives, or a missing
            reference value.
    """
    from nasforge.pareto import pareto_front, reference_point, trial_hypervolume

    record, store = _experiment(name, db)
    try:
        stored = space_members(record, store.trials(record.id))
    finally:
        store.close()
    goals = parse_objectives(objectives) if objectives else record.objectives
    if len(goals) < 2:
        raise ConfigError(
            f"experiment {name!r} has one objective ({goals[0]}); a Pareto front needs two or "
            "more: pass objectives, e.g. --objective val_acc:max --objective latency_ms:min"
        )
    ref = reference_point(goals, reference, stored)
    front = pareto_front(stored, goals)
    return ParetoResult(
        objectives=goals,
        front=front,
        reference=ref,
        hypervolume=trial_hypervolume(stored, goals, ref),
        feasible=sum(t.status is Status.COMPLETE for t in stored),
        infeasible=sum(t.status is Status.INFEASIBLE for t in stored),
    )


def list_experiments(db: str | os.PathLike[str] | None = None) -> list[ExperimentRecord]:
    """Experiments in the store, oldest first."""
    from nasforge.store.sql import open_store  # SQLAlchemy: when a store is read

    store = open_store(db, create=False)
    try:
        return store.list_experiments()
    finally:
        store.close()


@dataclass(frozen=True)
class StoreCheck:
    """What :func:`check_store` found: the file's own check (SQLite's ``integrity_check``;
    ``"ok"`` on a server database), how many experiments and trials can be read, and every
    damaged row (which readers skip)."""

    target: str
    integrity: str
    experiments: int
    trials: int
    damaged: tuple[DamagedRow, ...]

    @property
    def ok(self) -> bool:
        return self.integrity == "ok" and not self.damaged


def check_store(db: str | os.PathLike[str] | None = None) -> StoreCheck:
    """Check a store without writing to it: the database file itself, then every row.

    Raises:
        StoreError: If the store cannot be opened at all (not a nasforge store, unreadable).
    """
    import warnings

    from nasforge.errors import DamagedRowWarning
    from nasforge.store.sql import open_store  # SQLAlchemy: when a store is read

    store = open_store(db, create=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DamagedRowWarning)  # listed in the answer instead
            integrity = store.integrity_check()
            records = store.list_experiments()
            count = sum(store.count_trials(r.id) for r in records)
            damaged = store.damaged()
            for record in records:  # rows the store reads, but not architectures of the space
                damaged.extend(split_members(record, store.trials(record.id))[1])
            return StoreCheck(
                target=store.target,
                integrity=integrity,
                experiments=len(records),
                trials=count,
                damaged=tuple(damaged),
            )
    finally:
        store.close()


def list_spaces() -> list[str]:
    """Registered search spaces."""
    return SPACES.names()


def list_strategies() -> list[str]:
    """Registered strategies."""
    return STRATEGIES.names()


def list_benchmarks() -> list[str]:
    """Registered benchmarks."""
    return BENCHMARKS.names()


def list_tasks() -> list[str]:
    """Registered task kinds (``nasforge.tasks.task_forms()`` lists their specs)."""
    return TASKS.names()


def list_executors() -> list[str]:
    """Registered executors."""
    return EXECUTORS.names()


def export(
    name: str,
    *,
    out: str | os.PathLike[str],
    trial: int | None = None,
    db: str | os.PathLike[str] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    task: str | None = None,
    task_options: Mapping[str, Any] | None = None,
    epochs: int | None = None,
    retrain: bool = False,
) -> Path:
    """Write one trial's trained model into the folder ``out``.

    When the search kept the trial's weights (``keep_weights``) they are used as they are;
    otherwise (or with ``retrain``) the architecture is trained again at full fidelity.

    The experiment's data and settings are rebuilt from its stored config: a training search
    retrains on its own data with its epochs and seed; a ``nas-bench-graph:<dataset>`` search
    trains on the real dataset with the benchmark's protocol (the data must be under
    ``data_root``, or ``download`` allowed); a ``nas-bench-201:*`` search needs ``task``, other
    images to train the cell on (its CIFAR data cannot be loaded). The weights of the best
    validation epoch are kept. Written: ``model.safetensors``, ``nasforge.json`` (architecture,
    hyperparameters, task, input standardisation, the trial's stored metrics and this run's) and
    ``model.onnx`` where the model's ops export (the JSON says why not otherwise). Load the
    folder with :func:`nasforge.load`.

    Example:
        >>> path = nasforge.export("my-run", out="my-model")
        >>> model = nasforge.load(path)

    Args:
        name: The experiment.
        out: A new or empty folder.
        trial: The trial number; default the best COMPLETE trial (as :func:`best`: on the
            first objective, at the highest fidelity).
        db: Store path or SQLAlchemy URL (as for :func:`search`); only read.
        data_root: Folder holding ``<Name>/raw/`` of Planetoid data (overrides the stored one).
        download: Allow downloading missing Planetoid files (needs internet).
        task: For table-look-up experiments only: data to train on instead of the benchmark's
            (a task spec as for :func:`search`, of the space's kind: images for ``nb201``).
        task_options: Options of ``task`` (as for :func:`search`).
        epochs: Train this many epochs instead of the search's (e.g. longer for a final
            model); the default, the search's full fidelity, reproduces its trial.
        retrain: Train again even when the search kept the trial's weights.

    Returns:
        The folder written.

    Raises:
        ConfigError: For a missing experiment or trial, a trial that is not COMPLETE, an
            output folder that is a file or not empty, or data that is not available; nothing
            is written then.
        StoreError: If the store cannot be read.
    """
    from nasforge.exporting.exporter import export_experiment  # imports torch: only when used

    return export_experiment(
        name,
        out=out,
        trial=trial,
        db=db,
        data_root=data_root,
        download=download,
        task=task,
        task_options=dict(task_options or {}),
        epochs=epochs,
        retrain=retrain,
    )


def compress(
    name: str,
    *,
    method: str,
    sparsity: str | Sequence[float] = (0.5, 0.8, 0.9, 0.95),
    trial: int | None = None,
    db: str | os.PathLike[str] | None = None,
    into: str | None = None,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    task: str | None = None,
    task_options: Mapping[str, Any] | None = None,
    prune_ratio: float = 0.5,
    rewind_epoch: int | None = None,
    progress: Callable[[Any], None] | None = None,
) -> Any:
    """Prune a trained trial of experiment ``name`` to each ``sparsity``, storing every result
    as a trial of a compression experiment (``into``, default ``<name>-compressed``).

    The trial's architecture is first trained again as the search trained it (the dense
    reference, stored as a trial too); then ``method`` prunes its weight matrices and kernels:
    ``magnitude`` (one-shot global magnitude pruning, then fine-tuning), ``imp`` (iterative
    magnitude pruning, ``prune_ratio`` of the remaining weights per round, rewinding to
    ``rewind_epoch``: lottery tickets) or ``random`` (random masks with magnitude pruning's
    per-layer sparsity, the baseline) or ``channels`` (structured: a width search on the
    trained network within a FLOPs budget, then the narrower network trained with
    distillation; each ``sparsity`` is then the share of FLOPs removed). Weights and masks are
    kept as safetensors beside the store; a run killed at any point resumes by calling this
    again. Export a compressed trial with :func:`export` (the pruned weights, zeros kept, or
    the narrower network).

    Example:
        >>> run = nasforge.compress("my-run", method="imp", sparsity=[0.5, 0.9])
        >>> [(t.sparsity, t.val) for t in run.trials]

    Args:
        name: The source experiment (a training search, or a benchmark search whose data can
            be loaded, as for :func:`export`).
        method: ``magnitude``, ``imp``, ``random`` or ``channels``.
        sparsity: Shares of the prunable weights to remove, each in (0, 1): numbers or
            ``"0.5,0.9"``.
        trial: The trial to compress; default the best COMPLETE trial.
        db: Store path or SQLAlchemy URL (as for :func:`search`).
        into: The compression experiment's name.
        data_root, download, task, task_options: Where the data is, as for :func:`export`.
        prune_ratio: ``imp``: share of the remaining weights each round removes.
        rewind_epoch: Epoch whose weights ``imp`` and ``random`` train from (default 5% of
            the search's epochs, at least 1).
        progress: Called with each step's :class:`~nasforge.compression.run.CompressedTrial` as
            it is stored (or found stored).

    Returns:
        A :class:`~nasforge.compression.run.CompressionRun`: the experiment's name and its steps.

    Raises:
        ConfigError: For an unknown method, a sparsity outside (0, 1), a missing experiment or
            trial, a trial that is not COMPLETE, a benchmark search whose data cannot be
            loaded, or an ``into`` experiment made otherwise; nothing is written then.
        StoreError: If the store cannot be read or written.
    """
    from nasforge.compression.run import compress_experiment  # imports torch: only when used

    return compress_experiment(
        name,
        method=method,
        sparsity=sparsity,
        trial=trial,
        db=db,
        into=into,
        data_root=data_root,
        download=download,
        task=task,
        task_options=task_options,
        prune_ratio=prune_ratio,
        rewind_epoch=rewind_epoch,
        progress=progress,
    )


def report(
    name: str,
    out: str | os.PathLike[str],
    *,
    db: str | os.PathLike[str] | None = None,
    top: int = 10,
) -> Path:
    """Write a self-contained HTML report of experiment ``name`` to ``out``.

    Settings, best-so-far curves, every trial against the objective and each cost, the
    Pareto front of a multi-objective search, and the ``top`` best architectures as a table and
    as diagrams; it works offline (see :func:`nasforge.reporting.report`).

    Raises:
        ConfigError: For an unknown experiment, ``top`` < 1 or an ``out`` that cannot be
            written (nothing is written then).
        StoreError: If the store cannot be read.
    """
    from nasforge.reporting import report as write_report

    return write_report(name, out, db=db, top=top)
