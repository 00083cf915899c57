"""Export and reload: real searches into real SQLite stores, real training, a fresh process.

Each exported model is checked three ways: its metrics on raw inputs (the standardisation is
inside the model) equal the ones the export run measured, a new Python process that loads the
folder with ``nasforge.load`` gives the same outputs, and ONNX Runtime gives the same outputs
within 1e-4.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import nasforge
from nasforge import api
from nasforge.architecture import Architecture
from nasforge.artifacts import ArtifactStore
from nasforge.cli import main
from nasforge.evaluators.training import TrainingEvaluator
from nasforge.exporting.exporter import StoredWeightsWarning
from nasforge.exporting.onnx import run_onnx
from nasforge.result import Result, Status
from nasforge.store.sql import open_store
from nasforge.tasks.supervised import SupervisedTask, split_arrays

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# -- helpers ----------------------------------------------------------------------------------
def _load_in_subprocess(folder: Path, inputs: list[np.ndarray], tmp: Path) -> np.ndarray:
    """Outputs of ``nasforge.load(folder)`` on ``inputs``, computed in a fresh interpreter."""
    names = []
    for i, array in enumerate(inputs):
        np.save(tmp / f"in{i}.npy", array)
        names.append(str(tmp / f"in{i}.npy"))
    script = textwrap.dedent(
        f"""
        import sys, numpy as np, torch, nasforge
        model = nasforge.load({str(folder)!r})
        assert not model.training, "load must return the model in eval mode"
        inputs = [torch.from_numpy(np.load(p)) for p in {names!r}]
        with torch.no_grad():
            np.save({str(tmp / "out.npy")!r}, model(*inputs).numpy())
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    return np.load(tmp / "out.npy")


def _snapshot(db: Path) -> tuple[Any, ...]:
    store = open_store(db, create=False)
    try:
        exps = store.list_experiments()
        return tuple((e, tuple(store.trials(e.id))) for e in exps)
    finally:
        store.close()


def _meta(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "nasforge.json").read_text())
    return data


