"""The Python API: what the CLI calls, usable on its own."""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from nasforge._builtins import BENCHMARKS, SPACES, STRATEGIES
from nasforge.budget import Budget
from nasforge.errors import ConfigError
from nasforge.evaluators.base import Evaluator
from nasforge.experiment import Experiment, Progress, RunSummary, best_trial, trial_score
from nasforge.objective import Objective
from nasforge.spaces.base import SearchSpace
from nasforge.store.base import ExperimentRecord, TrialRecord
from nasforge.store.sql import open_store
from nasforge.strategies.base import Strategy

__all__ = [
    "SearchPlan",
    "SearchResult",
    "best",
    "default_name",
    "list_benchmarks",
    "list_experiments",
    "list_spaces",
    "list_strategies",
    "make_strategy",
    "objective_of",
    "plan",
    "search",
    "strategy_options",
    "top",
    "trials",
]

_RESERVED = {"space", "objective", "seed"}


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What :func:`search` returns."""

    name: str
    db: str
    objective: Objective
    summary: RunSummary
    best: TrialRecord | None


def strategy_options(name: str) -> dict[str, Any]:
    """The options a strategy accepts, with their defaults."""
    cls = STRATEGIES.get(name)
    params = inspect.signature(cls).parameters
    return {
        p.name: p.default
        for p in params.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _RESERVED
    }


def make_strategy(
    name: str,
    space: SearchSpace,
    *,
    objective: Objective,
    seed: int | None,
    options: Mapping[str, Any] | None = None,
) -> Strategy:
    """Build a registered strategy, checking its options by name first.

    Raises:
        UnknownNameError: For an unknown strategy.
        ConfigError: For an option the strategy does not have, or a value it refuses.
    """
    accepted = strategy_options(name)
    for key in options or {}:
        if key not in accepted:
            listed = ", ".join(f"{k} (default {v!r})" for k, v in accepted.items()) or "none"
            raise ConfigError(f"strategy {name!r} has no option {key!r}; its options: {listed}")
    return STRATEGIES.create(name, space=space, objective=objective, seed=seed, **(options or {}))


def default_name(benchmark: str, strategy: str, seed: int | None) -> str:
    """The experiment name used when none is given: re-running the same search resumes it."""
    return f"{benchmark}-{strategy}-seed{seed}"


def _resolve(
    benchmark: str,
    space: str | None,
    table: str | os.PathLike[str] | None = None,
    epochs: int | None = None,
) -> tuple[SearchSpace, Evaluator]:
    if table is not None and not benchmark.startswith("nas-bench-201:"):
        raise ConfigError(
            f"a table path applies to nas-bench-201 benchmarks (you download their file); "
            f"{benchmark!r} ships with its package"
        )
    options: dict[str, Any] = {}
    if table is not None:
        options["path"] = table
    if epochs is not None:
        if not benchmark.startswith("nas-bench-201:"):
            raise ConfigError(
                f"--epochs applies to --task searches and to nas-bench-201 benchmarks (12 or "
                f"200), not to {benchmark!r}"
            )
        options["epochs"] = epochs
    evaluator = BENCHMARKS.create(benchmark, **options)
    evaluator.prepare()
    if space is None:
        space = evaluator.space_name
    space_obj = SPACES.create(space)
    if space_obj.name != evaluator.space_name:
        raise ConfigError(
            f"benchmark {benchmark!r} covers space {evaluator.space_name!r}, not {space!r}; "
            f"use --space {evaluator.space_name}"
        )
    return space_obj, evaluator


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """A validated search, ready to run: every name resolved, every option checked.

    Building one touches no store, so a bad value is reported before anything is opened.
    """

    name: str
    space: SearchSpace
    evaluator: Evaluator
    strategy: Strategy
    objective: Objective
    budget: Budget
    workers: int = 1

    def run(
        self,
        *,
        db: str | os.PathLike[str] | None = None,
        callback: Callable[[Progress], None] | None = None,
    ) -> SearchResult:
        """Run (or resume) the search in the store ``db``."""
        from nasforge.execution.process import ProcessExecutor  # imports torch: only when used

        store = open_store(db)
        stopper = getattr(self.evaluator, "stopper", None)
        if stopper is not None:  # workers read finished curves from the store
            stopper.bind(store.target, self.name)
        executor = (
            ProcessExecutor(self.evaluator, workers=self.workers) if self.workers > 1 else None
        )
        try:
            experiment = Experiment(
                name=self.name,
                space=self.space,
                evaluator=self.evaluator,
                strategy=self.strategy,
                store=store,
                objective=self.objective,
            )
            summary = experiment.run(self.budget, callback=callback, executor=executor)
        finally:
            if executor is not None:
                executor.close()
            store.close()
        return SearchResult(self.name, store.target, self.objective, summary, summary.best)


def plan(
    *,
    benchmark: str | None = None,
    task: str | None = None,
    space: str | None = None,
    strategy: str = "evolution",
    budget: int | str | Budget = 100,
    seed: int | None = 0,
    name: str | None = None,
    options: Mapping[str, Any] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    epochs: int | None = None,
    workers: int = 1,
    training: Mapping[str, Any] | None = None,
    task_options: Mapping[str, Any] | None = None,
    table: str | os.PathLike[str] | None = None,
    early_stopping: str | None = None,
) -> SearchPlan:
    """Validate a search's settings; the arguments are those of :func:`search`.

    Raises:
        ConfigError: For an unknown name or a bad value.
    """
    if (benchmark is None) == (task is None):
        raise ConfigError("give exactly one of a benchmark (table look-up) or a task (training)")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
    budget = budget if isinstance(budget, Budget) else Budget.parse(budget)
    if benchmark is not None:
        if training or task_options or early_stopping:
            raise ConfigError(
                "training, task and early-stopping options apply to --task searches only"
            )
        space_obj, evaluator = _resolve(benchmark, space, table, epochs)
    else:
        if table is not None:
            raise ConfigError("a table path applies to --benchmark searches only")
        assert task is not None
        space_obj, evaluator = _resolve_training(
            task,
            space,
            data_root=data_root,
            download=download,
            seed=seed or 0,
            epochs=epochs,
            training=training or {},
            task_options=task_options or {},
            early_stopping=early_stopping,
        )
    objective = evaluator.objectives[0]
    options = {**_fidelity_defaults(strategy, evaluator), **(options or {})}
    strat = make_strategy(strategy, space_obj, objective=objective, seed=seed, options=options)
    name = name or default_name(benchmark or str(task), strategy, seed)
    return SearchPlan(name, space_obj, evaluator, strat, objective, budget, workers)


_TRAIN_KEYS = ("lr", "weight_decay", "optimizer", "patience", "batch_size", "momentum", "schedule")


def _fidelity_defaults(strategy: str, evaluator: Evaluator) -> dict[str, Any]:
    """Multi-fidelity strategies on a training task default to its epochs as the top rung."""
    accepted = strategy_options(strategy)
    epochs = getattr(getattr(evaluator, "train", None), "epochs", None)
    if "max_fidelity" not in accepted or not isinstance(epochs, int):
        return {}
    eta = int(accepted.get("eta", 3))
    return {"max_fidelity": epochs, "min_fidelity": max(1, round(epochs / eta**2))}


def _resolve_training(
    task: str,
    space: str | None,
    *,
    data_root: str | os.PathLike[str] | None,
    download: bool,
    seed: int,
    epochs: int | None,
    training: Mapping[str, Any],
    task_options: Mapping[str, Any],
    early_stopping: str | None = None,
) -> tuple[SearchSpace, Evaluator]:
    # torch and PyG are imported only by searches that train
    from dataclasses import fields, is_dataclass

    from nasforge.evaluators.training import TrainingEvaluator
    from nasforge.tasks.resolve import resolve_task

    setup = resolve_task(
        task, data_root=data_root, download=download, seed=seed, options=task_options
    )
    space_obj = SPACES.create(space or setup.space)
    same_kind = type(space_obj) is type(SPACES.create(setup.space))
    hyper = setup.hyper if same_kind else None
    if hyper is None and hasattr(space_obj, "default_hyper"):
        hyper = space_obj.default_hyper()
    hyper_keys = tuple(f.name for f in fields(hyper)) if is_dataclass(hyper) else ()
    unknown = sorted(set(training) - set(hyper_keys) - set(_TRAIN_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown training option(s) {unknown} for space {space_obj.name!r}; valid: "
            f"{', '.join(hyper_keys + _TRAIN_KEYS)}"
        )
    if hyper_keys:
        hyper = replace(hyper, **{k: v for k, v in training.items() if k in hyper_keys})  # type: ignore[type-var]
    train = replace(setup.train, **{k: v for k, v in training.items() if k in _TRAIN_KEYS})
    if epochs is not None:
        train = replace(train, epochs=epochs)
    stopper = None
    if early_stopping is not None:
        if early_stopping != "curve":
            raise ConfigError(
                f"unknown early stopping {early_stopping!r}; valid: curve (learning-curve "
                "prediction, Baker et al. 2017)"
            )
        from nasforge.objective import Direction, Objective
        from nasforge.stopping import LearningCurveStopper

        regression = getattr(setup.task, "kind", "") == "regression"
        objective = (
            Objective("val_rmse", Direction.MINIMIZE) if regression else Objective("val_acc")
        )
        stopper = LearningCurveStopper(objective=objective, seed=seed)
    evaluator = TrainingEvaluator(
        task=setup.task, space=space_obj, hyper=hyper, train=train, stopper=stopper
    )
    return space_obj, evaluator


def search(
    *,
    benchmark: str | None = None,
    task: str | None = None,
    space: str | None = None,
    strategy: str = "evolution",
    budget: int | str | Budget = 100,
    seed: int | None = 0,
    name: str | None = None,
    db: str | os.PathLike[str] | None = None,
    options: Mapping[str, Any] | None = None,
    callback: Callable[[Progress], None] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    epochs: int | None = None,
    workers: int = 1,
    training: Mapping[str, Any] | None = None,
    task_options: Mapping[str, Any] | None = None,
    table: str | os.PathLike[str] | None = None,
    early_stopping: str | None = None,
) -> SearchResult:
    """Run (or resume) a search and return its summary and best trial.

    Example:
        >>> result = nasforge.search(benchmark="nas-bench-graph:cora", strategy="evolution",
        ...                          budget=100, seed=0, name="my-run")
        >>> result.best.arch, result.best.metrics["val_acc"]

    Args:
        benchmark: A registered benchmark, e.g. ``"nas-bench-graph:cora"`` (table look-up),
            or ``"nas-bench-201:cifar10-valid"`` (with ``table``).
        task: Data to train candidates on: a graph (``"planetoid:Cora"``, ``"synthetic"``,
            ``"file:graph.npz"``), images (``"image:digits"``, ``"image:folder:DIR"``,
            ``"image:file:x.npz"``) or a table (``"tabular:breast_cancer"``, ``"csv:data.csv"``,
            ``"tabular:file:x.npz"``); give exactly one of ``benchmark`` and ``task``.
        space: A registered space; defaults to the benchmark's, or the task's (``gnn`` for
            graphs, ``nb201`` for images, ``mlp`` for tables).
        strategy: A registered strategy (``random``, ``evolution``, ``local``).
        budget: Distinct architectures (``100``), or a text such as ``"500trials"``, ``"10m"``.
        seed: Seed of the strategy.
        name: Experiment name; an existing one is resumed. Defaults to
            ``<benchmark>-<strategy>-seed<seed>``.
        db: Store path or SQLAlchemy URL; defaults to ``$NASFORGE_DB`` or ``nasforge.db``.
        options: Strategy options, e.g. ``{"population_size": 30}``.
        callback: Called with a :class:`Progress` after every new trial.
        data_root: Folder holding ``<Name>/raw/`` for Planetoid tasks.
        download: Allow downloading Planetoid files that are missing (needs internet).
        epochs: Training epochs per candidate (default: the task's protocol).
        workers: Local worker processes training candidates in parallel.
        training: Overrides of the space's model settings (gnn: ``hidden``, ``dropout``,
            ``pre``, ``post``, ``gat_heads``; nb201: ``channels``, ``cells_per_stage``) and of
            ``lr``, ``weight_decay``, ``optimizer``, ``patience``, ``batch_size``,
            ``momentum``, ``schedule``.
        table: The NAS-Bench-201 / NATS-Bench file or folder you downloaded, for
            ``nas-bench-201:*`` benchmarks (default ``$NASFORGE_NB201_PATH``).
        early_stopping: ``"curve"`` stops training runs that a learning-curve predictor fitted
            on the search's finished runs expects to lose (Baker et al. 2017); they are
            stored as PRUNED.
        task_options: ``label``/``kind`` for CSV and NPZ tables, ``image_size``/``grayscale``
            for image folders, ``split_seed`` for image and tabular data.

    Raises:
        ConfigError: For an unknown name or a bad value (nothing is written then).
        StoreError: If the store cannot be opened or written.
    """
    settings = plan(
        benchmark=benchmark,
        task=task,
        space=space,
        strategy=strategy,
        budget=budget,
        seed=seed,
        name=name,
        options=options,
        data_root=data_root,
        download=download,
        epochs=epochs,
        workers=workers,
        training=training,
        task_options=task_options,
        table=table,
        early_stopping=early_stopping,
    )
    return settings.run(db=db, callback=callback)


def _experiment(name: str, db: str | os.PathLike[str] | None) -> tuple[ExperimentRecord, Any]:
    store = open_store(db, create=False)
    try:
        return store.get_experiment(name), store
    except BaseException:
        store.close()
        raise


def trials(name: str, *, db: str | os.PathLike[str] | None = None) -> list[TrialRecord]:
    """All stored trials of experiment ``name``, by number."""
    record, store = _experiment(name, db)
    try:
        return list(store.trials(record.id))
    finally:
        store.close()


def objective_of(record: ExperimentRecord) -> Objective:
    """The objective an experiment was created with."""
    return Objective.parse(str(record.config.get("objective", "val_acc:max")))


def top(name: str, n: int, *, db: str | os.PathLike[str] | None = None) -> list[TrialRecord]:
    """The ``n`` best COMPLETE trials of experiment ``name`` on its objective, best first."""
    if n < 1:
        raise ConfigError(f"the number of top trials must be >= 1, got {n}")
    record, store = _experiment(name, db)
    try:
        objective = objective_of(record)
        ranked = [t for t in store.trials(record.id) if trial_score(t, objective) > -math.inf]
    finally:
        store.close()
    ranked.sort(key=lambda t: (-trial_score(t, objective), t.number))
    return ranked[:n]


def best(name: str, *, db: str | os.PathLike[str] | None = None) -> TrialRecord | None:
    """The best COMPLETE trial of experiment ``name`` on its stored objective."""
    record, store = _experiment(name, db)
    try:
        return best_trial(store.trials(record.id), objective_of(record))
    finally:
        store.close()


def list_experiments(db: str | os.PathLike[str] | None = None) -> list[ExperimentRecord]:
    """Experiments in the store, oldest first."""
    store = open_store(db, create=False)
    try:
        return store.list_experiments()
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
