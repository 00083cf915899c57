"""A space of independent categorical choices: the quickest way to a custom space.

Give the choices (``{"depth": (1, 2, 3), "width": (64, 128)}``); this class does the search
side: sampling, one-gene mutations and neighbours, canonical keys, one-hot encodings,
enumeration and a drawing. A subclass adds its model side (``modality`` and ``build``, and
``default_settings`` if its models have settings of their own); see the README's custom space.

Two architectures are equivalent only when every choice is equal: a space whose choices can
make equal networks (an unused width, say) should override :meth:`ChoiceSpace.canonical_key`
so that they share one key.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError, InvalidArchitectureError
from nasforge.spaces.base import ArchGraph, GraphEdge, GraphNode, SearchSpace

__all__ = ["ChoiceSpace"]

Value = int | float | str | bool


def _same(a: object, b: object) -> bool:
    """Equal and of the same type (``True`` is not ``1``, ``1`` is not ``1.0``)."""
    return type(a) is type(b) and a == b


class ChoiceSpace(SearchSpace):
    """Architectures made of independent categorical choices, one gene per choice.

    Args:
        name: The space's registered name (stored in each architecture).
        choices: Gene name -> its options (ints, floats, strings or booleans), in order; at
            least one gene, each with at least one option, no option twice.

    Raises:
        ConfigError: For an empty name, no choices, an empty or repeated option, or an option
            that is not an int, float, string or boolean.
    """

    def __init__(self, *, name: str, choices: Mapping[str, Sequence[Value]]) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a space needs a non-empty name, got {name!r}")
        if not choices:
            raise ConfigError(f"space {name!r} needs at least one choice")
        self.name = name
        self._options: dict[str, tuple[Value, ...]] = {}
        for gene, options in choices.items():
            values = tuple(options)
            if not values:
                raise ConfigError(f"choice {gene!r} of space {name!r} has no option")
            for value in values:
                if not isinstance(value, int | float | str | bool):
                    raise ConfigError(
                        f"choice {gene!r} of space {name!r}: options are ints, floats, strings "
                        f"or booleans, got {value!r}"
                    )
            if len({(type(v), v) for v in values}) != len(values):
                raise ConfigError(f"choice {gene!r} of space {name!r} repeats an option")
            self._options[gene] = values

    # -- membership -------------------------------------------------------------------------
    def make(self, **genes: Value) -> Architecture:
        """Build and validate an architecture from its genes."""
        arch = Architecture.create(self.name, **genes)
        self.validate(arch)
        return arch

    def validate(self, arch: Architecture) -> None:
        self.check_member(arch)
        if set(arch) != set(self._options):
            raise InvalidArchitectureError(
                f"a {self.name} architecture has genes {', '.join(self._options)}; "
                f"got {', '.join(sorted(arch)) or 'none'}"
            )
        for gene, options in self._options.items():
            if not any(_same(arch[gene], o) for o in options):
                listed = ", ".join(map(repr, options))
                raise InvalidArchitectureError(
                    f"{gene} = {arch[gene]!r} is not an option of {self.name}; valid: {listed}"
                )

    def canonical_key(self, arch: Architecture) -> str:
        """The genes' values in the order of the choices, as JSON."""
        return json.dumps([arch[gene] for gene in self._options])

    # -- moves --------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        genes = {
            g: options[int(rng.integers(len(options)))] for g, options in self._options.items()
        }
        return Architecture.create(self.name, **genes)

    def neighbors(self, arch: Architecture) -> list[Architecture]:
        """Every architecture with one gene changed, in the order of the choices."""
        out: list[Architecture] = []
        for gene, options in self._options.items():
            for value in options:
                if not _same(value, arch[gene]):
                    out.append(Architecture.create(self.name, **{**dict(arch), gene: value}))
        return out

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        candidates = self.neighbors(arch)
        if not candidates:  # a space of one architecture
            return self.sample(rng)
        return candidates[int(rng.integers(len(candidates)))]

    # -- enumeration and encodings -----------------------------------------------------------
    @property
    def size(self) -> int:
        return math.prod(len(options) for options in self._options.values())

    def enumerate(self) -> Iterator[Architecture]:
        names = list(self._options)
        for values in itertools.product(*self._options.values()):
            yield Architecture.create(self.name, **dict(zip(names, values, strict=True)))

    def encode(self, arch: Architecture) -> np.ndarray:
        """One one-hot block per choice, in the order of the choices."""
        blocks = []
        for gene, options in self._options.items():
            block = np.zeros(len(options), dtype=np.float32)
            block[next(i for i, o in enumerate(options) if _same(o, arch[gene]))] = 1.0
            blocks.append(block)
        return np.concatenate(blocks)

    def choices(self) -> Mapping[str, Sequence[Any]]:
        return {gene: list(options) for gene, options in self._options.items()}

    def to_choices(self, arch: Architecture) -> dict[str, Any]:
        self.validate(arch)
        return dict(arch)

    def from_choices(self, params: Mapping[str, Any]) -> Architecture:
        missing = [gene for gene in self._options if gene not in params]
        if missing:
            raise InvalidArchitectureError(
                f"missing parameter {missing[0]!r}; expected {', '.join(self._options)}"
            )
        genes = {}
        for gene, options in self._options.items():
            # numpy and Optuna give numpy scalars: take the option they equal
            value = params[gene]
            genes[gene] = next((o for o in options if o == value), value)
        return self.make(**genes)

    def graph(self, arch: Architecture) -> ArchGraph:
        """The input, one node listing the choices made, the output."""
        self.validate(arch)
        label = "\n".join(f"{gene}: {arch[gene]}" for gene in self._options)
        nodes = (
            GraphNode("in", "input", "input"),
            GraphNode("net", label),
            GraphNode("out", "output", "output"),
        )
        return ArchGraph(nodes, (GraphEdge("in", "net"), GraphEdge("net", "out")))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, choices={self.choices()!r})"
