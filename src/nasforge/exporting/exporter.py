"""``nasforge export``: train one trial's architecture at full fidelity and write it to a folder.

When the search kept the trial's weights (``trial-<n>.safetensors`` in the experiment's
:class:`~nasforge.artifacts.ArtifactStore`) and they fit the rebuilt network, they are used
instead of training again; ``nasforge.json`` says which (``weights_source``). A stored file that
is damaged or does not fit is reported (a :class:`StoredWeightsWarning`) and the architecture
is retrained.

Every check (experiment, trial, its status, the output folder, the data) runs before anything is
written, and the files are first written into a hidden folder beside ``out`` and renamed into
place at the end, so an error or an interruption leaves ``out`` as it was. The store is only
read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from nasforge.architecture import Architecture
from nasforge.artifacts import ArtifactError, ArtifactPathError, ArtifactStore
from nasforge.compression.plan import compression_of, step_of_key
from nasforge.errors import ConfigError
from nasforge.exporting.onnx import ONNX_FILE, export_onnx
from nasforge.exporting.rebuild import Rebuilt, rebuild
from nasforge.exporting.torch import (
    FORMAT,
    FORMAT_VERSION,
    METADATA_FILE,
    WEIGHTS_FILE,
    ExportedModel,
    save,
)
from nasforge.objective import best_trial
from nasforge.result import Status
from nasforge.spaces.base import space_members
from nasforge.store.base import ExperimentRecord, TrialRecord
from nasforge.store.sql import open_store

__all__ = ["RETRAINED", "StoredWeightsWarning", "check_out", "choose_trial", "export_experiment"]

RETRAINED = "retrained"


class StoredWeightsWarning(UserWarning):
    """A trial's stored weights could not be used (damaged, or not fitting); export retrains."""


def check_out(out: str | os.PathLike[str]) -> Path:
    """The output folder, if it can be written: absent, or an empty folder.

    Raises:
        ConfigError: If ``out`` is a file or a non-empty folder.
    """
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"the output folder {path} is a file; give a new or empty folder")
    if path.is_dir() and any(path.iterdir()):
        raise ConfigError(
            f"the output folder {path} is not empty; give a new or empty folder (nothing is "
            "overwritten)"
        )
    return path


def choose_trial(
    record: ExperimentRecord,
    trials: list[TrialRecord],
    number: int | None,
    *,
    verb: str = "exported",
) -> TrialRecord:
    """Trial ``number`` of the experiment, or its best trial when ``number`` is ``None``
    (``verb`` says what is done with it, in the messages).

    Raises:
        ConfigError: For a trial number the experiment does not have, a trial that is not
            COMPLETE (with its status and reason), or an experiment without a COMPLETE trial.
    """
    best = best_trial(trials, record.objective)
    hint = f"; its best is trial {best.number} (--best)" if best is not None else ""
    if number is None:
        if best is None:
            counts = {s.value: sum(t.status is s for t in trials) for s in Status}
            held = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no trials"
            raise ConfigError(
                f"experiment {record.name!r} has no COMPLETE trial to be {verb} ({held})"
            )
        return best
    chosen = next((t for t in trials if t.number == number), None)
    if chosen is None:
        span = f"0..{trials[-1].number}" if trials else "none"
        raise ConfigError(
            f"experiment {record.name!r} has no trial {number} (its trials: {span}){hint}"
        )
    if chosen.status is not Status.COMPLETE:
        reason = f": {chosen.error}" if chosen.error else ""
        raise ConfigError(
            f"trial {number} of experiment {record.name!r} is {chosen.status.value}{reason}; "
            f"only COMPLETE trials can be {verb}{hint}"
        )
    return chosen


def _read(
    name: str, db: str | os.PathLike[str] | None
) -> tuple[ExperimentRecord, list[TrialRecord], str]:
    store = open_store(db, create=False)
    try:
        record = store.get_experiment(name)
        return record, space_members(record, store.trials(record.id)), store.target
    finally:
        store.close()


def _stored_state(
    setup: Rebuilt,
    record: ExperimentRecord,
    chosen: TrialRecord,
    artifacts: ArtifactStore,
    epochs: int | None,
) -> tuple[dict[str, torch.Tensor] | None, str | None]:
    """The trial's stored weights if they can stand for a training run, else why not.

    Returns ``(state, file)`` to use ``state`` (read from ``file``), or ``(None, why_not)``.
    A damaged or mismatching file is also warned about (:class:`StoredWeightsWarning`); its
    absence is not.
    """
    number = chosen.number
    if record.search.evaluator_kind != "training":
        return None, "the search looked its results up in a table: it kept no weights"
    try:
        path = artifacts.weights_path(number)
    except ArtifactPathError as exc:
        return None, _warn(f"not using the stored weights of trial {number}: {exc}; retraining")
    if path is None:
        return None, f"no stored weights of trial {number}"
    trained = chosen.fidelity
    wanted = setup.train.epochs if epochs is None else epochs
    if trained is not None and trained != wanted:
        return None, (
            f"the stored weights of trial {number} were trained for {trained} epochs, export "
            f"trains {wanted}; retraining (pass --epochs {trained} to use them)"
        )
    try:
        state = artifacts.load_weights(number)
    except (ArtifactError, ArtifactPathError) as exc:
        return None, _warn(f"not using the stored weights of trial {number}: {exc}; retraining")
    torch.manual_seed(setup.train.seed)
    net = setup.space.build(chosen.arch, setup.task, setup.hyper)
    mismatch = _mismatch(net.state_dict(), state)
    if mismatch is not None:
        return None, _warn(
            f"the stored weights of trial {number} ({path}) do not fit its architecture "
            f"({mismatch}); retraining"
        )
    return state, str(path)


