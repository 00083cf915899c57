"""A Ray cluster as the executor: one remote task per trial, anywhere in the cluster.

Ray is imported only when a :class:`RayExecutor` is built (``pip install 'nasforge[ray]'``).

Why tasks and not one actor per worker: Ray's scheduler then places every trial on whichever
node has a free CPU (nodes may join or leave during a search), and a worker that dies costs
exactly its own trial, with no actor restarts or idle-actor bookkeeping here. The evaluator
(with its data) still crosses the network once: it is put in the object store once, and each
worker process deserialises it on its first trial and keeps it for the next ones.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, InvalidStateError
from typing import Any

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError, NasforgeError, WorkersUnavailable
from nasforge.evaluators.base import Evaluator
from nasforge.execution.base import Executor, check_trial_timeout, evaluate_safely
from nasforge.result import Result
from nasforge.train.device import trial_gpus

__all__ = ["RayExecutor", "import_ray"]

INSTALL_HINT = "pip install 'nasforge[ray]'"
CONNECT_TIMEOUT_S = 10.0
"""How long the head node's address may take to answer before the address is refused."""

_MAX_REASON = 500
_CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_SETTINGS = 0x04  # HTTP/2 frame type
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes((0, 0, 0, _SETTINGS, 0, 0, 0, 0, 0))

# The evaluator a worker process deserialised last, by object id (one search at a time).
_cached: tuple[str, Evaluator] | None = None


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        ConfigError: If Ray is not installed (with the command that installs it).
    """
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise ConfigError(
            f"the ray executor needs Ray, which is not installed ({exc}); install it with: "
            f"{INSTALL_HINT}"
        ) from None


def _run_trial(
    evaluator_ref: list[Any], arch: dict[str, Any], budget: int | None, threads: int
) -> Result:
    """Body of the remote task (runs in a Ray worker process)."""
    global _cached
    ray = import_ray()
    ref = evaluator_ref[0]  # in a list, so that Ray hands over the reference, not the value
    if _cached is None or _cached[0] != ref.hex():
        try:
            evaluator = ray.get(ref)
        except Exception as exc:  # it cannot be loaded here: not the trial's fault
            cause = getattr(exc, "client_exc", None)  # RaySystemError wraps the unpickling's
            cause = cause if isinstance(cause, BaseException) else exc
            text = f"the evaluator could not be loaded on the Ray worker ({_describe(cause)})"
            return Result.failed(_one_line(text), lost=True, started=False)
        _cached = (ref.hex(), evaluator)
    # torch reads OMP_NUM_THREADS when it is imported (table look-ups never import it) ...
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:  # ... and is told directly when the evaluator has imported it
        torch.set_num_threads(threads)
    return evaluate_safely(_cached[1], Architecture.from_dict(arch), budget)


@contextlib.contextmanager
def _single_host() -> Iterator[None]:
    """Keep a Ray started here on 127.0.0.1, listening on loopback only.

    Ray replaces a node IP of 127.0.0.1 by the host's routable address, and its GCS and
    raylet then listen on all interfaces, unless multi-node clusters are switched off: its
    own switch for single-machine Ray (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``). The switch is
    read when Ray is imported and inherited by the processes Ray starts, so both are set for
    as long as the local instance starts.
    """
    constants: Any = importlib.import_module("ray._private.ray_constants")
    previous = os.environ.get(_CLUSTER_SWITCH), constants.ENABLE_RAY_CLUSTER
    os.environ[_CLUSTER_SWITCH] = "0"
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if previous[0] is None:
            os.environ.pop(_CLUSTER_SWITCH, None)
        else:
            os.environ[_CLUSTER_SWITCH] = previous[0]
        constants.ENABLE_RAY_CLUSTER = previous[1]


def _parse_address(address: str) -> tuple[str, int]:
    """Split ``HOST:PORT``, with a clear error for anything else."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"bad Ray address {address!r}: give 'auto' (the cluster started on this machine "
            "with `ray start --head`, or $RAY_ADDRESS) or HOST:PORT of the head node (e.g. "
            "10.0.0.5:6379, as printed by `ray start --head`)"
        )
    return host, int(port)


