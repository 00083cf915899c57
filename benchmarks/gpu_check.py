"""GPU check: the same small searches trained on ``cuda`` and on ``cpu``, side by side.

For each task, one random search (same seed, so the same architectures in the same order)
runs with ``--device cuda`` and one with ``--device cpu``, through ``nasforge.search`` (worker
process, SQLite store, real training). Reported per task: the validation and test accuracy of
each device (mean over the trials), the largest difference of one architecture's validation
accuracy between the devices (dropout and rounding differ, so runs agree in distribution, not
bit for bit), the median training seconds per trial on each device and their ratio, the
measured inference latency, and the device names the store recorded. Zero-cost proxies are
checked too: the same sample ranked by ``synflow`` on each device (Spearman's rho of the two
rankings). Without a CUDA device the script says so and exits with status 1.

Example (on a machine with a GPU)::

    python benchmarks/gpu_check.py --data-root ../shared/datasets/planetoid
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from _report import header, machine_lines, markdown_table, publish
from nasforge import api
from nasforge.result import Status

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "gpu_check.md"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "planetoid"
EPOCHS = {"image:digits": 20, "tabular:digits": 50, "planetoid:Cora": 200, "synthetic": 100}


@dataclass(frozen=True, slots=True)
class Side:
    """One device's search of one task: the devices the store recorded, and per canonical
    key the trial's validation and test accuracy, seconds and latency."""

    names: tuple[str, ...]
    val: dict[str, float]
    test: dict[str, float]
    seconds: dict[str, float]
    latency: dict[str, float]

    def median(self, values: str, keys: Sequence[str]) -> float:
        """The median of ``values`` (``seconds`` or ``latency``) over ``keys``."""
        column: dict[str, float] = getattr(self, values)
        return statistics.median(column[k] for k in keys) if keys else float("nan")


def search(
    task: str, device: str, side: int, *, budget: int, epochs: int, seed: int, db: Path, root: str
) -> Side:
    result = api.search(
        task=task,
        strategy="random",
        budget=budget,
        seed=seed,
        epochs=epochs,
        device=device,
        data_root=root,
        name=f"{task}-{side}-{device}",
        db=db,
    )
    trials = [t for t in api.trials(result.name, db=db) if t.status is Status.COMPLETE]
    return Side(
        names=tuple(sorted({f"{t.device} ({t.device_name})" for t in trials})),
        val={t.key: t.metrics["val_acc"] for t in trials},
        test={t.key: t.test_metrics["test_acc"] for t in trials},
        seconds={t.key: t.wall_time or 0.0 for t in trials},
        latency={t.key: t.costs.get("latency_ms", float("nan")) for t in trials},
    )


def proxy_agreement(
    task: str, devices: Sequence[str], *, n: int, seed: int, root: str
) -> tuple[float, float, float]:
    """Spearman's rho of one sample's synflow ranks on the two devices, and each side's
    seconds."""
    from scipy.stats import spearmanr

    from nasforge.evaluators.proxies import rank_sample

    scores, seconds = [], []
    for device in devices:  # first the device checked, then the reference
        start = time.perf_counter()
        rows = rank_sample(
            task, n=n, proxies=("synflow",), seed=seed, data_root=root, device=device
        )
        seconds.append(time.perf_counter() - start)
        scores.append({row.key: row.scores.get("synflow", float("nan")) for row in rows})
    keys = sorted(set(scores[0]) & set(scores[1]))
    rho = spearmanr([scores[0][k] for k in keys], [scores[1][k] for k in keys]).statistic
    return float(rho), seconds[0], seconds[1]


