"""Read the Planetoid raw files (Cora, CiteSeer, PubMed) without running code from them.

The files come from the repository of "Revisiting Semi-Supervised Learning with Graph
Embeddings" (Yang, Cohen and Salakhutdinov, 2016). ``ind.<name>.test.index`` is text, one node
id a line; the seven others are Python 2 pickles (protocol 2, read with ``encoding="latin1"``):

* ``x``, ``tx``, ``allx``: features of the labelled training nodes, of the test nodes and of
  every non-test node, as scipy sparse matrices (or numpy arrays);
* ``y``, ``ty``, ``ally``: their one-hot labels, as numpy arrays;
* ``graph``: a ``collections.defaultdict(list)`` from a node to its neighbours.

A pickle may name any importable callable and have it called, so the files are read with a
restricted :class:`pickle.Unpickler` that resolves only the globals in :data:`ALLOWED_GLOBALS`.
Scipy's matrix classes are not even imported from a file: a pickled sparse matrix becomes a
plain record of its arrays, checked and densified here, so a crafted index cannot make scipy
read or write out of bounds.

The graph is built as PyG's ``read_planetoid_data`` builds it (same node order, public split,
zero rows for CiteSeer's isolated test nodes, self-loops and duplicate edges removed), which
``tests/tasks/test_planetoid_raw.py`` checks against PyG on the real Cora files.
"""

from __future__ import annotations

import collections
import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, cast

import numpy as np
import numpy.typing as npt
import torch
from torch_geometric.data import Data

from nasforge.errors import ConfigError

__all__ = [
    "ALLOWED_GLOBALS",
    "RAW_SUFFIXES",
    "UnsafePickleError",
    "download_planetoid_raw",
    "read_planetoid_raw",
]

RAW_SUFFIXES: Final = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
NUM_VAL: Final = 500  # the public split's validation nodes follow the training nodes

FloatMatrix = npt.NDArray[np.float32]
IndexArray = npt.NDArray[np.int64]


class UnsafePickleError(ConfigError):
    """A raw file names a global that the Planetoid format does not need; nothing was run."""


class _SparseRecord:
    """The attributes of a pickled scipy sparse matrix, kept as data (no scipy code runs).

    A scipy matrix pickles as ``NEWOBJ`` of its class followed by ``BUILD`` with its
    ``__dict__`` (``_shape``, ``indptr``, ``indices``, ``data`` ...); :meth:`__setstate__`
    only stores that dict.
    """

    fmt: ClassVar[str] = ""

    def __init__(self) -> None:  # a REDUCE with arguments fails here, as it should
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(
                f"a {self.fmt} matrix must be restored from a dict, got {type(state).__name__}"
            )
        self.state = state


class _CsrRecord(_SparseRecord):
    fmt = "csr"


class _CscRecord(_SparseRecord):
    fmt = "csc"


class _LilRecord(_SparseRecord):
    fmt = "lil"


# numpy's own array reconstructor, wherever the installed numpy keeps it
# (``numpy.core.multiarray`` in numpy 1, ``numpy._core.multiarray`` in numpy 2).
_RECONSTRUCT: Final = cast(tuple[Any, ...], np.empty(0).__reduce__())[0]

