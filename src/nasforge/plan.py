"""From a :class:`~nasforge.config.SearchConfig` to a :class:`SearchPlan`: every name resolved
through its registry, every value checked, and nothing opened, so that a bad value is reported
before a store or a worker exists. :meth:`SearchPlan.run` then runs the search.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

import numpy as np

from nasforge.artifacts import ArtifactStore
from nasforge.budget import Budget
from nasforge.config import SearchConfig, check_experiment_name
from nasforge.constraint import Constraint
from nasforge.errors import ConfigError
from nasforge.evaluators.base import BENCHMARKS, Evaluator, benchmark_options
from nasforge.execution.base import Executor, refuse_while_a_worker_starts
from nasforge.execution.factory import (
    ExecutorChoice,
    check_executor,
    default_executor,
    make_executor,
)
from nasforge.experiment import Experiment, Progress, RunSummary, check_metrics
from nasforge.objective import Objective
from nasforge.oneshot import PhaseProgress
from nasforge.spaces.base import SPACES, SearchSpace
from nasforge.store.base import TrialRecord
from nasforge.strategies.base import STRATEGIES, Strategy, make_strategy
from nasforge.train.device import check_device

__all__ = [
    "FEASIBILITY_SAMPLE",
    "SearchPlan",
    "SearchResult",
    "check_feasible",
    "default_name",
    "plan_search",
]

FEASIBILITY_SAMPLE = 100
"""Architectures sampled to check that constraints known before evaluation can be met."""


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What a search returns: where it is stored, its objective, what the run did, its best."""

    name: str
    db: str
    objective: Objective
    summary: RunSummary
    best: TrialRecord | None


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """A validated search, ready to run: every name resolved, every option checked.

    Building one touches no store, so a bad value is reported before anything is opened.

    Attributes:
        config: The settings it was planned from.
        name: The experiment's name (given, or derived from the settings).
        space: The search space.
        evaluator: What scores architectures (a table look-up or training).
        strategy: What proposes them (wrapped in a warm start when one is asked for).
        objective: The objective that ranks trials as "best" (the first one).
        executor: Where trials run, and how many at once.
    """

    config: SearchConfig
    name: str
    space: SearchSpace
    evaluator: Evaluator
    strategy: Strategy
    objective: Objective
    executor: ExecutorChoice

    @property
    def objectives(self) -> tuple[Objective, ...]:
        """Every objective of the search (several for a multi-objective one)."""
        return tuple(self.strategy.objectives)

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        return self.config.goals.constraints

    @property
    def budget(self) -> Budget:
        return self.config.budget

    @property
    def source(self) -> dict[str, Any]:
        """What the experiment stores of its data source (``config["source"]``)."""
        return self.config.source.stored()

    def run(
        self,
        *,
        db: str | os.PathLike[str] | None = None,
        callback: Callable[[Progress], None] | None = None,
        on_phase: Callable[[PhaseProgress], None] | None = None,
        on_note: Callable[[str], None] | None = None,
        on_executor: Callable[[Executor], None] | None = None,
    ) -> SearchResult:
        """Run (or resume) the search in the store ``db``; ``on_phase`` hears each epoch of
        a one-shot strategy's supernet phase, ``on_note`` what the strategy says of its
        start (the knowledge a ``transfer`` search found, and the tasks it matched),
        ``on_executor`` is given the executor once it started (a live display reads its
        running trials' epochs, :meth:`~nasforge.execution.base.Executor.epochs`)."""
        from nasforge.knowledge import task_label
        from nasforge.store.sql import open_store, store_target  # SQLAlchemy: when it runs

        target = store_target(db)
        self.evaluator.bind(target, self.name)  # e.g. learning curves read from the store
        # before the store is opened for writing: a bad knowledge source leaves nothing behind
        self.strategy.bind(target, self.name, task_label(self.source), on_note)
        execution = self.config.execution
        # the executor first: a cluster that does not answer leaves no store file behind
        executor = make_executor(
            self.executor.kind,
            self.evaluator,
            workers=self.executor.workers,
            ray_address=execution.ray_address,
            trial_timeout=execution.trial_timeout,
        )
        try:
            store = open_store(target)
            if on_executor is not None:
                on_executor(executor)
        except BaseException:
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
                if self.config.training.keep_weights
                else None
            )
            summary = experiment.run(
                self.budget,
                callback=callback,
                executor=executor,
                max_retries=execution.max_retries,
                artifacts=artifacts,
                on_phase=on_phase,
            )
        finally:
            executor.close()
            store.close()
        return SearchResult(self.name, store.target, self.objective, summary, summary.best)


