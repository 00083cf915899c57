"""nasforge: neural architecture search that stores every trial and resumes after any crash."""

from nasforge.api import (
    SearchResult,
    best,
    export,
    list_benchmarks,
    list_experiments,
    list_spaces,
    list_strategies,
    search,
    trials,
)
from nasforge.architecture import Architecture
from nasforge.budget import Budget, BudgetUnit
from nasforge.errors import ConfigError, NasforgeError, StoreError, UnknownNameError
from nasforge.evaluators.base import Evaluator
from nasforge.experiment import Experiment
from nasforge.exporting import load
from nasforge.objective import Direction, Objective
from nasforge.reporting import report
from nasforge.result import Result, Status
from nasforge.spaces.base import SearchSpace
from nasforge.store.base import Store
from nasforge.strategies.base import Strategy

__version__ = "0.1.0"

__all__ = [
    "Architecture",
    "Budget",
    "BudgetUnit",
    "ConfigError",
    "Direction",
    "Evaluator",
    "Experiment",
    "NasforgeError",
    "Objective",
    "Result",
    "SearchResult",
    "SearchSpace",
    "Status",
    "Store",
    "StoreError",
    "Strategy",
    "UnknownNameError",
    "__version__",
    "best",
    "export",
    "list_benchmarks",
    "list_experiments",
    "list_spaces",
    "list_strategies",
    "load",
    "report",
    "search",
    "trials",
]
