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
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import optuna

import _report
import _scale
from _report import header, markdown_table, publish
from nasforge import api
from nasforge.benchmarks.nas_bench_graph import load_table
from nasforge.budget import Budget
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.experiment import Experiment, Progress
from nasforge.spaces.base import SPACES
from nasforge.store.sql import SqlStore
from nasforge.strategies.bananas import DEFAULT_FIT_WINDOW

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "overhead.md"
BENCHMARK = "nas-bench-graph:cora"
DATASET = "cora"
CHILD_BUDGET = "20000trials"
GOAL_RATIO = 20.0
GOAL_STRATEGIES = ("random", "evolution", "local")
"""The strategies whose per-trial time must stay flat (bananas' fit grows to its window)."""
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True, slots=True)
class Timing:
    """Wall time of one search loop."""

    system: str
    storage: str
    trials: int
    loop_s: float
    total_s: float
    detail: str
    repeats: tuple[float, ...] = ()  # ms/trial of each run, when the system ran several times

    @property
    def ms_per_trial(self) -> float:
        """Loop wall time per trial, in milliseconds (the median run's, when repeated)."""
        if self.repeats:
            return statistics.median(self.repeats)
        return self.loop_s / self.trials * 1e3

    @property
    def spread(self) -> str:
        """min-max ms/trial of the runs, or ``-`` for a single run."""
        if len(self.repeats) < 2:
            return "-"
        return f"{min(self.repeats):.3f}-{max(self.repeats):.3f}"


