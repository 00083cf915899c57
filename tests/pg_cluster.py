"""A PostgreSQL cluster of the test session's own: ``initdb`` in a new temporary folder, run by an
unprivileged user, listening on a free loopback port only, a random password for its superuser;
stopped and deleted when the session ends. No running server and no system configuration is
used or changed: the binaries are the only thing taken from the machine (``initdb`` and
``pg_ctl`` on ``PATH`` or under Debian's ``/usr/lib/postgresql/<version>/bin``;
``scripts/postgres-binaries.sh`` installs them where it can).
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DEBIAN_BINARIES = Path("/usr/lib/postgresql")
UNPRIVILEGED = "nobody"
START_SECONDS = 60


class ClusterUnavailable(RuntimeError):
    """No cluster could be started here; the message says why."""


def _binary(name: str) -> str | None:
    """``name`` from ``PATH``, else from the newest Debian PostgreSQL version installed."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        (p for p in DEBIAN_BINARIES.glob("*/bin") if (p / name).is_file()),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)],
    )
    return str(versions[-1] / name) if versions else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class _Runner:
    """Runs the server's commands as the current user, or as ``nobody`` when that is root
    (PostgreSQL refuses to run as root)."""

    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_this_process(cls) -> _Runner:
        if os.geteuid() != 0:
            return cls()
        try:
            account = pwd.getpwnam(UNPRIVILEGED)
        except KeyError as exc:
            raise ClusterUnavailable(f"running as root and there is no {UNPRIVILEGED!r}") from exc
        return cls(account.pw_uid, account.pw_gid)

    def own(self, path: Path) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)

    def run(self, argv: list[str], cwd: Path) -> None:
        extra = (
            {} if self.uid is None else {"user": self.uid, "group": self.gid, "extra_groups": []}
        )
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, **extra)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ClusterUnavailable(f"{Path(argv[0]).name} failed: {last[0]}")


@contextmanager
def private_cluster() -> Iterator[str]:
    """Start the cluster; yield the SQLAlchemy URL of its ``postgres`` database as superuser."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise ClusterUnavailable(
            f"no initdb/pg_ctl on PATH or under {DEBIAN_BINARIES}/*/bin "
            "(Debian: apt-get install postgresql)"
        )
    runner = _Runner.for_this_process()
    root = Path(tempfile.mkdtemp(prefix="nasforge-test-pg-"))
    data, password = root / "data", secrets.token_hex(16)
    try:
        runner.own(root)
        pwfile = root / "password"
        pwfile.write_text(password + "\n", encoding="utf-8")
        runner.own(pwfile)
        initdb_options = ["-U", "postgres", f"--pwfile={pwfile}", "--auth=scram-sha-256"]
        initdb_options += ["--encoding=UTF8", "--no-locale", "--no-instructions"]
        runner.run([initdb, "-D", str(data), *initdb_options], cwd=root)
        pwfile.unlink()
        port = _free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root}"
        log = str(root / "server.log")
        wait = ["-w", "-t", str(START_SECONDS)]
        runner.run([pg_ctl, "-D", str(data), "-l", log, "-o", options, *wait, "start"], cwd=root)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        yield f"postgresql+psycopg://postgres:{password}@127.0.0.1:{port}/postgres"
    finally:
        try:
            runner.run([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], cwd=root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
