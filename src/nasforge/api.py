"""The Python API: what the CLI calls, usable on its own."""

from __future__ import annotations

import inspect
import math
import os
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nasforge._builtins import BENCHMARKS, SPACES, STRATEGIES
from nasforge.artifacts import ArtifactStore
from nasforge.budget import Budget
from nasforge.constraint import Constraint
from nasforge.errors import ConfigError
from nasforge.evaluators.base import Evaluator
from nasforge.execution.base import refuse_while_a_worker_starts
from nasforge.execution.factory import check_executor, make_executor
from nasforge.experiment import (
    DEFAULT_MAX_RETRIES,
    Experiment,
    Progress,
    RunSummary,
    best_trial,
    check_metrics,
    trial_score,
)
from nasforge.objective import Objective
from nasforge.result import Status
from nasforge.spaces.base import SearchSpace
from nasforge.store.base import ExperimentRecord, TrialRecord
from nasforge.store.sql import open_store, store_target
from nasforge.strategies.base import Strategy

__all__ = [
    "ParetoResult",
    "SearchPlan",
    "SearchResult",
    "best",
    "constraints_of",
    "default_name",
    "experiment",
    "export",
    "list_benchmarks",
    "list_experiments",
    "list_spaces",
    "list_strategies",
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
    objective: Objective | Sequence[Objective],
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
    workers: int | None = 1
    source: Mapping[str, Any] | None = None
    constraints: tuple[Constraint, ...] = ()
    executor: str = "inline"
    ray_address: str | None = None
    max_retries: int = DEFAULT_MAX_RETRIES
    trial_timeout: float | None = None
    keep_weights: bool = False

    @property
    def objectives(self) -> tuple[Objective, ...]:
        """Every objective of the search (several for a multi-objective one)."""
        return tuple(self.strategy.objectives)

    def run(
        self,
        *,
        db: str | os.PathLike[str] | None = None,
        callback: Callable[[Progress], None] | None = None,
    ) -> SearchResult:
        """Run (or resume) the search in the store ``db``."""
        target = store_target(db)
        stopper = getattr(self.evaluator, "stopper", None)
        if stopper is not None:  # workers read finished curves from the store
            stopper.bind(target, self.name)
        # the executor first: a cluster that does not answer leaves no store file behind
        executor = make_executor(
            self.executor,
            self.evaluator,
            workers=self.workers,
            ray_address=self.ray_address,
            trial_timeout=self.trial_timeout,
        )
        try:
            store = open_store(target)
        except BaseException:
            if executor is not None:
                executor.close()
            raise
        try:
            experiment = Experiment(
                name=self.name,
                space=self.space,
                evaluator=self.evaluator,
                strategy=self.strategy,
                store=store,
                objective=self.objective,
                constraints=self.constraints,
                source=self.source,
            )
            artifacts = (
                ArtifactStore.for_experiment(store.target, experiment.record.id)
                if self.keep_weights
                else None
            )
            summary = experiment.run(
                self.budget,
                callback=callback,
                executor=executor,
                max_retries=self.max_retries,
                artifacts=artifacts,
            )
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
    workers: int | None = None,
    training: Mapping[str, Any] | None = None,
    task_options: Mapping[str, Any] | None = None,
    table: str | os.PathLike[str] | None = None,
    early_stopping: str | None = None,
    objectives: Sequence[str | Objective] | None = None,
    constraints: Sequence[str | Constraint] = (),
    executor: str | None = None,
    ray_address: str | None = None,
    latency_backend: str = "torch",
    max_retries: int = DEFAULT_MAX_RETRIES,
    trial_timeout: float | None = None,
    keep_weights: bool = False,
    warm_start: int = 0,
    warm_pool: int | None = None,
    warm_proxy: str = "synflow",
) -> SearchPlan:
    """Validate a search's settings; the arguments are those of :func:`search`.

    Raises:
        ConfigError: For an unknown name or a bad value.
    """
    refuse_while_a_worker_starts()  # search() and SearchPlan.run() start here
    if (benchmark is None) == (task is None):
        raise ConfigError("give exactly one of a benchmark (table look-up) or a task (training)")
    if warm_start or warm_pool is not None or warm_proxy != "synflow":
        from nasforge.strategies.warm_start import check_warm_start  # imports torch

        check_warm_start(warm_start, warm_pool, warm_proxy)
        if benchmark is not None and warm_start:
            raise ConfigError(
                "warm_start applies to --task searches only: proxies are computed on the "
                f"task's data and benchmark {benchmark!r} (a table look-up) has none"
            )
    if executor is None:  # training runs in worker processes: a crash costs one trial
        several = isinstance(workers, int) and workers > 1
        isolated = several or task is not None or trial_timeout is not None
        executor = "ray" if ray_address else "process" if isolated else "inline"
        if executor == "process" and workers is None:
            workers = 1  # one at a time unless asked: the same seed gives the same search
    check_executor(executor, workers=workers, ray_address=ray_address, trial_timeout=trial_timeout)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigError(f"max_retries must be an integer >= 0, got {max_retries!r}")
    budget = budget if isinstance(budget, Budget) else Budget.parse(budget)
    if benchmark is not None:
        if training or task_options or early_stopping or latency_backend != "torch":
            raise ConfigError(
                "training, task, early-stopping and latency-backend options apply to --task "
                "searches only"
            )
        if keep_weights:
            raise ConfigError(
                "keep-weights applies to --task searches only: a benchmark search trains no model"
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
            latency_backend=latency_backend,
            keep_weights=keep_weights,
        )
    goals = _objectives(objectives, evaluator.objectives[0])
    bounds = tuple(c if isinstance(c, Constraint) else Constraint.parse(c) for c in constraints)
    check_metrics(evaluator, goals, bounds)
    options = {**_fidelity_defaults(strategy, evaluator), **(options or {})}
    strat = make_strategy(
        strategy,
        space_obj,
        objective=goals[0] if len(goals) == 1 else goals,
        seed=seed,
        options=options,
    )
    if warm_start:
        from nasforge.strategies.warm_start import WarmStart

        strat = WarmStart(
            strat, source=evaluator, size=warm_start, pool=warm_pool, proxy=warm_proxy
        )
    objective = goals[0]
    check_feasible(space_obj, evaluator, bounds, seed=seed or 0)
    name = name or default_name(benchmark or str(task), strategy, seed)
    source: dict[str, Any] = (
        {"benchmark": benchmark, "table": None if table is None else os.fspath(table)}
        if benchmark is not None
        else {
            "task": task,
            "task_options": dict(task_options or {}),
            "data_root": None if data_root is None else os.fspath(data_root),
        }
    )
    return SearchPlan(
        name,
        space_obj,
        evaluator,
        strat,
        objective,
        budget,
        workers,
        source,
        bounds,
        executor,
        ray_address,
        max_retries,
        trial_timeout,
        keep_weights,
    )


