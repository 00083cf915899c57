"""Files a search keeps beside its store: each trial's trained weights, as safetensors.

An :class:`ArtifactStore` is one experiment's folder. Every path it hands out or writes is
confined to that folder: absolute paths, ``..`` components, empty paths, NUL bytes and
symbolic links that lead out of it (at any level below the folder) are refused, when a path is
asked for and again when a file is written. The folder itself may be reached through a
symbolic link. Weights are written atomically (a temporary file in the same folder, fsync,
rename) and read with ``safetensors``: nothing is unpickled.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from nasforge.errors import ConfigError, StoreError

if TYPE_CHECKING:
    import torch

__all__ = [
    "ARTIFACTS_ENV",
    "DEFAULT_ARTIFACTS",
    "ArtifactError",
    "ArtifactPathError",
    "ArtifactStore",
    "keeps_files",
]

ARTIFACTS_ENV = "NASFORGE_ARTIFACTS"
DEFAULT_ARTIFACTS = "nasforge-artifacts"
WEIGHTS_FORMAT = "nasforge-trial-weights"


class ArtifactPathError(ConfigError):
    """A path would leave the artifact folder (or is not a usable relative path)."""


class ArtifactError(StoreError):
    """An artifact file is missing, damaged, or not what nasforge writes."""


def _sqlite_file(target: str) -> str | None:
    """The database file of a SQLite store target (a path or ``sqlite:///`` URL), else None."""
    if "://" not in target:
        return target
    if not target.startswith("sqlite"):
        return None
    import sqlalchemy as sa

    try:
        database = sa.make_url(target).database
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"{target!r} is not a valid database URL or path: {exc}") from None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None  # no file to stand beside
    return database


