"""NAS-Bench-201 / NATS-Bench topology files: written here in the published layouts, read back.

The writers build the same nesting the benchmark's own code saves (``ArchResults.state_dict()``
holding ``ResultsCount`` states keyed by ``(dataset, seed)``), with small, known numbers.
"""

from __future__ import annotations

import bz2
import os
import pickle
import tarfile
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import torch

from nasforge.architecture import Architecture
from nasforge.benchmarks.nas_bench_201 import EntryNotFoundError, Nb201Format, load_table
from nasforge.errors import ConfigError, InvalidArchitectureError
from nasforge.evaluators.nb201_table import NasBench201Evaluator
from nasforge.result import Status

# -- the data written -----------------------------------------------------------------------------
CELLS: list[tuple[str, ...]] = [
    ("nor_conv_3x3",) * 6,
    ("skip_connect", "nor_conv_1x1", "avg_pool_3x3", "none", "nor_conv_3x3", "skip_connect"),
    ("avg_pool_3x3", "none", "none", "nor_conv_1x1", "skip_connect", "nor_conv_3x3"),
    ("none",) * 6,  # listed in meta_archs, but no results are written for it
]
EVALUATED = 3  # cells 0..2 have results
BASE = {"cifar10-valid": 80.0, "cifar10": 85.0, "cifar100": 60.0, "ImageNet16-120": 30.0}
SET_DELTA = {"x-valid": 0.0, "ori-test": 2.0, "x-test": 4.0}
SEED_DELTA = {777: -1.0, 888: 0.0, 999: 1.0, 111: 0.5}
EVAL_SETS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("ori-test", "x-valid", "x-test"),
    "ImageNet16-120": ("ori-test", "x-valid", "x-test"),
}
EPOCH_TIME = {"cifar10-valid": 1.5, "cifar10": 3.0, "cifar100": 3.0, "ImageNet16-120": 9.0}


def cell_str(ops: Iterable[str]) -> str:
    nodes = list(ops)
    return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*nodes)


def final_acc(index: int, dataset: str, eval_set: str, seed: int, epochs: int) -> float:
    """Accuracy (percent) after the last epoch; earlier epochs are 10 points lower."""
    short = 20.0 if epochs == 12 else 0.0
    return BASE[dataset] + index + SET_DELTA[eval_set] + SEED_DELTA[seed] - short


def results_count(index: int, dataset: str, seed: int, epochs: int) -> dict[str, Any]:
    """A ``ResultsCount.state_dict()`` with every per-epoch record the benchmark keeps."""
    accs, times, losses = {}, {}, {}
    for eval_set in EVAL_SETS[dataset]:
        last = final_acc(index, dataset, eval_set, seed, epochs)
        for epoch in range(epochs):
            key = f"{eval_set}@{epoch}"
            accs[key] = last if epoch == epochs - 1 else last - 10.0
            times[key] = 0.25
            losses[key] = 1.0
    return {
        "name": dataset,
        "net_state_dict": None,
        "train_acc1es": {e: 50.0 for e in range(epochs)},
        "train_acc5es": {e: 90.0 for e in range(epochs)},
        "train_losses": {e: 1.0 for e in range(epochs)},
        "train_times": OrderedDict((e, EPOCH_TIME[dataset]) for e in range(epochs)),
        "arch_config": {
            "channel": 16,
            "num_cells": 5,
            "arch_str": cell_str(CELLS[index]),
            "class_num": 10,
        },
        "params": 0.5 + index / 10,  # millions
        "flop": 20.0 + index,  # millions
        "seed": seed,
        "epochs": epochs,
        "latency": [0.001 * (1 + list(SEED_DELTA).index(seed))],  # seconds
        "eval_names": list(EVAL_SETS[dataset]),
        "eval_acc1es": accs,
        "eval_times": times,
        "eval_losses": losses,
    }


