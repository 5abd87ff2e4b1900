"""Plain numbered SQL migrations, applied in order, recorded, safe to run twice.

Each ``migrations/NNNN_name.sql`` runs once, in its own transaction, with the target
schema first on the ``search_path``; ``schema_migrations`` records its number, name and
SHA-256. A file that changed after it was applied is refused rather than half-reapplied.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from importlib.resources.abc import Traversable

import msgspec
import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from loyalty.domain.errors import LoyaltyError

LOCK_KEY = 0x10_7A17  # pg_advisory_xact_lock key that serializes concurrent runs


class MigrationChanged(LoyaltyError):
    code = "migration_changed"


class Migration(msgspec.Struct, frozen=True):
    number: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def bundled_migrations() -> list[Migration]:
    folder: Traversable = resources.files("loyalty") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql") and entry.name[:4].isdigit():
            found.append(
                Migration(number=int(entry.name[:4]), name=entry.name, sql=entry.read_text())
            )
    return sorted(found, key=lambda m: m.number)


def apply_migrations(conninfo: str, schema: str) -> list[str]:
    """Applies what is missing in ``schema``; returns the names of the files applied."""
    applied = []
    with psycopg.connect(conninfo) as conn:
        prepare(conn, schema)
        for migration in bundled_migrations():
            if apply_one(conn, schema, migration):
                applied.append(migration.name)
    return applied


def prepare(conn: psycopg.Connection[TupleRow], schema: str) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_migrations ("
                " number integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(sql.Identifier(schema))
        )


def apply_one(conn: psycopg.Connection[TupleRow], schema: str, migration: Migration) -> bool:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        row = conn.execute(
            sql.SQL("SELECT checksum FROM {}.schema_migrations WHERE number = %s").format(
                sql.Identifier(schema)
            ),
            (migration.number,),
        ).fetchone()
        if row is not None:
            if row[0] != migration.checksum:
                raise MigrationChanged(
                    f"{migration.name} changed after it was applied; add a new migration instead"
                )
            return False
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(migration.sql.encode())
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.schema_migrations (number, name, checksum) VALUES (%s, %s, %s)"
            ).format(sql.Identifier(schema)),
            (migration.number, migration.name, migration.checksum),
        )
    return True
