"""One search, configured: the typed settings that :func:`nasforge.search` and the CLI build
(:class:`SearchConfig`, made of parts), and the typed record an experiment stores to identify
its search (:class:`StoredSearch`).

A search's settings are written down once, here: ``nasforge.search(**settings)`` and
``nasforge search --flags`` both become a :class:`SearchConfig` through
:meth:`SearchConfig.from_settings`, whose keywords are the fields of the parts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from nasforge.budget import Budget
from nasforge.constraint import Constraint
from nasforge.errors import ConfigError
from nasforge.objective import Objective

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "MAX_SEED",
    "SOURCE_KEY",
    "ExecutionSettings",
    "GoalSettings",
    "SearchConfig",
    "SourceSettings",
    "StoredSearch",
    "StrategySettings",
    "TrainingSettings",
    "check_experiment_name",
    "check_seed",
    "parse_objectives",
]

DEFAULT_MAX_RETRIES = 2
"""Times a trial lost with its worker is run again by default."""

MAX_SEED = 2**32 - 1
"""The largest seed: every library a search seeds (numpy, torch, scikit-learn) takes it."""


def check_seed(value: object, name: str = "seed") -> int:
    """``value`` if it is a seed: an integer from 0 to :data:`MAX_SEED`.

    Raises:
        ConfigError: Otherwise, saying what is accepted.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ConfigError(
            f"{name} must be an integer from 0 to {MAX_SEED} (2**32 - 1), got {value!r}"
        )
    return value


def check_experiment_name(name: object) -> str:
    """``name`` if it can name an experiment: 1 to 255 characters, not blank, no line breaks
    or other control characters, no space at either end.

    Raises:
        ConfigError: Otherwise, saying what is accepted.
    """
    rule = (
        "an experiment name is 1 to 255 characters without line breaks or other control "
        "characters, and without spaces at either end"
    )
    if not isinstance(name, str):
        raise ConfigError(f"{rule}; got a {type(name).__name__}")
    if (
        not name.strip()
        or len(name) > 255
        or name != name.strip()
        or any(not c.isprintable() for c in name)
    ):
        raise ConfigError(f"{rule}; got {name!r}")
    return name


SOURCE_KEY = "source"
"""Key of the stored experiment config that records the data source; not compared on resume."""


def _keyword(name: str) -> dict[str, str]:
    """Field metadata: the keyword of :meth:`SearchConfig.from_settings` for this field."""
    return {"keyword": name}


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """Where results come from: a benchmark's table (look-up) or a task's data (training).

    Attributes:
        benchmark: A registered benchmark, e.g. ``"nas-bench-graph:cora"`` (table look-up),
            or ``"nas-bench-201:cifar10-valid"`` (with ``table``).
        task: Data to train candidates on: a graph (``"planetoid:Cora"``, ``"synthetic"``,
            ``"file:graph.npz"``), images (``"image:digits"``, ``"image:folder:DIR"``,
            ``"image:file:x.npz"``) or a table (``"tabular:breast_cancer"``,
            ``"csv:data.csv"``, ``"tabular:file:x.npz"``); see ``nasforge list tasks``. Give
            exactly one of ``benchmark`` and ``task``.
        space: A registered space; defaults to the benchmark's, or the task's (``gnn`` for
            graphs, ``nb201`` for images, ``mlp`` for tables).
        table: The NAS-Bench-201 / NATS-Bench file or folder you downloaded, for
            ``nas-bench-201:*`` benchmarks (default ``$NASFORGE_NB201_PATH``).
        data_root: Folder holding ``<Name>/raw/`` for Planetoid tasks.
        download: Allow downloading Planetoid files that are missing (needs internet).
        task_options: ``label``/``kind`` for CSV and NPZ tables, ``image_size``/``grayscale``
            for image folders, ``split_seed`` for image and tabular data.
    """

    benchmark: str | None = None
    task: str | None = None
    space: str | None = None
    table: str | None = None
    data_root: str | None = None
    download: bool = False
    task_options: Mapping[str, Any] = field(default_factory=dict)

    def stored(self) -> dict[str, Any]:
        """What an experiment stores of it (``config["source"]``) to rebuild its data later."""
        if self.benchmark is not None:
            return {"benchmark": self.benchmark, "table": self.table}
        return {
            "task": self.task,
            "task_options": dict(self.task_options),
            "data_root": self.data_root,
        }


