"""The per-operation latency table of one space on one task, measured once per device.

FBNet (Wu et al., "FBNet: Hardware-Aware Efficient ConvNet Design via Differentiable Neural
Architecture Search", CVPR 2019) and ProxylessNAS (Cai et al., "ProxylessNAS: Direct Neural
Architecture Search on Target Task and Hardware", ICLR 2019) predict a network's latency as
the sum of its operations' latencies, each measured once at its input size. How a space's
models decompose into such entries is the space's to say (``SearchSpace.latency_names``,
``latency_entries``, ``latency_terms``); this module times the entries, stores them, and adds
them up.

With ONNX Runtime, every entry is stored net of one session call (the ``call`` entry, timed
on an identity model), which a whole model pays once.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from nasforge.architecture import Architecture
from nasforge.errors import LatencyTableError
from nasforge.latency.cache import digest, latency_cache_dir, read_table, write_table
from nasforge.latency.device import device_fingerprint
from nasforge.latency.timing import (
    check_timing,
    example_inputs,
    measure_latency,
    seeded,
    timing_device,
)
from nasforge.spaces.base import SearchSpace

__all__ = ["TABLE_FORMAT", "LatencyTable", "entry_names"]

TABLE_FORMAT = 1
"""Version of the stored table layout; a file of another version is re-measured."""

CALL = "call"
"""The entry of one ONNX Runtime session call (``onnxruntime`` tables only)."""


class _Identity(nn.Module):
    """Returns its input: one ONNX Runtime session call that computes nothing."""

    def forward(self, x: Tensor) -> Tensor:
        return x


def entry_names(space: SearchSpace, settings: Any, backend: str) -> set[str]:
    """The names of the entries a table of ``space`` holds for ``settings`` and ``backend``.

    Raises:
        ConfigError: If the space has no latency decomposition.
    """
    call = {CALL} if backend == "onnxruntime" else set()
    return space.latency_names(settings) | call


class LatencyTable:
    """Per-operation latency table of one space on one task, measured on this device.

    An entry is one op at the sizes it runs at in the task's model, or one fixed part of the
    network (see the space's ``latency_terms``). Build or load one with :meth:`for_task`;
    the instance is immutable and safe to share between threads.

    Attributes:
        space: The space whose architectures it predicts.
        hyper: The model settings it was measured for.
        key: Everything the table depends on: format, space, task and model sizes, timing
            settings and :func:`~nasforge.latency.device.device_fingerprint`.
        entries: Entry name -> latency in ms.
        path: The file it was read from or written to (``None`` if not stored).
        measurements: Entries measured to make this object (0 when read from its file).
        build_seconds: Time the table took to measure (when it was measured).
    """

    def __init__(
        self,
        *,
        space: SearchSpace,
        hyper: Any,
        key: Mapping[str, Any],
        entries: Mapping[str, float],
        path: Path | None = None,
        measurements: int = 0,
        build_seconds: float = 0.0,
    ) -> None:
        self.space = space
        self.hyper = hyper
        self.key = dict(key)
        self.entries = dict(entries)
        self.path = path
        self.measurements = measurements
        self.build_seconds = build_seconds

    @classmethod
    def for_task(
        cls,
        space: SearchSpace | str,
        task: Any,
        hyper: Any = None,
        *,
        backend: str = "torch",
        warmup: int = 3,
        repeats: int = 10,
        cache: str | os.PathLike[str] | None = None,
        refresh: bool = False,
        device: str = "cpu",
    ) -> LatencyTable:
        """The table of ``space`` on ``task``: read from the cache, or measured and stored.

        The file is ``<cache>/<space>-<digest of the key>.json``; it is used only if its
        stored key equals this call's (same device fingerprint, sizes and timing settings),
        else the table is measured again and the file replaced.

        Args:
            space: A space that predicts latency (``gnn``, ``nb201``), or its registered name.
            task: The task whose sizes the entries run at (a node-classification task for
                ``gnn``; for ``nb201`` any task with ``input_shape`` (C, H, W) and
                ``num_outputs``).
            hyper: The model settings (the space's defaults, as ``build``, if None).
            backend: One of :data:`~nasforge.latency.timing.BACKENDS`.
            warmup: Untimed calls before each entry's timing.
            repeats: Timed calls per entry (the median is kept).
            cache: Folder of the stored tables (default
                :func:`~nasforge.latency.cache.latency_cache_dir`).
            refresh: Measure again even if a matching file exists.
            device: The device spec (``cpu``, ``auto``, ``cuda``, ``cuda:N``) the torch
                backend runs the entries on (:func:`~nasforge.latency.timing.timing_device`);
                the device is part of the fingerprint, so each device has its own table.

        Raises:
            ConfigError: For a space without tables, a task or settings that do not fit it,
                an unknown backend, or ``"onnxruntime"`` without the ``onnx`` extra.
            LatencyTableError: If the stored file is corrupt (it is never silently used or
                replaced: delete it to re-measure), or an entry cannot run on the backend.
        """
        if isinstance(space, str):
            from nasforge.spaces.base import SPACES

            space = SPACES.create(space)
        hyper = hyper if hyper is not None else space.default_settings()
        check_timing(warmup, repeats)
        key: dict[str, Any] = {
            "format": TABLE_FORMAT,
            "space": space.name,
            "shape": space.latency_shape(task, hyper),
            "timing": {"warmup": warmup, "repeats": repeats},
            "device": device_fingerprint(backend, timing_device(backend, device)),
        }
        key = json.loads(json.dumps(key))  # as it reads back from the file
        folder = Path(cache) if cache is not None else latency_cache_dir()
        path = folder / f"{space.name}-{digest(key)}.json"
        if not refresh:
            stored = read_table(path, key, entry_names(space, hyper, backend))
            if stored is not None:
                entries, seconds = stored
                return cls(
                    space=space,
                    hyper=hyper,
                    key=key,
                    entries=entries,
                    path=path,
                    build_seconds=seconds,
                )
        start = time.perf_counter()
        entries = _measure(
            space,
            task,
            hyper,
            backend=backend,
            warmup=warmup,
            repeats=repeats,
            device=key["device"]["device"],
        )
        seconds = time.perf_counter() - start
        write_table(path, {"key": key, "entries": entries, "build_seconds": seconds})
        return cls(
            space=space,
            hyper=hyper,
            key=key,
            entries=entries,
            path=path,
            measurements=len(entries),
            build_seconds=seconds,
        )

    def terms(self, arch: Architecture) -> Counter[str]:
        """How many times the model of ``arch`` runs each entry.

        Raises:
            InvalidArchitectureError: If ``arch`` is not in the table's space.
        """
        terms = self.space.latency_terms(arch, self.hyper)
        if CALL in self.entries:  # ONNX Runtime: one session call per model
            terms[CALL] = 1
        return terms

    def breakdown(self, arch: Architecture) -> dict[str, float]:
        """Predicted ms of ``arch`` per entry (count x entry latency)."""
        return {name: count * self.entries[name] for name, count in self.terms(arch).items()}

    def predict(self, arch: Architecture) -> float:
        """Predicted latency of ``arch`` in ms: the sum of its :meth:`breakdown`.

        Raises:
            InvalidArchitectureError: If ``arch`` is not in the table's space.
        """
        return sum(self.breakdown(arch).values())


def _measure(
    space: SearchSpace,
    task: Any,
    hyper: Any,
    *,
    backend: str,
    warmup: int,
    repeats: int,
    device: str = "cpu",
) -> dict[str, float]:
    with seeded(0):  # fixed weights, and the caller's RNG untouched
        plan = list(space.latency_entries(task, hyper))
    entries: dict[str, float] = {}
    for entry in plan:
        module = entry.module.to(device) if backend == "torch" else entry.module
        try:
            entries[entry.name] = measure_latency(
                module, entry.inputs, backend=backend, warmup=warmup, repeats=repeats
            )
        except LatencyTableError as exc:
            raise LatencyTableError(f"table entry {entry.name!r}: {exc}") from exc
    if backend == "onnxruntime":  # one session call per model, not per entry
        call = measure_latency(
            _Identity(), example_inputs(task)[:1], backend=backend, warmup=warmup, repeats=repeats
        )
        entries = {name: max(0.0, ms - call) for name, ms in entries.items()}
        entries[CALL] = call
    for entry in plan:  # parts timed together with an op: keep their own overhead
        if entry.minus is not None:
            entries[entry.name] = max(0.0, entries[entry.name] - entries[entry.minus])
    return entries
