"""``nasforge compress`` end to end: real searches in real SQLite files, real training on small
real data, every space with a model, export and reload, resume after kill -9, bad input."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import nasforge
from nasforge import api
from nasforge.artifacts import ArtifactStore
from nasforge.cli import main
from nasforge.compression.files import stored_step
from nasforge.compression.masks import prunable
from nasforge.exporting.onnx import run_onnx
from nasforge.exporting.rebuild import rebuild
from nasforge.result import Result, Status
from nasforge.store.sql import open_store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _search(db: Path, task: str = "tabular:breast_cancer", *, epochs: int = 6) -> None:
    nasforge.search(
        task=task,
        strategy="random",
        budget=2,
        epochs=epochs,
        name="src",
        db=db,
        seed=0,
        executor="inline",
    )


def _artifacts(db: Path, name: str) -> ArtifactStore:
    store = open_store(db, create=False)
    try:
        return ArtifactStore.for_experiment(store.target, store.get_experiment(name).id)
    finally:
        store.close()


def _trials(db: Path, name: str = "src-compressed") -> list:
    return nasforge.trials(name, db=db)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the run ----------------------------------------------------------------------------------
def test_imp_stores_every_round_and_a_second_run_skips_them(db_path: Path) -> None:
    _search(db_path)
    run = nasforge.compress("src", method="imp", sparsity="0.5,0.9", db=db_path)
    assert run.experiment == "src-compressed"
    assert [(t.method, t.sparsity, t.level) for t in run.trials] == [
        ("dense", 0.0, False),
        ("imp", 0.5, True),
        ("imp", 0.75, False),
        ("imp", 0.875, False),
        ("imp", 0.9, True),
    ]
    assert all(t.status is Status.COMPLETE and not t.stored_before for t in run.trials)
    stored = _trials(db_path)
    assert [t.number for t in stored] == [0, 1, 2, 3, 4]
    artifacts = _artifacts(db_path, "src-compressed")
    previous = None
    for trial, row in zip(stored, run.trials, strict=True):
        assert trial.costs["sparsity"] == pytest.approx(row.sparsity, abs=1e-3)
        assert trial.costs["nonzero_params"] <= trial.costs["params"]
        assert {"flops", "latency_ms"} <= set(trial.costs)
        assert trial.curve and trial.fidelity is not None
        step = stored_step(artifacts, trial)
        for name, mask in step.masks.items():
            assert bool((step.state[name][mask == 0] == 0).all())  # pruned: stored zeros
            if previous is not None and name in previous.masks:
                assert bool((mask <= previous.masks[name]).all())  # imp prunes a superset
        previous = step
    assert stored_step(artifacts, stored[0]).rewind is not None  # the dense trial keeps it

    again = nasforge.compress("src", method="imp", sparsity="0.5,0.9", db=db_path)
    assert all(t.stored_before for t in again.trials)
    assert [(t.number, t.val) for t in again.trials] == [(t.number, t.val) for t in run.trials]
    assert len(_trials(db_path)) == 5

    magnitude = nasforge.compress("src", method="magnitude", sparsity=[0.9], db=db_path)
    assert [t.stored_before for t in magnitude.trials] == [True, False]  # the dense is shared
    rnd = nasforge.compress("src", method="random", sparsity=[0.9], db=db_path)
    assert [t.stored_before for t in rnd.trials] == [True, False]
    by_key = {t.key.split(":")[0]: t for t in _trials(db_path)[-2:]}
    m, r = (stored_step(artifacts, by_key[k]).masks for k in ("magnitude", "random"))
    for name in m:  # random keeps magnitude's count per layer, elsewhere
        assert int(m[name].sum()) == int(r[name].sum())
    assert any(not torch.equal(m[n], r[n]) for n in m)


@pytest.mark.parametrize(
    ("task", "space"),
    [("synthetic", "gnn"), ("image:digits", "nb201"), ("tabular:diabetes", "mlp")],
)
def test_every_space_compresses_exports_and_reloads(tmp_path: Path, task: str, space: str) -> None:
    db = tmp_path / "c.db"
    _search(db, task, epochs=3)
    assert api.experiment("src", db=db).search.space == space
    run = nasforge.compress("src", method="magnitude", sparsity=[0.8], db=db)
    assert [t.status for t in run.trials] == [Status.COMPLETE, Status.COMPLETE]
    trial = run.trials[-1]
    folder = nasforge.export("src-compressed", trial=trial.number, out=tmp_path / "m", db=db)
    meta = json.loads((folder / "nasforge.json").read_text())
    assert meta["compression"]["method"] == "magnitude"
    assert meta["compression"]["sparsity"] == pytest.approx(0.8, abs=1e-3)
    assert meta["weights_source"] == f"pruned weights of compressed trial {trial.number}"
    model = nasforge.load(folder)
    weights = {k: v for k, v in model.net.state_dict().items() if k in prunable(model.net)}
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    assert zeros / sum(w.numel() for w in weights.values()) == pytest.approx(0.8, abs=1e-3)
    record = api.experiment("src-compressed", db=db)
    setup = rebuild(record)
    inputs = setup.task.raw_inputs()
    with torch.no_grad():
        ours = model(*inputs).numpy()
    if meta["onnx"]["checked_with_onnxruntime"]:
        onnx_out = run_onnx(folder / "model.onnx", inputs)
        np.testing.assert_allclose(onnx_out, ours, atol=1e-4)
    key = "val_rmse" if space == "mlp" else "val_acc"
    assert meta["export_metrics"][key] == pytest.approx(trial.val, abs=1e-5)


# -- kill -9 ----------------------------------------------------------------------------------
_CHILD = """
import sys, nasforge
def show(row):
    print("stored", row.number, flush=True)
