"""The search-space contract every space implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError, InvalidArchitectureError
from nasforge.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from nasforge.spaces.supernet import Supernet
    from nasforge.store.base import DamagedRow, ExperimentRecord, TrialRecord

__all__ = [
    "MODALITIES",
    "SPACES",
    "ArchGraph",
    "GraphEdge",
    "GraphNode",
    "LatencyEntry",
    "SearchSpace",
    "TaskShape",
    "WidthSite",
    "checked_widths",
    "foreign_arch",
    "register_space",
    "space_members",
    "split_members",
    "width_grid",
]

MODALITIES = ("graph", "image", "tabular")
"""The kinds of data a space's models take (``SearchSpace.modality``), and tasks hold."""


class TaskShape(Protocol):
    """What a space's ``build`` needs to know about an image or tabular task."""

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example: ``(C, H, W)`` for images, ``(F,)`` for tables."""
        ...

    @property
    def num_outputs(self) -> int:
        """Output units: classes, or regression targets."""
        ...


@dataclass(frozen=True, slots=True)
class GraphNode:
    """One node of an architecture's graph.

    Attributes:
        id: Unique within its graph.
        label: What the node computes; several lines are separated by ``"\\n"``.
        kind: ``"input"``, ``"op"``, ``"output"``, or ``"unused"`` (computes nothing that
            reaches the output).
    """

    id: str
    label: str
    kind: str = "op"


@dataclass(frozen=True, slots=True)
class GraphEdge:
    """A directed edge ``source -> target`` between node ids, labelled with an op or not."""

    source: str
    target: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class ArchGraph:
    """An architecture as a directed acyclic graph of labelled nodes and edges (for diagrams).

    Raises:
        ValueError: If node ids repeat or an edge names a node that is not in ``nodes``.
    """

    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]

    def __post_init__(self) -> None:
        ids = [node.id for node in self.nodes]
        if len(set(ids)) != len(ids):
            raise ValueError(f"node ids of a graph must be unique, got {ids}")
        for edge in self.edges:
            if edge.source not in ids or edge.target not in ids:
                raise ValueError(
                    f"edge {edge.source!r} -> {edge.target!r} names a node that is not in the "
                    f"graph; nodes: {ids}"
                )


@dataclass(frozen=True, slots=True)
class LatencyEntry:
    """One part of a space's models in a per-operation latency table: ``module(*inputs)``.

    Attributes:
        name: The entry's name in the table, e.g. ``gcn/hidden``.
        module: What is timed (a ``torch.nn.Module``, in eval mode).
        inputs: Its positional inputs, at the sizes it runs at in the task's model.
        minus: Another entry whose time is taken off this one's once measured: for a part
            that can only be timed together with an op (a cell holding one skip), so that
            the table stores the part's own overhead.
    """

    name: str
    module: Any
    inputs: tuple[Any, ...]
    minus: str | None = None


def width_grid(current: int, *, step: int = 1, parts: int = 8) -> tuple[int, ...]:
    """The widths ``current * k / parts`` for ``k = 1..parts``, rounded to multiples of
    ``step`` (at least ``step``), ascending and without repeats; the last is ``current``."""
    out = {max(step, round(current * k / parts / step) * step) for k in range(1, parts + 1)}
    return tuple(sorted(w for w in out if w <= current) or (current,))


def checked_widths(
    space: SearchSpace, options: Mapping[str, Sequence[int]], widths: Mapping[str, int]
) -> dict[str, int]:
    """``widths`` checked against ``options`` (:meth:`SearchSpace.width_options`), with the
    widths not given at their current values.

    Raises:
        ConfigError: For a name or value that is not an option.
    """
    for name, value in widths.items():
        if name not in options:
            raise ConfigError(
                f"space {space.name!r} has no width {name!r}; its widths: {', '.join(options)}"
            )
        if value not in options[name]:
            raise ConfigError(
                f"width {name!r} cannot be {value!r}; options: "
                f"{', '.join(str(v) for v in options[name])}"
            )
    return {name: int(widths.get(name, values[-1])) for name, values in options.items()}


@dataclass(frozen=True, eq=False)
class WidthSite:
    """A place in a network where one width's channels run (:meth:`SearchSpace.width_sites`).

    Attributes:
        module: The module.
        axis: The channel axis of its output (or input) tensor.
        scale: The channels there are ``scale * width`` (a stage of 2C channels: 2).
        blocks: The axis holds ``blocks`` such groups side by side (a concatenation).
        inputs: The channels are in the module's first input, not its output.
    """

    module: nn.Module
    axis: int = -1
    scale: int = 1
    blocks: int = 1
    inputs: bool = False


class SearchSpace(ABC):
    """A set of architectures, the moves strategies make in it, and the models it builds.

    Code that uses a space asks it; it never branches on the space's class.

    The search side (abstract unless said otherwise):
        * ``validate``, ``sample``, ``mutate``, ``neighbors``, ``canonical_key``, ``encode``,
          ``choices``/``from_choices`` (``to_choices``, ``size``, ``enumerate`` and
          ``graph`` where the space can give them).
        * Every method that returns architectures returns valid members of this space
          (``validate`` passes on them); none ever returns an invalid one.
        * ``canonical_key`` is a pure function: equivalent (isomorphic) architectures get the
          same key, different ones different keys. Dedup, caching and benchmark look-up use it.
        * Randomness comes only from the ``numpy.random.Generator`` passed in, so results are
          reproducible for a seed.

    The model side (a space without models, one that exists only as a table, keeps the
    defaults: ``modality`` None, and ``build`` refuses with a clear error):
        * ``modality``: the kind of data its models take (one of :data:`MODALITIES`); tasks of
          another kind are refused by :meth:`check_task` before anything trains.
        * Settings: :meth:`default_settings` (a frozen dataclass of the model's settings, such
          as widths and dropout, with ``to_dict()``; ``None`` when the genes fix them all),
          :meth:`settings_from_dict` (its inverse, from stored JSON) and
          :meth:`settings_for` (a task's default settings, when they are this space's).
        * ``build(arch, task, settings)``: a fresh ``torch.nn.Module`` that maps the task's
          inputs to its outputs; the weights come from PyTorch's global generator (seed it).
          Equivalent architectures build the same network.
        * Latency prediction (``predicts_latency`` True): :meth:`latency_names`,
          :meth:`latency_shape`, :meth:`latency_entries` and :meth:`latency_terms` say how
          its models decompose into parts timed once per device (FBNet-style tables).
        * ``graph(arch)``: the architecture as a graph of labelled nodes, for drawings.

    Thread and process safety: spaces hold no mutable state, are safe to share between
    threads and are pickled to worker processes as they are. Importing a space's module
    does not import torch; ``build`` and ``latency_entries`` do.

    Attributes:
        name: The registry name of the space, also stored in each ``Architecture``.
        modality: What its models take: ``"graph"``, ``"image"``, ``"tabular"``; ``None`` for
            a space without models.
        predicts_latency: Whether it implements the latency decomposition.
    """

    name: str
    modality: ClassVar[str | None] = None
    predicts_latency: ClassVar[bool] = False

    @abstractmethod
    def validate(self, arch: Architecture) -> None:
        """Check that ``arch`` belongs to this space.

        Raises:
            InvalidArchitectureError: Saying which gene breaks which rule.
        """

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Architecture:
        """Draw a random valid architecture."""

    def sample_distinct(
        self,
        n: int,
        rng: np.random.Generator,
        exclude: Iterable[Architecture | str] = (),
    ) -> list[Architecture]:
        """Up to ``n`` sampled architectures of distinct canonical keys, none in ``exclude``
        (architectures or keys). Stops early when 50 draws in a row bring nothing new (a
        nearly exhausted space)."""
        seen = {e if isinstance(e, str) else self.canonical_key(e) for e in exclude}
        out: list[Architecture] = []
        misses = 0
        while len(out) < n and misses < 50:
            arch = self.sample(rng)
            key = self.canonical_key(arch)
            if key in seen:
                misses += 1
                continue
            misses = 0
            seen.add(key)
            out.append(arch)
        return out

    @abstractmethod
    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """Change one gene of ``arch`` at random; the result has a different canonical key."""

    @abstractmethod
    def neighbors(self, arch: Architecture) -> list[Architecture]:
        """All architectures one gene edit away, one per canonical key, excluding ``arch``'s."""

    @abstractmethod
    def canonical_key(self, arch: Architecture) -> str:
        """A string equal for exactly the architectures equivalent to ``arch``."""

    @abstractmethod
    def encode(self, arch: Architecture) -> np.ndarray:
        """A fixed-length float vector for predictors; equal for equivalent architectures."""

    @abstractmethod
    def choices(self) -> Mapping[str, Sequence[Any]]:
        """The space as independent categorical parameters (for samplers such as Optuna's)."""

    @abstractmethod
    def from_choices(self, params: Mapping[str, Any]) -> Architecture:
        """Build the architecture that ``params`` (keys of :meth:`choices`) describe.

        Raises:
            InvalidArchitectureError: If the combination is not a valid architecture.
        """

    def to_choices(self, arch: Architecture) -> dict[str, Any]:
        """The parameters of :meth:`choices` that describe ``arch`` (inverse of
        :meth:`from_choices`): ``from_choices(to_choices(a)) == a``.

        Raises:
            InvalidArchitectureError: If ``arch`` is not a member of this space.
            NotImplementedError: For spaces that do not provide it.
        """
        raise NotImplementedError(f"space {self.name!r} cannot map architectures to choices")

    @property
    def size(self) -> int | None:
        """Number of distinct canonical keys, or ``None`` for an unbounded space."""
        return None

    def enumerate(self) -> Iterator[Architecture]:
        """Yield one representative per canonical key (finite spaces only).

        Raises:
            NotImplementedError: For spaces that cannot be enumerated.
        """
        raise NotImplementedError(f"space {self.name!r} cannot be enumerated")

    def graph(self, arch: Architecture) -> ArchGraph:
        """``arch`` as a graph of nodes and (op-labelled) edges, for diagrams in reports.

        Raises:
            InvalidArchitectureError: If ``arch`` is not an architecture of this space.
            NotImplementedError: For spaces that do not provide it.
        """
        raise NotImplementedError(
            f"space {self.name!r} cannot describe its architectures as a graph; a space draws "
            "diagrams by implementing graph(arch) -> ArchGraph"
        )

    def check_member(self, arch: Architecture) -> None:
        """The checks every ``validate`` starts with: an Architecture of this space.

        Raises:
            InvalidArchitectureError: For another type or another space's architecture.
        """
        if not isinstance(arch, Architecture):
            raise InvalidArchitectureError(f"expected an Architecture, got {type(arch).__name__}")
        if arch.space != self.name:
            raise InvalidArchitectureError(
                f"architecture belongs to space {arch.space!r}, not {self.name!r}"
            )

    def is_valid(self, arch: Architecture) -> bool:
        """``validate`` as a boolean."""
        try:
            self.validate(arch)
        except InvalidArchitectureError:
            return False
        return True

    # -- the model side ---------------------------------------------------------------------
    def default_settings(self) -> Any:
        """The model settings ``build`` uses when given none: a frozen dataclass with
        ``to_dict()``, or ``None`` when the genes fix every setting (or there is no model)."""
        return None

    def settings_from_dict(self, data: Mapping[str, Any] | None) -> Any:
        """The settings stored as ``data`` (``settings.to_dict()``), or ``None`` for none.

        Raises:
            ConfigError: For a key the settings do not have or a value they refuse.
        """
        default = self.default_settings()
        if data is None or default is None:
            return None
        try:
            return type(default)(**data)
        except TypeError as exc:
            raise ConfigError(
                f"bad hyperparameters {dict(data)} for space {self.name!r}: {exc}"
            ) from None

    def settings_for(self, given: Any) -> Any:
        """``given`` (e.g. a task's default settings) if they are settings of this space, else
        this space's defaults: a task's protocol applies only to the kind of space it is for."""
        default = self.default_settings()
        if given is not None and default is not None and type(given) is type(default):
            return given
        return default

    def setting_fields(self) -> dict[str, tuple[type, str]]:
        """The settings a user may override, by name: their type and a one-line help (from
        the dataclass field's ``metadata["help"]``). Empty when there are none."""
        default = self.default_settings()
        if default is None or not is_dataclass(default):
            return {}
        hints = _type_hints(type(default))
        return {
            f.name: (hints.get(f.name, str), str(f.metadata.get("help", f.name)))
            for f in fields(default)
        }

    def build(self, arch: Architecture, task: Any, settings: Any = None) -> nn.Module:
        """The untrained model of ``arch`` for ``task`` (see the class docstring).

        Args:
            arch: An architecture of this space.
            task: What the model is for: its ``input_shape`` and ``num_outputs`` (graphs:
                ``num_features`` and ``num_classes``).
            settings: The model settings (:meth:`default_settings` if ``None``).

        Raises:
            InvalidArchitectureError: If ``arch`` is not in this space.
            ConfigError: If the space has no model, or the task or settings do not fit it.
        """
        raise ConfigError(
            f"space {self.name!r} cannot build models to train: it has no model side "
            "(a space of a table look-up); search it with --benchmark"
        )

    # -- one-shot search --------------------------------------------------------------------
    @property
    def has_supernet(self) -> bool:
        """Whether :meth:`supernet` builds one (the space overrides it; weight-sharing
        strategies need it)."""
        return type(self).supernet is not SearchSpace.supernet

    def supernet(self, task: Any, settings: Any = None, *, partial: int = 1) -> Supernet:
        """The weight-sharing supernet of this space for ``task``: every architecture's
        weights in one :class:`~nasforge.spaces.supernet.Supernet`, which computes exactly
        ``build(arch)``'s model once fixed to ``arch``.

        ``partial=k`` builds PC-DARTS's partial-channel supernet instead: its ops compute
        ``1/k`` of their channels and pass the rest by (for search only; it holds no model's
        weights).

        Raises:
            ConfigError: If the space has none (the message names the spaces that do), or
                the task or settings do not fit it.
        """
        with_one = sorted({n for n in SPACES.names() if SPACES.create(n).has_supernet})
        raise ConfigError(
            f"space {self.name!r} has no supernet, so weight-sharing (one-shot) strategies "
            f"cannot search it; spaces with one: {', '.join(with_one) or 'none'}"
        )

    # -- structured pruning (``nasforge compress --method channels``) ------------------------
    def width_options(self, arch: Architecture, settings: Any) -> dict[str, tuple[int, ...]]:
        """The widths of ``arch``'s network (built with ``settings``) that structured pruning
        may shrink, by name, each with the values it may take: ascending, the last one the
        network's own. Empty (the default): the space's networks have none.
        """
        return {}

    def with_widths(
        self, arch: Architecture, settings: Any, widths: Mapping[str, int]
    ) -> tuple[Architecture, Any]:
        """The architecture and settings of ``arch``'s network with ``widths`` (names and
        values from :meth:`width_options`; the others unchanged).

        Raises:
            ConfigError: If the space has no widths, or a name or value is not an option.
        """
        raise ConfigError(f"space {self.name!r} has no widths that structured pruning shrinks")

    def width_sites(
        self, net: nn.Module, arch: Architecture, settings: Any
    ) -> dict[str, list[WidthSite]]:
        """Where each width of :meth:`width_options` runs in ``net`` (``build(arch, ...,
        settings)``'s model): the modules whose outputs (or inputs) hold its channels. A
        structured-pruning search scales those channels to learn which widths to keep.

        Raises:
            ConfigError: If the space has no widths.
        """
        raise ConfigError(f"space {self.name!r} has no widths that structured pruning shrinks")

    def check_task(self, task: Any) -> None:
        """Refuse a task whose data this space's models cannot take.

        Raises:
            ConfigError: Naming the spaces that fit, for a space without models or one built
                for another kind of data.
        """
        data = task.modality
        if self.modality is None:
            raise ConfigError(f"space {self.name!r} cannot build models to train")
        if (data == "graph") != (self.modality == "graph"):
            wants = _space_kinds(graph=data == "graph")
            raise ConfigError(f"task {task.name!r} needs {wants}; got space {self.name!r}")
        if data != self.modality:
            raise ConfigError(
                f"space {self.name!r} builds {self.modality} models, but task {task.name!r} "
                f"holds {data} data"
            )

    # -- latency prediction (FBNet-style per-operation tables) -------------------------------
    def latency_names(self, settings: Any) -> set[str]:
        """The names of the entries a table of this space holds for ``settings``.

        Raises:
            ConfigError: If the space has no latency decomposition.
        """
        raise self._no_latency()

    def latency_shape(self, task: Any, settings: Any) -> dict[str, Any]:
        """The task and model sizes a table is valid for (JSON, part of its key).

        Raises:
            ConfigError: If the space has no latency decomposition, or the task or settings
                do not fit it.
        """
        raise self._no_latency()

    def latency_entries(self, task: Any, settings: Any) -> Iterator[LatencyEntry]:
        """The parts to time, one per name of :meth:`latency_names` (imports torch)."""
        raise self._no_latency()

    def latency_terms(self, arch: Architecture, settings: Any) -> Counter[str]:
        """How many times the model of ``arch`` runs each entry.

        Raises:
            InvalidArchitectureError: If ``arch`` is not in this space.
        """
        raise self._no_latency()

    def _no_latency(self) -> ConfigError:
        with_tables: list[SearchSpace] = []
        for name in SPACES.names():
            space = SPACES.create(name)
            if space.predicts_latency and type(space) not in {type(s) for s in with_tables}:
                with_tables.append(space)
        listed = " and ".join(s.name for s in with_tables) or "no"
        return ConfigError(
            f"latency tables exist for the {listed} spaces, not {self.name!r} "
            "(measure_latency times any built model)"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


SPACES: Registry[SearchSpace] = Registry("space")
"""The registered search spaces, by name."""


def register_space(name: str, factory: Callable[[], SearchSpace], *, summary: str = "") -> None:
    """Make a search space available by ``name`` (``--space NAME``, ``search(space=NAME)``).

    Args:
        name: The space's name; its architectures carry it (``Architecture.space``).
        factory: Called without arguments; returns the space.
        summary: One line for ``nasforge list spaces``.

    Raises:
        ConfigError: If the name is taken.
    """
    SPACES.register(name, factory, summary=summary)


def _space_kinds(*, graph: bool) -> str:
    """The registered model spaces for graphs (or for the other data), one name per space
    class, as ``a gnn space`` or ``an nb201 (images) or mlp (tabular) space``."""
    labels = {"graph": "graphs", "image": "images", "tabular": "tabular"}
    seen: set[type] = set()
    names: list[str] = []
    for name in SPACES.names():
        space = SPACES.create(name)
        if space.modality is None or (space.modality == "graph") != graph:
            continue
        if type(space) in seen:
            continue
        seen.add(type(space))
        names.append(name if graph else f"{name} ({labels.get(space.modality, space.modality)})")
    listed = " or ".join(names) or "another"
    article = "an" if listed[:1].lower() in "aefhilmnorsx" else "a"
    return f"{article} {listed} space"


def _type_hints(cls: type) -> dict[str, type]:
    import typing

    return {k: v for k, v in typing.get_type_hints(cls).items() if isinstance(v, type)}


def space_members(record: ExperimentRecord, trials: Iterable[TrialRecord]) -> list[TrialRecord]:
    """The ``trials`` whose stored architecture belongs to the experiment's space.

    Any other (its row edited or damaged: the store reads the JSON, only the space knows its
    rules) is skipped with a :class:`~nasforge.errors.DamagedRowWarning`, as the store skips
    rows it cannot read. Trials of a space not registered here are all kept.
    """
    import warnings

    from nasforge.errors import DamagedRowWarning

    kept, damaged = split_members(record, trials)
    for damage in damaged:
        warnings.warn(DamagedRowWarning(f"{damage}; it is skipped"), stacklevel=2)
    return kept


def split_members(
    record: ExperimentRecord, trials: Iterable[TrialRecord]
) -> tuple[list[TrialRecord], list[DamagedRow]]:
    """``trials`` split into those of the experiment's space and the damage the others are
    (see :func:`space_members`)."""
    if record.search.space not in SPACES:
        return list(trials), []
    space = SPACES.create(record.search.space)
    kept, damaged = [], []
    for trial in trials:
        damage = foreign_arch(space, record.name, trial)
        if damage is None:
            kept.append(trial)
        else:
            damaged.append(damage)
    return kept, damaged


def foreign_arch(space: SearchSpace, experiment: str, trial: TrialRecord) -> DamagedRow | None:
    """The damage of ``trial`` if its stored architecture is not one of ``space``'s."""
    from nasforge.store.base import DamagedRow

    try:
        space.validate(trial.arch)
    except ConfigError as exc:
        detail = f"is not an architecture of space {space.name!r} ({exc})"
        return DamagedRow(experiment, trial.number, "arch", detail)
    return None
