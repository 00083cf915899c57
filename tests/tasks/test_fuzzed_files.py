"""Property-based fuzz of the data files a user points a search at (npz, csv, pt, image
folders): whatever the bytes, the loader either reads the file or raises a ConfigError with
one line, and the CLI turns that into exit 2 with one line and no traceback."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasforge.cli import main
from nasforge.errors import ConfigError
from nasforge.tasks.image import load_image_file, load_image_folder
from nasforge.tasks.node import check_graph, load_graph_file
from nasforge.tasks.tabular import load_csv, load_tabular_file

# The same cases on every run, so that CI is repeatable. To explore further, set
# NASFORGE_FUZZ_RANDOM=1 (new cases each run) and NASFORGE_FUZZ_EXAMPLES (default 400).
FUZZ = settings(
    max_examples=int(os.environ.get("NASFORGE_FUZZ_EXAMPLES", "400")),
    derandomize=os.environ.get("NASFORGE_FUZZ_RANDOM") is None,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _sound_npz(kind: str) -> bytes:
    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray]
    if kind == "graph":
        arrays = {
            "x": rng.random((6, 3), dtype=np.float32),
            "y": np.arange(6) % 2,
            "edge_index": np.array([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]]),
        }
    elif kind == "image":
        arrays = {"x": rng.random((10, 1, 4, 4), dtype=np.float32), "y": np.arange(10) % 2}
    else:
        arrays = {"x": rng.random((10, 3)), "y": np.arange(10) % 2}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _sound_pt() -> bytes:
    buffer = io.BytesIO()
    torch.save({"x": torch.rand(10, 1, 4, 4), "y": torch.arange(10) % 2}, buffer)
    return buffer.getvalue()


def _mutated(sound: bytes) -> st.SearchStrategy[bytes]:
    """A sound file with bytes flipped, cut short, or grown: what a bad copy or disk gives."""
    flips = st.lists(
        st.tuples(st.integers(0, len(sound) - 1), st.integers(0, 255)), min_size=1, max_size=8
    )

    def flipped(changes: list[tuple[int, int]]) -> bytes:
        data = bytearray(sound)
        for at, value in changes:
            data[at] = value
        return bytes(data)

    return st.one_of(
        flips.map(flipped),
        st.integers(0, len(sound) - 1).map(lambda n: sound[:n]),
        st.binary(min_size=1, max_size=64).map(lambda tail: sound + tail),
        st.binary(max_size=256),
    )


def _npz_of(arrays: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            inner = io.BytesIO()
            np.save(inner, array, allow_pickle=False)
            archive.writestr(f"{name}.npy", inner.getvalue())
    return buffer.getvalue()


_SHAPES = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)
_DTYPES = st.sampled_from(["f4", "f8", "i8", "i1", "u1", "b1", "U3", "c8"])
_ARRAYS = st.builds(
    lambda shape, dtype, fill: np.full(shape, fill).astype(dtype),
    _SHAPES,
    _DTYPES,
    st.sampled_from([0, 1, -1, 3.5, np.nan, np.inf, 1e30]),
)
_KEYS = st.sampled_from(["x", "y", "edge_index", "train_mask", "val_mask", "other"])
# archives that are well formed, holding arrays of any shape, type and value
_ODD_NPZ = st.dictionaries(_KEYS, _ARRAYS, max_size=5).map(_npz_of)


def _check(load: Callable[[Path], Any], path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        load(path)
    except ConfigError as exc:
        text = str(exc)
        assert text and "\n" not in text.strip(), text
        assert "Traceback" not in text


def _graph(path: Path) -> None:
    check_graph(load_graph_file(path))


LOADERS: dict[str, tuple[str, Callable[[Path], Any], bytes]] = {
    "graph-npz": ("g.npz", _graph, _sound_npz("graph")),
    "image-npz": ("i.npz", lambda p: load_image_file(p), _sound_npz("image")),
    "table-npz": ("t.npz", lambda p: load_tabular_file(p), _sound_npz("table")),
    "image-pt": ("i.pt", lambda p: load_image_file(p), _sound_pt()),
    "graph-pt": ("g.pt", _graph, _sound_pt()),
}


@pytest.mark.parametrize("which", list(LOADERS))
@FUZZ
@given(data=st.data())
def test_damaged_files_are_refused_in_one_line(tmp_path: Path, which: str, data: Any) -> None:
    filename, load, sound = LOADERS[which]
    _check(load, tmp_path / filename, data.draw(_mutated(sound)))


@pytest.mark.parametrize("which", ["graph-npz", "image-npz", "table-npz"])
@FUZZ
@given(archive=_ODD_NPZ)
def test_any_arrays_in_an_npz_are_read_or_refused_in_one_line(
    tmp_path: Path, which: str, archive: bytes
) -> None:
    filename, load, _ = LOADERS[which]
    _check(load, tmp_path / filename, archive)


_CELLS = st.one_of(
    st.sampled_from(["", "1", "-2.5", "nan", "inf", "a", '"q,"', "1e999", " ", "0x1"]),
    st.text(max_size=6),
)
_CSV = st.lists(st.lists(_CELLS, min_size=0, max_size=5), min_size=0, max_size=12).map(
    lambda rows: "\n".join(",".join(r) for r in rows)
)


@FUZZ
@given(text=_CSV, raw=st.binary(max_size=64))
def test_any_csv_is_read_or_refused_in_one_line(tmp_path: Path, text: str, raw: bytes) -> None:
    _check(lambda p: load_csv(p), tmp_path / "t.csv", text.encode("utf-8", "surrogatepass"))
    _check(lambda p: load_csv(p), tmp_path / "b.csv", raw)


@settings(FUZZ, max_examples=60)
@given(
    files=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["x.png", "y.jpg", "z.txt", "w.gif"]),
            st.binary(max_size=128),
        ),
        max_size=6,
    )
)
def test_any_image_folder_is_read_or_refused_in_one_line(
    tmp_path_factory: pytest.TempPathFactory, files: list[tuple[str, str, bytes]]
) -> None:
    root = tmp_path_factory.mktemp("images")
    for n, (label, name, data) in enumerate(files):
        (root / label).mkdir(exist_ok=True)
        (root / label / f"{n}{name}").write_bytes(data)
    try:
        load_image_folder(root)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc).strip()


@pytest.mark.parametrize(
    ("task", "filename"),
    [("file:{}", "g.npz"), ("tabular:file:{}", "t.npz"), ("image:file:{}", "i.npz")],
)
def test_the_cli_refuses_a_damaged_npz_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], task: str, filename: str
) -> None:
    path = tmp_path / filename
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    db = tmp_path / "runs.db"
    code = main(["search", "--task", task.format(path), "--budget", "1", "--db", str(db)])
    captured = capsys.readouterr()
    assert code == 2
    [line] = captured.err.splitlines()
    assert line.startswith("error: ") and str(path) in line and ".npz" in line
    assert not db.exists()
