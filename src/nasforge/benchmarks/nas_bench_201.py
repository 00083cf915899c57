"""NAS-Bench-201 / NATS-Bench topology tables (Dong & Yang, ICLR 2020; Dong et al., TPAMI 2021).

The 15,625 cells of the NAS-Bench-201 space were trained on CIFAR-10, CIFAR-100 and
ImageNet16-120 with 12 and 200 epochs. The published files are large (the ``.pth`` files are
about 2 GB for v1_0 and over 4 GB for v1_1) and nasforge never downloads them itself: download
one and pass its path (or set ``NASFORGE_NB201_PATH``). Three layouts are read, recognised by
their content:

* ``NATS-tss-v1_0-3ffb9-simple`` (recommended): a directory of ``meta.pickle.pbz2`` (the list
  of architecture strings, ``meta_archs``) and one ``{index:06d}.pickle.pbz2`` per architecture
  holding ``{"12": ArchResults, "200": ArchResults}`` (bz2-compressed pickles). Download
  ``NATS-tss-v1_0-3ffb9-simple.tar`` and unpack it with ``tar xvf``:
  https://github.com/D-X-Y/NATS-Bench#preparation-and-download
  (https://drive.google.com/file/d/17_saCsj_krKjlCBLOJEpNtzPXArMCqxU/view).
  Architectures are read on demand, one file each (about 20 ms), and kept in memory; reading
  all 15,625 files up front would take minutes before the first evaluation.
* ``NAS-Bench-201-v1_1-096897.pth`` or ``NAS-Bench-201-v1_0-e61699.pth``: one ``torch.save``
  file of ``{"meta_archs", "arch2infos": {index: {"less": ArchResults, "full": ArchResults}},
  "evaluated_indexes"}`` ("less" is 12 epochs, "full" 200; v1_0 has 12-epoch results only for
  cifar10-valid): https://github.com/D-X-Y/NAS-Bench-201#preparation-and-download
  (https://drive.google.com/open?id=1SKW0Cu0u8-gb18zDpaAGi0f74UdXeGKs). The whole file is read
  on first use (minutes, and several times the file size in memory while it is parsed); only
  the final numbers are kept.
* ``NATS-tss-v1_0-3ffb9.pickle.pbz2``: the single-file form of the simple archive, with
  ``arch2infos: {index: {"12": ..., "200": ...}}``, read whole like the ``.pth`` file
  (https://drive.google.com/file/d/1vzyK0UVH2D3fTpa1_dSWnp1gvGpAxRul/view).

The ``NATS-tss-v1_0-3ffb9-full`` archive (the simple layout plus trained weights, torch tensors)
is refused with a pointer to the simple one, which holds the same results.

An ``ArchResults`` state is ``{"arch_str", "all_results": {(dataset, seed): ResultsCount}, ...}``
and a ``ResultsCount`` state holds ``epochs``, ``eval_acc1es`` (top-1 accuracy in percent,
keyed ``"<set>@<epoch>"``), ``params`` (millions), ``flop`` (millions), ``latency`` (seconds,
a list) and ``train_times`` (seconds per epoch). An entry here is the final epoch
(``epochs - 1``) averaged over the seeds present (777, 888, 999; 111 for some 12-epoch runs),
as fractions in [0, 1] like the NAS-Bench-Graph tables:

============== ========================================= =====================================
dataset        validation accuracy (``val_acc``)         test accuracy (``test_acc``)
============== ========================================= =====================================
cifar10-valid  ``x-valid`` of the cifar10-valid runs     ``ori-test`` of the same runs
cifar10        ``x-valid`` of the cifar10-valid runs     ``ori-test`` of the cifar10 runs
cifar100       ``x-valid`` of the cifar100 runs          ``x-test`` of the same runs
ImageNet16-120 ``x-valid`` of the ImageNet16-120 runs    ``x-test`` of the same runs
============== ========================================= =====================================

The cifar10 runs train on train + valid (50k images), so they have no held-out validation
split; as in the benchmark papers, its ``val_acc`` comes from the cifar10-valid runs (trained on
25k images) and its ``test_acc`` from different models. Costs and training time describe the
runs that gave ``val_acc``.

The files are pickles. They are read with an unpickler that admits only plain containers,
numbers, strings and numpy scalars, so a tampered file cannot run code. ``torch.load(...,
weights_only=True)`` would also be safe on these files, but its unpickler is written in Python:
on a 90 MB file shaped like NAS-Bench-201 it took 10 s against 0.7 s here, i.e. many minutes for
the real files, and it refuses numpy scalars unless they are allow-listed process-wide.
"""