@dataclass(frozen=True, slots=True)
class StrategySettings:
    """What proposes the architectures.

    Attributes:
        name: A registered strategy (``random``, ``evolution``, ``bananas``, ...); the keyword
            is ``strategy``.
        options: Strategy options, e.g. ``{"population_size": 30}``.
        seed: Seed of the strategy (and of training: weights, batch order, dropout).
        warm_start: Propose first the ``warm_start`` best of ``warm_pool`` random
            architectures ranked by the zero-cost proxy ``warm_proxy`` on the task's data;
            then the strategy goes on, told their results. 0 (the default) turns it off;
            training searches only.
        warm_pool: Architectures drawn and scored for the warm start (default
            ``10 * warm_start``).
        warm_proxy: The proxy that ranks them, one of :data:`nasforge.proxies.PROXIES`.
    """

    name: str = field(default="evolution", metadata=_keyword("strategy"))
    options: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = 0
    warm_start: int = 0
    warm_pool: int | None = None
    warm_proxy: str = "synflow"


@dataclass(frozen=True, slots=True)
class TrainingSettings:
    """How candidates are trained (training searches only).

    Attributes:
        epochs: Training epochs per candidate (default: the task's protocol); for
            ``nas-bench-201:*`` benchmarks, which table (12 or 200).
        overrides: Overrides of the space's model settings (gnn: ``hidden``, ``dropout``,
            ``pre``, ``post``, ``gat_heads``; nb201: ``channels``, ``cells_per_stage``) and of
            ``lr``, ``weight_decay``, ``optimizer``, ``patience``, ``batch_size``,
            ``momentum``, ``schedule``, ``select``; the keyword is ``training``.
        early_stopping: ``"curve"`` stops training runs that a learning-curve predictor
            fitted on the search's finished runs expects to lose (Baker et al. 2017); they
            are stored as PRUNED.
        latency_backend: How trained candidates' ``latency_ms`` (and the table behind
            ``latency_pred_ms``) is measured: ``"torch"`` or ``"onnxruntime"``
            (``nasforge[onnx]``).
        keep_weights: Save each COMPLETE trial's trained weights as safetensors next to the
            store (``<db>.artifacts/experiment-<id>/trial-<n>.safetensors``); export then
            uses them instead of retraining.
    """

    epochs: int | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict, metadata=_keyword("training"))
    early_stopping: str | None = None
    latency_backend: str = "torch"
    keep_weights: bool = False


@dataclass(frozen=True, slots=True)
class ExecutionSettings:
    """Where and how robustly trials run.

    Attributes:
        executor: A registered executor: ``"process"`` (local worker processes),
            ``"inline"`` (this process) or ``"ray"`` (a Ray cluster); default: see
            :func:`nasforge.execution.factory.default_executor`.
        workers: Trials evaluated in parallel (default: one; with ``executor`` given, the
            executor's default: the machine's CPUs for ``process``, the cluster's for
            ``ray``).
        ray_address: ``"auto"`` or ``"HOST:PORT"`` of a Ray head node; without it the ray
            executor starts a private local Ray on 127.0.0.1.
        max_retries: Times a trial lost with its worker (the process or machine died, or the
            search was killed) is run again (default 2). A candidate's own failure is not.
        trial_timeout: Seconds a trial may run; then its worker's process tree is killed and
            the trial is FAILED (needs the ``process`` or ``ray`` executor).
        device: Where candidates train and are timed (``--task`` searches): ``"auto"`` (the
            default: CUDA when PyTorch sees a GPU, else the CPU), ``"cpu"``, ``"cuda"`` (with
            several local workers each takes its own GPU; each Ray trial reserves one) or
            ``"cuda:N"``. Not part of the search's identity: a search resumes on another
            device.
    """

    executor: str | None = None
    workers: int | None = None
    ray_address: str | None = None
    max_retries: int = DEFAULT_MAX_RETRIES
    trial_timeout: float | None = None
    device: str = "auto"


