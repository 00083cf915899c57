"""Image classification: the task kind, and loaders for arrays, scikit-learn's digits, a
folder of images and a saved file.

Specs (:class:`ImageKind`): ``image:digits``, ``image:folder:PATH``, ``image:file:PATH.npz``;
the default space is ``nb201`` with NAS-Bench-201's optimiser recipe on a small network.

Loaders (none needs torchvision):
    * :func:`image_task` — arrays or tensors (N, C, H, W) or (N, H, W) with labels.
    * :func:`load_digits` — scikit-learn's 1,797 handwritten digits, 8x8 grey levels (offline).
    * :func:`load_image_folder` — ``root/<class>/*.png|jpg|...``, read with Pillow.
    * :func:`load_image_file` — an ``.npz`` with arrays ``x`` and ``y`` (or a ``.pt`` dict of
      tensors read with ``torch.load(weights_only=True)``).

torch is imported where it is used: the kind is registered when nasforge is imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import ConfigError
from nasforge.tasks.base import TaskKind, TaskSetup
from nasforge.tasks.files import numeric, read_npz, read_tensors
from nasforge.tasks.supervised import SupervisedTask, check_split_seed, split_arrays

if TYPE_CHECKING:
    import torch

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageKind",
    "image_task",
    "load_digits",
    "load_image_file",
    "load_image_folder",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def image_task(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor | Sequence[Any],
    *,
    name: str = "images",
    split: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    classes: Sequence[str] | None = None,
    info: dict[str, Any] | None = None,
    standardize: bool = True,
) -> SupervisedTask:
    """An image-classification task from arrays; (N, H, W) is read as one channel.

    Raises:
        ConfigError: For inputs that are not (N, C, H, W), NaN values, mismatched lengths,
            fewer than 2 classes or too few examples to split.
    """
    import torch

    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim == 3:
        arr = arr[:, None]  # (N, H, W) -> (N, 1, H, W)
    return split_arrays(
        arr,
        y,
        name=name,
        modality="image",
        split=split,
        seed=seed,
        classes=classes,
        info=info,
        standardize=standardize,
    )


def load_digits(*, seed: int = 0, split: Sequence[float] = (0.6, 0.2, 0.2)) -> SupervisedTask:
    """scikit-learn's digits as (1, 8, 8) images, 10 classes, split 60/20/20 by ``seed``."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = bunch.images.astype(np.float32) / 16.0  # (1797, 8, 8), grey levels 0..16
    return image_task(
        images,
        bunch.target,
        name="image:digits",
        split=split,
        seed=seed,
        classes=[str(c) for c in range(10)],
        info={"source": "sklearn.datasets.load_digits"},
    )


def _read_image(path: Path, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as raw:
            img = raw.convert(mode)
            if size is not None:
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as exc:
        raise ConfigError(f"cannot read image {path}: {exc}") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # (C, H, W)


def load_image_folder(
    root: str | os.PathLike[str],
    *,
    size: tuple[int, int] | None = None,
    grayscale: bool = False,
    seed: int = 0,
    split: Sequence[float] = (0.6, 0.2, 0.2),
) -> SupervisedTask:
    """Images in ``root/<class name>/``, one sub-folder per class (as ImageFolder lays them out).

    Args:
        root: The folder holding one sub-folder per class.
        size: Resize every image to (height, width); without it all images must share a size.
        grayscale: Read as one channel (otherwise RGB, 3 channels).
        seed: Fixes the train/validation/test split.
        split: Fractions of the three splits.

    Raises:
        ConfigError: For a missing folder, no class folders, a class without images, an
            unreadable image, or images of different sizes when ``size`` is not given.
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise ConfigError(f"image folder {base} does not exist (expected <root>/<class>/*.png)")
    class_dirs = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise ConfigError(
            f"image folder {base} needs one sub-folder per class (at least 2), found "
            f"{[p.name for p in class_dirs]}"
        )
    mode = "L" if grayscale else "RGB"
    images: list[np.ndarray] = []
    labels: list[int] = []
    first: tuple[tuple[int, ...], Path] | None = None
    for label, folder in enumerate(class_dirs):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ConfigError(
                f"class folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})"
            )
        for path in files:
            arr = _read_image(path, mode, size)
            if first is None:
                first = (arr.shape, path)
            elif arr.shape != first[0]:
                raise ConfigError(
                    f"images differ in shape: {first[1]} is {first[0]} (C, H, W) but {path} is "
                    f"{arr.shape}; pass size=(H, W) (--image-size HxW) to resize them"
                )
            images.append(arr)
            labels.append(label)
    return image_task(
        np.stack(images),
        np.asarray(labels),
        name=f"image:folder:{base}",
        split=split,
        seed=seed,
        classes=[p.name for p in class_dirs],
        info={"source": str(base), "mode": mode},
    )


def load_image_file(
    path: str | os.PathLike[str], *, seed: int = 0, split: Sequence[float] = (0.6, 0.2, 0.2)
) -> SupervisedTask:
    """Images saved as ``.npz`` (arrays ``x`` (N, C, H, W) or (N, H, W) and ``y``) or as a
    ``.pt`` dict of tensors with the same keys (loaded with ``weights_only=True``).

    Raises:
        ConfigError: For a missing or unreadable file, missing keys, or bad arrays.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"image file {file} does not exist")
    arrays: dict[str, Any]
    if file.suffix == ".npz":
        arrays = read_npz(file)
    elif file.suffix == ".pt":
        loaded = read_tensors(file)
        if not isinstance(loaded, dict):
            raise ConfigError(f"{file} must hold a dict with tensors 'x' and 'y'")
        arrays = loaded
    else:
        raise ConfigError(f"image file {file} must end in .npz or .pt")
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise ConfigError(f"{file} lacks array(s) {missing}; found {sorted(map(str, arrays))}")
    arrays["x"] = numeric(file, "x", arrays["x"])
    if not isinstance(arrays["y"], np.ndarray):
        arrays["y"] = numeric(file, "y", arrays["y"])
    return image_task(arrays["x"], arrays["y"], name=f"image:file:{file}", split=split, seed=seed)


