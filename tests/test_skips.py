"""Tests that need Cora's raw files say, in one line at the end of the run, that they were
skipped, where the files were looked for and how to point the tests at them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_run_without_cora_ends_with_one_line_saying_so(tmp_path: Path) -> None:
    missing = tmp_path / "no-datasets-here"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/tasks/test_planetoid_raw.py", "-k", "cora or Cora"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NASFORGE_PLANETOID_ROOT": str(missing)},
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [
        line for line in proc.stdout.splitlines() if "tests skipped: no Cora raw files" in line
    ]
    assert len(lines) == 1, proc.stdout
    assert f"under {missing}/Cora/raw" in lines[0] and "NASFORGE_PLANETOID_ROOT" in lines[0]
