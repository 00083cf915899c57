"""NAS-Bench-Graph tables: all nine load safely and answer with validation and test apart."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from nasforge.architecture import Architecture
from nasforge.benchmarks.nas_bench_graph import DATASETS, NasBenchGraphTable, load_table
from nasforge.errors import ConfigError, InvalidArchitectureError, StoreError
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_shipped_table_loads(dataset: str) -> None:
    table = load_table(dataset)
    assert len(table) == (2021 if dataset == "proteins" else 26206)
    row = next(iter(table.rows.values()))
    assert 0 < row.valid <= 1 and 0 < row.test <= 1 and row.latency_s > 0 and row.params_m > 0


@pytest.mark.parametrize("dataset", DATASETS)
def test_evaluator_keeps_test_apart(dataset: str) -> None:
    ev = NasBenchGraphEvaluator(dataset=dataset)
    arch = ev.space.make([0, 0, 1, 1], ["gcn", "sage", "fc", "skip"])
    result = ev.evaluate(arch)
    row = ev.table[ev.arch_hash(arch)]
    assert result.metrics == {"val_acc": row.valid}
    assert result.test_metrics == {"test_acc": row.test}
    assert result.costs == {"latency_ms": row.latency_s * 1e3, "params": row.params_m * 1e6}
    assert result.visible().test_metrics == {}


def test_unknown_dataset_and_foreign_space() -> None:
    with pytest.raises(
        ConfigError, match="unknown NAS-Bench-Graph dataset 'imagenet'; valid: cora"
    ):
        NasBenchGraphEvaluator(dataset="imagenet")
    ev = NasBenchGraphEvaluator(dataset="proteins")
    with pytest.raises(InvalidArchitectureError, match="scores space 'gnn-proteins'"):
        ev.evaluate(Architecture.create("gnn", links=[0, 0, 0, 0], ops=["gat"] * 4))


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch /tmp/nasforge-pwned",))


def test_a_tampered_table_cannot_run_code(tmp_path: Path) -> None:
    path = tmp_path / "cora.bench"
    path.write_bytes(pickle.dumps({0: _Exploit()}))
    marker = Path("/tmp/nasforge-pwned")
    marker.unlink(missing_ok=True)
    with pytest.raises(StoreError, match=r"refusing to load posix\.system"):
        NasBenchGraphTable.read("cora", path)
    assert not marker.exists()
    path.write_bytes(b"garbage")
    with pytest.raises(StoreError, match="is not a NAS-Bench-Graph table"):
        NasBenchGraphTable.read("cora", path)
    with pytest.raises(StoreError, match="is missing"):
        NasBenchGraphTable.read("cora", tmp_path / "absent.bench")
