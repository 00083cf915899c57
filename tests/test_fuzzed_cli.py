"""Property-based fuzz of the command line: whatever the arguments, nasforge exits 0, 1 or 2,
says what was wrong in one line without a traceback, and a command that fails leaves the
store byte for byte as it was."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasforge.cli import main

EXAMPLES = int(os.environ.get("NASFORGE_FUZZ_EXAMPLES", "1000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=os.environ.get("NASFORGE_FUZZ_RANDOM") is None,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

_ODD_TEXT = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "\n",
            "a\nb",
            "-1",
            "0",
            "1e309",
            "nan",
            "inf",
            "-inf",
            str(2**70),
            "3.5",
            "2s",
            "0trials",
            "5archs",
            "val_acc",
            "val_acc:max",
            "latency_ms:min",
            "params<=1e6",
            "val_acc>=",
            "x=1",
            "=",
            "[red]bold[/]",
            "%s%n",
            "é",
            "\x00",
            "../../etc/passwd",
            "nas-bench-graph:cora",
            "nas-bench-graph:nope",
            "synthetic",
            "file:/nonexistent.npz",
            "tabular:iris",
            "random",
            "evolution",
            "gnn",
            "mlp",
        ]
    ),
    st.text(max_size=12),
)
# per command: a valid base, and the flags whose values are drawn
_BASE = {
    "search": [["--benchmark", "nas-bench-graph:cora"], ["--task", "synthetic"]],
    "proxies": [["--task", "synthetic", "-n", "2"]],
    "trials": [["--name", "run"], []],
    "best": [["--name", "run"], []],
    "pareto": [["--name", "run"], []],
    "report": [["--name", "run"], []],
    "doctor": [[]],
    "list": [["experiments"], ["strategies"], []],
}
_FLAGS = {
    "search": [
        "--space",
        "--strategy",
        "--budget",
        "--objective",
        "--constraint",
        "--seed",
        "--name",
        "--epochs",
        "--workers",
        "--max-retries",
        "--trial-timeout",
        "--lr",
        "--option",
        "--split-seed",
        "--task-option",
        "--table",
        "--benchmark",
    ],
    "proxies": ["--space", "--proxy", "--seed", "--top", "--json", "--task"],
    "trials": ["--name", "--status", "--top", "--json"],
    "best": ["--name", "--json"],
    "pareto": ["--name", "--objective", "--reference", "--json"],
    "report": ["--name", "--top", "--out"],
    "doctor": [],
    "list": [],
}
_SWITCHES = {"--json"}


@st.composite
def _argv(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(_BASE)))
    argv = [command, *draw(st.sampled_from(_BASE[command]))]
    for _ in range(draw(st.integers(0, 3))):
        flag = draw(st.sampled_from([*_FLAGS[command], "--json", "--bogus"]))
        argv.append(flag)
        if flag not in _SWITCHES:
            argv.append(draw(_ODD_TEXT))
    if draw(st.integers(0, 9)) == 0:
        argv.append(draw(_ODD_TEXT))  # a stray positional argument
    return argv


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzzed-cli")
    db = folder / "runs.db"
    goals = ["--objective", "val_acc:max", "--objective", "latency_ms:min"]
    args = ["search", "--benchmark", "nas-bench-graph:cora", "--budget", "6", "--name", "run"]
    assert main([*args, *goals, "--db", str(db), "--no-progress"]) == 0
    return db


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@FUZZ
@given(argv=_argv())
def test_any_arguments_exit_0_1_or_2_with_one_line(
    stored: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    work = tmp_path_factory.mktemp("run")
    db = work / "runs.db"
    shutil.copy(stored, db)
    monkeypatch.chdir(work)  # a report or an export lands here, never in the repository
    before = _files(work)
    if argv[0] != "proxies":
        argv = [*argv, "--db", str(db)]
    if argv[0] == "search":  # whatever was drawn, a valid search stays short
        argv += [] if "--budget" in argv else ["--budget", "2"]
        argv += [] if "--epochs" in argv else ["--epochs", "1"]
        argv += ["--executor", "inline", "--no-progress"]
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse: usage errors, --help
        code = stop.code if isinstance(stop.code, int) else 2
    captured = capsys.readouterr()
    assert code in (0, 1, 2), (argv, captured.err)
    assert "Traceback" not in captured.out + captured.err, argv
    if code != 0:
        said = [line for line in captured.err.splitlines() if line.strip()]
        errors = [line for line in said if not line.startswith(("warning:", "note:"))]
        assert len(errors) == 1, (argv, captured.err)
        assert "error" in errors[0], (argv, captured.err)
        assert _files(work) == before, argv  # nothing written, nothing changed
