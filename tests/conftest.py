"""Test harness: one throw-away PostgreSQL database per run, one fresh schema per test."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator

import msgspec
import psycopg
import pytest
from psycopg import sql

from loyalty.adapters.migrations import apply_migrations
from loyalty.bootstrap import Services, build_services
from loyalty.settings import Settings
from tests.builders import Clock
from tests.streams import delete_streams


@pytest.fixture(scope="session")
def database() -> Iterator[Settings]:
    base = Settings.from_env()
    name = f"loyalty_test_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(base.admin_conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    key, master = (base64.b64encode(secrets.token_bytes(32)).decode() for _ in range(2))
    yield msgspec.structs.replace(
        base, pg_db=name, pg_pool_size=2, secret_key=key, master_key=master
    )
    with psycopg.connect(base.admin_conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    delete_streams(base.nats_url, STREAMS)


STREAMS: set[str] = set()
"""The event streams of the deployments the tests set up (deleted once they have run)."""


@pytest.fixture
def settings(database: Settings) -> Settings:
    chosen = msgspec.structs.replace(database, pg_schema=f"t_{secrets.token_hex(6)}")
    apply_migrations(chosen)
    STREAMS.add(chosen.events_stream)
    return chosen


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def services(settings: Settings, clock: Clock) -> Iterator[Services]:
    built = build_services(settings, clock)
    yield built
    built.close()
