"""Inference latency: measured on this machine, and predicted from a per-operation table.

Measured: :func:`measure_latency` times a built model with PyTorch or, with the ``onnx``
extra, with ONNX Runtime (the model exported to a temporary ONNX file). Predicted: a
:class:`LatencyTable` holds the latency of every operation a space can place, at the sizes
of one task, plus the fixed parts of the network, measured once per device and stored; the
predicted latency of an architecture is the sum over what its model runs (FBNet: Wu et al.,
"FBNet: Hardware-Aware Efficient ConvNet Design via Differentiable Neural Architecture
Search", CVPR 2019; ProxylessNAS: Cai et al., "ProxylessNAS: Direct Neural Architecture
Search on Target Task and Hardware", ICLR 2019).

Inputs are those :class:`~nasforge.evaluators.training.TrainingEvaluator` measures
``latency_ms`` on: the whole graph for graph tasks, one example (batch size 1) for images.

How a model decomposes (what ``space.build(arch, task, hyper)`` runs for the canonical
architecture):

* ``gnn`` (:class:`~nasforge.spaces.gnn_model.GnnModel`): ``pre`` (input dropout and the
  pre-processing layers); per non-``skip`` node ``<op>/raw`` (the op on the raw features,
  no pre-processing) or ``<op>/hidden`` (``BatchNorm -> ReLU -> dropout -> op`` on a hidden
  representation); ``out/<k>`` for the ``k`` leaves that reach the output (concatenation,
  ReLU, output and post-processing layers). ``skip`` nodes cost nothing.
* ``nb201`` (:class:`~nasforge.spaces.nb201_model.Nb201Model`): ``stem``, ``reduce/1``,
  ``reduce/2`` and ``head`` once; in each stage ``s`` and for each of its N cells either
  ``zero_cell/s`` (no live edge) or ``cell/s`` (the cell's own overhead) plus ``<op>/s`` per
  live edge and ``add/s`` per extra input summed into a node. Dead edges cost nothing, as in
  the built cell.

With ONNX Runtime, every entry is stored net of one session call (the ``call`` entry, timed
on an identity model), which a whole model pays once.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import math
import os
import platform
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError, NasforgeError
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.gnn import GnnSpace
from nasforge.spaces.gnn_model import GnnHyper, GnnModel
from nasforge.spaces.gnn_model import make_op as make_gnn_op
from nasforge.spaces.nb201 import NB201_EDGES, Nb201Hyper, Nb201Space, prune_dead_edges
from nasforge.spaces.nb201_model import Nb201Cell, Nb201Model
from nasforge.spaces.nb201_model import make_op as make_cell_op
from nasforge.tasks.graph import NodeClassificationTask, cache_dir
from nasforge.tasks.supervised import SupervisedTask
from nasforge.train.cost import measure_latency_ms

__all__ = [
    "BACKENDS",
    "LatencyComparison",
    "LatencyRow",
    "LatencyTable",
    "LatencyTableError",
    "compare_latency",
    "device_fingerprint",
    "example_inputs",
    "latency_cache_dir",
    "latency_sample",
    "measure_architecture",
    "measure_latency",
]

BACKENDS = ("torch", "onnxruntime")
"""Where latency is measured: PyTorch eager, or ONNX Runtime's CPU execution provider."""

TABLE_FORMAT = 1
"""Version of the stored table layout; a file of another version is re-measured."""

_ONNX_OPSET = 17
_CELL_OPS = ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
_ONLY_SKIP = ("none", "none", "none", "skip_connect", "none", "none")  # out = x


class LatencyTableError(NasforgeError):
    """A stored latency table cannot be used (unreadable or corrupt), or an entry cannot be
    measured on the chosen backend."""


# -- measuring ------------------------------------------------------------------------------
def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"unknown latency backend {backend!r}; valid: {', '.join(BACKENDS)}")


