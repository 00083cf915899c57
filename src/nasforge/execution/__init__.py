"""Executors: where evaluations run (in-process, local worker processes, a Ray cluster).

``nasforge.execution.process`` (the ``ProcessExecutor``, which imports torch) and
``nasforge.execution.ray`` (the ``RayExecutor``, which imports Ray) are imported on their own;
:func:`make_executor` builds any of them by name.
"""

from nasforge.execution.base import Executor, InlineExecutor
from nasforge.execution.factory import EXECUTORS, make_executor

__all__ = ["EXECUTORS", "Executor", "InlineExecutor", "make_executor"]