def _canonical(address: str) -> str:
    """HOST:PORT as Ray connects to it ('auto' resolved; 127.0.0.1 becomes the host's IP)."""
    services = importlib.import_module("ray._private.services")
    if address == "auto":
        try:
            return str(services.canonicalize_bootstrap_address_or_die("auto"))
        except ConnectionError as exc:
            raise ConfigError(
                f"Ray address 'auto' found no running Ray cluster on this machine ({exc}); "
                "start one with `ray start --head`, or give HOST:PORT of a head node"
            ) from None
    _parse_address(address)
    try:
        return str(services.canonicalize_bootstrap_address(address))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"cannot resolve the Ray address {address!r}: {exc}") from None


def _check_head(given: str, target: str, timeout: float) -> None:
    """Fail fast unless a gRPC server, as Ray's GCS is, answers at the head node's address.

    ``ray.init`` retries for minutes when nothing, or something else, listens there. The probe
    is HTTP/2's connection preface with an empty SETTINGS frame: a gRPC server answers with
    its own SETTINGS frame.
    """
    host, port = _parse_address(target)
    tried = "" if target == given else f"tried {target}: "
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise ConfigError(
            f"no Ray cluster answers at {given} ({tried}{exc}); start one with "
            f"`ray start --head --port {port}` or give the address it prints"
        ) from None
    reply = b""
    with sock, contextlib.suppress(OSError):
        sock.sendall(_HTTP2_PREFACE)
        while len(reply) < 9 and (chunk := sock.recv(9 - len(reply))):
            reply += chunk
    if len(reply) < 9 or reply[3] != _SETTINGS:
        raise ConfigError(
            f"{given} is not a Ray head node ({tried}something listens there but does not "
            "speak gRPC as Ray's GCS does); give the address `ray start --head` printed "
            "(its --port, 6379 by default)"
        )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _one_line(text: str) -> str:
    """``text`` on one line, cut to ``_MAX_REASON`` characters (a trial's stored reason)."""
    line = " ".join(text.split())
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."


def _reason(exc: BaseException) -> tuple[str, bool]:
    """One line saying why a remote trial produced no result, and whether its worker was lost."""
    kind = type(exc).__name__
    cause = getattr(exc, "cause", None)
    lost = False
    if cause is not None and "TaskError" in kind:  # the task itself raised
        text = _describe(cause)
    elif "WorkerCrashed" in kind or "ActorDied" in kind:
        text, lost = f"the Ray worker process died during the trial ({kind}: {exc})", True
    elif "NodeDied" in kind or "ObjectLost" in kind or "OwnerDied" in kind:
        text, lost = f"the Ray node running the trial was lost ({kind}: {exc})", True
    elif "Cancelled" in kind:
        text = "the trial was cancelled (the executor was closed)"
    else:
        text = _describe(exc)
    return _one_line(text), lost


class RayExecutor(Executor):
    """Evaluates trials as Ray tasks on a Ray cluster, or on a local Ray started here.

    Each trial is one remote task reserving ``cpus_per_trial`` CPUs of the cluster, with as
    many torch threads, and one GPU when the evaluator's device asks for CUDA (``cuda``, or
    ``auto`` on a cluster with GPUs): Ray then shows the task only its own GPU. Tasks are
    not retried: a trial whose worker or node dies is reported
    as a FAILED result with the reason and ``lost=True`` (the search may retry it), and the
    search goes on. A trial still running at ``trial_timeout`` is force-cancelled (Ray kills
    its worker process) and reported as FAILED, not lost (it would hang again). An evaluator
    that cannot be loaded on a worker (a module missing there) loses its trials without
    charging them an attempt, and the next :meth:`submit` raises
    :class:`~nasforge.errors.WorkersUnavailable`: the search stops, and its resume runs them.

    Example:
        >>> with RayExecutor(evaluator, address="10.0.0.5:6379") as executor:
        ...     experiment.run(Budget(100), executor=executor)

    Args:
        evaluator: What every trial evaluates with; put in the object store once.
        address: ``None`` (the default) starts a private Ray on this machine, listening on
            127.0.0.1 only and without dashboard, stopped again by :meth:`close`; ``"auto"``
            connects to the cluster started on this machine (or ``$RAY_ADDRESS``), and
            ``"HOST:PORT"`` to the cluster of that head node (its GCS port, 6379 by default).
            If Ray is already initialised in this process, that instance is used (and left
            running by :meth:`close`); an address naming another cluster is then refused.
        workers: Trials in flight at once (default: the cluster's CPUs // ``cpus_per_trial``,
            and no more than its GPUs when each trial reserves one).
        cpus_per_trial: CPUs each trial reserves, and its torch threads.
        connect_timeout: Seconds the head node's address may take to answer; nothing or
            something other than Ray answering there is a ConfigError within that time.
        trial_timeout: Seconds a trial may take from its submission (its wait for a free CPU
            included), or ``None`` for no limit.

    Raises:
        ConfigError: If Ray is not installed, the address is malformed or nothing answers
            there, or an option is out of range.
    """

    kind = "ray"
    parallel = True
    isolated = True
    addressed = True

    @classmethod
    def create(
        cls,
        evaluator: Evaluator,
        *,
        workers: int | None = None,
        address: str | None = None,
        trial_timeout: float | None = None,
    ) -> RayExecutor:
        """Join the cluster at ``address`` (default: start a private local Ray)."""
        cls.check(workers=workers, address=address, trial_timeout=trial_timeout)
        return cls(evaluator, address=address, workers=workers, trial_timeout=trial_timeout)

    def __init__(
        self,
        evaluator: Evaluator,
        *,
        address: str | None = None,
        workers: int | None = None,
        cpus_per_trial: int = 1,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        trial_timeout: float | None = None,
    ) -> None:
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
        ):
            raise ConfigError(f"workers must be an integer >= 1 (or None), got {workers!r}")
        if (
            isinstance(cpus_per_trial, bool)
            or not isinstance(cpus_per_trial, int)
            or cpus_per_trial < 1
        ):
            raise ConfigError(f"cpus_per_trial must be an integer >= 1, got {cpus_per_trial!r}")
        if not connect_timeout > 0:
            raise ConfigError(f"connect_timeout must be > 0 seconds, got {connect_timeout!r}")
        check_trial_timeout(trial_timeout)
        ray = import_ray()
        self.evaluator = evaluator
        self.cpus_per_trial = cpus_per_trial
        self.trial_timeout = trial_timeout
        self._ray = ray
        self._lock = threading.Lock()
        self._pending: dict[Any, Future[Result]] = {}
        self._closed = False
        self._broken: str | None = None  # why workers cannot load the evaluator
        self._owns_connection = not ray.is_initialized()
        if self._owns_connection:
            self._init(address, workers, connect_timeout)
        self.address: str = ray.get_runtime_context().gcs_address
        try:
            if not self._owns_connection and address not in (None, "auto"):
                self._check_same_cluster(address)
            self._check_fits(cpus_per_trial)
            resources = ray.cluster_resources()
            cluster_cpus = int(resources.get("CPU", 0))
            device = getattr(evaluator, "device", "cpu")
            self.gpus_per_trial = trial_gpus(device, float(resources.get("GPU", 0)))
            capacity = cluster_cpus // cpus_per_trial
            if self.gpus_per_trial:  # as many trials at once as there are GPUs for them
                capacity = min(capacity, int(resources.get("GPU", 0) // self.gpus_per_trial))
            self.capacity = workers or max(1, capacity)
            self._evaluator_ref = ray.put(evaluator)
            self._task = ray.remote(
                num_cpus=cpus_per_trial, num_gpus=self.gpus_per_trial, max_retries=0
            )(_run_trial)
        except BaseException:
            self.close()
            raise

    def _init(self, address: str | None, workers: int | None, timeout: float) -> None:
        """Connect to the cluster at ``address``, or start a local Ray when it is None."""
        ray = self._ray
        if address is None:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the host
            affinity = getattr(os, "sched_getaffinity", None)
            cpus = len(affinity(0)) if affinity else (os.cpu_count() or 1)
            if workers is not None:
                cpus = max(cpus, workers * self.cpus_per_trial)
            with _single_host():
                ray.init(
                    address="local",
                    num_cpus=cpus,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    logging_level=logging.WARNING,
                )
            return
        if not isinstance(address, str) or not address.strip():
            raise ConfigError(
                f"bad Ray address {address!r}: give 'auto', HOST:PORT of a head node, or None "
                "for a local Ray on this machine"
            )
        target = _canonical(address.strip())
        _check_head(address.strip(), target, timeout)
        try:
            ray.init(address=target, logging_level=logging.WARNING)
        except (ConnectionError, TimeoutError) as exc:
            raise ConfigError(f"cannot connect to the Ray cluster at {target}: {exc}") from None

    def _check_same_cluster(self, address: str) -> None:
        """Ray is initialised already: refuse an address naming another cluster."""
        if _canonical(address.strip()) != self.address:
            raise ConfigError(
                f"this process is already connected to the Ray cluster at {self.address}, not "
                f"{address}; give address='auto' to use it, or call ray.shutdown() first"
            )

    def _check_fits(self, cpus_per_trial: int) -> None:
        """A trial reserving more CPUs than any node has would wait forever: refuse it."""
        nodes = [n for n in self._ray.nodes() if n.get("Alive")]
        largest = max((int(n.get("Resources", {}).get("CPU", 0)) for n in nodes), default=0)
        if cpus_per_trial > largest:
            raise ConfigError(
                f"cpus_per_trial={cpus_per_trial} but the largest node of the Ray cluster at "
                f"{self.address} has {largest} CPUs; a trial must fit on one node"
            )

    def submit(self, arch: Architecture, budget: int | None = None) -> Future[Result]:
        """Start a remote task evaluating ``arch``; its future resolves to a Result."""
        outer: Future[Result] = Future()
        with self._lock:
            if self._broken is not None:
                raise WorkersUnavailable(f"Ray workers cannot start trials: {self._broken}")
            if self._closed:
                raise NasforgeError("the Ray executor is closed; build a new one")
            ref = self._task.remote(
                [self._evaluator_ref], arch.to_dict(), budget, self.cpus_per_trial
            )
            self._pending[ref] = outer
        started = time.perf_counter()
        timer = None
        if self.trial_timeout is not None:
            timer = threading.Timer(self.trial_timeout, self._expire, args=(ref, started))
            timer.daemon = True
            timer.start()

        def relay(inner: Future[Result]) -> None:
            if timer is not None:
                timer.cancel()
            try:
                result = inner.result()
            except BaseException as exc:  # a lost worker, node or object
                reason, lost = _reason(exc)
                result = Result.failed(reason, wall_time=time.perf_counter() - started, lost=lost)
            with self._lock:
                self._pending.pop(ref, None)
                if result.lost and not result.started:
                    # the evaluator would fail to load again: no more trials (the search
                    # stops, a resume runs them), as a process pool whose workers cannot start
                    self._broken = self._broken or result.reason
                if not outer.done():
                    outer.set_result(result)

        ref.future().add_done_callback(relay)
        return outer

    def _expire(self, ref: Any, started: float) -> None:
        """The trial of ``ref`` is still running at its timeout: fail it and kill its worker."""
        with self._lock:
            outer = self._pending.pop(ref, None)
        if outer is None:
            return  # finished, or the executor was closed
        reason = f"timed out after {self.trial_timeout:g} s; the trial's Ray worker was killed"
        with contextlib.suppress(InvalidStateError):  # resolved by its relay meanwhile
            outer.set_result(Result.failed(reason, wall_time=time.perf_counter() - started))
        with contextlib.suppress(Exception):  # finished meanwhile, or the cluster is gone
            self._ray.cancel(ref, force=True)

    def close(self) -> None:
        """Cancel trials still running, and disconnect (stopping the Ray started here).

        A cluster this executor merely connected to keeps running.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending, self._pending = self._pending, {}
            for outer in pending.values():
                if not outer.done():
                    outer.set_result(
                        Result.failed("the executor was closed before the trial finished")
                    )
        for ref in pending:
            with contextlib.suppress(Exception):  # already finished, or the cluster is gone
                self._ray.cancel(ref)
        if self._owns_connection and self._ray.is_initialized():
            self._ray.shutdown()
