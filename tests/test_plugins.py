"""Plugins: a package that registers a space in the ``nasforge.plugins`` entry-point group is
usable from the CLI and from ``nasforge.search`` (the README's custom space, installed on a
temporary path, trains for real); a broken plugin is skipped with a warning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nasforge
from nasforge.errors import ConfigError
from tests.readme_plugin import SPACE, install_plugin

ROOT = Path(__file__).resolve().parents[1]


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` with the plugin's folder on the path."""
    path = os.pathsep.join([str(root), str(ROOT / "src")])
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": path}
    command = [sys.executable, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _run(root, "-m", "nasforge.cli", *args)


def test_the_readme_space_works_from_the_cli_with_real_training(tmp_path: Path) -> None:
    root = install_plugin(tmp_path / "site")
    listing = _cli(root, "list", "spaces")
    assert listing.returncode == 0, listing.stderr
    assert SPACE in listing.stdout and "MLPs of one width" in listing.stdout
    db = tmp_path / "runs.db"
    search = _cli(
        root,
        "search", "--task", "tabular:wine", "--space", SPACE, "--strategy", "random",
        "--budget", "3", "--epochs", "3", "--name", "plugged", "--db", str(db), "--no-progress",
    )  # fmt: skip
    assert search.returncode == 0, search.stdout + search.stderr
    trials = _cli(root, "trials", "--name", "plugged", "--db", str(db), "--json")
    rows = [json.loads(line) for line in trials.stdout.splitlines()]
    assert len(rows) == 3 and {r["status"] for r in rows} == {"COMPLETE"}
    assert {r["arch"]["space"] for r in rows} == {SPACE}
    assert all(0 < r["metrics"]["val_acc"] <= 1 and r["costs"]["params"] > 0 for r in rows)
    assert len({r["key"] for r in rows}) == 3


def test_the_readme_space_works_from_nasforge_search(tmp_path: Path) -> None:
    root = install_plugin(tmp_path / "site")
    script = tmp_path / "search.py"
    db = str(tmp_path / "a.db")
    script.write_text(
        "import json, nasforge\n"
        "if __name__ == '__main__':\n"
        f"    result = nasforge.search(task='tabular:wine', space={SPACE!r}, strategy='random',\n"
        f"                             budget=2, epochs=2, name='api', db={db!r})\n"
        "    print(json.dumps([result.summary.new_trials, result.best.arch.space]))\n"
    )
    proc = _run(root, str(script))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == [2, SPACE]


def test_a_broken_plugin_is_skipped_with_a_warning(tmp_path: Path) -> None:
    root = install_plugin(tmp_path / "site", entry="wide_mlp:no_such_function")
    proc = _cli(root, "list", "spaces")
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stderr.split())
    assert "warning: nasforge plugin 'wide-mlp' (wide_mlp:no_such_function) could not be" in said
    assert "Traceback" not in proc.stderr
    assert "gnn" in proc.stdout and SPACE not in proc.stdout


def test_a_taken_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="space 'gnn' is already registered"):
        nasforge.register_space("gnn", nasforge.SearchSpace)  # type: ignore[type-abstract]
