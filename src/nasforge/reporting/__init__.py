"""Self-contained HTML reports of experiments: ``nasforge.report(name, out)``."""

from __future__ import annotations

from nasforge.reporting.html import rank_trials, render_report, report

__all__ = ["rank_trials", "render_report", "report"]
