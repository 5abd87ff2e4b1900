"""Operators against the real event store: created, changed and deactivated by someone,
with nothing secret in clear."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from loyalty.bootstrap import Services
from loyalty.commands.operators import (
    add_operator,
    change_password,
    change_role,
    deactivate_operator,
    load_operator,
)
from loyalty.domain.errors import (
    DuplicateCode,
    InvalidProgram,
    InvalidScope,
    UnknownOperator,
    WeakPassword,
)
from loyalty.domain.operator import Operator, Role
from loyalty.settings import Settings
from tests.builders import program

PASSWORD = "correct horse battery staple"


@pytest.fixture
def chain(services: Services) -> Services:
    services.applier.apply(program())
    return services


def stored_states(settings: Settings, topic_part: str) -> list[bytes]:
    with psycopg.connect(settings.conninfo()) as conn:
        query = sql.SQL("SELECT state FROM {}.ledger_events WHERE topic LIKE %s").format(
            sql.Identifier(settings.pg_schema)
        )
        return [bytes(row[0]) for row in conn.execute(query, (f"%{topic_part}%",))]


def test_an_operator_is_created_with_a_hashed_password_and_its_author(
    chain: Services, settings: Settings
) -> None:
    add_operator(chain.ledger, "Anna", PASSWORD, Role.STORE_MANAGER, ("s1",), by="cli:root")

    anna = load_operator(chain.ledger, "anna")
    (created,) = stored_states(settings, "Operator.Created")
    assert (anna.role, anna.scope, anna.active) == (Role.STORE_MANAGER, ("s1",), True)
    assert anna.password_hash.startswith("$argon2id$")
    assert b"cli:root" in created and PASSWORD.encode() not in created


def test_a_taken_username_is_refused(chain: Services) -> None:
    add_operator(chain.ledger, "anna", PASSWORD, Role.ADMIN, (), by="t")

    with pytest.raises(DuplicateCode):
        add_operator(chain.ledger, "ANNA", "another good passphrase", Role.ADMIN, (), by="t")


def test_a_weak_password_or_a_wrong_scope_writes_nothing(
    chain: Services, settings: Settings
) -> None:
    with pytest.raises(WeakPassword):
        add_operator(chain.ledger, "anna", "password2026", Role.ADMIN, (), by="t")
    with pytest.raises(InvalidScope):
        add_operator(chain.ledger, "anna", PASSWORD, Role.DISTRIBUTOR_MANAGER, ("s1",), by="t")

    assert stored_states(settings, "Operator") == []


def test_operators_need_a_network_to_be_scoped_in(services: Services) -> None:
    with pytest.raises(InvalidProgram):
        add_operator(services.ledger, "anna", PASSWORD, Role.ADMIN, (), by="t")


def test_password_and_role_changes_are_events_naming_who_made_them(chain: Services) -> None:
    add_operator(chain.ledger, "anna", PASSWORD, Role.STORE_MANAGER, ("s1",), by="t")
    before = load_operator(chain.ledger, "anna").password_hash

    change_password(chain.ledger, "anna", "a different good passphrase", by="anna")
    change_role(chain.ledger, "anna", Role.DISTRIBUTOR_MANAGER, ("north",), by="admin")

    anna = load_operator(chain.ledger, "anna")
    events = list(chain.ledger.events.get(anna.id))
    assert [type(e).__name__ for e in events] == ["Created", "PasswordChanged", "RoleChanged"]
    assert anna.password_hash != before and anna.scope == ("north",)
    assert isinstance(events[-1], Operator.RoleChanged) and events[-1].by == "admin"


def test_deactivation_needs_a_reason_and_an_existing_operator(chain: Services) -> None:
    add_operator(chain.ledger, "anna", PASSWORD, Role.ADMIN, (), by="t")

    with pytest.raises(InvalidProgram):
        deactivate_operator(chain.ledger, "anna", " ", by="t")
    with pytest.raises(UnknownOperator):
        deactivate_operator(chain.ledger, "nobody", "left", by="t")
    deactivate_operator(chain.ledger, "anna", "left the company", by="t")

    assert not load_operator(chain.ledger, "anna").active
