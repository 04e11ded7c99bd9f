"""The metadata database: one thin layer over SQLite (local) and PostgreSQL (cluster).

Every query is written once, with `?` placeholders, and runs on both. Schema changes are
numbered migrations applied idempotently (see `steps/migrations.py`).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from steps.errors import ConfigError, ExternalError
from steps.migrations import MIGRATIONS

URL_ENV = "TRAINYARD_DATABASE_URL"


def resolve_url(configured: str) -> str:
    """The environment (a Kubernetes Secret on a cluster) wins over the config file."""
    return os.environ.get(URL_ENV) or configured


class Database:
    def __init__(self, url: str):
        self.url = url
        scheme = urlparse(url).scheme
        if scheme == "sqlite":
            self.dialect = "sqlite"
        elif scheme in ("postgresql", "postgres"):
            self.dialect = "postgresql"
        else:
            raise ConfigError(
                f"database.url {redact(url)!r}: unsupported scheme {scheme!r}; "
                "use sqlite:///path.db or postgresql://user@host:5432/dbname"
            )

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
        except psycopg2.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "connection failed"
            raise ExternalError(f"cannot connect to database {redact(self.url)}: {scrub(first, self.url)}") from None

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
        except sqlite3.OperationalError as exc:
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
        return statement.replace("{pk}", pk)


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
        f"database.url sqlite:///{path}: cannot use this SQLite file ({reason}); "
        "point database.url at a writable SQLite file (or a new path) in a writable folder"
    )


# A password in every DSN form libpq and SQLAlchemy accept: `user:pw@` in a URL (up to the last
# `@`: an unescaped `@` or `/` in a password must not leak its tail), a `password=` (or
# `sslpassword=`) query parameter, or a libpq keyword value, quoted ('a b', with \' escapes) or not.
_USERINFO = re.compile(r"(://[^:/?#@\s]*):[^\s]*@")
_URL_PARAM = re.compile(r"(?i)([?&;]\s*(?:ssl)?password\s*=)[^&#\s]*")
_KEYWORD = re.compile(r"""(?i)((?<![?&;\w])(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|\S*)""")


def redact(text: str) -> str:
    """`text` (a database URL, a DSN, or a message quoting one) with every password replaced by ***.

    The URL is a secret wherever it comes from: use this for anything printed or written to disk.
    """
    text = _USERINFO.sub(r"\1:***@", str(text))
    text = _URL_PARAM.sub(r"\1***", text)
    return _KEYWORD.sub(r"\1***", text)


def scrub(message: str, url: str) -> str:
    """`message` (e.g. a driver's error, which may quote a fragment of the DSN) without `url`'s passwords."""
    found = [m.group(0)[len(m.group(1)) + 1 : -1] for m in _USERINFO.finditer(url)]
    found += [m.group(0)[len(m.group(1)) :] for m in _URL_PARAM.finditer(url)]
    found += [m.group(2).strip("'\"") for m in _KEYWORD.finditer(url)]
    for secret in sorted(filter(None, found), key=len, reverse=True):
        message = message.replace(secret, "***")
    return redact(message)
