"""Retention periods: inactive customers erased, old authentication records deleted, each
run recorded."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
from psycopg import sql

from loyalty.bootstrap import Services
from loyalty.commands.customers import register
from loyalty.commands.privacy import export
from loyalty.commands.retention import DataClass, Retention, apply_retention
from loyalty.domain import ids
from loyalty.domain.customer import Profile
from loyalty.settings import Settings
from tests.builders import Clock, line, program, purchase


def test_a_customer_inactive_past_the_period_is_erased_and_an_active_one_kept(
    services: Services, clock: Clock
) -> None:
    services.applier.apply(program())
    clock.advance(hours=2)
    register(services.ledger, "C1", Profile(first_name="Idle"), date(2025, 1, 10))
    register(services.ledger, "C2", Profile(first_name="Busy"), date(2025, 1, 10))
    register(services.ledger, "C3", Profile(first_name="New"), clock.now.date())
    services.desk.post([purchase("p1", line("TV", "10.00"), card="C2")])

    (run, _) = apply_retention(services.ledger, 365, 30, clock.now, "scheduler")
    again = apply_retention(services.ledger, 365, 30, clock.now, "scheduler")

    assert (run.data_class, run.removed) == (DataClass.CUSTOMER_PROFILES, 1)
    assert again[0].removed == 0
    assert export(services.ledger, "C1", []).erased
    assert not export(services.ledger, "C2", []).erased
    assert not export(services.ledger, "C3", []).erased
    retention = services.ledger.repository.get(ids.RETENTION_ID)
    assert isinstance(retention, Retention) and retention.runs == 4


def test_a_profile_period_of_zero_keeps_every_profile(services: Services, clock: Clock) -> None:
    services.applier.apply(program())
    register(services.ledger, "C1", Profile(first_name="Idle"), date(2020, 1, 1))

    runs = apply_retention(services.ledger, 0, 30, clock.now, "scheduler")

    assert [r.data_class for r in runs] == [DataClass.AUTH_RECORDS]
    assert not export(services.ledger, "C1", []).erased


def test_old_authentication_records_are_deleted(
    services: Services, settings: Settings, clock: Clock
) -> None:
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        failures = sql.Identifier(settings.pg_schema, "sign_in_failures")
        insert = sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(failures)
        conn.execute(insert, (b"old", clock.now - timedelta(days=40)))
        conn.execute(insert, (b"new", clock.now - timedelta(days=1)))

    (run,) = apply_retention(services.ledger, 0, 30, clock.now, "scheduler")

    assert run.removed == 1
    with psycopg.connect(settings.conninfo()) as conn:
        left = conn.execute(sql.SQL("SELECT address_digest FROM {}").format(failures)).fetchall()
    assert left == [(b"new",)]