def _objectives(
    given: Sequence[str | Objective] | None, default: Objective
) -> tuple[Objective, ...]:
    if not given:
        return (default,)
    return tuple(o if isinstance(o, Objective) else Objective.parse(o) for o in given)


FEASIBILITY_SAMPLE = 100
"""Architectures sampled to check that constraints known before evaluation can be met."""


def check_feasible(
    space: SearchSpace,
    evaluator: Evaluator,
    constraints: Sequence[Constraint],
    *,
    seed: int = 0,
    sample: int = FEASIBILITY_SAMPLE,
) -> None:
    """Refuse constraints that no sampled architecture meets before evaluation.

    Checks the constraints whose costs the evaluator knows up front (size, FLOPs, table
    entries) on up to ``sample`` random architectures, stopping at the first that meets them
    all; constraints on measured metrics cannot be checked before a search and are not.

    Raises:
        ConfigError: If none of the sample meets them; the message gives the observed range
            of each constrained cost.
    """
    names = {c.metric for c in constraints}
    if not names:
        return
    rng = np.random.default_rng(seed)
    seen: dict[str, list[float]] = {}
    checked = 0
    for _ in range(sample):
        arch = space.sample(rng)
        known = evaluator.known_costs(arch, names)
        relevant = [c for c in constraints if c.metric in known]
        if not relevant:
            return  # nothing known up front: measured constraints are enforced on results
        checked += 1
        for name, value in known.items():
            seen.setdefault(name, []).append(value)
        if all(c.violation({}, known) is None for c in relevant):
            return
    ranges = "; ".join(f"{n} from {min(v):.4g} to {max(v):.4g}" for n, v in sorted(seen.items()))
    raise ConfigError(
        f"no architecture meets the constraints {', '.join(map(str, constraints))}: none of "
        f"{checked} sampled did ({ranges}); relax them"
    )


