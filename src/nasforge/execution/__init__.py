"""Executors: where evaluations run (in-process, local worker processes, a Ray cluster).

Executors are registered by kind (:data:`EXECUTORS`: ``inline``, ``process``, ``ray``);
:func:`make_executor` builds any of them by name and :func:`default_executor` says which one a
search uses when none is named. ``nasforge.execution.process`` (which starts torch in its
workers) and ``nasforge.execution.ray`` (which imports Ray when an executor starts) hold the
two that run trials elsewhere.
"""

from nasforge.execution.base import EXECUTORS, Executor, InlineExecutor, register_executor
from nasforge.execution.factory import default_executor, make_executor

__all__ = [
    "EXECUTORS",
    "Executor",
    "InlineExecutor",
    "default_executor",
    "make_executor",
    "register_executor",
]
