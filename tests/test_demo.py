"""``make demo``'s job, run as a user runs it: a real process on a fresh store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nasforge.demo", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        timeout=600,
    )


@pytest.mark.slow
def test_demo_searches_trains_reports_and_resumes(tmp_path: Path) -> None:
    db, report = tmp_path / "demo[1].db", tmp_path / "report.html"
    args = ("--db", str(db), "--budget", "20", "--digits-budget", "2", "--report", str(report))
    proc = demo(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = " ".join(proc.stdout.split())
    assert "20 distinct architectures evaluated (20 new)" in text
    assert "best architecture: gnn[links=" in text and "best val_acc in the whole table" in text
    assert "2 cells trained (2 new; 20 epochs each" in text and "best cell: nb201[ops=" in text
    assert f"results stored in {db}" in text
    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "demo-cora-evolution-seed0" in html
    assert "<script src=" not in html  # self-contained: opens offline
    digits = (tmp_path / "report-digits.html").read_text(encoding="utf-8")
    assert "demo-digits-nb201-evolution-seed0" in digits and "<script src=" not in digits
    assert digits.count('class="key"') >= 2  # both trained cells in its top table

    again = demo(*args)  # the same command resumes: nothing is evaluated twice
    assert again.returncode == 0, again.stderr
    text = " ".join(again.stdout.split())
    assert "resumed 20 stored trials" in text and "(0 new)" in text


def test_demo_rejects_an_unknown_dataset_without_writing(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    proc = demo("--db", str(db), "--dataset", "imagenet", "--digits-budget", "0", "--report", "")
    assert proc.returncode == 2
    assert "unknown benchmark 'nas-bench-graph:imagenet'" in " ".join(proc.stderr.split())
    assert not db.exists()
