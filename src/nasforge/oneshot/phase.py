"""The supernet phase of a one-shot search: data, the epoch loop, stored records, checkpoints.

One phase trains the space's supernet with a method's rule (:mod:`nasforge.oneshot.methods`)
for its epochs, storing after each epoch a record (``kind="epoch"``: training loss, the
derived architecture and its validation accuracy on the shared weights, the architecture
weights as plain numbers, the parameter-free share) and, every ``checkpoint_every`` epochs,
a checkpoint ``supernet.safetensors`` in the experiment's artifact folder holding the
supernet, the architecture parameters, both optimisers, the schedule and every random state.
A phase started again resumes from that checkpoint and, the states being restored, runs the
same epochs it would have run. When it ends it stores its ``result`` (the derived
architectures), and a later run reads that instead of training again.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from nasforge.errors import StoreError
from nasforge.oneshot import PhaseContext, PhaseProgress
from nasforge.oneshot.data import PhaseData
from nasforge.oneshot.methods import make_method
from nasforge.train.fastops import exact_ops
from nasforge.train.trainer import TrainConfig, make_optimizer, make_schedule

if TYPE_CHECKING:
    from nasforge.strategies.oneshot import OneShotStrategy

__all__ = ["CHECKPOINT", "run_phase"]

CHECKPOINT = "supernet.safetensors"
_FORMAT = "nasforge-supernet-checkpoint"
_SCORED_EPOCHS = 50
"""About this many epochs of a phase score the derived architecture on the shared weights
(two forward passes each); the others store the architecture weights only."""


# -- checkpoints: nested state with tensors, as safetensors + a JSON tree ---------------------
def _flatten(tree: Any, tensors: dict[str, Tensor], path: str = "t") -> Any:
    if isinstance(tree, Tensor):
        tensors[path] = tree
        return {"__tensor__": path}
    if isinstance(tree, dict):
        return {
            "__dict__": [
                [_flatten(k, tensors, f"{path}.k{i}"), _flatten(v, tensors, f"{path}.{i}")]
                for i, (k, v) in enumerate(tree.items())
            ]
        }
    if isinstance(tree, list | tuple):
        return [_flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(tree)]
    if isinstance(tree, float) and not math.isfinite(tree):
        return {"__float__": repr(tree)}
    return tree


def _unflatten(tree: Any, tensors: dict[str, Tensor]) -> Any:
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        if "__float__" in tree:
            return float(tree["__float__"])
        return {_unflatten(k, tensors): _unflatten(v, tensors) for k, v in tree["__dict__"]}
    if isinstance(tree, list):
        return [_unflatten(v, tensors) for v in tree]
    return tree


def _save_checkpoint(context: PhaseContext, epoch: int, state: dict[str, Any]) -> None:
    if context.checkpoints is None:
        return
    tensors: dict[str, Tensor] = {}
    tree = _flatten(state, tensors)
    context.checkpoints.save_tensors(
        CHECKPOINT, tensors, {"format": _FORMAT, "epoch": str(epoch), "tree": json.dumps(tree)}
    )


def _load_checkpoint(context: PhaseContext) -> tuple[int, dict[str, Any]] | None:
    if context.checkpoints is None:
        return None
    try:
        found = context.checkpoints.load_tensors(CHECKPOINT)
        if found is None:
            return None
        tensors, meta = found
        if meta.get("format") != _FORMAT:
            raise StoreError(f"{CHECKPOINT} is not a supernet checkpoint")
        return int(meta["epoch"]), _unflatten(json.loads(meta["tree"]), tensors)
    except (StoreError, KeyError, ValueError, TypeError) as exc:
        warnings.warn(
            f"the supernet checkpoint cannot be read ({exc}); the supernet phase starts again",
            stacklevel=2,
        )
        return None


# -- the phase ---------------------------------------------------------------------------------
def run_phase(strategy: OneShotStrategy, context: PhaseContext) -> dict[str, Any]:
    """Run (or resume, or read) ``strategy``'s supernet phase; returns its result record:
    ``derived`` (architectures as dicts), ``free`` (their parameter-free shares),
    ``epochs`` run, ``seconds`` and ``stopped`` (why it ended)."""
    store, eid = context.store, context.experiment_id
    done = store.phase(eid, "result")
    if done:
        return done[-1].data
    evaluator = strategy.evaluator
    task, space = evaluator.task, evaluator.space
    base: TrainConfig = evaluator.train
    epochs = strategy.epochs or base.epochs
    train = replace(base, epochs=epochs)
    seed = strategy._entropy % 2**32
    torch.manual_seed(seed)
    net = space.supernet(task, evaluator.hyper, **strategy.supernet_options())
    generator = torch.Generator().manual_seed(seed)
    data = PhaseData(task, train.batch_size, generator)
    method = make_method(strategy, net, data, train, generator)
    optimizer = make_optimizer(net, train)
    schedule = make_schedule(optimizer, train)
    first, seconds = 1, 0.0
    restored = _load_checkpoint(context)
    if restored is not None:
        epoch, state = restored
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        if schedule is not None:
            schedule.load_state_dict(state["schedule"])
        method.load_state(state["method"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch"])
        first, seconds = epoch + 1, float(state["seconds"])
    stopped = "epochs done"
    epoch = first - 1
    with exact_ops(train.exact):  # the supernet's ops: fast or PyTorch's reference
        for epoch in range(first, epochs + 1):
            if context.deadline is not None and time.monotonic() >= context.deadline:
                stopped, epoch = "time budget", epoch - 1
                break
            began = time.perf_counter()
            net.train()
            losses = [method.train_step(batch, optimizer) for batch in data.train_batches()]
            if schedule is not None:
                schedule.step()
            extra = method.end_epoch(epoch)
            scored = epoch % max(1, epochs // _SCORED_EPOCHS) == 0 or epoch == epochs
            record = method.epoch_record(epoch, scored=scored)
            record.update(extra)
            seconds += time.perf_counter() - began
            loss = sum(losses) / len(losses)
            record.update(epoch=epoch, train_loss=loss, seconds=round(seconds, 3))
            store.put_phase(eid, "epoch", epoch, record)
            if context.report is not None:
                context.report(PhaseProgress("epoch", epoch, epochs, record))
            if epoch % strategy.checkpoint_every == 0 or epoch == epochs:
                state = {
                    "net": net.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict() if schedule is not None else None,
                    "method": method.state(),
                    "generator": generator.get_state(),
                    "torch": torch.get_rng_state(),
                    "seconds": seconds,
                }
                _save_checkpoint(context, epoch, state)
        began = time.perf_counter()
        derived = method.derive(strategy.top_k, context, optimizer)
        seconds += time.perf_counter() - began
    result = {
        "method": strategy.name,
        "derived": [a.to_dict() for a in derived],
        "free": [net.free_fraction(a) for a in derived],
        "epochs": epoch,
        "seconds": round(seconds, 3),
        "stopped": stopped,
        "decisions": {d.name: list(d.options) for d in net.decisions},
    }
    store.put_phase(eid, "result", 0, result)
    return result
