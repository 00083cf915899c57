"""The running trials' epochs, as a live display reads them: from the trainers, through the
inline executor (this process) and the process executor (shared memory per worker)."""

from __future__ import annotations

import threading
import time

import numpy as np
from tests.execution.process_evaluators import EpochsEvaluator
from tests.execution.test_process import _fine

from nasforge import terminal
from nasforge.evaluators.training import TrainingEvaluator
from nasforge.execution.base import InlineExecutor
from nasforge.execution.process import ProcessExecutor
from nasforge.spaces.base import SPACES
from nasforge.tasks.base import resolve_task
from nasforge.train import progress
from nasforge.train.trainer import TrainConfig


def test_the_trainers_report_every_epoch() -> None:
    seen: list[tuple[int, int]] = []
    progress.report_to(lambda done, planned: seen.append((done, planned)))
    try:
        task = resolve_task("tabular:digits", seed=0).task
        space = SPACES.create("mlp")
        evaluator = TrainingEvaluator(task=task, space=space, train=TrainConfig(epochs=4))
        assert evaluator.evaluate(space.sample(np.random.default_rng(0))).ok
    finally:
        progress.report_to(None)
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def _watch(read: object, until: threading.Event) -> list[list[tuple[int, int]]]:
    seen: list[list[tuple[int, int]]] = []
    while not until.is_set():
        seen.append(read())  # type: ignore[operator]
        time.sleep(0.02)
    return seen


def test_the_inline_executor_shows_the_epochs_of_its_trial() -> None:
    executor = InlineExecutor(EpochsEvaluator(epochs=5, seconds=0.1))
    done = threading.Event()
    seen: list[list[tuple[int, int]]] = []
    watcher = threading.Thread(target=lambda: seen.extend(_watch(executor.epochs, done)))
    watcher.start()
    result = executor.submit(_fine(0)).result()
    done.set()
    watcher.join()
    assert result.ok
    shown = {pair for pairs in seen for pair in pairs}
    assert {(2, 5), (3, 5), (4, 5)} <= shown and shown <= {(i, 5) for i in range(1, 6)}
    assert executor.epochs() == []  # nothing runs any more


def test_the_process_executor_shows_each_workers_epochs() -> None:
    with ProcessExecutor(EpochsEvaluator(epochs=6, seconds=0.25), workers=2) as executor:
        futures = [executor.submit(_fine(i)) for i in range(2)]
        seen: list[list[tuple[int, int]]] = []
        while not all(f.done() for f in futures):
            seen.append(executor.epochs())
            time.sleep(0.05)
        assert all(f.result().ok for f in futures)
        assert executor.epochs() == []  # both trials over: their slots are cleared
    shown = {pair for pairs in seen for pair in pairs}
    assert {(3, 6), (5, 6)} <= shown and shown <= {(i, 6) for i in range(1, 7)}
    assert max(map(len, seen)) == 2  # both workers' trials at once


def test_the_bar_text_of_the_running_epochs() -> None:
    assert terminal.epochs_text([]) == ""
    assert terminal.epochs_text([(37, 200)]) == "epoch 37/200"
    assert terminal.epochs_text([(37, 200), (5, 200)]) == "epochs 37/200 5/200"