def default_name(source: str, strategy: str, seed: int | None) -> str:
    """The experiment name used when none is given: re-running the same search resumes it."""
    return f"{source}-{strategy}-seed{seed}"


def plan_search(config: SearchConfig) -> SearchPlan:
    """Resolve and check ``config`` (see :class:`SearchPlan`).

    Raises:
        ConfigError: For an unknown name or a bad value, with the rule and what is accepted.
    """
    refuse_while_a_worker_starts()  # search() and SearchPlan.run() start here
    source = config.source
    if (source.benchmark is None) == (source.task is None):
        raise ConfigError("give exactly one of a benchmark (table look-up) or a task (training)")
    _check_warm_start(config)
    executor = _executor(config)
    retries = config.execution.max_retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"max_retries must be an integer >= 0, got {retries!r}")
    if source.benchmark is not None:
        space, evaluator = _benchmark(config, source.benchmark)
    else:
        space, evaluator = _training(config, str(source.task))
    goals = config.goals.objectives or (evaluator.objectives[0],)
    constraints = config.goals.constraints
    check_metrics(evaluator, goals, constraints)
    strategy = _strategy(config, space, evaluator, goals)
    seed = config.strategy.seed
    check_feasible(space, evaluator, constraints, seed=seed or 0)
    named = source.benchmark or str(source.task)
    given = None if config.name is None else check_experiment_name(config.name)
    return SearchPlan(
        config=config,
        name=given or default_name(named, config.strategy.name, seed),
        space=space,
        evaluator=evaluator,
        strategy=strategy,
        objective=goals[0],
        executor=executor,
    )


def _check_warm_start(config: SearchConfig) -> None:
    warm = config.strategy
    if warm.warm_start or warm.warm_pool is not None or warm.warm_proxy != "synflow":
        from nasforge.strategies.warm_start import check_warm_start  # imports torch

        check_warm_start(warm.warm_start, warm.warm_pool, warm.warm_proxy)
        if config.source.benchmark is not None and warm.warm_start:
            raise ConfigError(
                "warm_start applies to --task searches only: proxies are computed on the "
                f"task's data and benchmark {config.source.benchmark!r} (a table look-up) has "
                "none"
            )


def _executor(config: SearchConfig) -> ExecutorChoice:
    """The executor asked for, or the default one (see :func:`default_executor`), checked."""
    execution = config.execution
    if execution.executor is None:
        choice = default_executor(
            trains=config.source.task is not None,
            workers=execution.workers,
            ray_address=execution.ray_address,
            trial_timeout=execution.trial_timeout,
        )
    else:
        choice = ExecutorChoice(execution.executor, execution.workers)
    check_executor(
        choice.kind,
        workers=choice.workers,
        ray_address=execution.ray_address,
        trial_timeout=execution.trial_timeout,
    )
    return choice


# -- a benchmark's table ------------------------------------------------------------------------
def _families(option: str) -> str:
    """The benchmark families (``nas-bench-201``) whose factories take ``option``."""
    found = {n.partition(":")[0] for n in BENCHMARKS.names() if option in benchmark_options(n)}
    return " and ".join(sorted(found)) or "no"


def _benchmark(config: SearchConfig, name: str) -> tuple[SearchSpace, Evaluator]:
    source, training = config.source, config.training
    if (
        training.overrides
        or source.task_options
        or training.early_stopping
        or training.latency_backend != "torch"
    ):
        raise ConfigError(
            "training, task, early-stopping and latency-backend options apply to --task "
            "searches only"
        )
    if training.keep_weights:
        raise ConfigError(
            "keep-weights applies to --task searches only: a benchmark search trains no model"
        )
    if check_device(config.execution.device).startswith("cuda"):
        raise ConfigError(
            "--device cuda applies to --task searches only: a benchmark search trains no model"
        )
    accepted = benchmark_options(name)
    options: dict[str, Any] = {}
    if source.table is not None:
        if "path" not in accepted:
            raise ConfigError(
                f"a table path applies to {_families('path')} benchmarks (you download their "
                f"file); {name!r} ships with its package"
            )
        options["path"] = source.table
    if training.epochs is not None:
        if "epochs" not in accepted:
            raise ConfigError(
                f"--epochs applies to --task searches and to {_families('epochs')} benchmarks "
                f"(the epochs of their tables), not to {name!r}"
            )
        options["epochs"] = training.epochs
    evaluator = BENCHMARKS.create(name, **options)
    evaluator.prepare()
    space = SPACES.create(source.space or evaluator.space_name)
    if space.name != evaluator.space_name:
        raise ConfigError(
            f"benchmark {name!r} covers space {evaluator.space_name!r}, not {source.space!r}; "
            f"use --space {evaluator.space_name}"
        )
    return space, evaluator


