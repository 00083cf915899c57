"""Executors: where evaluations run (in-process, local worker processes)."""

from nasforge.execution.base import Executor, InlineExecutor
from nasforge.execution.process import ProcessExecutor

__all__ = ["Executor", "InlineExecutor", "ProcessExecutor"]
