"""Chaos runs: kill -9 the search and its workers, share one experiment between processes,
hang trials, and check that nothing is lost.

Scenarios (each writes a section of the report; ``--json`` also dumps the raw figures):

* ``driver``: a search of ``--trials`` trials with ``--workers`` worker processes on a SQLite
  file; the driver is SIGKILLed at a random moment after it has made progress, ``--rounds``
  times, each time resumed by a new driver. After every kill: ``PRAGMA integrity_check``, trial
  numbers without gaps, no architecture twice, and every trial that was COMPLETE before is still
  there, unchanged. Then a last driver runs to the end: exactly ``--trials`` trials, all
  COMPLETE, none RUNNING, and no attempt charged to any trial for the deaths.
* ``training``: the same kill loop on a real training search started as a user starts it
  (``nasforge search --task synthetic``, ``--training-trials`` trials of ``--epochs`` epochs,
  ``--workers`` worker processes). Besides the checks above: no attempt is ever charged, since
  a trial whose search process died was not at fault.
* ``worker``: one search; a worker process is SIGKILLed mid-trial ``--worker-kills`` times. Each
  lost trial must be retried under its number and complete; nothing stays RUNNING.
* ``shared``: ``--processes`` search processes on one experiment of ``--shared-trials`` trials
  in a PostgreSQL database (``--pg-url``; skipped without one): exactly that many distinct
  trials, numbered without gaps, each process contributing.
* ``contention``: ``--processes`` search processes on one SQLite file writing as fast as they
  can, with short heartbeats, while another process polls the store: no "database is locked"
  reaches anyone.
* ``timeout``: trials that hang (after starting a child process) are killed at
  ``--trial-timeout`` with their process tree; the search completes.

The evaluations are real NAS-Bench-Graph look-ups on Cora, each taking ``--delay`` seconds (as
a short training run would), so that kills land mid-trial.

Example::

    python benchmarks/chaos.py --out benchmarks/results/chaos.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _report import header, machine_lines, markdown_table, publish
from nasforge.api import make_strategy
from nasforge.architecture import Architecture
from nasforge.budget import Budget, BudgetUnit
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.execution.process import ProcessExecutor
from nasforge.experiment import Experiment
from nasforge.objective import Objective
from nasforge.result import Result, Status
from nasforge.store.sql import SqlStore

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "chaos.md"
NAME = "chaos"
HANG_OP = "cheb"


class SlowLookup(NasBenchGraphEvaluator):
    """A NAS-Bench-Graph look-up that takes ``delay`` seconds, like a short training run.

    With ``hang`` set, an architecture whose first op is ``HANG_OP`` starts a child process and
    then hangs (a stuck data loader, a deadlock).
    """

    def __init__(self, dataset: str, delay: float, hang: bool = False) -> None:
        super().__init__(dataset=dataset)
        self.delay = delay
        self.hang = hang

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        if self.hang and arch["ops"][0] == HANG_OP:  # type: ignore[index]
            child = subprocess.Popen(["sleep", "600"])
            with Path(os.environ["CHAOS_PIDS"]).open("a") as f:
                f.write(f"{os.getpid()} {child.pid}\n")
            time.sleep(600)
        time.sleep(self.delay)
        return super().evaluate(arch, budget)


# -- the search process ---------------------------------------------------------------------
def drive(args: argparse.Namespace) -> None:
    """One search process (the process the scenarios kill)."""
    evaluator = SlowLookup("cora", args.delay, hang=args.hang)
    strategy = make_strategy(
        args.strategy, evaluator.space, objective=Objective("val_acc"), seed=args.seed
    )
    with SqlStore(args.db) as store:
        experiment = Experiment(
            name=NAME, space=evaluator.space, evaluator=evaluator, strategy=strategy, store=store
        )
        executor = None
        if args.workers:
            executor = ProcessExecutor(
                evaluator, workers=args.workers, threads=1, trial_timeout=args.trial_timeout
            )
        try:
            summary = experiment.run(
                Budget(args.trials, BudgetUnit.TRIALS),
                executor=executor,
                max_retries=args.max_retries,
                heartbeat_interval=args.heartbeat,
            )
        finally:
            if executor is not None:
                executor.close()
    print(json.dumps({"new": summary.new_trials, "retried": summary.retried}))


def _driver(db: str, trials: int, workers: int, delay: float, **extra: Any) -> list[str]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "drive",
        "--db",
        db,
        "--trials",
        str(trials),
        "--workers",
        str(workers),
        "--delay",
        str(delay),
    ]
    for key, value in extra.items():
        flag = "--" + key.replace("_", "-")
        command += [flag] if value is True else [flag, str(value)]
    return command


# -- what a store must look like --------------------------------------------------------------
def snapshot(db: str) -> dict[str, Any]:
    """The checks every scenario makes, and the trials by number."""
    with SqlStore(db, create=False) as store:
        integrity = store.integrity_check()
        try:
            trials = store.trials(store.get_experiment(NAME).id)
        except Exception:
            trials = []
    numbers = [t.number for t in trials]
    keys = [t.key for t in trials]
    return {
        "integrity": integrity,
        "gapless": numbers == list(range(len(numbers))),
        "distinct": len(set(keys)) == len(keys),
        "rows": len(trials),
        "complete": {
            t.number: (t.key, dict(t.metrics)) for t in trials if t.status is Status.COMPLETE
        },
        "running": sum(t.status is Status.RUNNING for t in trials),
        "stale": sum(t.lost for t in trials),
        "retried": sum(t.attempt > 1 for t in trials),
        # attempts charged by deaths of the search process (none may be: only a worker that
        # dies while running a trial charges it, and these scenarios kill only the driver)
        "charged": sum(t.attempt > 1 or (t.lost and t.attempt > 0) for t in trials),
        "failed": {t.number: t.error for t in trials if t.status is Status.FAILED},
        "owners": sorted({t.owner or "" for t in trials}),
    }


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (started by any of its threads)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(predicate: Any, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


# -- scenarios --------------------------------------------------------------------------------
def scenario_driver(
    workdir: Path, rounds: int, trials: int, workers: int, delay: float, seed: int
) -> dict[str, Any]:
    """Kill the search process ``rounds`` times, then let it finish."""
    db = str(workdir / "driver.db")
    result = _kill_loop(db, _driver(db, trials, workers, delay), rounds, delay, seed)
    return result | {"trials": trials, "workers": workers}


def scenario_training(
    workdir: Path, rounds: int, trials: int, workers: int, epochs: int, seed: int
) -> dict[str, Any]:
    """The same kill loop on a real training search, run as a user runs it (the CLI)."""
    db = str(workdir / "training.db")
    command = [
        sys.executable,
        "-c",
        "import sys; from nasforge.cli import main; sys.exit(main())",
        "search",
        "--task",
        "synthetic",
        "--epochs",
        str(epochs),
        "--workers",
        str(workers),
        "--budget",
        f"{trials}trials",
        "--seed",
        str(seed),
        "--db",
        db,
        "--name",
        NAME,
    ]
    result = _kill_loop(db, command, rounds, TRAINING_KILL_WINDOW_S, seed)
    return result | {"trials": trials, "workers": workers, "epochs": epochs}


TRAINING_KILL_WINDOW_S = 0.5
"""Seconds after a training driver's first trial within which it is killed (a few trials)."""