def seeds_of(dataset: str, epochs: int) -> tuple[int, ...]:
    """200 epochs: three seeds; 12 epochs: two seeds on cifar10-valid, one elsewhere (v1_1)."""
    if epochs == 200:
        return (777, 888, 999)
    return (777, 888) if dataset == "cifar10-valid" else (111,)


def arch_results(index: int, epochs: int, datasets: Iterable[str] = BASE) -> dict[str, Any]:
    """An ``ArchResults.state_dict()``."""
    all_results, dataset_seed = {}, {}
    for dataset in datasets:
        dataset_seed[dataset] = list(seeds_of(dataset, epochs))
        for seed in seeds_of(dataset, epochs):
            all_results[(dataset, seed)] = results_count(index, dataset, seed, epochs)
    return {
        "arch_index": index,
        "arch_str": cell_str(CELLS[index]),
        "all_results": all_results,
        "dataset_seed": dataset_seed,
        "clear_net_done": True,
    }


def hp_states(index: int, *, v1_0: bool = False) -> OrderedDict[str, Any]:
    """``{"12": ..., "200": ...}`` of one cell (v1_0: 12 epochs on cifar10-valid only)."""
    less = ("cifar10-valid",) if v1_0 else tuple(BASE)
    return OrderedDict({"12": arch_results(index, 12, less), "200": arch_results(index, 200)})


def write_pbz2(path: Path, obj: Any) -> None:
    with bz2.open(path, "wb") as stream:
        pickle.dump(obj, stream, protocol=4)  # as nats_bench.pickle_save


def write_simple(directory: Path) -> Path:
    """``NATS-tss-v1_0-3ffb9-simple``: meta plus one file per evaluated cell."""
    directory.mkdir(parents=True)
    meta = {
        "meta_archs": [cell_str(c) for c in CELLS],
        "total_archs": len(CELLS),
        "arch2infos": None,
        "evaluated_indexes": set(),
    }
    write_pbz2(directory / "meta.pickle.pbz2", meta)
    for index in range(EVALUATED):
        write_pbz2(directory / f"{index:06d}.pickle.pbz2", hp_states(index))
    return directory


def whole_table(*, pth: bool, v1_0: bool = False) -> dict[str, Any]:
    """The single-object layout: .pth ("less"/"full") or NATS-tss-*.pickle.pbz2 ("12"/"200")."""
    arch2infos = {}
    for index in range(EVALUATED):
        states = hp_states(index, v1_0=v1_0)
        arch2infos[index] = {"less": states["12"], "full": states["200"]} if pth else states
    return {
        "meta_archs": [cell_str(c) for c in CELLS],
        "arch2infos": arch2infos,
        "evaluated_indexes": set(range(EVALUATED)),
    }


def write_pth(path: Path, *, legacy: bool, v1_0: bool = False) -> Path:
    torch.save(whole_table(pth=True, v1_0=v1_0), path, _use_new_zipfile_serialization=not legacy)
    return path


LAYOUTS = {
    "simple": lambda d: write_simple(d / "NATS-tss-v1_0-3ffb9-simple"),
    "pth-legacy": lambda d: write_pth(d / "NAS-Bench-201-v1_1-096897.pth", legacy=True),
    "pth-zip": lambda d: write_pth(d / "NAS-Bench-201-v1_1-096897.pth", legacy=False),
    "nats-pickle": lambda d: _written(
        d / "NATS-tss-v1_0-3ffb9.pickle.pbz2", whole_table(pth=False)
    ),
}
FORMATS = {
    "simple": Nb201Format.NATS_SIMPLE,
    "pth-legacy": Nb201Format.NB201_PTH,
    "pth-zip": Nb201Format.NB201_PTH,
    "nats-pickle": Nb201Format.NATS_PICKLE,
}


def _written(path: Path, obj: Any) -> Path:
    write_pbz2(path, obj)
    return path


