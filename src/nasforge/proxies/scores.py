"""Zero-cost proxies: scores of an untrained network that hint at how well it will train.

Each proxy is a function ``proxy(model, batch) -> float`` of a freshly initialised model and a
:class:`ProxyBatch` of real data; larger is better for every one of them. They work on any
model of the ``gnn`` (``forward(x, edge_index)``), ``nb201`` and ``mlp`` spaces.

The batch (see :func:`make_batch`):

* a graph task: the whole graph; the loss is taken on the training nodes, and ``jacov`` uses
  up to ``max_rows`` training nodes drawn by the seed;
* an image or tabular task: ``batch_size`` training examples drawn by the seed.

The loss is cross-entropy for classification (node or example) and mean squared error for
regression. Proxies that need a gradient run the model with dropout off and normalisation on
batch statistics (BatchNorm in training mode), as the reference implementations run their
networks in training mode; only ``synflow`` runs in evaluation mode (see below).
``snip``, ``grad_norm``, ``fisher`` and ``jacov`` can share one forward pass (:func:`score`).

The weights a proxy sums over are every parameter except biases and the affine parameters of
normalisation layers: convolution kernels, linear and PyG weight matrices, ARMA's weights and
GAT's attention vectors. A weight that takes no part in the forward pass (ARMAConv keeps one
when it has a single layer) has no gradient and adds nothing.

Proxies (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021, unless
noted):

* ``synflow`` — SynFlow (Tanaka et al., "Pruning neural networks without any data by
  iteratively conserving synaptic flow", NeurIPS 2020): every parameter replaced by its
  absolute value, the model in float64 and in evaluation mode (BatchNorm uses its initial
  running statistics, mean 0 and variance 1, so it is nearly the identity, as the
  references that remove BatchNorm), an input of ones (a graph: ones for every node's
  features, with the real edges). ``R`` is the sum of the outputs; the score is
  ``S = sum |w * dR/dw|`` over the weights, reported as its natural log ``ln S`` (so that it
  never overflows and reads as a number of e-folds; the ranking is that of ``S``). The
  backward pass runs on ``R / |R|`` and ``ln |R|`` is added back, so gradients stay in range;
  only an output beyond float64 (``|R| > 1.8e308``) fails. ``S = 0`` (an output that does not
  depend on the weights, e.g. the all-``none`` NAS-Bench-201 cell) is reported as
  :data:`SYNFLOW_OF_ZERO`.
* ``snip`` — SNIP (Lee et al., "SNIP: Single-shot Network Pruning based on Connection
  Sensitivity", ICLR 2019): ``sum |w * dL/dw|`` over the weights, ``L`` the loss on the batch.
* ``grad_norm`` — ``sum ||dL/dw||_2``, one Euclidean norm per weight tensor.
* ``fisher`` — Fisher pruning (Theis et al., "Faster gaze prediction with dense networks and
  Fisher pruning", 2018): at the output ``a`` of every module that owns weights itself (a
  linear or conv layer; a PyG conv with weights of its own, such as GAT's attention or
  ARMA's, besides its linear layers), with ``g`` the gradient of ``L`` there,
  ``sum_k 0.5 * mean_n (sum_s a[n,k,s] * g[n,k,s])^2``: ``n`` an example (every node of a
  graph), ``k`` a channel, ``s`` a spatial position (none for graphs and tables).
* ``jacov`` — the Jacobian covariance score of Mellor et al. ("Neural Architecture Search
  without Training", ICML 2021, first version): the rows ``J_n = d(sum of outputs)/d x_n``
  (one backward pass), their correlation matrix ``C`` and its eigenvalues ``v``, score
  ``-sum(ln(v + 1e-5) + 1 / (v + 1e-5))``. For independent examples ``J_n`` is the
  per-example Jacobian; on a graph it also carries node ``n``'s influence on its
  neighbours' outputs. A constant row (no gradient) has zero correlation with the others.
  When the batch has more rows than the input has features (``B > D``), ``C`` has at least
  ``B - D`` zero eigenvalues, each adding about ``-1e5``: a constant offset for a task, so
  rankings hold, but the values read as large negative numbers.
* ``params`` — the number of trainable parameters (a baseline).
* ``flops`` — dense FLOPs of one forward pass (the whole graph, or one example), a baseline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from nasforge.errors import ConfigError
from nasforge.proxies.names import PROXIES, check_proxies
from nasforge.tasks.base import ProxyBatch, Task
from nasforge.train.cost import count_flops, count_params

__all__ = [
    "SYNFLOW_OF_ZERO",
    "ProxyBatch",
    "ProxyError",
    "fisher",
    "flops",
    "grad_norm",
    "jacov",
    "make_batch",
    "params",
    "proxy_function",
    "score",
    "snip",
    "synflow",
]

SYNFLOW_OF_ZERO = math.log(5e-324)
"""``synflow`` of a network whose output does not depend on its weights (``S = 0``): the log
of the smallest positive float64, about -744.4, below the log of any positive ``S``."""

_NORMS = (_BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)
_JACOV_K = 1e-5


class ProxyError(ValueError):
    """A proxy cannot be computed for this model (e.g. its output overflows)."""


# -- the data --------------------------------------------------------------------------------
def make_batch(
    task: Task, *, seed: int = 0, batch_size: int = 64, max_rows: int = 256
) -> ProxyBatch:
    """The batch the proxies score models of ``task`` on (:meth:`Task.proxy_batch`).

    Args:
        task: The data (a :class:`~nasforge.tasks.base.Task`).
        seed: Fixes which examples (or, for a graph, which training nodes ``jacov`` uses).
        batch_size: Training examples of an image or tabular task.
        max_rows: Training nodes of a graph that ``jacov`` correlates (at most).

    Raises:
        ConfigError: For sizes below 2, a task that is not a :class:`Task`, or fewer than 2
            examples to draw from.
    """
    if batch_size < 2 or max_rows < 2:
        raise ConfigError(
            f"batch_size and max_rows must be >= 2 (batch statistics, correlations), got "
            f"batch_size={batch_size}, max_rows={max_rows}"
        )
    if not isinstance(task, Task):
        raise ConfigError(
            f"proxies score models of node-classification, image or tabular tasks, "
            f"got a {type(task).__name__}"
        )
    return task.proxy_batch(seed=seed, batch_size=batch_size, max_rows=max_rows)


# -- shared pieces ---------------------------------------------------------------------------
def _weights(model: nn.Module) -> Iterator[nn.Parameter]:
    """The parameters proxies sum over: all but biases and normalisation parameters."""
    for module in model.modules():
        if isinstance(module, _NORMS):
            continue
        for name, param in module.named_parameters(recurse=False):
            if param.requires_grad and not name.endswith("bias"):
                yield param


def _init_mode(model: nn.Module) -> None:
    """Dropout off, BatchNorm on batch statistics."""
    model.eval()
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.train()


def _to_float(value: Tensor | float, proxy: str) -> float:
    out = float(value)
    if math.isnan(out):
        raise ProxyError(f"{proxy} is NaN")
    return out


_GRADIENT_PROXIES = ("snip", "grad_norm", "fisher", "jacov")


def _fisher_hooks(model: nn.Module, terms: list[Tensor]) -> list[Any]:
    """Hooks adding each weighted module's Fisher term to ``terms`` on the next backward.

    Returns the forward-hook handles and, once the forward pass ran, the tensor-hook handles.
    """
    handles: list[Any] = []

    def keep(module: nn.Module, inputs: Any, output: Any) -> None:
        if not isinstance(output, Tensor) or not output.requires_grad:
            return
        act = output.detach()

        def on_grad(grad: Tensor) -> None:
            g = act * grad  # (N, K, ...) per example and channel
            if g.dim() > 2:
                g = g.flatten(2).sum(2)  # summed over spatial positions
            terms.append(0.5 * g.double().pow(2).mean(0).sum())

        handles.append(output.register_hook(on_grad))  # type: ignore[no-untyped-call]

    for module in model.modules():
        if isinstance(module, _NORMS):
            continue
        own = [n for n, _ in module.named_parameters(recurse=False)]
        if any(not n.endswith("bias") for n in own):
            handles.append(module.register_forward_hook(keep))
    return handles


def _jacov_score(grad: Tensor, probe: Tensor) -> float:
    """Mellor et al.'s score of the input-gradient rows ``grad[probe]``."""
    jac = grad[probe].reshape(len(probe), -1).double().cpu().numpy()  # (B, D)
    if not np.isfinite(jac).all():
        raise ProxyError("jacov: the input gradients hold NaN or infinite values")
    centred = jac - jac.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    unit = np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 0)
    corr = unit @ unit.T  # (B, B); a constant row correlates with nothing
    eig = np.clip(np.linalg.eigvalsh(corr), 0.0, None)  # PSD up to rounding
    return float(-np.sum(np.log(eig + _JACOV_K) + 1.0 / (eig + _JACOV_K)))