def _check_timing(warmup: int, repeats: int) -> None:
    for name, value, low in (("warmup", warmup, 0), ("repeats", repeats, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")


def _onnxruntime() -> Any:
    """The ``onnxruntime`` module, or a ConfigError that says how to install it."""
    try:
        return importlib.import_module("onnxruntime")
    except ImportError:
        raise ConfigError(
            "the onnxruntime latency backend needs the onnx extra: pip install 'nasforge[onnx]' "
            "(or use backend 'torch')"
        ) from None


def _onnx_runner(model: nn.Module, inputs: tuple[Tensor, ...]) -> Callable[[], object]:
    """Export ``model`` to a temporary ONNX file and return a call of an ONNX Runtime session.

    Uses PyTorch's TorchScript-based exporter (``dynamo=False``): the ``torch.export`` one
    needs the ``onnxscript`` package, which the ``onnx`` extra does not install.
    """
    ort = _onnxruntime()
    names = [f"input_{i}" for i in range(len(inputs))]
    with tempfile.TemporaryDirectory(prefix="nasforge-onnx-") as folder:
        path = Path(folder) / "model.onnx"
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # the exporter's deprecation/tracer warnings
                torch.onnx.export(
                    model,
                    inputs,
                    str(path),
                    dynamo=False,
                    input_names=names,
                    opset_version=_ONNX_OPSET,
                )
        except Exception as exc:
            raise LatencyTableError(
                f"cannot export {type(model).__name__} to ONNX (opset {_ONNX_OPSET}): "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
                "use backend 'torch' for this model"
            ) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    wanted = {i.name for i in session.get_inputs()}  # the exporter drops unused inputs
    feeds = {n: t.detach().cpu().numpy() for n, t in zip(names, inputs, strict=True) if n in wanted}

    def run() -> object:
        return session.run(None, feeds)

    return run


def measure_latency(
    model: nn.Module,
    inputs: Tensor | Sequence[Tensor],
    *,
    backend: str = "torch",
    warmup: int = 3,
    repeats: int = 10,
) -> float:
    """Median inference time of ``model(*inputs)`` in ms on this machine.

    The model runs in eval mode without gradients (its mode is restored afterwards). With
    ``backend="torch"`` this is :func:`nasforge.train.cost.measure_latency_ms`, what
    :class:`~nasforge.evaluators.training.TrainingEvaluator` reports as ``latency_ms``; with
    ``"onnxruntime"`` the model is exported to ONNX and run by ONNX Runtime's
    ``CPUExecutionProvider`` with as many intra-op threads as PyTorch uses
    (``torch.get_num_threads()``).

    Args:
        model: The model to time.
        inputs: Its positional inputs (one tensor or a sequence).
        backend: One of :data:`BACKENDS`.
        warmup: Untimed calls first.
        repeats: Timed calls; the median is returned.

    Raises:
        ConfigError: For an unknown backend, bad counts, or ``"onnxruntime"`` without the
            ``onnx`` extra installed.
        LatencyTableError: If the model cannot be exported to ONNX.
    """
    _check_backend(backend)
    _check_timing(warmup, repeats)
    args = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    was_training = model.training
    model.eval()
    try:
        if backend == "torch":

            def forward() -> object:
                return model(*args)

        else:
            forward = _onnx_runner(model, args)
        return measure_latency_ms(forward, warmup=warmup, repeats=repeats)
    finally:
        model.train(was_training)


def example_inputs(task: Any) -> tuple[Tensor, ...]:
    """The inputs latency is measured on: ``(x, edge_index)`` of the whole graph for a
    :class:`NodeClassificationTask`, one validation example ``(1, C, H, W)`` for a
    :class:`SupervisedTask`, else one random example of ``task.input_shape`` (seed 0).

    Raises:
        ConfigError: If ``task`` is none of these.
    """
    if isinstance(task, NodeClassificationTask):
        return task.data.x, task.data.edge_index
    if isinstance(task, SupervisedTask):
        return (task.x_val[:1],)
    shape = getattr(task, "input_shape", None)
    if shape is None:
        raise ConfigError(
            f"cannot make example inputs for {type(task).__name__}: expected a node "
            "classification task, a supervised task, or an object with input_shape"
        )
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(1, *(int(s) for s in shape), generator=gen),)


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed PyTorch's global generator inside, leaving the caller's state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def measure_architecture(
    space: SearchSpace,
    arch: Architecture,
    task: Any,
    hyper: Any = None,
    *,
    backend: str = "torch",
    warmup: int = 3,
    repeats: int = 10,
) -> float:
    """Measured latency (ms) of ``space.build(arch, task, hyper)`` on :func:`example_inputs`.

    Raises:
        ConfigError: As :func:`measure_latency`, or if the space cannot build ``arch``.
        LatencyTableError: If the model cannot be exported to ONNX.
    """
    with _seeded(0):
        model = space.build(arch, task, _default_hyper(space, hyper))  # type: ignore[attr-defined]
    return measure_latency(
        model, example_inputs(task), backend=backend, warmup=warmup, repeats=repeats
    )


# -- the device fingerprint and the cache ---------------------------------------------------
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def device_fingerprint(backend: str = "torch") -> dict[str, Any]:
    """What a latency table depends on besides the model: CPU model, core counts, PyTorch's
    thread count, library versions and the backend.

    Raises:
        ConfigError: For an unknown backend, or ``"onnxruntime"`` without the extra.
    """
    _check_backend(backend)
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    fingerprint: dict[str, Any] = {
        "cpu": _cpu_model(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "usable_cpus": len(affinity) if affinity is not None else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torch_geometric": _version("torch-geometric"),
        "backend": backend,
    }
    if backend == "onnxruntime":
        fingerprint["onnxruntime"] = str(_onnxruntime().__version__)
    return fingerprint


def latency_cache_dir() -> Path:
    """Where latency tables are stored: ``$NASFORGE_CACHE/latency`` (default
    ``~/.cache/nasforge/latency``)."""
    return cache_dir() / "latency"


def _digest(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


# -- the table ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Entry:
    """One table entry to time: a module and its inputs."""

    module: nn.Module
    inputs: tuple[Tensor, ...]


class _Pre(nn.Module):
    """``GnnModel``'s input dropout and pre-processing layers."""

    def __init__(self, model: GnnModel) -> None:
        super().__init__()
        self.pre, self.dropout = model.pre, model.dropout

    def forward(self, x: Tensor) -> Tensor:
        x = F.dropout(x, p=self.dropout, training=self.training)
        for i, layer in enumerate(self.pre):
            x = layer(x)
            if i < len(self.pre) - 1:
                x = F.elu(x)
        return x


class _HiddenOp(nn.Module):
    """A ``gnn`` op on a hidden representation: ``BatchNorm -> ReLU -> dropout -> op``."""

    def __init__(self, op: nn.Module, dim: int, dropout: float) -> None:
        super().__init__()
        self.norm, self.op, self.dropout = nn.BatchNorm1d(dim), op, dropout

    def forward(self, h: Tensor, edge_index: Tensor) -> Tensor:
        h = F.dropout(F.relu(self.norm(h)), p=self.dropout, training=self.training)
        out: Tensor = self.op(h, edge_index)
        return out


class _Out(nn.Module):
    """``GnnModel``'s output: concatenated leaves, ReLU, output and post-processing layers."""

    def __init__(self, model: GnnModel) -> None:
        super().__init__()
        self.out, self.post = model.out, model.post

    def forward(self, *leaves: Tensor) -> Tensor:
        out: Tensor = self.out(F.relu(torch.cat(leaves, dim=1)))
        for i, layer in enumerate(self.post):
            out = layer(out)
            if i < len(self.post) - 1:
                out = F.elu(out)
        return out


class _Head(nn.Module):
    """``Nb201Model``'s head: BatchNorm, ReLU, global average pooling, classifier."""

    def __init__(self, model: Nb201Model) -> None:
        super().__init__()
        self.lastact, self.pool, self.classifier = (
            model.lastact,
            model.global_pooling,
            model.classifier,
        )

    def forward(self, h: Tensor) -> Tensor:
        logits: Tensor = self.classifier(self.pool(self.lastact(h)).flatten(1))
        return logits


class _Identity(nn.Module):
    """Returns its input: one ONNX Runtime session call that computes nothing."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class _Add(nn.Module):
    """One sum of two node inputs in a cell."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a + b


def _default_hyper(space: SearchSpace, hyper: Any) -> Any:
    if hyper is not None:
        return hyper
    if isinstance(space, GnnSpace):
        return GnnHyper()
    if isinstance(space, Nb201Space):
        return Nb201Hyper()
    return None


def _gnn_structure(links: Sequence[int], ops: Sequence[str], hyper: GnnHyper) -> Counter[str]:
    """The entries a :class:`GnnModel` of ``(links, ops)`` runs (mirrors its constructor)."""
    terms: Counter[str] = Counter({"pre": 1})
    is_input, is_raw = [True], [hyper.pre == 0]
    for link, op in zip(links, ops, strict=True):
        if op == "skip":
            is_input.append(is_input[link])
            is_raw.append(is_raw[link])
            continue
        terms[f"{op}/{'raw' if is_raw[link] else 'hidden'}"] += 1
        is_input.append(False)
        is_raw.append(False)
    used = set(links)
    leaves = sum(1 for v in range(1, len(ops) + 1) if v not in used and not is_input[v])
    terms[f"out/{leaves}"] += 1
    return terms


def _nb201_structure(ops: Sequence[str], hyper: Nb201Hyper) -> Counter[str]:
    """The entries an :class:`Nb201Model` of the cell ``ops`` runs (mirrors its cells)."""
    live = prune_dead_edges(tuple(ops))
    n = hyper.cells_per_stage
    terms: Counter[str] = Counter({"stem": 1, "reduce/1": 1, "reduce/2": 1, "head": 1})
    inputs = Counter(
        target for op, (target, _) in zip(live, NB201_EDGES, strict=True) if op != "none"
    )
    for stage in range(3):
        if not inputs:
            terms[f"zero_cell/{stage}"] += n
            continue
        terms[f"cell/{stage}"] += n
        for op in live:
            if op != "none":
                terms[f"{op}/{stage}"] += n
        adds = sum(count - 1 for count in inputs.values())
        if adds:
            terms[f"add/{stage}"] += n * adds
    return terms


def _gnn_entries(
    space: GnnSpace, task: NodeClassificationTask, hyper: GnnHyper
) -> Iterator[tuple[str, _Entry]]:
    x, edge_index = task.data.x, task.data.edge_index  # (N, F), (2, E)
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(task.num_nodes, hyper.hidden, generator=gen)  # (N, D)
    dim, heads = hyper.hidden, hyper.gat_heads

    def reference(leaves: int) -> GnnModel:
        # every node on the input: `leaves` fc leaves, the rest skips that forward the input
        ops = ["fc"] * leaves + ["skip"] * (space.n_nodes - leaves)
        return GnnModel([0] * space.n_nodes, ops, task.num_features, task.num_classes, hyper)

    yield "pre", _Entry(_Pre(reference(1)), (x,))
    for op in space.ops:
        if op == "skip":
            continue
        if hyper.pre == 0:  # ops on the raw features exist only without pre-processing
            layer = make_gnn_op(op, task.num_features, dim, gat_heads=heads)
            yield f"{op}/raw", _Entry(layer, (x, edge_index))
        layer = _HiddenOp(make_gnn_op(op, dim, dim, gat_heads=heads), dim, hyper.dropout)
        yield f"{op}/hidden", _Entry(layer, (hidden, edge_index))
    for k in range(1, space.n_nodes + 1):
        yield f"out/{k}", _Entry(_Out(reference(k)), (hidden,) * k)


def _nb201_entries(task: Any, hyper: Nb201Hyper) -> Iterator[tuple[str, _Entry]]:
    (image,) = example_inputs(task)  # (1, C, H, W)
    c, n = hyper.channels, hyper.cells_per_stage
    model = Nb201Model(("none",) * 6, image.shape[1], task.num_outputs, hyper).eval()
    reduce_1, reduce_2 = model.cells[n], model.cells[2 * n + 1]
    with torch.no_grad():  # the input of each stage: after the stem, after each reduction
        h0 = model.stem(image)  # (1, C, H, W)
        h1 = reduce_1(h0)  # (1, 2C, H/2, W/2)
        h2 = reduce_2(h1)  # (1, 4C, H/4, W/4)
    yield "stem", _Entry(model.stem, (image,))
    yield "reduce/1", _Entry(reduce_1, (h0,))
    yield "reduce/2", _Entry(reduce_2, (h1,))
    yield "head", _Entry(_Head(model), (h2,))
    gen = torch.Generator().manual_seed(0)
    for stage, (given, width) in enumerate(zip((h0, h1, h2), (c, 2 * c, 4 * c), strict=True)):
        h = torch.randn(given.shape, generator=gen)  # (1, C_s, H_s, W_s)
        for op in _CELL_OPS:
            yield f"{op}/{stage}", _Entry(make_cell_op(op, width), (h,))
        yield f"add/{stage}", _Entry(_Add(), (h, h.clone()))
        yield f"zero_cell/{stage}", _Entry(Nb201Cell(("none",) * 6, width), (h,))
        # timed as the one-skip cell, stored minus its skip op (see _measure)
        yield f"cell/{stage}", _Entry(Nb201Cell(_ONLY_SKIP, width), (h,))


def _entry_names(space: SearchSpace, hyper: Any, backend: str) -> set[str]:
    """The names of the entries :func:`_measure` makes for ``space``, ``hyper``, ``backend``."""
    call = {"call"} if backend == "onnxruntime" else set()
    if isinstance(space, GnnSpace):
        kinds = ("raw", "hidden") if hyper.pre == 0 else ("hidden",)
        ops = {f"{op}/{kind}" for op in space.ops if op != "skip" for kind in kinds}
        return {"pre", *ops, *(f"out/{k}" for k in range(1, space.n_nodes + 1)), *call}
    per_stage = (*_CELL_OPS, "add", "zero_cell", "cell")
    stages = {f"{part}/{stage}" for part in per_stage for stage in range(3)}
    return {"stem", "reduce/1", "reduce/2", "head", *stages, *call}


def _shape_of(space: SearchSpace, task: Any, hyper: Any) -> dict[str, Any]:
    """The task and model sizes a table is valid for (part of its key)."""
    if isinstance(space, GnnSpace):
        if not isinstance(task, NodeClassificationTask):
            raise ConfigError(
                f"a latency table of space {space.name!r} needs a node-classification task "
                f"(the whole graph is timed), got {type(task).__name__}"
            )
        if not isinstance(hyper, GnnHyper):
            raise ConfigError(
                f"space {space.name!r} takes a GnnHyper as hyper, got {type(hyper).__name__}"
            )
        return {
            "ops": list(space.ops),
            "n_nodes": space.n_nodes,
            "nodes": task.num_nodes,
            "edges": int(task.data.edge_index.shape[1]),
            "features": task.num_features,
            "classes": task.num_classes,
            "hyper": {k: v for k, v in hyper.to_dict().items() if k != "dropout"},
        }
    if isinstance(space, Nb201Space):
        if not isinstance(hyper, Nb201Hyper):
            raise ConfigError(
                f"space {space.name!r} takes an Nb201Hyper as hyper, got {type(hyper).__name__}"
            )
        shape = getattr(task, "input_shape", None)
        if shape is None or len(shape) != 3:
            raise ConfigError(
                f"a latency table of space {space.name!r} needs an image task with input_shape "
                f"(C, H, W), got {type(task).__name__} with input_shape {shape}"
            )
        return {
            "input_shape": [int(s) for s in shape],
            "outputs": int(task.num_outputs),
            "hyper": hyper.to_dict(),
        }
    raise ConfigError(
        f"latency tables exist for the gnn and nb201 spaces, not {space.name!r} "
        "(measure_latency times any built model)"
    )


class LatencyTable:
    """Per-operation latency table of one space on one task, measured on this device.

    FBNet (Wu et al., CVPR 2019) and ProxylessNAS (Cai et al., ICLR 2019) predict a network's
    latency as the sum of its operations' latencies, each measured once at its input size.
    Here an entry is one op at the sizes it runs at in the task's model, or one fixed part
    of the network (see the module docstring). Build or load one with :meth:`for_task`; the
    instance is immutable and safe to share between threads.

    Attributes:
        space: The space whose architectures it predicts.
        hyper: The model hyperparameters it was measured for.
        key: Everything the table depends on: format, space, task and model sizes, timing
            settings and :func:`device_fingerprint`.
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
    ) -> LatencyTable:
        """The table of ``space`` on ``task``: read from the cache, or measured and stored.

        The file is ``<cache>/<space>-<digest of the key>.json``; it is used only if its
        stored key equals this call's (same device fingerprint, sizes and timing settings),
        else the table is measured again and the file replaced.

        Args:
            space: A ``gnn`` or ``nb201`` space, or its registered name.
            task: A :class:`NodeClassificationTask` for ``gnn``; for ``nb201`` any task with
                ``input_shape`` (C, H, W) and ``num_outputs``.
            hyper: The model hyperparameters (the space's defaults, as ``build``, if None).
            backend: One of :data:`BACKENDS`.
            warmup: Untimed calls before each entry's timing.
            repeats: Timed calls per entry (the median is kept).
            cache: Folder of the stored tables (default :func:`latency_cache_dir`).
            refresh: Measure again even if a matching file exists.

        Raises:
            ConfigError: For a space without tables, a task or hyper that does not fit it,
                an unknown backend, or ``"onnxruntime"`` without the ``onnx`` extra.
            LatencyTableError: If the stored file is corrupt (it is never silently used or
                replaced: delete it to re-measure), or an entry cannot run on the backend.
        """
        if isinstance(space, str):
            from nasforge._builtins import SPACES

            space = SPACES.create(space)
        hyper = _default_hyper(space, hyper)
        _check_timing(warmup, repeats)
        key: dict[str, Any] = {
            "format": TABLE_FORMAT,
            "space": space.name,
            "shape": _shape_of(space, task, hyper),
            "timing": {"warmup": warmup, "repeats": repeats},
            "device": device_fingerprint(backend),
        }
        key = json.loads(json.dumps(key))  # as it reads back from the file
        folder = Path(cache) if cache is not None else latency_cache_dir()
        path = folder / f"{space.name}-{_digest(key)}.json"
        if not refresh:
            stored = _read(path, key, _entry_names(space, hyper, backend))
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
        entries = _measure(space, task, hyper, backend=backend, warmup=warmup, repeats=repeats)
        seconds = time.perf_counter() - start
        _write(path, {"key": key, "entries": entries, "build_seconds": seconds})
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
        space = self.space
        space.validate(arch)
        if isinstance(space, GnnSpace):
            links, ops = space.genes(space.canonicalize(arch))
            terms = _gnn_structure(links, ops, self.hyper)
        elif isinstance(space, Nb201Space):
            terms = _nb201_structure(space.genes(space.canonicalize(arch)), self.hyper)
        else:
            raise ConfigError(f"no latency decomposition for space {space.name!r}")
        if "call" in self.entries:  # ONNX Runtime: one session call per model
            terms["call"] = 1
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
    space: SearchSpace, task: Any, hyper: Any, *, backend: str, warmup: int, repeats: int
) -> dict[str, float]:
    with _seeded(0):  # fixed weights, and the caller's RNG untouched
        if isinstance(space, GnnSpace):
            plan = list(_gnn_entries(space, task, hyper))
        else:
            plan = list(_nb201_entries(task, hyper))
    entries: dict[str, float] = {}
    for name, entry in plan:
        try:
            entries[name] = measure_latency(
                entry.module, entry.inputs, backend=backend, warmup=warmup, repeats=repeats
            )
        except LatencyTableError as exc:
            raise LatencyTableError(f"table entry {name!r}: {exc}") from exc
    if backend == "onnxruntime":  # one session call per model, not per entry
        call = measure_latency(
            _Identity(), example_inputs(task)[:1], backend=backend, warmup=warmup, repeats=repeats
        )
        entries = {name: max(0.0, ms - call) for name, ms in entries.items()}
        entries["call"] = call
    for name in list(entries):
        if name.startswith("cell/"):  # the one-skip cell minus its skip: the cell's overhead
            stage = name.partition("/")[2]
            entries[name] = max(0.0, entries[name] - entries[f"skip_connect/{stage}"])
    return entries


def _corrupt(path: Path, reason: str) -> LatencyTableError:
    return LatencyTableError(
        f"latency table {path} is corrupt ({reason}); delete the file to measure the table again"
    )


def _read(
    path: Path, key: Mapping[str, Any], names: set[str]
) -> tuple[dict[str, float], float] | None:
    """The entries and build time stored at ``path`` for ``key``; ``None`` if there is no
    file or it holds another key (another device or settings)."""
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


def _write(path: Path, data: Mapping[str, Any]) -> None:
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


# -- predicted against measured -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LatencyComparison:
    """How well predicted latencies match measured ones.

    Attributes:
        n: Number of architectures.
        mape: Mean absolute percentage error of the prediction (%).
        median_ape: Median absolute percentage error (%).
        spearman: Spearman rank correlation of predicted and measured.
        kendall: Kendall's tau of predicted and measured.
    """

    n: int
    mape: float
    median_ape: float
    spearman: float
    kendall: float


def compare_latency(predicted: Sequence[float], measured: Sequence[float]) -> LatencyComparison:
    """Errors and rank correlations of ``predicted`` against ``measured`` (same order).

    Raises:
        ConfigError: If the sequences differ in length, have fewer than 2 values, or
            ``measured`` holds a value <= 0.
    """
    from scipy.stats import kendalltau, spearmanr

    if len(predicted) != len(measured) or len(measured) < 2:
        raise ConfigError(
            f"need two sequences of equal length >= 2, got {len(predicted)} predicted and "
            f"{len(measured)} measured"
        )
    pred, meas = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    if not (meas > 0).all():
        raise ConfigError("measured latencies must be > 0")
    ape = np.abs(pred - meas) / meas * 100
    return LatencyComparison(
        n=len(meas),
        mape=float(ape.mean()),
        median_ape=float(np.median(ape)),
        spearman=float(spearmanr(pred, meas).statistic),
        kendall=float(kendalltau(pred, meas).statistic),
    )


@dataclass(frozen=True, slots=True)
class LatencyRow:
    """One architecture of :func:`latency_sample`: predicted and measured latency in ms."""

    arch: Architecture
    predicted: float
    measured: float


def latency_sample(
    task: str | Any,
    space: str | SearchSpace | None = None,
    *,
    n: int = 20,
    backend: str = "torch",
    seed: int = 0,
    warmup: int = 3,
    repeats: int = 10,
    data_root: str | os.PathLike[str] | None = None,
    hyper: Any = None,
    cache: str | os.PathLike[str] | None = None,
    refresh: bool = False,
) -> tuple[LatencyTable, list[LatencyRow]]:
    """Build or load the table of ``task``, then predict and measure ``n`` random
    architectures of distinct canonical keys (what ``nasforge latency`` prints).

    Args:
        task: A task spec (see :data:`nasforge.tasks.resolve.TASK_FORMS`) or a task object.
        space: A space or its name; default: the task's (``gnn`` or ``nb201``).
        n: Architectures to draw (fewer if the space runs out).
        backend: One of :data:`BACKENDS`.
        seed: Seed of the sample.
        warmup: Untimed calls before each timing.
        repeats: Timed calls per timing.
        data_root: Folder holding ``<Name>/raw/`` for Planetoid tasks.
        hyper: Model settings; default: the task's (e.g. NAS-Bench-Graph's for Planetoid,
            the small network for images) when ``space`` is the task's kind of space.
        cache: Folder of stored tables (default :func:`latency_cache_dir`).
        refresh: Measure the table again even if it is stored.

    Raises:
        ConfigError: For an unknown task, space or backend, a space without tables, or
            ``n < 1``.
        LatencyTableError: As :meth:`LatencyTable.for_task`.
    """
    from nasforge._builtins import SPACES
    from nasforge.tasks.resolve import resolve_task

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be an integer >= 1, got {n!r}")
    default_hyper: Any = None
    if isinstance(task, str):
        setup = resolve_task(task, data_root=data_root, seed=seed)
        task, default_space, default_hyper = setup.task, setup.space, setup.hyper
    elif isinstance(task, NodeClassificationTask):
        default_space = "gnn"
    else:
        default_space = "nb201"
    if space is None:
        space = default_space
    space_obj = SPACES.create(space) if isinstance(space, str) else space
    if hyper is None and type(space_obj) is type(SPACES.create(default_space)):
        hyper = default_hyper
    table = LatencyTable.for_task(
        space_obj,
        task,
        hyper,
        backend=backend,
        warmup=warmup,
        repeats=repeats,
        cache=cache,
        refresh=refresh,
    )
    rows: list[LatencyRow] = []
    for arch in space_obj.sample_distinct(n, np.random.default_rng(seed)):
        measured = measure_architecture(
            space_obj,
            arch,
            task,
            table.hyper,
            backend=backend,
            warmup=warmup,
            repeats=repeats,
        )
        rows.append(LatencyRow(arch, table.predict(arch), measured))
    return table, rows
