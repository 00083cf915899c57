"""A live web dashboard over a store: experiments, trials and best-so-far, read-only.

``nasforge dashboard`` on the command line, :func:`serve` from Python.
"""

from __future__ import annotations

from nasforge.dashboard.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DashboardError,
    DashboardServer,
    serve,
)

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "DashboardError", "DashboardServer", "serve"]