ALLOWED_GLOBALS: Final[dict[tuple[str, str], Any]] = {
    # numpy arrays: ``_reconstruct(ndarray, shape, dtype)`` then ``ndarray.__setstate__``
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    # scipy sparse matrices (Python 2 scipy module names, then today's), read as records
    ("scipy.sparse.csr", "csr_matrix"): _CsrRecord,
    ("scipy.sparse._csr", "csr_matrix"): _CsrRecord,
    ("scipy.sparse.csc", "csc_matrix"): _CscRecord,
    ("scipy.sparse._csc", "csc_matrix"): _CscRecord,
    ("scipy.sparse.lil", "lil_matrix"): _LilRecord,
    ("scipy.sparse._lil", "lil_matrix"): _LilRecord,
    # the graph: ``defaultdict(list)`` (Python 2 spells builtins ``__builtin__``)
    ("collections", "defaultdict"): collections.defaultdict,
    ("__builtin__", "list"): list,
    ("builtins", "list"): list,
}
"""Every global a Planetoid raw pickle may name, and what it resolves to."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        target = ALLOWED_GLOBALS.get((module, name))
        if target is None:
            allowed = ", ".join(sorted(f"{m}.{n}" for m, n in ALLOWED_GLOBALS))
            raise UnsafePickleError(
                f"{self._path}: refusing to unpickle {module}.{name}; a Planetoid raw file "
                f"holds only {allowed}. Replace the file with the original from the dataset"
            )
        return target


def _unpickle(path: Path) -> Any:
    """Load one raw pickle with :class:`_RestrictedUnpickler`.

    Raises:
        UnsafePickleError: The file names a global outside :data:`ALLOWED_GLOBALS`.
        ConfigError: The file is missing, truncated or not a pickle.
    """
    try:
        with path.open("rb") as fh:
            return _RestrictedUnpickler(fh, path).load()
    except ConfigError:
        raise
    except Exception as exc:  # UnpicklingError, EOFError, ValueError, MemoryError, ...
        raise ConfigError(
            f"{path} is not a readable Planetoid pickle (truncated or corrupt?): "
            f"{type(exc).__name__}: {exc}"
        ) from None


def _int_array(value: object, what: str, path: Path) -> IndexArray:
    if not isinstance(value, np.ndarray) or value.ndim != 1 or value.dtype.kind not in "iu":
        raise ConfigError(f"{path}: {what} must be a 1-D integer array")
    return value.astype(np.int64)


def _shape(record: _SparseRecord, path: Path) -> tuple[int, int]:
    shape = record.state.get("_shape", record.state.get("shape"))
    if (
        not isinstance(shape, tuple)
        or len(shape) != 2
        or not all(isinstance(s, int) and s >= 0 for s in shape)
    ):
        raise ConfigError(f"{path}: the {record.fmt} matrix has no valid (rows, cols) shape")
    return shape[0], shape[1]


def _compressed_to_dense(record: _SparseRecord, path: Path) -> FloatMatrix:
    """Densify a csr/csc record after checking every index against its shape."""
    rows, cols = _shape(record, path)
    major, minor = (rows, cols) if record.fmt == "csr" else (cols, rows)
    indptr = _int_array(record.state.get("indptr"), "indptr", path)
    indices = _int_array(record.state.get("indices"), "indices", path)
    values = record.state.get("data")
    if not isinstance(values, np.ndarray) or values.ndim != 1 or values.dtype.kind not in "biuf":
        raise ConfigError(f"{path}: the {record.fmt} matrix's data must be a 1-D numeric array")
    nnz = len(values)
    if (
        len(indptr) != major + 1
        or indptr[0] != 0
        or indptr[-1] != nnz
        or len(indices) != nnz
        or bool((np.diff(indptr) < 0).any())
        or (nnz and (int(indices.min()) < 0 or int(indices.max()) >= minor))
    ):
        raise ConfigError(
            f"{path}: the {record.fmt} matrix of shape {(rows, cols)} has inconsistent "
            f"indptr/indices/data ({len(indptr)}, {len(indices)}, {nnz} entries)"
        )
    outer = np.repeat(np.arange(major, dtype=np.int64), np.diff(indptr))  # (nnz,)
    r, c = (outer, indices) if record.fmt == "csr" else (indices, outer)
    dense = np.zeros((rows, cols), dtype=values.dtype)
    np.add.at(dense, (r, c), values)  # duplicates add up, as in scipy's todense
    return dense.astype(np.float32)


def _lil_to_dense(record: _SparseRecord, path: Path) -> FloatMatrix:
    rows, cols = _shape(record, path)
    row_lists, value_lists = record.state.get("rows"), record.state.get("data")
    if not (
        isinstance(row_lists, np.ndarray)
        and isinstance(value_lists, np.ndarray)
        and row_lists.shape == value_lists.shape == (rows,)
    ):
        raise ConfigError(f"{path}: the lil matrix needs one column list and value list per row")
    dense = np.zeros((rows, cols), dtype=np.float64)
    for i, (columns, values) in enumerate(zip(row_lists, value_lists, strict=True)):
        pair_of_lists = isinstance(columns, list) and isinstance(values, list)
        if not pair_of_lists or len(columns) != len(values):
            raise ConfigError(f"{path}: row {i} of the lil matrix is not two equal-length lists")
        if not all(isinstance(j, int) and 0 <= j < cols for j in columns):
            raise ConfigError(
                f"{path}: row {i} of the lil matrix has columns outside 0..{cols - 1}"
            )
        if not all(isinstance(v, int | float) for v in values):
            raise ConfigError(f"{path}: row {i} of the lil matrix has non-numeric values")
        np.add.at(dense[i], np.asarray(columns, dtype=np.int64), np.asarray(values))
    return dense.astype(np.float32)


def _read_matrix(path: Path) -> FloatMatrix:
    """A features or one-hot labels file as a dense float32 (rows, cols) matrix."""
    obj = _unpickle(path)
    if isinstance(obj, _LilRecord):
        return _lil_to_dense(obj, path)
    if isinstance(obj, _SparseRecord):
        return _compressed_to_dense(obj, path)
    if isinstance(obj, np.ndarray) and obj.ndim == 2 and obj.dtype.kind in "biuf":
        return np.asarray(obj, dtype=np.float32)
    what = f"a {obj.ndim}-D {obj.dtype} array" if isinstance(obj, np.ndarray) else type(obj)
    raise ConfigError(f"{path} holds {what}; expected a 2-D numeric matrix")


def _read_graph(path: Path) -> dict[int, list[int]]:
    """The adjacency dict ``node -> neighbours`` (a ``defaultdict(list)`` in the file)."""
    obj = _unpickle(path)
    if not isinstance(obj, dict):
        raise ConfigError(f"{path} holds a {type(obj).__name__}; expected a dict of neighbours")
    for node, neighbours in obj.items():
        if not (
            isinstance(node, int)
            and isinstance(neighbours, list)
            and all(isinstance(v, int) for v in neighbours)
        ):
            raise ConfigError(f"{path}: node {node!r} must map to a list of node ids")
    return dict(obj)


def _read_test_index(path: Path) -> IndexArray:
    """The test nodes, one integer a line, in the order of the rows of ``tx``/``ty``."""
    try:
        text = path.read_text(encoding="ascii")
        return np.array([int(token) for token in text.split()], dtype=np.int64)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a list of node ids, one a line: {exc}") from None


def _edge_index(graph: dict[int, list[int]], num_nodes: int, path: Path) -> torch.Tensor:
    """(2, E) edges ``node -> neighbour``, without self-loops or duplicates, sorted by target."""
    src = np.repeat(
        np.fromiter(graph.keys(), dtype=np.int64, count=len(graph)),
        [len(v) for v in graph.values()],
    )
    dst = np.fromiter((v for vs in graph.values() for v in vs), dtype=np.int64, count=len(src))
    if len(src) and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= num_nodes):
        raise ConfigError(f"{path} links nodes outside 0..{num_nodes - 1}")
    keep = src != dst
    # one key per edge, ordered by (target, source) like PyG's coalesce(sort_by_row=False)
    keys = np.unique(dst[keep] * num_nodes + src[keep])
    return torch.from_numpy(np.stack([keys % num_nodes, keys // num_nodes]))


def _check_shapes(mats: Mapping[str, FloatMatrix], test_index: IndexArray, folder: Path) -> None:
    x, tx, allx, y, ty, ally = (mats[k] for k in ("x", "tx", "allx", "y", "ty", "ally"))
    pairs = (("x", x, "y", y), ("tx", tx, "ty", ty), ("allx", allx, "ally", ally))
    for fa, a, fb, b in pairs:
        if a.shape[0] != b.shape[0]:
            raise ConfigError(
                f"{folder}: {fa} has {a.shape[0]} rows but {fb} has {b.shape[0]}; "
                "features and labels must describe the same nodes"
            )
    if not x.shape[1] == tx.shape[1] == allx.shape[1]:
        raise ConfigError(
            f"{folder}: x, tx and allx must have the same number of features, got "
            f"{x.shape[1]}, {tx.shape[1]} and {allx.shape[1]}"
        )
    if not y.shape[1] == ty.shape[1] == ally.shape[1]:
        raise ConfigError(
            f"{folder}: y, ty and ally must have the same number of classes, got "
            f"{y.shape[1]}, {ty.shape[1]} and {ally.shape[1]}"
        )
    if len(test_index) != tx.shape[0]:
        raise ConfigError(
            f"{folder}: test.index lists {len(test_index)} nodes but tx has {tx.shape[0]} rows"
        )
    if len(test_index) == 0 or len(np.unique(test_index)) != len(test_index):
        raise ConfigError(f"{folder}: test.index must list distinct test nodes")


def _place_test_rows(
    all_rows: FloatMatrix, test_rows: FloatMatrix, test_index: IndexArray
) -> FloatMatrix:
    """Stack the non-test rows and the test rows into one matrix in node order.

    Row ``i`` of ``test_rows`` belongs to the ``i``-th smallest test id. Test ids without a row
    (CiteSeer's isolated nodes: the ids have gaps) get a zero row. Then, as in the Planetoid
    code, the node ``test_index[i]`` takes the row of the node ``sorted(test_index)[i]``.
    """
    ordered = np.sort(test_index)
    lo, span = int(ordered[0]), int(ordered[-1] - ordered[0]) + 1
    block = np.zeros((span, test_rows.shape[1]), dtype=test_rows.dtype)  # (span, F)
    block[ordered - lo] = test_rows
    stacked = np.concatenate([all_rows, block])  # (N, F)
    stacked[test_index] = stacked[ordered]  # the right side is a copy: a permutation
    return stacked


def read_planetoid_raw(folder: str | os.PathLike[str], name: str) -> Data:
    """Build the PyG ``Data`` of a Planetoid dataset from its raw files, with the public split.

    Args:
        folder: The folder holding ``ind.<name>.{x,tx,allx,y,ty,ally,graph,test.index}``.
        name: The dataset's name (``Cora``, ``CiteSeer``, ``PubMed``; any case).

    Returns:
        ``x`` (N, F) float32, ``edge_index`` (2, E) int64, ``y`` (N,) int64 and boolean
        ``train_mask`` (the labelled ``x`` rows), ``val_mask`` (the 500 nodes after them) and
        ``test_mask`` (the nodes of ``test.index``).

    Raises:
        UnsafePickleError: A file names a global outside :data:`ALLOWED_GLOBALS`.
        ConfigError: A file is missing, truncated, malformed or inconsistent with the others.
    """
    base = Path(folder)
    paths = {s: base / f"ind.{name.lower()}.{s}" for s in RAW_SUFFIXES}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise ConfigError(f"missing Planetoid raw files: {', '.join(missing)}")
    mats = {s: _read_matrix(paths[s]) for s in ("x", "tx", "allx", "y", "ty", "ally")}
    graph = _read_graph(paths["graph"])
    test_index = _read_test_index(paths["test.index"])
    _check_shapes(mats, test_index, base)
    if int(test_index.min()) != mats["allx"].shape[0]:
        raise ConfigError(
            f"{paths['test.index']}: the test nodes must follow the {mats['allx'].shape[0]} "
            f"rows of allx, but the first test node is {int(test_index.min())}"
        )

    x = _place_test_rows(mats["allx"], mats["tx"], test_index)  # (N, F)
    one_hot = _place_test_rows(mats["ally"], mats["ty"], test_index)  # (N, C)
    num_nodes, num_train = x.shape[0], mats["x"].shape[0]
    if num_train + NUM_VAL > num_nodes:
        raise ConfigError(
            f"{base}: {num_nodes} nodes cannot hold {num_train} training and {NUM_VAL} "
            "validation nodes"
        )
    masks = [np.zeros(num_nodes, dtype=bool) for _ in range(3)]
    masks[0][:num_train] = True
    masks[1][num_train : num_train + NUM_VAL] = True
    masks[2][test_index] = True
    return Data(
        x=torch.from_numpy(x),
        edge_index=_edge_index(graph, num_nodes, paths["graph"]),
        y=torch.from_numpy(one_hot.argmax(axis=1).astype(np.int64)),
        train_mask=torch.from_numpy(masks[0]),
        val_mask=torch.from_numpy(masks[1]),
        test_mask=torch.from_numpy(masks[2]),
    )


def download_planetoid_raw(
    folder: str | os.PathLike[str], name: str, suffixes: Sequence[str] = RAW_SUFFIXES
) -> None:
    """Fetch raw files into ``folder`` from the Planetoid repository (PyG's source and fetcher).

    Only downloads: nothing is parsed or processed here; read the files with
    :func:`read_planetoid_raw`.
    """
    from torch_geometric.data import download_url
    from torch_geometric.datasets import Planetoid

    for suffix in suffixes:
        download_url(f"{Planetoid.url}/ind.{name.lower()}.{suffix}", str(folder), log=False)
