"""Per-trial overhead of the search loop with durable storage, and a kill -9 durability check.

Part 1 times random search on ``nas-bench-graph:cora`` (a table look-up, so the loop itself is
what is measured): nasforge with its default SQLite file store against Optuna's
``RandomSampler`` with its SQLite ``RDBStorage``. Part 2 runs a nasforge search in a child
process, kills it with SIGKILL at random moments, and checks that every trial the child
reported as done is in the store, that the store is sound and that the search resumes.

Example (smoke run)::

    PYTHONPATH=src python benchmarks/overhead.py --trials 300 --optuna-trials 100 --rounds 2 \
        --out /tmp/overhead_smoke.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

import _report
from _report import header, markdown_table, publish
from nasforge import api
from nasforge.benchmarks.nas_bench_graph import load_table
from nasforge.budget import Budget
from nasforge.errors import InvalidArchitectureError
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.experiment import Experiment, Progress
from nasforge.spaces.base import SPACES
from nasforge.store.sql import SqlStore

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "overhead.md"
BENCHMARK = "nas-bench-graph:cora"
DATASET = "cora"
CHILD_BUDGET = "20000trials"
GOAL_RATIO = 20.0


@dataclass(frozen=True, slots=True)
class Timing:
    """Wall time of one search loop."""

    system: str
    storage: str
    trials: int
    loop_s: float
    total_s: float
    detail: str

    @property
    def ms_per_trial(self) -> float:
        """Loop wall time per trial, in milliseconds."""
        return self.loop_s / self.trials * 1e3


@dataclass(frozen=True, slots=True)
class Round:
    """One child run killed with SIGKILL, and what the store held afterwards."""

    index: int
    delay_s: float
    killed: bool
    returncode: int | None
    reported: int
    stored: int
    lost: int
    unreported_stored: int
    numbers_ok: bool
    integrity: str
    duplicate_keys: int


# -- machine and command ---------------------------------------------------------------------


def machine_lines(tmpdir: str) -> list[str]:
    """The common machine lines plus the SQLite library and where the files live."""
    return [
        *_report.machine_lines(f"; SQLite library {sqlite3.sqlite_version}"),
        f"- database files in a new temp dir under {tmpdir}",
    ]


# -- part 1: per-trial overhead --------------------------------------------------------------
def time_nasforge_default(n_trials: int, workdir: Path) -> Timing:
    """``nasforge.search`` with the default SQLite file store (WAL, synchronous=NORMAL)."""
    db = workdir / "nasforge-default.db"
    t0 = time.perf_counter()
    result = api.search(
        benchmark=BENCHMARK,
        strategy="random",
        budget=f"{n_trials}trials",
        seed=0,
        name="overhead",
        db=db,
    )
    total = time.perf_counter() - t0
    summary = result.summary
    return Timing(
        system="nasforge random (`nasforge.search`)",
        storage="SQLite file, default store (WAL, synchronous=NORMAL)",
        trials=summary.new_trials,
        loop_s=summary.elapsed,
        total_s=total,
        detail=f"stop: {summary.stop_reason}; duplicates proposed: {summary.duplicates}",
    )


def time_nasforge_full_sync(n_trials: int, workdir: Path) -> Timing:
    """The same loop on ``SqlStore(durable=True)`` (WAL, synchronous=FULL), for reference."""
    t0 = time.perf_counter()
    store = SqlStore(workdir / "nasforge-durable.db", durable=True)
    try:
        evaluator = NasBenchGraphEvaluator(dataset=DATASET)
        space = SPACES.create(evaluator.space_name)
        objective = evaluator.objectives[0]
        experiment = Experiment(
            name="overhead-durable",
            space=space,
            evaluator=evaluator,
            strategy=api.make_strategy("random", space, objective=objective, seed=0),
            store=store,
        )
        summary = experiment.run(Budget.parse(f"{n_trials}trials"))
    finally:
        store.close()
    return Timing(
        system="nasforge random (`Experiment`, `SqlStore(durable=True)`)",
        storage="SQLite file (WAL, synchronous=FULL)",
        trials=summary.new_trials,
        loop_s=summary.elapsed,
        total_s=time.perf_counter() - t0,
        detail=f"stop: {summary.stop_reason}",
    )


def optuna_objective(
    evaluator: NasBenchGraphEvaluator,
) -> Callable[[optuna.trial.Trial], float]:
    """Objective: params -> architecture -> table look-up; all-skip raises TrialPruned."""
    space = evaluator.space
    choices = {name: list(opts) for name, opts in space.choices().items()}

    def objective(trial: optuna.trial.Trial) -> float:
        params = {name: trial.suggest_categorical(name, opts) for name, opts in choices.items()}
        try:
            arch = space.from_choices(params)
        except InvalidArchitectureError:
            raise optuna.TrialPruned() from None
        return float(evaluator.evaluate(arch).metrics["val_acc"])

    return objective


def time_optuna(n_trials: int, workdir: Path) -> Timing:
    """Optuna RandomSampler on ``RDBStorage("sqlite:///...")``, ``study.optimize``."""
    t0 = time.perf_counter()
    storage = optuna.storages.RDBStorage(f"sqlite:///{workdir / 'optuna.db'}")
    study = optuna.create_study(
        study_name="overhead",
        storage=storage,
        sampler=optuna.samplers.RandomSampler(seed=0),
        direction="maximize",
    )
    objective = optuna_objective(NasBenchGraphEvaluator(dataset=DATASET))
    t1 = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    loop = time.perf_counter() - t1
    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = {s.name: states.count(s) for s in TrialState if states.count(s)}
    return Timing(
        system="Optuna RandomSampler (`study.optimize`)",
        storage="SQLite file via RDBStorage (Optuna's defaults)",
        trials=len(states),
        loop_s=loop,
        total_s=time.perf_counter() - t0,
        detail="trial states: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
    )


# -- part 2: durability under SIGKILL --------------------------------------------------------
def child_main(db: str, side: str, name: str) -> None:
    """Child mode: search, appending each committed trial number to ``side`` (fsync'd)."""
    with open(side, "a", encoding="utf-8") as fh:

        def report(progress: Progress) -> None:
            fh.write(f"{progress.last.number}\n")
            fh.flush()
            os.fsync(fh.fileno())

        api.search(
            benchmark=BENCHMARK,
            strategy="random",
            budget=CHILD_BUDGET,
            seed=0,
            name=name,
            db=db,
            callback=report,
        )


def reported_numbers(side: Path) -> list[int]:
    """Trial numbers on complete lines of the side file."""
    if not side.exists():
        return []
    lines = side.read_text(encoding="utf-8").split("\n")[:-1]  # drop an unfinished last line
    return [int(line) for line in lines]


def inspect_store(db: Path, name: str) -> tuple[list[int], list[str], str]:
    """Stored trial numbers and keys of ``name``, and ``PRAGMA integrity_check``."""
    store = SqlStore(db, create=False)
    try:
        record = store.get_experiment(name)
        stored = store.trials(record.id)
        return [t.number for t in stored], [t.key for t in stored], store.integrity_check()
    finally:
        store.close()


def wait_for_growth(side: Path, before: int, proc: subprocess.Popen[bytes], limit: float) -> None:
    """Wait until the child reports a new trial, exits, or ``limit`` seconds pass."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if len(reported_numbers(side)) > before:
            return
        time.sleep(0.02)


def kill_round(index: int, paths: tuple[Path, Path, Path], rng: random.Random) -> Round:
    """Start a child search, SIGKILL it 0.5-2 s after its first new trial, inspect the store."""
    db, side, log = paths
    before = len(reported_numbers(side))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(db), str(side), "durable"]
    with log.open("ab") as log_fh:
        proc = subprocess.Popen(cmd, stdout=log_fh, stderr=log_fh)
        wait_for_growth(side, before, proc, limit=60.0)
        delay = rng.uniform(0.5, 2.0)
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        returncode = proc.wait()
    reported = reported_numbers(side)
    numbers, keys, integrity = inspect_store(db, "durable")
    present = set(numbers)
    return Round(
        index=index,
        delay_s=delay,
        killed=killed,
        returncode=returncode,
        reported=len(reported),
        stored=len(numbers),
        lost=len(set(reported) - present),
        unreported_stored=len(present - set(reported)),
        numbers_ok=numbers == list(range(len(numbers))),
        integrity=integrity,
        duplicate_keys=len(keys) - len(set(keys)),
    )


def resume_check(db: Path, extra: int) -> dict[str, object]:
    """Resume the killed search in-process for ``extra`` more trials and check the numbering."""
    before, _, _ = inspect_store(db, "durable")
    result = api.search(
        benchmark=BENCHMARK,
        strategy="random",
        budget=f"{len(before) + extra}trials",
        seed=0,
        name="durable",
        db=db,
    )
    numbers, keys, integrity = inspect_store(db, "durable")
    expected_new = list(range(len(before), len(before) + extra))
    return {
        "stored before": len(before),
        "resumed_trials": result.summary.resumed_trials,
        "new trials": result.summary.new_trials,
        "new numbers continue the sequence": result.summary.new_trial_numbers == expected_new,
        "stored after": len(numbers),
        "numbers 0..n-1 without gaps": numbers == list(range(len(numbers))),
        "duplicate canonical keys": len(keys) - len(set(keys)),
        "integrity_check": integrity,
        "stop reason": result.summary.stop_reason,
        "wall s of the resumed run (replay + new trials)": f"{result.summary.elapsed:.2f}",
        "ms per new trial of the resumed run": (
            f"{result.summary.elapsed / max(result.summary.new_trials, 1) * 1e3:.2f}"
        ),
    }


# -- reporting -------------------------------------------------------------------------------


def overhead_section(timings: Sequence[Timing], args: argparse.Namespace) -> list[str]:
    """Markdown for part 1: the timing table, the ratio and the goal."""
    rows = [
        [
            t.system,
            t.storage,
            t.trials,
            f"{t.loop_s:.2f}",
            f"{t.total_s:.2f}",
            f"{t.ms_per_trial:.3f}",
        ]
        for t in timings
    ]
    lines = markdown_table(
        ["system", "storage", "trials", "loop s", "total s", "ms/trial (loop)"], rows
    )
    lines += ["", *[f"- {t.system}: {t.detail}" for t in timings], ""]
    nf, op = timings[0], timings[-1]
    ratio = op.ms_per_trial / nf.ms_per_trial
    met = nf.ms_per_trial <= op.ms_per_trial / GOAL_RATIO
    lines += [
        f"**Ratio Optuna / nasforge (default store), ms per trial: {ratio:.1f}x** "
        f"({op.ms_per_trial:.3f} / {nf.ms_per_trial:.3f}).",
        "",
        f'Goal "nasforge <= 1/{GOAL_RATIO:g} of Optuna\'s per-trial time": '
        f"**{'met' if met else 'NOT met'}**.",
    ]
    if op.trials != args.trials:
        lines += [
            "",
            f"Optuna ran {op.trials} trials (nasforge {nf.trials}); its ms/trial is measured over "
            "the trials it ran, nothing is extrapolated.",
        ]
    return lines


def durability_section(rounds: Sequence[Round], resume: dict[str, object]) -> list[str]:
    """Markdown for part 2: per-round table, totals and the resume check."""
    previous = [0, *(r.reported for r in rounds)]
    rows = [
        [
            r.index,
            f"{r.delay_s:.2f}",
            "yes" if r.killed else "no (exited)",
            r.returncode,
            r.reported - previous[r.index - 1],
            r.reported,
            r.stored,
            r.lost,
            r.unreported_stored,
            "yes" if r.numbers_ok else "NO",
            r.integrity,
            r.duplicate_keys,
        ]
        for r in rounds
    ]
    header = [
        "round",
        "kill delay s",
        "killed",
        "exit code",
        "new reported",
        "reported done (cum.)",
        "stored (cum.)",
        "lost (cum.)",
        "stored, not reported (cum.)",
        "numbers 0..n-1",
        "integrity_check",
        "dup keys",
    ]
    last = rounds[-1]
    any_loss = any(r.lost for r in rounds)
    ok = not any_loss and all(r.numbers_ok and r.integrity == "ok" for r in rounds)
    return [
        *markdown_table(header, rows),
        "",
        f"- rounds: {len(rounds)}; kills (SIGKILL delivered): {sum(r.killed for r in rounds)}",
        f"- trials reported done by the child (cumulative): {last.reported}",
        f"- trials lost (reported done but not in the store) at the last check: **{last.lost}**; "
        f"a check with a loss: {'YES' if any_loss else 'none'}",
        f"- store sound after every kill: **{'yes' if ok else 'NO'}**",
        "",
        "Resume (same name, in-process, after the last kill):",
        "",
        *[f"- {k}: {v}" for k, v in resume.items()],
    ]


def report(
    args: argparse.Namespace,
    started: str,
    tmpdir: str,
    timings: Sequence[Timing],
    durability: tuple[Sequence[Round], dict[str, object]] | None,
    wall: float,
) -> str:
    """The whole Markdown report."""
    lines = [
        *header(
            "Per-trial overhead of the search loop with durable storage",
            started,
            wall,
            machine_lines(tmpdir),
        ),
        "",
        "## Protocol",
        "",
        f"Random search on `{BENCHMARK}` (NAS-Bench-Graph table look-up, so the search loop is "
        "what is timed), seed 0, one process, each system on a new SQLite file in a temp dir; "
        "the table is loaded before any timing. ms/trial = loop wall time / trials.",
        f"nasforge: `nasforge.search(strategy='random', budget='{args.trials}trials')` on the "
        "default store; its loop is ask/tell + dedup + two durable commits per trial (the "
        "trial reserved RUNNING, then finished) + evaluation (`RunSummary.elapsed`; `total s` "
        "adds opening the store and creating the schema).",
        f"Optuna: `RandomSampler(seed=0)`, `RDBStorage('sqlite:///...')`, "
        f"`study.optimize(n_trials={args.optuna_trials})`; the objective maps params via "
        "`space.from_choices` and looks them up with the same evaluator, returning `val_acc`; the "
        "all-skip combination raises `optuna.TrialPruned` (the trial is stored as PRUNED). Optuna "
        "does not deduplicate, so repeated architectures are looked up again. Optuna leaves "
        "SQLite at its defaults (rollback journal, synchronous=FULL); nasforge's default is WAL "
        "with synchronous=NORMAL (survives a process crash, not power loss), so a nasforge row "
        "with synchronous=FULL is shown for reference.",
        "Durability: a child process runs `nasforge.search` on the default store; its progress "
        "callback (called after each trial is committed) appends the trial number to a side file "
        "and fsyncs it. The parent SIGKILLs the child at a random moment 0.5-2 s after its first "
        "new trial, then checks the store, several rounds on the same experiment name, then "
        "resumes it in-process.",
        "",
        "## Per-trial overhead",
        "",
        *overhead_section(timings, args),
        "",
    ]
    if durability is not None:
        lines += ["## Durability under SIGKILL", "", *durability_section(*durability)]
    return "\n".join(lines).rstrip() + "\n"


# -- CLI -------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--child`` is the internal child mode of the durability check)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5000, help="nasforge trials (default 5000)")
    parser.add_argument("--optuna-trials", type=int, default=5000, help="Optuna trials")
    parser.add_argument("--no-full-sync", action="store_true", help="skip the synchronous=FULL row")
    parser.add_argument("--rounds", type=int, default=5, help="SIGKILL rounds (0 skips part 2)")
    parser.add_argument("--resume-trials", type=int, default=200, help="trials after the kills")
    parser.add_argument("--kill-seed", type=int, default=0, help="seed of the kill delays")
    parser.add_argument("--tmpdir", default=None, help="where temp databases go")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown output file")
    parser.add_argument("--child", nargs=3, metavar=("DB", "SIDE", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.trials, args.optuna_trials, args.resume_trials) < 1 or args.rounds < 0:
        parser.error("trial counts must be >= 1 and --rounds >= 0")
    return args


def run_durability(
    args: argparse.Namespace, workdir: Path
) -> tuple[list[Round], dict[str, object]]:
    """Part 2: the kill rounds, then the resume check."""
    rng = random.Random(args.kill_seed)
    paths = (workdir / "durable.db", workdir / "reported.txt", workdir / "child.log")
    rounds = []
    for i in range(1, args.rounds + 1):
        rounds.append(kill_round(i, paths, rng))
        print(f"[durability] round {i}: {rounds[-1]}", file=sys.stderr)
    return rounds, resume_check(paths[0], args.resume_trials)


def main(argv: Sequence[str] | None = None) -> None:
    """Run both parts, print the report and write it to ``--out``."""
    args = parse_args(argv)
    if args.child:
        child_main(*args.child)
        return
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    t0 = time.perf_counter()
    load_table(DATASET)  # read the table once, outside every timing
    with tempfile.TemporaryDirectory(prefix="nasforge-overhead-", dir=args.tmpdir) as tmp:
        workdir = Path(tmp)
        timings = [time_nasforge_default(args.trials, workdir)]
        if not args.no_full_sync:
            timings.append(time_nasforge_full_sync(args.trials, workdir))
        timings.append(time_optuna(args.optuna_trials, workdir))
        for t in timings:
            print(f"[overhead] {t.system}: {t.ms_per_trial:.3f} ms/trial", file=sys.stderr)
        durability = run_durability(args, workdir) if args.rounds else None
    text = report(
        args,
        started,
        tempfile.gettempdir() if args.tmpdir is None else args.tmpdir,
        timings,
        durability,
        time.perf_counter() - t0,
    )
    publish(text, args.out)


if __name__ == "__main__":
    main()
