"""``--device``: the specs accepted, how each resolves (GPUs simulated by their count where
this machine has none), where results, stored trials and latency tables name the device."""

from __future__ import annotations

import json
import pickle
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from nasforge.errors import ConfigError
from nasforge.evaluators.proxies import ProxyEvaluator
from nasforge.evaluators.training import TrainingEvaluator
from nasforge.latency.device import device_fingerprint
from nasforge.spaces.base import SPACES
from nasforge.tasks.base import resolve_task
from nasforge.train import device as devices
from nasforge.train.device import (
    DEVICE_FORMS,
    check_device,
    cpu_model,
    resolve_device,
    to_device,
    trial_gpus,
)
from nasforge.train.trainer import TrainConfig

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")


@pytest.fixture
def gpus(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Resolve as if this machine had 3 GPUs (nothing is run on them)."""
    monkeypatch.setattr(devices, "_cuda_count", lambda: 3)
    devices._resolved.cache_clear()
    yield
    devices.assign_worker(None)
    devices._resolved.cache_clear()


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("auto", "auto"),
        ("cpu", "cpu"),
        (" CUDA ", "cuda"),
        ("cuda:0", "cuda:0"),
        ("cuda:12", "cuda:12"),
    ],
)
def test_accepted_specs_are_canonical(spec: str, canonical: str) -> None:
    assert check_device(spec) == canonical


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "cuda:x", "cuda:-1", "cuda0", "", "mps", 0, None])
def test_other_specs_are_refused_with_the_accepted_forms(spec: object) -> None:
    with pytest.raises(ConfigError, match="accepted: auto, cpu, cuda, cuda:N") as info:
        check_device(spec)
    assert "\n" not in str(info.value)
    assert DEVICE_FORMS == ("auto", "cpu", "cuda", "cuda:N")


def test_auto_and_cpu_are_the_cpu_without_a_gpu() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@NO_GPU
@pytest.mark.parametrize("spec", ["cuda", "cuda:1"])
def test_a_gpu_asked_for_where_there_is_none_is_refused(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"asks for a GPU but this PyTorch .*use --device cpu"):
        resolve_device(spec)


def test_with_gpus_each_worker_takes_its_own(gpus: None) -> None:
    assert resolve_device("auto") == torch.device("cuda", 0)
    devices.assign_worker(4)
    assert resolve_device("cuda") == torch.device("cuda", 1)  # 4 % 3
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert resolve_device("cuda:2") == torch.device("cuda", 2)  # named: every worker's
    with pytest.raises(ConfigError, match=r"no CUDA device 3 here; this machine has 3 \(cuda:0"):
        resolve_device("cuda:3")


def test_ray_trials_reserve_a_gpu_when_the_device_asks_for_one() -> None:
    assert trial_gpus("cpu", 4) == 0
    assert trial_gpus("auto", 0) == 0
    assert trial_gpus("auto", 2) == 1
    assert trial_gpus("cuda", 1) == 1
    with pytest.raises(ConfigError, match="the ray cluster has none"):
        trial_gpus("cuda", 0)
    with pytest.raises(ConfigError, match="gives each trial a GPU of its own; give --device cuda"):
        trial_gpus("cuda:1", 2)


def test_to_device_moves_tensors_and_keeps_the_rest() -> None:
    a, b = torch.ones(2), torch.zeros(1)
    moved = to_device((a, [b, 3]), torch.device("cpu"))
    assert moved[0] is a and moved[1][0] is b and moved[1][1] == 3


@pytest.fixture(scope="module")
def digits() -> object:
    return resolve_task("tabular:digits", seed=0).task


def test_training_results_name_their_device(digits: object) -> None:
    space = SPACES.create("mlp")
    evaluator = TrainingEvaluator(
        task=digits,
        space=space,
        train=TrainConfig(epochs=2),
        latency=False,
        device="CPU",  # type: ignore[arg-type]
    )
    assert evaluator.device == "cpu" and "device" not in str(evaluator.describe())
    assert pickle.loads(pickle.dumps(evaluator)).device == "cpu"
    result = evaluator.evaluate(space.sample(__import__("numpy").random.default_rng(0)))
    assert result.ok and result.device == "cpu" and result.device_name == cpu_model()
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        TrainingEvaluator(task=digits, space=space, device="gpu")  # type: ignore[arg-type]


def test_proxy_results_name_their_device(digits: object) -> None:
    space = SPACES.create("mlp")
    evaluator = ProxyEvaluator(task=digits, space=space, proxies=["synflow", "jacov"], device="cpu")  # type: ignore[arg-type]
    assert evaluator.batch.to(torch.device("cpu")) is evaluator.batch
    result = evaluator.evaluate(space.sample(__import__("numpy").random.default_rng(0)))
    assert result.ok and result.device == "cpu"


def test_the_latency_fingerprint_names_the_device() -> None:
    assert device_fingerprint()["device"] == "cpu"
    assert device_fingerprint("torch", "cpu") == device_fingerprint()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nasforge.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_each_stored_trial_names_its_device(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    done = _cli(
        "search", "--task", "tabular:digits", "--budget", "2", "--epochs", "2",
        "--device", "cpu", "--db", str(db), "--name", "run", "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"trained on cpu ({cpu_model()})" in done.stdout
    rows = sqlite3.connect(db).execute("SELECT device, device_name FROM nasforge_trials").fetchall()
    assert len(rows) == 2 and all(r == ("cpu", cpu_model()) for r in rows)
    listed = _cli("trials", "--name", "run", "--db", str(db), "--json")
    assert [json.loads(line)["device"] for line in listed.stdout.splitlines()] == ["cpu", "cpu"]
    page = tmp_path / "r.html"
    assert _cli("report", "--name", "run", "--db", str(db), "--out", str(page)).returncode == 0
    assert f"<dt>trained on</dt><dd><code>cpu</code> {cpu_model()} (2 trials)</dd>" in (
        page.read_text()
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--task", "tabular:digits", "--device", "gpu"], "unknown device 'gpu'; accepted: auto, "),
        (
            ["--benchmark", "nas-bench-graph:cora", "--device", "cuda"],
            "--device cuda applies to --task searches only",
        ),
        *(
            [(["--task", "tabular:digits", "--device", "cuda:0"], "asks for a GPU but")]
            if not torch.cuda.is_available()
            else []
        ),
    ],
)
def test_bad_devices_get_one_line_and_exit_2_with_nothing_written(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    db = tmp_path / "s.db"
    done = _cli("search", *flags, "--budget", "2", "--db", str(db), "--no-progress")
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not db.exists()


@pytest.mark.parametrize("command", ["proxies", "latency"])
def test_proxies_and_latency_refuse_a_bad_device_in_one_line(command: str) -> None:
    done = _cli(command, "--task", "image:digits", "-n", "2", "--device", "gpu")
    assert done.returncode == 2, done.stderr
    assert "unknown device 'gpu'; accepted: auto, cpu, cuda, cuda:N" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
