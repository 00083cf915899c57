"""The search-space contract every space implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError

__all__ = ["ArchGraph", "GraphEdge", "GraphNode", "SearchSpace", "TaskShape"]


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


class SearchSpace(ABC):
    """A set of architectures and the moves strategies make in it.

    Contract:
        * Every method that returns architectures returns valid members of this space
          (``validate`` passes on them); none ever returns an invalid one.
        * ``canonical_key`` is a pure function: equivalent (isomorphic) architectures get the
          same key, different ones different keys. Dedup, caching and benchmark look-up use it.
        * Randomness comes only from the ``numpy.random.Generator`` passed in, so results are
          reproducible for a seed. Spaces hold no mutable state and are safe to share between
          threads.

    Attributes:
        name: The registry name of the space, also stored in each ``Architecture``.
    """

    name: str

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
