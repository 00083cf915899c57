"""The Planetoid raw reader: same graph as PyG, and no code run from a crafted file."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.errors import ConfigError
from nasforge.tasks.node import load_planetoid
from nasforge.tasks.planetoid_raw import (
    ALLOWED_GLOBALS,
    RAW_SUFFIXES,
    UnsafePickleError,
    _read_matrix,
    read_planetoid_raw,
)


def _copy_cora(planetoid_root: Path, root: Path) -> Path:
    """A writable copy of ``<planetoid_root>/Cora/raw`` under ``root``; returns the raw folder."""
    raw = root / "Cora" / "raw"
    raw.mkdir(parents=True)
    for file in (planetoid_root / "Cora" / "raw").iterdir():
        shutil.copyfile(file, raw / file.name)
    return raw


def _edge_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in edge_index.t().tolist()}


def test_cora_equals_pyg_planetoid(planetoid_root: Path, tmp_path: Path) -> None:
    from torch_geometric.datasets import Planetoid

    raw = _copy_cora(planetoid_root, tmp_path)
    ours = read_planetoid_raw(raw, "Cora")
    theirs = Planetoid(str(tmp_path), "Cora")[0]  # PyG's own parser, on a trusted temp copy

    assert ours.x.dtype == theirs.x.dtype == torch.float32
    assert torch.equal(ours.x, theirs.x)
    assert torch.equal(ours.y, theirs.y)
    assert ours.edge_index.dtype == torch.int64
    assert ours.edge_index.shape == theirs.edge_index.shape == (2, 10556)
    assert _edge_set(ours.edge_index) == _edge_set(theirs.edge_index)
    assert torch.equal(ours.edge_index, theirs.edge_index)  # same (target, source) order too
    for mask in ("train_mask", "val_mask", "test_mask"):
        assert ours[mask].dtype == torch.bool
        assert torch.equal(ours[mask], theirs[mask]), mask
    assert [int(ours[m].sum()) for m in ("train_mask", "val_mask", "test_mask")] == [140, 500, 1000]


def test_load_planetoid_uses_the_restricted_reader(planetoid_root: Path, tmp_path: Path) -> None:
    data = load_planetoid("cora", planetoid_root)
    assert torch.equal(data.x, read_planetoid_raw(planetoid_root / "Cora" / "raw", "Cora").x)
    assert not (planetoid_root / "Cora" / "processed").exists()  # no PyG cache written or read


def test_cora_needs_only_the_allowed_globals(planetoid_root: Path) -> None:
    import pickletools

    named: set[tuple[str, str]] = set()
    for suffix in RAW_SUFFIXES:
        if suffix == "test.index":
            continue
        data = (planetoid_root / "Cora" / "raw" / f"ind.cora.{suffix}").read_bytes()
        for op, arg, _ in pickletools.genops(data):
            if op.name == "GLOBAL":
                module, name = str(arg).split(" ")
                named.add((module, name))
    assert named <= set(ALLOWED_GLOBALS)
    assert named == {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("scipy.sparse.csr", "csr_matrix"),
        ("collections", "defaultdict"),
        ("__builtin__", "list"),
    }


class _Exploit:
    """Unpickling this runs ``os.system``, which would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("suffix", ["x", "graph"])
def test_crafted_pickle_is_refused_and_runs_nothing(
    planetoid_root: Path, tmp_path: Path, suffix: str
) -> None:
    raw = _copy_cora(planetoid_root, tmp_path / "data")
    marker = tmp_path / "pwned"
    target = raw / f"ind.cora.{suffix}"
    target.write_bytes(pickle.dumps(_Exploit(marker), protocol=2))

    with pytest.raises(UnsafePickleError, match=r"refusing to unpickle posix\.system") as info:
        load_planetoid("Cora", tmp_path / "data")
    assert str(target) in str(info.value)
    assert isinstance(info.value, ConfigError)
    assert not marker.exists()


def test_any_other_class_is_refused(tmp_path: Path) -> None:
    raw = tmp_path / "Cora" / "raw"
    raw.mkdir(parents=True)
    for suffix in RAW_SUFFIXES:
        (raw / f"ind.cora.{suffix}").write_bytes(b"")
    # a harmless-looking global outside the list: still refused, by its name
    (raw / "ind.cora.x").write_bytes(pickle.dumps(np.random.default_rng(0), protocol=2))
    with pytest.raises(UnsafePickleError, match=r"ind\.cora\.x: refusing to unpickle numpy"):
        read_planetoid_raw(raw, "Cora")