def _raw_digits() -> SupervisedTask:
    """scikit-learn's digits split as ``image:digits`` splits them, not standardised."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return split_arrays(
        (bunch.images.astype(np.float32) / 16.0)[:, None],
        bunch.target,
        name="raw",
        modality="image",
        classes=[str(c) for c in range(10)],
        standardize=False,
    )


def _raw_table(name: str, kind: str) -> SupervisedTask:
    import sklearn.datasets as skd

    bunch = getattr(skd, f"load_{name}")()
    classes = [str(c) for c in bunch.target_names] if kind == "classification" else None
    return split_arrays(
        bunch.data,
        bunch.target,
        name="raw",
        modality="tabular",
        kind=kind,
        classes=classes,
        standardize=False,
    )


def _check_onnx(folder: Path, inputs: list[np.ndarray], torch_out: np.ndarray) -> None:
    assert (folder / "model.onnx").is_file()
    got = run_onnx(folder / "model.onnx", [torch.from_numpy(a) for a in inputs])
    assert got.shape == torch_out.shape
    np.testing.assert_allclose(got, torch_out, atol=1e-4, rtol=0)


# -- images (nb201) and tables (mlp) ------------------------------------------------------------
@pytest.mark.slow
def test_digits_export_reloads_in_a_new_process(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    result = api.search(
        task="image:digits", strategy="random", budget=2, epochs=2, seed=0, name="d", db=db
    )
    assert result.best is not None
    before = _snapshot(db)

    folder = api.export("d", out=tmp_path / "model", db=db)

    assert _snapshot(db) == before  # the store is only read
    assert sorted(p.name for p in folder.iterdir()) == [
        "model.onnx",
        "model.safetensors",
        "nasforge.json",
    ]
    meta = _meta(folder)
    assert meta["format_version"] == 1 and meta["space"] == "nb201"
    assert meta["trial"] == result.best.number
    assert meta["canonical_key"] == result.best.key
    assert meta["architecture"] == result.best.arch.to_dict()
    assert meta["hyper"] == {"channels": 8, "cells_per_stage": 1}
    assert meta["task"]["input_shape"] == [1, 8, 8] and len(meta["task"]["classes"]) == 10
    assert len(meta["preprocessing"]["standardize"]["mean"]) == 1  # per channel
    assert meta["trial_metrics"]["metrics"] == dict(result.best.metrics)
    run = meta["export_metrics"]
    assert run["epochs"] == 2 and run["seed"] == 0
    # same data, epochs and seed as the search: the same training run
    assert run["val_acc"] == pytest.approx(result.best.metrics["val_acc"], abs=1e-9)

    raw = _raw_digits()
    x_val = raw.x_val.numpy()
    out = _load_in_subprocess(folder, [x_val], tmp_path)
    accuracy = float((out.argmax(axis=1) == raw.y_val.numpy()).mean())
    assert accuracy == pytest.approx(run["val_acc"], abs=1e-6)  # raw inputs, baked standardisation
    model = nasforge.load(folder)
    with torch.no_grad():
        here = model(torch.from_numpy(x_val)).numpy()
    np.testing.assert_allclose(out, here, atol=1e-6, rtol=0)
    _check_onnx(folder, [x_val], out)
    assert meta["onnx"]["checked_with_onnxruntime"] is True


@pytest.mark.parametrize(
    ("dataset", "kind", "metric"),
    [("breast_cancer", "classification", "acc"), ("diabetes", "regression", "rmse")],
)
def test_tabular_export_reloads_in_a_new_process(
    tmp_path: Path, dataset: str, kind: str, metric: str
) -> None:
    db = tmp_path / "s.db"
    result = api.search(
        task=f"tabular:{dataset}", strategy="random", budget=2, epochs=3, seed=1, name="t", db=db
    )
    assert result.best is not None

    folder = nasforge.export("t", out=tmp_path / "model", db=db)

    meta = _meta(folder)
    run = meta["export_metrics"]
    assert meta["space"] == "mlp" and meta["hyper"] is None
    assert run[f"val_{metric}"] == pytest.approx(result.best.metrics[f"val_{metric}"], rel=1e-6)
    assert len(meta["preprocessing"]["standardize"]["std"]) == meta["task"]["input_shape"][0]
    raw = _raw_table(dataset, kind)
    x_val = raw.x_val.numpy()
    out = _load_in_subprocess(folder, [x_val], tmp_path)
    y = raw.y_val.numpy()
    if kind == "classification":
        value = float((out.argmax(axis=1) == y).mean())
    else:  # predictions in the targets' units
        assert meta["target_scaling"]["applied_in_model"] is True
        value = float(np.sqrt(((out[:, 0] - y) ** 2).mean()))
    assert value == pytest.approx(run[f"val_{metric}"], rel=1e-4)
    _check_onnx(folder, [x_val], out)


# -- graphs (gnn) ------------------------------------------------------------------------------
class _Given(nasforge.Strategy):
    """Proposes the architectures it is given, in order (to export chosen ops)."""

    name = "given"

    def __init__(self, space: Any, *, objective: Any, archs: list[Architecture]) -> None:
        super().__init__(space, objective=objective, seed=0)
        self.archs = list(archs)

    def _propose(self) -> Architecture | None:
        return self.archs.pop(0) if self.archs else None


def _graph_experiment(db: Path, name: str, archs: list[Architecture]) -> None:
    settings = api.plan(task="synthetic", epochs=5, seed=0, name=name, budget=len(archs))
    store = open_store(db)
    try:
        nasforge.Experiment(
            name=name,
            space=settings.space,
            evaluator=settings.evaluator,
            strategy=_Given(settings.space, objective=settings.objective, archs=archs),
            store=store,
            source=settings.source,
        ).run(settings.budget)
    finally:
        store.close()


def _graph_inputs() -> list[np.ndarray]:
    from nasforge.tasks.node import planted_partition

    data = planted_partition(seed=0)
    return [data.x.numpy(), data.edge_index.numpy()]


@pytest.mark.slow
def test_gnn_exports_of_every_op_match_onnx_runtime(tmp_path: Path) -> None:
    """The eight PyG ops of the gnn space, in two architectures, all export to ONNX."""
    db = tmp_path / "g.db"
    archs = [
        Architecture.create("gnn", links=[0, 1, 1, 0], ops=["gcn", "sage", "fc", "graph"]),
        Architecture.create("gnn", links=[0, 1, 2, 0], ops=["gat", "gin", "cheb", "arma"]),
    ]
    _graph_experiment(db, "g", archs)
    stored = api.trials("g", db=db)
    inputs = _graph_inputs()
    for trial in stored:
        folder = tmp_path / f"m{trial.number}"
        args = ["export", "--name", "g", "--trial", str(trial.number), "--out", str(folder)]

        assert main([*args, "--db", str(db)]) == 0

        meta = _meta(folder)
        assert meta["model"]["graph"] is True and meta["preprocessing"]["standardize"] is None
        assert meta["onnx"]["message"] is None
        assert meta["export_metrics"]["val_acc"] == pytest.approx(trial.metrics["val_acc"])
        work = tmp_path / f"w{trial.number}"
        work.mkdir()
        out = _load_in_subprocess(folder, inputs, work)
        assert out.shape == (600, 4)
        accuracy = (out.argmax(axis=1) == planted_y())[planted_val()].mean()
        assert accuracy == pytest.approx(meta["export_metrics"]["val_acc"])
        _check_onnx(folder, inputs, out)


def planted_y() -> np.ndarray:
    from nasforge.tasks.node import planted_partition

    return planted_partition(seed=0).y.numpy()


def planted_val() -> np.ndarray:
    from nasforge.tasks.node import planted_partition

    return planted_partition(seed=0).val_mask.numpy()


@pytest.mark.slow
def test_nas_bench_graph_export_trains_on_real_cora(tmp_path: Path, planetoid_root: Path) -> None:
    db = tmp_path / "b.db"
    api.search(benchmark="nas-bench-graph:cora", strategy="random", budget=5, name="b", db=db)
    best = api.best("b", db=db)
    assert best is not None

    # the protocol's 400 epochs take minutes on a CPU: 10 show the path
    folder = api.export("b", out=tmp_path / "cora", db=db, data_root=planetoid_root, epochs=10)

    meta = _meta(folder)
    assert meta["data"]["trained_on"] == "planetoid:Cora"
    training = meta["training"]
    assert training["protocol"] == "NAS-Bench-Graph cora protocol"
    assert (training["epochs"], training["optimizer"], training["lr"]) == (10, "sgd", 0.1)
    assert meta["hyper"]["hidden"] == 256 and meta["hyper"]["dropout"] == 0.7
    assert meta["task"]["nodes"] == 2708 and meta["model"]["outputs"] == 7
    assert meta["trial_metrics"]["metrics"] == dict(best.metrics)  # the table's numbers
    assert meta["export_metrics"]["epochs_run"] == 10
    assert (folder / "model.onnx").is_file() and meta["onnx"]["checked_with_onnxruntime"]


# -- errors: one clear line, exit code 2, nothing written ----------------------------------------
@pytest.fixture
def nbg_store(tmp_path: Path) -> Path:
    """A NAS-Bench-Graph search (table look-ups) plus trials that cannot be exported."""
    db = tmp_path / "b.db"
    api.search(benchmark="nas-bench-graph:cora", strategy="random", budget=3, name="b", db=db)
    store = open_store(db)
    try:
        record = store.get_experiment("b")
        arch = Architecture.create("gnn", links=[0, 0, 1, 2], ops=["gcn", "gat", "skip", "fc"])
        key = "k"
        for result in (
            Result.failed("out of memory"),
            Result(status=Status.PRUNED, reason="the curve predicted a loss"),
            Result(status=Status.INFEASIBLE, reason="params<=1000 violated"),
        ):
            store.add_trial(record.id, arch, key, result, started_at=0.0, finished_at=1.0)
    finally:
        store.close()
    return db


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--name", "nope"], "nope"),
        (["--name", "b", "--trial", "99"], "no trial 99 (its trials: 0..5)"),
        (["--name", "b", "--trial", "3"], "trial 3 of experiment 'b' is FAILED: out of memory"),
        (["--name", "b", "--trial", "4"], "is PRUNED: the curve predicted a loss"),
        (["--name", "b", "--trial", "5"], "is INFEASIBLE: params<=1000 violated"),
        (["--name", "b", "--data-root", "EMPTY"], "pass --data-root DIR"),
    ],
)
def test_export_errors_write_nothing(
    nbg_store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: str,
) -> None:
    empty = tmp_path / "no-data"
    empty.mkdir()
    args = [str(empty) if a == "EMPTY" else a for a in args]
    before = _snapshot(nbg_store)
    listing = sorted(p.name for p in tmp_path.iterdir())

    code = main(["export", *args, "--out", str(tmp_path / "model"), "--db", str(nbg_store)])

    assert code == 2
    message = capsys.readouterr().err.strip()
    assert expected in message and len(message.splitlines()) == 1, message
    assert not (tmp_path / "model").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # no staging folder left
    assert _snapshot(nbg_store) == before


def test_export_refuses_a_non_empty_out_and_keeps_it(
    nbg_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")

    code = main(["export", "--name", "b", "--out", str(out), "--db", str(nbg_store)])

    assert code == 2
    assert "is not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert (out / "mine.txt").read_text() == "keep me"


def _nb201_record(db: Path) -> None:
    """An experiment stored as a NAS-Bench-201 table search stores it, with one COMPLETE cell
    (the table files themselves are not available offline)."""
    store = open_store(db)
    try:
        record, _ = store.get_or_create_experiment(
            "n",
            {
                "space": "nb201",
                "evaluator": {"kind": "nas-bench-201", "dataset": "cifar10-valid", "epochs": 200},
                "strategy": "random",
                "seed": 0,
                "objective": "val_acc:max",
                "source": {"benchmark": "nas-bench-201:cifar10-valid", "table": None},
            },
        )
        cell = Architecture.create("nb201", ops=["nor_conv_3x3"] * 6)
        store.add_trial(
            record.id, cell, "cell", Result(metrics={"val_acc": 91.0}), started_at=0, finished_at=1
        )
    finally:
        store.close()


def test_export_nas_bench_201_asks_for_other_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A NAS-Bench-201 table search cannot be retrained on CIFAR here: the error says to pass
    --task with images, and a task of another kind is refused."""
    db = tmp_path / "n.db"
    _nb201_record(db)
    out = tmp_path / "model"

    code = main(["export", "--name", "n", "--out", str(out), "--db", str(db)])

    assert code == 2
    assert "pass --task image:" in capsys.readouterr().err
    assert not out.exists()

    wrong = main(
        ["export", "--name", "n", "--task", "tabular:wine", "--out", str(out), "--db", str(db)]
    )
    assert wrong == 2 and "builds image models" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_export_nas_bench_201_cell_on_other_images(tmp_path: Path) -> None:
    db = tmp_path / "n.db"
    _nb201_record(db)

    folder = api.export("n", out=tmp_path / "m", db=db, task="image:digits", epochs=3)

    meta = _meta(folder)
    assert meta["architecture"]["genes"]["ops"] == ["nor_conv_3x3"] * 6
    assert meta["data"] == {
        "benchmark": "nas-bench-201:cifar10-valid",
        "trained_on": "image:digits",
        "task_options": {},
        "data_root": None,
    }
    assert meta["trial_metrics"]["metrics"] == {"val_acc": 91.0}
    assert meta["hyper"] == {"channels": 8, "cells_per_stage": 1}
    assert meta["training"]["epochs"] == 3 and meta["training"]["schedule"] == "cosine"
    assert meta["export_metrics"]["test_acc"] > 0.5
    raw = _raw_digits()
    out = _load_in_subprocess(folder, [raw.x_test.numpy()], tmp_path)
    accuracy = float((out.argmax(axis=1) == raw.y_test.numpy()).mean())
    assert accuracy == pytest.approx(meta["export_metrics"]["test_acc"], abs=1e-6)
    _check_onnx(folder, [raw.x_test.numpy()], out)


def test_load_refuses_what_is_not_an_export(tmp_path: Path) -> None:
    with pytest.raises(nasforge.ConfigError, match="not a folder written by 'nasforge export'"):
        nasforge.load(tmp_path / "missing")
    with pytest.raises(nasforge.ConfigError, match=r"lacks nasforge\.json"):
        nasforge.load(tmp_path)
    (tmp_path / "nasforge.json").write_text(
        json.dumps({"format": "nasforge-model", "format_version": 99})
    )
    with pytest.raises(nasforge.ConfigError, match="format version 99"):
        nasforge.load(tmp_path)


class _Svd(torch.nn.Module):
    """A graph layer computed with an op that ONNX opset 17 lacks (torch.linalg.svd)."""

    in_channels = 32

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return torch.linalg.svd(x, full_matrices=False).U  # (N, 32)


def test_onnx_export_names_the_op_that_does_not_export(tmp_path: Path) -> None:
    """No op of the gnn space fails with torch 2.13 and PyG 2.8 (see the test above); a layer
    that does gets a one-line message naming its op, and no file."""
    from nasforge.exporting.onnx import export_onnx
    from nasforge.exporting.torch import ExportedModel, ModelShape
    from nasforge.spaces.base import SPACES
    from nasforge.spaces.gnn import GnnHyper

    arch = Architecture.create("gnn", links=[0, 1, 0, 0], ops=["gcn", "sage", "skip", "skip"])
    space = SPACES.create("gnn")
    net = space.build(arch, ModelShape((32,), 4), GnnHyper(hidden=32))
    net.layers[0] = _Svd()
    model = ExportedModel(net, graph=True).eval()
    x, edge_index = (torch.from_numpy(a) for a in _graph_inputs())

    outcome = export_onnx(model, (x, edge_index), tmp_path / "model.onnx")

    assert not outcome.written and outcome.message is not None
    assert "op gcn (_Svd) does not export to ONNX" in outcome.message
    assert "\n" not in outcome.message
    assert not (tmp_path / "model.onnx").exists()


# -- stored weights: used instead of retraining when they fit ------------------------------------
def _store_weights(db: Path, name: str, **search: Any) -> ArtifactStore:
    """Save every trial's weights as the search loop does, from an evaluator that keeps them
    (the search's own evaluator, rebuilt from the same settings)."""
    settings = api.plan(name=name, **search)
    evaluator = settings.evaluator
    assert isinstance(evaluator, TrainingEvaluator)
    evaluator.keep_weights = True
    store = open_store(db, create=False)
    try:
        record = store.get_experiment(name)
        artifacts = ArtifactStore.for_experiment(store.target, record.id)
        for trial in store.trials(record.id):
            result = evaluator.evaluate(trial.arch, trial.fidelity)
            assert result.metrics == trial.metrics  # the same run as the search's
            assert result.weights is not None
            artifacts.save_weights(trial.number, result.weights)
    finally:
        store.close()
    return artifacts


def _kept(db: Path, name: str) -> ArtifactStore:
    """The weights a ``keep_weights`` search saved: one file per COMPLETE trial, no other."""
    with open_store(db, create=False) as store:
        record = store.get_experiment(name)
        trials = store.trials(record.id)
    artifacts = ArtifactStore.for_experiment(str(db), record.id)
    assert artifacts.root.resolve() == Path(f"{db}.artifacts", f"experiment-{record.id}").resolve()
    kept = sorted(p.name for p in artifacts.root.iterdir())
    assert kept == sorted(
        f"trial-{t.number}.safetensors" for t in trials if t.status is Status.COMPLETE
    )
    return artifacts


