"""Knowledge: what earlier searches (and shipped benchmark tables) measured, which known tasks
a new task resembles, and a universal architecture encoding (any space's models as vectors).
Used by the ``transfer`` strategy and by ``bananas -o encoding=universal``."""

from nasforge.knowledge.base import (
    TABLES,
    Knowledge,
    KnownTask,
    read_knowledge,
    store_tasks,
    table_tasks,
    task_label,
)
from nasforge.knowledge.encoding import UniversalEncoder, computation_graph, wl_vector
from nasforge.knowledge.similarity import MIN_SHARED, Match, match_tasks

__all__ = [
    "MIN_SHARED",
    "TABLES",
    "Knowledge",
    "KnownTask",
    "Match",
    "UniversalEncoder",
    "computation_graph",
    "match_tasks",
    "read_knowledge",
    "store_tasks",
    "table_tasks",
    "task_label",
    "wl_vector",
]
