"""Running a model with ONNX Runtime: export it to a temporary ONNX file, open a session."""

from __future__ import annotations

import importlib
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nasforge.errors import ConfigError, LatencyTableError

__all__ = ["ONNX_OPSET", "onnx_runner", "onnxruntime"]

ONNX_OPSET = 17


def onnxruntime() -> Any:
    """The ``onnxruntime`` module, or a ConfigError that says how to install it."""
    try:
        return importlib.import_module("onnxruntime")
    except ImportError:
        raise ConfigError(
            "the onnxruntime latency backend needs the onnx extra: pip install 'nasforge[onnx]' "
            "(or use backend 'torch')"
        ) from None


def onnx_runner(model: nn.Module, inputs: tuple[Tensor, ...]) -> Callable[[], object]:
    """Export ``model`` to a temporary ONNX file and return a call of an ONNX Runtime session.

    Uses PyTorch's TorchScript-based exporter (``dynamo=False``): the ``torch.export`` one
    needs the ``onnxscript`` package, which the ``onnx`` extra does not install. The session
    runs on the CPU with as many intra-op threads as PyTorch uses.

    Raises:
        ConfigError: If ONNX Runtime is not installed.
        LatencyTableError: If the model cannot be exported to ONNX.
    """
    ort = onnxruntime()
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
                    opset_version=ONNX_OPSET,
                )
        except Exception as exc:
            raise LatencyTableError(
                f"cannot export {type(model).__name__} to ONNX (opset {ONNX_OPSET}): "
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
