"""Migrations: applied in order, recorded, safe to run twice, shipped with the package."""

from __future__ import annotations

import secrets

import msgspec
import psycopg
import pytest

from loyalty.adapters.migrations import MigrationChanged, apply_migrations, bundled_migrations
from loyalty.settings import Settings


def test_migrations_apply_once_and_are_recorded(database: Settings) -> None:
    schema = f"m_{secrets.token_hex(4)}"

    first = apply_migrations(database.conninfo(), schema)
    second = apply_migrations(database.conninfo(), schema)

    assert first == [m.name for m in bundled_migrations()] and second == []
    with psycopg.connect(database.conninfo()) as conn:
        rows = conn.execute(
            f"SELECT number, name FROM {schema}.schema_migrations ORDER BY number"
        ).fetchall()
    assert [name for _, name in rows] == first


def test_a_migration_changed_after_it_was_applied_is_refused(database: Settings) -> None:
    schema = f"m_{secrets.token_hex(4)}"
    apply_migrations(database.conninfo(), schema)
    with psycopg.connect(database.conninfo()) as conn:
        conn.execute(f"UPDATE {schema}.schema_migrations SET checksum = 'x' WHERE number = 1")

    with pytest.raises(MigrationChanged):
        apply_migrations(database.conninfo(), schema)


def test_migrations_are_numbered_without_gaps() -> None:
    numbers = [m.number for m in bundled_migrations()]

    assert numbers == list(range(1, len(numbers) + 1))
    assert all(msgspec.json.encode(m.sql) for m in bundled_migrations())
