"""Name-keyed registries, and the plugins that add to them.

Each concept keeps its registry where it lives: ``SPACES`` in :mod:`nasforge.spaces.base`,
``STRATEGIES`` in :mod:`nasforge.strategies.base`, ``BENCHMARKS`` in
:mod:`nasforge.evaluators.base`, ``TASKS`` in :mod:`nasforge.tasks.base` and ``EXECUTORS`` in
:mod:`nasforge.execution.base`, each with its ``register_*`` function (re-exported as
``nasforge.register_space`` and so on). What nasforge ships is registered explicitly in
:mod:`nasforge._builtins`.

A package adds its own entries from a function it names in the ``nasforge.plugins``
entry-point group::

    # the plugin package's pyproject.toml
    [project.entry-points."nasforge.plugins"]
    my-space = "my_package.nasforge_plugin:register"

Plugins are loaded once per process, the first time any registry is read, so that the names
they register work from the CLI and from :func:`nasforge.search` alike. An unknown name is
answered with the list of the valid ones.

This module imports nothing of nasforge's but its errors, so that every layer may hold a
registry without an import cycle.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, Generic, TypeVar

from nasforge.errors import ConfigError, UnknownNameError

__all__ = ["PLUGIN_GROUP", "PluginWarning", "Registry", "load_plugins"]

PLUGIN_GROUP = "nasforge.plugins"
"""The entry-point group whose callables register a package's spaces, strategies, tasks..."""

T = TypeVar("T")


class PluginWarning(UserWarning):
    """A plugin of the ``nasforge.plugins`` group could not be loaded; it is skipped."""


class Registry(Generic[T]):
    """A mapping from names to factories of one kind of object.

    Thread safety: registration is meant for import time (built-ins, plugins); reads may come
    from any thread afterwards.

    Args:
        kind: What the registry holds, used in error messages ("space", "strategy", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, tuple[Callable[..., T], str]] = {}

    def register(self, name: str, factory: Callable[..., T], *, summary: str = "") -> None:
        """Register ``factory`` under ``name``.

        Raises:
            ConfigError: If ``name`` is empty or already registered.
        """
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"a {self.kind} needs a non-empty name, got {name!r}")
        if name in self._entries:
            raise ConfigError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = (factory, summary)

    def registered(self) -> dict[str, Callable[..., T]]:
        """The entries registered so far, by name, without loading plugins (for checks made
        while registering)."""
        return {name: entry[0] for name, entry in self._entries.items()}

    def get(self, name: str) -> Callable[..., T]:
        """Return the factory registered under ``name``.

        Raises:
            UnknownNameError: If no factory has that name; the message lists the valid names.
        """
        load_plugins()
        try:
            return self._entries[name][0]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        """The one-line message for an unknown ``name``."""
        close = difflib.get_close_matches(name, self.names(), n=1)
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
        """Registered names, in registration order (built-ins first, then plugins)."""
        load_plugins()
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


_plugins_loaded = False


def load_plugins() -> None:
    """Load the ``nasforge.plugins`` entry points once: each names a callable that registers
    its package's entries (or a module that does so when imported).

    A plugin that fails to load is skipped with a :class:`PluginWarning` naming it and the
    error; the built-ins and the other plugins stay usable.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True  # first: a plugin reads the registries while it registers
    for point in metadata.entry_points(group=PLUGIN_GROUP):
        try:
            loaded: Any = point.load()
            if callable(loaded):
                loaded()
        except Exception as exc:  # a broken plugin must not break nasforge
            first = str(exc).splitlines()[0] if str(exc) else ""
            message = (
                f"nasforge plugin {point.name!r} ({point.value}) could not be loaded and is "
                f"skipped: {type(exc).__name__}: {first}"
            )
            warnings.warn(message, PluginWarning, stacklevel=2)
