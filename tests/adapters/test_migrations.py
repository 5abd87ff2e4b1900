"""Migrations: applied in order, recorded, safe to run twice, shipped with the package."""

from __future__ import annotations

import secrets

import msgspec
import psycopg
import pytest

from loyalty.adapters.migrations import MigrationChanged, apply_migrations, bundled_migrations
from loyalty.settings import Settings


def fresh(database: Settings) -> Settings:
    return msgspec.structs.replace(database, pg_schema=f"m_{secrets.token_hex(4)}")


def test_migrations_apply_once_and_are_recorded(database: Settings) -> None:
    settings = fresh(database)

    first = apply_migrations(settings)
    second = apply_migrations(settings)

    keystore = [f"keystore/{m.name}" for m in bundled_migrations("keystore")]
    read = [f"read/{m.name}" for m in bundled_migrations("read")]
    assert first == [m.name for m in bundled_migrations()] + keystore + read and second == []
    with psycopg.connect(settings.conninfo()) as conn:
        rows = conn.execute(
            f"SELECT number, name FROM {settings.pg_schema}.schema_migrations ORDER BY number"
        ).fetchall()
    assert [name for _, name in rows] == first[: len(rows)]


def test_a_migration_changed_after_it_was_applied_is_refused(database: Settings) -> None:
    settings = fresh(database)
    apply_migrations(settings)
    with psycopg.connect(settings.conninfo()) as conn:
        conn.execute(
            f"UPDATE {settings.pg_schema}.schema_migrations SET checksum = 'x' WHERE number = 1"
        )

    with pytest.raises(MigrationChanged):
        apply_migrations(settings)


def test_the_event_store_role_cannot_read_the_key_store(database: Settings) -> None:
    settings = fresh(database)
    apply_migrations(settings)

    with (
        psycopg.connect(settings.conninfo()) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(f"SELECT * FROM {settings.keystore_schema}.data_keys")
    with psycopg.connect(settings.keystore_conninfo()) as conn:
        assert conn.execute(f"SELECT count(*) FROM {settings.keystore_schema}.data_keys").fetchone()
    with psycopg.connect(settings.conninfo()) as conn:
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert superuser.fetchone() == (False,)


def test_a_schema_made_by_the_administrator_is_handed_to_the_event_store_role(
    database: Settings,
) -> None:
    settings = fresh(database)
    with psycopg.connect(settings.admin_conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {settings.pg_schema}")
        conn.execute(f"CREATE TABLE {settings.pg_schema}.legacy (x int)")

    apply_migrations(settings)

    with psycopg.connect(settings.conninfo()) as conn:
        conn.execute(f"INSERT INTO {settings.pg_schema}.legacy VALUES (1)")


def test_migrations_are_numbered_without_gaps() -> None:
    numbers = [m.number for m in bundled_migrations()]

    assert numbers == list(range(1, len(numbers) + 1))
    assert all(msgspec.json.encode(m.sql) for m in bundled_migrations())