@dataclass(frozen=True, slots=True)
class GoalSettings:
    """What the search optimises, and the bounds it must keep.

    Attributes:
        objectives: The default is the evaluator's (``val_acc:max``). Several make a
            multi-objective search (strategies ``random``, ``evolution``, ``optuna-nsga2``,
            ``optuna-tpe``, ``optuna-random``) whose result is the Pareto front.
        constraints: Hard constraints such as ``params<=1e6`` or ``latency_ms<=5``. Costs
            known before evaluation (params, FLOPs, table entries) filter candidates before
            they are evaluated; measured ones make a violating trial INFEASIBLE. A trial that
            violates one is never the best nor on the front.
    """

    objectives: tuple[Objective, ...] = ()
    constraints: tuple[Constraint, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """Everything that defines one search, in parts; build it with :meth:`from_settings`.

    Attributes:
        source: Where results come from (:class:`SourceSettings`).
        strategy: What proposes architectures (:class:`StrategySettings`).
        training: How candidates are trained (:class:`TrainingSettings`).
        execution: Where trials run (:class:`ExecutionSettings`).
        goals: Objectives and constraints (:class:`GoalSettings`).
        budget: Distinct architectures, trials or seconds; stored trials count as spent.
        name: Experiment name; an existing one is resumed (default
            ``<benchmark or task>-<strategy>-seed<seed>``).
    """

    source: SourceSettings = field(default_factory=SourceSettings)
    strategy: StrategySettings = field(default_factory=StrategySettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    goals: GoalSettings = field(default_factory=GoalSettings)
    budget: Budget = field(default_factory=lambda: Budget(100))
    name: str | None = None

    PARTS: ClassVar[tuple[str, ...]] = ("source", "strategy", "training", "execution", "goals")

    @classmethod
    def keywords(cls) -> dict[str, tuple[str | None, str]]:
        """Every keyword of :meth:`from_settings`: ``keyword -> (part or None, field)``."""
        out: dict[str, tuple[str | None, str]] = {}
        for part in fields(cls):
            if part.name not in cls.PARTS:
                out[part.name] = (None, part.name)
                continue
            for f in fields(_part_type(cls, part.name)):
                out[f.metadata.get("keyword", f.name)] = (part.name, f.name)
        return out

    @classmethod
    def from_settings(cls, **settings: Any) -> SearchConfig:
        """The config of ``nasforge.search(**settings)``: one keyword per field of the parts
        (see :meth:`keywords` and each part's attributes), every value normalised (a budget
        text parsed, objective and constraint texts parsed, paths as strings).

        Raises:
            ConfigError: For an unknown keyword (the message lists the valid ones) or a
                budget, objective or constraint text that does not parse.
        """
        places = cls.keywords()
        unknown = sorted(set(settings) - set(places))
        if unknown:
            raise ConfigError(
                f"unknown search setting(s) {unknown}; valid: {', '.join(sorted(places))}"
            )
        parts: dict[str, dict[str, Any]] = {name: {} for name in cls.PARTS}
        top: dict[str, Any] = {}
        for keyword, value in settings.items():
            part, name = places[keyword]
            value = _normalise(keyword, value)
            if part is None:
                top[name] = value
            else:
                parts[part][name] = value
        built = {name: _part_type(cls, name)(**values) for name, values in parts.items()}
        return cls(**built, **top)

    def settings(self) -> dict[str, Any]:
        """The config as the keywords of :meth:`from_settings` (its inverse)."""
        out: dict[str, Any] = {}
        for keyword, (part, name) in self.keywords().items():
            holder = self if part is None else getattr(self, part)
            out[keyword] = getattr(holder, name)
        return out

    def with_name(self, name: str) -> SearchConfig:
        """The same search under ``name``."""
        return replace(self, name=name)


def _part_type(cls: type[SearchConfig], name: str) -> type:
    return type(getattr(cls(), name))


def _normalise(keyword: str, value: Any) -> Any:
    """A keyword's value in the config's types (texts parsed, paths as strings)."""
    if keyword == "budget":
        return value if isinstance(value, Budget) else Budget.parse(value)
    if keyword == "objectives":
        return parse_objectives(value)
    if keyword == "constraints":
        return tuple(c if isinstance(c, Constraint) else Constraint.parse(c) for c in value or ())
    if keyword in ("table", "data_root"):
        return None if value is None else os.fspath(value)
    if keyword in ("options", "task_options", "training"):
        return dict(value or {})
    return value


@dataclass(frozen=True, slots=True)
class StoredSearch:
    """What an experiment stores to identify its search (``ExperimentRecord.config``), typed.

    The stored JSON (:meth:`to_json`) keeps the layout of every earlier nasforge: ``space``,
    ``evaluator``, ``strategy``, ``strategy_options``, ``seed``, ``objective``, any ``extra``
    keys, then ``objectives`` (only with several), ``constraints`` (only with some) and
    ``source`` (only when recorded). Everything but ``source`` identifies the search: a
    resume with a different value is refused (:meth:`differences`).

    Attributes:
        space: The space's name.
        evaluator: The evaluator's ``describe()`` (its kind, data and settings).
        strategy: The strategy's name.
        strategy_options: Its options.
        seed: Its seed.
        objective: The objective that ranks trials as "best".
        objectives: Every objective (one for a single-objective search).
        constraints: The hard constraints.
        source: Where the data came from (the task text and its options, or the benchmark
            and its table), so that export can rebuild it; ``None`` if not recorded.
        extra: Other identifying settings the experiment was created with.
    """

    space: str
    evaluator: Mapping[str, Any]
    strategy: str
    strategy_options: Mapping[str, Any]
    seed: int | None
    objective: Objective
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()
    source: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS: ClassVar[tuple[str, ...]] = (
        "space",
        "evaluator",
        "strategy",
        "strategy_options",
        "seed",
        "objective",
        "objectives",
        "constraints",
        SOURCE_KEY,
    )

    def identity(self) -> dict[str, Any]:
        """The identifying part of the stored JSON (all but ``source``)."""
        out: dict[str, Any] = {
            "space": self.space,
            "evaluator": dict(self.evaluator),
            "strategy": self.strategy,
            "strategy_options": dict(self.strategy_options),
            "seed": self.seed,
            "objective": str(self.objective),
            **self.extra,
        }
        if len(self.objectives) > 1:
            out["objectives"] = [str(o) for o in self.objectives]
        if self.constraints:
            out["constraints"] = [str(c) for c in self.constraints]
        return out

    def to_json(self) -> dict[str, Any]:
        """The JSON an experiment stores (``ExperimentRecord.config``)."""
        out = self.identity()
        if self.source:
            out[SOURCE_KEY] = dict(self.source)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StoredSearch:
        """The typed record of a stored config (of this or any earlier nasforge).

        Raises:
            ConfigError: If a stored objective or constraint does not parse.
        """
        objective = Objective.parse(str(data.get("objective", "val_acc:max")))
        stored = data.get("objectives")
        objectives = (
            tuple(Objective.parse(str(text)) for text in stored) if stored else (objective,)
        )
        source = data.get(SOURCE_KEY)
        return cls(
            space=str(data.get("space", "")),
            evaluator=dict(data.get("evaluator") or {}),
            strategy=str(data.get("strategy", "")),
            strategy_options=dict(data.get("strategy_options") or {}),
            seed=data.get("seed"),
            objective=objective,
            objectives=objectives,
            constraints=tuple(Constraint.parse(str(c)) for c in data.get("constraints") or ()),
            source=dict(source) if isinstance(source, Mapping) else None,
            extra={k: v for k, v in data.items() if k not in cls._KEYS},
        )

    def differences(self, stored: Mapping[str, Any]) -> list[str]:
        """How ``stored`` (another record's JSON) differs from this search's identity, as
        ``key=<stored> (this run: <ours>)`` texts; empty when a resume may go on."""
        ours = self.identity()
        theirs = {k: v for k, v in stored.items() if k != SOURCE_KEY}
        keys = list(ours) + [k for k in theirs if k not in ours]
        return [
            f"{key}={theirs.get(key)!r} (this run: {ours.get(key)!r})"
            for key in keys
            if theirs.get(key) != ours.get(key)
        ]

    # -- what the record says of its data, in words ----------------------------------------
    @property
    def evaluator_kind(self) -> str | None:
        """``training``, ``proxies``, ``nas-bench-graph``, ``nas-bench-201``, ..."""
        kind = self.evaluator.get("kind")
        return None if kind is None else str(kind)

    def source_name(self) -> str:
        """Where the results come from, as one short text: the benchmark or the task."""
        source = self.source or {}
        if source.get("benchmark"):
            return str(source["benchmark"])
        if source.get("task"):
            return str(source["task"])
        kind = self.evaluator_kind
        if kind:
            detail = self.evaluator.get("dataset") or self.evaluator.get("task")
            return f"{kind}:{detail}" if isinstance(detail, str) else kind
        return "-"

    def source_text(self) -> str:
        """Where the results come from, with its table, options and data root."""
        import json

        source = self.source or {}
        if source.get("benchmark"):
            text = f"benchmark {source['benchmark']}"
            return text + (f", table {source['table']}" if source.get("table") else "")
        if source.get("task"):
            text = f"task {source['task']}"
            if source.get("task_options"):
                text += f", options {json.dumps(source['task_options'], sort_keys=True)}"
            if source.get("data_root"):
                text += f", data root {source['data_root']}"
            return text
        if self.evaluator:
            detail = self.evaluator.get("dataset") or self.evaluator.get("task", {})
            kind = self.evaluator.get("kind", "evaluator")
            return f"{kind} {json.dumps(detail, sort_keys=True)}"
        return "not recorded"


def parse_objectives(given: Sequence[str | Objective] | None) -> tuple[Objective, ...]:
    """Objective texts (``"val_acc:max"``) or objects as a tuple of objects."""
    return tuple(o if isinstance(o, Objective) else Objective.parse(o) for o in given or ())