def keeps_files(target: str) -> bool:
    """Whether a store at ``target`` has an artifact folder: a SQLite file, or a server
    database (whose folder is ``$NASFORGE_ARTIFACTS``); not an in-memory database."""
    if "://" not in target:
        return target not in ("", ":memory:")
    return not target.startswith("sqlite") or _sqlite_file(target) is not None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class ArtifactStore:
    """One experiment's artifact folder, with every path confined to it.

    Instances are cheap and hold no open files; the folder is created on the first write.
    Safe to use from several processes: writes are atomic renames, so a reader sees either
    the old file or the new one, never a partial one.

    Args:
        root: The folder (need not exist yet). It may itself be, or lie below, a symbolic
            link; links below it must stay inside it.

    Raises:
        ArtifactPathError: If ``root`` is empty or holds a NUL byte.
    """

    root: Path

    def __init__(self, root: str | os.PathLike[str]) -> None:
        text = os.fspath(root)
        if not text or "\0" in text:
            raise ArtifactPathError(
                f"an artifact root must be a non-empty path without NUL bytes, got {text!r}"
            )
        self.root = Path(text).expanduser().absolute()

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self.root)!r})"

    @classmethod
    def for_experiment(cls, store_target: str, experiment_id: int) -> ArtifactStore:
        """The artifact folder of experiment ``experiment_id`` of the store at ``store_target``.

        ``<db file>.artifacts/experiment-<id>/`` next to a SQLite file store; for a server URL
        (``postgresql+psycopg://...``) ``$NASFORGE_ARTIFACTS/experiment-<id>``, defaulting to
        ``./nasforge-artifacts/experiment-<id>``. Never derived from the experiment's name (a
        user-given string).

        Raises:
            ConfigError: If ``experiment_id`` is not an integer >= 0, or the target is not a
                valid URL.
        """
        if isinstance(experiment_id, bool) or not isinstance(experiment_id, int):
            raise ConfigError(f"experiment_id must be an integer >= 0, got {experiment_id!r}")
        if experiment_id < 0:
            raise ConfigError(f"experiment_id must be an integer >= 0, got {experiment_id}")
        target = os.fspath(store_target)
        database = _sqlite_file(target)
        if database is not None:
            base = Path(database).expanduser()
            folder = base.with_name(base.name + ".artifacts")
        else:
            folder = Path(os.environ.get(ARTIFACTS_ENV) or DEFAULT_ARTIFACTS).expanduser()
        return cls(folder / f"experiment-{experiment_id}")

    # -- paths ------------------------------------------------------------------------------
    def path(self, relative: str | os.PathLike[str]) -> Path:
        """The path of ``relative`` inside the folder, checked to stay inside it.

        Raises:
            ArtifactPathError: For an absolute path, a ``..`` component, an empty path, a NUL
                byte, or a path whose real location (following symbolic links, at any level
                below the folder) leaves the folder.
        """
        text = os.fspath(relative)
        accepted = "give a relative path below the artifact folder, e.g. 'trial-3.safetensors'"
        if not text or text in (".", "./"):
            raise ArtifactPathError(f"an artifact path must not be empty; {accepted}")
        if "\0" in text:
            raise ArtifactPathError(f"artifact path {text!r} holds a NUL byte; {accepted}")
        pure = PurePath(text)
        if pure.is_absolute() or text.startswith(("/", "\\")):
            raise ArtifactPathError(f"artifact path {text!r} is absolute; {accepted}")
        if ".." in pure.parts:
            raise ArtifactPathError(f"artifact path {text!r} has a '..' component; {accepted}")
        candidate = self.root / pure
        self._check_real(candidate, text)
        return candidate

    def _check_real(self, candidate: Path, shown: str, *, folder: bool = False) -> None:
        """``candidate``'s real location is inside the folder (or is it, for a ``folder``)."""
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(candidate)
        if not _inside(real, real_root) or (real == real_root and not folder):
            raise ArtifactPathError(
                f"artifact path {shown!r} resolves to {real}, outside the artifact folder "
                f"{real_root} (a symbolic link leads out); only files inside it are used"
            )

    # -- weights ----------------------------------------------------------------------------
    @staticmethod
    def _weights_name(number: int) -> str:
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ConfigError(f"a trial number must be an integer >= 0, got {number!r}")
        return f"trial-{number}.safetensors"

    def save_weights(
        self,
        number: int,
        tensors: Mapping[str, torch.Tensor],
        metadata: Mapping[str, str] | None = None,
    ) -> Path:
        """Write trial ``number``'s tensors to ``trial-<number>.safetensors``, atomically.

        The tensors are written as contiguous CPU copies (the caller's are not changed); the
        folder is created if missing.

        Args:
            number: The trial number.
            tensors: Name to tensor, e.g. a model's ``state_dict()``.
            metadata: Strings stored in the file's header (besides the format and trial).

        Returns:
            The file written.

        Raises:
            ConfigError: If a name or metadata entry is not a string or a value not a tensor.
            ArtifactPathError: If the file's location leads out of the folder.
            ArtifactError: If the file cannot be written.
        """
        import torch
        from safetensors.torch import save

        name = self._weights_name(number)
        state: dict[str, torch.Tensor] = {}
        for key, value in tensors.items():
            if not isinstance(key, str) or not isinstance(value, torch.Tensor):
                raise ConfigError(
                    f"weights must map names (str) to tensors, got {key!r}: {type(value).__name__}"
                )
            state[key] = value.detach().to("cpu", copy=True).contiguous()
        header = {"format": WEIGHTS_FORMAT, "trial": str(number)}
        for key, text in (metadata or {}).items():
            if not isinstance(key, str) or not isinstance(text, str):
                raise ConfigError(f"weights metadata must map str to str, got {key!r}: {text!r}")
            header[key] = text
        try:
            data = save(state, metadata=header)
        except (ValueError, RuntimeError) as exc:
            raise ArtifactError(f"cannot serialise the weights of trial {number}: {exc}") from None
        return self._write_atomic(name, data)

    def weights_path(self, number: int) -> Path | None:
        """The weights file of trial ``number``, or ``None`` if there is none.

        Raises:
            ArtifactPathError: If the file's location leads out of the folder.
        """
        path = self.path(self._weights_name(number))
        return path if path.is_file() else None

    def load_weights(self, number: int) -> dict[str, torch.Tensor]:
        """Trial ``number``'s tensors, read with ``safetensors`` (nothing is unpickled).

        Raises:
            ArtifactPathError: If the file's location leads out of the folder.
            ArtifactError: If there is no such file, or it is damaged or not a safetensors
                file (e.g. a pickle); the message names the file.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load

        path = self.path(self._weights_name(number))
        data = self._read_bytes(path, "the weights file")
        if data is None:
            raise ArtifactError(f"no stored weights for trial {number} (no file {path})")
        try:
            return load(data)
        except (SafetensorError, ValueError, RuntimeError, TypeError) as exc:
            raise ArtifactError(
                f"the weights file {path} is damaged or not a safetensors file ({exc}); "
                "delete it (export then retrains the trial)"
            ) from None

    # -- other tensor files (the supernet checkpoint) -----------------------------------------
    def save_tensors(
        self, name: str, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]
    ) -> Path:
        """Write ``tensors`` (CPU copies) and string ``metadata`` to the safetensors file
        ``name`` in the folder, atomically (as :meth:`save_weights`).

        Raises:
            ArtifactPathError: If the file's location leads out of the folder.
            ArtifactError: If the file cannot be serialised or written.
        """
        from safetensors.torch import save

        state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
        try:
            data = save(state, metadata=dict(metadata))
        except (ValueError, RuntimeError) as exc:
            raise ArtifactError(f"cannot serialise {name}: {exc}") from None
        return self._write_atomic(name, data)

    def load_tensors(self, name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
        """The tensors and metadata of the safetensors file ``name``, or ``None`` if there
        is no such file (read with ``safetensors``: nothing is unpickled).

        Raises:
            ArtifactPathError: If the file's location leads out of the folder.
            ArtifactError: If the file is damaged or not a safetensors file.
        """
        import json

        from safetensors import SafetensorError
        from safetensors.torch import load

        path = self.path(name)
        data = self._read_bytes(path, "")
        if data is None:
            return None
        try:
            size = int.from_bytes(data[:8], "little")
            header = json.loads(data[8 : 8 + size])
            metadata = header.get("__metadata__") or {}
            if not isinstance(metadata, dict):
                raise ValueError("its metadata is not an object")
            return load(data), {str(k): str(v) for k, v in metadata.items()}
        except (SafetensorError, ValueError, RuntimeError, TypeError, AttributeError) as exc:
            raise ArtifactError(f"{path} is damaged or not a safetensors file ({exc})") from None

    @staticmethod
    def _read_bytes(path: Path, what: str) -> bytes | None:
        """The bytes of the checked ``path`` (not following a final symbolic link), or
        ``None`` if there is no such file.

        Raises:
            ArtifactError: If it cannot be read (``what`` names it in the message).
        """
        shown = f"{what} {path}".strip()
        try:
            fd = os.open(os.path.realpath(path), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ArtifactError(f"cannot read {shown}: {exc}") from None
        try:
            with os.fdopen(fd, "rb") as file:
                return file.read()
        except OSError as exc:
            raise ArtifactError(f"cannot read {shown}: {exc}") from None

    # -- writing ----------------------------------------------------------------------------
    def _write_atomic(self, relative: str, data: bytes) -> Path:
        """Write ``data`` to ``relative`` atomically, confined to the folder.

        The location is checked, the parent folder is created and opened, the opened folder's
        real location is checked again (so a link swapped in after the first check is caught),
        and the temporary file and the rename happen relative to that open folder.
        """
        target = self.path(relative)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArtifactError(
                f"cannot create the artifact folder {target.parent}: {exc}"
            ) from None
        target = self.path(relative)  # again: the folders now exist
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            dir_fd = os.open(os.path.realpath(target.parent), flags)
        except OSError as exc:
            raise ArtifactError(f"cannot open the artifact folder {target.parent}: {exc}") from None
        try:
            self._check_open_dir(dir_fd, target.parent, relative)
            self._write_in(dir_fd, target, data)
        finally:
            os.close(dir_fd)
        return target

    def _check_open_dir(self, dir_fd: int, parent: Path, shown: str) -> None:
        """The folder open as ``dir_fd`` is inside the artifact folder (by identity)."""
        opened = os.fstat(dir_fd)
        real = os.path.realpath(parent)
        try:
            now = os.stat(real)
        except OSError:
            now = None
        if now is None or (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
            raise ArtifactPathError(
                f"artifact path {shown!r}: its folder changed while being written; "
                "only files inside the artifact folder are written"
            )
        self._check_real(parent, shown, folder=True)

    @staticmethod
    def _write_in(dir_fd: int, target: Path, data: bytes) -> None:
        name = target.name
        temp = f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(temp, flags, 0o644, dir_fd=dir_fd)
        except OSError as exc:
            raise ArtifactError(f"cannot write {target}: {exc}") from None
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=dir_fd)
            if isinstance(exc, OSError):
                raise ArtifactError(f"cannot write {target}: {exc}") from None
            raise
        with contextlib.suppress(OSError):  # not every file system syncs folders
            os.fsync(dir_fd)  # the rename survives a crash
