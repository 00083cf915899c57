"""Where nasforge keeps files of its own: the cache and the default data folder."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_DB", "cache_dir", "data_root"]

DEFAULT_DB = "nasforge.db"
"""The store a search writes to when given none (and ``$NASFORGE_DB`` is not set)."""


def cache_dir() -> Path:
    """nasforge's cache folder (``$NASFORGE_CACHE`` or ``~/.cache/nasforge``)."""
    return Path(os.environ.get("NASFORGE_CACHE", Path.home() / ".cache" / "nasforge"))


def data_root(given: str | os.PathLike[str] | None = None) -> Path:
    """The folder datasets are read from: ``given``, else ``$NASFORGE_DATA``, else
    ``~/.cache/nasforge/data``."""
    if given is not None:
        return Path(given).expanduser()
    env = os.environ.get("NASFORGE_DATA")
    return Path(env) if env else Path.home() / ".cache" / "nasforge" / "data"
