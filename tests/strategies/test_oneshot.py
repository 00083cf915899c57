"""One-shot strategies through the normal loop and store: a supernet phase on real (small)
data, its stored records and checkpoint, the derived architectures trained from scratch as
ordinary trials, resumption, and the one-line refusals."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import nasforge
from nasforge import api
from nasforge.cli import main
from nasforge.errors import ConfigError
from nasforge.oneshot.phase import CHECKPOINT
from nasforge.result import Status
from nasforge.store.sql import open_store

GRAPH: dict[str, Any] = {"task": "synthetic", "seed": 0, "epochs": 12}


def _phase(db: Path, name: str, kind: str) -> list[Any]:
    store = open_store(db)
    try:
        return store.phase(store.get_experiment(name).id, kind)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("strategy", "options"),
    [
        ("darts", {}),
        ("darts", {"order": 2}),
        ("darts", {"selection": "perturbation", "tune_epochs": 1}),
        ("gdas", {}),
        ("spos", {"population": 6, "generations": 2, "parents": 3}),
        ("enas", {"controller_steps": 3, "derive_samples": 6}),
        ("pc-darts", {"partial": 2}),
        ("proxylessnas", {}),
    ],
)
def test_each_method_searches_a_graph_and_stores_its_phase(
    db_path: Path, strategy: str, options: dict[str, Any]
) -> None:
    name = f"{strategy}-{'-'.join(options) or 'defaults'}"
    result = nasforge.search(
        strategy=strategy,
        options={**options, "top_k": 2},
        budget=5,
        name=name,
        db=db_path,
        **GRAPH,
    )
    trials = api.trials(name, db=db_path)
    # the two derived architectures, trained from scratch with the task's protocol
    assert len(trials) == 2 and all(t.status is Status.COMPLETE for t in trials)
    assert len({t.key for t in trials}) == 2 and all(t.fidelity == 12 for t in trials)
    assert result.best is not None and result.best.metrics["val_acc"] > 0.25
    epochs = _phase(db_path, name, "epoch")
    assert [r.step for r in epochs] == list(range(1, 13))
    assert all(r.data["train_loss"] > 0 for r in epochs)
    (done,) = _phase(db_path, name, "result")
    assert done.data["epochs"] == 12 and done.data["stopped"] == "epochs done"
    derived = [nasforge.Architecture.from_dict(a) for a in done.data["derived"]]
    assert {a.to_json() for a in derived} == {t.arch.to_json() for t in trials}
    assert all(0 <= f <= 1 for f in done.data["free"])
    if strategy == "spos":
        generations = _phase(db_path, name, "generation")
        assert [g.step for g in generations] == [1, 2]
        assert generations[-1].data["best_val_acc"] >= generations[0].data["best_val_acc"]
    elif strategy == "enas":
        assert all(0 <= r.data["reward"] <= 1 for r in epochs)
        assert 0 <= epochs[-1].data["val_acc"] <= 1
    else:
        if strategy == "proxylessnas":
            assert all(r.data["expected_latency_ms"] > 0 for r in epochs)
            assert all(r.data["latency_pred_ms"] > 0 for r in epochs)
        last = epochs[-1].data
        weights = last["weights"]
        assert set(weights) == {f"{k}_{i}" for k in ("input", "op") for i in range(4)}
        assert all(abs(sum(p) - 1) < 1e-3 for p in weights.values())
        assert 0 <= last["val_acc"] <= 1 and "derived" in last
    if options.get("selection") == "perturbation":
        # every decision with a choice was fixed once, in some order, by its accuracy drops
        chosen = _phase(db_path, name, "selection")
        assert sorted(r.data["decision"] for r in chosen) == sorted(
            f"{k}_{i}" for k in ("input", "op") for i in range(4) if (k, i) != ("input", 0)
        )
        first = derived[0]
        picked = {r.data["decision"]: r.data["chosen"] for r in chosen}
        canonical = nasforge.Architecture.create(
            "gnn",
            links=[int(picked.get(f"input_{i}", 0)) for i in range(4)],
            ops=[picked[f"op_{i}"] for i in range(4)],
        )
        from nasforge.spaces.base import SPACES

        space = SPACES.create("gnn")
        assert space.canonical_key(first) == space.canonical_key(canonical)
    assert (db_path.parent / f"{db_path.name}.artifacts").is_dir()


@pytest.mark.parametrize("strategy", ["darts", "pc-darts"])
def test_darts_searches_nb201_cells_on_digits(db_path: Path, strategy: str) -> None:
    result = nasforge.search(
        task="image:digits",
        strategy=strategy,
        budget=1,
        seed=0,
        epochs=2,
        training={"channels": 4, "cells_per_stage": 1},
        name="cells",
        db=db_path,
    )
    assert result.best is not None and result.best.arch.space == "nb201"
    last = _phase(db_path, "cells", "epoch")[-1].data
    assert sorted(last["weights"]) == sorted(
        f"edge_{t}_{s}" for t, s in ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
    )
    if strategy == "pc-darts":
        # edge normalisation: one softmax over the edges into nodes 2 and 3
        edges = last["edge_weights"]
        assert sorted(edges) == ["edge_2_0+edge_2_1", "edge_3_0+edge_3_1+edge_3_2"]
        assert all(abs(sum(w) - 1) < 1e-4 for w in edges.values())
        html = nasforge.report("cells", db_path.parent / "r.html", db=db_path).read_text()
        assert "edge weights of edge_3_0+edge_3_1+edge_3_2" in html
    else:
        assert "edge_weights" not in last


def test_proxylessnas_trades_accuracy_for_predicted_latency(db_path: Path) -> None:
    found = {}
    for weight in (0.0, 5.0):
        name = f"latency-{weight}"
        nasforge.search(
            strategy="proxylessnas",
            options={"latency_weight": weight, "arch_lr": 0.05},
            budget=1,
            name=name,
            db=db_path,
            **GRAPH,
        )
        epochs = _phase(db_path, name, "epoch")
        found[weight] = epochs
        (trial,) = api.trials(name, db=db_path)
        assert trial.arch.to_dict() == epochs[-1].data["derived"]  # the most probable one
    heavy, free = found[5.0], found[0.0]
    # the table is timed on this machine, so only the direction is asserted, not a ratio:
    # how far latency can fall depends on how the measured ops differ here
    assert heavy[-1].data["expected_latency_ms"] < heavy[0].data["expected_latency_ms"]
    assert heavy[-1].data["expected_latency_ms"] < free[-1].data["expected_latency_ms"]
    assert heavy[-1].data["latency_pred_ms"] < free[-1].data["latency_pred_ms"]
    html = nasforge.report("latency-5.0", db_path.parent / "r.html", db=db_path).read_text()
    assert "predicted latency (per-op table)" in html and "expected under the weights" in html


@pytest.mark.parametrize("strategy", ["darts", "gdas", "spos"])
def test_one_shot_searches_mlps_on_a_table(db_path: Path, strategy: str) -> None:
    options = {"population": 6, "generations": 2, "parents": 3} if strategy == "spos" else {}
    result = nasforge.search(
        task="tabular:wine",
        strategy=strategy,
        options={**options, "top_k": 2},
        budget=2,
        seed=0,
        epochs=6,
        name="mlps",
        db=db_path,
    )
    trials = api.trials("mlps", db=db_path)
    assert len(trials) == 2 and all(t.status is Status.COMPLETE for t in trials)
    assert result.best is not None and result.best.arch.space == "mlp"
    last = _phase(db_path, "mlps", "epoch")[-1].data
    if strategy == "spos":
        assert _phase(db_path, "mlps", "generation")[-1].data["scored"] >= 6
    else:
        assert 0 <= last["val_acc"] <= 1 and last["free"] == 0.0
        assert sorted(last["weights"]) == sorted(
            ["depth", "width_0", "width_1", "width_2", "width_3", "activation", "dropout", "norm"]
        )


def test_a_finished_phase_is_read_back_not_trained_again(db_path: Path) -> None:
    kwargs = {"strategy": "gdas", "name": "again", "db": db_path, **GRAPH}
    nasforge.search(budget=1, **kwargs)
    first = _phase(db_path, "again", "result")[0]
    second = nasforge.search(budget=1, **kwargs)
    assert second.summary.resumed_trials == 1 and second.summary.new_trials == 0
    assert _phase(db_path, "again", "result")[0].at == first.at
    # the report shows the phase: what it derived and how the weights evolved
    html = nasforge.report("again", db_path.parent / "r.html", db=db_path).read_text()
    section = html[html.index('<section id="supernet">') :]
    section = section[: section.index("</section>")]
    assert "gdas: 12 supernet epochs" in section and "parameter-free ops" in section
    # val, loss, free share; 4 op decisions and 3 input decisions (node 1 has one input)
    assert section.count("<svg") == 3 + 7
    assert "architecture weights of op_3" in section and "raw input" in section


DIGITS: dict[str, Any] = {
    "task": "image:digits",
    "seed": 0,
    "epochs": 12,
    "training": {"channels": 4, "cells_per_stage": 1},
}


@pytest.mark.parametrize(
    ("strategy", "task"), [("darts", GRAPH), ("enas", GRAPH), ("gdas", DIGITS)]
)
def test_a_phase_resumed_from_its_checkpoint_ends_as_an_unbroken_one(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str, task: dict[str, Any]
) -> None:
    """Stop after epoch 7 (checkpoint at 5): the resumed phase runs 6.. again and ends with
    the same weights and derived architecture as a phase that never stopped."""
    from nasforge.oneshot import phase as phase_module

    class Stop(Exception):
        pass

    real = phase_module._save_checkpoint
    calls: list[int] = []

    def save(context: Any, epoch: int, state: Any) -> None:
        real(context, epoch, state)
        calls.append(epoch)

    monkeypatch.setattr(phase_module, "_save_checkpoint", save)
    import nasforge.store.sql as sql

    put = sql.SqlStore.put_phase

    def put_then_stop(self: Any, eid: int, kind: str, step: int, data: Any) -> None:
        put(self, eid, kind, step, data)
        if kind == "epoch" and step == 7 and not getattr(put_then_stop, "done", False):
            put_then_stop.done = True  # type: ignore[attr-defined]
            raise Stop

    monkeypatch.setattr(sql.SqlStore, "put_phase", put_then_stop)
    kwargs = {"strategy": strategy, "budget": 1, "db": db_path, **task}
    with pytest.raises(Stop):
        nasforge.search(name="cut", **kwargs)
    assert calls == [5] and not _phase(db_path, "cut", "result")
    nasforge.search(name="cut", **kwargs)
    assert calls == [5, 10, 12]
    nasforge.search(name="whole", **kwargs)
    cut, whole = _phase(db_path, "cut", "epoch"), _phase(db_path, "whole", "epoch")
    assert [r.step for r in cut] == list(range(1, 13))
    for a, b in zip(cut, whole, strict=True):
        assert a.data == {**b.data, "seconds": a.data["seconds"]}  # all but the timing

    assert (
        _phase(db_path, "cut", "result")[0].data["derived"]
        == _phase(db_path, "whole", "result")[0].data["derived"]
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "synthetic", "--strategy", "darts", "-o", "order=3"], "order must be 1"),
        (
            ["--task", "tabular:wine", "--strategy", "pc-darts"],
            "space 'mlp' has no partial-channel supernet",
        ),
        (
            ["--task", "tabular:wine", "--strategy", "proxylessnas"],
            "needs a space with a per-operation latency table; space 'mlp' has none",
        ),
        (
            ["--benchmark", "nas-bench-graph:cora", "--strategy", "spos"],
            "needs a training task (--task), not a table look-up",
        ),
        (["--task", "synthetic", "--strategy", "gdas", "-o", "tau_min=20"], "tau_min must be"),
        (["--task", "synthetic", "--strategy", "darts", "-o", "top_k=0"], "top_k must be"),
        (
            ["--task", "synthetic", "--strategy", "pc-darts", "-o", "partial=3"],
            "partial=3 must divide the hidden width",
        ),
        (
            ["--task", "synthetic", "--strategy", "proxylessnas", "-o", "latency_weight=-1"],
            "latency_weight must be",
        ),
    ],
)
def test_bad_one_shot_settings_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    db = tmp_path / "s.db"
    code = main(["search", *argv, "--budget", "1", "--db", str(db), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not db.exists()


def test_the_strategy_refuses_other_objectives() -> None:
    with pytest.raises(ConfigError, match="optimises the task's validation metric"):
        nasforge.plan(task="synthetic", strategy="darts", objectives=["latency_ms:min"], budget=1)


def test_checkpoint_is_a_safetensors_file_beside_the_store(db_path: Path) -> None:
    nasforge.search(
        strategy="spos", budget=1, name="ck", db=db_path, options={"generations": 0}, **GRAPH
    )
    folder = db_path.parent / f"{db_path.name}.artifacts"
    (checkpoint,) = folder.rglob(CHECKPOINT)
    assert checkpoint.read_bytes()[8:9] == b"{"  # a safetensors header, nothing pickled
    with sqlite3.connect(db_path) as conn:
        kinds = dict(conn.execute("SELECT kind, count(*) FROM nasforge_phase GROUP BY kind"))
    assert kinds == {"epoch": 12, "result": 1}


def _epochs_stored(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM nasforge_phase").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_kill_9_in_the_supernet_phase_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    """A real search process killed with SIGKILL in its supernet phase; the same command
    again resumes from the last checkpoint (epochs stored before it are kept, not re-run)
    and finishes with the derived architecture trained."""
    db = tmp_path / "kill.db"
    argv = [
        sys.executable,
        "-m",
        "nasforge.cli",
        "search",
        "--task",
        "synthetic",
        "--strategy",
        "darts",
        "--epochs",
        "40",
        "--budget",
        "1",
        "-o",
        "checkpoint_every=4",
        "--db",
        str(db),
        "--name",
        "killed",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while _epochs_stored(db) < 10 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    before = {r.step: r.at for r in _phase(db, "killed", "epoch")}
    assert 10 <= len(before) < 40 and not _phase(db, "killed", "result")
    checkpointed = max(s for s in before if s % 4 == 0)
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "supernet phase (darts): 40 epochs" in again.stdout
    after = {r.step: r.at for r in _phase(db, "killed", "epoch")}
    assert sorted(after) == list(range(1, 41))
    # epochs up to the checkpoint were kept; only the later ones ran again
    assert all(after[s] == before[s] for s in before if s <= checkpointed)
    assert all(after[s] != before[s] for s in before if s > checkpointed)
    (trial,) = api.trials("killed", db=db)
    assert trial.status is Status.COMPLETE
