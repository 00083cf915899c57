"""SQLAlchemy store: a SQLite file by default (WAL mode), or any SQLAlchemy URL (PostgreSQL)."""

from __future__ import annotations

import json
import math
import os
import random
import sqlite3
import time
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from nasforge.architecture import Architecture
from nasforge.config import check_experiment_name
from nasforge.errors import ConfigError, DamagedRowWarning, NasforgeError, StoreError
from nasforge.paths import DEFAULT_DB
from nasforge.result import Result, Status
from nasforge.store.base import (
    STALE_PREFIX,
    DamagedRow,
    ExperimentRecord,
    Limit,
    PhaseRecord,
    Reservation,
    Store,
    TrialRecord,
)
from nasforge.store.direct import DirectSqlite, Transaction

__all__ = ["DEFAULT_DB", "SCHEMA_VERSION", "SqlStore", "open_store", "store_target"]

SCHEMA_VERSION = 4
"""1: finished trials only. 2: RUNNING trials with owner, heartbeat, attempt and lost flag.
3: the records of a search's supernet phase (``nasforge_phase``)."""
_WRITE_RETRIES = 8
_SCHEMA_LOCK = 0x6E6173666F7267  # PostgreSQL advisory lock key held while creating the schema
_MEMORY = (None, "", ":memory:")

T = TypeVar("T")