from __future__ import annotations

import bz2
import math
import os
import pickle
import re
import statistics
import tarfile
import threading
import zipfile
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, partial
from pathlib import Path
from typing import IO, Any, ClassVar

import numpy as np

from nasforge.errors import ConfigError

__all__ = [
    "DATASETS",
    "ENV_VAR",
    "EPOCHS",
    "FILE_NAMES",
    "OPS",
    "EntryNotFoundError",
    "NasBench201Table",
    "Nb201Entry",
    "Nb201Format",
    "detect_format",
    "load_table",
    "resolve_path",
]

DATASETS: tuple[str, ...] = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
"""Datasets an entry can be looked up for (see the module docstring for val/test)."""

EPOCHS: tuple[int, ...] = (12, 200)
"""Training lengths of the published results; which ones a file holds depends on the file."""

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""The five operations of the NAS-Bench-201 cell."""

ENV_VAR = "NASFORGE_NB201_PATH"
"""Environment variable naming the benchmark file or directory when no path is given."""

FILE_NAMES: tuple[str, ...] = (
    "NATS-tss-v1_0-3ffb9-simple",
    "NAS-Bench-201-v1_1-096897.pth",
    "NAS-Bench-201-v1_0-e61699.pth",
    "NATS-tss-v1_0-3ffb9.pickle.pbz2",
)
"""The published files this module reads (it recognises them by content, not by name)."""

_WHERE = (
    "expected the directory NATS-tss-v1_0-3ffb9-simple (unpack NATS-tss-v1_0-3ffb9-simple.tar "
    "from https://github.com/D-X-Y/NATS-Bench#preparation-and-download) or the file "
    "NAS-Bench-201-v1_1-096897.pth / NAS-Bench-201-v1_0-e61699.pth "
    "(https://github.com/D-X-Y/NAS-Bench-201#preparation-and-download); "
    "nasforge never downloads these multi-GB files itself"
)

# Evaluation sets of NAS-Bench-201: dataset -> (run, set) giving validation and test accuracy.
_VAL_TEST: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "cifar10-valid": (("cifar10-valid", "x-valid"), ("cifar10-valid", "ori-test")),
    "cifar10": (("cifar10-valid", "x-valid"), ("cifar10", "ori-test")),
    "cifar100": (("cifar100", "x-valid"), ("cifar100", "x-test")),
    "ImageNet16-120": (("ImageNet16-120", "x-valid"), ("ImageNet16-120", "x-test")),
}
_HP_EPOCHS = {"less": 12, "full": 200, "12": 12, "200": 200}
_ARCH_STR = re.compile(
    r"\|(\w+)~0\|\+\|(\w+)~0\|(\w+)~1\|\+\|(\w+)~0\|(\w+)~1\|(\w+)~2\|"
)  # edges 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2
_META = "meta.pickle.pbz2"
_ARCH_FILE = re.compile(r"\d+\.pickle\.pbz2")
_TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a legacy (pre-zip) torch.save file


class Nb201Format(StrEnum):
    """The layouts of the published files."""

    NATS_SIMPLE = "nats-tss-simple"
    NB201_PTH = "nas-bench-201-pth"
    NATS_PICKLE = "nats-tss-pickle"


class EntryNotFoundError(LookupError):
    """The table has no result for an architecture (at a dataset and training length)."""


@dataclass(frozen=True, slots=True)
class Nb201Entry:
    """One architecture's results on one dataset at one training length, averaged over seeds.

    Attributes:
        val_acc: Validation accuracy, a fraction in [0, 1].
        test_acc: Test accuracy, a fraction; None when the file has no test record.
        params: Number of parameters; None when absent.
        flops: FLOPs of one forward pass of one image; None when absent.
        latency_ms: Inference latency in milliseconds as measured by the benchmark.
        train_time_s: Seconds the benchmark spent training for ``epochs`` epochs.
        val_seeds: Seeds averaged into ``val_acc`` (and the costs).
        test_seeds: Seeds averaged into ``test_acc``.
    """

    val_acc: float
    test_acc: float | None
    params: float | None
    flops: float | None
    latency_ms: float | None
    train_time_s: float | None
    val_seeds: tuple[int, ...]
    test_seeds: tuple[int, ...]


# -- architecture strings ------------------------------------------------------------------------
def _ops_of(arch_str: str) -> tuple[str, ...] | None:
    """The 6 edge ops of a cell string; None if ``arch_str`` is not a NAS-Bench-201 cell."""
    match = _ARCH_STR.fullmatch(arch_str)
    if match is None or not all(op in OPS for op in match.groups()):
        return None
    return match.groups()


# -- safe reading --------------------------------------------------------------------------------
def _numpy_scalar() -> Any:
    try:
        from numpy._core.multiarray import scalar  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    return scalar


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    """How protocol-2 pickles (torch.save) spell ``bytes``: ``_codecs.encode(text, 'latin1')``."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing to decode bytes with codec {encoding!r}")
    return text.encode("latin1")