def _mismatch(expected: dict[str, torch.Tensor], stored: dict[str, torch.Tensor]) -> str | None:
    """The first difference in tensor names or shapes, in words, or ``None``."""
    missing = sorted(expected.keys() - stored.keys())
    extra = sorted(stored.keys() - expected.keys())
    if missing:
        return f"{len(missing)} tensors missing, e.g. {missing[0]!r}"
    if extra:
        return f"{len(extra)} unexpected tensors, e.g. {extra[0]!r}"
    for key, tensor in expected.items():
        if tuple(stored[key].shape) != tuple(tensor.shape):
            return (
                f"{key!r} has shape {tuple(stored[key].shape)}, the network needs "
                f"{tuple(tensor.shape)}"
            )
        if stored[key].dtype != tensor.dtype:
            return f"{key!r} is {stored[key].dtype}, the network needs {tensor.dtype}"
    return None


def _warn(message: str) -> str:
    warnings.warn(message, StoredWeightsWarning, stacklevel=3)
    return message


def _compression(
    record: ExperimentRecord, chosen: TrialRecord, *, retrain: bool, epochs: int | None
) -> dict[str, Any] | None:
    """What ``nasforge.json`` says of a compressed trial (``None`` for a search's trial).

    Raises:
        ConfigError: If ``retrain`` or ``epochs`` is asked of a compressed trial: its pruned
            weights are what it is.
    """
    source = compression_of(record)
    if source is None:
        return None
    if retrain or epochs is not None:
        raise ConfigError(
            f"trial {chosen.number} of {record.name!r} is a compressed network: export writes "
            "its stored pruned weights (--retrain and --epochs apply to a search's trials)"
        )
    step = step_of_key(chosen.key)
    return {
        "of": source,
        "method": None if step is None else step[0],
        "key": chosen.key,
        "sparsity": chosen.costs.get("sparsity"),
        "params": chosen.costs.get("params"),
        "what": "structured: a narrower dense network (its widths in 'hyper' and the architecture)"
        if step is not None and step[0] == "channels"
        else "unstructured: pruned weights are stored zeros in model.safetensors and model.onnx",
    }


def _pruned(
    setup: Rebuilt, chosen: TrialRecord, artifacts: ArtifactStore
) -> tuple[Rebuilt, dict[str, torch.Tensor]]:
    """A compressed trial's setup (a narrower network's settings, for ``channels``) and
    stored weights (pruned entries are zeros), checked to fit.

    Raises:
        ArtifactError: If its file is missing or damaged, or does not fit the network.
    """
    from nasforge.compression.files import stored_step

    stored = stored_step(artifacts, chosen)
    state = stored.state
    if stored.settings is not None:
        setup = replace(setup, hyper=setup.space.settings_from_dict(stored.settings))
    torch.manual_seed(setup.train.seed)
    net = setup.space.build(chosen.arch, setup.task, setup.hyper)
    mismatch = _mismatch(net.state_dict(), state)
    if mismatch is not None:
        raise ArtifactError(
            f"the stored weights of compressed trial {chosen.number} do not fit its "
            f"architecture ({mismatch})"
        )
    return setup, state


