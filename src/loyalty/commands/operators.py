"""Managing operators: accounts, passwords, roles and scopes (the write side of the Auth
and Backoffice APIs, and of ``loyalty operator``). Every change is an event on the
operator's stream naming who made it."""

from __future__ import annotations

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from psycopg.sql import SQL, Identifier

from loyalty.commands.ledger import Ledger
from loyalty.commands.passwords import check_password, hash_password
from loyalty.domain import ids
from loyalty.domain.errors import DuplicateCode, InvalidProgram, UnknownOperator
from loyalty.domain.network import Network
from loyalty.domain.operator import Operator, Role, normal_username, scope_for


def network_of(ledger: Ledger) -> Network:
    try:
        network: Aggregate = ledger.repository.get(ids.NETWORK_ID)
    except AggregateNotFoundError:
        raise InvalidProgram("apply a program with a network before adding operators") from None
    assert isinstance(network, Network)
    return network


def load_operator(ledger: Ledger, username: str) -> Operator:
    try:
        operator: Aggregate = ledger.repository.get(ids.operator_id(normal_username(username)))
    except AggregateNotFoundError:
        raise UnknownOperator(f"no operator is called {username!r}", username=username) from None
    assert isinstance(operator, Operator)
    return operator


def list_operators(ledger: Ledger) -> list[Operator]:
    """Every operator, by username."""
    schema = Identifier(ledger.settings.pg_schema)
    query = SQL("SELECT originator_id FROM {}.config_streams WHERE kind = 'operator'")
    found = ledger.load_all(row[0] for row in ledger.query(query.format(schema)))
    operators = [o for o in found.values() if isinstance(o, Operator)]
    return sorted(operators, key=lambda o: o.username)


def add_operator(
    ledger: Ledger, username: str, password: str, role: Role, scope: tuple[str, ...], by: str
) -> Operator:
    """Creates an operator; the username must be free and the password meet the policy."""
    username = normal_username(username)
    check_password(password, username)
    scope = scope_for(role, scope, network_of(ledger))
    if ledger.load_all([ids.operator_id(username)]):
        raise DuplicateCode(f"the username {username!r} is taken", username=username)
    operator = Operator(
        username=username, role=role, scope=scope, password_hash=hash_password(password), by=by
    )
    ledger.save(operator)
    return operator


def change_password(ledger: Ledger, username: str, password: str, by: str) -> None:
    operator = load_operator(ledger, username)
    check_password(password, operator.username)
    operator.change_password(hash_password(password), by)
    ledger.save(operator)


def change_role(
    ledger: Ledger, username: str, role: Role, scope: tuple[str, ...], by: str
) -> Operator:
    operator = load_operator(ledger, username)
    operator.change_role(role, scope_for(role, scope, network_of(ledger)), by)
    ledger.save(operator)
    return operator


def deactivate_operator(ledger: Ledger, username: str, reason: str, by: str) -> None:
    if not reason.strip():
        raise InvalidProgram("say why the operator is deactivated", field="reason")
    operator = load_operator(ledger, username)
    operator.deactivate(reason, by)
    ledger.save(operator)


def reactivate_operator(ledger: Ledger, username: str, by: str) -> None:
    operator = load_operator(ledger, username)
    operator.reactivate(by)
    ledger.save(operator)