metadata = sa.MetaData()
meta_table = sa.Table(
    "nasforge_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
experiments = sa.Table(
    "nasforge_experiments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
trials = sa.Table(
    "nasforge_trials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "experiment_id",
        sa.Integer,
        sa.ForeignKey("nasforge_experiments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("arch", sa.JSON, nullable=False),
    sa.Column("key", sa.String(512), nullable=False),
    sa.Column("fidelity", sa.Integer, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("test_metrics", sa.JSON, nullable=False),
    sa.Column("costs", sa.JSON, nullable=False),
    sa.Column("curve", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("wall_time", sa.Float, nullable=True),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
    sa.Column("lost", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("owner", sa.String(255), nullable=True),
    sa.Column("heartbeat_at", sa.Float, nullable=True),
    sa.Column("device", sa.String(64), nullable=True),
    sa.Column("device_name", sa.String(255), nullable=True),
    sa.UniqueConstraint("experiment_id", "number", name="uq_trial_number"),
    sa.Index("ix_trials_experiment_key", "experiment_id", "key"),
    sa.Index("ix_trials_experiment_status", "experiment_id", "status"),
)
phase_table = sa.Table(
    "nasforge_phase",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "experiment_id",
        sa.Integer,
        sa.ForeignKey("nasforge_experiments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.UniqueConstraint("experiment_id", "kind", "step", name="uq_phase_step"),
)
_ADDED_IN_2 = ("attempt", "lost", "owner", "heartbeat_at")
_ADDED_IN_4 = ("device", "device_name")
_JSON = ("status", "metrics", "test_metrics", "costs", "curve")  # converted for the record

_SCORES = ("metrics", "test_metrics", "costs")


def _raw(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """``column`` as stored, unconverted, so that one damaged value is reported instead of
    failing the whole query: JSON as its text, the rest without SQLAlchemy's processing."""
    if isinstance(column.type, sa.JSON):
        return sa.cast(column, sa.Text).label(column.name)
    return sa.type_coerce(column, sa.types.NullType()).label(column.name)


_READ_TRIALS = sa.select(*(_raw(c) for c in trials.c))
_READ_EXPERIMENTS = sa.select(*(_raw(c) for c in experiments.c))

# Statements built once (their compiled form is cached); values come as parameters.
_OF_EXPERIMENT = trials.c.experiment_id == sa.bindparam("eid")
# Queries on a few rows of one key or status carry no ORDER BY: their rows are sorted here,
# since SQLite, asked to order by number, walks the (experiment, number) index over every trial
# of the experiment instead of the key's or status's index (O(stored trials) per query).
_SAME_KEY = _READ_TRIALS.where(_OF_EXPERIMENT, trials.c.key == sa.bindparam("k"))
_SAME = {
    "any": _SAME_KEY,
    "none": _SAME_KEY.where(trials.c.fidelity.is_(None)),
    "eq": _SAME_KEY.where(trials.c.fidelity == sa.bindparam("fid")),
}
_NEXT_NUMBER = sa.select(sa.func.coalesce(sa.func.max(trials.c.number) + 1, 0)).where(
    _OF_EXPERIMENT
)  # the (experiment, number) index answers it in O(log n); inside the INSERT
_PG_KEY_LOCK = sa.select(
    sa.func.pg_advisory_xact_lock(
        sa.cast(sa.bindparam("eid"), sa.Integer), sa.func.hashtext(sa.bindparam("k"))
    )
)  # held until the transaction ends; keys with the same hash just wait for each other
_PG_INSERT = (
    postgresql.insert(trials)
    .values(number=_NEXT_NUMBER.scalar_subquery())
    .on_conflict_do_nothing(constraint="uq_trial_number")
    .returning(trials.c.id, trials.c.number)
)
_OTHERS = sa.and_(_OF_EXPERIMENT, trials.c.id != sa.bindparam("own"))
_COUNT = {  # what a budget counts, but for the row just inserted
    Limit.TRIALS: sa.select(sa.func.count()).where(_OTHERS),
    Limit.ARCHS: sa.select(sa.func.count(sa.distinct(trials.c.key))).where(_OTHERS),
}
_MINE = sa.and_(
    trials.c.id == sa.bindparam("tid"),
    trials.c.status == Status.RUNNING.value,
    trials.c.attempt == sa.bindparam("att"),
    trials.c.owner == sa.bindparam("own"),
)
_UPDATE_MINE = trials.update().where(_MINE)  # SET: the parameters named after columns


def _clip(text: str | None, size: int) -> str | None:
    """``text`` cut to a column of ``size`` characters."""
    return None if text is None else text[:size]


def _finite(values: Mapping[str, float]) -> dict[str, float | None]:
    """JSON cannot hold NaN/inf portably: store them as null (read back as NaN)."""
    return {k: (v if math.isfinite(v) else None) for k, v in values.items()}


def _floats(values: Mapping[str, Any] | None) -> dict[str, float]:
    return {k: (math.nan if v is None else float(v)) for k, v in (values or {}).items()}


class _Damaged(Exception):
    """A stored value that cannot be read: its column and what is wrong with it."""

    def __init__(self, column: str, detail: str) -> None:
        super().__init__(column, detail)
        self.column = column
        self.detail = detail


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json(row: Any, column: str) -> Any:
    text = getattr(row, column)
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _Damaged(column, f"is not JSON ({detail}): {_shown(text)}") from None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scores_of(value: Any, column: str) -> dict[str, float]:
    """A stored ``{name: number or null}`` object as floats (null reads as NaN)."""
    if not isinstance(value, dict):
        raise _Damaged(column, f"holds {_shown(value)}; a JSON object of numbers is expected")
    for name, v in value.items():
        if v is not None and not _number(v):
            raise _Damaged(column, f"holds {name!r}: {_shown(v)}; a number or null is expected")
    return _floats(value)


def _int_of(row: Any, column: str, *, optional: bool = False) -> int | None:
    value = getattr(row, column)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Damaged(column, f"holds {_shown(value)}; a whole number >= 0 is expected")
    return value


def _time_of(row: Any, column: str) -> float | None:
    value = getattr(row, column)
    if value is None:
        return None
    if not _number(value) or not math.isfinite(value) or value < 0:
        raise _Damaged(column, f"holds {_shown(value)}; a finite number >= 0 is expected")
    return float(value)


def _text_of(row: Any, column: str) -> str | None:
    value = getattr(row, column)
    if value is not None and not isinstance(value, str):
        raise _Damaged(column, f"holds {_shown(value)}; text is expected")
    return value


class _EngineTransaction:
    """A :class:`~nasforge.store.direct.Transaction` on an engine connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def rows(self, statement: sa.Executable, params: Mapping[str, Any]) -> list[Any]:
        return list(self._conn.execute(statement, params))

    def rowcount(self, statement: sa.Executable, params: Mapping[str, Any]) -> int:
        return int(self._conn.execute(statement, params).rowcount)


class _Spent(Exception):
    """Raised inside a reservation to roll it back: the budget is spent."""


def _by_number(rows: Iterable[Any]) -> list[Any]:
    """Trial rows in trial order (see ``_SAME``); a damaged number sorts last."""

    def order(row: Any) -> tuple[int, int, str]:
        number = row.number
        return (0, number, "") if _number(number) else (1, 0, str(number))

    return sorted(rows, key=order)


_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))  # built once: ~2x faster


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def _is_url(target: str) -> bool:
    return "://" in target


def _sqlite_tables(path: Path) -> set[str] | None:
    """The tables of the SQLite database at ``path`` (an empty file has none), or ``None``
    when the file is not a SQLite database.

    Asks SQLite itself, first as an immutable file: nothing is written to a file that may not
    be ours, nor beside it (a read-write connection would switch it to WAL mode, and a plain
    read-only one creates the ``-shm`` and ``-wal`` files of a WAL database). Where that read
    fails (a damaged file, or one changed by a writer during the read) it asks again with a
    normal read-only connection, which sees the file consistently. Opening the file with
    ``open()`` and closing it would drop every POSIX lock this process holds on the database
    through other connections (SQLite's documented pitfall), letting another process's
    checkpoint discard committed trials.
    """
    base = path.resolve().as_uri()
    for uri in (f"{base}?mode=ro&immutable=1", f"{base}?mode=ro"):
        try:
            conn = sqlite3.connect(uri, uri=True)
            try:
                query = "SELECT name FROM sqlite_master WHERE type = 'table'"
                return {str(r[0]) for r in conn.execute(query).fetchall()}
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            if uri.endswith("immutable=1"):
                continue  # perhaps read while being written: ask the consistent way
            if "not a database" in str(exc):
                return None
            raise StoreError(f"cannot read store {path}: {exc}") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _check_sqlite_path(path: Path, *, create: bool) -> None:
    """Refuse files that are not SQLite databases, and unwritable or missing locations."""
    if path.is_dir():
        raise StoreError(f"{path} is a directory; give a database file path (e.g. {DEFAULT_DB})")
    if path.exists():
        if not os.access(path, os.R_OK):
            raise StoreError(f"cannot read store {path}: permission denied")
        tables = _sqlite_tables(path)
        if tables is None:
            raise StoreError(
                f"{path} is not a SQLite database (corrupted, or another kind of file); "
                "point --db at a nasforge store or at a new file"
            )
        _refuse_foreign(path, tables)
        if not os.access(path, os.W_OK) and create:
            raise StoreError(f"store {path} is not writable")
        return
    if not create:
        raise StoreError(f"no nasforge store at {path}; run a search first or pass --db")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise StoreError(f"cannot create store {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"cannot create store {path}: directory {parent} is not writable")


def _on_read_only_medium(database: str | None) -> bool:
    """Whether the SQLite file ``database`` (which exists) cannot be written where it lies:
    a read-only file system, or a file or directory this process may not write. SQLite in WAL
    mode must create files beside the database even to read it."""
    if not database or database in _MEMORY:
        return False
    path = Path(database)
    parent = path.parent if str(path.parent) else Path(".")
    return not (os.access(path, os.W_OK) and os.access(parent, os.W_OK | os.X_OK))


def _immutable_url(path: Path) -> sa.URL:
    """A read-only URL of ``path`` that SQLite opens without writing anything beside it.

    Raises:
        StoreError: When a write-ahead log holds trials not yet merged into the file: they
            could not be read without writing, and would be missed.
    """
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreError(
            f"store {path} is on a read-only medium and its last writes are still in {wal} "
            "(a search was killed or is running); copy both files to a writable place"
        )
    return sa.URL.create(
        "sqlite",
        database=f"{path.resolve().as_uri()}?mode=ro&immutable=1",
        query={"uri": "true"},
    )


def _refuse_foreign(target: str | Path, tables: set[str]) -> None:
    """Refuse a database whose tables are not (all) nasforge's."""
    if "nasforge_meta" in tables or not tables - {t.name for t in metadata.sorted_tables}:
        return
    shown = ", ".join(sorted(tables)[:5])
    raise StoreError(
        f"{target} belongs to another application (tables: {shown}); "
        "give nasforge a database of its own"
    )


class SqlStore(Store):
    """A :class:`Store` on SQLAlchemy.

    SQLite files run in WAL mode with ``synchronous=NORMAL`` (a commit survives a crash of the
    process; ``durable=True`` selects ``synchronous=FULL``, which also survives power loss),
    a busy timeout, ``BEGIN IMMEDIATE`` for writes and retried writes on lock contention.
    Any other SQLAlchemy URL (``postgresql+psycopg://...``) is used as given.

    Args:
        target: A file path (SQLite) or an SQLAlchemy URL.
        create: Create the file and schema when missing. Read-only commands pass ``False`` so
            that a typo in a path does not leave an empty database behind.
        durable: Use ``synchronous=FULL`` on SQLite.
        busy_timeout: Seconds a SQLite connection waits for a lock.

    Raises:
        StoreError: If the target is not a nasforge store, is damaged, unreachable, written by
            a newer nasforge, or cannot be created.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] = DEFAULT_DB,
        *,
        create: bool = True,
        durable: bool = False,
        busy_timeout: float = 30.0,
    ) -> None:
        target = os.fspath(target)
        self.target = target
        self.is_sqlite = not _is_url(target) or target.startswith("sqlite")
        try:
            if _is_url(target):
                url = sa.make_url(target)
                if url.get_backend_name() == "sqlite" and url.database not in (
                    None,
                    "",
                    ":memory:",
                ):
                    _check_sqlite_path(Path(url.database or ""), create=create)
            else:
                _check_sqlite_path(Path(target), create=create)
                url = sa.URL.create("sqlite", database=target)
        except sa.exc.ArgumentError as exc:
            raise StoreError(f"{target!r} is not a valid database URL or path: {exc}") from None
        self.read_only = not create and self.is_sqlite and _on_read_only_medium(url.database)
        if self.read_only:
            url = _immutable_url(Path(url.database or ""))
        self.url = url
        self.engine = self._make_engine(
            url, durable=durable, busy_timeout=busy_timeout, read_only=self.read_only
        )
        self._writer = self.engine.execution_options(nasforge_write=True)
        self._direct = (
            DirectSqlite(self.engine)
            if self.is_sqlite and url.database not in _MEMORY and not self.read_only
            else None
        )  # the loop's writes on a SQLite file (reserve, finish) skip the engine's overhead
        self._reported: set[tuple[str, int | None]] = set()  # damaged rows already warned of
        self._names: dict[int, str] = {}  # experiment names by id, for messages
        # built once: the next free number is computed inside the INSERT, under the write lock
        self._insert_trial = (
            trials.insert()
            .values(number=_NEXT_NUMBER.scalar_subquery())
            .returning(trials.c.id, trials.c.number)
        )
        try:
            self._prepare_schema(create=create)
        except BaseException:
            self.engine.dispose()
            raise

    # -- set-up ----------------------------------------------------------------------------
    @staticmethod
    def _make_engine(
        url: sa.URL, *, durable: bool, busy_timeout: float, read_only: bool = False
    ) -> Engine:
        if url.get_backend_name() != "sqlite":
            try:
                return sa.create_engine(
                    url, json_serializer=_dumps, pool_pre_ping=True, pool_size=2
                )
            except ModuleNotFoundError as exc:
                raise StoreError(
                    f"the driver for {url.get_backend_name()} is not installed ({exc.name}); "
                    "install it with: pip install 'nasforge[postgres]'"
                ) from None
        engine = sa.create_engine(url, json_serializer=_dumps)
        synchronous = "FULL" if durable else "NORMAL"

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # nasforge issues BEGIN itself (below)
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if url.database not in _MEMORY and not read_only:
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute(f"PRAGMA synchronous = {synchronous}")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("nasforge_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def _prepare_schema(self, *, create: bool) -> None:
        if self.read_only:
            self._check_read_only_schema()
            return

        def prepare() -> None:
            with self._writer.begin() as conn:
                if conn.dialect.name == "postgresql":  # processes starting at once: one creates
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
                names = set(sa.inspect(conn).get_table_names())
                if "nasforge_meta" in names:
                    if self._check_version(conn) < SCHEMA_VERSION:
                        self._upgrade(conn)
                    return
                _refuse_foreign(self.target, names)
                if not create:
                    raise StoreError(f"{self.target} holds no nasforge store")
                metadata.create_all(conn)
                conn.execute(
                    meta_table.insert(), [{"key": "schema_version", "value": str(SCHEMA_VERSION)}]
                )

        self._run(prepare, write=True)

    def _check_read_only_schema(self) -> None:
        """A store on a read-only medium is read as it is: it cannot be created or upgraded."""

        def check() -> None:
            with self.engine.connect() as conn:
                names = set(sa.inspect(conn).get_table_names())
                if "nasforge_meta" not in names:
                    _refuse_foreign(self.target, names)
                    raise StoreError(f"{self.target} holds no nasforge store")
                if self._check_version(conn) < SCHEMA_VERSION:
                    raise StoreError(
                        f"store {self.target} was written by an earlier nasforge and is on a "
                        "read-only medium, so it cannot be upgraded; copy it to a writable place"
                    )

        self._run(check)

    def _upgrade(self, conn: Connection) -> None:
        """Bring a schema-1, -2 or -3 store to the current schema, in the caller's
        transaction."""
        have = {c["name"] for c in sa.inspect(conn).get_columns(trials.name)}
        for name in (*_ADDED_IN_2, *_ADDED_IN_4):
            if name in have:
                continue
            column = trials.c[name]
            kind = column.type.compile(dialect=conn.dialect)
            default = ""
            if column.server_default is not None:
                default = " DEFAULT " + {"attempt": "1", "lost": "0"}[name]
                if name == "lost" and conn.dialect.name == "postgresql":
                    default = " DEFAULT false"
            null = "" if column.nullable else " NOT NULL"
            conn.exec_driver_sql(
                f"ALTER TABLE {trials.name} ADD COLUMN {name} {kind}{null}{default}"
            )
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS ix_trials_experiment_status ON {trials.name} "
            "(experiment_id, status)"
        )
        metadata.create_all(conn, tables=[phase_table])  # added in 3
        conn.execute(
            meta_table.update()
            .where(meta_table.c.key == "schema_version")
            .values(value=str(SCHEMA_VERSION))
        )

    def _check_version(self, conn: Connection) -> int:
        row = conn.execute(
            sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
        ).first()
        try:
            version = int(row[0]) if row else -1
        except ValueError:
            version = -1
        if version < 1:
            raise StoreError(f"{self.target} has a damaged nasforge_meta table (no schema version)")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.target} was written by a newer nasforge (schema {version}, this one "
                f"reads up to {SCHEMA_VERSION}); upgrade nasforge"
            )
        return version

    # -- error handling -------------------------------------------------------------------
    def _run(self, fn: Callable[[], T], *, write: bool = False) -> T:
        """Run ``fn`` turning driver errors into StoreError and retrying locked writes."""
        for attempt in range(_WRITE_RETRIES):
            try:
                return fn()
            except NasforgeError:
                raise
            except OperationalError as exc:
                if write and "locked" in str(exc.orig) and attempt + 1 < _WRITE_RETRIES:
                    time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
                    continue
                raise self._error(exc) from None
            except SQLAlchemyError as exc:
                raise self._error(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, exc: SQLAlchemyError) -> StoreError:
        detail = str(exc.orig) if isinstance(exc, DBAPIError) else str(exc)
        detail = detail.strip().splitlines()[0] if detail.strip() else type(exc).__name__
        if self.is_sqlite and ("malformed" in detail or "not a database" in detail):
            return StoreError(f"store {self.target} is damaged ({detail}); it cannot be used")
        kept = "every trial stored so far is kept; run the same command to resume once"
        if "database or disk is full" in detail or "No space left" in detail:
            return StoreError(
                f"the disk holding store {self.target} is full ({detail}); {kept} there is "
                "free space again"
            )
        if "disk I/O error" in detail:
            return StoreError(
                f"store {self.target}: the disk reported an I/O error ({detail}); {kept} the "
                "disk works again"
            )
        if "readonly database" in detail or "Read-only file system" in detail:
            return StoreError(
                f"store {self.target} cannot be written: its file or medium is read-only "
                f"({detail}); {kept} it is writable"
            )
        if self.is_sqlite and "unable to open database file" in detail:
            return StoreError(
                f"cannot open or create store {self.target}: the location is not writable"
            )
        return StoreError(f"store {self.target}: {detail}")

    # -- experiments ----------------------------------------------------------------------
    @staticmethod
    def _experiment(row: Any) -> ExperimentRecord:
        """The record of a stored experiment row.

        Raises:
            _Damaged: If a value cannot be read.
        """
        config = _json(row, "config")
        if not isinstance(config, dict):
            raise _Damaged("config", f"holds {_shown(config)}; a JSON object is expected")
        created_at = _time_of(row, "created_at")
        return ExperimentRecord(
            id=row.id, name=row.name, config=config, created_at=created_at or 0.0
        )

    def _warn(self, damage: DamagedRow) -> None:
        """Say once per store that a damaged row is skipped."""
        key = (damage.experiment, damage.number)
        if key not in self._reported:
            self._reported.add(key)
            warnings.warn(
                DamagedRowWarning(f"{damage}; it is skipped (`nasforge doctor` lists all)"),
                stacklevel=4,
            )

    def _find_experiment(self, name: str) -> ExperimentRecord | None:
        def find() -> Any:
            with self.engine.connect() as conn:
                return conn.execute(_READ_EXPERIMENTS.where(experiments.c.name == name)).first()

        row = self._run(find)
        if row is None:
            return None
        try:
            return self._experiment(row)
        except _Damaged as bad:
            damage = DamagedRow(name, None, bad.column, bad.detail)
            raise StoreError(f"{damage}; `nasforge doctor` lists what is damaged") from None

    def get_or_create_experiment(
        self, name: str, config: Mapping[str, Any]
    ) -> tuple[ExperimentRecord, bool]:
        existing = self._find_experiment(name)
        if existing is not None:
            return existing, False
        check_experiment_name(name)
        try:
            plain = json.loads(_dumps(config))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"experiment config must be plain JSON data: {exc}") from None

        def create() -> ExperimentRecord:
            now = time.time()
            with self._writer.begin() as conn:
                row = conn.execute(
                    experiments.insert()
                    .values(name=name, config=plain, created_at=now)
                    .returning(experiments.c.id)
                ).one()
            return ExperimentRecord(id=row.id, name=name, config=plain, created_at=now)

        try:
            return self._run(create, write=True), True
        except StoreError:
            # lost a race with another process creating the same name
            found = self._find_experiment(name)
            if found is None:
                raise
            return found, False

    def get_experiment(self, name: str) -> ExperimentRecord:
        found = self._find_experiment(name)
        if found is None:
            names = [e.name for e in self.list_experiments()]
            listed = ", ".join(names[-10:]) if names else "none yet"
            raise ConfigError(f"no experiment named {name!r} in {self.target}; stored: {listed}")
        return found

    def _experiment_rows(self) -> list[Any]:
        def fetch() -> list[Any]:
            with self.engine.connect() as conn:
                return list(conn.execute(_READ_EXPERIMENTS.order_by(experiments.c.id)).all())

        return self._run(fetch)

    def list_experiments(self) -> list[ExperimentRecord]:
        found = []
        for row in self._experiment_rows():
            try:
                found.append(self._experiment(row))
            except _Damaged as bad:
                self._warn(DamagedRow(str(row.name), None, bad.column, bad.detail))
        return found

    # -- trials --------------------------------------------------------------------------------
    @staticmethod
    def _lock_experiment(conn: Connection, experiment_id: int) -> None:
        """Serialise writers of one experiment's trials (a row lock on a server database;
        SQLite's ``BEGIN IMMEDIATE`` already serialises every writer)."""
        if conn.dialect.name != "sqlite":
            conn.execute(
                sa.select(experiments.c.id)
                .where(experiments.c.id == experiment_id)
                .with_for_update()
            ).first()

    def _write(
        self, experiment_id: int, work: Callable[[Transaction], T], *, lock: bool = True
    ) -> T:
        """Run ``work`` in one write transaction of the experiment's trials (retried while
        the database is locked): on a SQLite file through the store's held connection (SQLite
        serialises every writer), otherwise through the engine, serialised with the
        experiment's other writers unless ``lock`` is false."""
        direct = self._direct
        if direct is not None:
            return self._run(lambda: direct.write(work), write=True)

        def through_engine() -> T:
            with self._writer.begin() as conn:
                if lock:
                    self._lock_experiment(conn, experiment_id)
                return work(_EngineTransaction(conn))

        return self._run(through_engine, write=True)

    def _insert(self, tx: Transaction, params: dict[str, Any]) -> tuple[int, int]:
        row = tx.rows(self._insert_trial, {"eid": params["experiment_id"], **params})[0]
        return int(row.id), int(row.number)

    def add_trial(
        self,
        experiment_id: int,
        arch: Architecture,
        key: str,
        result: Result,
        *,
        started_at: float,
        finished_at: float,
    ) -> TrialRecord:
        params = {
            "experiment_id": experiment_id,
            "arch": arch.to_dict(),
            "key": key,
            "attempt": 1,
            "owner": None,
            "heartbeat_at": None,
            "started_at": started_at,
            **self._outcome(result, result.fidelity, finished_at),
        }

        trial_id, number = self._write(experiment_id, lambda tx: self._insert(tx, params))
        return self._record(trial_id, number, params, arch)

    @staticmethod
    def _outcome(result: Result, fidelity: int | None, finished_at: float) -> dict[str, Any]:
        """The columns a finished ``result`` sets."""
        reason = result.reason
        if result.lost and not (reason or "").startswith(STALE_PREFIX):
            reason = STALE_PREFIX + (reason or "the worker was lost")
        return {
            "fidelity": result.fidelity if result.fidelity is not None else fidelity,
            "status": result.status.value,
            "metrics": _finite(result.metrics),
            "test_metrics": _finite(result.test_metrics),
            "costs": _finite(result.costs),
            "curve": [_finite(point) for point in result.curve],
            "error": reason,
            "finished_at": finished_at,
            "wall_time": result.wall_time,
            "lost": bool(result.lost and result.status is Status.FAILED),
            "device": _clip(result.device, 64),
            "device_name": _clip(result.device_name, 255),
        }

    @staticmethod
    def _record(
        trial_id: int, number: int, p: Mapping[str, Any], arch: Architecture
    ) -> TrialRecord:
        return TrialRecord(
            id=trial_id,
            experiment_id=p["experiment_id"],
            number=number,
            arch=arch,
            key=p["key"],
            status=Status(p["status"]),
            metrics=_floats(p["metrics"]),
            test_metrics=_floats(p["test_metrics"]),
            costs=_floats(p["costs"]),
            curve=tuple(_floats(point) for point in p["curve"]),
            fidelity=p["fidelity"],
            error=p["error"],
            started_at=p["started_at"],
            finished_at=p["finished_at"],
            wall_time=p["wall_time"],
            attempt=p["attempt"],
            lost=p["lost"],
            owner=p["owner"],
            heartbeat_at=p["heartbeat_at"],
            device=p.get("device"),
            device_name=p.get("device_name"),
        )

    def reserve_trial(
        self,
        experiment_id: int,
        arch: Architecture,
        key: str,
        *,
        fidelity: int | None,
        owner: str,
        dedup_fidelity: bool,
        limit: tuple[Limit, int] | None = None,
    ) -> Reservation:
        kind = "any" if not dedup_fidelity else "none" if fidelity is None else "eq"
        same = _SAME[kind]
        ids = {"eid": experiment_id, "k": key, "fid": fidelity}
        # On a server database, processes reserving other architectures do not wait for each
        # other: a lock on the key alone makes the look-up and the insert of one key atomic,
        # and the unique trial number orders the inserts. The budget is then exact from the
        # number where every trial is a distinct architecture (no fidelities in the key).
        server = self.engine.dialect.name == "postgresql"
        concurrent = server and (limit is None or limit[0] is Limit.TRIALS or kind == "any")

        def reserve(tx: Transaction) -> Reservation:
            if concurrent:
                tx.rows(_PG_KEY_LOCK, ids)
            for row in _by_number(tx.rows(same, ids)):
                sound = self._sound(row)
                if sound is not None:  # a damaged row is passed over, never rewritten
                    return Reservation(existing=sound)
            now = time.time()
            params = {
                "experiment_id": experiment_id,
                "arch": arch.to_dict(),
                "key": key,
                "attempt": 1,
                "owner": owner,
                "heartbeat_at": now,
                "started_at": now,
                "fidelity": fidelity,
                "status": Status.RUNNING.value,
                "metrics": {},
                "test_metrics": {},
                "costs": {},
                "curve": [],
                "error": None,
                "finished_at": None,
                "wall_time": None,
                "lost": False,
                "device": None,
                "device_name": None,
            }
            if concurrent:
                trial_id, number = self._insert_numbered(tx, params)
            else:
                trial_id, number = self._insert(tx, params)
            # trials are numbered from 0 without gaps and never deleted: a number below the
            # limit settles it in O(1); at the limit, the trials or architectures stored before
            # this one are counted (once, at the end of a search; per reservation past it only
            # where fidelities repeat keys under an archs budget), and the insert rolled back
            if (
                limit is not None
                and number >= limit[1]
                and (concurrent or self._spent(tx, experiment_id, limit, trial_id))
            ):
                raise _Spent
            return Reservation(trial=self._record(trial_id, number, params, arch))

        try:
            return self._write(experiment_id, reserve, lock=not concurrent)
        except _Spent:
            return Reservation(spent=True)

    @staticmethod
    def _insert_numbered(tx: Transaction, params: dict[str, Any]) -> tuple[int, int]:
        """Insert with the next free number, without a lock on the experiment: a number
        taken meanwhile by another process (whose insert is waited for) is passed over."""
        values = {"eid": params["experiment_id"], **params}
        while True:
            rows = tx.rows(_PG_INSERT, values)
            if rows:
                return int(rows[0].id), int(rows[0].number)

    @staticmethod
    def _spent(
        tx: Transaction, experiment_id: int, limit: tuple[Limit, int], inserted: int
    ) -> bool:
        """Whether the trials (or distinct keys) stored before row ``inserted`` reach
        ``limit``."""
        found = tx.rows(_COUNT[limit[0]], {"eid": experiment_id, "own": inserted})
        return int(found[0][0]) >= limit[1]

    @staticmethod
    def _mine(trial: TrialRecord) -> dict[str, Any]:
        """Parameters of ``_MINE``: the row of ``trial`` if it is still RUNNING in the attempt
        the caller holds."""
        return {"tid": trial.id, "att": trial.attempt, "own": trial.owner}

    def finish_trial(
        self, trial: TrialRecord, result: Result, *, finished_at: float
    ) -> TrialRecord | None:
        values = self._outcome(result, trial.fidelity, finished_at)
        if values["lost"] and not result.started:  # its attempt never began: given back
            values["attempt"] = trial.attempt - 1
        params = {**values, "heartbeat_at": finished_at, **self._mine(trial)}

        if self._write(trial.experiment_id, lambda tx: tx.rowcount(_UPDATE_MINE, params)) != 1:
            return None
        return replace(
            trial,
            **{k: v for k, v in values.items() if k not in _JSON},
            status=result.status,
            metrics=dict(result.metrics),
            test_metrics=dict(result.test_metrics),
            costs=dict(result.costs),
            curve=result.curve,
            heartbeat_at=finished_at,
        )

    def heartbeat(self, trials_: list[TrialRecord], *, now: float) -> set[int]:
        if not trials_:
            return set()

        def update() -> set[int]:
            owned: set[int] = set()
            with self._writer.begin() as conn:
                for trial in trials_:
                    params = {"heartbeat_at": now, **self._mine(trial)}
                    if conn.execute(_UPDATE_MINE, params).rowcount == 1:
                        owned.add(trial.id)
            return owned

        return self._run(update, write=True)

    def mark_stale(
        self,
        experiment_id: int,
        trial: TrialRecord,
        reason: str,
        *,
        now: float,
        charge: bool = True,
    ) -> TrialRecord | None:
        reason = reason if reason.startswith(STALE_PREFIX) else STALE_PREFIX + reason
        if trial.experiment_id != experiment_id:
            raise ConfigError(f"trial {trial.number} is not of experiment {experiment_id}")
        params = {
            "status": Status.FAILED.value,
            "lost": True,
            "error": reason,
            "finished_at": now,
            "attempt": trial.attempt if charge else trial.attempt - 1,
            **self._mine(trial),
        }

        def update() -> int:
            with self._writer.begin() as conn:
                return int(conn.execute(_UPDATE_MINE, params).rowcount)

        if self._run(update, write=True) != 1:
            return None
        return replace(
            trial,
            status=Status.FAILED,
            lost=True,
            error=reason,
            finished_at=now,
            attempt=params["attempt"],
        )

    def claim_retry(
        self, experiment_id: int, *, owner: str, max_retries: int, now: float
    ) -> TrialRecord | None:
        pick = _READ_TRIALS.where(
            trials.c.experiment_id == experiment_id,
            trials.c.status == Status.FAILED.value,
            trials.c.lost.is_(True),
            trials.c.attempt <= max_retries,
        )

        def claim() -> TrialRecord | None:
            with self._writer.begin() as conn:
                self._lock_experiment(conn, experiment_id)
                old = next(filter(None, map(self._sound, _by_number(conn.execute(pick)))), None)
                if old is None:
                    return None
                values = {
                    "status": Status.RUNNING.value,
                    "lost": False,
                    "attempt": old.attempt + 1,
                    "owner": owner,
                    "heartbeat_at": now,
                    "started_at": now,
                    "finished_at": None,
                    "error": None,
                    "wall_time": None,
                    "device": None,
                    "device_name": None,
                }
                conn.execute(trials.update().where(trials.c.id == old.id).values(**values))
            return replace(
                old,
                status=Status.RUNNING,
                lost=False,
                attempt=old.attempt + 1,
                owner=owner,
                heartbeat_at=now,
                started_at=now,
                finished_at=None,
                error=None,
                wall_time=None,
                device=None,
                device_name=None,
            )

        return self._run(claim, write=True)

    @staticmethod
    def _trial(row: Any) -> TrialRecord:
        """The record of a stored trial row.

        Raises:
            _Damaged: If a value cannot be read (the first one found).
        """
        try:
            arch = Architecture.from_dict(_json(row, "arch"))
        except NasforgeError as exc:
            raise _Damaged("arch", f"is not an architecture ({exc})") from None
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            raise _Damaged("arch", f"is not an architecture ({type(exc).__name__})") from None
        try:
            status = Status(row.status)
        except ValueError:
            accepted = ", ".join(s.value for s in Status)
            raise _Damaged("status", f"holds {_shown(row.status)}; one of {accepted}") from None
        metrics, test_metrics, costs = (_scores_of(_json(row, c), c) for c in _SCORES)
        curve = _json(row, "curve")
        if not isinstance(curve, list):
            raise _Damaged("curve", f"holds {_shown(curve)}; a JSON list is expected")
        lost = row.lost
        if lost not in (0, 1):  # True and False are 1 and 0
            raise _Damaged("lost", f"holds {_shown(lost)}; 0 or 1 is expected")
        attempt = _int_of(row, "attempt")
        assert attempt is not None
        return TrialRecord(
            id=row.id,
            experiment_id=row.experiment_id,
            number=row.number,
            arch=arch,
            key=str(row.key),
            status=status,
            metrics=metrics,
            test_metrics=test_metrics,
            costs=costs,
            curve=tuple(_scores_of(point, "curve") for point in curve),
            fidelity=_int_of(row, "fidelity", optional=True),
            error=_text_of(row, "error"),
            started_at=_time_of(row, "started_at"),
            finished_at=_time_of(row, "finished_at"),
            wall_time=_time_of(row, "wall_time"),
            attempt=attempt,
            lost=bool(lost),
            owner=_text_of(row, "owner"),
            heartbeat_at=_time_of(row, "heartbeat_at"),
            device=_text_of(row, "device"),
            device_name=_text_of(row, "device_name"),
        )

    def _experiment_name(self, experiment_id: int) -> str:
        if experiment_id not in self._names:
            self._names.update({int(r.id): str(r.name) for r in self._experiment_rows()})
        return self._names.get(experiment_id, f"#{experiment_id}")

    def _read(self, row: Any) -> TrialRecord | DamagedRow:
        """The record of ``row``, or what is damaged in it."""
        try:
            return self._trial(row)
        except _Damaged as bad:
            name = self._experiment_name(int(row.experiment_id))
            return DamagedRow(name, int(row.number), bad.column, bad.detail)

    def _sound(self, row: Any) -> TrialRecord | None:
        """The record of ``row``, or ``None`` (with a warning, once) if it is damaged."""
        read = self._read(row)
        if isinstance(read, DamagedRow):
            self._warn(read)
            return None
        return read

    def trials(
        self,
        experiment_id: int,
        *,
        status: Status | None = None,
        after: int | None = None,
        numbers: Collection[int] | None = None,
    ) -> list[TrialRecord]:
        query = _READ_TRIALS.where(trials.c.experiment_id == experiment_id)
        if status is not None:
            query = query.where(trials.c.status == status.value)
        if after is not None:
            query = query.where(trials.c.number > after)
        if numbers is not None:
            query = query.where(trials.c.number.in_(sorted({int(n) for n in numbers})))
        if status is None:
            query = query.order_by(trials.c.number)

        def fetch() -> list[Any]:
            with self.engine.connect() as conn:
                rows = conn.execute(query)
                return list(rows) if status is None else _by_number(rows)

        return [t for t in map(self._sound, self._run(fetch)) if t is not None]

    def damaged(self) -> list[DamagedRow]:
        found: list[DamagedRow] = []
        for row in self._experiment_rows():
            try:
                self._experiment(row)
            except _Damaged as bad:
                found.append(DamagedRow(str(row.name), None, bad.column, bad.detail))
        query = _READ_TRIALS.order_by(trials.c.experiment_id, trials.c.number)

        def fetch() -> list[Any]:
            with self.engine.connect() as conn:
                return list(conn.execute(query).all())

        found.extend(d for d in map(self._read, self._run(fetch)) if isinstance(d, DamagedRow))
        return found

    def count_trials(self, experiment_id: int) -> int:
        query = sa.select(sa.func.count()).where(trials.c.experiment_id == experiment_id)

        def fetch() -> int:
            with self.engine.connect() as conn:
                return int(conn.execute(query).scalar_one())

        return self._run(fetch)

    # -- the supernet phase ------------------------------------------------------------------
    def put_phase(self, experiment_id: int, kind: str, step: int, data: Mapping[str, Any]) -> None:
        """Store (or replace) record ``step`` of kind ``kind`` of an experiment's phase."""
        try:
            plain = json.loads(_dumps(data))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"a phase record must be plain JSON data: {exc}") from None
        where = sa.and_(
            phase_table.c.experiment_id == experiment_id,
            phase_table.c.kind == kind,
            phase_table.c.step == step,
        )

        def write() -> None:
            with self._writer.begin() as conn:
                conn.execute(phase_table.delete().where(where))
                conn.execute(
                    phase_table.insert().values(
                        experiment_id=experiment_id,
                        kind=kind,
                        step=step,
                        data=plain,
                        at=time.time(),
                    )
                )

        self._run(write, write=True)

    def phase(self, experiment_id: int, kind: str) -> list[PhaseRecord]:
        query = (
            sa.select(phase_table.c.step, _raw(phase_table.c.data), phase_table.c.at)
            .where(phase_table.c.experiment_id == experiment_id, phase_table.c.kind == kind)
            .order_by(phase_table.c.step)
        )

        def fetch() -> list[Any]:
            with self.engine.connect() as conn:
                return list(conn.execute(query).all())

        out: list[PhaseRecord] = []
        for row in self._run(fetch):
            try:
                data = _json(row, "data")
                if not isinstance(data, dict):
                    raise _Damaged("data", f"holds {_shown(data)}; a JSON object is expected")
            except _Damaged as bad:
                name = self._experiment_name(experiment_id)
                self._warn(
                    DamagedRow(name, None, f"phase {kind} {row.step}: {bad.column}", bad.detail)
                )
                continue
            out.append(PhaseRecord(kind, int(row.step), data, float(row.at)))
        return out

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` answer (``"ok"`` when sound)."""
        if not self.is_sqlite:
            return "ok"

        def check() -> str:
            with self.engine.connect() as conn:
                return "; ".join(str(r[0]) for r in conn.exec_driver_sql("PRAGMA integrity_check"))

        return self._run(check)

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()
        self.engine.dispose()


def open_store(target: str | os.PathLike[str] | None = None, *, create: bool = True) -> SqlStore:
    """Open the store at ``target`` (path or URL), defaulting to ``$NASFORGE_DB`` or
    ``nasforge.db`` in the working directory."""
    return SqlStore(store_target(target), create=create)


def store_target(target: str | os.PathLike[str] | None = None) -> str:
    """The path or URL :func:`open_store` opens for ``target`` (without opening it)."""
    return os.fspath(target if target is not None else os.environ.get("NASFORGE_DB", DEFAULT_DB))