# -- a task's data, trained on ------------------------------------------------------------------
def _training(config: SearchConfig, task: str) -> tuple[SearchSpace, Evaluator]:
    from nasforge.tasks.base import resolve_task

    source, training = config.source, config.training
    if source.table is not None:
        raise ConfigError("a table path applies to --benchmark searches only")
    seed = config.strategy.seed or 0
    setup = resolve_task(
        task,
        data_root=source.data_root,
        download=source.download,
        seed=seed,
        options=source.task_options,
    )
    space = SPACES.create(source.space or setup.space)
    # torch is imported by searches that train, once their data is known to be there
    from nasforge.evaluators.training import TrainingEvaluator
    from nasforge.train.device import resolve_device

    hyper, train = _overrides(space, space.settings_for(setup.hyper), setup.train, training)
    stopper = None
    if training.early_stopping is not None:
        if training.early_stopping != "curve":
            raise ConfigError(
                f"unknown early stopping {training.early_stopping!r}; valid: curve "
                "(learning-curve prediction, Baker et al. 2017)"
            )
        from nasforge.stopping import LearningCurveStopper

        stopper = LearningCurveStopper(objective=setup.task.objective, seed=seed)
    evaluator = TrainingEvaluator(
        task=setup.task,
        space=space,
        hyper=hyper,
        train=train,
        stopper=stopper,
        latency_backend=training.latency_backend,
        keep_weights=training.keep_weights,
        device=config.execution.device,
    )
    resolve_device(evaluator.device)  # a GPU asked for where there is none: refused here
    return space, evaluator


def _overrides(space: SearchSpace, hyper: Any, train: Any, training: Any) -> tuple[Any, Any]:
    """The space's model settings and the training settings with the user's overrides
    (``training``) and epochs applied, each override checked by name and type."""
    from nasforge.train.trainer import TrainConfig

    given = dict(training.overrides)
    hyper_keys = tuple(f.name for f in fields(hyper)) if is_dataclass(hyper) else ()
    unknown = sorted(set(given) - set(hyper_keys) - set(TrainConfig.OPTIONS))
    if unknown:
        raise ConfigError(
            f"unknown training option(s) {unknown} for space {space.name!r}; valid: "
            f"{', '.join(hyper_keys + TrainConfig.OPTIONS)}"
        )
    if hyper_keys:
        changed = {k: v for k, v in given.items() if k in hyper_keys}
        _check_option_types(type(hyper), changed)
        hyper = replace(hyper, **changed)
    changed = {k: v for k, v in given.items() if k in TrainConfig.OPTIONS}
    _check_option_types(type(train), changed)
    train = replace(train, **changed)
    if training.epochs is not None:
        train = replace(train, epochs=training.epochs)
    return hyper, train


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
            or (isinstance(value, bool) and bool in accepted)
        )
        if not ok:
            kinds = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
            names = " or ".join(
                kinds.get(t, "None") for t in sorted(accepted, key=lambda t: t is type(None))
            )
            raise ConfigError(f"training option {key} must be {names}, got {value!r}")


# -- the strategy -------------------------------------------------------------------------------
def _strategy(
    config: SearchConfig,
    space: SearchSpace,
    evaluator: Evaluator,
    goals: Sequence[Objective],
) -> Strategy:
    settings = config.strategy
    factory = STRATEGIES.get(settings.name)
    defaults = factory.option_defaults(max_fidelity=evaluator.max_fidelity)  # type: ignore[attr-defined]
    strategy = make_strategy(
        settings.name,
        space,
        objective=goals[0] if len(goals) == 1 else tuple(goals),
        seed=settings.seed,
        options={**defaults, **settings.options},
    )
    if getattr(strategy, "one_shot", False):
        strategy.attach(evaluator)  # type: ignore[attr-defined]
        if settings.warm_start:
            raise ConfigError(
                f"strategy {settings.name!r} derives its architectures from a supernet; "
                "--warm-start seeds black-box strategies only"
            )
    if settings.warm_start:
        from nasforge.strategies.warm_start import WarmStart

        strategy = WarmStart(
            strategy,
            source=evaluator,
            size=settings.warm_start,
            pool=settings.warm_pool,
            proxy=settings.warm_proxy,
        )
    return strategy


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