@pytest.fixture(params=list(LAYOUTS))
def layout(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    name: str = request.param
    return name, LAYOUTS[name](tmp_path)


def nb201(index: int) -> Architecture:
    return Architecture.create("nb201", ops=CELLS[index])


# -- reading the layouts --------------------------------------------------------------------------
@pytest.mark.parametrize("epochs", [200, 12])
@pytest.mark.parametrize("dataset", ["cifar10-valid", "cifar100", "ImageNet16-120"])
def test_values_in_every_layout(layout: tuple[str, Path], dataset: str, epochs: int) -> None:
    name, path = layout
    ev = NasBench201Evaluator(path=path, dataset=dataset, epochs=epochs)
    assert ev.format is FORMATS[name]
    test_set = "ori-test" if dataset == "cifar10-valid" else "x-test"
    # 200 epochs: seeds 777/888/999 average to the seed-free value; 12 epochs: the v1_1 seeds.
    seed_mean = {200: 0.0, 12: -0.5 if dataset == "cifar10-valid" else 0.5}[epochs]
    for index in range(EVALUATED):
        result = ev.evaluate(nb201(index))
        base = BASE[dataset] + index + seed_mean - (20.0 if epochs == 12 else 0.0)
        assert result.status is Status.COMPLETE and result.fidelity == epochs
        assert result.metrics == {"val_acc": pytest.approx(base / 100)}
        assert result.test_metrics == {
            "test_acc": pytest.approx((base + SET_DELTA[test_set]) / 100)
        }
        n_seeds = len(seeds_of(dataset, epochs))
        latency_ms = sum(1 + list(SEED_DELTA).index(s) for s in seeds_of(dataset, epochs))
        assert result.costs == pytest.approx(
            {
                "params": (0.5 + index / 10) * 1e6,
                "flops": (20.0 + index) * 1e6,
                "latency_ms": latency_ms / n_seeds,
                "train_time_s": EPOCH_TIME[dataset] * epochs,
            }
        )
        assert result.visible().test_metrics == {}


def test_exact_numbers_of_one_cell(tmp_path: Path) -> None:
    """Spelled out for cell 1: percent in the file, fractions out, final epoch, seed means."""
    path = write_simple(tmp_path / "NATS-tss-v1_0-3ffb9-simple")
    cifar100 = NasBench201Evaluator(path=path, dataset="cifar100").evaluate(nb201(1))
    assert cifar100.metrics["val_acc"] == pytest.approx(0.61)  # mean of 60, 61, 62 (+1 cell)
    assert cifar100.test_metrics["test_acc"] == pytest.approx(0.65)
    short = NasBench201Evaluator(path=path, dataset="cifar10-valid", epochs=12).evaluate(nb201(1))
    assert short.metrics["val_acc"] == pytest.approx(0.605)  # seeds 777, 888: 60 and 61
    assert short.test_metrics["test_acc"] == pytest.approx(0.625)
    assert short.costs["train_time_s"] == pytest.approx(18.0)  # 12 epochs x 1.5 s
    assert short.fidelity == 12


def test_cifar10_validates_on_cifar10_valid_and_tests_on_cifar10(
    layout: tuple[str, Path],
) -> None:
    _, path = layout
    result = NasBench201Evaluator(path=path, dataset="cifar10").evaluate(nb201(2))
    assert result.metrics == {"val_acc": pytest.approx((80 + 2) / 100)}  # cifar10-valid x-valid
    assert result.test_metrics == {"test_acc": pytest.approx((85 + 2 + 2) / 100)}  # ori-test
    assert result.costs["train_time_s"] == pytest.approx(1.5 * 200)  # the validation run's


def test_budget_selects_the_training_length(tmp_path: Path) -> None:
    path = write_pth(tmp_path / "NAS-Bench-201-v1_1-096897.pth", legacy=True)
    ev = NasBench201Evaluator(path=path, dataset="ImageNet16-120")
    full, short = ev.evaluate(nb201(0)), ev.evaluate(nb201(0), budget=12)
    assert (full.fidelity, short.fidelity) == (200, 12)
    assert full.metrics["val_acc"] == pytest.approx(0.30)
    assert short.metrics["val_acc"] == pytest.approx(0.105)  # 30 - 20 + seed 111's 0.5
    with pytest.raises(ConfigError, match=r"budget must be one of 12, 200 epochs, got 50"):
        ev.evaluate(nb201(0), budget=50)


def test_table_is_read_once_per_process_and_arch_files_on_demand(tmp_path: Path) -> None:
    path = write_simple(tmp_path / "NATS-tss-v1_0-3ffb9-simple")
    assert load_table(path) is load_table(str(path))
    ev = NasBench201Evaluator(path=path, dataset="cifar100")
    first = ev.evaluate(nb201(2))
    (path / "000002.pickle.pbz2").unlink()  # already read: answered from memory
    again = ev.evaluate(nb201(2))
    assert again.status is Status.COMPLETE and again.metrics == first.metrics
    assert again.test_metrics == first.test_metrics and again.costs == first.costs
    assert NasBench201Evaluator(path=path, dataset="cifar100").table is ev.table
    (path / "000001.pickle.pbz2").unlink()  # never read: the look-up fails cleanly
    missing = ev.evaluate(nb201(1))
    assert missing.status is Status.FAILED
    assert "has no file 000001.pickle.pbz2" in (missing.reason or "")


def test_rows_give_every_cell(layout: tuple[str, Path]) -> None:
    _, path = layout
    table = load_table(path)
    rows = table.rows("cifar100", 200)
    assert sorted(rows) == sorted(cell_str(CELLS[i]) for i in range(EVALUATED))
    assert rows[cell_str(CELLS[2])].val_acc == pytest.approx(0.62)
    assert rows[cell_str(CELLS[2])].val_seeds == (777, 888, 999)
    assert len(table) == len(CELLS) and cell_str(CELLS[3]) in table


def test_describe(tmp_path: Path) -> None:
    path = write_simple(tmp_path / "NATS-tss-v1_0-3ffb9-simple")
    ev = NasBench201Evaluator(path=path, dataset="cifar100", epochs=12)
    assert ev.describe() == {
        "kind": "nas-bench-201",
        "path": str(path.resolve()),
        "format": "nats-tss-simple",
        "dataset": "cifar100",
        "epochs": 12,
    }
    assert ev.space_name == "nb201"
    assert [str(o.metric) for o in ev.objectives] == ["val_acc"]


def test_path_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_simple(tmp_path / "NATS-tss-v1_0-3ffb9-simple")
    monkeypatch.setenv("NASFORGE_NB201_PATH", str(path))
    assert NasBench201Evaluator().evaluate(nb201(0)).metrics == {"val_acc": pytest.approx(0.80)}
    monkeypatch.delenv("NASFORGE_NB201_PATH")
    with pytest.raises(
        ConfigError, match=r"pass --table FILE \(API: table=\.\.\.\) or set NASFORGE_NB201_PATH"
    ):
        NasBench201Evaluator()


# -- architectures the table cannot answer --------------------------------------------------------
def test_unknown_and_invalid_architectures(layout: tuple[str, Path]) -> None:
    _, path = layout
    ev = NasBench201Evaluator(path=path)
    not_run = ev.evaluate(nb201(3))  # in meta_archs, no results
    assert not_run.status is Status.FAILED and not_run.metrics == {}
    assert "index 3" in (not_run.reason or "") or "000003" in (not_run.reason or "")
    absent = ev.evaluate(Architecture.create("nb201", ops=["skip_connect"] * 6))
    assert absent.status is Status.FAILED
    assert "is not among the 4 architectures" in (absent.reason or "")
    with pytest.raises(InvalidArchitectureError, match="'ops' must be 6 of none, skip_connect"):
        ev.evaluate(Architecture.create("nb201", ops=["conv_5x5"] * 6))
    with pytest.raises(InvalidArchitectureError, match="'ops' must be 6"):
        ev.evaluate(Architecture.create("nb201", ops=["none"] * 5))
    with pytest.raises(InvalidArchitectureError, match="exactly one gene, 'ops'"):
        ev.evaluate(Architecture.create("nb201", ops=CELLS[0], depth=2))
    with pytest.raises(InvalidArchitectureError, match="scores space 'nb201'"):
        ev.evaluate(Architecture.create("gnn", links=[0, 0, 1, 2], ops=["gcn"] * 4))


# -- files and settings that are wrong ------------------------------------------------------------
def test_unknown_dataset_or_epochs(tmp_path: Path) -> None:
    path = write_simple(tmp_path / "NATS-tss-v1_0-3ffb9-simple")
    with pytest.raises(ConfigError, match="unknown NAS-Bench-201 dataset 'cifar10-test'; valid:"):
        NasBench201Evaluator(path=path, dataset="cifar10-test")
    with pytest.raises(ConfigError, match="epochs must be one of 12, 200, got 90"):
        NasBench201Evaluator(path=path, epochs=90)


def test_v1_0_has_short_runs_only_on_cifar10_valid(tmp_path: Path) -> None:
    path = write_pth(tmp_path / "NAS-Bench-201-v1_0-e61699.pth", legacy=True, v1_0=True)
    ok = NasBench201Evaluator(path=path, dataset="cifar10-valid", epochs=12)
    assert ok.evaluate(nb201(0)).metrics == {"val_acc": pytest.approx(0.595)}
    lacking = NasBench201Evaluator(path=path, dataset="cifar100", epochs=12)
    with pytest.raises(ConfigError, match="has no results for cifar100 at 12 epochs; it has"):
        lacking.evaluate(nb201(0))
    full = NasBench201Evaluator(path=path, dataset="cifar100")
    with pytest.raises(ConfigError, match="12-epoch results only for cifar10-valid"):
        full.evaluate(nb201(0), budget=12)


def test_missing_path_says_what_and_where(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        NasBench201Evaluator(path=tmp_path / "NAS-Bench-201-v1_1-096897.pth")
    message = str(caught.value)
    assert "does not exist" in message
    for expected in (
        "NATS-tss-v1_0-3ffb9-simple",
        "NAS-Bench-201-v1_1-096897.pth",
        "NAS-Bench-201-v1_0-e61699.pth",
        "https://github.com/D-X-Y/NATS-Bench",
        "https://github.com/D-X-Y/NAS-Bench-201",
        "never downloads",
    ):
        assert expected in message


def test_wrong_files_and_directories(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a benchmark")
    with pytest.raises(ConfigError, match=r"is not a NAS-Bench-201 file \(it starts with bytes"):
        NasBench201Evaluator(path=garbage)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"directory without meta.pickle.pbz2 \(found: nothing\)"):
        NasBench201Evaluator(path=empty)

    parent = tmp_path / "torch_home"
    write_simple(parent / "NATS-tss-v1_0-3ffb9-simple")
    with pytest.raises(ConfigError, match="It contains NATS-tss-v1_0-3ffb9-simple: pass that"):
        NasBench201Evaluator(path=parent)

    with pytest.raises(ConfigError, match="one file of the NATS-Bench simple archive"):
        NasBench201Evaluator(path=parent / "NATS-tss-v1_0-3ffb9-simple" / "meta.pickle.pbz2")

    tar = tmp_path / "NATS-tss-v1_0-3ffb9-simple.tar"
    with tarfile.open(tar, "w") as archive:
        archive.add(parent / "NATS-tss-v1_0-3ffb9-simple", arcname="NATS-tss-v1_0-3ffb9-simple")
    with pytest.raises(ConfigError, match="is a tar archive; unpack it with 'tar xvf"):
        NasBench201Evaluator(path=tar)

    plain_pickle = tmp_path / "plain.pth"
    plain_pickle.write_bytes(pickle.dumps({"meta_archs": []}, protocol=2))
    with pytest.raises(ConfigError, match=r"is not a torch\.save file"):
        NasBench201Evaluator(path=plain_pickle).evaluate(nb201(0))

    other = tmp_path / "model.pth"
    torch.save({"state": [1.0, 2.0]}, other)
    with pytest.raises(ConfigError, match="expected a dict with 'meta_archs' and 'arch2infos'"):
        NasBench201Evaluator(path=other).evaluate(nb201(0))


def test_size_space_archive_is_refused(tmp_path: Path) -> None:
    sss = tmp_path / "NATS-sss-v1_0-50262-simple"
    sss.mkdir()
    write_pbz2(sss / "meta.pickle.pbz2", {"meta_archs": ["8:16:24:32:40"], "arch2infos": None})
    with pytest.raises(ConfigError, match="size space, NATS-sss-\\*, is not supported"):
        NasBench201Evaluator(path=sss).evaluate(nb201(0))


def test_construction_is_lazy(tmp_path: Path) -> None:
    path = write_simple(tmp_path / "NATS-tss-v1_0-3ffb9-simple")
    (path / "meta.pickle.pbz2").write_bytes(b"BZh9 corrupted")
    ev = NasBench201Evaluator(path=path)  # only the path and layout are checked here
    with pytest.raises(ConfigError, match="is not a NAS-Bench-201 table"):
        ev.evaluate(nb201(0))


# -- tampered files cannot run code ---------------------------------------------------------------
class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch /tmp/nasforge-nb201-pwned",))


def _tampered(kind: str, directory: Path) -> Path:
    if kind == "arch-file":
        path = write_simple(directory / "NATS-tss-v1_0-3ffb9-simple")
        write_pbz2(path / "000000.pickle.pbz2", OrderedDict({"12": _Exploit()}))
        return path
    if kind == "meta":
        path = write_simple(directory / "NATS-tss-v1_0-3ffb9-simple")
        write_pbz2(path / "meta.pickle.pbz2", {"meta_archs": [_Exploit()]})
        return path
    table = whole_table(pth=kind != "nats-pickle")
    table["arch2infos"][0] = _Exploit()
    if kind == "nats-pickle":
        return _written(directory / "NATS-tss-v1_0-3ffb9.pickle.pbz2", table)
    path = directory / "NAS-Bench-201-v1_1-096897.pth"
    torch.save(table, path, _use_new_zipfile_serialization=kind == "pth-zip")
    return path


@pytest.mark.parametrize("kind", ["arch-file", "meta", "pth-legacy", "pth-zip", "nats-pickle"])
def test_a_tampered_file_cannot_run_code(kind: str, tmp_path: Path) -> None:
    marker = Path("/tmp/nasforge-nb201-pwned")
    marker.unlink(missing_ok=True)
    ev = NasBench201Evaluator(path=_tampered(kind, tmp_path))
    with pytest.raises(ConfigError, match=r"refusing to load posix\.system"):
        ev.evaluate(nb201(0))
    assert not marker.exists()


def test_the_full_archive_with_weights_is_refused(tmp_path: Path) -> None:
    path = write_simple(tmp_path / "NATS-tss-v1_0-3ffb9-full")
    states = hp_states(0)
    states["200"]["all_results"][("cifar100", 777)]["net_state_dict"] = {"w": torch.zeros(2)}
    write_pbz2(path / "000000.pickle.pbz2", states)
    with pytest.raises(
        ConfigError, match=r"refusing to load torch\..*use NATS-tss-v1_0-3ffb9-simple"
    ):
        NasBench201Evaluator(path=path).evaluate(nb201(0))


def test_entry_not_found_is_a_lookup_error(tmp_path: Path) -> None:
    path = write_pth(tmp_path / "NAS-Bench-201-v1_1-096897.pth", legacy=False)
    with pytest.raises(EntryNotFoundError, match="was not evaluated in this file"):
        load_table(path).entry(cell_str(CELLS[3]), "cifar100", 200)
