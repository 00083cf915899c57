"""ArtifactStore: confinement of every path, atomic safetensors writes, nothing unpickled."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from nasforge.artifacts import ArtifactError, ArtifactPathError, ArtifactStore
from nasforge.errors import ConfigError, StoreError


def _tensors() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        "layer.weight": torch.randn(4, 3, generator=gen),
        "layer.bias": torch.randn(4, generator=gen),
        "bn.num_batches_tracked": torch.tensor(7),
        "half": torch.randn(2, 2, generator=gen).to(torch.float16),
    }


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "root")


# -- confinement --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("relative", "said"),
    [
        ("../x", "'..' component"),
        ("a/../../x", "'..' component"),
        ("a/..", "'..' component"),
        ("/etc/passwd", "is absolute"),
        ("", "must not be empty"),
        (".", "must not be empty"),
        ("a\0b", "NUL byte"),
    ],
)
def test_path_refuses_what_leaves_or_is_not_a_path(
    store: ArtifactStore, relative: str, said: str
) -> None:
    with pytest.raises(ArtifactPathError, match=said) as info:
        store.path(relative)
    assert "give a relative path below the artifact folder" in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_path_accepts_plain_relative_paths(store: ArtifactStore) -> None:
    assert store.path("trial-1.safetensors") == store.root / "trial-1.safetensors"
    assert store.path(Path("sub") / "x.bin") == store.root / "sub" / "x.bin"
    assert store.path("a/./b") == store.root / "a" / "b"
    assert not store.root.exists()  # asking for a path creates nothing


def test_a_symlinked_file_leading_out_is_refused(tmp_path: Path, store: ArtifactStore) -> None:
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(b"secret")
    store.root.mkdir()
    (store.root / "trial-3.safetensors").symlink_to(outside)

    with pytest.raises(ArtifactPathError, match="outside the artifact folder"):
        store.path("trial-3.safetensors")
    with pytest.raises(ArtifactPathError):
        store.weights_path(3)
    with pytest.raises(ArtifactPathError):
        store.load_weights(3)
    with pytest.raises(ArtifactPathError):  # at write time too
        store.save_weights(3, _tensors())
    assert outside.read_bytes() == b"secret"


def test_a_symlinked_subdirectory_leading_out_is_refused(
    tmp_path: Path, store: ArtifactStore
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    store.root.mkdir()
    (store.root / "sub").symlink_to(elsewhere, target_is_directory=True)

    with pytest.raises(ArtifactPathError, match="a symbolic link leads out"):
        store.path("sub/w.safetensors")
    with pytest.raises(ArtifactPathError):  # the writer checks as well
        store._write_atomic("sub/w.safetensors", b"data")
    with pytest.raises(ArtifactPathError):  # a dangling link too
        store.path("sub/deeper/w.safetensors")
    assert list(elsewhere.iterdir()) == []


def test_a_symlink_staying_inside_is_fine(store: ArtifactStore) -> None:
    (store.root / "real").mkdir(parents=True)
    (store.root / "alias").symlink_to(store.root / "real", target_is_directory=True)
    assert store.path("alias/x") == store.root / "alias" / "x"
    store._write_atomic("alias/x", b"data")
    assert (store.root / "real" / "x").read_bytes() == b"data"


def test_the_root_may_be_reached_through_a_symlink(tmp_path: Path) -> None:
    """A symlinked parent of the root, and a root that is itself a link, are fine."""
    real = tmp_path / "disk"
    (real / "experiment-1").mkdir(parents=True)
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    via_parent = ArtifactStore(tmp_path / "link" / "experiment-1")
    (tmp_path / "root-link").symlink_to(real / "experiment-1", target_is_directory=True)
    as_link = ArtifactStore(tmp_path / "root-link")

    via_parent.save_weights(0, _tensors())
    loaded = as_link.load_weights(0)

    assert (real / "experiment-1" / "trial-0.safetensors").is_file()
    assert set(loaded) == set(_tensors())


def test_for_experiment_stands_beside_the_store_never_uses_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "runs" / "s.db"
    assert ArtifactStore.for_experiment(str(db), 4).root == tmp_path / "runs" / "s.db.artifacts" / (
        "experiment-4"
    )
    url = f"sqlite:///{db}"
    assert ArtifactStore.for_experiment(url, 4).root == db.with_name("s.db.artifacts") / (
        "experiment-4"
    )
    server = "postgresql+psycopg://u@host:5432/db"
    monkeypatch.setenv("NASFORGE_ARTIFACTS", str(tmp_path / "shared"))
    assert ArtifactStore.for_experiment(server, 2).root == tmp_path / "shared" / "experiment-2"
    monkeypatch.delenv("NASFORGE_ARTIFACTS")
    monkeypatch.chdir(tmp_path)
    assert ArtifactStore.for_experiment(server, 2).root == (
        tmp_path / "nasforge-artifacts" / "experiment-2"
    )
    for bad in (-1, True, "3"):
        with pytest.raises(ConfigError, match="experiment_id must be an integer >= 0"):
            ArtifactStore.for_experiment(str(db), bad)  # type: ignore[arg-type]


# -- weights -------------------------------------------------------------------------------------
def test_save_and_load_round_trip(store: ArtifactStore) -> None:
    tensors = _tensors()
    strided = torch.arange(12.0).reshape(3, 4).t()  # not contiguous
    tensors["strided"] = strided

    path = store.save_weights(5, tensors, metadata={"note": "best epoch"})

    assert path == store.root / "trial-5.safetensors" and store.weights_path(5) == path
    assert store.weights_path(6) is None
    loaded = store.load_weights(5)
    assert set(loaded) == set(tensors)
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.dtype and loaded[name].device.type == "cpu"
        assert torch.equal(loaded[name], tensor)
    assert not strided.is_contiguous()  # the caller's tensors are left alone

    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as file:
        assert file.metadata() == {
            "format": "nasforge-trial-weights",
            "trial": "5",
            "note": "best epoch",
        }


def test_save_replaces_atomically_and_leaves_no_temp_file(store: ArtifactStore) -> None:
    store.save_weights(1, {"w": torch.zeros(3)})
    store.save_weights(1, {"w": torch.ones(3)})

    assert sorted(p.name for p in store.root.iterdir()) == ["trial-1.safetensors"]
    assert torch.equal(store.load_weights(1)["w"], torch.ones(3))


def test_a_failed_write_leaves_no_temp_file_and_the_old_file(store: ArtifactStore) -> None:
    store.save_weights(1, {"w": torch.zeros(3)})
    shared = torch.zeros(4)
    with pytest.raises(ConfigError, match="must map names"):
        store.save_weights(1, {"w": shared, "x": "not a tensor"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="a trial number must be an integer >= 0"):
        store.save_weights(-1, {"w": shared})

    assert sorted(p.name for p in store.root.iterdir()) == ["trial-1.safetensors"]
    assert torch.equal(store.load_weights(1)["w"], torch.zeros(3))


def test_tied_tensors_are_written_as_copies(store: ArtifactStore) -> None:
    base = torch.randn(6)
    store.save_weights(0, {"a": base, "b": base, "view": base[:3]})
    loaded = store.load_weights(0)
    assert torch.equal(loaded["b"], base) and torch.equal(loaded["view"], base[:3])


@pytest.mark.parametrize(
    "content",
    [b"", b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}", b"garbage" * 10],
    ids=["empty", "bad-header", "garbage"],
)
def test_a_damaged_file_is_a_clear_error(store: ArtifactStore, content: bytes) -> None:
    store.root.mkdir()
    (store.root / "trial-2.safetensors").write_bytes(content)

    with pytest.raises(ArtifactError, match="is damaged or not a safetensors file") as info:
        store.load_weights(2)
    assert "trial-2.safetensors" in str(info.value) and isinstance(info.value, StoreError)


def test_a_truncated_file_is_a_clear_error(store: ArtifactStore) -> None:
    path = store.save_weights(2, {"w": torch.randn(100)})
    path.write_bytes(path.read_bytes()[:-17])

    with pytest.raises(ArtifactError, match="damaged"):
        store.load_weights(2)


class _Boom:
    """Unpickling this would create a file: proof that a pickle ran."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (Path(self.flag),))


def test_a_pickle_named_safetensors_is_refused_and_not_run(
    tmp_path: Path, store: ArtifactStore
) -> None:
    flag = tmp_path / "ran"
    store.root.mkdir()
    (store.root / "trial-0.safetensors").write_bytes(pickle.dumps(_Boom(str(flag))))
    torch.save({"w": torch.zeros(2)}, store.root / "trial-1.safetensors")

    for number in (0, 1):
        with pytest.raises(ArtifactError, match="not a safetensors file"):
            store.load_weights(number)
    assert not flag.exists()


def test_loading_what_is_missing(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactError, match="no stored weights for trial 9"):
        store.load_weights(9)


def test_the_root_is_created_lazily_with_parents(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "a" / "b" / "experiment-0")
    assert not (tmp_path / "a").exists()
    store.save_weights(0, {"w": torch.zeros(1)})
    assert os.listdir(store.root) == ["trial-0.safetensors"]
