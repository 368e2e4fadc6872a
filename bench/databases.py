"""Fresh databases for one bench run: created at the start, dropped at the end."""

import secrets
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

VENDORS: Final = ("sqlite", "postgresql", "mariadb")
SERVERS: Final[dict[str, dict[str, Any]]] = {
    "postgresql": {"host": "127.0.0.1", "port": 5432, "user": "postgres"},
    "mariadb": {"host": "127.0.0.1", "port": 3306, "user": "root"},
}
CONNECT_TIMEOUT: Final = 3


class DatabaseUnavailable(Exception):
    """The database server can't be reached; the bench skips that database."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchDatabase:
    vendor: str
    name: str  # the database name, or the file path for SQLite
    server_version: str


@contextmanager
def fresh_database(vendor: str) -> Iterator[BenchDatabase]:
    """Create an empty database for `vendor`, yield it, and drop it whatever happens.

    Raise DatabaseUnavailable if the server can't be reached.
    """
    if vendor == "sqlite":
        with _sqlite_database() as database:
            yield database
    elif vendor == "postgresql":
        with _postgres_database() as database:
            yield database
    elif vendor == "mariadb":
        with _mariadb_database() as database:
            yield database
    else:
        raise ValueError(f"unknown database {vendor!r}; use one of {', '.join(VENDORS)}")


def _new_name() -> str:
    return f"taskmill_bench_{secrets.token_hex(4)}"


@contextmanager
def _sqlite_database() -> Iterator[BenchDatabase]:
    folder = Path(tempfile.mkdtemp(prefix="taskmill-bench-"))
    try:
        yield BenchDatabase(
            vendor="sqlite",
            name=str(folder / f"{_new_name()}.sqlite3"),
            server_version=f"SQLite {sqlite3.sqlite_version}",
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _postgres_database() -> Iterator[BenchDatabase]:
    import psycopg
    from psycopg import sql

    server = SERVERS["postgresql"]
    try:
        admin = psycopg.connect(
            dbname="postgres", autocommit=True, connect_timeout=CONNECT_TIMEOUT, **server
        )
    except psycopg.Error as error:
        raise DatabaseUnavailable(
            f"PostgreSQL at {server['host']}:{server['port']}: {error}"
        ) from error
    name = _new_name()
    with admin:
        version = admin.info.server_version  # e.g. 150020 for 15.20
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield BenchDatabase(
                vendor="postgresql",
                name=name,
                server_version=f"PostgreSQL {version // 10000}.{version % 10000}",
            )
        finally:
            # FORCE ends connections a crashed run may have left (PostgreSQL 13+).
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            try:
                admin.execute(drop)
            except psycopg.OperationalError:
                # The server restarted (or ended this session) meanwhile: once more, afresh.
                with psycopg.connect(
                    dbname="postgres", autocommit=True, connect_timeout=CONNECT_TIMEOUT, **server
                ) as again:
                    again.execute(drop)


@contextmanager
def _mariadb_database() -> Iterator[BenchDatabase]:
    import MySQLdb

    server = SERVERS["mariadb"]
    try:
        admin = MySQLdb.connect(connect_timeout=CONNECT_TIMEOUT, **server)
    except MySQLdb.Error as error:
        raise DatabaseUnavailable(
            f"MariaDB at {server['host']}:{server['port']}: {error}"
        ) from error
    # The name is made of [a-z0-9_] here; DDL can't take it as a bound parameter.
    name = _new_name()
    try:
        cursor = admin.cursor()
        cursor.execute("SELECT VERSION()")
        version = str(cursor.fetchone()[0]).partition("-")[0]  # 10.11.19-MariaDB-0+deb12u1
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        try:
            yield BenchDatabase(vendor="mariadb", name=name, server_version=f"MariaDB {version}")
        finally:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        admin.close()
