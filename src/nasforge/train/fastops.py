"""Dropout at the hardware's speed, with PyTorch's reference ops one switch away.

Two ops of the models the spaces build cost far more than their arithmetic on a CPU:

* ``F.dropout`` draws its mask with a Bernoulli sampler; comparing uniform draws with ``p``
  (``rand >= p``) gives every element the same keep probability ``1 - p`` at about half the
  cost (:func:`dropout`);
* node features are mostly zeros (Cora's bag of words: 98.7%), and dropping a zero changes
  nothing, so the mask is drawn only for the non-zero entries and the result is a sparse CSR
  tensor: its product with a layer's weights then costs the non-zeros, not the whole matrix
  (:func:`feature_dropout`).

Each output has the distribution the reference op gives (every entry kept with probability
``1 - p`` and scaled by ``1 / (1 - p)``, independently), but the random streams differ, so a
seed gives another run than with the reference ops. :func:`exact_ops` (a training setting,
``exact``; the CLI's ``--exact``) switches back to PyTorch's ops for bitwise reproduction,
e.g. of NAS-Bench-Graph's own training. The reference ops are also used where the faster ones
cannot serve: when the input needs a gradient, and while a model is traced or exported.
"""

from __future__ import annotations

import contextvars
import warnings
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = [
    "Dropout",
    "TensorMemo",
    "dense",
    "dropout",
    "exact_ops",
    "feature_dropout",
    "image_layout",
    "is_exact",
]

SPARSE_DENSITY = 0.25
"""Features with at most this share of non-zero entries are dropped out as a sparse tensor."""

# the CSR layout is what these ops need of it, not a beta feature a user should hear about
warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)

T = TypeVar("T")

_EXACT: contextvars.ContextVar[bool] = contextvars.ContextVar("nasforge_exact_ops", default=False)


@contextmanager
def exact_ops(on: bool = True) -> Iterator[None]:
    """Within the block (this thread or task), use PyTorch's reference ops if ``on`` (or if
    an enclosing block asked for them: ``on=False`` keeps what is in force)."""
    token = _EXACT.set(on or _EXACT.get())
    try:
        yield
    finally:
        _EXACT.reset(token)


def is_exact() -> bool:
    """Whether the reference ops are asked for, or the model is being traced or exported
    (where the faster ops' data-dependent shapes cannot be recorded)."""
    return (
        _EXACT.get()
        or torch.jit.is_tracing()  # type: ignore[attr-defined,no-untyped-call]
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_compiling()
    )


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``F.dropout(x, p, training)`` in distribution, with a cheaper mask."""
    if not training or p == 0 or is_exact():
        return F.dropout(x, p=p, training=training)
    if p == 1:
        return x * 0.0
    return x * ((torch.rand_like(x) >= p) * (1.0 / (1.0 - p)))


@dataclass(frozen=True, slots=True)
class _Layout:
    """The non-zero entries of a 2-d tensor, row-major, and the tensor as CSR."""

    rows: Tensor  # (nnz,)
    cols: Tensor  # (nnz,)
    values: Tensor  # (nnz,)
    whole: Tensor  # (N, F), sparse CSR

    @classmethod
    def of(cls, x: Tensor, rows: Tensor, cols: Tensor) -> _Layout:
        values = x[rows, cols]
        return cls(rows, cols, values, _csr(rows, cols, values, x.shape[0], x.shape[1]))

    def kept(self, keep: Tensor, scale: float) -> Tensor:
        """The entries where ``keep``, times ``scale``, as a CSR tensor."""
        n, f = self.whole.shape
        return _csr(self.rows[keep], self.cols[keep], self.values[keep] * scale, n, f)


def _csr(rows: Tensor, cols: Tensor, values: Tensor, n: int, f: int) -> Tensor:
    """A CSR tensor of shape (n, f) from row-major entries."""
    crow = torch.zeros(n + 1, dtype=torch.int64, device=values.device)
    crow[1:] = torch.bincount(rows, minlength=n).cumsum(0)
    return torch.sparse_csr_tensor(crow, cols, values, (n, f), check_invariants=False)


class TensorMemo(Generic[T]):
    """What was computed from one tensor, kept until the tensor is gone or changed in place
    (a task's features or graph are the same tensor at every epoch). One slot, read once per
    call: another thread may replace it."""

    def __init__(self) -> None:
        self._slot: tuple[weakref.ref[Tensor], int, Hashable, T] | None = None

    def get(self, x: Tensor, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``'s value for ``x`` (and ``key``: what else it depends on)."""
        slot = self._slot
        if slot is not None and slot[0]() is x and slot[1] == x._version and slot[2] == key:
            return slot[3]
        value = compute()
        self._slot = (weakref.ref(x), x._version, key, value)
        return value


_LAYOUTS: TensorMemo[_Layout | None] = TensorMemo()


def _layout(x: Tensor) -> _Layout | None:
    """``x``'s non-zero entries, or None when ``x`` is not sparse enough to gain from them."""

    def find() -> _Layout | None:
        if x.dim() != 2 or x.layout != torch.strided or not x.numel():
            return None
        rows, cols = x.nonzero(as_tuple=True)
        return _Layout.of(x, rows, cols) if rows.numel() <= SPARSE_DENSITY * x.numel() else None

    return _LAYOUTS.get(x, None, find)


def feature_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Dropout on input features: for mostly-zero ``x`` (no gradient needed) a sparse CSR
    tensor, its mask drawn for the non-zero entries only (in evaluation, ``x`` itself as CSR);
    otherwise as :func:`dropout`. Layers that cannot take a sparse input get :func:`dense`."""
    if x.requires_grad or is_exact():
        return F.dropout(x, p=p, training=training)
    layout = _layout(x)
    if layout is None:
        return dropout(x, p, training)
    if not training or p == 0:
        return layout.whole
    if p == 1:
        return torch.zeros_like(x)
    keep = torch.rand(layout.values.shape, device=x.device) >= p
    return layout.kept(keep, 1.0 / (1.0 - p))


@contextmanager
def image_layout(model: torch.nn.Module, x: Tensor) -> Iterator[torch.memory_format]:
    """Train ``model`` on images ``x`` (N, C, H, W) channels last on a CPU (oneDNN's
    convolutions and batch norms are faster there), unless the reference ops are asked for:
    within the block its 4-d weights are held in that layout, and contiguous again after it
    (what saving, export and the callers expect). Yields the layout to give the batches (the
    usual contiguous one for other inputs, devices, or the reference ops)."""
    if x.dim() != 4 or x.device.type != "cpu" or is_exact():
        yield torch.contiguous_format
        return
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    try:
        yield torch.channels_last
    finally:
        model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]


class Dropout(torch.nn.Dropout):
    """``nn.Dropout`` (same name, same state) drawing its mask as :func:`dropout` does."""

    def forward(self, input: Tensor) -> Tensor:
        if self.inplace:
            return super().forward(input)
        return dropout(input, self.p, self.training)


def dense(x: Tensor) -> Tensor:
    """``x`` as an ordinary (strided) tensor."""
    return x if x.layout == torch.strided else x.to_dense()
