"""NAS-Bench-Graph tables (Qin et al., NeurIPS 2022 Datasets and Benchmarks).

The ``nas-bench-graph`` wheel ships one table per dataset (``light/<dataset>.bench``): for each
architecture hash, validation and test performance, latency (seconds per inference) and
parameter count (millions). The tables are pickles; they are read with an unpickler that only
admits the numpy scalar types they contain, so a tampered file cannot run code.
"""

from __future__ import annotations

import io
import math
import pickle
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from nasforge.errors import ConfigError, StoreError

__all__ = ["DATASETS", "NasBenchGraphTable", "TableEntry", "load_table"]

DATASETS: tuple[str, ...] = (
    "cora",
    "citeseer",
    "pubmed",
    "cs",
    "physics",
    "photo",
    "computers",
    "arxiv",
    "proteins",
)
"""The nine datasets whose tables ship in the ``nas-bench-graph`` wheel."""


def _numpy_scalar() -> Any:
    try:
        from numpy._core.multiarray import scalar  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    return scalar


class _TableUnpickler(pickle.Unpickler):
    """Admits only plain containers, numbers and numpy scalars; refuses any other class."""

    _allowed: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a table file")
        return _numpy_scalar() if name == "scalar" else np.dtype


@dataclass(frozen=True, slots=True)
class TableEntry:
    """One architecture's row of a NAS-Bench-Graph table."""

    valid: float
    test: float
    latency_s: float
    params_m: float


class NasBenchGraphTable:
    """The look-up table of one dataset, keyed by the benchmark's architecture hash."""

    def __init__(self, dataset: str, rows: dict[int, TableEntry]) -> None:
        self.dataset = dataset
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, arch_hash: int) -> TableEntry:
        return self.rows[arch_hash]

    def __contains__(self, arch_hash: object) -> bool:
        return arch_hash in self.rows

    @classmethod
    def read(cls, dataset: str, path: Path | None = None) -> NasBenchGraphTable:
        """Read the table of ``dataset`` from the installed wheel (or from ``path``).

        Raises:
            ConfigError: If ``dataset`` is not one of :data:`DATASETS`.
            StoreError: If the file is missing or not a NAS-Bench-Graph table.
        """
        if dataset not in DATASETS:
            raise ConfigError(
                f"unknown NAS-Bench-Graph dataset {dataset!r}; valid: {', '.join(DATASETS)}"
            )
        if path is None:
            path = Path(str(resources.files("nas_bench_graph") / "light" / f"{dataset}.bench"))
        try:
            raw = _TableUnpickler(io.BytesIO(path.read_bytes())).load()
        except FileNotFoundError:
            raise StoreError(
                f"NAS-Bench-Graph table {path} is missing; reinstall with "
                "'pip install --force-reinstall nas-bench-graph'"
            ) from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
            raise StoreError(f"{path} is not a NAS-Bench-Graph table: {exc}") from None
        rows: dict[int, TableEntry] = {}
        try:
            for key, info in raw.items():
                rows[int(key)] = TableEntry(
                    valid=float(info["valid_perf"]),
                    test=float(info["perf"]),
                    latency_s=float(info["latency"]),
                    params_m=float(info["para"]),
                )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{path} is not a NAS-Bench-Graph table: bad row ({exc})") from None
        if not rows or not all(math.isfinite(r.valid) for r in rows.values()):
            raise StoreError(f"{path} is not a NAS-Bench-Graph table: empty or non-finite rows")
        return cls(dataset, rows)


@cache
def load_table(dataset: str) -> NasBenchGraphTable:
    """The shipped table of ``dataset``, read once per process."""
    return NasBenchGraphTable.read(dataset)
