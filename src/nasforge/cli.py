"""The ``nasforge`` command line: thin commands over the Python API."""

from __future__ import annotations

import argparse
import json
import math
import shlex
import signal
import sys
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from nasforge import api, terminal
from nasforge.architecture import Architecture
from nasforge.budget import Budget, BudgetUnit
from nasforge.compression.plan import compression_of, step_of_key
from nasforge.config import MAX_SEED, SearchConfig, check_seed
from nasforge.constraint import Constraint
from nasforge.errors import ConfigError, DamagedRowWarning, NasforgeError
from nasforge.evaluators.base import BENCHMARKS
from nasforge.execution.base import EXECUTORS, Executor
from nasforge.experiment import Progress as SearchProgress
from nasforge.objective import Objective
from nasforge.oneshot import PhaseProgress
from nasforge.paths import DEFAULT_DB
from nasforge.proxies.names import PROXIES, PROXY_SUMMARIES
from nasforge.registry import PluginWarning, Registry, load_plugins
from nasforge.result import Status
from nasforge.spaces.base import SPACES
from nasforge.store.base import TrialRecord
from nasforge.strategies.base import STRATEGIES
from nasforge.tasks.base import TASKS, task_forms
from nasforge.version import __version__

__all__ = ["main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143

out = terminal.console()
err = terminal.console(stderr=True)

T = TypeVar("T")


def _line(text: str) -> str:
    """``text`` as one line of console text (:func:`terminal.printable`), nothing read as
    markup."""
    return escape(terminal.printable(text))


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit code 2."""

    def error(self, message: str) -> NoReturn:
        err.print(
            f"[bold red]error:[/] {_line(self.prog)}: {_line(message)} "
            f"(see '{_line(self.prog)} --help')"
        )
        raise SystemExit(EXIT_USAGE)


def _option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"options are KEY=VALUE, got {text!r}")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def _argument(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type`` from a parser that raises ConfigError (its message is kept)."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


_budget = _argument(Budget.parse)
_objective = _argument(Objective.parse)
_constraint = _argument(Constraint.parse)


def _seed(text: str) -> int:
    try:
        return check_seed(int(text))
    except (ValueError, ConfigError):
        raise argparse.ArgumentTypeError(
            f"a seed is an integer from 0 to {MAX_SEED} (2**32 - 1), got {text!r}"
        ) from None


def _reference(text: str) -> tuple[str, float]:
    metric, sep, value = text.partition("=")
    try:
        if not sep or not metric.strip():
            raise ValueError
        return metric.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a reference value is METRIC=NUMBER, e.g. latency_ms=50; got {text!r}"
        ) from None


def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
        return value

    return parse


def _number(kind: type) -> Callable[[str], Any]:
    """An argparse type: an ``int`` or a ``float``."""

    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def _add_name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--name", help="experiment name (default: the store's experiment, when it holds one)"
    )


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        help=f"store: a SQLite file or an SQLAlchemy URL (default $NASFORGE_DB or {DEFAULT_DB})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nasforge",
        description="Neural architecture search with a durable, resumable experiment store.",
    )
    parser.add_argument("--version", action="version", version=f"nasforge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _search_parser(sub)
    _read_parsers(sub)
    _tool_parsers(sub)
    _output_parsers(sub)
    return parser


def _search_parser(sub: Any) -> None:
    s = sub.add_parser("search", help="run or resume a search")
    source = s.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--benchmark",
        help="tabular benchmark to search, e.g. nas-bench-graph:cora or "
        "nas-bench-201:cifar10-valid (see 'nasforge list')",
    )
    source.add_argument(
        "--task",
        help=f"data to train candidates on: {', '.join(task_forms())} (see 'nasforge list tasks')",
    )
    s.add_argument(
        "--space",
        help="search space (default: the benchmark's; for tasks gnn, nb201 or mlp by data type)",
    )
    s.add_argument("--strategy", default="evolution", help="search strategy (default evolution)")
    s.add_argument(
        "--budget",
        type=_budget,
        default=Budget(100),
        help="distinct architectures (100), trials (500trials) or time (90s, 30m, 2h)",
    )
    s.add_argument(
        "--table",
        help="nas-bench-201: the NAS-Bench-201 .pth or NATS-tss-v1_0-3ffb9-simple folder you "
        "downloaded (default $NASFORGE_NB201_PATH)",
    )
    s.add_argument(
        "--objective",
        dest="objectives",
        action="append",
        type=_objective,
        help="METRIC:max|min to optimise (repeatable: several make a multi-objective search "
        "with a Pareto front); default the evaluator's, val_acc:max",
    )
    s.add_argument(
        "--constraint",
        dest="constraints",
        action="append",
        type=_constraint,
        default=[],
        help="hard constraint METRIC<=|<|>=|>NUMBER (repeatable, quoted for the shell), e.g. "
        "'params<=1e6', 'latency_ms<=5', 'flops<=300M'",
    )
    s.add_argument("--seed", type=_seed, default=0, help="strategy seed (default 0)")
    s.add_argument("--name", help="experiment name; an existing one is resumed")
    s.add_argument(
        "-o",
        "--option",
        dest="options",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="strategy option, e.g. -o population_size=30 (repeatable)",
    )
    s.add_argument(
        "--knowledge",
        action="append",
        default=[],
        metavar="DB_OR_URL",
        help="with --strategy transfer: a store of earlier searches to learn from, read only "
        "(repeatable; default: the search's own store); NAS-Bench-Graph's tables are added "
        "unless -o tables=false",
    )
    s.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")
    _add_db(s)
    _execution_flags(s)
    model = s.add_argument_group("model and training settings (with --task)")
    _model_flags(s, model)
    _warm_start_flags(s.add_argument_group("warm start (with --task)"))
    data = s.add_argument_group("data (with --task)")
    _data_flags(data)
    # which flags are overrides (training=...) and which are task options (task_options=...)
    s.set_defaults(
        override_flags=[a.dest for a in model._group_actions],
        task_option_flags=[a.dest for a in data._group_actions if a.dest != "more_task_options"],
    )


def _execution_flags(s: argparse.ArgumentParser) -> None:
    training = s.add_argument_group("training and execution (with --task)")
    training.add_argument("--data-root", help="folder holding <Name>/raw/ of Planetoid data")
    training.add_argument(
        "--download", action="store_true", help="download missing Planetoid files (internet)"
    )
    training.add_argument("--epochs", type=_positive_int, help="epochs per candidate")
    training.add_argument(
        "--workers",
        type=_positive_int,
        help="trials in parallel (default 1; with --executor: the machine's CPUs for process, "
        "the cluster's for ray)",
    )
    training.add_argument(
        "--latency-backend",
        choices=["torch", "onnxruntime"],
        default="torch",
        help="how latency_ms is measured: the torch model (default) or its ONNX export run by "
        "ONNX Runtime (needs nasforge[onnx])",
    )
    training.add_argument(
        "--executor",
        choices=EXECUTORS.names(),
        help="where trials run: process (local worker processes; the default for --task, so "
        "that a crash or a timeout costs one trial), inline (this process; the default for "
        "--benchmark), ray (a Ray cluster)",
    )
    s.add_argument(
        "--max-retries",
        type=_non_negative_int,
        default=2,
        help="times a trial lost with its worker (process or machine died, search killed) is "
        "run again (default 2)",
    )
    training.add_argument(
        "--trial-timeout",
        type=_seconds,
        help="seconds a trial may run before its worker's process tree is killed and the "
        "trial is FAILED (executor process or ray)",
    )
    training.add_argument(
        "--device",
        help="where candidates train and are timed: auto (the default: CUDA when there is a "
        "GPU), cpu, cuda (several workers: one GPU each), cuda:N",
    )
    training.add_argument(
        "--keep-weights",
        action="store_true",
        help="save each completed trial's weights as safetensors next to the store; export "
        "then reuses them instead of retraining",
    )
    training.add_argument(
        "--ray-address",
        help="with --executor ray: auto or HOST:PORT of a Ray head node (default: start a "
        "private local Ray on 127.0.0.1)",
    )
    training.add_argument(
        "--early-stopping",
        choices=["curve"],
        help="curve: stop runs a learning-curve predictor expects to lose (stored as PRUNED)",
    )


def _model_flags(parser: argparse.ArgumentParser, group: argparse._ArgumentGroup) -> None:
    """The overrides of ``training=``: the training options, and every registered space's
    model settings (one flag per setting name, from the spaces' settings dataclasses; a name
    that another flag has already is left out)."""
    group.add_argument("--lr", type=float, help="learning rate")
    group.add_argument("--weight-decay", type=float, help="weight decay")
    group.add_argument("--optimizer", help="adam or sgd")
    group.add_argument("--momentum", type=float, help="SGD momentum (Nesterov when > 0)")
    group.add_argument("--schedule", help="learning-rate schedule: constant or cosine")
    group.add_argument("--batch-size", type=_positive_int, help="images/tables: batch size")
    group.add_argument("--patience", type=_positive_int, help="early-stopping patience")
    group.add_argument(
        "--select",
        help="which epoch a run reports: metric (best validation metric) or loss (lowest "
        "validation loss)",
    )
    group.add_argument(
        "--exact",
        action="store_const",
        const=True,
        help="train with PyTorch's reference ops, optimizers and layouts (bitwise "
        "reproducible; slower) instead of the faster ones, which draw dropout from another "
        "random stream and round differently, with the same distribution",
    )
    taken = {a.dest for a in parser._actions}
    for name, (kind, text) in _space_settings().items():
        flag = f"--{name.replace('_', '-')}"
        if name in taken or flag in parser._option_string_actions:
            continue
        parse: Callable[[str], Any] = _number(kind) if kind in (int, float) else str
        group.add_argument(flag, dest=name, type=parse, help=text)


def _space_settings() -> dict[str, tuple[type, str]]:
    """Model settings of the registered spaces, one entry per name: its type and a help that
    names the spaces it belongs to (one name per space class), e.g. ``gnn: hidden width``."""
    found: dict[str, tuple[type, list[str], str]] = {}
    classes: set[type] = set()
    for name in SPACES.names():
        space = SPACES.create(name)
        if type(space) in classes:
            continue
        classes.add(type(space))
        for field, (kind, text) in space.setting_fields().items():
            known = found.setdefault(field, (kind, [], text))
            known[1].append(name)
    return {f: (kind, f"{', '.join(names)}: {text}") for f, (kind, names, text) in found.items()}


def _warm_start_flags(warm: argparse._ArgumentGroup) -> None:
    warm.add_argument(
        "--warm-start",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="propose first the N best of a random pool ranked by a zero-cost proxy on the "
        "task's data, then let the strategy go on (default 0: off)",
    )
    warm.add_argument(
        "--warm-pool",
        type=_positive_int,
        metavar="P",
        help="architectures drawn and scored for the warm start, >= N (default 10 * N)",
    )
    warm.add_argument(
        "--warm-proxy",
        default="synflow",
        metavar="NAME",
        help=f"proxy that ranks the pool: {', '.join(PROXIES)} (default synflow)",
    )


def _data_flags(data: argparse._ArgumentGroup) -> None:
    """The task options (``task_options=``): one flag each, plus any option by name."""
    data.add_argument("--label", help="csv: the label column (default: the last column)")
    data.add_argument(
        "--task-kind",
        dest="kind",
        choices=["classification", "regression"],
        help="csv and tabular:file: the kind of target (default: guessed from the labels)",
    )
    data.add_argument("--image-size", help="image:folder: resize images to HxW, e.g. 32x32")
    data.add_argument(
        "--grayscale", action="store_true", help="image:folder: read images as one channel"
    )
    data.add_argument(
        "--split-seed",
        type=_seed,
        help="images and tables: seed of the 60/20/20 train/validation/test split (default 0)",
    )
    data.add_argument(
        "--task-option",
        dest="more_task_options",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other option of the task's kind (repeatable; see 'nasforge list tasks')",
    )


def _read_parsers(sub: Any) -> None:
    t = sub.add_parser("trials", help="list the trials of an experiment")
    _add_name(t)
    t.add_argument("--status", choices=[s.value for s in Status], help="only trials in this state")
    t.add_argument("--top", type=int, metavar="N", help="only the N best (by the objective)")
    t.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    _add_db(t)

    b = sub.add_parser("best", help="show the best trial of an experiment")
    _add_name(b)
    b.add_argument("--json", action="store_true", help="print JSON")
    _add_db(b)

    dr = sub.add_parser(
        "doctor",
        help="check a store without writing to it: the file, then every row "
        "(exit 1 if anything is damaged)",
    )
    _add_db(dr)


def _tool_parsers(sub: Any) -> None:
    px = sub.add_parser("proxies", help="rank a sample of architectures by zero-cost proxies")
    px.add_argument("--task", required=True, help="data, as for search --task")
    px.add_argument("--space", help="search space (default: the task's)")
    px.add_argument(
        "-n", type=_positive_int, default=50, help="architectures to sample (default 50)"
    )
    px.add_argument(
        "--proxy",
        action="append",
        default=None,
        help="proxy to compute (repeatable; the first ranks); default: all of "
        + ", ".join(PROXIES),
    )
    px.add_argument("--seed", type=_seed, default=0, help="seed of sample, weights and batch")
    px.add_argument("--top", type=_positive_int, default=20, help="rows to show (default 20)")
    px.add_argument("--data-root", help="folder holding <Name>/raw/ of Planetoid data")
    px.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    px.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")

    pa = sub.add_parser("pareto", help="show the Pareto front of a multi-objective experiment")
    _add_name(pa)
    pa.add_argument(
        "--objective",
        action="append",
        type=_objective,
        help="METRIC:max|min (repeatable; default the experiment's objectives)",
    )
    pa.add_argument(
        "--reference",
        action="append",
        type=_reference,
        default=[],
        help="hypervolume reference value METRIC=NUMBER (repeatable); maximised objectives "
        "default to 0, minimised ones default to the worst value among the stored trials",
    )
    pa.add_argument("--json", action="store_true", help="print JSON")
    _add_db(pa)

    d = sub.add_parser("dashboard", help="serve a live web page of the store's experiments")
    d.add_argument(
        "--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)"
    )
    d.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; any other needs --allow-remote)",
    )
    d.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host; every request then needs the token",
    )
    d.add_argument(
        "--token",
        help="token every request must carry (16+ characters; with --allow-remote one is "
        "generated and printed once when not given)",
    )
    d.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate (chain)")
    d.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    _add_db(d)

    lt = sub.add_parser(
        "latency", help="build or load a per-op latency table; predicted vs measured latency"
    )
    lt.add_argument("--task", required=True, help="data, as for search --task")
    lt.add_argument("--space", help="search space: gnn or nb201 (default: the task's)")
    lt.add_argument(
        "-n", type=_positive_int, default=20, help="architectures to compare (default 20)"
    )
    lt.add_argument(
        "--backend",
        choices=["torch", "onnxruntime"],
        default="torch",
        help="where to run the models (default torch; onnxruntime needs nasforge[onnx])",
    )
    lt.add_argument("--repeats", type=_positive_int, default=10, help="timed calls per timing")
    lt.add_argument("--seed", type=_seed, default=0, help="seed of the sample")
    lt.add_argument("--refresh", action="store_true", help="measure the table again")
    lt.add_argument("--data-root", help="folder holding <Name>/raw/ of Planetoid data")
    lt.add_argument(
        "--device",
        default="cpu",
        help="where torch runs the models: cpu (default), auto, cuda, cuda:N",
    )


def _output_parsers(sub: Any) -> None:
    ex = sub.add_parser(
        "export", help="train a trial's architecture and write it (safetensors, JSON, ONNX)"
    )
    _add_name(ex)
    which = ex.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, metavar="N", help="trial number to export")
    which.add_argument(
        "--best", action="store_true", help="export the best COMPLETE trial (the default)"
    )
    ex.add_argument(
        "--out",
        help="new or empty folder to write the model into (default: <name>-model, or "
        "<name>-model-2, ... when that is taken)",
    )
    ex.add_argument("--data-root", help="folder holding <Name>/raw/ of Planetoid data")
    ex.add_argument(
        "--download", action="store_true", help="download missing Planetoid files (internet)"
    )
    ex.add_argument(
        "--task",
        help="benchmark experiments only: data to train on instead of the benchmark's, e.g. "
        "image:folder:DIR for a nas-bench-201 cell (as for search --task)",
    )
    ex.add_argument(
        "--epochs",
        type=_positive_int,
        help="train this many epochs instead of the search's (default: its full fidelity)",
    )
    ex.add_argument(
        "--retrain",
        action="store_true",
        help="train again even when the search kept the trial's weights (default: use them)",
    )
    _add_db(ex)

    cp = sub.add_parser(
        "compress",
        help="prune a trained trial (magnitude, imp, random); each sparsity is stored as a trial",
    )
    _add_name(cp)
    pick = cp.add_mutually_exclusive_group()
    pick.add_argument("--trial", type=int, metavar="N", help="trial number to compress")
    pick.add_argument(
        "--best", action="store_true", help="compress the best COMPLETE trial (the default)"
    )
    cp.add_argument(
        "--method",
        required=True,
        help="magnitude (one-shot, then fine-tuning), imp (iterative, with rewinding: lottery "
        "tickets), random (random masks, the baseline) or channels (structured: narrower "
        "widths, trained with distillation)",
    )
    cp.add_argument(
        "--sparsity",
        default="0.5,0.8,0.9,0.95",
        help="shares of the weights to remove (channels: of the FLOPs), comma-separated, each "
        "in (0, 1) (default 0.5,0.8,0.9,0.95)",
    )
    cp.add_argument(
        "--into",
        metavar="NAME",
        help="the compression experiment to store the trials in (default <name>-compressed)",
    )
    cp.add_argument(
        "--prune-ratio",
        type=float,
        default=0.5,
        help="imp: share of the remaining weights each round removes (default 0.5)",
    )
    cp.add_argument(
        "--rewind-epoch",
        type=int,
        metavar="E",
        help="imp and random train from the weights of this epoch (default 5%% of the epochs)",
    )
    cp.add_argument("--data-root", help="folder holding <Name>/raw/ of Planetoid data")
    cp.add_argument(
        "--download", action="store_true", help="download missing Planetoid files (internet)"
    )
    cp.add_argument(
        "--task",
        help="benchmark experiments only: data to train on (as for export --task)",
    )
    _add_db(cp)

    rp = sub.add_parser("report", help="write a self-contained HTML report of an experiment")
    _add_name(rp)
    rp.add_argument(
        "--out",
        help="HTML file to write, e.g. report.html (default: <name>-report.html, or "
        "<name>-report-2.html, ... when that is taken)",
    )
    rp.add_argument(
        "--top",
        type=_positive_int,
        default=10,
        metavar="N",
        help="best architectures to tabulate and draw (default 10)",
    )
    _add_db(rp)

    sm = sub.add_parser(
        "similar",
        help="the known tasks and architectures most like a search's (earlier searches in "
        "stores, NAS-Bench-Graph's tables)",
    )
    _add_name(sm)
    probe = sm.add_mutually_exclusive_group()
    probe.add_argument(
        "--task",
        help="a new task instead of a stored search: its probes (the known tasks' best "
        "architectures) are evaluated on it first, as a transfer search named --name "
        "(default similar-<task>), then compared",
    )
    probe.add_argument("--benchmark", help="as --task, for a benchmark table")
    sm.add_argument(
        "--probes",
        type=_positive_int,
        default=5,
        metavar="N",
        help="with --task/--benchmark: architectures evaluated to place the task (default 5)",
    )
    sm.add_argument("--data-root", help="with --task: folder holding <Name>/raw/ (Planetoid)")
    sm.add_argument(
        "--knowledge",
        action="append",
        default=[],
        metavar="DB_OR_URL",
        help="a store of earlier searches to compare with, read only (repeatable; default: "
        "the search's own store)",
    )
    sm.add_argument(
        "--no-tables", action="store_true", help="leave NAS-Bench-Graph's nine tables out"
    )
    sm.add_argument(
        "--top",
        type=_positive_int,
        default=10,
        metavar="N",
        help="nearest known architectures to list (default 10)",
    )
    sm.add_argument(
        "--encoding",
        choices=("auto", "universal"),
        default="auto",
        help="distance on the space's own encoding (auto) or on the built model's "
        "computation graph (universal: a small model built per known architecture, for the "
        "500 nearest by the space's encoding)",
    )
    _add_db(sm)

    ls = sub.add_parser(
        "list",
        help="list spaces, strategies, benchmarks, task kinds, executors, proxies or stored "
        "experiments",
    )
    ls.add_argument(
        "what",
        nargs="?",
        choices=[*_REGISTRIES, "proxies", "experiments"],
        help="what to list (default: spaces, strategies, benchmarks, tasks, executors and proxies)",
    )
    _add_db(ls)


# -- commands --------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 4) -> str:
    """``-`` for a missing value, whole counts (params, FLOPs) without decimals."""
    if value is None or value != value:
        return "-"
    if float(value).is_integer() and abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def _fmt_score(value: float | None) -> str:
    """A proxy score in at most 4 significant digits (they span from 1e-6 to 1e12); counts
    (params) below a million whole."""
    if value is None or value != value:
        return "-"
    if float(value).is_integer() and abs(value) < 1e6:
        return f"{value:.0f}"
    return f"{value:.4g}"


def _search_config(args: argparse.Namespace) -> SearchConfig:
    """The search the flags describe: every keyword of the config that a flag sets, the model
    and training overrides, and the task options."""
    settings = {
        keyword: getattr(args, keyword)
        for keyword in SearchConfig.keywords()
        if getattr(args, keyword, None) is not None
    }
    settings["options"] = dict(args.options)
    if args.knowledge:
        if getattr(args, "strategy", None) != "transfer":
            raise ConfigError(
                "--knowledge applies to --strategy transfer (the strategy that learns from "
                "earlier searches)"
            )
        if "knowledge" in settings["options"]:
            raise ConfigError("give the knowledge sources once: --knowledge or -o knowledge=")
        settings["options"]["knowledge"] = list(args.knowledge)
    settings["training"] = {
        dest: getattr(args, dest) for dest in args.override_flags if getattr(args, dest) is not None
    }
    settings["task_options"] = {
        **{
            dest: getattr(args, dest)
            for dest in args.task_option_flags
            if getattr(args, dest) not in (None, False)
        },
        **dict(args.more_task_options),
    }
    return SearchConfig.from_settings(**settings)


def _cmd_search(args: argparse.Namespace) -> int:
    # every name and value is checked before anything is drawn or opened
    settings = api.plan(_search_config(args))
    result = _run_with_progress(settings, args)
    _print_search(settings, result)
    failed = None if result.best is not None else _all_failed(settings.name, result.db)
    if failed:
        err.print(f"[bold red]error:[/] {_line(failed)}")
        return EXIT_ERROR
    return EXIT_OK


def _all_failed(name: str, db: str) -> str | None:
    """Why no trial of the experiment succeeded, when all of them failed (else ``None``)."""
    stored = api.trials(name, db=db)
    if not stored or any(t.status is not Status.FAILED for t in stored):
        return None
    reasons = Counter(
        ((t.error or "no reason given").strip().splitlines() or [""])[0][:300] for t in stored
    )
    reason, count = reasons.most_common(1)[0]
    return (
        f"all {len(stored)} trials of {name!r} failed; the commonest reason "
        f"({count} of {len(stored)}): {reason}"
    )


class _EpochsColumn(ProgressColumn):
    """The running trials' epochs, read from the executor at every refresh of the bar."""

    def __init__(self) -> None:
        super().__init__()
        self.executor: Executor | None = None

    def render(self, task: Any) -> Text:
        executor = self.executor
        running = executor.epochs() if executor is not None else []
        return Text(terminal.epochs_text(running), style="dim")


def _run_with_progress(settings: api.SearchPlan, args: argparse.Namespace) -> api.SearchResult:
    """The search, drawing a progress bar on a terminal and writing one plain line per finished
    trial elsewhere (a log, CI); neither with ``--no-progress``."""
    if args.no_progress:
        return settings.run(db=args.db, on_note=_note)
    if not err.is_terminal:
        return settings.run(
            db=args.db, callback=_trial_line(settings), on_phase=_phase_line, on_note=_note
        )
    budget = settings.budget
    total = budget.amount
    epochs = _EpochsColumn()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if budget.unit is not BudgetUnit.SECONDS else TextColumn(""),
        TextColumn("{task.fields[unit]}"),
        TextColumn("best [cyan]{task.fields[best]}"),
        epochs,
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task(escape(settings.name), total=total, unit=budget.unit.value, best="-")

        def on_progress(p: SearchProgress) -> None:
            bar.update(task, completed=min(terminal.spent(p), total), best=_fmt(p.best_value))

        def on_phase(p: PhaseProgress) -> None:
            bar.update(
                task,
                description=escape(f"{settings.name}: supernet {p.kind} {p.step}/{p.total}"),
            )
            if p.step == p.total:
                bar.update(task, description=escape(settings.name))

        def on_note(text: str) -> None:
            bar.console.print(text, markup=False)

        def on_executor(executor: Executor) -> None:
            epochs.executor = executor

        return settings.run(
            db=args.db,
            callback=on_progress,
            on_phase=on_phase,
            on_note=on_note,
            on_executor=on_executor,
        )


def _trial_line(settings: api.SearchPlan) -> Callable[[SearchProgress], None]:
    """The progress callback for output that is not a terminal: one line per finished trial."""

    def on_progress(p: SearchProgress) -> None:
        err.print(terminal.trial_line(settings.name, p), markup=False)

    return on_progress


def _note(text: str) -> None:
    """What the strategy says of its start (e.g. the knowledge a transfer search found)."""
    err.print(text, markup=False)


def _phase_line(p: PhaseProgress) -> None:
    """One line per supernet epoch or generation (output that is not a terminal)."""
    err.print(f"supernet {terminal.printable(p.kind)} {p.step}/{p.total}", markup=False)


def _print_search(settings: api.SearchPlan, result: api.SearchResult) -> None:
    name, summary = settings.name, result.summary
    if summary.resumed_trials:
        out.print(f"resumed [bold]{escape(name)}[/]: {summary.resumed_trials} stored trials kept")
    out.print(
        f"{summary.new_trials} new trials, {summary.archs} distinct architectures, "
        f"{summary.duplicates} duplicate proposals answered from the store; "
        f"stopped: {summary.stop_reason}"
    )
    phase = getattr(settings.strategy, "summary", None)
    if phase:
        _print_phase(phase)
    if summary.retried or summary.late_dropped:
        out.print(
            f"{summary.retried} trials lost with their worker were retried; "
            f"{summary.late_dropped} late results of trials taken over elsewhere were dropped"
        )
    if summary.skipped_infeasible:
        out.print(
            f"{summary.skipped_infeasible} proposals skipped before evaluation: they violate "
            f"{escape(', '.join(map(str, settings.constraints)))}"
        )
    if settings.constraints and result.best is None:
        err.print(
            "[bold yellow]warning:[/] no trial meets the constraints "
            f"{escape(', '.join(map(str, settings.constraints)))} yet"
        )
    if len(settings.objectives) > 1:
        front = api.pareto(name, db=result.db)
        out.print(
            f"Pareto front of {escape(' vs '.join(map(str, settings.objectives)))}: "
            f"{len(front.front)} architectures"
        )
        hint = f"nasforge pareto --name {shlex.quote(name)} --db {shlex.quote(str(result.db))}"
        out.print(f"next: {escape(hint)}")
    else:
        _print_best(result.best)
    db, quoted = escape(str(result.db)), escape(name)
    out.print(f"results stored in [bold]{db}[/] as experiment [bold]{quoted}[/]")
    hint = f"nasforge trials --name {shlex.quote(name)} --db {shlex.quote(str(result.db))}"
    out.print(f"next: {escape(hint)}")


def _print_phase(phase: Mapping[str, Any]) -> None:
    """The supernet phase of a one-shot search: its length and what it derived."""
    out.print(
        f"supernet phase ({escape(str(phase['method']))}): {phase['epochs']} epochs in "
        f"{phase['seconds']:.1f} s ({escape(str(phase['stopped']))})"
    )
    for arch, free in zip(phase["derived"], phase["free"], strict=True):
        shown = Architecture.from_dict(arch)
        out.print(f"  derived: {escape(str(shown))}; parameter-free ops (skip/none): {free:.0%}")


def _print_best(best: TrialRecord | None) -> None:
    if best is None:
        out.print("no completed trial yet")
        return
    out.print(f"best architecture (trial {best.number}): [bold]{escape(str(best.arch))}[/]")
    out.print(f"  canonical key: {escape(best.key)}")
    metrics = {**best.metrics, **best.test_metrics, **best.costs}
    out.print(escape("  " + ", ".join(f"{k}={_fmt(v)}" for k, v in metrics.items())))
    if best.device:
        out.print(escape(f"  trained on {best.device} ({best.device_name or 'unnamed'})"))


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None`` (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _dumps(value: Any) -> str:
    """Strict JSON: a missing or non-finite number is ``null``, never a bare ``NaN``."""
    return json.dumps(_finite(value), allow_nan=False)


def _trial_json(t: TrialRecord) -> dict[str, Any]:
    return {
        "number": t.number,
        "status": t.status.value,
        "stale": t.lost,
        "attempt": t.attempt,
        "arch": t.arch.to_dict(),
        "key": t.key,
        "metrics": dict(t.metrics),
        "test_metrics": dict(t.test_metrics),
        "costs": dict(t.costs),
        "error": t.error,
        "wall_time": t.wall_time,
        "device": t.device,
        "device_name": t.device_name,
    }


def _cmd_trials(args: argparse.Namespace) -> int:
    if args.top is not None:
        rows = api.top(args.name, args.top, db=args.db)
    else:
        rows = api.trials(args.name, db=args.db)
    if args.status:
        rows = [t for t in rows if t.status.value == args.status]
    if args.json:
        for t in rows:
            out.print_json(_dumps(_trial_json(t)), indent=None)
        return EXIT_OK
    compressed = compression_of(api.experiment(args.name, db=args.db)) is not None
    what = "compression" if compressed else "architecture"
    table = Table(title=f"{escape(args.name)}: {len(rows)} trials")
    for col in ("#", "status", what, "val", "test", "latency ms", "params"):
        left = col in ("status", what)
        table.add_column(col, justify="left" if left else "right", overflow="fold")
    for t in rows:
        val = next(iter(t.metrics.values()), None)
        test = next(iter(t.test_metrics.values()), None)
        step = step_of_key(t.key) if compressed else None
        shown = str(t.arch) if step is None else f"{step[0]} {step[1]:.1%}"
        table.add_row(
            str(t.number),
            escape(f"{t.status.value}: {t.error}") if t.error else t.status.value,
            escape(shown),
            _fmt(val),
            _fmt(test),
            _fmt(t.costs.get("latency_ms"), 3),
            f"{t.costs['params']:.0f}" if "params" in t.costs else "-",
        )
    out.print(table)
    return EXIT_OK


def _cmd_best(args: argparse.Namespace) -> int:
    best = api.best(args.name, db=args.db)
    if args.json:
        out.print_json(_dumps(_trial_json(best) if best else None))
        return EXIT_OK
    _print_best(best)
    return EXIT_OK if best is not None else EXIT_ERROR


def _cmd_doctor(args: argparse.Namespace) -> int:
    check = api.check_store(args.db)
    out.print(
        f"store {escape(check.target)}: file check {escape(check.integrity)}; "
        f"{check.experiments} experiments, {check.trials} trials"
    )
    for damage in check.damaged:
        out.print(f"damaged: {escape(str(damage))}")
    if check.ok:
        out.print("no damage found")
        return EXIT_OK
    if check.damaged:
        out.print(
            f"{len(check.damaged)} damaged {'row' if len(check.damaged) == 1 else 'rows'}: "
            "every reader skips them and nothing rewrites them; the rest of the store works"
        )
    return EXIT_ERROR


_REGISTRIES: dict[str, Registry[Any]] = {
    "spaces": SPACES,
    "strategies": STRATEGIES,
    "benchmarks": BENCHMARKS,
    "tasks": TASKS,
    "executors": EXECUTORS,
}


def _cmd_list(args: argparse.Namespace) -> int:
    groups = [args.what] if args.what else [*_REGISTRIES, "proxies"]
    for group in groups:
        if group == "experiments":
            _list_experiments(args.db)
            continue
        if group == "proxies":
            entries = dict(PROXY_SUMMARIES)
        else:
            registry = _REGISTRIES[group]
            entries = {name: registry.summary(name) for name in registry.names()}
        table = Table(title=group)
        table.add_column("name", overflow="fold")
        table.add_column("description", overflow="fold")
        for name, summary in entries.items():
            table.add_row(escape(name), escape(summary))
        out.print(table)
    return EXIT_OK


def _list_experiments(db: str | None) -> None:
    table = Table(title="experiments")
    for col in ("name", "space", "strategy", "seed", "source"):
        table.add_column(col, overflow="fold")
    for e in api.list_experiments(db):
        stored = e.search
        table.add_row(
            *map(escape, (e.name, stored.space, stored.strategy, str(stored.seed))),
            escape(stored.source_name()),
        )
    out.print(table)


def _cmd_proxies(args: argparse.Namespace) -> int:
    from nasforge.evaluators.proxies import rank_sample  # imports torch: only when used
    from nasforge.proxies import check_proxies

    names = tuple(args.proxy or PROXIES)
    check_proxies(names)
    rows = rank_sample(
        args.task,
        args.space,
        n=args.n,
        proxies=names,
        seed=args.seed,
        data_root=args.data_root,
        device=args.device,
    )
    if args.json:
        for row in rows:
            record = {
                "rank": row.rank,
                "arch": row.arch.to_dict(),
                "key": row.key,
                "scores": dict(row.scores),
                "costs": dict(row.costs),
                "seconds": row.seconds,
                "reason": row.reason,
            }
            out.print_json(_dumps(record), indent=None)
        return EXIT_OK
    table = Table(title=f"{len(rows)} architectures of {escape(args.task)} ranked by {names[0]}")
    table.add_column("rank", justify="right", overflow="fold")
    table.add_column("architecture", overflow="fold")
    for name in names:
        table.add_column(name, justify="right", overflow="fold")  # wrapped, never cut
    for row in rows[: args.top]:
        values = [_fmt_score(row.scores.get(n)) for n in names]
        table.add_row(str(row.rank), escape(str(row.arch)), *values)
    out.print(table)
    failed = [r for r in rows if r.reason]
    if failed:
        out.print(f"{len(failed)} architectures failed, e.g.: {escape(str(failed[0].reason))}")
    return EXIT_OK


def _cmd_pareto(args: argparse.Namespace) -> int:
    reference = dict(args.reference)
    result = api.pareto(args.name, db=args.db, objectives=args.objective, reference=reference)
    names = [o.metric for o in result.objectives]
    if args.json:
        payload = {
            "objectives": [str(o) for o in result.objectives],
            "reference": dict(zip(names, result.reference, strict=True)),
            "hypervolume": result.hypervolume,
            "front": [_trial_json(t) for t in result.front],
        }
        out.print_json(_dumps(payload))
        return EXIT_OK
    table = Table(title=f"Pareto front of {escape(args.name)} ({len(result.front)} trials)")
    table.add_column("#", justify="right", overflow="fold")
    for metric in names:
        table.add_column(metric, justify="right", overflow="fold")
    table.add_column("test", justify="right", overflow="fold")
    table.add_column("architecture (canonical key)", overflow="fold")
    for t in result.front:
        values = [o.value_in(t.metrics, t.costs) for o in result.objectives]
        test = next(iter(t.test_metrics.values()), None)
        table.add_row(str(t.number), *(_fmt(v) for v in values), _fmt(test), escape(t.key))
    out.print(table)
    ref = ", ".join(f"{n}={v:g}" for n, v in zip(names, result.reference, strict=True))
    out.print(f"hypervolume {result.hypervolume:.6g} against the reference point ({ref})")
    out.print(
        f"{result.feasible} complete trials, {result.infeasible} infeasible (violating a "
        "constraint) left out"
    )
    return EXIT_OK


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from nasforge.dashboard import serve

    server = serve(
        args.db,
        args.host,
        args.port,
        allow_remote=args.allow_remote,
        token=args.token,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )
    try:
        out.print(
            f"dashboard of [bold]{escape(server.store_target)}[/] at {escape(server.url)} "
            "(Ctrl-C stops)"
        )
        if server.host in ("0.0.0.0", "::"):
            scheme = server.url.partition(":")[0]
            out.print(f"other machines: {scheme}://<this machine's name or address>:{server.port}/")
        if server.token is not None and args.token is None:
            out.print(f"token (shown once): {server.token}")
            out.print(f"open {escape(server.url)}?token={server.token}")
        elif server.token is not None:
            out.print(f"every request needs your token: open {escape(server.url)}?token=<token>")
        server.wait()
    except KeyboardInterrupt:
        out.print("dashboard stopped")
    finally:
        server.shutdown()
    return EXIT_OK


def _cmd_latency(args: argparse.Namespace) -> int:
    from nasforge.latency import compare_latency, latency_sample  # imports torch: only here

    table, rows = latency_sample(
        args.task,
        args.space,
        n=args.n,
        backend=args.backend,
        seed=args.seed,
        repeats=args.repeats,
        data_root=args.data_root,
        refresh=args.refresh,
        device=args.device,
    )
    if table.measurements:
        source = f"measured {table.measurements} entries in {table.build_seconds:.1f} s"
    else:
        source = "read from the cache"
    where = table.key["device"]["device"]
    out.print(f"latency table ({args.backend}, {where}): {source}: {escape(str(table.path))}")
    view = Table(title=f"{len(rows)} architectures of {escape(args.task)}: latency in ms")
    view.add_column("architecture", overflow="fold")
    for column in ("predicted", "measured", "error %"):
        view.add_column(column, justify="right", overflow="fold")
    for row in rows:
        error = (row.predicted - row.measured) / row.measured * 100
        view.add_row(
            escape(str(row.arch)), _fmt(row.predicted, 3), _fmt(row.measured, 3), f"{error:+.1f}"
        )
    out.print(view)
    if len(rows) >= 2:
        c = compare_latency([r.predicted for r in rows], [r.measured for r in rows])
        out.print(
            f"MAPE {c.mape:.1f}%, median APE {c.median_ape:.1f}%, "
            f"Spearman {c.spearman:.3f}, Kendall tau {c.kendall:.3f}"
        )
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from nasforge.exporting.exporter import RETRAINED, StoredWeightsWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StoredWeightsWarning)
        folder = api.export(
            args.name,
            out=args.out,
            trial=args.trial,
            db=args.db,
            data_root=args.data_root,
            download=args.download,
            task=args.task,
            epochs=args.epochs,
            retrain=args.retrain,
        )
    for w in caught:
        if issubclass(w.category, StoredWeightsWarning):
            err.print(f"warning: {escape(str(w.message))}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    meta = json.loads((folder / "nasforge.json").read_text(encoding="utf-8"))
    run = meta["export_metrics"]
    scores = ", ".join(f"{k} {_fmt(v)}" for k, v in run.items() if k.startswith(("val_", "test_")))
    out.print(
        f"exported trial {meta['trial']} of {escape(args.name)} "
        f"({escape(str(meta['canonical_key']))}) to {escape(str(folder))}"
    )
    source = meta.get("weights_source", RETRAINED)
    if source == RETRAINED:
        out.print(
            f"trained {run['epochs_run']} of {run['epochs']} epochs (best epoch "
            f"{run['best_epoch']}, seed {run['seed']}): {scores}"
        )
    elif meta.get("compression"):
        sparsity = meta["compression"].get("sparsity")
        shown = "-" if sparsity is None else f"{sparsity:.1%}"
        out.print(f"weights: {escape(str(source))} (sparsity {shown}): {scores}")
    else:
        out.print(f"weights: {escape(str(source))}, not retrained (--retrain trains): {scores}")
    onnx = meta["onnx"]
    files = ", ".join(str(f) for f in meta["files"].values())
    out.print(f"files: {escape(files)}")
    if onnx["message"]:
        out.print(escape(str(onnx["message"])))
    out.print(escape(f"load it with: nasforge.load({str(folder)!r})"))
    return EXIT_OK


def _cmd_compress(args: argparse.Namespace) -> int:
    from nasforge.compression.run import CompressedTrial

    def show(row: CompressedTrial) -> None:
        what = "dense" if row.method == "dense" else f"{row.method} {row.sparsity:.1%}"
        if row.status is not Status.COMPLETE:
            out.print(f"trial {row.number}: {what}: {row.status.value}: {_line(str(row.error))}")
            return
        done = "stored before" if row.stored_before else "done"
        size = f"{row.nonzero_params:.0f} of {row.params:.0f} parameters non-zero"
        if row.widths:
            shown = ", ".join(f"{k} {v}" for k, v in row.widths.items())
            size = f"widths {shown}: {row.params:.0f} parameters, {row.flops:.0f} FLOPs"
        note = f"; {row.error}" if row.error else ""
        out.print(
            f"trial {row.number}: {what}: val {_fmt(row.val)}, test {_fmt(row.test)}, {size}, "
            f"latency {row.latency_ms:.3f} ms ({done}{note})"
        )

    run = api.compress(
        args.name,
        method=args.method,
        sparsity=args.sparsity,
        trial=args.trial,
        db=args.db,
        into=args.into,
        data_root=args.data_root,
        download=args.download,
        task=args.task,
        prune_ratio=args.prune_ratio,
        rewind_epoch=args.rewind_epoch,
        progress=show,
    )
    table = Table(
        title=f"{escape(run.experiment)}: trial {run.source_trial} of {escape(run.source)}, "
        f"{escape(run.method)}"
    )
    cols = ("#", "method", "sparsity", f"val {run.metric}", f"test {run.metric}", "non-zero")
    for col in (*cols, "latency ms"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for row in run.trials:
        if row.method != "dense" and not row.level:
            continue  # an intermediate imp round
        table.add_row(
            str(row.number),
            row.method if row.status is Status.COMPLETE else f"{row.method} ({row.status.value})",
            f"{row.sparsity:.1%}",
            _fmt(row.val),
            _fmt(row.test),
            _fmt(row.nonzero_params),
            _fmt(row.latency_ms, 3),
        )
    out.print(table)
    out.print(
        f"stored in experiment {escape(run.experiment)}: nasforge trials --name "
        f"{escape(run.experiment)}; export one with nasforge export --name "
        f"{escape(run.experiment)} --trial N"
    )
    failed = [r for r in run.trials if r.status is not Status.COMPLETE]
    return EXIT_ERROR if failed else EXIT_OK


def _cmd_similar(args: argparse.Namespace) -> int:
    if args.task or args.benchmark:
        _probe_new_task(args)
    found = api.similar(
        args.name,
        db=args.db,
        knowledge=args.knowledge,
        tables=not args.no_tables,
        top=args.top,
        encoding=args.encoding,
    )
    for note in found.notes:
        err.print(f"note: {_line(note)}")
    best = found.best
    out.print(
        f"[bold]{escape(found.name)}[/] (task {escape(found.task or 'not recorded')}): "
        f"{found.evaluated} architectures evaluated; best trial {best.number}: "
        f"{escape(str(best.arch))}"
    )
    if not found.tasks:
        out.print("no known task of this space: nothing to compare with")
        return EXIT_OK
    tasks = Table(
        title="known tasks, most alike first: Spearman's rho of the two tasks' scores on the "
        "architectures both evaluated"
    )
    for col in ("task", "rho", "shared", "weight", "its best architecture", "its best"):
        tasks.add_column(
            col, justify="left" if col in ("task", "its best architecture") else "right"
        )
    for t in found.tasks:
        tasks.add_row(
            escape(t.label),
            f"{t.rho:+.2f}",
            str(t.shared),
            f"{t.weight:.2f}",
            escape(str(t.best)),
            _fmt(t.best_score),
        )
    out.print(tasks)
    near = Table(
        title=f"known architectures nearest to trial {best.number} "
        f"({'universal' if args.encoding == 'universal' else 'the space'}'s encoding)"
    )
    for col in ("distance", "architecture", "measured on (score, top %)"):
        near.add_column(col, justify="right" if col == "distance" else "left")
    for n in found.neighbours:
        measured = "; ".join(
            f"{m.label} {_fmt(m.score)} (top {100 * (1 - m.percentile):.1f}%)" for m in n.measured
        )
        near.add_row(f"{n.distance:.3f}", escape(str(n.arch)), escape(measured))
    out.print(near)
    sources = sorted({t.source for t in found.tasks})
    out.print(f"knowledge read from: {escape('; '.join(sources))}")
    return EXIT_OK


def _probe_new_task(args: argparse.Namespace) -> None:
    """Evaluate the probes of a transfer search on a new task (``similar --task``): stored as
    the experiment ``args.name``, so a second call resumes instead of training again."""
    spec = args.task or args.benchmark
    if args.name is None:
        stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in spec)
        args.name = f"similar-{stem}"
    options: dict[str, Any] = {"n_probes": max(args.probes, 2), "tables": not args.no_tables}
    if args.knowledge:
        options["knowledge"] = list(args.knowledge)
    source = {"task": args.task, "data_root": args.data_root} if args.task else {}
    settings = api.plan(
        benchmark=args.benchmark,
        strategy="transfer",
        budget=args.probes,
        name=args.name,
        options=options,
        **{k: v for k, v in source.items() if v is not None},
    )
    settings.run(db=args.db, callback=_trial_line(settings), on_note=_note)


def _cmd_report(args: argparse.Namespace) -> int:
    path = api.report(args.name, args.out, db=args.db, top=args.top)
    out.print(f"report of [bold]{escape(args.name)}[/] written to [bold]{escape(str(path))}[/]")
    return EXIT_OK


_COMMANDS = {
    "search": _cmd_search,
    "trials": _cmd_trials,
    "best": _cmd_best,
    "doctor": _cmd_doctor,
    "list": _cmd_list,
    "proxies": _cmd_proxies,
    "latency": _cmd_latency,
    "pareto": _cmd_pareto,
    "dashboard": _cmd_dashboard,
    "export": _cmd_export,
    "compress": _cmd_compress,
    "report": _cmd_report,
    "similar": _cmd_similar,
}


_NAMED = ("trials", "best", "pareto", "export", "compress", "report", "similar")
"""Commands that read one experiment: ``--name`` defaults to the store's only one."""


def _fill_defaults(args: argparse.Namespace) -> None:
    """The experiment of a store that holds one, and the output paths derived from its name.

    Raises:
        ConfigError: If the store holds no experiment, or several (listing their names).
    """
    if args.command not in _NAMED:
        return
    if args.command == "similar" and (args.task or args.benchmark):
        return  # the probes' experiment is named after the task
    if args.name is None:
        args.name = _only_experiment(args.db)
    if args.command in ("export", "report") and args.out is None:
        stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in args.name).strip(".")
        if args.command == "export":
            args.out = str(_untaken(f"{stem or 'experiment'}-model", ""))
        else:
            args.out = str(_untaken(f"{stem or 'experiment'}-report", ".html"))


def _only_experiment(db: str | None) -> str:
    names = [e.name for e in api.list_experiments(db)]
    where = db or f"$NASFORGE_DB or {DEFAULT_DB}"
    if len(names) == 1:
        err.print(f"note: experiment {_line(names[0])} (the only one in {_line(where)})")
        return names[0]
    if not names:
        raise ConfigError(f"the store {where} holds no experiment; run 'nasforge search' first")
    raise ConfigError(
        f"the store {where} holds {len(names)} experiments; pass --name with one of: "
        f"{', '.join(names)}"
    )


def _untaken(stem: str, suffix: str) -> Path:
    """``stem + suffix`` in the working folder, or ``stem-2 + suffix``, ... : the first that
    is absent or an empty folder (nothing is ever overwritten)."""
    path, n = Path(f"{stem}{suffix}"), 1
    while path.exists() and not (path.is_dir() and not any(path.iterdir())):
        n += 1
        path = Path(f"{stem}-{n}{suffix}")
    return path


def _load_plugins() -> None:
    """Load the plugins before the parser lists their names; one that cannot be loaded is
    reported on one line and skipped."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginWarning)
        load_plugins()
    for w in caught:
        if issubclass(w.category, PluginWarning):
            err.print(f"[bold yellow]warning:[/] {escape(str(w.message))}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


_default_showwarning = warnings.showwarning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A damaged stored row is reported on one line as it is met; other warnings as usual."""
    if issubclass(category, DamagedRowWarning):
        err.print(f"[bold yellow]warning:[/] {_line(str(message))}")
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


class _Terminated(BaseException):
    """SIGTERM arrived: unwind as an interrupt does (not an Exception: nothing swallows it)."""


def _terminate(signum: int, frame: object) -> NoReturn:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nasforge`` command; returns the exit code.

    SIGTERM (``kill``, ``timeout``, a container or batch system stopping the job) stops a
    search as Ctrl-C does: the trials in flight are handed back to the store for a resume and
    the worker processes are stopped, before the exit.
    """
    _load_plugins()
    given = list(sys.argv[1:] if argv is None else argv)
    for arg in given:
        if "\x00" in arg:  # no path, name or value can hold one; the OS refuses them
            err.print(
                f"[bold red]error:[/] the argument '{_line(arg)}' holds a NUL character "
                "(\\x00), which no path, name or value may hold"
            )
            return EXIT_USAGE
    args = build_parser().parse_args(given)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        _fill_defaults(args)
        with warnings.catch_warnings():
            warnings.simplefilter("always", DamagedRowWarning)
            warnings.showwarning = _show_warning
            return _COMMANDS[args.command](args)
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {_line(str(exc))}")
        return EXIT_USAGE
    except NasforgeError as exc:
        err.print(f"[bold red]error:[/] {_line(str(exc))}")
        return EXIT_ERROR
    except (KeyboardInterrupt, _Terminated) as exc:
        what = "terminated" if isinstance(exc, _Terminated) else "interrupted"
        if args.command == "search":
            what += ": every finished trial is stored; run the same command to resume"
        err.print(what)
        return EXIT_TERMINATED if isinstance(exc, _Terminated) else EXIT_INTERRUPTED
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
