"""The dashboard's HTTP server: one page and a JSON API over a store, read on every request.

Security model:
    * Binds 127.0.0.1 by default. Any other address needs ``allow_remote=True``, and then every
      request must carry a token (given, or generated): ``?token=`` once (the answer sets a
      cookie), the cookie, or an ``Authorization: Bearer <token>`` header.
    * A request whose ``Host`` header is not the server's address with its port is refused
      (403) whatever its token: a page of another site cannot reach the dashboard through
      DNS rebinding. Bound to a wildcard address (``0.0.0.0``, ``::``), the server also takes
      IP literals and this machine's own names as hosts.
    * GET and HEAD only; the store is opened read-only and never written.
    * Stored strings reach the page as JSON only; the page's script writes them with
      ``textContent``, and a Content-Security-Policy allows only the page's own script.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from nasforge.dashboard.cache import TrialCache
from nasforge.dashboard.page import CSP, PAGE
from nasforge.dashboard.views import experiment_summary, trial_rows
from nasforge.errors import ConfigError, NasforgeError
from nasforge.store.base import ExperimentRecord, TrialRecord
from nasforge.store.sql import SqlStore, open_store

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "DashboardError", "DashboardServer", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_WILDCARDS = ("0.0.0.0", "::", "")
_TOKEN_RULE = re.compile(r"[A-Za-z0-9._~-]{16,256}")
_TOKEN_COOKIE = "nasforge_token_{port}"
_MAX_QUERY = 4096

log = logging.getLogger(__name__)


class DashboardError(NasforgeError):
    """The dashboard cannot listen where it was asked to (the CLI exits with code 1)."""


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_options(host: str, port: int, allow_remote: bool, token: str | None) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port must be an integer from 0 (any free port) to 65535, got {port!r}")
    if not host:
        raise ConfigError("host must be an address or a name, e.g. 127.0.0.1; got ''")
    if not _is_loopback(host) and not allow_remote:
        raise ConfigError(
            f"host {host!r} is not a loopback address: the dashboard serves 127.0.0.1 only "
            "unless you pass --allow-remote (every request then needs a token)"
        )
    if token is not None and not _TOKEN_RULE.fullmatch(token):
        raise ConfigError(
            f"token must be 16 to 256 characters among letters, digits and '-', '_', '.', '~'; "
            f"got {len(token)} characters (leave it out to have one generated)"
        )


def _host_of(header: str) -> tuple[str, int] | None:
    """``(host, port)`` of a Host header, lower-cased; port 80 when absent; None if malformed."""
    header = header.strip().lower()
    match = re.fullmatch(r"(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::(\d{1,5}))?", header)
    if match is None:
        return None
    name, port = match.group(1), match.group(2)
    return name.strip("[]"), int(port) if port else 80


def tls_context(cert: str | os.PathLike[str], key: str | os.PathLike[str]) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 or newer) from a PEM certificate chain and its key.

    Raises:
        ConfigError: If a file is missing or unreadable, not PEM, or the key does not match.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(os.fspath(cert), os.fspath(key))
    except FileNotFoundError as exc:
        raise ConfigError(f"TLS file {exc.filename} does not exist") from None
    except (OSError, ssl.SSLError) as exc:
        detail = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
        raise ConfigError(
            f"cannot use --tls-cert {os.fspath(cert)} with --tls-key {os.fspath(key)} ({detail}): "
            "give a PEM certificate (chain) and its matching PEM private key"
        ) from None
    return context


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    dashboard: DashboardServer
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        if self.tls is not None:  # the handshake happens in the request's own thread
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError | ssl.SSLError):
            # closed tab, timeout, or a client that does not speak TLS to a TLS port
            log.debug("dashboard: client %s went away", client_address)
            return
        super().handle_error(request, client_address)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    """Answers GET and HEAD for the page and ``/api/*``; refuses everything else."""

    server: _HTTPServer
    server_version = "nasforge-dashboard"
    timeout = 30  # seconds a connection may idle: a slow client does not hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def _secure(self) -> bool:
        """Whether the client reached the page over HTTPS: served with TLS here, or through a
        proxy that terminates TLS and says so (``X-Forwarded-Proto: https``)."""
        forwarded = self.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return self.server.tls is not None or forwarded == "https"

    # -- methods ---------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _refuse_method(self) -> None:
        self._send_text(
            HTTPStatus.METHOD_NOT_ALLOWED,
            f"method {self.command} is not allowed: the dashboard is read-only (GET, HEAD)",
            head=False,
            headers={"Allow": "GET, HEAD"},
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    # -- the checks every request passes -----------------------------------------------------
    def _answer(self, *, head: bool) -> None:
        app = self.server.dashboard
        if not app.host_allowed(self.headers.get("Host", "")):
            self._send_text(
                HTTPStatus.FORBIDDEN,
                f"refused: Host {self.headers.get('Host', '(none)')!r} is not this dashboard's "
                f"address; open {app.url}",
                head=head,
            )
            return
        parts = urlsplit(self.path)
        if len(parts.query) > _MAX_QUERY:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": "query too long"}, head=head)
            return
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        cookie: str | None = None
        if app.token is not None:
            given = query.pop("token", None)
            if given is not None and app.token_matches(given):
                cookie = app.cookie_header(secure=self._secure())
                if parts.path == "/":  # drop the token from the address bar and history
                    self._send_text(
                        HTTPStatus.SEE_OTHER,
                        "see /",
                        head=head,
                        headers={"Location": "/", "Set-Cookie": cookie},
                    )
                    return
            elif not self._token_sent(app):
                self._send_text(
                    HTTPStatus.UNAUTHORIZED,
                    "this dashboard needs its token: open the address printed when it started "
                    "(.../?token=...) or send 'Authorization: Bearer <token>'",
                    head=head,
                    headers={"WWW-Authenticate": 'Bearer realm="nasforge"'},
                )
                return
        extra = {"Set-Cookie": cookie} if cookie else {}
        self._route(parts.path, query, head=head, headers=extra)

    def _token_sent(self, app: DashboardServer) -> bool:
        auth = self.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and app.token_matches(value.strip()):
            return True
        raw = self.headers.get("Cookie")
        if not raw:
            return False
        try:
            jar = SimpleCookie(raw)
        except CookieError:
            return False
        morsel = jar.get(app.cookie_name)
        return morsel is not None and app.token_matches(morsel.value)

    # -- routes ------------------------------------------------------------------------------
    def _route(
        self, path: str, query: dict[str, str], *, head: bool, headers: dict[str, str]
    ) -> None:
        app = self.server.dashboard
        if path == "/":
            self._send(
                HTTPStatus.OK,
                PAGE,
                "text/html; charset=utf-8",
                head=head,
                headers={**headers, "Content-Security-Policy": CSP},
            )
            return
        if path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon", head=head, headers=headers)
            return
        views: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            "/api/experiments": app.experiments_view,
            "/api/trials": app.trials_view,
        }
        view = views.get(path)
        if view is None:
            known = ", ".join(["/", *views])
            self._send_json(
                HTTPStatus.NOT_FOUND,
                {"error": f"no such page {path!r}; there are {known}"},
                head=head,
                headers=headers,
            )
            return
        try:
            body = view(query)
        except ConfigError as exc:  # a bad parameter or an unknown experiment name
            missing = str(exc).startswith("no experiment named")
            status = HTTPStatus.NOT_FOUND if missing else HTTPStatus.BAD_REQUEST
            self._send_json(status, {"error": str(exc)}, head=head, headers=headers)
            return
        except NasforgeError as exc:  # the store cannot be read right now
            log.warning("dashboard: %s", exc)
            self._send_json(
                HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)}, head=head, headers=headers
            )
            return
        except Exception as exc:  # a bug: say so on the page, keep serving
            log.exception("dashboard: %s failed", path)
            self._send_json(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                {"error": f"internal error ({type(exc).__name__}: {exc})"},
                head=head,
                headers=headers,
            )
            return
        finally:
            app.release_connections()
        self._send_json(HTTPStatus.OK, body, head=head, headers=headers)

    # -- responses ---------------------------------------------------------------------------
    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        *,
        head: bool,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _send_text(
        self,
        status: HTTPStatus,
        text: str,
        *,
        head: bool,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = (text + "\n").encode()
        self._send(status, body, "text/plain; charset=utf-8", head=head, headers=headers)

    def _send_json(
        self,
        status: HTTPStatus,
        data: dict[str, Any],
        *,
        head: bool,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = json.dumps(data, allow_nan=False, separators=(",", ":")).encode()
        self._send(status, body, "application/json", head=head, headers=headers)


class DashboardServer:
    """A running dashboard: serves in a background thread until :meth:`shutdown`.

    Built by :func:`serve`. Usable as a context manager, which shuts it down on exit.

    Attributes:
        url: Where the page is, e.g. ``http://127.0.0.1:8765/`` (without the token).
        token: The token every request must carry, or None when none is needed.
        host: The address the server is bound to.
        port: The port it listens on (the chosen one when 0 was asked for).
    """

    def __init__(self, store: SqlStore, httpd: _HTTPServer, token: str | None) -> None:
        self._store = store
        self._cache = TrialCache(store)
        self._httpd = httpd
        self.token = token
        host, port = httpd.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.cookie_name = _TOKEN_COOKIE.format(port=self.port)
        shown = self.host
        if self.host in _WILDCARDS:
            shown = "127.0.0.1" if httpd.address_family == socket.AF_INET else "::1"
        netloc = f"[{shown}]" if ":" in shown else shown
        self.url = f"{'https' if httpd.tls else 'http'}://{netloc}:{self.port}/"
        self._hosts = {self.host.lower(), *_LOOPBACK_NAMES}
        self._wildcard = self.host in _WILDCARDS
        if self._wildcard:
            self._hosts |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        httpd.dashboard = self
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Start serving in a background thread (:func:`serve` does it)."""
        self._thread.start()

    @property
    def store_target(self) -> str:
        """The store being shown: its file path, or its URL without the password."""
        if self._store.url.get_backend_name() == "sqlite":
            return os.fspath(self._store.target)
        return self._store.url.render_as_string(hide_password=True)

    # -- request checks ----------------------------------------------------------------------
    def host_allowed(self, header: str) -> bool:
        """Whether a request's Host header names this server (DNS-rebinding protection)."""
        parsed = _host_of(header)
        if parsed is None:
            return False
        name, port = parsed
        if port != self.port:
            return False
        return name in self._hosts or (self._wildcard and _is_ip(name))

    def token_matches(self, given: str) -> bool:
        """Whether ``given`` is the token (compared in constant time)."""
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def cookie_header(self, *, secure: bool = False) -> str:
        """The Set-Cookie value that carries the token for later requests.

        ``HttpOnly`` (no script reads it); ``Secure`` when the page is reached over HTTPS (a
        browser then never sends it over plain HTTP); ``SameSite=Lax``, not ``Strict``: the
        printed address still works when opened from a link on another site, and a read-only
        GET API offers nothing to forge.
        """
        flags = "; Secure" if secure else ""
        return f"{self.cookie_name}={self.token}; Path=/; HttpOnly{flags}; SameSite=Lax"

    # -- views (each reads the store afresh) ---------------------------------------------------
    def release_connections(self) -> None:
        """Close the store's idle connections: the next request reads on a fresh one.

        No SQLite connection outlives a request, so none keeps a stale view of the write-ahead
        log when code elsewhere in this process opens and closes the database file (a POSIX
        ``close()`` drops every lock the process holds on it, which SQLite relies on).
        """
        self._store.engine.dispose()

    def _summary(self, record: ExperimentRecord, trials: list[TrialRecord]) -> dict[str, Any]:
        objectives = record.objectives
        front = self._cache.front(record, objectives) if len(objectives) > 1 else None
        return experiment_summary(record, trials, front=front)

    def experiments_view(self, query: dict[str, str]) -> dict[str, Any]:
        """``/api/experiments``: every experiment with its counts and best value."""
        summaries = []
        for record in self._store.list_experiments():
            summaries.append(self._summary(record, self._cache.trials(record)))
        return {"store": self.store_target, "experiments": summaries}

    def trials_view(self, query: dict[str, str]) -> dict[str, Any]:
        """``/api/trials?name=N&after=K&refresh=a,b``: the experiment's summary, its trials
        after K, and trials a and b again (the page's rows that were running or stale).

        Raises:
            ConfigError: For a missing name, an ``after`` that is not an integer >= -1, a
                ``refresh`` that is not a list of at most 1,000 trial numbers, or an unknown
                experiment.
        """
        name = query.get("name")
        if not name:
            raise ConfigError("give the experiment as ?name=NAME")
        raw = query.get("after", "-1")
        try:
            after = int(raw)
        except ValueError:
            after = -2
        if after < -1:
            raise ConfigError(f"after must be a trial number >= -1, got {raw!r}")
        refresh = _numbers(query.get("refresh", ""))
        record = self._store.get_experiment(name)
        trials = self._cache.trials(record)
        return {
            "experiment": self._summary(record, trials),
            "trials": trial_rows(trials, record.objectives, after=after, refresh=refresh),
        }

    # -- life cycle --------------------------------------------------------------------------
    def wait(self) -> None:
        """Block until the server stops; Ctrl-C raises KeyboardInterrupt here."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def shutdown(self) -> None:
        """Stop serving, close the socket and the store; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        self._store.close()

    def __enter__(self) -> DashboardServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


def serve(
    db: str | os.PathLike[str] | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    allow_remote: bool = False,
    token: str | None = None,
    tls_cert: str | os.PathLike[str] | None = None,
    tls_key: str | os.PathLike[str] | None = None,
) -> DashboardServer:
    """Serve the dashboard of store ``db`` in a background thread and return the server.

    Example:
        >>> server = nasforge.dashboard.serve("runs.db", port=0)
        >>> print(server.url)   # open it in a browser
        >>> server.shutdown()

    Args:
        db: Store path or SQLAlchemy URL; defaults to ``$NASFORGE_DB`` or ``nasforge.db``.
            It is opened read-only and must exist.
        host: Address to bind; a loopback one unless ``allow_remote``.
        port: TCP port; 0 picks a free one (see the returned server's ``url``).
        allow_remote: Allow a non-loopback ``host``; every request then needs the token.
        token: The token to require (16+ URL-safe characters); generated when
            ``allow_remote`` is set and none is given. Giving one on loopback requires it too.
        tls_cert: A PEM certificate (chain) to serve HTTPS with, with ``tls_key`` (its PEM
            private key); the token's cookie is then marked ``Secure``.

    Returns:
        The running server: ``url``, ``token``, ``wait()``, ``shutdown()``.

    Raises:
        ConfigError: For a non-loopback host without ``allow_remote``, a bad port or token,
            or TLS files that cannot be used (or only one of the two).
        StoreError: If there is no store at ``db`` or it cannot be read.
        DashboardError: If the address cannot be bound (e.g. the port is in use).
    """
    _check_options(host, port, allow_remote, token)
    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("HTTPS needs both a certificate and its key: --tls-cert and --tls-key")
    tls = tls_context(tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
    if allow_remote and token is None:
        token = secrets.token_urlsafe(24)
    store = open_store(db, create=False)
    server_class = _HTTPServer6 if ":" in host else _HTTPServer
    try:
        httpd = server_class((host, port), _Handler)
    except OSError as exc:
        store.close()
        reason = exc.strerror or str(exc)
        raise DashboardError(
            f"cannot listen on {host}:{port}: {reason}; choose another --port (0 picks a free "
            "one) or --host"
        ) from None
    httpd.tls = tls
    server = DashboardServer(store, httpd, token)
    server.start()
    return server


MAX_REFRESH = 1_000
"""Trial numbers a page may ask to read again in one request."""


def _numbers(text: str) -> set[int]:
    """``"3,7,9"`` as {3, 7, 9}.

    Raises:
        ConfigError: Unless it is at most ``MAX_REFRESH`` comma-separated integers >= 0.
    """
    if not text:
        return set()
    parts = text.split(",")
    if len(parts) > MAX_REFRESH or not all(p.isdigit() for p in parts):
        raise ConfigError(
            f"refresh must be at most {MAX_REFRESH} comma-separated trial numbers, got "
            f"{text[:40]!r}"
        )
    return {int(p) for p in parts}