def _from_stored(
    setup: Rebuilt, arch: Architecture, state: dict[str, torch.Tensor], epochs: int
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network of ``arch`` with the stored ``state``, and its metrics measured again."""
    start = time.perf_counter()
    config = setup.train
    torch.manual_seed(config.seed)
    net = setup.space.build(arch, setup.task, setup.hyper)
    net.load_state_dict(state, strict=True)
    net.eval()
    return net, {
        **setup.task.score(net),
        "best_epoch": None,  # not recorded with the weights
        "epochs_run": None,
        "epochs": epochs,
        "seed": config.seed,
        "wall_time_s": round(time.perf_counter() - start, 3),
    }


def _train(setup: Rebuilt, arch: Architecture) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train ``arch`` as the search's evaluator does, keeping the best-validation weights."""
    config = setup.train
    torch.manual_seed(config.seed)
    net = setup.space.build(arch, setup.task, setup.hyper)
    start = time.perf_counter()
    fit = setup.task.fit(net, config, keep_state=True)
    if fit.state is not None:  # the weights of the best validation epoch
        net.load_state_dict(fit.state)
    net.eval()
    return net, {
        f"val_{fit.metric}": fit.val,
        f"test_{fit.metric}": fit.test,
        "best_epoch": fit.best_epoch,
        "epochs_run": fit.epochs_run,
        "epochs": config.epochs,
        "seed": config.seed,
        "wall_time_s": round(time.perf_counter() - start, 3),
    }


def _preprocessing(setup: Rebuilt) -> dict[str, Any]:
    if setup.input_mean is None or setup.input_std is None:
        return {"standardize": None, "applied_in_model": False}
    per = "per channel" if setup.task.modality == "image" else "per feature"
    return {
        "standardize": {
            "what": f"x = (x - mean) / std, {per}, with the training split's statistics",
            "mean": setup.input_mean.flatten().tolist(),
            "std": setup.input_std.flatten().tolist(),
        },
        "applied_in_model": True,
    }


def export_experiment(
    name: str,
    *,
    out: str | os.PathLike[str],
    trial: int | None = None,
    db: str | os.PathLike[str] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    task: str | None = None,
    task_options: dict[str, Any] | None = None,
    epochs: int | None = None,
    retrain: bool = False,
) -> Path:
    """Train a trial's architecture of experiment ``name`` and write it into ``out``.

    See :func:`nasforge.api.export` for the arguments and the files written. The trial's
    stored weights are used instead of training when they exist and fit (see the module
    docstring); ``retrain`` trains again regardless.

    Warns:
        StoredWeightsWarning: If stored weights exist but are damaged or do not fit.
    """
    from nasforge.version import __version__

    if epochs is not None and (
        isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1
    ):
        raise ConfigError(
            f"epochs must be an integer >= 1 (or None for the search's), got {epochs!r}"
        )
    folder = check_out(out)
    record, trials, target = _read(name, db)
    chosen = choose_trial(record, trials, trial)
    setup = rebuild(
        record, data_root=data_root, download=download, task=task, task_options=task_options
    )
    if epochs is not None:
        setup = replace(setup, train=replace(setup.train, epochs=epochs))
    artifacts = ArtifactStore.for_experiment(target, record.id)
    note: str | None
    compression = _compression(record, chosen, retrain=retrain, epochs=epochs)
    if compression is not None:
        setup, state = _pruned(setup, chosen, artifacts)
        note = "the pruned weights, zeros kept"
        compression["nonzero_params"] = sum(int((v != 0).sum()) for v in state.values())
    elif retrain:
        state, note = None, "retraining was asked for (--retrain)"
    else:
        state, note = _stored_state(setup, record, chosen, artifacts, epochs)
    if state is not None:
        trained = setup.train.epochs if chosen.fidelity is None else chosen.fidelity
        net, run = _from_stored(setup, chosen.arch, state, trained)
        source = f"stored weights of trial {chosen.number}"
        if compression is not None:
            source = f"pruned weights of compressed trial {chosen.number}"
    else:
        net, run = _train(setup, chosen.arch)
        source = RETRAINED
    scale = setup.task.target_scale()
    task_info = setup.task.describe()
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nasforge_version": __version__,
        "torch_version": torch.__version__,
        "experiment": name,
        "trial": chosen.number,
        "space": setup.space.name,
        "architecture": chosen.arch.to_dict(),
        "canonical_key": chosen.key,
        "hyper": setup.hyper.to_dict() if hasattr(setup.hyper, "to_dict") else None,
        "training": {
            **asdict(setup.train),
            "protocol": setup.protocol,
            "epochs_override": epochs,  # None: the epochs of the protocol
        },
        "task": task_info,
        "data": setup.data,
        "model": setup.task.model_io(),
        "preprocessing": _preprocessing(setup),
        "target_scaling": None
        if scale is None
        else {"mean": float(scale[0]), "std": float(scale[1]), "applied_in_model": True},
        "trial_metrics": {
            "status": chosen.status.value,
            "fidelity": chosen.fidelity,
            "metrics": dict(chosen.metrics),
            "test_metrics": dict(chosen.test_metrics),
            "costs": dict(chosen.costs),
        },
        "compression": compression,  # None for a search's trial
        "weights_source": source,  # "stored weights of trial N" or "retrained"
        "weights_note": note,  # the stored file used, or why the trial was retrained
        "export_metrics": run,
        "files": {"weights": WEIGHTS_FILE, "metadata": METADATA_FILE},
    }
    model = ExportedModel(
        net,
        graph=bool(setup.task.model_io()["graph"]),
        metadata=metadata,
        input_mean=setup.input_mean,
        input_std=setup.input_std,
        target_mean=None if scale is None else scale[0],
        target_std=None if scale is None else scale[1],
    ).eval()

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        outcome = export_onnx(model, setup.task.raw_inputs(), staging / ONNX_FILE)
        metadata["onnx"] = outcome.to_dict()
        if outcome.written:
            metadata["files"]["onnx"] = ONNX_FILE
        model.metadata = metadata
        save(model, staging)
        check_out(folder)  # still new or empty after training
        if folder.is_dir():
            folder.rmdir()
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder
