"""The Ray executor against a real Ray cluster on loopback (a head node and a worker node)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import psutil
import pytest

from nasforge import api
from nasforge.architecture import Architecture
from nasforge.errors import ConfigError, WorkersUnavailable
from nasforge.evaluators.base import Evaluator
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.execution import make_executor
from nasforge.experiment import Experiment
from nasforge.result import Status
from nasforge.store.sql import SqlStore, open_store

needs_ray = pytest.mark.skipif(
    find_spec("ray") is None, reason="Ray is not installed (pip install 'nasforge[ray]')"
)

REPO = Path(__file__).resolve().parents[2]
HEAD_CPUS, WORKER_CPUS = 2, 1
STORE_BYTES = 100 * 2**20  # the smallest object store Ray accepts is 75 MiB
START_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _arch(*ops: str) -> Architecture:
    return Architecture.create("gnn", links=[0, 1, 2, 3], ops=list(ops))


def _wait_for_line(log: Path, text: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(f"`ray start` did not report {text!r}:\n{log.read_text()[-3000:]}")


def _stop(procs: list[subprocess.Popen[bytes]], marker: str) -> None:
    """Stop the nodes this fixture started, by process id (never `ray stop`, which kills
    every Ray process of the user on the machine)."""
    for proc in reversed(procs):  # `ray start --block` stops its node's processes on SIGTERM
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for proc in procs:  # anything left in the nodes' process groups
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    for leftover in _processes_with(marker):  # daemons that left the group (by temp dir)
        leftover.kill()


def _processes_with(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in proc.info["cmdline"] or ()):
            found.append(proc)
    return found


@pytest.fixture(autouse=True, scope="module")
def _ray_env() -> Iterator[None]:
    """Token authentication with a fresh secret for every Ray here (the test cluster listens
    on all interfaces, see below), no usage reports, and nothing written to ~/.ray."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "token")
        patch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        patch.delenv("RAY_ADDRESS", raising=False)
        yield


@pytest.fixture(autouse=True)
def _disconnect_after_a_failure() -> Iterator[None]:
    """A test failing before its executor closed leaves the next one a fresh process state."""
    yield
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Address of a real two-node Ray cluster on 127.0.0.1 (2 + 1 CPUs), stopped afterwards.

    Its nodes have the repository root on PYTHONPATH so that workers import the test
    evaluators of ``tests/execution/ray_evaluators.py`` by name. Ray runs a multi-node
    cluster on the host's routable address (it replaces 127.0.0.1 by it) and then listens on
    all interfaces, hence the token authentication of ``_ray_env``.
    """
    ray_bin = Path(sys.executable).with_name("ray")
    temp = tmp_path_factory.mktemp("ray")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    env = {
        **os.environ,
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "1",  # nothing to drain: stop at once
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    common = ["--block", "--node-ip-address", "127.0.0.1", "--object-store-memory"]
    nodes = {
        "head": [
            "--head",
            "--port",
            str(port),
            "--num-cpus",
            str(HEAD_CPUS),
            "--include-dashboard=false",
            "--disable-usage-stats",
            "--temp-dir",
            str(temp),
        ],
        "worker": ["--address", address, "--num-cpus", str(WORKER_CPUS)],
    }
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    try:
        for name, options in nodes.items():  # together: the worker node waits for the head
            logs.append(temp.parent / f"{temp.name}-{name}.log")
            with logs[-1].open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [str(ray_bin), "start", *common, str(STORE_BYTES), *options],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                        start_new_session=True,  # its own process group, killed by id later
                    )
                )
        for log, proc in zip(logs, procs, strict=True):
            _wait_for_line(log, "Ray runtime started", proc)
        yield address
    finally:
        _stop(procs, str(temp))


def _benchmark_plan(name: str, budget: str = "16trials") -> api.SearchPlan:
    return api.plan(
        benchmark="nas-bench-graph:cora", strategy="random", budget=budget, seed=3, name=name
    )


def _experiment(
    plan: api.SearchPlan, store: SqlStore, evaluator: Evaluator | None = None
) -> Experiment:
    """The plan's experiment on ``store``, with ``evaluator`` instead of the plan's."""
    return Experiment(
        name=plan.name,
        space=plan.space,
        evaluator=evaluator or plan.evaluator,
        strategy=plan.strategy,
        store=store,
        objective=plan.objective,
        source=plan.source,
    )


@needs_ray
def test_sixteen_trials_on_the_cluster_complete_and_are_stored(
    ray_cluster: str, tmp_path: Path
) -> None:
    from nasforge.execution.ray import RayExecutor

    plan = _benchmark_plan("ray16")
    with SqlStore(tmp_path / "ray.db") as store:
        experiment = _experiment(plan, store)
        with RayExecutor(plan.evaluator, address=ray_cluster) as executor:
            assert executor.capacity == HEAD_CPUS + WORKER_CPUS  # both nodes joined
            summary = experiment.run(plan.budget, executor=executor)
    assert summary.new_trials == 16

    store = open_store(tmp_path / "ray.db", create=False)  # what is durably on disk
    try:
        stored = store.trials(store.get_experiment("ray16").id)
    finally:
        store.close()
    assert len(stored) == 16 and all(t.status is Status.COMPLETE for t in stored)
    table = NasBenchGraphEvaluator(dataset="cora")
    for trial in stored:  # the remote results are the table's values
        local = table.evaluate(trial.arch)
        assert trial.metrics["val_acc"] == local.metrics["val_acc"]
        assert trial.test_metrics["test_acc"] == local.test_metrics["test_acc"]

    # the same search in this process proposes the same architectures: one code path
    inline = _benchmark_plan("inline16").run(db=tmp_path / "inline.db")
    assert inline.summary.new_trials == 16
    assert sorted(t.key for t in stored) == sorted(
        t.key for t in api.trials("inline16", db=tmp_path / "inline.db")
    )


@needs_ray
@pytest.mark.slow
def test_training_trials_run_on_the_cluster(ray_cluster: str, tmp_path: Path) -> None:
    from nasforge.execution.ray import RayExecutor

    plan = api.plan(
        task="tabular:breast_cancer", strategy="random", budget=4, seed=0, name="bc", epochs=2
    )
    with (
        SqlStore(tmp_path / "bc.db") as store,
        RayExecutor(plan.evaluator, address=ray_cluster, workers=2) as executor,
    ):
        experiment = _experiment(plan, store)
        summary = experiment.run(plan.budget, executor=executor)
        stored = store.trials(experiment.record.id)
    assert summary.new_trials == 4 and len(stored) == 4
    for trial in stored:
        assert trial.status is Status.COMPLETE, trial.error
        assert 0.5 < trial.metrics["val_acc"] <= 1 and trial.costs["params"] > 0
        assert trial.fidelity == 2 and 1 <= len(trial.curve) <= 2


@needs_ray
def test_an_evaluator_that_raises_gives_failed_trials_with_the_reason(
    ray_cluster: str, tmp_path: Path
) -> None:
    from tests.execution.ray_evaluators import RaisingEvaluator

    from nasforge.execution.ray import RayExecutor

    plan = _benchmark_plan("raising")
    evaluator = RaisingEvaluator(dataset="cora")
    with (
        SqlStore(tmp_path / "ray.db") as store,
        RayExecutor(evaluator, address=ray_cluster) as executor,
    ):
        experiment = _experiment(plan, store, evaluator)
        summary = experiment.run(plan.budget, executor=executor)
        stored = store.trials(experiment.record.id)
    assert summary.new_trials == len(stored) == 16
    failed = [t for t in stored if t.status is Status.FAILED]
    assert failed and all("gat" in t.arch["ops"] for t in failed)  # type: ignore[operator]
    assert all(t.error == "RuntimeError: simulated out-of-memory in a GAT layer" for t in failed)
    assert all(t.status is Status.COMPLETE for t in stored if "gat" not in t.arch["ops"])  # type: ignore[operator]


@needs_ray
def test_an_evaluator_workers_cannot_load_stops_the_search_and_loses_nothing(
    ray_cluster: str, tmp_path: Path
) -> None:
    from tests.execution.process_evaluators import UnstartableEvaluator

    from nasforge.execution.ray import RayExecutor

    plan = _benchmark_plan("unloadable")
    evaluator = UnstartableEvaluator()  # pickles here, cannot be loaded on a worker
    with (
        SqlStore(tmp_path / "ray.db") as store,
        RayExecutor(evaluator, address=ray_cluster) as executor,
    ):
        with pytest.raises(WorkersUnavailable, match="could not be loaded on the Ray worker"):
            _experiment(plan, store, evaluator).run(plan.budget, executor=executor)
        stored = store.trials(1)
        assert stored and all(t.lost and t.attempt == 0 for t in stored), stored
        assert all("cannot be loaded in another process" in (t.error or "") for t in stored)
        assert all("Traceback" not in (t.error or "") for t in stored)  # one line, the cause
        # the cause fixed: the resume (a new strategy) runs them, none is left failed
        resume = _benchmark_plan("unloadable")
        _experiment(resume, store).run(resume.budget, max_retries=0)
        stored = store.trials(1)
    assert len(stored) == 16 and all(t.status is Status.COMPLETE for t in stored)


@needs_ray
def test_a_worker_killed_mid_trial_gives_a_failed_result_and_the_next_trials_run(
    ray_cluster: str,
) -> None:
    from tests.execution.ray_evaluators import CRASH_OP, CrashingEvaluator

    from nasforge.execution.ray import RayExecutor

    with RayExecutor(CrashingEvaluator(dataset="cora"), address=ray_cluster) as executor:
        crash = executor.submit(_arch(CRASH_OP, "gcn", "gcn", "gcn"))
        fine = executor.submit(_arch("gcn", "gcn", "gcn", "gcn"))
        lost = crash.result(timeout=60)  # a future that never resolves would hang the search
        assert lost.status is Status.FAILED
        assert lost.reason is not None and "worker process died" in lost.reason
        assert lost.lost  # the search may retry it
        assert fine.result(timeout=60).status is Status.COMPLETE
        after = executor.submit(_arch("sage", "gcn", "gcn", "gcn")).result(timeout=60)
        assert after.status is Status.COMPLETE  # a new worker took the dead one's place


@needs_ray
@pytest.mark.slow
def test_a_trial_running_at_its_timeout_is_cancelled_and_the_next_trials_run(
    ray_cluster: str,
) -> None:
    from tests.execution.process_evaluators import SLEEP, MisbehavingEvaluator

    from nasforge.execution.ray import RayExecutor

    with RayExecutor(MisbehavingEvaluator(), address=ray_cluster, trial_timeout=5) as executor:
        hung = executor.submit(_arch(SLEEP, "gcn", "gcn", "gcn"))  # sleeps for a minute
        fine = executor.submit(_arch("gcn", "gcn", "gcn", "gcn"))
        start = time.monotonic()
        result = hung.result(timeout=30)
        assert time.monotonic() - start < 10
        assert result.status is Status.FAILED and not result.lost  # a hang would hang again
        assert result.reason == "timed out after 5 s; the trial's Ray worker was killed"
        assert fine.result(timeout=60).ok
        after = executor.submit(_arch("sage", "gcn", "gcn", "gcn")).result(timeout=60)
        assert after.ok  # the killed worker's CPU is free again


@needs_ray
def test_threads_per_trial_and_cpu_reservation(ray_cluster: str) -> None:
    from tests.execution.ray_evaluators import ThreadsEvaluator

    from nasforge.execution.ray import RayExecutor

    evaluator = ThreadsEvaluator(dataset="cora")
    with RayExecutor(evaluator, address=ray_cluster, cpus_per_trial=2) as executor:
        assert executor.capacity == (HEAD_CPUS + WORKER_CPUS) // 2
        result = executor.submit(_arch("gcn", "gin", "sage", "fc")).result(timeout=60)
    assert result.status is Status.COMPLETE and result.costs["torch_threads"] == 2
    with pytest.raises(ConfigError, match="cpus_per_trial=3 but the largest node"):
        RayExecutor(evaluator, address=ray_cluster, cpus_per_trial=3)


@needs_ray
def test_closing_leaves_a_cluster_it_connected_to_running(
    ray_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nasforge.execution.ray import RayExecutor

    evaluator = NasBenchGraphEvaluator(dataset="cora")
    monkeypatch.setenv("RAY_ADDRESS", ray_cluster)  # what "auto" finds first
    executor = make_executor("ray", evaluator, workers=1, ray_address="auto")
    assert isinstance(executor, RayExecutor)
    assert executor.address.endswith(ray_cluster.partition(":")[2])  # Ray names the host by IP
    assert executor.submit(_arch("gcn", "gcn", "gcn", "gcn")).result(timeout=60).ok
    executor.close()
    executor.close()  # idempotent
    with pytest.raises(Exception, match="closed"):
        executor.submit(_arch("gcn", "gcn", "gcn", "gcn"))
    with RayExecutor(evaluator, address=ray_cluster) as again:  # the cluster still runs
        assert again.submit(_arch("gat", "gcn", "gcn", "gcn")).result(timeout=60).ok


@needs_ray
def test_by_default_a_local_ray_listens_on_loopback_only_and_stops_on_close(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nasforge.execution.ray import RayExecutor

    # a short folder: Ray's socket paths under it must stay within 107 bytes
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path_factory.mktemp("rl")))
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    with RayExecutor(NasBenchGraphEvaluator(dataset="cora"), workers=2) as ex:  # no address
        assert ex.capacity == 2
        futures = [ex.submit(_arch(op, "gcn", "skip", "fc")) for op in ("gcn", "gin", "sage")]
        assert all(f.result(timeout=60).ok for f in futures)
        started = [p for p in me.children(recursive=True) if p.pid not in before]
        assert started  # the local Ray's processes (GCS, raylet, workers) are children
        listening = {
            conn.laddr.ip.removeprefix("::ffff:")  # IPv4 on an IPv6 socket
            for proc in started
            for conn in _connections(proc)
            if conn.status == psutil.CONN_LISTEN
        }
        assert listening == {"127.0.0.1"}, listening
    _, alive = psutil.wait_procs(started, timeout=30)
    assert not alive, [p.info for p in alive]


def _connections(proc: psutil.Process) -> list[Any]:
    try:
        return list(proc.net_connections(kind="inet"))
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


@needs_ray
def test_no_cluster_at_the_address_is_a_clear_error_not_a_hang() -> None:
    from nasforge.execution.ray import RayExecutor

    evaluator = NasBenchGraphEvaluator(dataset="cora")
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"no Ray cluster answers at 127\.0\.0\.1:\d+ \("):
        RayExecutor(evaluator, address=f"127.0.0.1:{_free_port()}", connect_timeout=5)
    assert time.monotonic() - start < 10
    with pytest.raises(ConfigError, match=r"give 'auto'.*or HOST:PORT"):
        RayExecutor(evaluator, address="headnode")
    with pytest.raises(ConfigError, match="cpus_per_trial must be an integer >= 1"):
        RayExecutor(evaluator, address="auto", cpus_per_trial=0)


@pytest.fixture
def not_ray() -> Iterator[str]:
    """Address of a TCP server that is not Ray: it answers HTTP/1.1 400 and hangs up.

    It listens on 127.0.0.2, a loopback address Ray does not rewrite to the host's IP.
    """
    server = socket.create_server(("127.0.0.2", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                conn, _ = server.accept()
                with conn:
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.2:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    server.close()


@needs_ray
def test_something_else_at_the_address_is_a_clear_error_not_a_hang(not_ray: str) -> None:
    from nasforge.execution.ray import RayExecutor

    start = time.monotonic()
    with pytest.raises(ConfigError, match=f"{not_ray} is not a Ray head node"):
        RayExecutor(NasBenchGraphEvaluator(dataset="cora"), address=not_ray, connect_timeout=5)
    assert time.monotonic() - start < 10  # ray.init itself retries for minutes


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from nasforge.execution.ray import RayExecutor

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ConfigError, match=r"pip install 'nasforge\[ray\]'"):
        RayExecutor(NasBenchGraphEvaluator(dataset="cora"), address=None)
