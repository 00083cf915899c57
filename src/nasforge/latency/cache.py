"""Stored latency tables: where they live, and reading and writing their files safely."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasforge.errors import LatencyTableError
from nasforge.paths import cache_dir

__all__ = ["digest", "latency_cache_dir", "read_table", "write_table"]


def latency_cache_dir() -> Path:
    """Where latency tables are stored: ``$NASFORGE_CACHE/latency`` (default
    ``~/.cache/nasforge/latency``)."""
    return cache_dir() / "latency"


def digest(key: Mapping[str, Any]) -> str:
    """A short stable hash of a table's key (part of its file name)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _corrupt(path: Path, reason: str) -> LatencyTableError:
    return LatencyTableError(
        f"latency table {path} is corrupt ({reason}); delete the file to measure the table again"
    )


def read_table(
    path: Path, key: Mapping[str, Any], names: set[str]
) -> tuple[dict[str, float], float] | None:
    """The entries and build time stored at ``path`` for ``key``; ``None`` if there is no
    file or it holds another key (another device or settings).

    Raises:
        LatencyTableError: If the file cannot be read, or is corrupt (never silently used or
            replaced: the message says to delete it).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise LatencyTableError(f"cannot read latency table {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _corrupt(path, f"not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not {"key", "entries", "build_seconds"} <= set(data):
        raise _corrupt(path, "expected an object with 'key', 'entries' and 'build_seconds'")
    if data["key"] != key:
        return None
    entries, seconds = data["entries"], data["build_seconds"]
    if not isinstance(entries, dict):
        raise _corrupt(path, "'entries' must be an object of name -> ms")
    if set(entries) != names:
        missing, extra = sorted(names - set(entries)), sorted(set(entries) - names)
        raise _corrupt(path, f"entries missing: {missing}, unexpected: {extra}")
    for name, value in entries.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _corrupt(path, f"entry {name!r} is {value!r}, not a number of ms")
        if not math.isfinite(value) or value < 0:
            raise _corrupt(path, f"entry {name!r} is {value}, not a finite latency >= 0")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise _corrupt(path, f"'build_seconds' is {seconds!r}, not a number")
    return {str(k): float(v) for k, v in entries.items()}, float(seconds)


def write_table(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
