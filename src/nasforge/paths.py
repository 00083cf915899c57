"""Where nasforge keeps files of its own (the cache, the default data folder and store), and
how a store's location is shown to people."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_DB", "cache_dir", "data_root", "store_label"]

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


def store_label(target: str) -> str:
    """Where the store is, for people: an absolute path, or the URL without its password."""
    if "://" not in target:
        return os.path.abspath(target)
    try:
        import sqlalchemy as sa

        return sa.make_url(target).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses: show only its scheme
        return target.split("://", 1)[0] + "://…"
