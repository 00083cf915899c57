"""nasforge: neural architecture search that stores every trial and resumes after any crash."""

from nasforge import _builtins  # noqa: F401  (registers what nasforge ships, first)
from nasforge.api import (
    SearchResult,
    best,
    compress,
    export,
    list_benchmarks,
    list_executors,
    list_experiments,
    list_spaces,
    list_strategies,
    list_tasks,
    plan,
    report,
    search,
    similar,
    trials,
)
from nasforge.architecture import Architecture
from nasforge.budget import Budget, BudgetUnit
from nasforge.config import SearchConfig
from nasforge.errors import ConfigError, NasforgeError, StoreError, UnknownNameError
from nasforge.evaluators.base import Evaluator, register_benchmark
from nasforge.execution.base import Executor, register_executor
from nasforge.experiment import Experiment
from nasforge.exporting import load
from nasforge.objective import Direction, Objective
from nasforge.result import Result, Status
from nasforge.spaces.base import SearchSpace, register_space
from nasforge.store.base import Store
from nasforge.strategies.base import Strategy, register_strategy
from nasforge.tasks.base import Task, TaskKind, register_task
from nasforge.version import __version__

__all__ = [
    "Architecture",
    "Budget",
    "BudgetUnit",
    "ConfigError",
    "Direction",
    "Evaluator",
    "Executor",
    "Experiment",
    "NasforgeError",
    "Objective",
    "Result",
    "SearchConfig",
    "SearchResult",
    "SearchSpace",
    "Status",
    "Store",
    "StoreError",
    "Strategy",
    "Task",
    "TaskKind",
    "UnknownNameError",
    "__version__",
    "best",
    "compress",
    "export",
    "list_benchmarks",
    "list_executors",
    "list_experiments",
    "list_spaces",
    "list_strategies",
    "list_tasks",
    "load",
    "plan",
    "register_benchmark",
    "register_executor",
    "register_space",
    "register_strategy",
    "register_task",
    "report",
    "search",
    "similar",
    "trials",
]
