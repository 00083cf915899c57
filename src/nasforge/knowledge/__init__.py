"""Knowledge: what earlier searches (and shipped benchmark tables) measured, and which known
tasks a new task resembles. Used by the ``transfer`` strategy."""

from nasforge.knowledge.base import (
    TABLES,
    Knowledge,
    KnownTask,
    read_knowledge,
    store_tasks,
    table_tasks,
    task_label,
)
from nasforge.knowledge.similarity import MIN_SHARED, Match, match_tasks

__all__ = [
    "MIN_SHARED",
    "TABLES",
    "Knowledge",
    "KnownTask",
    "Match",
    "match_tasks",
    "read_knowledge",
    "store_tasks",
    "table_tasks",
    "task_label",
]