class _Unpickler(pickle.Unpickler):
    """Admits plain containers, numbers, strings and numpy scalars; refuses any other class."""

    _allowed: ClassVar[dict[tuple[str, str], Any]] = {
        ("collections", "OrderedDict"): OrderedDict,
        ("builtins", "set"): set,
        ("__builtin__", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("__builtin__", "frozenset"): frozenset,
        ("_codecs", "encode"): _latin1,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "scalar"): None,
        ("numpy._core.multiarray", "scalar"): None,
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._allowed:
            hint = (
                " (torch tensors: trained weights, as in the NATS-tss-v1_0-3ffb9-full archive; "
                "use NATS-tss-v1_0-3ffb9-simple, which has the same results without weights)"
                if module.startswith("torch")
                else ""
            )
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}{hint}")
        found = self._allowed[(module, name)]
        return _numpy_scalar() if found is None else found

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(
            "refusing to load tensor storage (trained weights); the NAS-Bench-201 tables hold "
            "only numbers"
        )


def _unpickle(stream: IO[bytes], path: Path) -> Any:
    try:
        return _Unpickler(stream).load()
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{path} is not a NAS-Bench-201 table: {exc}") from None


def _read_pbz2(path: Path) -> Any:
    try:
        with bz2.open(path, "rb") as stream:
            return _unpickle(stream, path)
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing") from None