def repeated(runs: Sequence[Timing]) -> Timing:
    """One row for several runs of a system: the median run, with every run's ms/trial."""
    ordered = sorted(runs, key=lambda t: t.ms_per_trial)
    middle = ordered[len(ordered) // 2]
    return replace(middle, repeats=tuple(t.ms_per_trial for t in runs))


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
def time_nasforge_default(n_trials: int, workdir: Path, index: int = 0) -> Timing:
    """``nasforge.search`` with the default SQLite file store (WAL, synchronous=NORMAL)."""
    db = workdir / f"nasforge-default-{index}.db"
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


def time_optuna(n_trials: int, workdir: Path, *, in_memory: bool, index: int = 0) -> Timing:
    """Optuna's RandomSampler, in memory or on ``RDBStorage("sqlite:///...")`` (Optuna's
    SQLite defaults), ``study.optimize``; its completion times are kept for the windows."""
    evaluator = NasBenchGraphEvaluator(dataset=DATASET)
    space = SPACES.create(evaluator.space_name)
    storage = None if in_memory else f"sqlite:///{workdir / f'optuna-{index}.db'}"
    t0 = time.perf_counter()
    run = _scale.optuna_run(space, evaluator, n_trials, storage)
    OPTUNA_RUNS[in_memory] = run
    return Timing(
        system=f"Optuna RandomSampler (`study.optimize`, {'in memory' if in_memory else 'RDB'})",
        storage=(
            "in memory (InMemoryStorage: nothing durable)"
            if in_memory
            else "SQLite file via RDBStorage (Optuna's defaults)"
        ),
        trials=len(run.stamps),
        loop_s=run.stamps[-1],
        total_s=time.perf_counter() - t0,
        detail=f"trials run: {run.detail}",
    )


OPTUNA_RUNS: dict[bool, _scale.Run] = {}
"""The last Optuna run of each kind (in memory: True), for the windows of part 2."""


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
    numbers, keys, integrity = _scale.inspect_store(db, "durable")
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
    before, _, _ = _scale.inspect_store(db, "durable")
    result = api.search(
        benchmark=BENCHMARK,
        strategy="random",
        budget=f"{len(before) + extra}trials",
        seed=0,
        name="durable",
        db=db,
    )
    numbers, keys, integrity = _scale.inspect_store(db, "durable")
    expected_new = list(range(len(before), len(before) + extra))
    return {
        "stored before": len(before),
        "resumed_trials": result.summary.resumed_trials,
        "new trials": result.summary.new_trials,
        # a trial the last kill left RUNNING is retried first: it keeps its (lower) number
        "retried trials left RUNNING by the last kill": result.summary.retried,
        "new numbers continue the sequence": [
            n for n in result.summary.new_trial_numbers if n >= len(before)
        ]
        == expected_new,
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
    """Markdown for part 1: the timing table, the ratios and the goals."""
    rows = [
        [
            t.system,
            t.storage,
            t.trials,
            max(len(t.repeats), 1),
            f"{t.loop_s:.2f}",
            f"{t.total_s:.2f}",
            f"{t.ms_per_trial:.3f}",
            t.spread,
        ]
        for t in timings
    ]
    lines = markdown_table(
        [
            "system",
            "storage",
            "trials",
            "runs",
            "loop s (median run)",
            "total s",
            "ms/trial (loop; median run)",
            "range over runs",
        ],
        rows,
    )
    lines += ["", *[f"- {t.system}: {t.detail}" for t in timings], ""]
    nf = timings[0]
    rdb = next(t for t in timings if t.system.endswith("RDB)"))
    memory = next(t for t in timings if t.system.endswith("in memory)"))
    ratio = rdb.ms_per_trial / nf.ms_per_trial
    met = nf.ms_per_trial <= rdb.ms_per_trial / GOAL_RATIO
    slowest_nf = max(nf.repeats or (nf.ms_per_trial,))
    fastest_memory = min(memory.repeats or (memory.ms_per_trial,))
    lines += [
        f"**Ratio Optuna (SQLite) / nasforge (default store), ms per trial: {ratio:.1f}x** "
        f"({rdb.ms_per_trial:.3f} / {nf.ms_per_trial:.3f}).",
        "",
        f'Goal "nasforge <= 1/{GOAL_RATIO:g} of Optuna\'s per-trial time (both on SQLite)": '
        f"**{'met' if met else 'NOT met'}**.",
        "",
        f"**nasforge durable (default store) / Optuna in memory: "
        f"{nf.ms_per_trial / memory.ms_per_trial:.2f}x** ({nf.ms_per_trial:.3f} / "
        f"{memory.ms_per_trial:.3f} ms, medians of {len(nf.repeats) or 1} and "
        f"{len(memory.repeats) or 1} runs; slowest nasforge run {slowest_nf:.3f}, fastest "
        f"Optuna run {fastest_memory:.3f}).",
        "",
        'Goal "durable nasforge random <= Optuna in memory": '
        f"**{'met' if nf.ms_per_trial <= memory.ms_per_trial else 'NOT met'}** (medians)"
        f"{'; met by every run' if slowest_nf <= fastest_memory else ''}.",
    ]
    full = next((t for t in timings if "durable=True" in t.system), None)
    if full is not None:
        lines += [
            "",
            f"With `SqlStore(durable=True)` (synchronous=FULL, an fsync per commit): "
            f"{full.ms_per_trial:.3f} ms/trial, {full.ms_per_trial / memory.ms_per_trial:.2f}x "
            "Optuna in memory.",
        ]
    return lines


def windows_section(
    title: str, protocol: str, runs: Sequence[_scale.Run], goal_systems: Sequence[str]
) -> list[str]:
    """Markdown for one windows table, with the growth goal for ``goal_systems``."""
    lines = [f"### {title}", "", protocol, "", *_scale.windows_table(runs), ""]
    lines += [f"- {r.system}: {r.detail}" for r in runs]
    per_proposal = []
    for run in runs:
        done = [w for w in _scale.WINDOWS if run.window(*w) is not None]
        if run.asks and len(done) > 1:
            first, last = (run.window(*done[i])[1] / run.proposals(*done[i]) for i in (0, -1))  # type: ignore[index, operator]
            per_proposal.append(f"{run.system} {first:.3f} -> {last:.3f} ms ({last / first:.2f}x)")
    if per_proposal:
        lines += [
            "",
            "Per proposal (a window's mean ms per trial / its proposals per trial), first and "
            "last window: " + "; ".join(per_proposal) + ".",
        ]
    verdicts = []
    for run in runs:
        growth = run.growth()
        if run.system in goal_systems and growth is not None:
            ok = growth[1] <= _scale.GOAL_GROWTH
            verdicts.append(
                f"{run.system} {growth[1]:.2f}x ({growth[0]}): {'met' if ok else 'NOT met'}"
            )
    if verdicts:
        lines += [
            "",
            f'Goal "the last window within {_scale.GOAL_GROWTH}x of the first (medians)": '
            + "; ".join(verdicts)
            + ".",
        ]
    return lines


def pg_section(results: Sequence[_scale.PgResult] | str) -> list[str]:
    """Markdown for the PostgreSQL part: rates of 1 and N processes on one experiment."""
    if isinstance(results, str):
        return [results]
    rows = [
        [
            r.processes,
            r.budget,
            " + ".join(map(str, r.per_process)),
            r.stored,
            f"{r.wall_s:.2f}",
            f"{r.rate:.0f}",
            f"{r.client_cpu_s / r.wall_s:.2f}",
            f"{r.machine_busy:.2f}",
            "yes" if r.numbers_ok else "NO",
            r.duplicate_keys,
        ]
        for r in results
    ]
    one = results[0]
    lines = markdown_table(
        [
            "processes",
            "budget (trials)",
            "trials per process",
            "stored",
            "wall s",
            "trials/s (all)",
            "CPUs busy: search processes",
            "CPUs busy: whole machine",
            "numbers 0..n-1",
            "dup keys",
        ],
        rows,
    )
    exact = all(r.stored == r.budget == sum(r.per_process) for r in results)
    lines += [
        "",
        "- exact counts (stored = budget = the processes' trials summed, for every run): "
        f"**{'yes' if exact else 'NO'}**",
    ]
    lines.append(
        f"- the machine has {os.cpu_count()} CPUs for the search processes and the server "
        f"together; one process with its server backend keeps {one.machine_busy:.2f} of them "
        "busy (`/proc/stat`), so more processes can add at most what is left"
    )
    for r in results[1:]:
        lines.append(
            f"- **{r.processes} processes / 1 process, trials per second: "
            f"{r.rate / one.rate:.2f}x** (goal {r.processes}x: "
            f"{'met' if r.rate >= r.processes * one.rate else 'NOT met'})"
        )
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


@dataclass
class Scale:
    """Part 2's runs: windows on NAS-Bench-Graph, at 100,000 trials, and PostgreSQL."""

    nbg: list[_scale.Run]
    large: list[_scale.Run]
    pg: list[_scale.PgResult] | str


def report(
    args: argparse.Namespace,
    started: str,
    tmpdir: str,
    timings: Sequence[Timing],
    scale: Scale | None,
    durability: tuple[Sequence[Round], dict[str, object]] | None,
    wall: float,
) -> str:
    """The whole Markdown report."""
    lines = [
        *header(
            "Per-trial overhead of the search loop with durable storage, at scale",
            started,
            wall,
            machine_lines(tmpdir),
        ),
        "",
        "## Protocol",
        "",
        f"Random search on `{BENCHMARK}` (NAS-Bench-Graph table look-up, so the search loop is "
        "what is timed), seed 0, one process, each system on a new SQLite file in a temp dir; "
        "the table is loaded before any timing. ms/trial = loop wall time / trials; nasforge "
        f"and Optuna in memory run {args.repeats} times each, alternating, and the median run "
        "is shown with the range.",
        f"nasforge: `nasforge.search(strategy='random', budget='{args.trials}trials')` on the "
        "default store; its loop is ask/tell + dedup + two durable commits per trial (the "
        "trial reserved RUNNING, then finished) + evaluation (`RunSummary.elapsed`; `total s` "
        "adds opening the store and creating the schema).",
        f"Optuna: `RandomSampler(seed=0)`, `study.optimize(n_trials={args.optuna_trials})`, "
        "in memory and on `RDBStorage('sqlite:///...')`; the objective maps params via "
        "`space.from_choices` and looks them up with the same evaluator, returning `val_acc`; the "
        "all-skip combination raises `optuna.TrialPruned` (the trial is stored as PRUNED). Optuna "
        "does not deduplicate, so repeated architectures are looked up again. Optuna leaves "
        "SQLite at its defaults (rollback journal, synchronous=FULL); nasforge's default is WAL "
        "with synchronous=NORMAL (survives a process crash, not power loss), so a nasforge row "
        "with synchronous=FULL is shown for reference.",
        "Windows: each search records the time each trial completes (nasforge's progress "
        "callback, after the trial is committed; Optuna's trial callback); a window's figure is "
        "the median (mean) of its 100 per-trial gaps, in ms.",
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
    if scale is not None:
        lines += [
            "## Per-trial time as the search grows",
            "",
            *windows_section(
                f"On `{BENCHMARK}` (26,206 architectures)",
                f"Each strategy with its default options, seed 0, on a new SQLite file; "
                f"{args.window_trials} trials (`bananas`: {args.bananas_trials}, its default "
                f"`fit_window={DEFAULT_FIT_WINDOW}` bounding each fit); Optuna's rows are part 1's "
                "runs. Random search without replacement samples more often as the table fills "
                f"({args.window_trials / 26206:.0%} of it at the end), which is in its figures. "
                "A proposal of an architecture already stored is answered from the store (the "
                "strategy is told its result; nothing is stored or counted): the last column "
                "counts proposals per stored trial, which grows for evolution as its population "
                "converges. BANANAS' fit grows with its results up to `fit_window` and then "
                "stays: compare 901-1,000 with 1,901-2,000.",
                scale.nbg,
                GOAL_STRATEGIES,
            ),
            "",
            *windows_section(
                "To 100,000 trials, on a larger space",
                "The `mlp` space with 1-5 hidden layers of widths 8-512 (1,470,075 "
                "architectures), scored by a look-up of a function table (`_scale.FunctionTable`: "
                "a fixed random function of the encoding, computed in a few microseconds, since no "
                f"published table has 100,000 architectures); {args.scale_trials} trials, seed "
                "0, each nasforge strategy on a new SQLite file, Optuna's RandomSampler in memory.",
                scale.large,
                GOAL_STRATEGIES,
            ),
            "",
            "## PostgreSQL: processes sharing one experiment",
            "",
            f"Random search (`seed=None`: each process draws its own proposals) on `{BENCHMARK}` "
            f"against a new database on the server at `{args.pg_url}`: one process with a "
            f"budget of {args.pg_trials} trials, then {args.pg_processes} processes started "
            f"together on one experiment with {args.pg_processes} x {args.pg_trials}; wall time "
            "from the first start to the last end.",
            "",
            *pg_section(scale.pg),
            "",
        ]
    if durability is not None:
        lines += ["## Durability under SIGKILL", "", *durability_section(*durability)]
    return "\n".join(lines).rstrip() + "\n"


# -- CLI -------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--child`` and ``--pg-child`` are internal child modes)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5000, help="nasforge trials (default 5000)")
    parser.add_argument("--optuna-trials", type=int, default=5000, help="Optuna trials")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the fast systems")
    parser.add_argument("--no-full-sync", action="store_true", help="skip the synchronous=FULL row")
    parser.add_argument("--window-trials", type=int, default=10_000, help="trials per strategy")
    parser.add_argument("--bananas-trials", type=int, default=2000, help="bananas' trials")
    parser.add_argument("--scale-trials", type=int, default=100_000, help="the large-space runs")
    parser.add_argument("--no-scale", action="store_true", help="skip part 2 (windows, PostgreSQL)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("NASFORGE_TEST_PG_URL", DEFAULT_PG_URL),
        help="a PostgreSQL server's URL where a database may be created (and dropped)",
    )
    parser.add_argument("--pg-trials", type=int, default=2000, help="trials per process")
    parser.add_argument("--pg-processes", type=int, default=4, help="processes sharing one run")
    parser.add_argument("--rounds", type=int, default=5, help="SIGKILL rounds (0 skips part 3)")
    parser.add_argument("--resume-trials", type=int, default=200, help="trials after the kills")
    parser.add_argument("--kill-seed", type=int, default=0, help="seed of the kill delays")
    parser.add_argument("--tmpdir", default=None, help="where temp databases go")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown output file")
    parser.add_argument("--child", nargs=3, metavar=("DB", "SIDE", "NAME"), help=argparse.SUPPRESS)
    parser.add_argument("--pg-child", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--job", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    counts = (args.trials, args.optuna_trials, args.resume_trials, args.repeats, args.pg_trials)
    if min(counts) < 1 or args.rounds < 0 or min(args.window_trials, args.scale_trials) < 100:
        parser.error("trial counts and --repeats must be >= 1 (windows >= 100), --rounds >= 0")
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


def in_child(job: dict[str, Any], workdir: Path) -> Any:
    """Run ``job`` (see :func:`run_job`) in a new Python process, so that no run inherits
    another's warm caches (the same seed proposes the same architectures); its JSON answer."""
    out = workdir / f"job-{len(list(workdir.glob('job-*.json')))}.json"
    script = str(Path(__file__).resolve())
    subprocess.run([sys.executable, script, "--job", json.dumps(job), str(out)], check=True)
    return json.loads(out.read_text(encoding="utf-8"))


def run_job(job: dict[str, Any], out: str) -> None:
    """Child mode: one timed run, written to ``out`` as JSON."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    load_table(DATASET)  # read the table once, outside every timing
    workdir, kind = Path(job["workdir"]), job["kind"]
    data: Any
    if kind == "nasforge":
        data = asdict(time_nasforge_default(job["trials"], workdir, job["index"]))
    elif kind == "full-sync":
        data = asdict(time_nasforge_full_sync(job["trials"], workdir))
    elif kind == "optuna":
        memory = job["in_memory"]
        timing = time_optuna(job["trials"], workdir, in_memory=memory, index=job["index"])
        data = {"timing": asdict(timing), "run": asdict(OPTUNA_RUNS[memory])}
    else:  # a windows run: kind is the suite, nbg or large
        if kind == "nbg":
            evaluator: Any = NasBenchGraphEvaluator(dataset=DATASET)
            space = SPACES.create(evaluator.space_name)
        else:
            space = _scale.large_space()
            evaluator = _scale.FunctionTable(space)
        strategy = job["strategy"]
        if strategy == "optuna":
            run = _scale.optuna_run(space, evaluator, job["trials"])
        else:
            db = workdir / f"{kind}-{strategy}.db"
            run = _scale.nasforge_run(
                f"nasforge {strategy}", space, evaluator, strategy, job["trials"], db
            )
        data = asdict(run)
    Path(out).write_text(json.dumps(data), encoding="utf-8")


def timing_of(data: dict[str, Any]) -> Timing:
    return Timing(**{**data, "repeats": tuple(data["repeats"])})


def run_overhead(args: argparse.Namespace, workdir: Path) -> list[Timing]:
    """Part 1: nasforge and Optuna in memory alternately, ``--repeats`` times, then the
    synchronous=FULL row and Optuna on SQLite once; each run in a new process."""
    base = {"workdir": str(workdir)}
    nasforge_runs, memory_runs = [], []
    for i in range(args.repeats):
        job = {**base, "kind": "nasforge", "trials": args.trials, "index": i}
        nasforge_runs.append(timing_of(in_child(job, workdir)))
        job = {**base, "kind": "optuna", "trials": args.optuna_trials, "index": i}
        memory_runs.append(timing_of(in_child({**job, "in_memory": True}, workdir)["timing"]))
        print(
            f"[overhead] run {i + 1}: nasforge {nasforge_runs[-1].ms_per_trial:.3f}, Optuna in "
            f"memory {memory_runs[-1].ms_per_trial:.3f} ms/trial",
            file=sys.stderr,
        )
    timings = [repeated(nasforge_runs)]
    if not args.no_full_sync:
        job = {**base, "kind": "full-sync", "trials": args.trials}
        timings.append(timing_of(in_child(job, workdir)))
    job = {**base, "kind": "optuna", "trials": args.optuna_trials, "index": 0}
    rdb = in_child({**job, "in_memory": False}, workdir)
    OPTUNA_RUNS[False] = _scale.Run(**rdb["run"])
    return [*timings, repeated(memory_runs), timing_of(rdb["timing"])]


def run_scale(args: argparse.Namespace, workdir: Path) -> Scale:
    """Part 2: the windows on NAS-Bench-Graph and at 100,000 trials (each run in a new
    process), and PostgreSQL."""

    def window(suite: str, strategy: str, trials: int) -> _scale.Run:
        job = {"workdir": str(workdir), "kind": suite, "strategy": strategy, "trials": trials}
        run = _scale.Run(**in_child(job, workdir))
        print(f"[{suite}] {run.system}: {run.detail}", file=sys.stderr)
        return run

    nbg = [window("nbg", s, args.window_trials) for s in GOAL_STRATEGIES]
    nbg.append(window("nbg", "bananas", args.bananas_trials))
    nbg += [window("nbg", "optuna", args.window_trials), OPTUNA_RUNS[False]]
    large = [window("large", s, args.scale_trials) for s in (*GOAL_STRATEGIES, "optuna")]
    return Scale(nbg, large, run_pg(args))


def run_pg(args: argparse.Namespace) -> list[_scale.PgResult] | str:
    """The PostgreSQL part, or why it did not run."""
    try:
        url, drop = _scale.fresh_pg_database(args.pg_url)
    except Exception as exc:  # no server: the part is skipped, saying why
        return f"Not run: no PostgreSQL server at `{args.pg_url}` ({type(exc).__name__})."
    try:
        script = Path(__file__).resolve()
        out = []
        for processes in (1, args.pg_processes):
            out.append(_scale.pg_shared_run(script, url, processes, processes * args.pg_trials))
            print(f"[postgres] {out[-1]}", file=sys.stderr)
        return out
    finally:
        drop()


def main(argv: Sequence[str] | None = None) -> None:
    """Run every part, print the report and write it to ``--out``."""
    args = parse_args(argv)
    if args.child:
        child_main(*args.child)
        return
    if args.job:
        run_job(json.loads(args.job[0]), args.job[1])
        return
    if args.pg_child:
        url, name, budget, go, out = args.pg_child
        _scale.pg_child(url, name, int(budget), go, out)
        return
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    t0 = time.perf_counter()
    load_table(DATASET)  # read the table once, outside every timing
    with tempfile.TemporaryDirectory(prefix="nasforge-overhead-", dir=args.tmpdir) as tmp:
        workdir = Path(tmp)
        timings = run_overhead(args, workdir)
        for t in timings:
            print(f"[overhead] {t.system}: {t.ms_per_trial:.3f} ms/trial", file=sys.stderr)
        scale = None if args.no_scale else run_scale(args, workdir)
        durability = run_durability(args, workdir) if args.rounds else None
    text = report(
        args,
        started,
        tempfile.gettempdir() if args.tmpdir is None else args.tmpdir,
        timings,
        scale,
        durability,
        time.perf_counter() - t0,
    )
    publish(text, args.out)


if __name__ == "__main__":
    main()
