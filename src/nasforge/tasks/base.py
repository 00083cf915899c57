"""The task contracts: what a task's data offers the code that trains on it (:class:`Task`),
and how a kind of task is named, loaded and given its defaults (:class:`TaskKind`).

Task kinds are registered in :data:`TASKS` (``nasforge.register_task``); each parses its own
``prefix:argument`` specs, so that adding a kind of task is one file plus its registration.
This module does not import torch.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from nasforge.errors import ConfigError
from nasforge.objective import Direction, Objective
from nasforge.registry import Registry

if TYPE_CHECKING:
    from torch import Tensor, nn

    from nasforge.spaces.base import SearchSpace
    from nasforge.train.trainer import Distill, FitOutcome, StopRule, TrainConfig

__all__ = [
    "TASKS",
    "ProxyBatch",
    "Task",
    "TaskKind",
    "TaskSetup",
    "register_task",
    "resolve_task",
    "task_forms",
    "task_options",
    "task_setup",
]


@dataclass(frozen=True, eq=False)
class ProxyBatch:
    """Real data a zero-cost proxy scores a model on (:meth:`Task.proxy_batch` draws one).

    Attributes:
        inputs: Positional arguments of the model's forward: ``(x, edge_index)`` for a graph,
            ``(x,)`` for a mini-batch. ``inputs[0]`` holds the features: what ``jacov``
            differentiates and ``synflow`` replaces by ones.
        target: Targets of the loss rows: class indices, or floats for regression.
        rows: Output rows the loss uses (a graph's training nodes); ``None`` for all.
        probe: Output rows whose input gradients ``jacov`` correlates.
        regression: Mean squared error instead of cross-entropy.
        graph: The inputs are a whole graph (``synflow`` keeps its edges and every node).
    """

    inputs: tuple[Tensor, ...]
    target: Tensor
    rows: Tensor | None
    probe: Tensor
    regression: bool
    graph: bool

    def loss(self, output: Tensor) -> Tensor:
        """The loss of ``output`` (the model's full output) on the loss rows."""
        from torch.nn import functional as F

        out = output if self.rows is None else output[self.rows]
        if self.regression:
            return F.mse_loss(out.reshape(self.target.shape), self.target.to(out.dtype))
        return F.cross_entropy(out, self.target)

    def ones(self, dtype: Any) -> tuple[Tensor, ...]:
        """Inputs of ones: every node's features for a graph, one example otherwise."""
        import torch

        x = self.inputs[0]
        if self.graph:
            return (torch.ones(x.shape, dtype=dtype, device=x.device), *self.inputs[1:])
        return (torch.ones((1, *x.shape[1:]), dtype=dtype, device=x.device),)

    def one_pass(self) -> tuple[Tensor, ...]:
        """Inputs whose forward pass costs are reported: the graph, or one example."""
        return self.inputs if self.graph else (self.inputs[0][:1],)

    def to(self, device: Any) -> ProxyBatch:
        """The same batch on ``device`` (itself where it is there already)."""
        if self.inputs[0].device == device:
            return self
        return replace(
            self,
            inputs=tuple(t.to(device) for t in self.inputs),
            target=self.target.to(device),
            rows=None if self.rows is None else self.rows.to(device),
            probe=self.probe.to(device),
        )


class Task(ABC):
    """Data, loss and metric of one problem: what training, zero-cost proxies, latency and
    export need of it, so that none of them asks which kind of task it is.

    Contract:
        * The data is checked when the task is made (a bad shape, NaN or missing split
          raises ``ConfigError`` with the rule) and never changes afterwards; tasks are
          pickled to worker processes as they are.
        * Validation data picks epochs and ranks architectures; test data is only scored and
          stored (``test_<metric>``), never shown to strategies.
        * ``describe()`` is JSON data that identifies the task (stored with experiments; a
          search does not resume on other data).

    Attributes:
        name: Where the data came from (the spec, e.g. ``planetoid:Cora``).
        modality: What the inputs are: ``"graph"``, ``"image"`` or ``"tabular"`` (a space of
            the same modality builds its models).
        kind: ``"classification"`` or ``"regression"``.
        default_space: The registered space a search on this task uses unless told.
    """

    name: str
    modality: str
    kind: str
    default_space: str

    @property
    def metric(self) -> str:
        """The metric reported as ``val_<metric>``/``test_<metric>``: ``acc`` or ``rmse``."""
        return "acc" if self.kind == "classification" else "rmse"

    @property
    def objective(self) -> Objective:
        """What a search on this task optimises by default: the validation metric."""
        if self.kind == "regression":
            return Objective(f"val_{self.metric}", Direction.MINIMIZE)
        return Objective(f"val_{self.metric}", Direction.MAXIMIZE)

    @property
    @abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """One example: ``(C, H, W)`` for images, ``(F,)`` for tables and node features."""

    @property
    @abstractmethod
    def num_outputs(self) -> int:
        """Output units a model needs: classes, or regression targets."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON identity of the task (stored with experiments)."""

    @abstractmethod
    def example_inputs(self) -> tuple[Tensor, ...]:
        """The inputs one inference takes (latency and FLOPs are measured on them): the whole
        graph for node classification, one validation example otherwise."""

    @abstractmethod
    def fit(
        self,
        model: nn.Module,
        config: TrainConfig,
        *,
        keep_state: bool = False,
        stop: StopRule | None = None,
        distill: Distill | None = None,
    ) -> FitOutcome:
        """Train ``model`` (built and seeded by the caller) with this task's trainer; with
        ``distill``, its loss also follows a trained teacher's outputs.

        Raises:
            TrainingDiverged: When the loss becomes NaN or infinite.
        """

    @abstractmethod
    def score(self, model: nn.Module) -> dict[str, float]:
        """``val_<metric>`` and ``test_<metric>`` of a trained ``model`` (in eval mode)."""

    @abstractmethod
    def proxy_batch(self, *, seed: int, batch_size: int, max_rows: int) -> ProxyBatch:
        """The data zero-cost proxies score untrained models on, drawn by ``seed``.

        Raises:
            ConfigError: If there are fewer than 2 training examples to draw from.
        """

    @abstractmethod
    def model_io(self) -> dict[str, Any]:
        """What an exported model takes and returns, for people: ``graph`` (whether it takes
        ``(x, edge_index)``), ``inputs``, ``output``, ``input_shape`` and ``outputs``."""

    def raw_inputs(self) -> tuple[Tensor, ...]:
        """A few inputs as the data source holds them (before any standardisation), to check
        an exported model on."""
        return self.example_inputs()

    @property
    def input_statistics(self) -> tuple[Tensor, Tensor] | None:
        """The mean and deviation the inputs were standardised with, if they were."""
        return None

    def target_scale(self) -> tuple[Tensor, Tensor] | None:
        """The mean and deviation regression targets are trained in units of, if any."""
        return None


@dataclass(frozen=True, slots=True)
class TaskSetup:
    """A task with the space, model and training settings it defaults to.

    Attributes:
        task: The loaded data.
        space: The registered space a search uses unless told (the task's default).
        hyper: That space's model settings under the task's protocol (``None``: its own).
        train: Optimiser settings, epochs (the default fidelity), patience and seed.
        protocol: Where the settings come from, in words.
    """

    task: Task
    space: str
    hyper: Any
    train: TrainConfig
    protocol: str


class TaskKind(ABC):
    """A kind of task: the specs it reads, the options it takes, the defaults it chooses.

    Contract:
        * ``prefixes`` are the spec prefixes it owns (``planetoid`` in ``planetoid:Cora``); no
          two registered kinds share one. ``forms`` lists its specs for messages and help.
        * ``load`` reads data only from where the spec and ``data_root`` say (downloading only
          when ``download`` is true), checks it, and returns it with the space, model
          settings and training recipe a search on it uses by default. It raises
          ``ConfigError`` naming what is wrong and what is accepted.
        * Subclasses are stateless; the module that defines one does not import torch (the
          kind is registered when nasforge is imported); ``load`` may.

    Attributes:
        name: The registered name (``node``, ``image``, ``tabular``).
        prefixes: Spec prefixes it parses.
        forms: Its specs as shown to users (``planetoid:Cora``, ``file:PATH.npz``, ...).
        options: Task options it takes (``task_options`` / the CLI's data flags).
        summary: One line for ``nasforge list tasks``.
        example: A spec of this kind that loads offline, with nothing downloaded (for
            examples and the conformance suite).
    """

    name: ClassVar[str]
    prefixes: ClassVar[tuple[str, ...]]
    forms: ClassVar[tuple[str, ...]]
    options: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""
    example: ClassVar[str]

    @abstractmethod
    def load(
        self,
        spec: str,
        *,
        data_root: str | os.PathLike[str] | None,
        download: bool,
        seed: int,
        options: Mapping[str, Any],
    ) -> TaskSetup:
        """Load the data ``spec`` names (one of this kind's prefixes) and choose its defaults.

        Args:
            spec: ``prefix:argument`` (or a bare prefix such as ``synthetic``).
            data_root: Folder holding downloaded data sets (Planetoid's ``<Name>/raw/``).
            download: Allow downloading missing files.
            seed: Seed of the search (weight initialisation, batch order, dropout).
            options: Task options, only names among :attr:`options`.

        Raises:
            ConfigError: For an unknown spec of this kind, a bad option, or unreadable data.
        """

    def unknown(self, spec: str) -> ConfigError:
        """The error for a spec of this kind's prefix that names no data set of it."""
        return ConfigError(f"unknown task {spec!r}; valid forms: {', '.join(task_forms())}")


TASKS: Registry[TaskKind] = Registry("task kind")
"""The registered task kinds, by name."""


def register_task(kind: type[TaskKind], *, summary: str = "") -> None:
    """Make a task kind available: ``--task PREFIX:ARG`` for each of ``kind.prefixes``.

    Raises:
        ConfigError: If the kind's name or one of its prefixes is taken already.
    """
    registered = TASKS.registered()
    if kind.name in registered:
        raise ConfigError(f"task kind {kind.name!r} is already registered")
    for name, other in registered.items():
        taken = set(other.prefixes)  # type: ignore[attr-defined]
        for prefix in kind.prefixes:
            if prefix in taken:
                raise ConfigError(
                    f"task prefix {prefix!r} of kind {kind.name!r} is taken by kind {name!r}"
                )
    TASKS.register(kind.name, kind, summary=summary or kind.summary)


def _kinds() -> list[type[TaskKind]]:
    return [TASKS.get(name) for name in TASKS.names()]  # type: ignore[misc]


def task_forms() -> tuple[str, ...]:
    """Every registered kind's specs, in registration order."""
    return tuple(form for kind in _kinds() for form in kind.forms)


def task_options() -> tuple[str, ...]:
    """Every task option some registered kind takes, in registration order."""
    seen: dict[str, None] = {}
    for kind in _kinds():
        seen.update(dict.fromkeys(kind.options))
    return tuple(seen)


def resolve_task(
    spec: str,
    *,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> TaskSetup:
    """Load the task ``spec`` names, with the space, model and training settings it defaults
    to (its kind's protocol).

    Args:
        spec: One of :func:`task_forms` (``planetoid:Cora``, ``image:digits``,
            ``tabular:wine``, ``csv:PATH``, ...).
        data_root: Folder holding ``<Name>/raw/`` for Planetoid tasks.
        download: Allow downloading missing files.
        seed: Seed of the search (fixes weight initialisation, batch order, dropout).
        options: Task options (see :func:`task_options`): ``label`` and ``kind`` for CSV and
            NPZ tables, ``image_size`` and ``grayscale`` for image folders, ``split_seed`` for
            image and tabular data.

    Raises:
        ConfigError: For an unknown spec (the message lists the forms), an option its kind
            does not take, or unreadable data.
    """
    opts = dict(options or {})
    known = task_options()
    unknown = sorted(set(opts) - set(known))
    if unknown:
        raise ConfigError(f"unknown task option(s) {unknown}; valid: {', '.join(known)}")
    prefix = spec.partition(":")[0]
    kind = next((k for k in _kinds() if prefix in k.prefixes), None)
    if kind is None:
        raise ConfigError(f"unknown task {spec!r}; valid forms: {', '.join(task_forms())}")
    for option in opts:
        if option not in kind.options:
            takers = " and ".join(k.name for k in _kinds() if option in k.options)
            raise ConfigError(f"{option} applies to {takers} tasks, not {spec!r}")
    return kind().load(spec, data_root=data_root, download=download, seed=seed, options=opts)


@dataclass(frozen=True, slots=True)
class _Resolved:
    """A task with the space to use on it and that space's settings."""

    task: Task
    space: SearchSpace
    hyper: Any


def task_setup(
    task: str | Task,
    space: str | SearchSpace | None = None,
    *,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> _Resolved:
    """A task (a spec is loaded with :func:`resolve_task`), the space to use on it (default:
    the task's) and that space's settings: the task's protocol when they are the space's,
    else the space's defaults.

    Raises:
        ConfigError: As :func:`resolve_task`, or for an unknown space.
    """
    from nasforge.spaces.base import SPACES

    if isinstance(task, str):
        setup = resolve_task(
            task, data_root=data_root, download=download, seed=seed, options=options
        )
        task_obj, default_space, default_hyper = setup.task, setup.space, setup.hyper
    else:
        task_obj, default_space, default_hyper = task, task.default_space, None
    chosen = space if space is not None else default_space
    space_obj = SPACES.create(chosen) if isinstance(chosen, str) else chosen
    return _Resolved(task_obj, space_obj, space_obj.settings_for(default_hyper))