def _read_pth(path: Path) -> Any:
    """The object a ``torch.save`` file holds, without torch and without running code."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("data.pkl")]
            if len(names) != 1:
                raise ConfigError(f"{path} is a zip file but not a torch.save file")
            with archive.open(names[0]) as stream:
                return _unpickle(stream, path)
    with path.open("rb") as stream:  # legacy format: magic, protocol, sys info, object, keys
        if _unpickle(stream, path) != _TORCH_MAGIC:
            raise ConfigError(f"{path} is not a torch.save file (no magic number)")
        _unpickle(stream, path)
        _unpickle(stream, path)
        return _unpickle(stream, path)


# -- the published layouts -----------------------------------------------------------------------
def resolve_path(path: str | os.PathLike[str] | None) -> Path:
    """``path``, or ``$NASFORGE_NB201_PATH`` when ``path`` is None.

    Raises:
        ConfigError: If neither is given.
    """
    if path is None:
        path = os.environ.get(ENV_VAR) or None
    if path is None:
        raise ConfigError(
            "NAS-Bench-201 needs its benchmark file: pass --table FILE (API: table=...) or "
            f"set {ENV_VAR}; {_WHERE}"
        )
    return Path(path).expanduser()


def detect_format(path: Path) -> Nb201Format:
    """Which published layout ``path`` is, from its name and first bytes (cheap).

    Raises:
        ConfigError: If ``path`` is missing or is none of the layouts; the message says what was
            expected, where to get it and what was found.
    """
    if not path.exists():
        raise ConfigError(f"NAS-Bench-201 path {path} does not exist; {_WHERE}")
    if path.is_dir():
        if (path / _META).is_file():
            return Nb201Format.NATS_SIMPLE
        known = [n for n in FILE_NAMES if (path / n).exists()]
        hint = f" It contains {known[0]}: pass that path." if known else ""
        found = sorted(p.name for p in path.iterdir())
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "") if found else "nothing"
        raise ConfigError(
            f"NAS-Bench-201 path {path} is a directory without {_META} "
            f"(found: {shown}); {_WHERE}.{hint}"
        )
    if path.name == _META or _ARCH_FILE.fullmatch(path.name):
        raise ConfigError(
            f"{path} is one file of the NATS-Bench simple archive; pass its directory "
            f"{path.parent} instead"
        )
    with path.open("rb") as stream:
        head = stream.read(4)
    if head.startswith(b"BZh"):
        return Nb201Format.NATS_PICKLE
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80\x02"):
        return Nb201Format.NB201_PTH
    if tarfile.is_tarfile(path):
        raise ConfigError(
            f"{path} is a tar archive; unpack it with 'tar xvf {path.name}' and pass the "
            "directory it creates"
        )
    raise ConfigError(
        f"{path} is not a NAS-Bench-201 file (it starts with bytes {head!r}); {_WHERE}"
    )


# -- turning ArchResults states into entries -----------------------------------------------------
def _final_acc(run: Mapping[str, Any], eval_set: str) -> float | None:
    acc = run["eval_acc1es"].get(f"{eval_set}@{int(run['epochs']) - 1}")
    return None if acc is None else float(acc) / 100.0


def _latency_s(run: Mapping[str, Any]) -> float | None:
    values = [float(v) for v in run.get("latency") or () if float(v) > 0]
    return statistics.fmean(values) if values else None


def _train_time_s(run: Mapping[str, Any]) -> float | None:
    times = run.get("train_times")
    if not times:
        return None
    return sum(float(s) for epoch, s in times.items() if int(epoch) < int(run["epochs"]))


def _mean(
    runs: Mapping[int, Mapping[str, Any]], value: Callable[[Mapping[str, Any]], Any]
) -> tuple[float | None, tuple[int, ...]]:
    """Mean of ``value(run)`` over the seeds where it is known, and those seeds."""
    known = {seed: v for seed, run in runs.items() if (v := value(run)) is not None}
    return (statistics.fmean(known.values()) if known else None), tuple(known)


def _entries(hp_states: Mapping[Any, Any]) -> dict[tuple[str, int], Nb201Entry]:
    """Entries of one architecture from ``{hp: ArchResults state}``."""
    out: dict[tuple[str, int], Nb201Entry] = {}
    for hp, state in hp_states.items():
        epochs = _HP_EPOCHS.get(str(hp))
        if epochs is None:
            continue
        runs: dict[str, dict[int, Mapping[str, Any]]] = defaultdict(dict)
        for (dataset, seed), run in sorted(state["all_results"].items()):
            runs[str(dataset)][int(seed)] = run
        for dataset, ((val_run, val_set), (test_run, test_set)) in _VAL_TEST.items():
            if val_run not in runs or test_run not in runs:
                continue
            val_acc, val_seeds = _mean(runs[val_run], partial(_final_acc, eval_set=val_set))
            if val_acc is None:
                continue
            test_acc, test_seeds = _mean(runs[test_run], partial(_final_acc, eval_set=test_set))
            params, _ = _mean(runs[val_run], lambda r: r.get("params"))
            flops, _ = _mean(runs[val_run], lambda r: r.get("flop"))
            latency_s, _ = _mean(runs[val_run], _latency_s)
            train_time_s, _ = _mean(runs[val_run], _train_time_s)
            out[(dataset, epochs)] = Nb201Entry(
                val_acc=val_acc,
                test_acc=test_acc,
                params=None if params is None else float(params) * 1e6,
                flops=None if flops is None else float(flops) * 1e6,
                latency_ms=None if latency_s is None else latency_s * 1e3,
                train_time_s=train_time_s,
                val_seeds=val_seeds,
                test_seeds=test_seeds,
            )
    if not all(math.isfinite(e.val_acc) for e in out.values()):
        raise ValueError("non-finite validation accuracy")
    return out


def _checked_entries(hp_states: Any, path: Path, what: str) -> dict[tuple[str, int], Nb201Entry]:
    try:
        return _entries(hp_states)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{path} is not a NAS-Bench-201 table: bad results for {what} ({exc!r})"
        ) from None


def _index(meta_archs: Any, path: Path) -> dict[str, int]:
    if not isinstance(meta_archs, list) or not meta_archs:
        raise ConfigError(f"{path} is not a NAS-Bench-201 table: no list of architectures")
    for arch in meta_archs:
        if not isinstance(arch, str) or _ops_of(arch) is None:
            raise ConfigError(
                f"{path} is not a NAS-Bench-201 topology table: architecture {arch!r} is not a "
                "cell string like |nor_conv_3x3~0|+|...|; (the NATS-Bench size space, "
                "NATS-sss-*, is not supported)"
            )
    return {arch: i for i, arch in enumerate(meta_archs)}


# -- the table -----------------------------------------------------------------------------------
class NasBench201Table:
    """Results of the NAS-Bench-201 cells, keyed by the benchmark's architecture string.

    Thread safety: look-ups may run from several threads; a simple-archive file read twice by
    racing threads gives the same entries.

    Attributes:
        path: The directory or file read.
        format: Its layout.
        available: The (dataset, epochs) pairs the file has results for.
    """

    def __init__(
        self,
        path: Path,
        format: Nb201Format,
        index: dict[str, int],
        entries: dict[int, dict[tuple[str, int], Nb201Entry]],
        available: frozenset[tuple[str, int]],
    ) -> None:
        self.path = path
        self.format = format
        self.available = available
        self._index = index
        self._entries = entries
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, arch_str: object) -> bool:
        return arch_str in self._index

    def arch_strings(self) -> Iterator[str]:
        """The architecture strings of the space, in the benchmark's index order."""
        return iter(self._index)

    def require(self, dataset: str, epochs: int) -> None:
        """Check the file has results for ``dataset`` at ``epochs``.

        Raises:
            ConfigError: If it does not; the message lists what it has.
        """
        if (dataset, epochs) not in self.available:
            have = ", ".join(f"{d}@{e}" for d, e in sorted(self.available)) or "nothing"
            raise ConfigError(
                f"{self.path.name} has no results for {dataset} at {epochs} epochs; it has "
                f"{have} (dataset@epochs)"
                + (
                    "; NAS-Bench-201-v1_0 has 12-epoch results only for cifar10-valid, "
                    "use NAS-Bench-201-v1_1-096897.pth or NATS-tss-v1_0-3ffb9-simple"
                    if epochs == 12 and ("cifar10-valid", 12) in self.available
                    else ""
                )
            )

    def entry(self, arch_str: str, dataset: str, epochs: int) -> Nb201Entry:
        """The results of ``arch_str`` on ``dataset`` after ``epochs`` epochs.

        Raises:
            EntryNotFoundError: If the table has no such result; the message says why.
        """
        index = self._index.get(arch_str)
        if index is None:
            raise EntryNotFoundError(f"{arch_str} is not among the {len(self)} architectures")
        found = self._arch_entries(index)
        try:
            return found[(dataset, epochs)]
        except KeyError:
            raise EntryNotFoundError(
                f"{arch_str} (index {index}) has no results for {dataset} at {epochs} epochs"
            ) from None

    def rows(self, dataset: str, epochs: int) -> dict[str, Nb201Entry]:
        """Every architecture's entry for ``dataset`` at ``epochs`` (for oracles and analyses).

        On the simple archive this reads every file not read yet (minutes the first time).
        """
        self.require(dataset, epochs)
        out: dict[str, Nb201Entry] = {}
        for arch_str, index in self._index.items():
            try:
                entry = self._arch_entries(index).get((dataset, epochs))
            except EntryNotFoundError:
                continue
            if entry is not None:
                out[arch_str] = entry
        return out

    def _arch_entries(self, index: int) -> dict[tuple[str, int], Nb201Entry]:
        found = self._entries.get(index)
        if found is not None:
            return found
        if self.format is not Nb201Format.NATS_SIMPLE:
            raise EntryNotFoundError(f"architecture index {index} was not evaluated in this file")
        found = _read_arch_file(self.path, index)
        with self._lock:
            self._entries[index] = found
        return found

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> NasBench201Table:
        """Open a published file or directory (the ``.pth`` and single pickle are read whole).

        Raises:
            ConfigError: If ``path`` is missing, is none of the layouts, holds anything but
                plain data, or has no results.
        """
        path = Path(path).expanduser().resolve()
        fmt = detect_format(path)
        if fmt is Nb201Format.NATS_SIMPLE:
            return cls._open_simple(path)
        raw = _read_pbz2(path) if fmt is Nb201Format.NATS_PICKLE else _read_pth(path)
        if not isinstance(raw, Mapping) or not isinstance(raw.get("arch2infos"), Mapping):
            what = type(raw).__name__ if not isinstance(raw, Mapping) else sorted(map(str, raw))
            raise ConfigError(
                f"{path} is not a NAS-Bench-201 table: expected a dict with 'meta_archs' and "
                f"'arch2infos', found {what}"
            )
        index = _index(raw.get("meta_archs"), path)
        entries = {
            int(i): _checked_entries(hp_states, path, f"architecture {i}")
            for i, hp_states in raw["arch2infos"].items()
        }
        available = frozenset(key for found in entries.values() for key in found)
        if not available:
            raise ConfigError(f"{path} is not a NAS-Bench-201 table: it holds no results")
        return cls(path, fmt, index, entries, available)

    @classmethod
    def _open_simple(cls, path: Path) -> NasBench201Table:
        meta = _read_pbz2(path / _META)
        if not isinstance(meta, Mapping):
            raise ConfigError(f"{path / _META} is not a NAS-Bench-201 table: not a dict")
        index = _index(meta.get("meta_archs"), path / _META)
        # The layout repeats for every architecture: the first file tells what the archive has.
        first = next((i for i in range(len(index)) if _arch_file(path, i) is not None), None)
        if first is None:
            raise ConfigError(
                f"{path} has {_META} but no architecture files (000000.pickle.pbz2, ...); "
                "was the archive fully unpacked?"
            )
        entries = {first: _read_arch_file(path, first)}
        available = frozenset(entries[first])
        if not available:
            raise ConfigError(f"{path} is not a NAS-Bench-201 table: it holds no results")
        return cls(path, Nb201Format.NATS_SIMPLE, index, entries, available)


def _arch_file(directory: Path, index: int) -> Path | None:
    for name in (f"{index:06d}.pickle.pbz2", f"{index}.pickle.pbz2"):
        if (directory / name).is_file():
            return directory / name
    return None


def _read_arch_file(directory: Path, index: int) -> dict[tuple[str, int], Nb201Entry]:
    path = _arch_file(directory, index)
    if path is None:
        raise EntryNotFoundError(f"{directory} has no file {index:06d}.pickle.pbz2")
    return _checked_entries(_read_pbz2(path), path, f"architecture {index}")


@cache
def _load(path: Path) -> NasBench201Table:
    return NasBench201Table.open(path)


def load_table(path: str | os.PathLike[str]) -> NasBench201Table:
    """The table at ``path``, opened once per process (keyed by the resolved path).

    Raises:
        ConfigError: As :meth:`NasBench201Table.open`.
    """
    return _load(Path(path).expanduser().resolve())
