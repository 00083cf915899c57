"""Executors: where evaluations run (in-process, local worker processes).

``nasforge.execution.process`` (the ``ProcessExecutor``) is imported on its own, as it
imports torch.
"""

from nasforge.execution.base import Executor, InlineExecutor

__all__ = ["Executor", "InlineExecutor"]
