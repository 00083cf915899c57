"""The architecture genotype: immutable plain data that names its search space."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from nasforge.errors import InvalidArchitectureError

__all__ = ["Architecture", "Gene"]

Gene = int | float | str | bool | tuple["Gene", ...]


_SCALARS = (bool, int, float, str)


def _freeze(value: Any, path: str) -> Gene:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list | tuple):
        if all(isinstance(v, _SCALARS) for v in value):  # flat, the usual gene: no recursion
            return tuple(value)
        return tuple(_freeze(v, f"{path}[{i}]") for i, v in enumerate(value))
    raise InvalidArchitectureError(
        f"gene {path} has type {type(value).__name__}; accepted: int, float, str, bool "
        "and lists/tuples of them"
    )


def _thaw(value: Gene) -> Any:
    return [_thaw(v) for v in value] if isinstance(value, tuple) else value


@dataclass(frozen=True, slots=True)
class Architecture(Mapping[str, Gene]):
    """An immutable genotype: named genes (ints, floats, strings and tuples of them).

    Equality and hashing are on the exact genotype; use ``space.canonical_key(arch)`` to
    compare architectures up to isomorphism.

    Example:
        >>> a = Architecture.create("gnn", links=[0, 0, 1, 2], ops=["gcn", "gat", "skip", "fc"])
        >>> a["links"]
        (0, 0, 1, 2)
    """

    space: str
    genes: tuple[tuple[str, Gene], ...]

    @classmethod
    def create(cls, space: str, /, **genes: Any) -> Architecture:
        """Build an architecture of ``space`` from keyword genes (lists become tuples)."""
        return cls(space, tuple((k, _freeze(v, k)) for k, v in sorted(genes.items())))

    def __getitem__(self, name: str) -> Gene:
        for key, value in self.genes:
            if key == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self.genes)

    def __len__(self) -> int:
        return len(self.genes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"space": ..., "genes": {...}}``."""
        return {"space": self.space, "genes": {k: _thaw(v) for k, v in self.genes}}

    def to_json(self) -> str:
        """Compact, key-sorted JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Architecture:
        """Inverse of :meth:`to_dict`.

        Raises:
            InvalidArchitectureError: If ``data`` lacks ``space`` or ``genes``.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("space"), str):
            raise InvalidArchitectureError(
                'an architecture must be an object {"space": <name>, "genes": {...}}; '
                f"got {data!r}"
            )
        genes = data.get("genes")
        if not isinstance(genes, Mapping):
            raise InvalidArchitectureError(f"architecture 'genes' must be an object, got {genes!r}")
        return cls.create(data["space"], **genes)

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        """Inverse of :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArchitectureError(f"architecture is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def __str__(self) -> str:
        def text(value: Gene) -> str:
            return ",".join(text(v) for v in value) if isinstance(value, tuple) else str(value)

        return f"{self.space}[{' '.join(f'{k}={text(v)}' for k, v in self.genes)}]"
