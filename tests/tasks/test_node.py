"""Node-classification tasks: loaders for real sources and the checks on bad graphs."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from nasforge.errors import ConfigError
from nasforge.tasks.node import (
    NodeClassificationTask,
    load_graph_file,
    load_planetoid,
    planted_partition,
)


def test_cora_loads_offline_without_writing_to_the_data_folder(planetoid_root: Path) -> None:
    before = sorted(p.name for p in (planetoid_root / "Cora").iterdir())
    data = load_planetoid("cora", planetoid_root)
    task = NodeClassificationTask("planetoid:Cora", data)
    assert task.describe() == {
        "kind": "node-classification",
        "name": "planetoid:Cora",
        "nodes": 2708,
        "edges": 10556,
        "features": 1433,
        "classes": 7,
        "split": [140, 500, 1000],
    }
    assert sorted(p.name for p in (planetoid_root / "Cora").iterdir()) == before


def test_planetoid_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown Planetoid dataset 'Corra'; valid: Cora"):
        load_planetoid("Corra", tmp_path)
    with pytest.raises(ConfigError, match="lacks the Planetoid raw files") as info:
        load_planetoid("Cora", tmp_path)
    assert "--data-root" in str(info.value) and "--download" in str(info.value)


def test_planted_partition_is_seeded_and_learnable() -> None:
    a, b = planted_partition(seed=3), planted_partition(seed=3)
    assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)
    assert not torch.equal(a.x, planted_partition(seed=4).x)
    task = NodeClassificationTask("synthetic", a)
    assert task.num_classes == 4 and task.num_features == 32
    # the planted structure is real: most edges join nodes of the same class
    src, dst = a.edge_index
    assert float((a.y[src] == a.y[dst]).float().mean()) > 0.6


def _graph() -> Data:
    return planted_partition(nodes=60, classes=3, features=5, p_in=0.2, p_out=0.02, seed=0)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: setattr(d, "y", d.y[:-5]), "y must hold one label per node: x has 60 nodes"),
        (lambda d: delattr(d, "val_mask"), "val_mask is missing"),
        (lambda d: d.x.__setitem__((3, 1), float("nan")), "NaN or infinite features in 1 nodes"),
        (lambda d: d.y.__setitem__(0, 7), None),  # 8 classes with unused labels is allowed
        (lambda d: d.y.__setitem__(0, -1), "labels must be in 0..C-1, found -1"),
        (lambda d: setattr(d, "x", torch.zeros(0, 5)), "non-empty (nodes, features)"),
        (lambda d: d.edge_index.__setitem__((0, 0), 999), "refers to nodes outside 0..59"),
        (lambda d: setattr(d, "y", d.y.float()), "integer class labels"),
        (lambda d: setattr(d, "test_mask", d.train_mask.clone()), "must not overlap"),
        (lambda d: setattr(d, "train_mask", torch.zeros(60, dtype=torch.bool)), "selects no node"),
    ],
)
def test_bad_graphs_are_refused_before_training(mutate, message) -> None:  # type: ignore[no-untyped-def]
    data = _graph()
    mutate(data)
    if message is None:
        NodeClassificationTask("g", data)
        return
    with pytest.raises(ConfigError, match=re.escape(message)):
        NodeClassificationTask("g", data)


def test_npz_and_pt_files_round_trip(tmp_path: Path) -> None:
    data = _graph()
    arrays = {k: data[k].numpy() for k in ("x", "y", "edge_index")}
    np.savez(tmp_path / "g.npz", **arrays)
    loaded = load_graph_file(tmp_path / "g.npz", split_seed=1)
    assert torch.equal(loaded.x, data.x) and int(loaded.train_mask.sum()) == 36
    NodeClassificationTask("file", loaded)
    torch.save(data.to_dict(), tmp_path / "g.pt")
    again = load_graph_file(tmp_path / "g.pt")
    assert torch.equal(again.test_mask, data.test_mask)


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch /tmp/nasforge-graph-pwned",))


def test_a_pt_file_cannot_run_code(tmp_path: Path) -> None:
    marker = Path("/tmp/nasforge-graph-pwned")
    marker.unlink(missing_ok=True)
    with (tmp_path / "evil.pt").open("wb") as fh:
        pickle.dump({"x": _Exploit()}, fh)
    with pytest.raises(ConfigError, match=r"cannot read .* safely as saved tensors"):
        load_graph_file(tmp_path / "evil.pt")
    assert not marker.exists()


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_graph_file(tmp_path / "none.npz")
    (tmp_path / "g.csv").write_text("a,b\n")
    with pytest.raises(ConfigError, match=r"must end in \.npz or \.pt"):
        load_graph_file(tmp_path / "g.csv")
    np.savez(tmp_path / "partial.npz", x=np.zeros((3, 2)))
    with pytest.raises(ConfigError, match=r"lacks \['y', 'edge_index'\]"):
        load_graph_file(tmp_path / "partial.npz")