def _mean(values: Sequence[float]) -> str:
    return f"{100 * statistics.fmean(values):.1f}" if values else "-"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="image:digits,tabular:digits,planetoid:Cora")
    parser.add_argument("--budget", type=int, default=3, help="architectures per search")
    parser.add_argument("--epochs", type=int, default=None, help="default: per task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--proxy-sample", type=int, default=20)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--devices",
        default="cuda,cpu",
        help="the two devices compared (default cuda,cpu; cpu,cpu checks this script itself)",
    )
    args = parser.parse_args(argv)
    devices = [d.strip() for d in args.devices.split(",")]
    if len(devices) != 2:
        parser.error("--devices takes two devices, e.g. cuda,cpu")
    if any(d.startswith("cuda") for d in devices) and not torch.cuda.is_available():
        print(
            f"gpu_check: no CUDA device here (torch {torch.__version__}, CUDA build "
            f"{torch.version.cuda}); run it on a machine with a GPU",
            file=sys.stderr,
        )
        return 1
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if "planetoid:Cora" in tasks and not (args.data_root / "Cora" / "raw").is_dir():
        tasks = ["synthetic" if t == "planetoid:Cora" else t for t in tasks]
    root = str(args.data_root)

    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    rows: list[list[object]] = []
    proxy_rows: list[list[object]] = []
    names: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "gpu.db"
        for task in tasks:
            epochs = args.epochs or EPOCHS.get(task, 20)
            gpu, cpu = (
                search(
                    task, d, i, budget=args.budget, epochs=epochs, seed=args.seed, db=db, root=root
                )
                for i, d in enumerate(devices)
            )
            names.update(gpu.names + cpu.names)
            shared = sorted(set(gpu.val) & set(cpu.val))
            diff = max((abs(gpu.val[k] - cpu.val[k]) for k in shared), default=float("nan"))
            sec_gpu, sec_cpu = gpu.median("seconds", shared), cpu.median("seconds", shared)
            lat_gpu, lat_cpu = gpu.median("latency", shared), cpu.median("latency", shared)
            rows.append(
                [
                    task,
                    epochs,
                    len(shared),
                    _mean([cpu.val[k] for k in shared]),
                    _mean([gpu.val[k] for k in shared]),
                    f"{100 * diff:.1f}",
                    _mean([cpu.test[k] for k in shared]),
                    _mean([gpu.test[k] for k in shared]),
                    f"{sec_cpu:.2f}",
                    f"{sec_gpu:.2f}",
                    f"{sec_cpu / sec_gpu:.1f}x" if sec_gpu > 0 else "-",
                    f"{lat_cpu:.3f}",
                    f"{lat_gpu:.3f}",
                ]
            )
            print(f"{task}: {rows[-1]}", flush=True)
            rho, proxy_gpu, proxy_cpu = proxy_agreement(
                task, devices, n=args.proxy_sample, seed=args.seed, root=root
            )
            proxy_rows.append(
                [task, args.proxy_sample, f"{rho:.3f}", f"{proxy_cpu:.1f}", f"{proxy_gpu:.1f}"]
            )
    wall = time.perf_counter() - t0

    lines = header(
        f"GPU check: the same searches trained on {devices[0]} and on {devices[1]}",
        started,
        wall,
        machine_lines(f"; torch threads {torch.get_num_threads()}; CUDA {torch.version.cuda}"),
    )
    a, b = devices
    lines += [
        f"- devices the store recorded: {'; '.join(sorted(names))}",
        "",
        f"Random search, seed {args.seed}, {args.budget} architectures per task (the same on "
        "both devices); accuracies in %, mean over the trials; seconds: median training wall "
        "time per trial (worker process, costs included; the median keeps the first "
        "trial's start-up, such as creating the CUDA context, out); latency: median "
        "measured inference ms of one forward pass (the whole graph, or one example).",
        "",
        *markdown_table(
            [
                "task",
                "epochs",
                "archs",
                f"val {b}",
                f"val {a}",
                "max Δval",
                f"test {b}",
                f"test {a}",
                f"s/trial {b}",
                f"s/trial {a}",
                f"speed-up of {a}",
                f"latency ms {b}",
                f"latency ms {a}",
            ],
            rows,
        ),
        "",
        "Zero-cost proxies: the same sample ranked by synflow on each device.",
        "",
        *markdown_table(["task", "sample", "Spearman rho", f"s {b}", f"s {a}"], proxy_rows),
        "",
    ]
    publish("\n".join(lines), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
