"""Inference latency: measured on this machine, and predicted from a per-operation table.

* :mod:`~nasforge.latency.timing`: :func:`measure_latency` times a built model with PyTorch
  or, with the ``onnx`` extra, with ONNX Runtime (:mod:`~nasforge.latency.onnx` runs it);
* :mod:`~nasforge.latency.device`: :func:`device_fingerprint`, what a measurement depends on;
* :mod:`~nasforge.latency.cache`: where tables are stored, read and written safely;
* :mod:`~nasforge.latency.table`: :class:`LatencyTable`, the per-operation table of a space
  on a task (the space says how its models decompose), and its prediction;
* :mod:`~nasforge.latency.compare`: predicted against measured over a sample.

Inputs are those :class:`~nasforge.evaluators.training.TrainingEvaluator` measures
``latency_ms`` on (``task.example_inputs()``): the whole graph for graph tasks, one example
(batch size 1) for images and tables.
"""

from nasforge.errors import LatencyTableError
from nasforge.latency.cache import latency_cache_dir
from nasforge.latency.compare import LatencyComparison, LatencyRow, compare_latency, latency_sample
from nasforge.latency.device import device_fingerprint
from nasforge.latency.table import LatencyTable, entry_names
from nasforge.latency.timing import BACKENDS, example_inputs, measure_architecture, measure_latency

__all__ = [
    "BACKENDS",
    "LatencyComparison",
    "LatencyRow",
    "LatencyTable",
    "LatencyTableError",
    "compare_latency",
    "device_fingerprint",
    "entry_names",
    "example_inputs",
    "latency_cache_dir",
    "latency_sample",
    "measure_architecture",
    "measure_latency",
]
