"""Image tasks: arrays, digits, a folder of images, saved files, and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.errors import ConfigError
from nasforge.tasks.image import image_task, load_digits, load_image_file, load_image_folder

PIL = pytest.importorskip("PIL.Image")


def test_digits_split_is_fixed_by_seed_and_disjoint() -> None:
    task = load_digits(seed=0)
    assert task.input_shape == (1, 8, 8)
    assert task.num_outputs == 10 and task.kind == "classification"
    sizes = (len(task.y_train), len(task.y_val), len(task.y_test))
    assert sum(sizes) == 1797
    assert sizes == (1079, 359, 359)  # 20% of 1,797 rounds to 359
    again = load_digits(seed=0)
    assert torch.equal(task.x_val, again.x_val)
    other = load_digits(seed=1)
    assert not torch.equal(task.x_val, other.x_val)
    # standardised per channel with the training split's statistics
    assert abs(float(task.x_train.mean())) < 1e-4
    assert abs(float(task.x_train.std()) - 1) < 1e-2


def test_splits_are_disjoint_and_cover_the_data() -> None:
    ids = np.arange(50, dtype=np.float32)
    x = np.broadcast_to(ids[:, None, None, None], (50, 1, 2, 2)).copy()
    task = image_task(x, np.arange(50) % 2, standardize=False)
    seen = [t[:, 0, 0, 0].tolist() for t in (task.x_train, task.x_val, task.x_test)]
    assert sorted(seen[0] + seen[1] + seen[2]) == ids.tolist()


def test_stratified_split_keeps_class_balance() -> None:
    task = load_digits(seed=0)
    counts = torch.bincount(task.y_val, minlength=10)
    assert int(counts.min()) >= 34 and int(counts.max()) <= 38  # 35-36 per class


def _write_folder(root: Path, sizes: dict[str, list[tuple[int, int]]]) -> None:
    rng = np.random.default_rng(0)
    for cls, shapes in sizes.items():
        (root / cls).mkdir(parents=True)
        for i, (h, w) in enumerate(shapes):
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            PIL.fromarray(pixels).save(root / cls / f"{i}.png")


def test_image_folder_reads_classes_and_channels(tmp_path: Path) -> None:
    _write_folder(tmp_path, {"cat": [(6, 5)] * 6, "dog": [(6, 5)] * 6, "eel": [(6, 5)] * 6})
    task = load_image_folder(tmp_path)
    assert task.classes == ("cat", "dog", "eel")
    assert task.input_shape == (3, 6, 5)
    assert len(task.y_train) + len(task.y_val) + len(task.y_test) == 18
    grey = load_image_folder(tmp_path, grayscale=True, size=(4, 4))
    assert grey.input_shape == (1, 4, 4)


def test_image_folder_of_mixed_sizes_needs_a_size(tmp_path: Path) -> None:
    _write_folder(tmp_path, {"a": [(6, 6)] * 5, "b": [(6, 6)] * 4 + [(7, 6)]})
    with pytest.raises(ConfigError, match=r"images differ in shape.*--image-size"):
        load_image_folder(tmp_path)
    assert load_image_folder(tmp_path, size=(6, 6)).input_shape == (3, 6, 6)


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_image_folder(tmp_path / "nope")
    (tmp_path / "only").mkdir()
    with pytest.raises(ConfigError, match="one sub-folder per class"):
        load_image_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no images"):
        load_image_folder(tmp_path)
    (tmp_path / "only" / "x.png").write_bytes(b"not an image")
    (tmp_path / "empty" / "y.png").write_bytes(b"not an image")
    with pytest.raises(ConfigError, match="cannot read image"):
        load_image_folder(tmp_path)


def test_arrays_errors() -> None:
    x = np.zeros((20, 1, 4, 4), dtype=np.float32)
    y = np.arange(20) % 2
    with pytest.raises(ConfigError, match=r"\(N, C, H, W\)"):
        image_task(np.zeros((20, 4)), y)
    with pytest.raises(ConfigError, match="differ in length"):
        image_task(x, y[:10])
    bad = x.copy()
    bad[3, 0, 1, 1] = np.nan
    with pytest.raises(ConfigError, match="NaN or infinite values in 1 examples"):
        image_task(bad, y)
    with pytest.raises(ConfigError, match="at least 2 classes"):
        image_task(x, np.zeros(20, dtype=int))
    with pytest.raises(ConfigError, match="empty"):
        image_task(np.zeros((0, 1, 4, 4)), np.zeros(0))
    with pytest.raises(ConfigError, match="too few"):
        image_task(x[:2], y[:2])
    with pytest.raises(ConfigError, match="NaN or infinite"):
        image_task(x, np.where(y == 0, np.nan, 1.0))
    with pytest.raises(ConfigError, match="three fractions"):
        image_task(x, y, split=(0.5, 0.5))


def test_image_files_npz_and_pt(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 8, 8)).astype(np.float32)
    y = np.arange(30) % 3
    np.savez(tmp_path / "imgs.npz", x=x, y=y)
    task = load_image_file(tmp_path / "imgs.npz")
    assert task.input_shape == (1, 8, 8) and task.num_classes == 3
    torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, tmp_path / "imgs.pt")
    assert load_image_file(tmp_path / "imgs.pt").input_shape == (1, 8, 8)
    np.savez(tmp_path / "nox.npz", images=x)
    with pytest.raises(ConfigError, match=r"lacks array\(s\) \['x', 'y'\]"):
        load_image_file(tmp_path / "nox.npz")
    with pytest.raises(ConfigError, match=r"must end in .npz or .pt"):
        (tmp_path / "imgs.txt").write_text("x")
        load_image_file(tmp_path / "imgs.txt")
