"""Who runs a trial, whether they are still alive, and the heartbeat that says so.

Every run of a search is an *owner* with an id naming its machine, process and run. A RUNNING
trial in the store carries its owner's id and a heartbeat time that a background thread
refreshes. Another search process (or the resume after a crash) decides that a trial is stale
when its owner is known dead (same machine: the process is gone, or it is this very process and
the run has ended), or when its heartbeat is older than the grace period (any machine).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from nasforge.store.base import Store, TrialRecord

__all__ = ["Heartbeat", "Owner", "owner_is_dead"]

log = logging.getLogger(__name__)

_active_runs: set[str] = set()  # ids of this process's searches that are running
_active_lock = threading.Lock()


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()[:8]
    except OSError:
        return "-"


def _start_time(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot ('-' where unknown)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return "-"
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
    return fields[19] if len(fields) > 19 else "-"


def _host() -> str:
    return socket.gethostname().replace("/", "_") or "localhost"


_INSIDE = ":in"
"""End of the run part of an owner whose trials run inside its own process and may kill it."""


@dataclass(frozen=True, slots=True)
class Owner:
    """One run of a search: ``host/boot/pid/start/run`` (at most 255 characters).

    The run part ends in ``:in`` when the run evaluates its trials inside its own process and
    an evaluation may take that process down (training in the search's process): then the
    death of the run may be the fault of a trial it held.
    """

    id: str

    @classmethod
    def new(cls, *, trials_inside: bool = False) -> Owner:
        """A fresh owner for this process, registered as running until :meth:`release`.

        Args:
            trials_inside: Whether this run evaluates trials in its own process in a way that
                may kill it (see :attr:`trials_inside`).
        """
        pid = os.getpid()
        run = uuid.uuid4().hex + (_INSIDE if trials_inside else "")
        owner = cls(f"{_host()[:160]}/{_boot_id()}/{pid}/{_start_time(pid)}/{run}")
        with _active_lock:
            _active_runs.add(owner.id)
        return owner

    def release(self) -> None:
        """The run has ended: trials it still holds are stale from now on."""
        with _active_lock:
            _active_runs.discard(self.id)

    @property
    def trials_inside(self) -> bool:
        """Whether a trial of this run may have caused its death: the run evaluated its
        trials in its own process, with an evaluator that can crash it (not a table look-up).
        Otherwise a trial held by a dead run was waiting for, or running in, a worker that
        died with the run: never the trial's fault."""
        return self.id.endswith(_INSIDE)

    def describe(self) -> str:
        """``pid N on HOST`` for messages."""
        parts = self.id.rsplit("/", 4)
        return f"pid {parts[2]} on {parts[0]}" if len(parts) == 5 else self.id


def owner_is_dead(owner: str | None) -> bool:
    """Whether ``owner`` is certainly gone: its run ended, or its process on this machine died.

    An owner on another machine is never known dead here (its heartbeat decides).
    """
    if not owner:
        return True  # a RUNNING trial without an owner cannot be anyone's
    parts = owner.rsplit("/", 4)
    if len(parts) != 5:
        return False
    host, boot, pid_text, start, _run = parts
    if host != _host()[:160] or boot != _boot_id():
        return False
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid() and start == _start_time(pid):
        with _active_lock:
            return owner not in _active_runs
    if start != "-":
        return _start_time(pid) != start  # gone, or the pid now belongs to another process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Heartbeat:
    """A daemon thread that refreshes the heartbeat of the trials this run holds.

    Args:
        store: Where the heartbeats are written (the store is safe to share between threads).
        interval: Seconds between heartbeats.
    """

    def __init__(self, store: Store, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._trials: dict[int, TrialRecord] = {}
        self._lost: set[int] = set()  # ids taken by another process (warned about once)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, trial: TrialRecord) -> None:
        """Keep ``trial`` alive until :meth:`remove`."""
        with self._lock:
            self._trials[trial.id] = trial
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="nasforge-heartbeat")
            self._thread.daemon = True
            self._thread.start()

    def remove(self, trial: TrialRecord) -> None:
        with self._lock:
            self._trials.pop(trial.id, None)

    def holds(self, trial: TrialRecord) -> bool:
        """Whether this run is running ``trial`` now."""
        with self._lock:
            return trial.id in self._trials

    def beat(self) -> None:
        """Write one heartbeat now for every trial held."""
        with self._lock:
            held = list(self._trials.values())
        if not held:
            return
        try:
            owned = self.store.heartbeat(held, now=time.time())
        except Exception as exc:  # a store hiccup: the next beat tries again
            log.warning("heartbeat not written (%s); retrying in %.0f s", exc, self.interval)
            return
        with self._lock:
            for trial in held:
                if trial.id not in owned and trial.id in self._trials:
                    if trial.id not in self._lost:
                        log.warning(
                            "trial %d was declared stale by another process; its result will "
                            "be dropped",
                            trial.number,
                        )
                    self._lost.add(trial.id)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