def _kill_loop(
    db: str, command: list[str], rounds: int, window: float, seed: int
) -> dict[str, Any]:
    """Start ``command`` and SIGKILL it once it has completed a trial of its own (plus up to
    ``window`` seconds), ``rounds`` times; then run it to the end. Checks after each kill."""
    rng = random.Random(seed)
    log: list[dict[str, Any]] = []
    previous: dict[int, Any] = {}
    for round_ in range(rounds):
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start = time.monotonic()
        _wait_for(  # kill only after this driver has stored something of its own
            _progressed(db, len(previous), child),
            timeout=120,
        )
        time.sleep(rng.uniform(0.0, window))
        workers_pids = _children(child.pid)
        finished = child.poll() is not None
        if not finished:
            os.kill(child.pid, signal.SIGKILL)
        child.wait()
        killed_at = time.monotonic() - start
        orphans_gone = _wait_for(_all_gone(workers_pids), timeout=10)
        snap = snapshot(db)
        lost = [n for n, v in previous.items() if snap["complete"].get(n) != v]
        log.append(
            {
                "round": round_ + 1,
                "killed_at_s": round(killed_at, 2),
                "finished_before_kill": finished,
                "complete": len(snap["complete"]),
                "new_complete": len(snap["complete"]) - len(previous),
                "running_left": snap["running"],
                "lost_or_changed": len(lost),
                "charged": snap["charged"],
                "integrity": snap["integrity"],
                "gapless": snap["gapless"],
                "distinct": snap["distinct"],
                "workers_gone": orphans_gone,
            }
        )
        previous = snap["complete"]
    final = subprocess.run(command, capture_output=True, text=True, timeout=600)
    snap = snapshot(db)
    lost = [n for n, v in previous.items() if snap["complete"].get(n) != v]
    return {
        "rounds": log,
        "final_exit": final.returncode,
        "final_stderr": final.stderr[-2000:],
        "final": {k: v for k, v in snap.items() if k not in ("complete", "owners")}
        | {"complete": len(snap["complete"]), "lost_or_changed": len(lost)},
        "db": db,
    }