if __name__ == "__main__":
    nasforge.compress("src", method="imp", sparsity=[0.8], prune_ratio=0.2,
                      db=sys.argv[1], progress=show)
"""


@pytest.mark.slow
def test_kill_9_loses_nothing_stored_and_a_rerun_finishes(db_path: Path, tmp_path: Path) -> None:
    _search(db_path, epochs=12)
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(_CHILD))
    child = subprocess.Popen(
        [sys.executable, str(script), str(db_path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    lines = [child.stdout.readline() for _ in range(3)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=60)
    assert all(line.startswith("stored") for line in lines), lines
    before = {(t.number, t.key, t.metrics["val_acc"]) for t in _trials(db_path)}
    assert len(before) >= 3
    run = nasforge.compress("src", method="imp", sparsity=[0.8], prune_ratio=0.2, db=db_path)
    after = _trials(db_path)
    assert before <= {(t.number, t.key, t.metrics["val_acc"]) for t in after}
    assert len({t.key for t in after}) == len(after) == len(run.trials)
    assert [t.number for t in after] == list(range(len(after)))  # no gap, no repeat
    assert sum(t.stored_before for t in run.trials) == len(before)
    assert all(t.status is Status.COMPLETE for t in after)


# -- the command line -------------------------------------------------------------------------
def test_cli_compresses_lists_and_exports(
    db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _search(db_path)
    args = ["compress", "--name", "src", "--db", str(db_path), "--method", "random"]
    assert main([*args, "--sparsity", "0.5,0.8"]) == 0
    shown = capsys.readouterr().out
    assert "random 80.0%" in shown and "src-compressed" in shown
    assert main(["trials", "--name", "src-compressed", "--db", str(db_path)]) == 0
    assert "random 50.0%" in capsys.readouterr().out
    out = tmp_path / "model"
    base = ["export", "--name", "src-compressed", "--db", str(db_path), "--trial", "2"]
    assert main([*base, "--retrain", "--out", str(out)]) == 2
    assert "compressed network" in capsys.readouterr().err
    assert not out.exists()
    assert main([*base, "--out", str(out)]) == 0
    assert "sparsity 80.0%" in capsys.readouterr().out
    html = tmp_path / "report.html"
    assert (
        main(["report", "--name", "src-compressed", "--db", str(db_path), "--out", str(html)]) == 0
    )
    text = html.read_text()
    section = text[text.index('<section id="compression">') :]
    section = section[: section.index("</section>")]
    assert "test_acc against sparsity" in section and ">random<" in section
    assert "dense (trial 0)" in section and section.count("<svg") == 1


@pytest.fixture
def searched(db_path: Path) -> Path:
    _search(db_path)
    store = open_store(db_path)
    try:
        record = store.get_experiment("src")
        arch = store.trials(record.id)[0].arch
        now = time.time()
        store.add_trial(
            record.id,
            arch,
            "failed-key",
            Result.failed("diverged"),
            started_at=now,
            finished_at=now,
        )
    finally:
        store.close()
    nasforge.search(
        benchmark="nas-bench-graph:cora", strategy="random", budget=3, name="nbg", db=db_path
    )
    return db_path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "imp", "--sparsity", "1.5"], "open interval (0, 1)"),
        (["--method", "imp", "--sparsity", "0,0.5"], "open interval (0, 1)"),
        (["--method", "imp", "--sparsity", "half"], "open interval (0, 1)"),
        (["--method", "channel"], "unknown compression method 'channel'; valid: magnitude"),
        (["--method", "imp", "--trial", "2"], "trial 2 of experiment 'src' is FAILED"),
        (["--method", "imp", "--trial", "9"], "has no trial 9"),
        (["--method", "imp", "--into", "nbg"], "not a compression experiment"),
        (["--method", "imp", "--prune-ratio", "0"], "prune_ratio"),
        (["--method", "imp", "--rewind-epoch", "6"], "rewind_epoch must be below"),
        (["--method", "imp", "--name", "nbg", "--data-root", "EMPTY"], "not available offline"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2_with_nothing_written(
    searched: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    args = [str(tmp_path / "empty") if a == "EMPTY" else a for a in args]
    (tmp_path / "empty").mkdir()
    if "--name" not in args:
        args = ["--name", "src", *args]
    before = _digest(searched)
    capsys.readouterr()
    assert main(["compress", "--db", str(searched), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in " ".join(err.split()), err
    assert err.startswith("error:") and "Traceback" not in err
    assert _digest(searched) == before
    assert not any(p.name.endswith("-compressed") for p in searched.parent.iterdir())
    assert [e.name for e in nasforge.list_experiments(searched)] == ["src", "nbg"]
    artifacts = Path(f"{searched}.artifacts")
    assert not artifacts.exists() or sorted(p.name for p in artifacts.iterdir()) == ["experiment-1"]


def test_a_compression_experiment_is_not_compressed_again(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _search(db_path)
    nasforge.compress("src", method="magnitude", sparsity=[0.5], db=db_path)
    before = _digest(db_path)
    code = main(["compress", "--db", str(db_path), "--name", "src-compressed", "--method", "imp"])
    assert code == 2
    assert "holds compressed trials of 'src'" in capsys.readouterr().err
    assert _digest(db_path) == before


def test_a_second_process_compressing_into_the_same_experiment_is_refused(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _search(db_path)
    nasforge.compress("src", method="magnitude", sparsity=[0.5], db=db_path)
    lock = _artifacts(db_path, "src-compressed").path("compress.lock")
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        code = main(["compress", "--db", str(db_path), "--name", "src", "--method", "imp"])
    finally:
        os.close(fd)
    assert code == 1
    assert "another process is compressing" in capsys.readouterr().err
    assert len(_trials(db_path)) == 2


# -- structured pruning -----------------------------------------------------------------------
def test_width_search_meets_the_flops_budget(db_path: Path) -> None:
    from nasforge.compression.channels import WidthSearch, search_widths

    _search(db_path, "tabular:digits", epochs=5)
    record = api.experiment("src", db=db_path)
    setup = rebuild(record)
    arch = nasforge.best("src", db=db_path).arch
    torch.manual_seed(0)
    net = setup.space.build(arch, setup.task, setup.hyper)
    setup.task.fit(net, setup.train)
    for budget in (0.5, 0.2):
        choice = search_widths(
            setup.space,
            arch,
            setup.hyper,
            setup.task,
            net,
            budget,
            seed=0,
            config=WidthSearch(steps=30),
        )
        assert choice.met and choice.flops <= budget * choice.dense_flops
        assert choice.flops >= 0.1 * budget * choice.dense_flops  # it uses the budget
        options = setup.space.width_options(arch, setup.hyper)
        assert all(choice.widths[n] in options[n] for n in options)
        assert all(abs(sum(p) - 1) < 1e-3 for p in choice.probabilities.values())


@pytest.mark.slow
def test_channels_trains_a_narrower_network_that_exports(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    _search(db, "synthetic", epochs=4)
    run = nasforge.compress("src", method="channels", sparsity=[0.6], db=db)
    dense, narrow = run.trials
    assert narrow.status is Status.COMPLETE and narrow.widths is not None
    assert narrow.flops <= 0.4 * dense.flops * 1.0001
    assert narrow.params < dense.params
    trial = _trials(db)[-1]
    assert trial.costs["flops_ratio"] <= 0.4 + 1e-6
    folder = nasforge.export("src-compressed", trial=narrow.number, out=tmp_path / "m", db=db)
    meta = json.loads((folder / "nasforge.json").read_text())
    assert meta["hyper"]["hidden"] == narrow.widths["hidden"]
    assert meta["compression"]["method"] == "channels"
    model = nasforge.load(folder)
    assert sum(p.numel() for p in model.net.parameters()) == narrow.params
    assert meta["export_metrics"]["val_acc"] == pytest.approx(narrow.val, abs=1e-6)
    again = nasforge.compress("src", method="channels", sparsity=[0.6], db=db)
    assert [t.stored_before for t in again.trials] == [True, True]
    assert again.trials[1].widths == narrow.widths


def test_channels_on_a_space_without_widths_is_refused(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nasforge.spaces.mlp import MlpSpace

    _search(db_path)
    before = _digest(db_path)
    monkeypatch.setattr(MlpSpace, "width_options", lambda self, arch, settings: {})
    code = main(["compress", "--db", str(db_path), "--name", "src", "--method", "channels"])
    assert code == 2
    assert "names no widths to shrink" in capsys.readouterr().err
    assert _digest(db_path) == before
