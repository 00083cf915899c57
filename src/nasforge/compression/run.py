"""``nasforge compress``: prune a trained trial of a search and store each result as a trial.

The compressed trials live in a compression experiment (default ``<name>-compressed``) of the
same store: an ordinary experiment whose configuration is that of a training search on the
source's data (so ``trials``, ``report``, the dashboard and ``export`` read it as any other),
plus ``compression: {"of": <name>}``. Every trial holds the source trial's architecture; its
key says the method, source trial and sparsity (:mod:`nasforge.compression.plan`), and its costs
``params``, ``nonzero_params``, ``sparsity``, ``flops`` and ``latency_ms``.

Each step's weights (pruned entries stored as zeros) and masks are written, as safetensors
beside the store, before its trial is stored; a run that is killed loses at most the step in
progress, and running the same command again skips the stored steps (an ``imp`` chain goes on
from its last stored round). One process at a time compresses into one experiment (a lock
file in its artifact folder).

Every check (the method, the sparsities, the source experiment and trial, the data) runs before
anything is written.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import functools
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from nasforge.architecture import Architecture
from nasforge.artifacts import ArtifactStore
from nasforge.compression.channels import search_widths
from nasforge.compression.files import FILE_FORMAT, StoredStep, stored_step
from nasforge.compression.masks import (
    Masks,
    apply_masks,
    magnitude_masks,
    plain_state,
    prunable,
    random_masks,
)
from nasforge.compression.plan import (
    COMPRESSION_KEY,
    METHODS,
    CompressPlan,
    Step,
    compression_of,
    parse_sparsities,
)
from nasforge.config import StoredSearch
from nasforge.errors import ConfigError, NasforgeError
from nasforge.exporting.rebuild import Rebuilt, rebuild
from nasforge.latency.timing import measure_costs
from nasforge.result import Result, Status
from nasforge.spaces.base import space_members
from nasforge.store.base import ExperimentRecord, Store, TrialRecord
from nasforge.store.sql import open_store
from nasforge.train.trainer import Distill, TrainingDiverged, cpu_state, diverged_reason

__all__ = ["CompressedTrial", "CompressionRun", "compress_experiment"]


class CompressionBusy(NasforgeError):
    """Another process is compressing into the same experiment."""


@dataclass(frozen=True, slots=True)
class CompressedTrial:
    """One stored step of a compression run, as the run reports it.

    Attributes:
        number: Its trial number in the compression experiment.
        method: ``dense`` or the run's method.
        sparsity: The share of the prunable weights the step removes (the trial's
            ``sparsity`` cost is the share measured, equal up to rounding).
        status: COMPLETE, or FAILED with ``error``.
        val, test: The validation and test metric (``nan`` when FAILED).
        nonzero_params, params: Non-zero and all parameters.
        latency_ms: Measured inference latency.
        stored_before: Whether an earlier run had stored it (this run skipped it).
        level: Whether the sparsity is one asked for (not an intermediate ``imp`` round).
        error: Why it FAILED, or a note on a COMPLETE one.
        widths: ``channels``: the narrower network's widths.
        flops: FLOPs of one forward pass.
    """

    number: int
    method: str
    sparsity: float
    status: Status
    val: float
    test: float
    nonzero_params: float
    params: float
    latency_ms: float
    stored_before: bool
    level: bool
    error: str | None = None
    widths: dict[str, int] | None = None
    flops: float = float("nan")


@dataclass(frozen=True, slots=True)
class CompressionRun:
    """What :func:`compress_experiment` did.

    Attributes:
        experiment: The compression experiment's name.
        source: The source experiment's name.
        source_trial: The trial compressed.
        method: The method.
        metric: The metric reported (``acc`` or ``rmse``).
        trials: The dense reference, then each step, in order.
    """

    experiment: str
    source: str
    source_trial: int
    method: str
    metric: str
    trials: tuple[CompressedTrial, ...]


# -- checks before anything is written -----------------------------------------------------------
def _check_method(method: str) -> None:
    if method not in METHODS:
        CompressPlan(method, (0.5,), 0)  # raises the unknown-name error, with the valid ones


def _check_int(value: object, what: str, low: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
        raise ConfigError(f"{what} must be an integer >= {low}, got {value!r}")


def _source(store: Store, name: str, trial: int | None) -> tuple[ExperimentRecord, TrialRecord]:
    from nasforge.exporting.exporter import choose_trial

    record = store.get_experiment(name)
    if compression_of(record) is not None:
        raise ConfigError(
            f"experiment {name!r} holds compressed trials of {compression_of(record)!r}; "
            "compress a trial of a search (export a compressed one with nasforge export)"
        )
    trials = space_members(record, store.trials(record.id))
    return record, choose_trial(record, trials, trial, verb="compressed")


def _target_config(record: ExperimentRecord, setup: Rebuilt, rewind: int) -> dict[str, Any]:
    """The compression experiment's stored config: a training search on the source's data."""
    hyper = setup.hyper.to_dict() if hasattr(setup.hyper, "to_dict") else None
    stored = record.search
    if stored.evaluator_kind == "training" and stored.source:
        source = dict(stored.source)
    else:
        source = {
            "task": setup.data.get("trained_on"),
            "task_options": dict(setup.data.get("task_options") or {}),
            "data_root": setup.data.get("data_root"),
            "benchmark": setup.data.get("benchmark"),
        }
    objective = setup.task.objective
    search = StoredSearch(
        space=setup.space.name,
        evaluator={
            "kind": "training",
            "task": setup.task.describe(),
            "hyper": hyper,
            "train": setup.train.describe(),
        },
        strategy="compress",
        strategy_options={},
        seed=setup.train.seed,
        objective=objective,
        objectives=(objective,),
        source={k: v for k, v in source.items() if v is not None},
        extra={COMPRESSION_KEY: {"of": record.name, "rewind_epoch": rewind}},
    )
    return search.to_json()


def _check_target(store: Store, into: str, config: Mapping[str, Any]) -> None:
    """``into`` is absent, or a compression experiment of the same source and settings."""
    try:
        existing = store.get_experiment(into)
    except ConfigError:
        return
    if compression_of(existing) is None:
        raise ConfigError(
            f"experiment {into!r} exists and is not a compression experiment; pass --into "
            "with a new name"
        )
    differ = StoredSearch.from_json(config).differences(existing.config)
    if differ:
        raise ConfigError(
            f"compression experiment {into!r} was made with other settings "
            f"({'; '.join(differ)}); pass --into with a new name"
        )


@contextlib.contextmanager
def _locked(artifacts: ArtifactStore, into: str) -> Iterator[None]:
    path = artifacts.path("compress.lock")
    artifacts.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CompressionBusy(
                f"another process is compressing into experiment {into!r}; wait for it (its "
                "finished steps are kept) and run the command again"
            ) from None
        yield
    finally:
        os.close(fd)


# -- the run ---------------------------------------------------------------------------------
def compress_experiment(
    name: str,
    *,
    method: str,
    sparsity: str | Sequence[float] = (0.5, 0.8, 0.9, 0.95),
    trial: int | None = None,
    db: str | os.PathLike[str] | None = None,
    into: str | None = None,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    task: str | None = None,
    task_options: Mapping[str, Any] | None = None,
    prune_ratio: float = 0.5,
    rewind_epoch: int | None = None,
    progress: Callable[[CompressedTrial], None] | None = None,
) -> CompressionRun:
    """Compress a trial of experiment ``name``; see :func:`nasforge.api.compress`."""
    _check_method(method)
    levels = parse_sparsities(sparsity)
    _check_int(trial, "trial", 0)
    _check_int(rewind_epoch, "rewind_epoch", 0)
    if into is not None and (not isinstance(into, str) or not into.strip()):
        raise ConfigError(f"--into must be a non-empty experiment name, got {into!r}")
    store = open_store(db, create=False)
    try:
        record, chosen = _source(store, name, trial)
        setup = rebuild(
            record,
            data_root=data_root,
            download=download,
            task=task,
            task_options=task_options,
            use="compress",
        )
        epochs = setup.train.epochs
        rewind = max(1, round(0.05 * epochs)) if rewind_epoch is None else rewind_epoch
        if rewind >= epochs:
            raise ConfigError(
                f"rewind_epoch must be below the search's {epochs} training epochs, got {rewind}"
            )
        if method == "channels" and not setup.space.width_options(chosen.arch, setup.hyper):
            raise ConfigError(
                f"space {setup.space.name!r} names no widths to shrink, so --method channels "
                "cannot prune its networks; use magnitude, imp or random"
            )
        plan = CompressPlan(method, levels, chosen.number, prune_ratio, rewind)
        target = into or f"{name}-compressed"
        config = _target_config(record, setup, rewind)
        _check_target(store, target, config)
        comp, _ = store.get_or_create_experiment(target, config)
        artifacts = ArtifactStore.for_experiment(store.target, comp.id)
        with _locked(artifacts, target):
            runner = _Runner(store, comp, setup, chosen.arch, plan, artifacts, progress)
            trials = runner.run()
    finally:
        store.close()
    return CompressionRun(
        experiment=target,
        source=name,
        source_trial=chosen.number,
        method=method,
        metric=setup.task.metric,
        trials=tuple(trials),
    )


class _Runner:
    """Runs a plan's steps in order, skipping those stored by an earlier run."""

    def __init__(
        self,
        store: Store,
        record: ExperimentRecord,
        setup: Rebuilt,
        arch: Architecture,
        plan: CompressPlan,
        artifacts: ArtifactStore,
        progress: Callable[[CompressedTrial], None] | None,
    ) -> None:
        self.store = store
        self.record = record
        self.setup = setup
        self.arch = arch
        self.plan = plan
        self.artifacts = artifacts
        self.progress = progress
        self.metric = setup.task.metric
        self.stored = {t.key: t for t in store.trials(record.id)}
        self.pruned = list(prunable(self._net()))  # the names; the same network every step

    def run(self) -> list[CompressedTrial]:
        out: list[CompressedTrial] = []
        dense_step = self.plan.dense()
        dense, row = self._step(dense_step, self._dense)
        out.append(row)
        if dense is None:
            return out  # nothing to prune: the dense training failed
        previous = dense
        for index, step in enumerate(self.plan.steps()):
            start = previous if step.method == "imp" else dense
            done, row = self._step(
                step, functools.partial(self._sparse, index=index, dense=dense, previous=start)
            )
            out.append(row)
            if done is None and step.method == "imp":
                break  # the chain cannot go on without this round
            if done is not None:
                previous = done
        return out

    # -- one step ----------------------------------------------------------------------------
    def _step(
        self, step: Step, compute: Callable[[Step], tuple[StoredStep | None, Result]]
    ) -> tuple[StoredStep | None, CompressedTrial]:
        stored = self.stored.get(step.key)
        if stored is not None:
            complete = stored.status is Status.COMPLETE
            trained = stored_step(self.artifacts, stored) if complete else None
            row = self._row(step, stored, before=True)
        else:
            started = time.time()
            trained, result = compute(step)
            if trained is not None:
                self._save(step, trained)
            record = self.store.add_trial(
                self.record.id,
                self.arch if trained is None or trained.arch is None else trained.arch,
                step.key,
                result,
                started_at=started,
                finished_at=time.time(),
            )
            row = self._row(step, record, before=False)
        if self.progress is not None:
            self.progress(row)
        return trained, row

    def _row(self, step: Step, trial: TrialRecord, *, before: bool) -> CompressedTrial:
        nan = float("nan")
        return CompressedTrial(
            number=trial.number,
            method=step.method,
            sparsity=step.sparsity,
            status=trial.status,
            val=float(trial.metrics.get(f"val_{self.metric}", nan)),
            test=float(trial.test_metrics.get(f"test_{self.metric}", nan)),
            nonzero_params=float(trial.costs.get("nonzero_params", nan)),
            params=float(trial.costs.get("params", nan)),
            latency_ms=float(trial.costs.get("latency_ms", nan)),
            stored_before=before,
            level=step.level,
            error=trial.error,
            widths={
                k.removeprefix("width:"): int(v)
                for k, v in trial.costs.items()
                if k.startswith("width:")
            }
            or None,
            flops=float(trial.costs.get("flops", nan)),
        )

    def _save(self, step: Step, trained: StoredStep) -> None:
        tensors = {f"weight/{k}": v for k, v in trained.state.items()}
        tensors.update({f"mask/{k}": v for k, v in trained.masks.items()})
        if trained.rewind is not None:
            tensors.update({f"rewind/{k}": v for k, v in trained.rewind.items()})
        meta = {
            "format": FILE_FORMAT,
            "key": step.key,
            "method": step.method,
            "sparsity": f"{step.sparsity:.6f}",
            "source_trial": str(self.plan.source),
        }
        if trained.widths is not None:
            meta["widths"] = json.dumps(trained.widths, sort_keys=True)
            meta["settings"] = json.dumps(trained.settings, sort_keys=True)
        self.artifacts.save_tensors(step.file, tensors, meta)

    # -- the methods -----------------------------------------------------------------------------
    def _dense(self, step: Step) -> tuple[StoredStep | None, Result]:
        """Train the architecture as the search did, keeping the rewind epoch's weights."""
        return self._train(step, masks={}, start=None, epochs=self.setup.train.epochs, keep=True)

    def _sparse(
        self, step: Step, *, index: int, dense: StoredStep, previous: StoredStep
    ) -> tuple[StoredStep | None, Result]:
        assert dense.rewind is not None  # the dense step keeps it
        if step.method == "channels":
            return self._channels(step, index, dense)
        weights = {n: dense.state[n] for n in self.pruned}
        epochs = self.setup.train.epochs - self.plan.rewind_epoch
        if step.method == "magnitude":
            masks = magnitude_masks(weights, step.sparsity)
            return self._train(step, masks=masks, start=dense.state, epochs=epochs)
        if step.method == "random":
            reference = magnitude_masks(weights, step.sparsity)
            masks = random_masks(reference, seed=self.setup.train.seed * 1009 + index + 1)
            return self._train(step, masks=masks, start=dense.rewind, epochs=epochs)
        # imp: prune the previous round's trained weights, rewind the rest
        last = {n: previous.state[n] for n in weights}
        masks = magnitude_masks(last, step.sparsity)
        return self._train(step, masks=masks, start=dense.rewind, epochs=epochs)

    def _channels(
        self, step: Step, index: int, dense: StoredStep
    ) -> tuple[StoredStep | None, Result]:
        """Search widths within the FLOPs budget on the trained network, then train the
        narrower network from scratch, distilled from the trained one."""
        began = time.perf_counter()
        setup = self.setup
        teacher = self._net()
        teacher.load_state_dict(dense.state, strict=True)
        teacher.eval()
        seed = setup.train.seed * 1009 + index + 1
        choice = search_widths(
            setup.space,
            self.arch,
            setup.hyper,
            setup.task,
            teacher,
            1.0 - step.sparsity,
            seed=seed,
        )
        arch, settings = setup.space.with_widths(self.arch, setup.hyper, choice.widths)
        torch.manual_seed(setup.train.seed)
        net = setup.space.build(arch, setup.task, settings)
        try:
            fit = setup.task.fit(net, setup.train, keep_state=True, distill=Distill(teacher))
        except TrainingDiverged as exc:
            return None, Result.failed(str(exc), wall_time=time.perf_counter() - began)
        if fit.state is not None:
            net.load_state_dict(fit.state)
        net.eval()
        dense_weights = sum(w.numel() for w in prunable(teacher).values())
        costs = self._costs(net, {})
        kept = sum(w.numel() for w in prunable(net).values())
        costs["sparsity"] = 1.0 - kept / dense_weights  # the weights removed
        costs["flops_ratio"] = choice.flops / choice.dense_flops
        costs.update({f"width:{n}": float(v) for n, v in choice.widths.items()})
        note = (
            None
            if choice.met
            else (
                f"even the narrowest widths keep {choice.flops / choice.dense_flops:.1%} of the "
                f"FLOPs, above the budget of {1 - step.sparsity:.1%}"
            )
        )
        hyper = settings.to_dict() if hasattr(settings, "to_dict") else None
        trained = StoredStep(
            cpu_state(net.state_dict()), {}, arch=arch, settings=hyper, widths=dict(choice.widths)
        )
        result = Result(
            status=Status.COMPLETE,
            metrics={f"val_{fit.metric}": fit.val},
            test_metrics={f"test_{fit.metric}": fit.test},
            costs=costs,
            curve=tuple(fit.curve),
            fidelity=setup.train.epochs,
            wall_time=time.perf_counter() - began,
            reason=note or diverged_reason(fit.diverged_at),
        )
        return trained, result

    def _net(self) -> nn.Module:
        torch.manual_seed(self.setup.train.seed)
        return self.setup.space.build(self.arch, self.setup.task, self.setup.hyper)

    def _train(
        self,
        step: Step,
        *,
        masks: Masks,
        start: Mapping[str, torch.Tensor] | None,
        epochs: int,
        keep: bool = False,
    ) -> tuple[StoredStep | None, Result]:
        began = time.perf_counter()
        net = self._net()
        if start is not None:
            net.load_state_dict(dict(start), strict=True)
        if masks:
            apply_masks(net, masks)
        config = replace(self.setup.train, epochs=epochs)
        rewind_at = self.plan.rewind_epoch if keep else None
        snapshot: dict[str, torch.Tensor] = {}
        if rewind_at == 0:
            snapshot.update(copy.deepcopy(net.state_dict()))

        def keep_rewind(curve: Sequence[Mapping[str, float]], planned: int) -> str | None:
            if rewind_at and len(curve) == rewind_at:
                snapshot.update(copy.deepcopy(net.state_dict()))
            return None

        try:
            fit = self.setup.task.fit(net, config, keep_state=True, stop=keep_rewind)
        except TrainingDiverged as exc:
            return None, Result.failed(str(exc), wall_time=time.perf_counter() - began)
        if keep and not snapshot:
            reason = (
                f"the dense training stopped at epoch {fit.epochs_run}, before the rewind "
                f"epoch {rewind_at}; pass a smaller rewind_epoch"
            )
            return None, Result.failed(reason, wall_time=time.perf_counter() - began)
        state = fit.state if fit.state is not None else net.state_dict()
        plain = plain_state(state, masks) if masks else dict(state)
        final = self._net()
        final.load_state_dict(plain, strict=True)
        final.eval()
        trained = StoredStep(cpu_state(final.state_dict()), {k: v.cpu() for k, v in masks.items()})
        if keep:
            trained.rewind = cpu_state(snapshot)
        result = Result(
            status=Status.COMPLETE,
            metrics={f"val_{fit.metric}": fit.val},
            test_metrics={f"test_{fit.metric}": fit.test},
            costs=self._costs(final, masks),
            curve=tuple(fit.curve),
            fidelity=epochs,
            wall_time=time.perf_counter() - began,
            reason=diverged_reason(fit.diverged_at),
        )
        return trained, result

    def _costs(self, net: nn.Module, masks: Masks) -> dict[str, float]:
        """The evaluator's costs, with the non-zero parameters and the sparsity."""
        weights = prunable(net)
        total = sum(w.numel() for w in weights.values())
        zeros = sum(int((w == 0).sum()) for w in weights.values()) if masks else 0
        return {
            **measure_costs(net, self.setup.task.example_inputs()),
            "nonzero_params": float(sum(int((p != 0).sum()) for p in net.parameters())),
            "sparsity": zeros / total,
        }
