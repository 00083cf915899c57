"""Latency: measurement backends, the stored per-op table, and its predictions."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.architecture import Architecture
from nasforge.cli import main
from nasforge.errors import ConfigError
from nasforge.latency import (
    LatencyTable,
    LatencyTableError,
    compare_latency,
    device_fingerprint,
    entry_names,
    latency_cache_dir,
    measure_architecture,
    measure_latency,
)
from nasforge.spaces.gnn import GnnHyper, GnnSpace
from nasforge.spaces.mlp import MlpSpace
from nasforge.spaces.nb201 import Nb201Hyper, Nb201Space
from nasforge.tasks.image import load_digits
from nasforge.tasks.node import NodeClassificationTask, planted_partition
from nasforge.tasks.supervised import SupervisedTask

GNN_HYPER = GnnHyper(hidden=8, gat_heads=2, pre=0, post=1)
NB201_HYPER = Nb201Hyper(channels=4, cells_per_stage=1)
CELL_OPS = ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


@pytest.fixture(scope="module")
def graph() -> NodeClassificationTask:
    return NodeClassificationTask("tiny", planted_partition(nodes=60, features=6, seed=0))


@pytest.fixture(scope="module")
def digits() -> SupervisedTask:
    return load_digits()


@pytest.fixture
def threads() -> Iterator[int]:
    """PyTorch's thread count, restored after the test."""
    old = torch.get_num_threads()
    yield old
    torch.set_num_threads(old)


def _gnn_table(
    graph: NodeClassificationTask, cache: Path, *, refresh: bool = False
) -> LatencyTable:
    return LatencyTable.for_task(
        GnnSpace(), graph, GNN_HYPER, cache=cache, warmup=1, repeats=3, refresh=refresh
    )


def test_table_is_stored_then_read_without_measuring(
    graph: NodeClassificationTask, tmp_path: Path
) -> None:
    first = _gnn_table(graph, tmp_path)
    assert first.path is not None and first.path.parent == tmp_path
    # 8 ops x (raw, hidden) + pre + out/1..4
    assert first.measurements == len(first.entries) == 8 * 2 + 1 + 4
    assert set(first.entries) == entry_names(first.space, GNN_HYPER, "torch")
    stored = json.loads(first.path.read_text())
    assert stored["entries"] == first.entries
    assert stored["key"]["device"] == device_fingerprint()
    written = first.path.stat().st_mtime_ns

    second = _gnn_table(graph, tmp_path)
    assert second.measurements == 0  # read, nothing timed
    assert second.entries == first.entries and second.path == first.path
    assert second.build_seconds == pytest.approx(first.build_seconds)
    assert first.path.stat().st_mtime_ns == written  # not rewritten
    arch = GnnSpace().make([0, 1, 1, 0], ["gcn", "gat", "skip", "fc"])
    assert second.predict(arch) == first.predict(arch) > 0


def test_default_cache_folder_follows_nasforge_cache(
    graph: NodeClassificationTask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NASFORGE_CACHE", str(tmp_path))
    assert latency_cache_dir() == tmp_path / "latency"
    table = LatencyTable.for_task("gnn", graph, GNN_HYPER, warmup=1, repeats=3)
    assert table.path is not None and table.path.parent == tmp_path / "latency"


def test_changed_fingerprint_measures_again(
    graph: NodeClassificationTask, tmp_path: Path, threads: int
) -> None:
    first = _gnn_table(graph, tmp_path)
    torch.set_num_threads(2 if threads == 1 else 1)  # another device setting
    other = _gnn_table(graph, tmp_path)
    assert other.measurements == len(other.entries)
    assert other.path != first.path
    assert other.key["device"]["torch_threads"] != first.key["device"]["torch_threads"]
    torch.set_num_threads(threads)

    # a file under the right name whose stored fingerprint is another device's is replaced
    assert first.path is not None
    data = json.loads(first.path.read_text())
    data["key"]["device"]["cpu"] = "some other CPU"
    first.path.write_text(json.dumps(data))
    again = _gnn_table(graph, tmp_path)
    assert again.measurements == len(again.entries)
    assert json.loads(first.path.read_text())["key"] == first.key


@pytest.fixture(scope="module")
def stored(
    graph: NodeClassificationTask, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    """File name and text of a stored table of ``graph``."""
    table = _gnn_table(graph, tmp_path_factory.mktemp("stored"))
    assert table.path is not None
    return table.path.name, table.path.read_text()


def _set_entry(text: str, name: str, value: object) -> str:
    data = json.loads(text)
    data["entries"][name] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda text: text[: len(text) // 2], "not valid JSON"),
        (lambda text: json.dumps({"entries": {}}), "expected an object"),
        (lambda text: _set_entry(text, "pre", -1.0), "entry 'pre' is -1.0, not a finite"),
        (lambda text: _set_entry(text, "gat/raw", "fast"), "entry 'gat/raw' is 'fast', not a"),
        (lambda text: _set_entry(text, "conv/raw", 1.0), r"entries missing: \[\], unexpected"),
    ],
)
def test_corrupt_file_is_refused(
    graph: NodeClassificationTask,
    stored: tuple[str, str],
    tmp_path: Path,
    mangle: Callable[[str], str],
    reason: str,
) -> None:
    name, text = stored
    path = tmp_path / name
    path.write_text(mangle(text))
    with pytest.raises(LatencyTableError, match=rf"{name} is corrupt \({reason}.*delete the file"):
        _gnn_table(graph, tmp_path)
    assert path.read_text() == mangle(text)  # neither used nor silently replaced


def test_refresh_replaces_a_corrupt_file(
    graph: NodeClassificationTask, stored: tuple[str, str], tmp_path: Path
) -> None:
    name, text = stored
    (tmp_path / name).write_text(text[:10])
    table = _gnn_table(graph, tmp_path, refresh=True)
    assert table.measurements > 0 and table.path == tmp_path / name
    assert _gnn_table(graph, tmp_path).measurements == 0  # readable again


def test_gnn_decomposition_matches_the_built_model(graph: NodeClassificationTask) -> None:
    """The table's terms are what ``space.build`` constructs: ops on raw or hidden input,
    skips for free, and the number of leaves reaching the output."""
    space = GnnSpace()
    table = LatencyTable(space=space, hyper=GNN_HYPER, key={}, entries={})
    rng = np.random.default_rng(0)
    for _ in range(200):
        arch = space.sample(rng)
        model = space.build(arch, graph, GNN_HYPER)
        terms = table.terms(arch)
        built = sum(1 for layer in model.layers if not isinstance(layer, torch.nn.Identity))
        raw = sum(
            1
            for layer, hidden in zip(model.layers, model._hidden_input, strict=True)
            if not isinstance(layer, torch.nn.Identity) and not hidden
        )
        assert sum(c for t, c in terms.items() if t.endswith(("/raw", "/hidden"))) == built
        assert sum(c for t, c in terms.items() if t.endswith("/raw")) == raw
        assert terms[f"out/{len(model.leaves)}"] == 1


def test_nb201_decomposition_matches_the_built_model(digits: SupervisedTask) -> None:
    space = Nb201Space()
    hyper = Nb201Hyper(channels=4, cells_per_stage=2)
    table = LatencyTable(space=space, hyper=hyper, key={}, entries={})
    rng = np.random.default_rng(0)
    for _ in range(100):
        arch = space.sample(rng)
        model = space.build(arch, digits, hyper)
        cells = [m for m in model.cells if type(m).__name__ == "Nb201Cell"]
        terms = table.terms(arch)
        live = sum(len(cell.edges) for cell in cells[:2])  # stage 0
        ops = sum(c for t, c in terms.items() if t.endswith("/0") and t[:-2] in CELL_OPS)
        assert ops == live
        zero = all(len(cell.edges) == 0 for cell in cells)
        assert terms["zero_cell/0"] == (2 if zero else 0)
        assert terms["cell/2"] == (0 if zero else 2)


def _ratios(
    space: GnnSpace | Nb201Space,
    task: object,
    hyper: object,
    archs: list[Architecture],
    cache: Path,
    refresh: bool,
) -> list[float]:
    """predicted / measured for ``archs``, each measured twice (the faster kept)."""
    timing = {"warmup": 3, "repeats": 15}
    table = LatencyTable.for_task(space, task, hyper, cache=cache, refresh=refresh, **timing)
    out = []
    for arch in archs:
        measured = min(measure_architecture(space, arch, task, hyper, **timing) for _ in range(2))
        out.append(table.predict(arch) / measured)
    return out


@pytest.mark.parametrize("space_name", ["gnn", "nb201"])
def test_prediction_is_near_measurement(
    space_name: str, digits: SupervisedTask, tmp_path: Path, threads: int
) -> None:
    # one thread: spinning OpenMP workers that lose their core make wall times erratic
    torch.set_num_threads(1)
    if space_name == "gnn":
        space: GnnSpace | Nb201Space = GnnSpace()
        # big enough that the ops' work, not Python's call overhead, dominates
        task: object = NodeClassificationTask(
            "small", planted_partition(nodes=300, features=16, seed=0)
        )
        hyper: object = GnnHyper(hidden=16, gat_heads=2)
        archs = [
            GnnSpace().make([0, 0, 0, 0], ["gcn", "skip", "skip", "skip"]),
            GnnSpace().make([0, 1, 2, 3], ["gat", "sage", "arma", "cheb"]),
            GnnSpace().make([0, 0, 1, 2], ["gin", "graph", "fc", "skip"]),
        ]
    else:
        space, task, hyper = Nb201Space(), digits, NB201_HYPER
        archs = [
            Nb201Space().from_string(text)
            for text in (
                "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|"
                "nor_conv_3x3~2|",
                "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                "|skip_connect~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|",
            )
        ]
    # other processes on a shared machine can slow the table's or the models' timings for a
    # while; a correct table comes within the factor in one of 3 tries (table re-measured)
    tries = []
    for attempt in range(3):
        ratios = _ratios(space, task, hyper, archs, tmp_path, refresh=attempt > 0)
        tries.append([round(r, 2) for r in ratios])
        if all(1 / 3 < r < 3 for r in ratios):
            break
    else:
        pytest.fail(f"predicted/measured outside (1/3, 3) in every try: {tries}")


def test_onnxruntime_backend_times_a_real_model(digits: SupervisedTask) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra (onnxruntime) is not installed")
    space = Nb201Space()
    arch = space.from_string(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    )
    model = space.build(arch, digits, NB201_HYPER)
    model.train()
    ms = measure_latency(model, digits.x_val[:1], backend="onnxruntime", repeats=3)
    assert math.isfinite(ms) and ms > 0
    assert model.training  # mode restored


def test_onnxruntime_table(
    graph: NodeClassificationTask, digits: SupervisedTask, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra (onnxruntime) is not installed")
    hyper = Nb201Hyper(channels=2, cells_per_stage=1)
    table = LatencyTable.for_task(
        Nb201Space(), digits, hyper, backend="onnxruntime", repeats=2, cache=tmp_path
    )
    assert table.key["device"]["backend"] == "onnxruntime"
    assert "onnxruntime" in table.key["device"]
    assert table.entries["call"] > 0  # one session call, counted once per model
    arch = Nb201Space().make(["nor_conv_3x3"] * 6)
    assert table.terms(arch)["call"] == 1 and table.predict(arch) > table.entries["call"]
    torch_table = LatencyTable.for_task(Nb201Space(), digits, hyper, repeats=2, cache=tmp_path)
    assert torch_table.path != table.path and "call" not in torch_table.entries
    # gnn models export too (PyG's message passing as ONNX scatter ops)
    gnn = GnnSpace().make([0, 1, 0, 0], ["gcn", "gat", "sage", "skip"])
    assert measure_architecture(GnnSpace(), gnn, graph, GNN_HYPER, backend="onnxruntime") > 0


def test_missing_onnxruntime_names_the_extra(
    digits: SupervisedTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    model = Nb201Space().build(Nb201Space().make(["skip_connect"] * 6), digits, NB201_HYPER)
    with pytest.raises(ConfigError, match=r"pip install 'nasforge\[onnx\]'"):
        measure_latency(model, digits.x_val[:1], backend="onnxruntime")


def test_bad_options_are_config_errors(graph: NodeClassificationTask, tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ConfigError, match="unknown latency backend 'tensorrt'; valid: torch"):
        measure_latency(model, torch.zeros(1, 2), backend="tensorrt")
    with pytest.raises(ConfigError, match="repeats must be an integer >= 1, got 0"):
        measure_latency(model, torch.zeros(1, 2), repeats=0)
    with pytest.raises(ConfigError, match="gnn and nb201 spaces, not 'mlp'"):
        LatencyTable.for_task(MlpSpace(), graph, cache=tmp_path)
    with pytest.raises(ConfigError, match="needs a node-classification task"):
        LatencyTable.for_task(GnnSpace(), load_digits(), cache=tmp_path)


def test_compare_latency() -> None:
    c = compare_latency([1.0, 2.0, 4.0], [1.0, 2.5, 5.0])
    assert c.n == 3 and c.spearman == pytest.approx(1.0) and c.kendall == pytest.approx(1.0)
    assert c.mape == pytest.approx((0 + 20 + 20) / 3)
    assert c.median_ape == pytest.approx(20.0)
    with pytest.raises(ConfigError, match="equal length"):
        compare_latency([1.0], [1.0, 2.0])


def test_cli_latency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NASFORGE_CACHE", str(tmp_path))
    argv = ["latency", "--task", "image:digits", "-n", "3", "--repeats", "3"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "measured" in text and "MAPE" in text and "Spearman" in text
    assert "latency table (torch, cpu): measured" in text
    assert main(argv) == 0
    assert "read from the cache" in capsys.readouterr().out
    assert main([*argv, "--space", "mlp"]) == 2
    assert "gnn and nb201 spaces" in capsys.readouterr().err
