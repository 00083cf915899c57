"""The benchmark scripts run end to end on a tiny budget and write their reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(
    script: str, *args: str, timeout: float = 300, code: int = 0
) -> subprocess.CompletedProcess[str]:
    """Run a benchmark script, expecting exit status ``code``; ``timeout`` is generous:
    these run on busy machines too."""
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=SCRIPTS.parent,
    )
    assert proc.returncode == code, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def test_nbg_reproduce_refuses_unknown_anchors(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "nbg_reproduce.py"), "--only", "2,10"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=SCRIPTS.parent,
    )
    assert proc.returncode == 2
    assert "anchor indices run from 0 to 9, got 10" in proc.stderr


@pytest.mark.slow
def test_nbg_strategies_smoke(tmp_path: Path) -> None:
    out = tmp_path / "nbg.md"
    _run(
        "nbg_strategies.py",
        "--datasets",
        "cora",
        "--seeds",
        "2",
        "--budget",
        "15",
        "--jobs",
        "2",
        "--out",
        str(out),
    )
    text = out.read_text()
    for method in ("nasforge:random", "nasforge:optuna-gp", "nasforge:local", "optuna:tpe"):
        assert method in text
    assert "Oracle test" in text


@pytest.mark.slow
def test_overhead_smoke(tmp_path: Path) -> None:
    out = tmp_path / "overhead.md"
    _run(
        "overhead.py",
        "--trials",
        "100",
        "--optuna-trials",
        "30",
        "--repeats",
        "1",
        "--window-trials",
        "150",
        "--bananas-trials",
        "15",
        "--scale-trials",
        "150",
        "--pg-trials",
        "20",
        "--rounds",
        "1",
        "--resume-trials",
        "10",
        "--out",
        str(out),
    )
    text = out.read_text()
    assert "Ratio Optuna (SQLite) / nasforge (default store)" in text
    assert "nasforge durable (default store) / Optuna in memory" in text
    assert "| nasforge evolution | SQLite file" in text  # the windows tables
    assert "To 100,000 trials, on a larger space" in text
    assert "## PostgreSQL: processes sharing one experiment" in text  # run, or why not
    assert "trials lost (reported done but not in the store) at the last check: **0**" in text


@pytest.mark.slow
def test_training_benchmarks_smoke(tmp_path: Path, planetoid_root: Path) -> None:
    root = str(planetoid_root)
    _run(
        "nbg_reproduce.py",
        "--data-root",
        root,
        "--only",
        "2,0",
        "--seeds",
        "2",
        "--epochs",
        "3",
        "--workers",
        "1",
        "--out",
        str(tmp_path / "rep.md"),
    )
    report = (tmp_path / "rep.md").read_text()
    assert "Mean absolute test difference" in report
    assert "Anchors 0, 2 of the 10 architectures" in report
    rows = [line for line in report.splitlines() if line.startswith(("| 0 |", "| 2 |"))]
    assert len(rows) == 2 and "skip,skip,gin,gin" in rows[1]
    assert all(row.split("|")[-3].strip() == "0 of 2" for row in rows)  # 3 epochs: no divergence
    assert "over the runs that did not diverge only" in report
    _run(
        "train_throughput.py",
        "--data-root",
        root,
        "--epochs",
        "3",
        "--batch-epochs",
        "0.05",
        "--repeats",
        "1",
        "--search-archs",
        "2",
        "--search-epochs",
        "2",
        "--out",
        str(tmp_path / "tt.md"),
    )
    text = (tmp_path / "tt.md").read_text()
    for family in ("PyG GCN", "NAS-Bench-Graph", "nb201 cells", "mlp on a table"):
        assert f"| {family}" in text
    assert text.count("**bare / nasforge: ") == 4
    assert "same architectures in the same order: yes" in text  # --exact or not, same seed
    _run(
        "train_profile.py",
        "--data-root",
        root,
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "prof.md"),
    )
    text = (tmp_path / "prof.md").read_text()
    assert text.count("| fast |") == 5 and text.count("| exact |") == 5
    assert "`aten::" in text
    _run(
        "fast_ops.py",
        "--data-root",
        root,
        "--epochs",
        "2",
        "--repeats",
        "1",
        "--seeds",
        "2",
        "--stats-ops",
        "sage",
        "--stats-epochs",
        "3",
        "--out",
        str(tmp_path / "fast.md"),
    )
    text = (tmp_path / "fast.md").read_text()
    assert text.count("(NB-Graph Cora protocol)") == 8 and "| sage -> sage |" in text
    _run(
        "parallel.py",
        "--data-root",
        root,
        "--trials",
        "2",
        "--cora-epochs",
        "2",
        "--synthetic-epochs",
        "3",
        "--digits-epochs",
        "1",
        "--rounds",
        "1",
        "--out",
        str(tmp_path / "par.md"),
    )
    text = (tmp_path / "par.md").read_text()
    assert text.count("same 2 architectures in every mode: yes") == 3


@pytest.mark.slow
def test_digits_search_smoke(tmp_path: Path) -> None:
    out = tmp_path / "digits.md"
    _run("digits_search.py", "--seeds", "2", "--budget", "2", "--epochs", "1", "--out", str(out))
    text = out.read_text()
    for strategy in ("random", "evolution", "local"):
        assert f"| {strategy} |" in text
    assert "test acc % of found" in text and "image:digits" in text


@pytest.mark.slow
def test_multifidelity_digits_smoke(tmp_path: Path) -> None:
    out = tmp_path / "mf.md"
    _run(
        "multifidelity_digits.py",
        *("--seeds", "1", "--seconds", "4", "--epochs", "3", "--out", str(out)),
    )
    text = out.read_text()
    for method in ("random", "hyperband", "asha"):
        assert f"| {method} |" in text
    assert "found after s" in text


@pytest.mark.slow
def test_proxies_nbg_smoke(tmp_path: Path, planetoid_root: Path) -> None:
    out = tmp_path / "px.md"
    _run(
        "proxies_nbg.py",
        *("--data-root", str(planetoid_root), "--datasets", "cora", "--archs", "8"),
        *("--samples", "1", "--seeds", "1", "--timing-archs", "1", "--workers", "1"),
        *("--out", str(out)),
    )
    text = out.read_text()
    for proxy in ("synflow", "snip", "grad_norm", "jacov", "fisher", "params", "flops"):
        assert f"| `{proxy}` |" in text


def test_cli_startup_smoke(tmp_path: Path) -> None:
    out = tmp_path / "startup.md"
    _run("cli_startup.py", "--runs", "2", "--out", str(out))
    text = out.read_text()
    assert "| nasforge --help |" in text and "(usage error)" in text and "goal < 0.3 s" in text


@pytest.mark.slow
def test_oneshot_nbg_smoke(tmp_path: Path, planetoid_root: Path) -> None:
    out = tmp_path / "oneshot.md"
    _run(
        "oneshot_nbg.py",
        "--data-root",
        str(planetoid_root),
        "--seeds",
        "1",
        "--methods",
        "gdas",
        "spos",
        "--baselines",
        "random",
        "--epochs",
        "3",
        "-o",
        "spos:population=4",
        "-o",
        "spos:parents=2",
        "-o",
        "spos:generations=1",
        "--out",
        str(out),
    )
    text = out.read_text()
    assert "| gdas | 1 |" in text and "| spos | 1 |" in text and "| random | 1 |" in text
    assert "table: 26206 architecture classes" in text


@pytest.mark.slow
def test_oneshot_digits_smoke(tmp_path: Path) -> None:
    out = tmp_path / "digits.md"
    _run(
        "oneshot_digits.py",
        "--seeds",
        "1",
        "--methods",
        "gdas",
        "darts:selection=perturbation:tune_epochs=0",
        "--epochs",
        "2",
        "--out",
        str(out),
        timeout=900,
    )
    text = out.read_text()
    assert "| `gdas` | 1 |" in text and "| `evolution` | 1 |" in text
    assert "| `darts:selection=perturbation:tune_epochs=0` | 1 |" in text


@pytest.mark.slow
def test_fast_paths_stats_smoke(tmp_path: Path) -> None:
    out = tmp_path / "stats.md"
    _run("fast_paths_stats.py", "--seeds", "2", "--epochs-scale", "0.05", "--out", str(out))
    text = out.read_text()
    assert text.count("image:digits recipe |") == 2 and text.count("tabular:digits recipe |") == 2
    assert "Welch p" in text


@pytest.mark.slow
def test_compress_smoke(tmp_path: Path) -> None:
    out = tmp_path / "compress.md"
    _run(
        "compress.py",
        *("--seeds", "1", "--tasks", "mlp", "--methods", "imp,random,channels"),
        *("--sparsity", "0.5,0.9", "--budget", "1", "--epochs", "2", "--latency-rounds", "1"),
        *("--out", str(out)),
    )
    text = out.read_text()
    assert "## mlp" in text and "| imp |" in text and "| random |" in text
    assert "channels, 90% of FLOPs removed" in text and "latency ms (32 examples)" in text
    assert "imp 90% vs dense" in text and "random 90% vs imp" in text


@pytest.mark.slow
def test_transfer_nbg_smoke(tmp_path: Path) -> None:
    out = tmp_path / "transfer.md"
    _run(
        "transfer_nbg.py",
        *("--datasets", "citeseer", "--seeds", "1", "--budget", "12"),
        *("--methods", "transfer", "bananas", "--out", str(out)),
    )
    text = out.read_text()
    assert "| transfer |" in text and "| bananas |" in text
    assert "### Mean validation regret at 10 architectures" in text
    assert "median first proposal in the top 1%" in text
    assert "- citeseer: nas-bench-graph:" in text  # the tasks it matched


def test_gpu_check_says_why_it_cannot_run_without_a_gpu(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: gpu_check runs for real there")
    out = tmp_path / "gpu.md"
    proc = _run("gpu_check.py", "--budget", "1", "--out", str(out), timeout=120, code=1)
    assert proc.stderr.strip().startswith("gpu_check: no CUDA device here")
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_gpu_check_smoke_on_two_cpus(tmp_path: Path) -> None:
    """The whole script, with the CPU standing in for the GPU (its report path, not a GPU)."""
    out = tmp_path / "gpu.md"
    _run(
        "gpu_check.py",
        *("--devices", "cpu,cpu", "--tasks", "tabular:digits", "--budget", "2"),
        *("--epochs", "2", "--proxy-sample", "3", "--out", str(out)),
    )
    text = out.read_text()
    assert "| tabular:digits | 2 | 2 |" in text and "Spearman rho" in text


def test_contention_smoke(tmp_path: Path) -> None:
    out = tmp_path / "contention.md"
    _run(
        "contention.py",
        *("--repeats", "1", "--digits-budget", "0", "--env", "OMP_WAIT_POLICY=PASSIVE"),
        *("--out", str(out)),
    )
    text = out.read_text()
    assert "| default | with competitor |" in text
    assert "| OMP_WAIT_POLICY=PASSIVE | alone |" in text
