"""What the CLI guesses for a new user: the store's only experiment when --name is left out
(and says so), output paths derived from it that never overwrite anything, --version, and a
demo whose outputs git ignores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nasforge import api
from nasforge.cli import main
from nasforge.store.sql import SqlStore
from nasforge.version import __version__

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def one(tmp_path: Path) -> Path:
    db = tmp_path / "one.db"
    api.search(benchmark="nas-bench-graph:cora", strategy="random", budget=6, name="solo", db=db)
    return db


def test_the_only_experiment_is_taken_and_named(
    one: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["trials", "--db", str(one), "--json"]) == 0
    guessed = capsys.readouterr()
    assert main(["trials", "--db", str(one), "--json", "--name", "solo"]) == 0
    assert guessed.out == capsys.readouterr().out and guessed.out.count("\n") == 6
    assert f"note: experiment solo (the only one in {one})" in " ".join(guessed.err.split())
    assert main(["best", "--db", str(one)]) == 0
    assert "best architecture (trial" in capsys.readouterr().out
    pareto = ["pareto", "--db", str(one), "--objective", "val_acc", "--objective", "params:min"]
    assert main(pareto) == 0


def test_several_experiments_are_listed_and_none_is_refused(
    one: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.search(benchmark="nas-bench-graph:cora", strategy="local", budget=3, name="duo", db=one)
    capsys.readouterr()
    assert main(["best", "--db", str(one)]) == 2
    assert "holds 2 experiments; pass --name with one of: solo, duo" in capsys.readouterr().err
    empty = tmp_path / "empty.db"
    SqlStore(empty).close()
    assert main(["trials", "--db", str(empty)]) == 2
    assert "holds no experiment; run 'nasforge search' first" in capsys.readouterr().err


def test_report_and_export_default_to_paths_they_never_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "train.db"
    api.search(task="tabular:wine", strategy="random", budget=1, epochs=2, name="wine/1", db=db)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wine-1-model").mkdir()
    (tmp_path / "wine-1-model" / "keep.txt").write_text("mine")
    assert main(["report", "--db", str(db)]) == 0
    assert main(["report", "--db", str(db)]) == 0
    assert main(["export", "--db", str(db)]) == 0
    assert main(["export", "--db", str(db)]) == 0
    said = capsys.readouterr().out
    assert (tmp_path / "wine-1-report.html").is_file() and (
        tmp_path / "wine-1-report-2.html"
    ).is_file()
    assert (tmp_path / "wine-1-model" / "keep.txt").read_text() == "mine"  # untouched
    assert (tmp_path / "wine-1-model-2" / "nasforge.json").is_file()
    assert (tmp_path / "wine-1-model-3" / "nasforge.json").is_file()
    assert "written to wine-1-report-2.html" in " ".join(said.split())


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"nasforge {__version__}"


def test_the_demos_outputs_are_ignored_by_git() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip(f"{ROOT} is not a git checkout")
    outputs = [
        "nasforge-demo.db",
        "nasforge-demo.db-wal",
        "nasforge-demo.db-shm",
        "nasforge-demo.db.artifacts/experiment-1/trial-0.safetensors",
        "nasforge-demo-report.html",
        "nasforge-demo-report-digits.html",
    ]
    proc = subprocess.run(
        ["git", "check-ignore", *outputs], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.stdout.split() == outputs


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (["search", "--task", "mnist"], 2),
        (["search", "--task", "tabular:wine", "--executor", "dask"], 2),
        (["search", "--task", "synthetic", "--executor", "inline", "--workers", "2"], 2),
        (["search", "--benchmark", "nas-bench-graph:cora", "--epochs", "5"], 2),
        (["trials", "--db", "/nonexistent/runs.db"], 1),
    ],
)
def test_an_error_is_told_before_torch_is_imported(
    args: list[str], exit_code: int, tmp_path: Path
) -> None:
    code = (
        "import sys\n"
        "from nasforge.cli import main\n"
        "try:\n"
        "    code = main(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "print(code, 'torch' in sys.modules)\n"
    )
    db = ["--db", str(tmp_path / "x.db")] if args[0] == "search" else []
    proc = subprocess.run(
        [sys.executable, "-c", code, *args, *db], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.stdout.split() == [str(exit_code), "False"], proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")


def test_list_shows_every_registry_and_the_proxies(capsys: pytest.CaptureFixture[str]) -> None:
    from nasforge.proxies import PROXIES

    assert main(["list"]) == 0
    shown = capsys.readouterr().out
    for title in ("spaces", "strategies", "benchmarks", "tasks", "executors", "proxies"):
        assert f"\n{title}\n" in f"\n{shown}"
    assert all(name in shown for name in (*PROXIES, "node", "tabular", "inline", "ray"))
    assert main(["list", "proxies"]) == 0
    assert "SynFlow" in capsys.readouterr().out