def _progressed(db: str, before: int, child: subprocess.Popen[bytes]) -> Any:
    """A test of whether the driver has completed a trial of its own (or exited)."""
    return lambda: (Path(db).exists() and _complete_count(db) > before) or child.poll() is not None


def _all_gone(pids: list[int]) -> Any:
    return lambda: not any(_alive(p) for p in pids)


def _complete_count(db: str) -> int:
    try:
        return len(snapshot(db)["complete"])
    except Exception:
        return 0


def scenario_worker(
    workdir: Path, kills: int, trials: int, workers: int, delay: float, seed: int
) -> dict[str, Any]:
    """Kill a worker process mid-trial ``kills`` times during one search."""
    db = str(workdir / "worker.db")
    rng = random.Random(seed)
    child = subprocess.Popen(
        _driver(db, trials, workers, delay, max_retries=kills),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed: list[int] = []
    _wait_for(lambda: Path(db).exists() and _complete_count(db) > 0, timeout=60)
    for _ in range(kills):
        time.sleep(rng.uniform(0.2, 0.6) * delay)
        busy: list[int] = []
        while not busy and child.poll() is None:  # a worker past its start-up is in a trial
            busy = [
                p
                for p in _children(child.pid)
                if _alive(p) and "spawn_main" in _cmdline(p) and _age(p) > STARTUP_S
            ]
            time.sleep(0.1)
        if not busy:
            break
        victim = rng.choice(busy)
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:  # it ended in the meantime (the search was finishing)
            continue
        killed.append(victim)
        time.sleep(delay)  # let the lost trial be noticed before the next kill
    _, err = child.communicate(timeout=600)
    snap = snapshot(db)
    return {
        "kills": len(killed),
        "exit": child.returncode,
        "stderr": err[-2000:],
        "rows": snap["rows"],
        "complete": len(snap["complete"]),
        "running": snap["running"],
        "retried": snap["retried"],
        "stale_left": snap["stale"],
        "gapless": snap["gapless"],
        "distinct": snap["distinct"],
        "integrity": snap["integrity"],
        "trials": trials,
        "db": db,
    }


STARTUP_S = 6.0
"""Seconds after which a worker process has started (imported torch, loaded the table)."""


def _age(pid: int) -> float:
    """Seconds since process ``pid`` started (0 if it is gone)."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return uptime - ticks / os.sysconf("SC_CLK_TCK")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def scenario_shared(admin_url: str, processes: int, trials: int, delay: float) -> dict[str, Any]:
    """``processes`` search processes on one experiment in a new PostgreSQL database."""
    import uuid

    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"nasforge_chaos_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    pg_url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        return _shared(pg_url, processes, trials, delay)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _shared(pg_url: str, processes: int, trials: int, delay: float) -> dict[str, Any]:
    start = time.monotonic()
    children = [
        subprocess.Popen(_driver(pg_url, trials, 1, delay), stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    outputs = [c.communicate(timeout=600)[0] for c in children]
    wall = time.monotonic() - start
    snap = snapshot(pg_url)
    return {
        "processes": processes,
        "exits": [c.returncode for c in children],
        "new_by_process": [json.loads(o.strip().splitlines()[-1])["new"] for o in outputs],
        "rows": snap["rows"],
        "complete": len(snap["complete"]),
        "distinct": snap["distinct"],
        "gapless": snap["gapless"],
        "running": snap["running"],
        "owners": len([o for o in snap["owners"] if o]),
        "trials": trials,
        "wall_s": round(wall, 1),
    }


def scenario_contention(workdir: Path, processes: int, trials: int) -> dict[str, Any]:
    """``processes`` searches writing one SQLite file as fast as they can, plus a reader."""
    db = str(workdir / "contention.db")
    SqlStore(db).close()
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, db, str(trials)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    start = time.monotonic()
    children = [
        subprocess.Popen(
            _driver(db, trials, 0, 0.0, heartbeat=0.05),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    results = [c.communicate(timeout=600) for c in children]
    wall = time.monotonic() - start
    reads, reader_err = reader.communicate(timeout=120)
    snap = snapshot(db)
    errors = [err for _, err in results if "locked" in err or "Traceback" in err]
    return {
        "processes": processes,
        "exits": [c.returncode for c in children],
        "reader_exit": reader.returncode,
        "reads": int(reads.strip() or 0),
        "locked_errors": len(errors) + ("locked" in reader_err),
        "errors": [e[-500:] for e in errors] + ([reader_err[-500:]] if reader_err else []),
        "rows": snap["rows"],
        "gapless": snap["gapless"],
        "distinct": snap["distinct"],
        "integrity": snap["integrity"],
        "trials": trials,
        "wall_s": round(wall, 1),
    }


_READER = """
import sys, time
from nasforge.store.sql import SqlStore
db, target = sys.argv[1], int(sys.argv[2])
reads, deadline = 0, time.monotonic() + 300
with SqlStore(db, create=False) as store:
    while time.monotonic() < deadline:
        names = store.list_experiments()
        if names:
            trials = store.trials(names[0].id)
            reads += 1
            if len(trials) >= target and all(t.status != "RUNNING" for t in trials):
                break
        time.sleep(0.005)
print(reads)
"""


def scenario_timeout(workdir: Path, trials: int, timeout: float) -> dict[str, Any]:
    """Trials that hang after starting a child are killed at ``timeout`` with their tree."""
    db = str(workdir / "timeout.db")
    pids = workdir / "hung-pids.txt"
    pids.write_text("")
    start = time.monotonic()
    proc = subprocess.run(
        _driver(db, trials, 2, 0.05, hang=True, trial_timeout=timeout),
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CHAOS_PIDS": str(pids)},
    )
    wall = time.monotonic() - start
    snap = snapshot(db)
    hung = [tuple(map(int, line.split())) for line in pids.read_text().split("\n") if line]
    timed_out = {n: e for n, e in snap["failed"].items() if e and "timed out" in e}
    return {
        "exit": proc.returncode,
        "stderr": proc.stderr[-2000:],
        "rows": snap["rows"],
        "complete": len(snap["complete"]),
        "timed_out": len(timed_out),
        "reasons": sorted(set(timed_out.values()))[:3],
        "hung_processes": len(hung),
        "left_alive": sum(_alive(p) for pair in hung for p in pair),
        "running": snap["running"],
        "trials": trials,
        "timeout_s": timeout,
        "wall_s": round(wall, 1),
    }


# -- report -----------------------------------------------------------------------------------
def report(results: dict[str, Any], wall: float, started: str) -> str:
    lines = header("Chaos runs: crashes, shared stores, hangs", started, wall, machine_lines())
    lines += [
        "",
        "Evaluations are NAS-Bench-Graph look-ups on Cora that each take a fixed delay (like a "
        "short training run), so kills land mid-trial. `lost` counts trials COMPLETE before a "
        "kill that were missing or changed after it.",
    ]
    if "driver" in results:
        d = results["driver"]
        lines += _kill_loop_section(
            d,
            f"## Driver killed with SIGKILL: {len(d['rounds'])} rounds, {d['trials']}-trial "
            f"search, {d['workers']} worker processes, SQLite",
        )
    if "training" in results:
        d = results["training"]
        lines += _kill_loop_section(
            d,
            f"## Training search killed with SIGKILL: {len(d['rounds'])} rounds, `nasforge "
            f"search --task synthetic --epochs {d['epochs']} --workers {d['workers']} --budget "
            f"{d['trials']}trials`, SQLite",
        )
    if "worker" in results:
        w = results["worker"]
        lines += [
            "",
            "## Worker processes killed with SIGKILL mid-trial",
            "",
            f"{w['kills']} kills, each of a worker process in a trial (started over "
            f"{STARTUP_S:g} s before), during a {w['trials']}-trial search (exit {w['exit']}): "
            f"{w['rows']} trials, {w['complete']} COMPLETE, {w['retried']} retried under their "
            f"number, {w['running']} RUNNING and {w['stale_left']} stale left, integrity "
            f"{w['integrity']}, gapless {w['gapless']}, distinct {w['distinct']}.",
        ]
    if "shared" in results:
        s = results["shared"]
        lines += [
            "",
            "## One experiment, several search processes, PostgreSQL",
            "",
            f"{s['processes']} processes, one {s['trials']}-trial experiment (exits "
            f"{s['exits']}): {s['rows']} trials, {s['complete']} COMPLETE, distinct "
            f"{s['distinct']}, gapless {s['gapless']}, trials stored by each process "
            f"{s['new_by_process']}, {s['wall_s']} s.",
        ]
    if "contention" in results:
        c = results["contention"]
        lines += [
            "",
            "## SQLite under contention",
            "",
            f"{c['processes']} search processes writing one file as fast as they can (heartbeat "
            f"every 0.05 s) and a reader polling every 5 ms ({c['reads']} reads): exits "
            f"{c['exits']}, reader exit {c['reader_exit']}, 'database is locked' seen "
            f"{c['locked_errors']} times; {c['rows']} trials, gapless {c['gapless']}, distinct "
            f"{c['distinct']}, integrity {c['integrity']}, {c['wall_s']} s.",
        ]
    if "timeout" in results:
        t = results["timeout"]
        lines += [
            "",
            "## Hanging trials and --trial-timeout",
            "",
            f"{t['trials']}-trial search, trials whose first op is {HANG_OP} start a child and "
            f"hang; timeout {t['timeout_s']} s (exit {t['exit']}): {t['timed_out']} trials "
            f"FAILED by the timeout ({'; '.join(t['reasons'])}), {t['complete']} COMPLETE, "
            f"{t['hung_processes']} hung workers with {t['left_alive']} of their processes "
            f"left alive, {t['running']} RUNNING, {t['wall_s']} s.",
        ]
    return "\n".join(lines) + "\n"


def _kill_loop_section(d: dict[str, Any], title: str) -> list[str]:
    rows = [
        [
            r["round"],
            r["killed_at_s"],
            r["complete"],
            r["new_complete"],
            r["running_left"],
            r["lost_or_changed"],
            r["charged"],
            r["integrity"],
            r["gapless"] and r["distinct"],
            r["workers_gone"],
        ]
        for r in d["rounds"]
    ]
    f = d["final"]
    in_flight = sum(r["running_left"] for r in d["rounds"])
    lost = f["lost_or_changed"] + sum(r["lost_or_changed"] for r in d["rounds"])
    return [
        "",
        title,
        "",
        *markdown_table(
            [
                "round",
                "killed at s",
                "complete",
                "new",
                "RUNNING left",
                "lost",
                "attempts charged",
                "integrity",
                "gapless, distinct",
                "workers gone",
            ],
            rows,
        ),
        "",
        f"Final run to the end (exit {d['final_exit']}): {f['rows']} trials, "
        f"{f['complete']} COMPLETE, {f['running']} RUNNING; {in_flight} trials were in flight "
        f"at a kill and run again, {f['charged']} attempts charged for it, lost {lost}, "
        f"integrity {f['integrity']}, gapless {f['gapless']}, distinct {f['distinct']}.",
    ]


SCENARIOS = ("driver", "training", "worker", "shared", "contention", "timeout")


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["drive"]:
        p = argparse.ArgumentParser(prog="chaos.py drive")
        p.add_argument("--db", required=True)
        p.add_argument("--trials", type=int, required=True)
        p.add_argument("--workers", type=int, default=2)
        p.add_argument("--delay", type=float, default=0.3)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--strategy", default="evolution")
        p.add_argument("--max-retries", type=int, default=2)
        p.add_argument("--heartbeat", type=float, default=1.0)
        p.add_argument("--trial-timeout", type=float)
        p.add_argument("--hang", action="store_true")
        drive(p.parse_args(argv[1:]))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--trials", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--delay", type=float, default=1.0, help="seconds each evaluation takes")
    p.add_argument("--training-rounds", type=int, default=20)
    p.add_argument("--training-trials", type=int, default=120)
    p.add_argument("--epochs", type=int, default=20, help="epochs of each training trial")
    p.add_argument("--worker-kills", type=int, default=5)
    p.add_argument("--processes", type=int, default=4)
    p.add_argument("--shared-trials", type=int, default=80)
    p.add_argument("--contention-trials", type=int, default=2000)
    p.add_argument("--trial-timeout", type=float, default=2.0)
    p.add_argument(
        "--pg-url",
        default=os.environ.get("NASFORGE_TEST_PG_URL"),
        help="PostgreSQL server URL of a database to connect to; a new database is created "
        "there for the run and dropped after",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    wanted = [s for s in args.scenarios.split(",") if s]
    unknown = set(wanted) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios {sorted(unknown)}; valid: {', '.join(SCENARIOS)}")
    workdir = args.workdir or Path(
        subprocess.run(["mktemp", "-d"], capture_output=True, text=True).stdout.strip()
    )
    workdir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.monotonic()
    results: dict[str, Any] = {}
    for name in wanted:
        print(f"scenario {name} ...", file=sys.stderr, flush=True)
        if name == "driver":
            results[name] = scenario_driver(
                workdir, args.rounds, args.trials, args.workers, args.delay, args.seed
            )
        elif name == "training":
            results[name] = scenario_training(
                workdir,
                args.training_rounds,
                args.training_trials,
                args.workers,
                args.epochs,
                args.seed,
            )
        elif name == "worker":
            results[name] = scenario_worker(
                workdir, args.worker_kills, args.trials, args.workers, args.delay, args.seed
            )
        elif name == "shared":
            if not args.pg_url:
                print("shared: skipped, no --pg-url", file=sys.stderr)
                continue
            results[name] = scenario_shared(
                args.pg_url, args.processes, args.shared_trials, args.delay
            )
        elif name == "contention":
            results[name] = scenario_contention(workdir, args.processes, args.contention_trials)
        else:
            results[name] = scenario_timeout(workdir, 16, args.trial_timeout)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    publish(report(results, time.monotonic() - t0, started), args.out)


if __name__ == "__main__":
    main()