def test_truncated_file_is_a_config_error(planetoid_root: Path, tmp_path: Path) -> None:
    raw = _copy_cora(planetoid_root, tmp_path)
    allx = raw / "ind.cora.allx"
    allx.write_bytes(allx.read_bytes()[: allx.stat().st_size // 2])
    with pytest.raises(ConfigError, match=r"ind\.cora\.allx is not a readable Planetoid pickle"):
        load_planetoid("Cora", tmp_path)


def test_inconsistent_files_are_config_errors(planetoid_root: Path, tmp_path: Path) -> None:
    raw = _copy_cora(planetoid_root, tmp_path)
    index = raw / "ind.cora.test.index"
    lines = index.read_text().split()
    index.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ConfigError, match=r"test\.index lists 999 nodes but tx has 1000 rows"):
        read_planetoid_raw(raw, "Cora")
    index.write_text("12\nnot-a-number\n")
    with pytest.raises(ConfigError, match="is not a list of node ids"):
        read_planetoid_raw(raw, "Cora")


def _write_synthetic_citeseer(raw: Path, seed: int = 0) -> None:
    """Small raw files shaped like CiteSeer's: gaps among the test ids, self-loops, duplicates.

    Written with protocol 4 (Python 3's protocol 2 would store bytes through
    ``_codecs.encode``, which real, Python 2, Planetoid files never name).
    """
    import collections

    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n_train, n_all, features, classes = 7, 520, 6, 3
    test_ids = np.setdiff1d(np.arange(n_all, n_all + 15), [n_all + 3, n_all + 9])  # 2 isolated
    test_ids = rng.permutation(test_ids)
    num_nodes = n_all + 15

    def feats(rows: int) -> sp.csr_matrix:
        return sp.csr_matrix(rng.random((rows, features)) * (rng.random((rows, features)) < 0.4))

    def labels(rows: int) -> np.ndarray:
        return np.eye(classes, dtype=np.int32)[rng.integers(0, classes, rows)]

    graph: collections.defaultdict[int, list[int]] = collections.defaultdict(list)
    for node in range(num_nodes):
        graph[node] = [int(v) for v in rng.integers(0, num_nodes, 3)] + [node]  # a self-loop
    graph[5].extend([6, 6])  # duplicates
    files = {
        "x": feats(n_train),
        "tx": feats(len(test_ids)),
        "allx": feats(n_all),
        "y": labels(n_train),
        "ty": labels(len(test_ids)),
        "ally": labels(n_all),
        "graph": graph,
    }
    raw.mkdir(parents=True)
    for suffix, obj in files.items():
        (raw / f"ind.citeseer.{suffix}").write_bytes(pickle.dumps(obj, protocol=4))
    (raw / "ind.citeseer.test.index").write_text("".join(f"{i}\n" for i in test_ids))


def test_citeseer_isolated_test_nodes_match_pyg(tmp_path: Path) -> None:
    from torch_geometric.io import read_planetoid_data

    raw = tmp_path / "CiteSeer" / "raw"
    _write_synthetic_citeseer(raw)
    ours = read_planetoid_raw(raw, "CiteSeer")
    theirs = read_planetoid_data(str(raw), "CiteSeer")  # our own files: safe for pickle.load
    for key in ("x", "y", "edge_index", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(ours[key], theirs[key]), key
    assert ours.num_nodes == 535 and int(ours.test_mask.sum()) == 13
    assert not ours.x[[523, 529]].any()  # the isolated test ids get zero features


@pytest.mark.parametrize("fmt", ["csr", "csc", "lil"])
def test_sparse_matrices_pickled_by_scipy_are_read(tmp_path: Path, fmt: str) -> None:
    import scipy.sparse as sp

    dense = np.array([[0, 1.5, 0], [2, 0, 0], [0, 0, 0], [0, 3, 4]], dtype=np.float32)
    path = tmp_path / "ind.cora.x"  # protocol 4: see _write_synthetic_citeseer
    path.write_bytes(pickle.dumps(sp.csr_matrix(dense).asformat(fmt), protocol=4))
    assert np.array_equal(_read_matrix(path), dense)


def test_sparse_indices_are_checked_before_densifying(tmp_path: Path) -> None:
    import scipy.sparse as sp

    matrix = sp.csr_matrix(np.eye(3, dtype=np.float32))
    matrix.indices[1] = 7  # column 7 of a 3-column matrix: scipy's todense would not check
    path = tmp_path / "ind.cora.x"
    path.write_bytes(pickle.dumps(matrix, protocol=4))
    with pytest.raises(ConfigError, match=r"ind\.cora\.x: the csr matrix .* inconsistent"):
        _read_matrix(path)
