"""Tasks: data, loss and metric of one problem type, with loaders for real sources.

* :mod:`~nasforge.tasks.base`: the contracts (:class:`Task`, :class:`TaskKind`), the
  :data:`TASKS` registry and :func:`resolve_task`, which turns ``kind:argument`` into a task;
* one file per kind, each with its specs, data type and loaders: :mod:`~nasforge.tasks.node`
  (node classification), :mod:`~nasforge.tasks.image`, :mod:`~nasforge.tasks.tabular`
  (image and tabular data share :mod:`~nasforge.tasks.supervised`).
"""

from nasforge.tasks.base import (
    TASKS,
    Task,
    TaskKind,
    TaskSetup,
    register_task,
    resolve_task,
    task_forms,
    task_options,
)

__all__ = [
    "TASKS",
    "Task",
    "TaskKind",
    "TaskSetup",
    "register_task",
    "resolve_task",
    "task_forms",
    "task_options",
]
