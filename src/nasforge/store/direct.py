"""The search loop's hot writes on a SQLite file, run on one held driver connection.

Each trial costs the loop two transactions (reserve the trial, store its result). Through
the engine, each statement pays for a pool checkout, connection events, a compiled-cache
look-up and a result proxy: about five times what SQLite itself spends on these statements.
:class:`DirectSqlite` runs the same SQLAlchemy statements, compiled once for SQLite's dialect,
on a driver connection that the store holds for its lifetime, inside ``BEGIN IMMEDIATE`` ...
``COMMIT`` as the engine's writer does. The connection comes from the engine, so it carries the
same settings (journal mode, synchronous level, busy timeout); driver errors are raised as the
engine raises them (:class:`sqlalchemy.exc.DBAPIError` subclasses), so the store's retries and
messages apply unchanged.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.expression import Executable

__all__ = ["Cursor", "DirectSqlite", "Transaction"]

T = TypeVar("T")


class Statement:
    """A statement compiled once: its SQL text, and how to bind its parameters (in order,
    each through its type's bind processor, as the engine binds it: JSON serialised with the
    engine's serializer, booleans as integers)."""

    __slots__ = ("binds", "row", "source", "sql")

    def __init__(self, source: Executable, engine: Engine, columns: Iterable[str]) -> None:
        dialect = engine.dialect
        compiled = source.compile(dialect=dialect, column_keys=list(columns))  # type: ignore[attr-defined]
        self.source = source
        self.sql = str(compiled)
        self.row: Any = None  # the type of its rows, from the first execution's columns
        binds = [compiled.binds[name] for name in compiled.positiontup or ()]
        # (name, type's processor, value of a literal the statement carries, e.g. ``max + 1``)
        self.binds = tuple(
            (b.key, _processor(b.type, dialect), _MISSING if b.required else b.effective_value)
            for b in binds
        )

    def values(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        out = []
        for name, convert, literal in self.binds:
            value = params[name] if literal is _MISSING or name in params else literal
            out.append(value if convert is None else convert(value))
        return tuple(out)


_MISSING = object()


def _processor(kind: sa.types.TypeEngine[Any], dialect: Any) -> Callable[[Any], Any] | None:
    """The type's bind processor; for JSON, empty objects and lists (most of a reserved
    trial's columns) answered without the serializer: its text for them is ``{}`` and ``[]``."""
    process = kind.bind_processor(dialect)
    if process is None or not isinstance(kind, sa.JSON):
        return process

    def json_text(value: Any) -> Any:
        if type(value) is dict and not value:
            return "{}"
        if type(value) is list and not value:
            return "[]"
        return process(value)

    return json_text


class Transaction(Protocol):
    """What a write transaction runs statements with: SQLAlchemy statements and parameters,
    as given to ``Connection.execute``."""

    def rows(self, statement: Executable, params: Mapping[str, Any]) -> list[Any]:
        """The rows ``statement`` returns, each with its columns as attributes."""

    def rowcount(self, statement: Executable, params: Mapping[str, Any]) -> int:
        """How many rows ``statement`` changed."""


class Cursor:
    """The :class:`Transaction` of :meth:`DirectSqlite.write`."""

    __slots__ = ("_conn", "_direct")

    def __init__(self, direct: DirectSqlite, conn: sqlite3.Connection) -> None:
        self._direct = direct
        self._conn = conn

    def rows(self, statement: Executable, params: Mapping[str, Any]) -> list[Any]:
        """The rows ``statement`` returns, each with its columns as attributes."""
        compiled = self._direct.statement(statement, params)
        cursor = _execute(self._conn, compiled.sql, compiled.values(params))
        if compiled.row is None:
            compiled.row = namedtuple("Row", [d[0] for d in cursor.description or ()])  # type: ignore[misc]
        return [compiled.row._make(values) for values in cursor.fetchall()]

    def rowcount(self, statement: Executable, params: Mapping[str, Any]) -> int:
        """How many rows ``statement`` changed."""
        compiled = self._direct.statement(statement, params)
        return int(_execute(self._conn, compiled.sql, compiled.values(params)).rowcount)


CHECKPOINT_EVERY = 256
"""Write transactions between two checkpoints of the write-ahead log (about 1,000 pages of
a search's trials, SQLite's own default interval)."""


class DirectSqlite:
    """One driver connection of ``engine`` (a SQLite file in WAL mode), held for the loop's
    writes, and the checkpoints of the write-ahead log in a thread of their own.

    SQLite checkpoints the log inside the commit that fills it (about 6 ms here, every 150
    trials of a table search: a tenth of the loop's time); this connection does not, and every
    :data:`CHECKPOINT_EVERY` commits a thread runs a passive checkpoint on another connection
    (SQLite's I/O runs without the GIL, beside the loop), which syncs the log as often as
    SQLite's default would. A passive checkpoint never catches up with a writer that goes on
    writing, so the log would only grow: right after it the thread runs a restarting one,
    which holds the writers back only while it copies the few pages written meanwhile, and
    lets the next commit write the log from its start again (so the log stays about as small
    as with SQLite's own checkpoints).

    Thread-safe: a lock serialises the transactions of threads sharing the store. The
    connection is taken from the engine on first use and handed back by :meth:`close`.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._proxy: Any = None
        self._statements: dict[tuple[int, tuple[str, ...]], Statement] = {}
        self._commits = 0
        self._checkpointer: _Checkpointer | None = None

    def statement(self, statement: Executable, params: Mapping[str, Any]) -> Statement:
        """``statement`` compiled for SQLite, once per statement and parameter names (an
        INSERT or UPDATE sets the columns named by its parameters)."""
        key = (id(statement), tuple(params))
        found = self._statements.get(key)
        if found is None or found.source is not statement:
            found = self._statements[key] = Statement(statement, self.engine, key[1])
        return found

    def write(self, work: Callable[[Transaction], T]) -> T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction (rolled back
        if it raises)."""
        with self._lock:
            if self._proxy is None:
                try:
                    self._proxy = self.engine.raw_connection()
                    self._proxy.driver_connection.execute("PRAGMA wal_autocheckpoint = 0")
                except sqlite3.Error as exc:
                    raise _as_engine_error("connect", exc) from None
            conn: sqlite3.Connection = self._proxy.driver_connection
            try:
                _execute(conn, "BEGIN IMMEDIATE", ())
                out = work(Cursor(self, conn))
                _execute(conn, "COMMIT", ())
                self._commits += 1
                if self._commits % CHECKPOINT_EVERY == 0:
                    if self._checkpointer is None:
                        self._checkpointer = _Checkpointer(self.engine)
                    self._checkpointer.wake()
                return out
            except BaseException:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        self._drop()  # a connection that cannot roll back is not reused
                raise

    def _drop(self) -> None:
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            with contextlib.suppress(Exception):  # it is discarded either way
                proxy.invalidate()

    def close(self) -> None:
        """Stop the checkpoints' thread and hand the connection back to the engine's pool
        (checkpointing on commit again, as the pool's other connections do)."""
        with self._lock:
            checkpointer, self._checkpointer = self._checkpointer, None
            if checkpointer is not None:
                checkpointer.stop()
            proxy, self._proxy = self._proxy, None
            if proxy is not None:
                with contextlib.suppress(sqlite3.Error):
                    proxy.driver_connection.execute("PRAGMA wal_autocheckpoint = 1000")
                proxy.close()


class _Checkpointer:
    """A thread that checkpoints the log whenever it is woken."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="nasforge-checkpoint", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wanted.set()

    def stop(self) -> None:
        self._stopping = True
        self._wanted.set()
        self._thread.join()

    def _run(self) -> None:
        proxy: Any = None
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopping:
                    return
                if proxy is None:
                    proxy = self._engine.raw_connection()
                conn = proxy.driver_connection
                # a failing disk fails the loop's next write, which says so; nothing to add
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # the bulk
                    conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()  # the rest
        except Exception:  # the engine is gone (the store closed under it): nothing to do
            return
        finally:
            if proxy is not None:
                with contextlib.suppress(Exception):
                    proxy.close()


def _execute(conn: sqlite3.Connection, sql: str, values: Sequence[Any]) -> sqlite3.Cursor:
    try:
        return conn.execute(sql, values)
    except sqlite3.Error as exc:
        raise _as_engine_error(sql, exc) from None


def _as_engine_error(sql: str, exc: sqlite3.Error) -> sa.exc.StatementError:
    """``exc`` as the engine raises a driver error (``OperationalError`` for a locked or
    failing database, and so on), with the driver's exception as ``orig``."""
    return sa.exc.DBAPIError.instance(sql, None, exc, sqlite3.Error)
