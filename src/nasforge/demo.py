"""``make demo``: a NAS-Bench-Graph search and a short search that trains on digits.

1. Runs regularized evolution for 100 distinct architectures on the Cora table that ships with
   the ``nas-bench-graph`` package (no download, no server), stores every trial in a SQLite
   file, and prints the best architecture, the top five, and how close the search came to the
   best architecture of the whole table.
2. Trains NAS-Bench-201 cells for real on scikit-learn's 8x8 digits (offline; a small network,
   20 epochs each, a few minutes at most on 2 cores) and prints the best cell with its test
   accuracy.
3. Writes a self-contained HTML report of the NAS-Bench-Graph search (open it in a browser;
   it needs no network) and prints its path.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nasforge import api, terminal
from nasforge.benchmarks.nas_bench_graph import load_table
from nasforge.errors import NasforgeError
from nasforge.objective import trial_score

__all__ = ["main"]

_err = terminal.console(stderr=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nasforge.demo", description=__doc__)
    parser.add_argument("--db", default="nasforge-demo.db", help="SQLite store to write")
    parser.add_argument("--dataset", default="cora", help="NAS-Bench-Graph dataset")
    parser.add_argument("--strategy", default="evolution")
    parser.add_argument("--budget", default="100")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--report",
        default="nasforge-demo-report.html",
        help="HTML report of the NAS-Bench-Graph search to write ('' skips it)",
    )
    parser.add_argument(
        "--digits-budget",
        type=int,
        default=12,
        help="cells trained on digits in part 2 (0 skips it)",
    )
    args = parser.parse_args(argv)
    console = terminal.console()
    benchmark = f"nas-bench-graph:{args.dataset}"
    name = f"demo-{args.dataset}-{args.strategy}-seed{args.seed}"
    terminal.rule(console, f"nasforge demo: {args.strategy} on {benchmark}, budget {args.budget}")
    try:
        result = api.search(
            benchmark=benchmark,
            strategy=args.strategy,
            budget=args.budget,
            seed=args.seed,
            name=name,
            db=args.db,
        )
        trials = api.trials(name, db=args.db)
    except NasforgeError as exc:
        _err.print(f"[bold red]error:[/] {escape(str(exc))}")
        return 2
    summary, best = result.summary, result.best
    if summary.resumed_trials:
        console.print(f"resumed {summary.resumed_trials} stored trials of '{name}'")
    console.print(
        f"{summary.archs} distinct architectures evaluated ({summary.new_trials} new) "
        f"in {summary.elapsed:.2f} s"
    )
    if best is None:
        console.print("no trial completed")
        return 1

    top = sorted(trials, key=lambda t: -trial_score(t, result.objective))[:5]
    table = Table(title="top 5 architectures by validation accuracy")
    for col in ("trial", "architecture", "val_acc", "test_acc", "latency ms", "params (M)"):
        table.add_column(col, justify="left" if col == "architecture" else "right", overflow="fold")
    for t in top:
        table.add_row(
            str(t.number),
            escape(str(t.arch)),
            f"{t.metrics['val_acc']:.4f}",
            f"{t.test_metrics['test_acc']:.4f}",
            f"{t.costs['latency_ms']:.2f}",
            f"{t.costs['params'] / 1e6:.3f}",
        )
    console.print(table)

    rows = load_table(args.dataset).rows.values()
    best_val = max(r.valid for r in rows)
    console.print(
        f"best architecture: [bold]{escape(str(best.arch))}[/] (trial {best.number})\n"
        f"  val_acc {best.metrics['val_acc']:.4f}, test_acc {best.test_metrics['test_acc']:.4f}; "
        f"best val_acc in the whole table {best_val:.4f} "
        f"(regret {best_val - best.metrics['val_acc']:.4f})\n"
        f"results stored in [bold]{escape(str(result.db))}[/] as experiment '{name}'; try:\n"
        f"  nasforge trials --name {name} --db {escape(str(result.db))} --top 10\n"
        f"  nasforge best --name {name} --db {escape(str(result.db))}"
    )
    digits = (
        _digits(console, args.db, args.digits_budget, args.seed) if args.digits_budget else None
    )
    code = 0 if digits is None else digits[0]
    if args.report:
        reports = [(name, Path(args.report))]
        if digits is not None and code == 0:  # the digits search has its own report
            out = Path(args.report)
            reports.append((digits[1], out.with_name(f"{out.stem}-digits{out.suffix}")))
        terminal.rule(console, "nasforge demo: reports")
        for experiment, out in reports:
            try:
                path = api.report(experiment, out, db=args.db, top=5)
            except NasforgeError as exc:
                _err.print(f"[bold red]error:[/] {escape(str(exc))}")
                return 2
            console.print(
                f"report of '{experiment}' written to [bold]{escape(str(path.resolve()))}[/] "
                "(self-contained: open it in any browser, offline)\n"
                f"  nasforge report --name {experiment} --db {escape(str(result.db))} "
                "--out report.html"
            )
    return code


def _digits(console: Console, db: str, budget: int, seed: int) -> tuple[int, str]:
    """Part 2: evolution over NAS-Bench-201 cells, each trained on digits."""
    name = f"demo-digits-nb201-evolution-seed{seed}"
    terminal.rule(
        console, f"nasforge demo: evolution over nb201 cells trained on digits, budget {budget}"
    )
    try:
        settings = api.plan(
            task="image:digits",
            space="nb201",
            strategy="evolution",
            budget=budget,
            seed=seed,
            name=name,
        )
        result = settings.run(
            db=db, callback=lambda p: console.print(terminal.trial_line(name, p), markup=False)
        )
    except NasforgeError as exc:
        _err.print(f"[bold red]error:[/] {escape(str(exc))}")
        return 2, name
    summary, best = result.summary, result.best
    setup = settings.evaluator.describe()
    train, val, test = setup["task"]["split"]
    console.print(
        f"{summary.archs} cells trained ({summary.new_trials} new; "
        f"{setup['train']['epochs']} epochs each on {train} training images, {val} for "
        f"validation, {test} for test) in {summary.elapsed:.1f} s"
    )
    if best is None:
        console.print("no trial completed")
        return 1, name
    console.print(
        f"best cell: [bold]{escape(str(best.arch))}[/] (trial {best.number})\n"
        f"  computes {escape(best.key)}\n"
        f"  val_acc {best.metrics['val_acc']:.4f}, [bold]test_acc "
        f"{best.test_metrics['test_acc']:.4f}[/], {best.costs['params'] / 1e3:.1f} k params, "
        f"{best.costs['latency_ms']:.2f} ms per image\n"
        f"  nasforge trials --name {name} --db {escape(str(result.db))} --top 5"
    )
    return 0, name


if __name__ == "__main__":
    sys.exit(main())