@pytest.mark.parametrize(
    ("dataset", "kind", "metric"),
    [("breast_cancer", "classification", "acc"), ("diabetes", "regression", "rmse")],
)
def test_export_uses_the_stored_weights_and_retrain_trains(
    tmp_path: Path, dataset: str, kind: str, metric: str
) -> None:
    db = tmp_path / "s.db"
    search: dict[str, Any] = {
        "task": f"tabular:{dataset}",
        "strategy": "random",
        "budget": 2,
        "epochs": 3,
        "seed": 1,
    }
    result = api.search(**search, name="t", db=db, keep_weights=True)
    best = result.best
    assert best is not None
    artifacts = _kept(db, "t")
    stored = artifacts.load_weights(best.number)
    before = _snapshot(db)

    folder = nasforge.export("t", out=tmp_path / "model", db=db)

    assert _snapshot(db) == before
    meta = _meta(folder)
    assert meta["weights_source"] == f"stored weights of trial {best.number}"
    assert meta["weights_note"] == str(artifacts.weights_path(best.number))
    run = meta["export_metrics"]
    assert run["epochs_run"] is None and run["best_epoch"] is None  # nothing was trained
    assert run["epochs"] == 3
    # the stored weights themselves, not a retrained copy of them
    exported = nasforge.load(folder).state_dict()
    assert all(torch.equal(exported[f"net.{k}"], v) for k, v in stored.items())
    # and they score what the trial scored, on raw inputs, in a fresh process
    assert run[f"val_{metric}"] == pytest.approx(best.metrics[f"val_{metric}"], rel=1e-6)
    assert run[f"test_{metric}"] == pytest.approx(best.test_metrics[f"test_{metric}"], rel=1e-6)
    raw = _raw_table(dataset, kind)
    out = _load_in_subprocess(folder, [raw.x_test.numpy()], tmp_path)
    y = raw.y_test.numpy()
    if kind == "classification":
        value = float((out.argmax(axis=1) == y).mean())
    else:
        value = float(np.sqrt(((out[:, 0] - y) ** 2).mean()))
    assert value == pytest.approx(best.test_metrics[f"test_{metric}"], rel=1e-4)

    again = tmp_path / "retrained"
    args = ["export", "--name", "t", "--out", str(again), "--db", str(db), "--retrain"]
    assert main(args) == 0
    meta = _meta(again)
    assert meta["weights_source"] == "retrained"
    assert "--retrain" in meta["weights_note"]
    run = meta["export_metrics"]
    assert run["epochs_run"] == 3 and run["best_epoch"] is not None
    assert run[f"val_{metric}"] == pytest.approx(best.metrics[f"val_{metric}"], rel=1e-6)

    shorter = nasforge.export("t", out=tmp_path / "short", db=db, epochs=2)
    meta = _meta(shorter)
    assert meta["weights_source"] == "retrained" and meta["export_metrics"]["epochs_run"] == 2
    assert "trained for 3 epochs, export trains 2" in meta["weights_note"]