def _gradient_pass(model: nn.Module, batch: ProxyBatch, wanted: Sequence[str]) -> dict[str, float]:
    """``snip``, ``grad_norm``, ``fisher`` and ``jacov`` (those in ``wanted``) from one
    forward pass: one backward pass of the loss, one of the summed outputs."""
    _init_mode(model)
    model.zero_grad(set_to_none=True)
    on_loss = [n for n in wanted if n in ("snip", "grad_norm", "fisher")]
    x = batch.inputs[0]
    if "jacov" in wanted:
        x = x.detach().clone().requires_grad_(True)
    terms: list[Tensor] = []
    handles = _fisher_hooks(model, terms) if "fisher" in wanted else []
    out: dict[str, float] = {}
    try:
        output = model(x, *batch.inputs[1:])  # (rows, outputs)
        if on_loss:
            loss = batch.loss(output)
            if not bool(torch.isfinite(loss.detach())):
                raise ProxyError(f"the loss on the batch is {float(loss.detach())}")
            weights = list(_weights(model))
            grads = torch.autograd.grad(
                loss, weights, retain_graph="jacov" in wanted, allow_unused=True
            )
            snip_total = torch.zeros((), dtype=torch.float64, device=x.device)
            norm_total = torch.zeros((), dtype=torch.float64, device=x.device)
            for w, g in zip(weights, grads, strict=True):
                if g is not None:  # None: a weight the forward pass does not use
                    snip_total += (w.detach() * g).abs().sum().double()
                    norm_total += g.double().norm()
            out["snip"] = _to_float(snip_total, "snip")
            out["grad_norm"] = _to_float(norm_total, "grad_norm")
            fisher_total = sum(terms, torch.zeros((), dtype=torch.float64, device=x.device))
            out["fisher"] = _to_float(fisher_total, "fisher")
    finally:
        for handle in handles:
            handle.remove()
    if "jacov" in wanted:
        (grad,) = torch.autograd.grad(output.sum(), x, allow_unused=True)
        if grad is None:  # the output ignores the features
            grad = torch.zeros_like(x)
        out["jacov"] = _jacov_score(grad, batch.probe)
    return {name: out[name] for name in wanted}


