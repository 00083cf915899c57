"""ONNX export of an :class:`~nasforge.exporting.torch.ExportedModel`, checked with ONNX Runtime.

Uses PyTorch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``): it needs
neither the internet nor ``onnxscript``, and it exports every op of the ``nb201`` and ``mlp``
spaces and the message-passing layers of the ``gnn`` space that PyG writes with plain scatter
and index ops. The batch (or the numbers of nodes and edges) is a dynamic axis. After writing,
the file is run with ONNX Runtime (when installed) on the given example and kept only if its
outputs equal PyTorch's within ``atol``.
"""

from __future__ import annotations

import importlib.util
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from nasforge.exporting.torch import ExportedModel

__all__ = ["ONNX_FILE", "OPSET", "OnnxOutcome", "export_onnx", "run_onnx"]

ONNX_FILE = "model.onnx"
OPSET = 17
ATOL = 1e-4


@dataclass(frozen=True, slots=True)
class OnnxOutcome:
    """What :func:`export_onnx` did: the file written, or why none was.

    Attributes:
        written: Whether ``model.onnx`` was written (and checked, when ``checked``).
        message: Why it was not written (one line), or ``None``.
        checked: Whether ONNX Runtime ran it and matched PyTorch within the tolerance.
        max_abs_diff: The largest difference seen in that check.
    """

    written: bool
    message: str | None = None
    checked: bool = False
    max_abs_diff: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "file": ONNX_FILE if self.written else None,
            "message": self.message,
            "checked_with_onnxruntime": self.checked,
            "max_abs_diff": self.max_abs_diff,
            "opset": OPSET,
            "exporter": "torch.onnx (TorchScript-based, dynamo=False)",
        }


def _write(model: nn.Module, inputs: tuple[Tensor, ...], graph: bool, path: Path) -> None:
    """Trace ``model`` on ``inputs`` and write its ONNX file to ``path``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            model,
            inputs,
            str(path),
            input_names=["x", "edge_index"] if graph else ["x"],
            output_names=["logits" if graph else "output"],
            dynamic_axes=_names_axes(graph),
            opset_version=OPSET,
            dynamo=False,
        )


def _names_axes(graph: bool) -> dict[str, dict[int, str]]:
    if graph:
        return {"x": {0: "nodes"}, "edge_index": {1: "edges"}, "logits": {0: "nodes"}}
    return {"x": {0: "batch"}, "output": {0: "batch"}}


def run_onnx(path: Path, inputs: Sequence[Tensor]) -> np.ndarray:
    """The first output of the ONNX model at ``path`` on ``inputs`` (``x``, and ``edge_index`` for
    graph models) with ONNX Runtime."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: GAT's graphs log benign shape notes
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    given = dict(zip(("x", "edge_index"), inputs, strict=False))
    # a graph model whose ops ignore the edges (fc only) has no edge_index input
    feed = {arg.name: given[arg.name].detach().cpu().numpy() for arg in session.get_inputs()}
    out: np.ndarray = session.run(None, feed)[0]
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


class _OneOp(nn.Module):
    """A single layer of a graph model, to find which op does not export."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        out: Tensor = self.layer(x, edge_index)
        return out


def _failing_ops(model: ExportedModel, inputs: tuple[Tensor, ...]) -> list[str]:
    """The ops of a graph model that do not export on their own, as ``op (LayerClass)``."""
    net = model.net
    failing: list[str] = []
    ops = getattr(net, "ops", ())
    layers = getattr(net, "layers", ())
    seen: set[str] = set()
    for op, layer in zip(ops, layers, strict=False):
        if op in seen or isinstance(layer, nn.Identity):
            continue
        seen.add(op)
        width = getattr(layer, "in_channels", None)
        if width is None:
            width = getattr(getattr(layer, "lin", None), "in_features", None)
        if not isinstance(width, int) or width < 1:
            continue
        x = torch.randn(inputs[0].shape[0], width)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                _write(_OneOp(layer).eval(), (x, inputs[1]), True, Path(tmp) / ONNX_FILE)
        except Exception:
            failing.append(f"{op} ({type(layer).__name__})")
    return failing


def export_onnx(
    model: ExportedModel, inputs: tuple[Tensor, ...], path: Path, *, atol: float = ATOL
) -> OnnxOutcome:
    """Write ``model`` as ONNX to ``path`` if its ops export, checking it with ONNX Runtime.

    Args:
        model: The model (in eval mode).
        inputs: An example input: ``(x,)``, or ``(x, edge_index)`` for graph models.
        path: Where to write the file.
        atol: Largest difference allowed between ONNX Runtime's and PyTorch's outputs.

    Returns:
        What was done; a model that does not export gets a one-line message naming the op
        (for graph models) and the exporter's error, and no file is written.
    """
    model.eval()
    if importlib.util.find_spec("onnx") is None:
        return OnnxOutcome(
            False,
            "no model.onnx: writing ONNX needs the onnx extra (pip install 'nasforge[onnx]'); "
            "the weights and nasforge.json are written",
        )
    try:
        _write(model, inputs, model.graph, path)
    except Exception as exc:
        path.unlink(missing_ok=True)
        ops = _failing_ops(model, inputs) if model.graph else []
        which = f"op {', '.join(ops)} does not" if ops else "the model does not"
        return OnnxOutcome(
            False,
            f"no model.onnx: {which} export to ONNX with torch {torch.__version__} "
            f"({_first_line(exc)}); the weights and nasforge.json are written",
        )
    if importlib.util.find_spec("onnxruntime") is None:
        return OnnxOutcome(True, "not checked: onnxruntime is not installed")
    with torch.no_grad():
        expected = model(*inputs).numpy()
    try:
        got = run_onnx(path, inputs)
    except Exception as exc:
        path.unlink(missing_ok=True)
        return OnnxOutcome(
            False, f"no model.onnx: ONNX Runtime cannot run the exported model ({_first_line(exc)})"
        )
    diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
    if not diff <= atol:
        path.unlink(missing_ok=True)
        return OnnxOutcome(
            False,
            f"no model.onnx: ONNX Runtime's outputs differ from PyTorch's by {diff:.3g} "
            f"(> {atol:g})",
            checked=True,
            max_abs_diff=diff,
        )
    return OnnxOutcome(True, None, checked=True, max_abs_diff=diff)
