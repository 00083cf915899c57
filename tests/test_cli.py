"""The command line as a new user meets it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nasforge.cli import main


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "nasforge.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def _search(db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run(
        "search",
        "--benchmark",
        "nas-bench-graph:cora",
        "--strategy",
        "evolution",
        "--budget",
        "40",
        "--seed",
        "0",
        "--name",
        "my-run",
        "--db",
        str(db),
        "--no-progress",
        *extra,
    )


def _snapshot(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT * FROM nasforge_trials ORDER BY id").fetchall()


@pytest.fixture
def searched(tmp_path: Path) -> Path:
    db = tmp_path / "runs.db"
    proc = _search(db)
    assert proc.returncode == 0, proc.stderr
    return db


def test_search_prints_the_best_and_where_it_is_stored(searched: Path) -> None:
    proc = _search(searched)  # same command again: resumes, evaluates nothing new
    assert proc.returncode == 0, proc.stderr
    assert "resumed my-run: 40 stored trials kept" in proc.stdout
    assert "0 new trials" in proc.stdout
    assert "best architecture (trial" in proc.stdout
    assert f"results stored in {searched}" in proc.stdout


def test_search_resume_extends_the_budget(searched: Path) -> None:
    before = _snapshot(searched)
    proc = _search(searched, "--budget", "60")
    assert proc.returncode == 0, proc.stderr
    after = _snapshot(searched)
    assert after[: len(before)] == before  # nothing stored was touched
    assert len(after) == 60


def test_trials_best_and_list(searched: Path) -> None:
    proc = run("trials", "--name", "my-run", "--db", str(searched), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["number"] for r in rows] == list(range(40))
    best = run("best", "--name", "my-run", "--db", str(searched), "--json")
    record = json.loads(best.stdout)
    assert record["metrics"]["val_acc"] == max(r["metrics"]["val_acc"] for r in rows)
    table = run("trials", "--name", "my-run", "--db", str(searched), "--top", "3")
    assert table.returncode == 0 and "my-run: 3 trials" in table.stdout
    listing = run("list")
    assert listing.returncode == 0
    for name in ("gnn-proteins", "evolution", "local", "random", "nas-bench-graph:arxiv"):
        assert name in listing.stdout
    experiments = run("list", "experiments", "--db", str(searched))
    assert "my-run" in experiments.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--benchmark", "nas-bench-graph:imagenet"],
            "unknown benchmark 'nas-bench-graph:imagenet'; valid: nas-bench-graph:cora",
        ),
        (
            ["--benchmark", "nas-bench-graph:cora", "--strategy", "evo"],
            "unknown strategy 'evo'; valid: random, evolution, local",
        ),
        (
            ["--benchmark", "nas-bench-graph:cora", "--space", "nb202"],
            "unknown space 'nb202'; valid: gnn, gnn-proteins, nb201, mlp",
        ),
        (
            ["--benchmark", "nas-bench-graph:cora", "--space", "nb201"],
            "covers space 'gnn', not 'nb201'",
        ),
        (
            ["--benchmark", "nas-bench-graph:proteins", "--space", "gnn"],
            "covers space 'gnn-proteins', not 'gnn'",
        ),
        (["--benchmark", "nas-bench-graph:cora", "--budget", "0"], "a budget is a positive number"),
        (
            ["--benchmark", "nas-bench-graph:cora", "--budget", "-5"],
            "a budget is a positive number",
        ),
        (
            ["--benchmark", "nas-bench-graph:cora", "--budget", "lots"],
            "a budget is a positive number",
        ),
        (
            ["--benchmark", "nas-bench-graph:cora", "--seed", "-1"],
            "a seed is an integer from 0 to 4294967295",
        ),
        (
            ["--benchmark", "nas-bench-graph:cora", "-o", "population_size=1"],
            "population_size must be an integer >= 2",
        ),
        (["--benchmark", "nas-bench-graph:cora", "-o", "colour=red"], "has no option 'colour'"),
        (["--benchmark", "nas-bench-graph:cora", "--bogus-flag"], "unrecognized arguments"),
    ],
)
def test_usage_errors_exit_2_with_one_line(searched: Path, args: list[str], message: str) -> None:
    before = _snapshot(searched)
    proc = run("search", "--name", "my-run", "--db", str(searched), *args)  # progress bar on
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert message in " ".join(proc.stderr.split()), proc.stderr
    assert _snapshot(searched) == before


def test_resuming_with_other_settings_is_refused_without_damage(searched: Path) -> None:
    before = _snapshot(searched)
    proc = _search(searched, "--strategy", "random")
    assert proc.returncode == 2
    assert "exists with other settings: strategy='evolution' (this run: 'random')" in proc.stderr
    assert _snapshot(searched) == before


def test_store_errors_exit_1_and_touch_nothing(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00\x01 definitely not sqlite" * 100)
    content = garbage.read_bytes()
    proc = _search(garbage)
    assert proc.returncode == 1 and "is not a SQLite database" in proc.stderr
    assert garbage.read_bytes() == content

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    proc = _search(foreign)
    assert proc.returncode == 1 and "belongs to another application" in proc.stderr

    proc = _search(tmp_path / "no" / "such" / "dir.db")
    assert proc.returncode == 1 and "does not exist" in proc.stderr
    proc = _search(Path("/proc/nasforge.db"))
    assert proc.returncode == 1 and "not writable" in proc.stderr

    proc = run("trials", "--name", "x", "--db", str(tmp_path / "typo.db"))
    assert proc.returncode == 1 and "no nasforge store at" in proc.stderr
    assert not (tmp_path / "typo.db").exists()


def test_unknown_experiment_lists_stored_ones(searched: Path) -> None:
    proc = run("best", "--name", "my-rnu", "--db", str(searched))
    assert proc.returncode == 2
    assert "no experiment named 'my-rnu'" in proc.stderr and "stored: my-run" in proc.stderr


def test_main_in_process_returns_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "x.db"
    code = main(
        [
            "search",
            "--benchmark",
            "nas-bench-graph:citeseer",
            "--strategy",
            "local",
            "--budget",
            "15",
            "--db",
            str(db),
            "--no-progress",
        ]
    )
    assert code == 0
    assert "nas-bench-graph:citeseer-local-seed0" in capsys.readouterr().out
    assert main(["best", "--name", "nope", "--db", str(db)]) == 2


def test_top_ranks_by_the_stored_objective(searched: Path) -> None:
    proc = run("trials", "--name", "my-run", "--db", str(searched), "--top", "5", "--json")
    vals = [json.loads(line)["metrics"]["val_acc"] for line in proc.stdout.splitlines()]
    assert len(vals) == 5 and vals == sorted(vals, reverse=True)
    bad = run("trials", "--name", "my-run", "--db", str(searched), "--top", "0")
    assert bad.returncode == 2 and "must be >= 1, got 0" in bad.stderr


def test_text_in_square_brackets_is_printed_as_written(tmp_path: Path) -> None:
    """Messages, names and paths are text, never console markup: '[optuna]' stays."""
    listing = run("list", "strategies")
    assert "(needs nasforge[optuna])" in " ".join(listing.stdout.split())

    db = tmp_path / "runs[1].db"
    proc = run(
        "search", "--benchmark", "nas-bench-graph:cora", "--strategy", "random",
        "--budget", "5", "--name", "run[bold]", "--db", str(db), "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "as experiment run[bold]" in text and f"--db {shlex.quote(str(db))}" in text

    without_optuna = (
        "import sys; sys.modules['optuna'] = None; from nasforge.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", without_optuna, "search", "--benchmark", "nas-bench-graph:cora",
         "--strategy", "optuna-tpe", "--budget", "5", "--db", str(tmp_path / "o.db")],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "pip install 'nasforge[optuna]'" in proc.stderr, proc.stderr


def test_tables_fold_in_a_narrow_terminal_and_cut_nothing(searched: Path) -> None:
    db = str(searched)
    for args in (
        ["list"],
        ["list", "experiments", "--db", db],
        ["trials", "--name", "my-run", "--top", "5", "--db", db],
        ["pareto", "--name", "my-run", "--objective", "val_acc:max",
         "--objective", "latency_ms:min", "--db", db],
    ):  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", "nasforge.cli", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "50", "NO_COLOR": "1"},
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert "…" not in proc.stdout, proc.stdout