@pytest.mark.parametrize("damage", ["garbage", "pickle", "mismatch", "link-out"])
def test_export_retrains_when_the_stored_weights_do_not_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    db = tmp_path / "s.db"
    search: dict[str, Any] = {
        "task": "tabular:wine",
        "strategy": "random",
        "budget": 1,
        "epochs": 2,
        "seed": 0,
    }
    api.search(**search, name="w", db=db, keep_weights=True)
    artifacts = _kept(db, "w")
    path = artifacts.weights_path(0)
    assert path is not None
    said = {
        "garbage": "is damaged or not a safetensors file",
        "pickle": "is damaged or not a safetensors file",
        "mismatch": "do not fit its architecture",
        "link-out": "outside the artifact folder",
    }[damage]
    if damage == "garbage":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "pickle":
        torch.save({"w": torch.zeros(2)}, path)
    elif damage == "mismatch":
        artifacts.save_weights(0, {"layers.0.weight": torch.zeros(3, 3)})
    else:
        elsewhere = tmp_path / "elsewhere.safetensors"
        path.rename(elsewhere)
        path.symlink_to(elsewhere)
    out = tmp_path / "model"

    code = main(["export", "--name", "w", "--out", str(out), "--db", str(db)])

    assert code == 0
    warning = capsys.readouterr().err.strip()
    assert warning.startswith("warning: ") and said in warning, warning
    assert "retraining" in warning
    meta = _meta(out)
    assert meta["weights_source"] == "retrained" and said in meta["weights_note"]
    assert meta["export_metrics"]["epochs_run"] == 2
    with pytest.warns(StoredWeightsWarning, match=said):
        nasforge.export("w", out=tmp_path / "again", db=db)


def test_graph_export_uses_the_stored_weights(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    arch = Architecture.create("gnn", links=[0, 1, 1, 0], ops=["gcn", "sage", "fc", "graph"])
    _graph_experiment(db, "g", [arch])
    _store_weights(db, "g", task="synthetic", epochs=5, seed=0, budget=1)
    (trial,) = api.trials("g", db=db)

    folder = api.export("g", out=tmp_path / "m", db=db)

    meta = _meta(folder)
    assert meta["weights_source"] == "stored weights of trial 0"
    run = meta["export_metrics"]
    assert (run["val_acc"], run["test_acc"]) == (
        pytest.approx(trial.metrics["val_acc"]),
        pytest.approx(trial.test_metrics["test_acc"]),
    )
    out = _load_in_subprocess(folder, _graph_inputs(), tmp_path)
    accuracy = (out.argmax(axis=1) == planted_y())[planted_val()].mean()
    assert accuracy == pytest.approx(trial.metrics["val_acc"])
