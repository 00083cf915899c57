"""A universal architecture encoding: any space's architecture as the graph of the computation
its model performs, and that graph as a fixed-size vector (after GENNAPE and ONNX-Net: encode
the network, not the genotype).

No per-space code: the space builds the model (``space.build``) for a small probe task of its
modality, the model runs once on the probe's inputs under a
:class:`~torch.utils._python_dispatch.TorchDispatchMode` that records every ATen operation it
calls (its name and the rank of its output) and which earlier operation produced each of its
tensor inputs. That dataflow graph becomes a vector by Weisfeiler-Lehman relabelling: each
node's label is combined with its inputs' labels for ``iterations`` rounds, and every label of
every round is hashed into one of ``dim`` buckets (counts, log-scaled).

Equivalent architectures build the same network (the space contract), so they get equal
encodings; networks that differ in their operations or their wiring get different ones
(unless two labels collide in a bucket). Encodings are cached by canonical key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from nasforge.architecture import Architecture
    from nasforge.spaces.base import SearchSpace

__all__ = ["ComputationGraph", "UniversalEncoder", "computation_graph", "wl_vector"]

DEFAULT_DIM = 256
DEFAULT_ITERATIONS = 3
_GRAPH_NODES, _FEATURES, _CLASSES = 12, 8, 3
_IMAGE_SHAPE, _TABLE_FEATURES = (3, 8, 8), 16


@dataclass(frozen=True)
class ComputationGraph:
    """Operations (labels ``"op:shape"``: the ATen operation and its output's shape), the
    probe's inputs (``"input:shape"``), parameters and other tensors the model did not compute
    (``"leaf:shape"``), and the dataflow between them."""

    labels: tuple[str, ...]
    inputs: tuple[tuple[int, ...], ...]  # per node, the nodes its tensor inputs come from


@dataclass(frozen=True)
class _Probe:
    """A small task of one modality: what ``build`` reads, and the model's inputs."""

    num_features: int = _FEATURES
    num_classes: int = _CLASSES
    input_shape: tuple[int, ...] = ()
    num_outputs: int = _CLASSES
    extra: dict[str, Any] = field(default_factory=dict)


def _probe_inputs(modality: str) -> tuple[_Probe, tuple[torch.Tensor, ...]]:
    import torch

    gen = torch.Generator().manual_seed(0)
    if modality == "graph":
        n = _GRAPH_NODES
        src = torch.arange(n)
        ring = torch.stack([src, (src + 1) % n])
        chords = torch.stack([src[::3], (src[::3] + n // 2) % n])
        edges = torch.cat([ring, ring.flip(0), chords, chords.flip(0)], dim=1)
        x = torch.randn(n, _FEATURES, generator=gen)
        return _Probe(), (x, edges)
    if modality in ("image", "tabular"):
        shape: tuple[int, ...] = _IMAGE_SHAPE if modality == "image" else (_TABLE_FEATURES,)
        return _Probe(input_shape=shape), (torch.randn(2, *shape, generator=gen),)
    raise ConfigError(
        f"the universal encoding needs a space whose models take graphs, images or tables; "
        f"got modality {modality!r}"
    )


def computation_graph(space: SearchSpace, arch: Architecture) -> ComputationGraph:
    """The dataflow graph of ``arch``'s model on a probe task of the space's modality.

    Raises:
        ConfigError: If the space builds no models (a table-only space).
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    if space.modality is None:
        raise ConfigError(
            f"space {space.name!r} builds no models, so it has no universal encoding; use "
            "its own encoding (encoding='auto')"
        )
    probe, inputs = _probe_inputs(space.modality)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = space.build(arch, probe)
    model.train()  # dropout, batch statistics: what training computes
    labels: list[str] = []
    edges: list[tuple[int, ...]] = []
    producer: dict[int, int] = {}
    alive: list[Any] = []  # keeps recorded tensors alive, so their ids stay theirs

    def node_of(t: torch.Tensor) -> int:
        found = producer.get(id(t))
        if found is None:
            kind = "input" if any(t is i for i in inputs) else "leaf"
            found = producer[id(t)] = len(labels)
            labels.append(f"{kind}:{_shape(t)}")
            edges.append(())
            alive.append(t)
        return found

    class Recorder(TorchDispatchMode):  # type: ignore[no-untyped-call]
        def __torch_dispatch__(
            self,
            func: Any,
            types: Any,
            args: tuple[Any, ...] = (),
            kwargs: dict[str, Any] | None = None,
        ) -> Any:
            out = func(*args, **(kwargs or {}))
            sources = tuple(
                node_of(a) for a in tree_flatten((args, kwargs or {}))[0] if _is_tensor(a)
            )
            outs = [o for o in tree_flatten(out)[0] if _is_tensor(o)]
            me = len(labels)
            labels.append(f"{func.overloadpacket.__name__}:{_shape(outs[0]) if outs else '-'}")
            edges.append(sources)
            for o in outs:
                producer[id(o)] = me
                alive.append(o)
            return out

    with torch.no_grad(), Recorder():  # type: ignore[no-untyped-call]
        model(*inputs)
    return ComputationGraph(tuple(labels), tuple(edges))


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape))


def _is_tensor(value: object) -> bool:
    import torch

    return isinstance(value, torch.Tensor)


def _bucket(label: str, dim: int) -> int:
    return int.from_bytes(hashlib.blake2b(label.encode(), digest_size=8).digest(), "big") % dim


def wl_vector(
    graph: ComputationGraph, *, dim: int = DEFAULT_DIM, iterations: int = DEFAULT_ITERATIONS
) -> np.ndarray:
    """Weisfeiler-Lehman label counts of ``graph``, hashed into ``dim`` buckets, log-scaled.

    Node ``v``'s label at round ``h + 1`` is its round-``h`` label with the sorted round-``h``
    labels of the nodes it reads from; the order of the nodes does not matter.
    """
    counts = np.zeros(dim, dtype=np.float64)
    labels = list(graph.labels)
    for round_ in range(iterations + 1):
        for label in labels:
            counts[_bucket(f"{round_}|{label}", dim)] += 1.0
        if round_ < iterations:
            labels = [
                hashlib.blake2b(
                    "|".join([labels[v], *sorted(labels[u] for u in graph.inputs[v])]).encode(),
                    digest_size=12,
                ).hexdigest()
                for v in range(len(labels))
            ]
    return np.log1p(counts).astype(np.float32)


_CACHES: dict[tuple[str, int, int], dict[str, np.ndarray]] = {}
"""Encodings by (space, dim, iterations), then canonical key: shared by the encoders of a
process (a model is built and run once per architecture, whichever search asks)."""


class UniversalEncoder:
    """``encode(arch) -> vector`` for any space that builds models, cached by canonical key.

    Args:
        space: The space whose architectures are encoded.
        dim: Length of the vector.
        iterations: Weisfeiler-Lehman rounds.
    """

    def __init__(
        self, space: SearchSpace, *, dim: int = DEFAULT_DIM, iterations: int = DEFAULT_ITERATIONS
    ) -> None:
        if space.modality is None:
            raise ConfigError(
                f"space {space.name!r} builds no models, so it has no universal encoding; "
                "use its own encoding (encoding='auto')"
            )
        self.space, self.dim, self.iterations = space, dim, iterations
        self._cache = _CACHES.setdefault((space.name, dim, iterations), {})

    def __call__(self, arch: Architecture) -> np.ndarray:
        key = self.space.canonical_key(arch)
        code = self._cache.get(key)
        if code is None:
            graph = computation_graph(self.space, arch)
            code = self._cache[key] = wl_vector(graph, dim=self.dim, iterations=self.iterations)
        return code