# -- the proxies -----------------------------------------------------------------------------
def synflow(model: nn.Module, batch: ProxyBatch) -> float:
    """``ln`` of the SynFlow score (see the module docstring); changes ``model``'s weights.

    Raises:
        ProxyError: If the output overflows float64 or the score is NaN.
    """
    model.eval()
    model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model.zero_grad(set_to_none=True)
    total = model(*batch.ones(torch.float64)).sum()
    r = float(total.detach().abs())
    if not math.isfinite(r):
        raise ProxyError(f"synflow: the output of an all-ones input is {r} in float64")
    scale = r if r > 0 else 1.0
    (total / scale).backward()
    s = torch.zeros((), dtype=torch.float64, device=total.device)
    for w in _weights(model):
        if w.grad is not None:
            s += (w.detach() * w.grad).abs().sum()
    scaled = _to_float(s, "synflow")
    if scaled == 0.0:  # no weight carries any flow: the output ignores the weights
        return SYNFLOW_OF_ZERO
    return max(math.log(scaled) + math.log(scale), SYNFLOW_OF_ZERO)


def snip(model: nn.Module, batch: ProxyBatch) -> float:
    """``sum |w * dL/dw|`` over the weights (see the module docstring)."""
    return _gradient_pass(model, batch, ["snip"])["snip"]


def grad_norm(model: nn.Module, batch: ProxyBatch) -> float:
    """``sum ||dL/dw||_2`` over the weight tensors (see the module docstring)."""
    return _gradient_pass(model, batch, ["grad_norm"])["grad_norm"]


def fisher(model: nn.Module, batch: ProxyBatch) -> float:
    """The Fisher score summed over the channels of every weighted module's output."""
    return _gradient_pass(model, batch, ["fisher"])["fisher"]


def jacov(model: nn.Module, batch: ProxyBatch) -> float:
    """Mellor et al.'s Jacobian covariance score over the probe rows (see the module docs).

    Raises:
        ProxyError: If the Jacobian holds NaN or infinite values.
    """
    return _gradient_pass(model, batch, ["jacov"])["jacov"]


def params(model: nn.Module, batch: ProxyBatch) -> float:
    """Trainable parameters (``batch`` is not used)."""
    return float(count_params(model))


def flops(model: nn.Module, batch: ProxyBatch) -> float:
    """Dense FLOPs of one forward pass: the whole graph, or one example."""
    model.eval()
    inputs = batch.one_pass()
    return float(count_flops(lambda: model(*inputs)))


_FUNCTIONS: dict[str, Callable[[nn.Module, ProxyBatch], float]] = {
    "synflow": synflow,
    "snip": snip,
    "grad_norm": grad_norm,
    "jacov": jacov,
    "fisher": fisher,
    "params": params,
    "flops": flops,
}


def score(
    make_model: Callable[[], nn.Module], batch: ProxyBatch, names: Sequence[str] = PROXIES
) -> dict[str, float]:
    """Every proxy of ``names`` for the model ``make_model`` builds.

    Each proxy gets its own model from ``make_model`` (proxies change weights, gradients and
    BatchNorm statistics), so ``make_model`` must build the same model on every call (fix its
    seed). ``snip``, ``grad_norm``, ``fisher`` and ``jacov`` share one model and one forward
    pass (then one backward pass of the loss and one of the summed outputs).

    Raises:
        ConfigError: For an unknown proxy name.
        ProxyError: If a proxy cannot be computed (NaN, overflow).
    """
    wanted = check_proxies(names)
    out: dict[str, float] = {}
    shared = [n for n in wanted if n in _GRADIENT_PROXIES]
    if shared:
        out.update(_gradient_pass(make_model(), batch, shared))
    for name in wanted:
        if name not in out:
            out[name] = _FUNCTIONS[name](make_model(), batch)
    return {name: out[name] for name in wanted}


def proxy_function(name: str) -> Callable[[nn.Module, ProxyBatch], float]:
    """The function computing proxy ``name``.

    Raises:
        ConfigError: For an unknown name; lists the valid ones.
    """
    check_proxies([name])
    return _FUNCTIONS[name]
