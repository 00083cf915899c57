"""Search strategies (ask/tell)."""

from nasforge.strategies.base import Strategy
from nasforge.strategies.evolution import RegularizedEvolution
from nasforge.strategies.local import LocalSearch
from nasforge.strategies.random import RandomSearch

__all__ = ["LocalSearch", "RandomSearch", "RegularizedEvolution", "Strategy"]