def _image_size(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.lower().split("x")
        try:
            height, width = (int(p) for p in parts) if len(parts) == 2 else (-1, -1)
        except ValueError:
            height, width = -1, -1
    elif isinstance(value, tuple | list) and len(value) == 2:
        height, width = int(value[0]), int(value[1])
    else:
        height, width = -1, -1
    if height < 1 or width < 1:
        raise ConfigError(
            f"image size must be HxW with positive integers (e.g. 32x32), got {value!r}"
        )
    return height, width


class ImageKind(TaskKind):
    """Image classification: ``image:digits``, ``image:folder:PATH``, ``image:file:PATH``.

    Defaults: the ``nb201`` space on a small network (8 channels, one cell per stage) with
    NAS-Bench-201's recipe (SGD, Nesterov momentum 0.9, weight decay 5e-4, cosine schedule)
    and fewer epochs (20), so that a candidate trains in seconds on a CPU. The 60/20/20 split
    is fixed by the ``split_seed`` option (default 0), the same for every search seed.
    """

    name = "image"
    prefixes = ("image",)
    forms = ("image:digits", "image:folder:PATH", "image:file:PATH.npz")
    options = ("image_size", "grayscale", "split_seed")
    example = "image:digits"
    summary = (
        "image classification: image:digits, image:folder:DIR, image:file:PATH.npz "
        "(default space nb201)"
    )

    def load(
        self,
        spec: str,
        *,
        data_root: str | os.PathLike[str] | None,
        download: bool,
        seed: int,
        options: Mapping[str, Any],
    ) -> TaskSetup:
        from nasforge.spaces.nb201 import Nb201Hyper
        from nasforge.train.trainer import TrainConfig

        split_seed = check_split_seed(options)
        sub, _, path = spec.partition(":")[2].partition(":")
        if ("image_size" in options or "grayscale" in options) and sub != "folder":
            raise ConfigError(f"image_size and grayscale apply to image:folder tasks, not {spec!r}")
        if sub == "digits" and not path:
            task = load_digits(seed=split_seed)
        elif sub == "folder" and path:
            task = load_image_folder(
                path,
                size=_image_size(options.get("image_size")),
                grayscale=bool(options.get("grayscale", False)),
                seed=split_seed,
            )
        elif sub == "file" and path:
            task = load_image_file(path, seed=split_seed)
        else:
            raise self.unknown(spec)
        recipe = TrainConfig(
            epochs=20,
            lr=0.1,
            weight_decay=5e-4,
            optimizer="sgd",
            momentum=0.9,
            schedule="cosine",
            batch_size=64,
            patience=None,
            seed=seed,
        )
        return TaskSetup(
            task,
            "nb201",
            Nb201Hyper(channels=8, cells_per_stage=1),
            recipe,
            "NAS-Bench-201 recipe, small network",
        )