_TRAIN_KEYS = (
    "lr",
    "weight_decay",
    "optimizer",
    "patience",
    "batch_size",
    "momentum",
    "schedule",
    "select",
)


def _check_option_types(cls: type, values: Mapping[str, Any]) -> None:
    """Refuse a training option of the wrong type (``lr="fast"``) with its name and the type
    it takes, before the settings' own range checks compare it with numbers."""
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        hint = hints.get(key)
        if hint is None:
            continue
        accepted = set(typing.get_args(hint)) or {hint}
        ok = (
            (value is None and type(None) in accepted)
            or (isinstance(value, str) and str in accepted)
            or (
                isinstance(value, int)
                and not isinstance(value, bool)
                and (int in accepted or float in accepted)
            )
            or (isinstance(value, float) and float in accepted)
        )
        if not ok:
            names = " or ".join(
                {int: "an integer", float: "a number", str: "a string"}.get(t, "None")
                for t in sorted(accepted, key=lambda t: t is type(None))
            )
            raise ConfigError(f"training option {key} must be {names}, got {value!r}")


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
    latency_backend: str = "torch",
    keep_weights: bool = False,
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
        given = {k: v for k, v in training.items() if k in hyper_keys}
        _check_option_types(type(hyper), given)
        hyper = replace(hyper, **given)  # type: ignore[type-var]
    given = {k: v for k, v in training.items() if k in _TRAIN_KEYS}
    _check_option_types(type(setup.train), given)
    train = replace(setup.train, **given)
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
        task=setup.task,
        space=space_obj,
        hyper=hyper,
        train=train,
        stopper=stopper,
        latency_backend=latency_backend,
        keep_weights=keep_weights,
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
    workers: int | None = None,
    training: Mapping[str, Any] | None = None,
    task_options: Mapping[str, Any] | None = None,
    table: str | os.PathLike[str] | None = None,
    early_stopping: str | None = None,
    objectives: Sequence[str | Objective] | None = None,
    constraints: Sequence[str | Constraint] = (),
    executor: str | None = None,
    ray_address: str | None = None,
    latency_backend: str = "torch",
    max_retries: int = DEFAULT_MAX_RETRIES,
    trial_timeout: float | None = None,
    keep_weights: bool = False,
    warm_start: int = 0,
    warm_pool: int | None = None,
    warm_proxy: str = "synflow",
) -> SearchResult:
    r"""Run (or resume) a search and return its summary and best trial.

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
        workers: Trials evaluated in parallel (default: one; with ``executor`` given, the
            executor's default: the machine's CPUs for ``process``, the cluster's for
            ``ray``).
        executor: Where trials run: ``"process"`` (local worker processes: the default for
            training, so that a crash, an out-of-memory kill or a timeout costs one trial),
            ``"inline"`` (this process: the default for benchmark look-ups) or ``"ray"`` (a
            Ray cluster: ``ray_address``).
        max_retries: Times a trial lost with its worker (the process or machine died, or the
            search was killed) is run again (default 2). A candidate's own failure is not.
        trial_timeout: Seconds a trial may run; then its worker's process tree is killed and
            the trial is FAILED (needs the ``process`` or ``ray`` executor).
        keep_weights: Save each COMPLETE trial's trained weights as safetensors next to the
            store (``<db>.artifacts/experiment-<id>/trial-<n>.safetensors``); export then
            uses them instead of retraining. Training searches only.
        ray_address: ``"auto"`` or ``"HOST:PORT"`` of a Ray head node; without it the ray
            executor starts a private local Ray on 127.0.0.1.
        latency_backend: How trained candidates' ``latency_ms`` (and the table behind
            ``latency_pred_ms``) is measured: ``"torch"`` or ``"onnxruntime"``
            (``nasforge[onnx]``).
        training: Overrides of the space's model settings (gnn: ``hidden``, ``dropout``,
            ``pre``, ``post``, ``gat_heads``; nb201: ``channels``, ``cells_per_stage``) and of
            ``lr``, ``weight_decay``, ``optimizer``, ``patience``, ``batch_size``,
            ``momentum``, ``schedule``, ``select``.
        table: The NAS-Bench-201 / NATS-Bench file or folder you downloaded, for
            ``nas-bench-201:*`` benchmarks (default ``$NASFORGE_NB201_PATH``).
        early_stopping: ``"curve"`` stops training runs that a learning-curve predictor fitted
            on the search's finished runs expects to lose (Baker et al. 2017); they are
            stored as PRUNED.
        task_options: ``label``/``kind`` for CSV and NPZ tables, ``image_size``/``grayscale``
            for image folders, ``split_seed`` for image and tabular data.
        objectives: Objectives as ``"metric:max|min"`` texts or :class:`Objective`\ s; the
            default is the evaluator's (``val_acc:max``). Several make a multi-objective
            search (strategies ``random``, ``evolution``, ``optuna-nsga2``, ``optuna-tpe``,
            ``optuna-random``) whose result is the Pareto front (:func:`pareto`).
        constraints: Hard constraints such as ``"params<=1e6"`` or ``"latency_ms<=5"``.
            Costs known before evaluation (params, FLOPs, table entries) filter candidates
            before they are evaluated; measured ones make a violating trial INFEASIBLE.
            A trial that violates one is never the best nor on the front.
        warm_start: Propose first the ``warm_start`` best of ``warm_pool`` random
            architectures ranked by the zero-cost proxy ``warm_proxy`` on the task's data
            (:class:`~nasforge.strategies.warm_start.WarmStart`); then the strategy goes on,
            told their results. 0 (the default) turns it off; training searches only.
        warm_pool: Architectures drawn and scored for the warm start (default
            ``10 * warm_start``).
        warm_proxy: The proxy that ranks them, one of :data:`nasforge.proxies.PROXIES`.

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
        objectives=objectives,
        constraints=constraints,
        executor=executor,
        ray_address=ray_address,
        latency_backend=latency_backend,
        max_retries=max_retries,
        trial_timeout=trial_timeout,
        keep_weights=keep_weights,
        warm_start=warm_start,
        warm_pool=warm_pool,
        warm_proxy=warm_proxy,
    )
    return settings.run(db=db, callback=callback)


def _experiment(name: str, db: str | os.PathLike[str] | None) -> tuple[ExperimentRecord, Any]:
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
        return list(store.trials(record.id))
    finally:
        store.close()


def objective_of(record: ExperimentRecord) -> Objective:
    """The (first) objective an experiment was created with."""
    return Objective.parse(str(record.config.get("objective", "val_acc:max")))


def objectives_of(record: ExperimentRecord) -> tuple[Objective, ...]:
    """All objectives of an experiment, in order (one for a single-objective search)."""
    stored = record.config.get("objectives")
    if not stored:
        return (objective_of(record),)
    return tuple(Objective.parse(str(text)) for text in stored)


def constraints_of(record: ExperimentRecord) -> tuple[Constraint, ...]:
    """The hard constraints an experiment was created with (none by default)."""
    return tuple(Constraint.parse(str(text)) for text in record.config.get("constraints", []))


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
        stored = store.trials(record.id)
    finally:
        store.close()
    goals = _objectives(objectives, objective_of(record)) if objectives else objectives_of(record)
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
