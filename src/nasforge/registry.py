"""Name-keyed registries for spaces, strategies and benchmarks.

Objects are registered explicitly (``registry.register("name", factory)``) in
:mod:`nasforge._builtins`, not through import side effects, and an unknown name is answered
with the list of valid ones.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from nasforge.errors import ConfigError, UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to factories of one kind of object.

    Args:
        kind: What the registry holds, used in error messages ("space", "strategy", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, tuple[Callable[..., T], str]] = {}

    def register(self, name: str, factory: Callable[..., T], *, summary: str = "") -> None:
        """Register ``factory`` under ``name``.

        Raises:
            ConfigError: If ``name`` is already registered.
        """
        if name in self._entries:
            raise ConfigError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = (factory, summary)

    def get(self, name: str) -> Callable[..., T]:
        """Return the factory registered under ``name``.

        Raises:
            UnknownNameError: If no factory has that name; the message lists the valid names.
        """
        try:
            return self._entries[name][0]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        """The one-line message for an unknown ``name``."""
        close = difflib.get_close_matches(name, list(self._entries), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}.{hint}"

    def create(self, name: str, /, **options: object) -> T:
        """Build the object registered under ``name`` with keyword ``options``."""
        return self.get(name)(**options)

    def summary(self, name: str) -> str:
        """The one-line description given at registration."""
        self.get(name)
        return self._entries[name][1]

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)
