"""Exceptions raised by nasforge.

Every error a user can cause carries one line that says what was wrong, what is accepted and,
where it helps, how to fix it. The CLI prints that line and exits non-zero.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DamagedRowWarning",
    "InvalidArchitectureError",
    "InvalidResultError",
    "LatencyTableError",
    "NasforgeError",
    "StoreError",
    "UnknownNameError",
    "WorkersUnavailable",
]


class NasforgeError(Exception):
    """Base class of every error nasforge raises on purpose."""


class ConfigError(NasforgeError, ValueError):
    """A user-supplied option or value breaks a rule (the CLI exits with code 2)."""


class UnknownNameError(ConfigError, KeyError):
    """A name was looked up in a registry that does not hold it."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class InvalidArchitectureError(ConfigError):
    """An architecture is not a member of its search space."""


class InvalidResultError(ConfigError):
    """An evaluator's result holds a value it cannot (a metric that is not a number): that
    trial fails, the search goes on."""


class LatencyTableError(NasforgeError):
    """A stored latency table cannot be used (unreadable or corrupt), or an entry cannot be
    measured on the chosen backend."""


class StoreError(NasforgeError):
    """The experiment store cannot be opened, read or written safely."""


class WorkersUnavailable(NasforgeError):
    """An executor cannot run trials at all (its workers cannot start); the trials it was
    given are not at fault and run again when the search is resumed."""


class DamagedRowWarning(UserWarning):
    """A stored row cannot be read and is skipped (see :class:`nasforge.store.DamagedRow`)."""
