"""The dashboard server over plain HTTP: JSON views of a real store, and its security rules."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nasforge import api
from nasforge.dashboard import DashboardError, DashboardServer, serve
from nasforge.errors import ConfigError, StoreError
from nasforge.pareto import pareto_front

NAME = "cora-run"


def _search(db: Path, budget: int, name: str = NAME, **options: Any) -> None:
    api.search(
        benchmark="nas-bench-graph:cora",
        strategy="random",
        budget=budget,
        seed=0,
        name=name,
        db=db,
        **options,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    _search(path, 10)
    return path


@pytest.fixture
def server(db: Path) -> Iterator[DashboardServer]:
    with serve(db, port=0) as running:
        yield running


def fetch(
    server: DashboardServer,
    path: str,
    *,
    method: str = "GET",
    host: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request to ``server`` (Host header ``host`` instead of the right one if given)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True)
        if host != "":
            conn.putheader("Host", host or f"127.0.0.1:{server.port}")
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def fetch_json(server: DashboardServer, path: str, **kwargs: Any) -> Any:
    status, headers, body = fetch(server, path, **kwargs)
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    return json.loads(body)


# -- the JSON views ---------------------------------------------------------------------------
def test_experiments_lists_counts_best_and_settings(server: DashboardServer, db: Path) -> None:
    data = fetch_json(server, "/api/experiments")
    assert data["store"] == str(db)
    [exp] = data["experiments"]
    best = api.best(NAME, db=db)
    assert best is not None
    assert exp["name"] == NAME
    assert (exp["space"], exp["strategy"], exp["seed"]) == ("gnn", "random", 0)
    assert exp["source"] == "nas-bench-graph:cora"
    assert [o["text"] for o in exp["objectives"]] == ["val_acc:max"]
    assert exp["total"] == 10 and exp["last"] == 9
    assert exp["counts"] == {
        "COMPLETE": 10,
        "FAILED": 0,
        "PRUNED": 0,
        "INFEASIBLE": 0,
        "RUNNING": 0,
    }
    assert exp["best"]["number"] == best.number
    assert exp["best"]["value"] == best.metrics["val_acc"]
    assert exp["best"]["arch"] == str(best.arch)
    assert "front" not in exp  # single objective


def test_trials_after_n_gives_only_newer_trials_and_follows_a_writer(
    server: DashboardServer, db: Path
) -> None:
    stored = api.trials(NAME, db=db)
    data = fetch_json(server, f"/api/trials?name={NAME}&after=-1")
    rows = data["trials"]
    assert [r["number"] for r in rows] == list(range(10))
    assert data["experiment"]["total"] == 10
    running = -1.0
    for row, trial in zip(rows, stored, strict=True):
        assert row["status"] == "COMPLETE" and row["arch"] == str(trial.arch)
        assert row["values"] == [trial.metrics["val_acc"]]
        assert row["test_metrics"]["test_acc"] == trial.test_metrics["test_acc"]
        running = max(running, trial.metrics["val_acc"])
        assert row["best"] == running  # best so far after this trial
    later = fetch_json(server, f"/api/trials?name={NAME}&after=6")["trials"]
    assert later == rows[7:]  # same rows, best-so-far computed over the earlier ones too

    _search(db, 14)  # another store connection writes while the server runs
    newer = fetch_json(server, f"/api/trials?name={NAME}&after=9")
    assert [r["number"] for r in newer["trials"]] == [10, 11, 12, 13]
    assert newer["experiment"]["total"] == 14
    best = api.best(NAME, db=db)
    assert best is not None and newer["experiment"]["best"]["number"] == best.number


def test_server_stays_current_when_this_process_opens_the_store_too(
    server: DashboardServer, db: Path
) -> None:
    # closing a file descriptor of the database anywhere in a process drops every SQLite lock
    # the process holds on it: connections kept across requests would then read stale data
    assert fetch_json(server, f"/api/trials?name={NAME}")["experiment"]["total"] == 10
    assert api.best(NAME, db=db) is not None  # opens and closes the store in this process
    code = (
        "from nasforge import api; api.search(benchmark='nas-bench-graph:cora', "
        f"strategy='random', budget=14, seed=0, name={NAME!r}, db={str(db)!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
    data = fetch_json(server, f"/api/trials?name={NAME}&after=9")
    assert data["experiment"]["total"] == 14
    assert [r["number"] for r in data["trials"]] == [10, 11, 12, 13]


def test_multi_objective_experiment_lists_its_pareto_front(db: Path) -> None:
    _search(db, 12, name="two-goals", objectives=["val_acc:max", "latency_ms:min"])
    with serve(db, port=0) as server:
        data = fetch_json(server, "/api/experiments")
        rows = fetch_json(server, "/api/trials?name=two-goals")["trials"]
    exp = {e["name"]: e for e in data["experiments"]}["two-goals"]
    trials = api.trials("two-goals", db=db)
    front = pareto_front(trials, api.objectives_of(_record(db, "two-goals")))
    assert [o["text"] for o in exp["objectives"]] == ["val_acc:max", "latency_ms:min"]
    assert exp["front"] == [t.number for t in front] and exp["front"]
    assert rows[0]["values"] == [trials[0].metrics["val_acc"], trials[0].costs["latency_ms"]]


def _record(db: Path, name: str) -> Any:
    from nasforge.store.sql import open_store

    with open_store(db, create=False) as store:
        return store.get_experiment(name)


def test_refresh_reads_given_trials_again(server: DashboardServer) -> None:
    data = fetch_json(server, f"/api/trials?name={NAME}&after=8&refresh=2,5")
    assert [t["number"] for t in data["trials"]] == [2, 5, 9]
    assert all(t["stale"] is False and t["attempt"] == 1 for t in data["trials"])


def test_bad_requests_say_what_is_accepted(server: DashboardServer) -> None:
    status, _, body = fetch(server, "/api/trials?name=nope")
    assert status == 404 and "no experiment named 'nope'" in json.loads(body)["error"]
    status, _, body = fetch(server, f"/api/trials?name={NAME}&after=soon")
    assert status == 400 and "after must be a trial number >= -1" in json.loads(body)["error"]
    status, _, body = fetch(server, "/api/trials")
    assert status == 400 and "?name=NAME" in json.loads(body)["error"]
    for refresh in ("1,x", "-1", ",".join(["1"] * 1001)):
        status, _, body = fetch(server, f"/api/trials?name={NAME}&refresh={refresh}")
        assert status == 400 and "comma-separated trial numbers" in json.loads(body)["error"]
    status, _, body = fetch(server, "/etc/passwd")
    assert status == 404 and "/api/experiments" in json.loads(body)["error"]


# -- the page ---------------------------------------------------------------------------------
def test_page_is_self_contained_with_a_strict_policy(server: DashboardServer) -> None:
    status, headers, body = fetch(server, "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    page = body.decode()
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    # nothing is loaded from elsewhere: no src/href attributes, no CSS url(), no import
    assert not re.search(r"\b(src|href)\s*=|url\(|@import", page)
    assert set(re.findall(r"https?://[^\s\"']+", page)) == {"http://www.w3.org/2000/svg"}
    assert ".innerHTML" not in page and "insertAdjacentHTML" not in page


def test_only_get_and_head(server: DashboardServer) -> None:
    _, get_headers, get_body = fetch(server, "/")
    status, headers, body = fetch(server, "/", method="HEAD")
    assert status == 200 and body == b""
    assert headers["Content-Length"] == get_headers["Content-Length"] == str(len(get_body))
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        status, headers, body = fetch(server, "/api/experiments", method=method)
        assert status == 405, method
        assert headers["Allow"] == "GET, HEAD" and b"read-only" in body


# -- security ---------------------------------------------------------------------------------
def test_foreign_host_header_is_refused(server: DashboardServer) -> None:
    port = server.port
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", "", "a b"):
        for path in ("/", "/api/experiments"):
            status, _, body = fetch(server, path, host=host)
            assert status == 403, (host, path)
            assert b"is not this dashboard's address" in body and b"experiments" not in body
    for host in (f"localhost:{port}", f"LOCALHOST:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        assert fetch(server, "/api/experiments", host=host)[0] == 200, host


def test_non_loopback_host_needs_allow_remote(db: Path) -> None:
    with pytest.raises(ConfigError, match=r"not a loopback address.*--allow-remote"):
        serve(db, "0.0.0.0", 0)
    with pytest.raises(ConfigError, match="token must be 16 to 256 characters"):
        serve(db, port=0, token="short")
    with pytest.raises(ConfigError, match="port must be an integer from 0"):
        serve(db, port=70000)


def test_token_is_required_when_remote_is_allowed(db: Path) -> None:
    with serve(db, "0.0.0.0", 0, allow_remote=True) as server:
        token = server.token
        assert token is not None and len(token) >= 32
        assert server.url == f"http://127.0.0.1:{server.port}/"
        for path in ("/", "/api/experiments", f"/api/trials?name={NAME}"):
            status, headers, body = fetch(server, path)
            assert status == 401 and b"needs its token" in body, path
            assert "Set-Cookie" not in headers
        assert fetch(server, "/?token=" + "x" * 32)[0] == 401
        bearer = {"Authorization": "Bearer " + "x" * 32}
        assert fetch(server, "/api/experiments", headers=bearer)[0] == 401

        # ?token= once: the page redirects to itself without it and sets the cookie
        status, headers, _ = fetch(server, f"/?token={token}")
        assert status == 303 and headers["Location"] == "/"
        cookie = headers["Set-Cookie"]
        assert cookie.startswith(f"nasforge_token_{server.port}={token};")
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        jar = {"Cookie": cookie.split(";")[0]}
        assert fetch(server, "/", headers=jar)[0] == 200
        assert fetch_json(server, "/api/experiments", headers=jar)["experiments"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert fetch_json(server, "/api/experiments", headers=bearer)["experiments"]
        # a token does not excuse a foreign Host (DNS rebinding)
        assert (
            fetch(server, "/api/experiments", host=f"evil.example:{server.port}", headers=bearer)[0]
            == 403
        )
        # bound to a wildcard, any IP literal with the port is a valid Host
        assert fetch(server, "/", host=f"10.1.2.3:{server.port}", headers=jar)[0] == 200

    with serve(db, port=0, token="given-token-0123456789") as server:  # loopback with a token
        assert fetch(server, "/api/experiments")[0] == 401
        headers = {"Authorization": "Bearer given-token-0123456789"}
        assert fetch(server, "/api/experiments", headers=headers)[0] == 200


def test_missing_store_is_a_clear_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(StoreError, match="no nasforge store at"):
        serve(missing, port=0)
    assert not missing.exists()


def test_busy_port_is_a_clear_error(db: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DashboardError, match=f"cannot listen on 127.0.0.1:{port}"):
            serve(db, port=port)


def test_shutdown_closes_the_port(db: Path) -> None:
    server = serve(db, port=0)
    assert fetch(server, "/")[0] == 200
    server.shutdown()
    server.shutdown()  # twice is harmless
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


# -- the command ------------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "nasforge.cli", "dashboard", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_cli_refuses_bad_hosts_and_missing_stores(tmp_path: Path, db: Path) -> None:
    proc = _cli("--host", "0.0.0.0", "--db", str(db))
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "not a loopback address" in stderr
    proc = _cli("--db", str(tmp_path / "nope.db"), "--port", "0")
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "no nasforge store at" in stderr
    assert not (tmp_path / "nope.db").exists()


def test_cli_serves_until_ctrl_c(db: Path) -> None:
    proc = _cli("--db", str(db), "--port", "0")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        port = int(match.group(1))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/experiments")
        response = conn.getresponse()
        assert response.status == 200
        assert [e["name"] for e in json.loads(response.read())["experiments"]] == [NAME]
        conn.close()
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
        assert proc.returncode == 0, stderr
        assert "dashboard stopped" in stdout and time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
