"""The metadata database: one thin layer over SQLite (local) and PostgreSQL (cluster).

Every query is written once, with `?` placeholders, and runs on both. Schema changes are
numbered migrations applied idempotently (see `steps/migrations.py`).
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from steps.errors import ConfigError, ExternalError
from steps.migrations import MIGRATIONS
from steps.redact import redact_value, scrub

URL_ENV = "TRAINYARD_DATABASE_URL"
_URL_FORMS = (f"set {URL_ENV} (or the trainyard-database Secret) to sqlite:///path.db or "
              "postgresql://user:password@host:5432/dbname")


def resolve_url(configured: str) -> str:
    """The environment (a Kubernetes Secret on a cluster) wins over the config file."""
    return os.environ.get(URL_ENV) or configured


class Database:
    def __init__(self, url: str):
        self.url = url
        try:
            scheme = urlparse(url).scheme
        except ValueError as exc:  # e.g. "Invalid IPv6 URL": an unclosed [
            raise ConfigError(f"database URL {redact_value(url)!r} is malformed ({exc}); {_URL_FORMS}") from None
        if scheme == "sqlite":
            self.dialect = "sqlite"
        elif scheme in ("postgresql", "postgres"):
            self.dialect = "postgresql"
        else:
            raise ConfigError(f"database URL {redact_value(url)!r}: unsupported scheme {scheme!r}; {_URL_FORMS}")

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            path = self._sqlite_path()
            try:
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                # isolation_level=None: we issue BEGIN ourselves, so a transaction spans exactly our block.
                conn = sqlite3.connect(path or ":memory:", timeout=60, isolation_level=None)
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA schema_version")  # reads the header: a file that is not SQLite fails here
            except (sqlite3.DatabaseError, OSError) as exc:
                raise _sqlite_error(path, exc) from None
            return conn
        try:
            import psycopg2
        except ImportError as exc:  # pragma: no cover - depends on the image
            raise ExternalError("PostgreSQL needs psycopg2: pip install 'trainyard[record]'") from exc
        try:
            return psycopg2.connect(self.url, connect_timeout=10)
        except psycopg2.Error as exc:  # a server that does not answer, or a URL libpq cannot parse
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "connection failed"
            fix = (f"; check that the server answers and {URL_ENV} names it" if isinstance(exc, psycopg2.OperationalError)
                   else f"; {_URL_FORMS}")
            raise ExternalError(
                f"cannot connect to database {redact_value(self.url)}: {scrub(first, self.url)}{fix}") from None

    def _sqlite_path(self) -> str:
        return self.url[len("sqlite:///"):] if self.url.startswith("sqlite:///") else self.url[len("sqlite://"):]

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        conn = self._connect()
        try:
            if self.dialect == "sqlite":
                conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks
            tx = Transaction(conn, self.dialect)
            yield tx
            conn.commit() if self.dialect == "postgresql" else conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:  # OperationalError, or a corrupt file's "malformed"
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if not any(sign in str(exc) for sign in _SQLITE_FILE_PROBLEMS):
                raise  # an SQL mistake is a bug: keep its traceback
            raise _sqlite_error(self._sqlite_path(), exc) from None
        except BaseException:
            if self.dialect == "postgresql":
                conn.rollback()
            elif conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def migrate(self) -> list[int]:
        """Apply the migrations this database lacks; returns the versions applied."""
        applied_now: list[int] = []
        with self.transaction() as tx:
            if self.dialect == "postgresql":
                # Concurrent steps may migrate at once: serialize them on an advisory lock.
                tx.execute("SELECT pg_advisory_xact_lock(74726179)")
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
            )
            done = {row[0] for row in tx.query("SELECT version FROM schema_migrations")}
            for version, name, statements in MIGRATIONS:
                if version in done:
                    continue
                for statement in statements:
                    tx.execute(self._ddl(statement))
                tx.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (version, name))
                applied_now.append(version)
        return applied_now

    def _ddl(self, statement: str) -> str:
        pk = "INTEGER PRIMARY KEY AUTOINCREMENT" if self.dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
        return statement.replace("{pk}", pk).replace("{random_id}", uuid.uuid4().hex)

    def identity(self) -> str:
        """This database's own random id (made by its migrations): what tells it from another."""
        with self.transaction() as tx:
            return str(tx.query("SELECT id FROM database_identity")[0][0])


class Transaction:
    """Parameterized queries with `?` placeholders on either dialect."""

    def __init__(self, conn: Any, dialect: str):
        self._conn = conn
        self.dialect = dialect

    def _sql(self, sql: str) -> str:
        # psycopg2 uses %s; a literal % must be doubled there. Our SQL never contains `?` in strings.
        return sql.replace("%", "%%").replace("?", "%s") if self.dialect == "postgresql" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self._conn.cursor()
        try:
            cur.execute(self._sql(sql), tuple(params))
            return cur.rowcount
        finally:
            cur.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._conn.cursor()
        try:
            cur.execute(self._sql(sql), tuple(params))
            return list(cur.fetchall())
        finally:
            cur.close()

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """INSERT ... and return the new row's id."""
        rows = self.query(sql + " RETURNING id", params)
        return int(rows[0][0])


# SQLite errors that are about the file (permissions, disk, another writer), not about our SQL.
_SQLITE_FILE_PROBLEMS = ("readonly", "unable to open", "disk", "locked", "not a database", "malformed")


def _sqlite_error(path: str, exc: BaseException) -> ExternalError:
    reason = getattr(exc, "strerror", None) or str(exc)
    return ExternalError(
        f"database sqlite:///{path}: cannot use this SQLite file ({reason}); point {URL_ENV} at a writable "
        "SQLite file (or a new path) in a writable folder, or move a corrupt file aside"
    )
