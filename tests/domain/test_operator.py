"""Operators: usernames, roles and the scopes each role may be given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from loyalty.domain.errors import AuthenticationFailed, InvalidScope, InvalidUsername, UnknownNode
from loyalty.domain.network import Network, NodeKind
from loyalty.domain.operator import Operator, Role, matching_step, normal_username, scope_for


def chain() -> Network:
    network = Network(code="chain", name="Chain")
    network.add(code="north", name="North", kind=NodeKind.SUB_NETWORK, parent="chain")
    network.add(code="s1", name="S1", kind=NodeKind.STORE, parent="north", timezone="Europe/Rome")
    network.add(code="t1", name="T1", kind=NodeKind.TERMINAL, parent="s1")
    return network


def operator(role: Role = Role.STORE_MANAGER, scope: tuple[str, ...] = ("s1",)) -> Operator:
    return Operator(username="anna", role=role, scope=scope, password_hash="$argon2id$x", by="t")


def test_a_username_is_stored_trimmed_and_in_lower_case() -> None:
    assert normal_username("  Anna.Rossi ") == "anna.rossi"


@pytest.mark.parametrize("username", ["", "ab", "a" * 65, "anna rossi", "-anna", "anna@shop"])
def test_a_malformed_username_is_refused(username: str) -> None:
    with pytest.raises(InvalidUsername):
        normal_username(username)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MANAGER])
def test_whole_network_roles_are_scoped_to_the_root(role: Role) -> None:
    assert scope_for(role, (), chain()) == ("chain",)
    assert scope_for(role, ("chain",), chain()) == ("chain",)
    with pytest.raises(InvalidScope):
        scope_for(role, ("s1",), chain())


def test_a_distributor_manager_is_given_sub_networks_only() -> None:
    assert scope_for(Role.DISTRIBUTOR_MANAGER, ("north",), chain()) == ("north",)
    with pytest.raises(InvalidScope):
        scope_for(Role.DISTRIBUTOR_MANAGER, ("s1",), chain())


def test_a_store_manager_is_given_stores_or_store_groups_sorted_without_repeats() -> None:
    assert scope_for(Role.STORE_MANAGER, ("s1", "north", "s1"), chain()) == ("north", "s1")
    with pytest.raises(InvalidScope):
        scope_for(Role.STORE_MANAGER, ("t1",), chain())


def test_a_scoped_role_needs_a_node_that_exists() -> None:
    with pytest.raises(InvalidScope):
        scope_for(Role.STORE_MANAGER, (), chain())
    with pytest.raises(UnknownNode):
        scope_for(Role.STORE_MANAGER, ("nowhere",), chain())


def test_a_role_change_names_who_made_it_and_the_same_role_records_nothing() -> None:
    anna = operator()

    anna.change_role(Role.STORE_MANAGER, ("s1",), by="admin")
    anna.change_role(Role.DISTRIBUTOR_MANAGER, ("north",), by="admin")

    (_, changed) = anna.collect_events()
    assert isinstance(changed, Operator.RoleChanged)
    assert (changed.role, changed.scope, changed.by) == (
        Role.DISTRIBUTOR_MANAGER,
        ("north",),
        "admin",
    )


def test_deactivating_and_reactivating_are_recorded_once_each() -> None:
    anna = operator()

    anna.deactivate("left the company", by="admin")
    anna.deactivate("again", by="admin")
    assert not anna.active
    anna.reactivate(by="admin")
    anna.reactivate(by="admin")

    assert anna.active and anna.version == 3


SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = datetime(2026, 6, 1, 9, 0, 10, tzinfo=UTC)


def code(at: datetime) -> str:
    return pyotp.TOTP(SECRET).at(at)


def test_a_code_of_the_current_or_a_neighbouring_step_matches_once() -> None:
    step = int(NOW.timestamp()) // 30

    assert matching_step(SECRET, code(NOW), NOW, after=0) == step
    assert matching_step(SECRET, code(NOW - timedelta(seconds=30)), NOW, after=0) == step - 1
    assert matching_step(SECRET, code(NOW + timedelta(seconds=30)), NOW, after=0) == step + 1
    with pytest.raises(AuthenticationFailed):
        matching_step(SECRET, code(NOW), NOW, after=step)
    with pytest.raises(AuthenticationFailed):
        matching_step(SECRET, code(NOW - timedelta(seconds=60)), NOW, after=0)


def test_an_enrolment_is_confirmed_by_a_code_of_its_pending_secret_only() -> None:
    anna = operator()
    with pytest.raises(AuthenticationFailed):
        anna.confirm_enrolment(SECRET, code(NOW), NOW, (b"d1",))

    anna.start_enrolment(b"sealed")
    with pytest.raises(AuthenticationFailed):
        anna.confirm_enrolment(SECRET, "000000", NOW, (b"d1",))
    anna.confirm_enrolment(SECRET, code(NOW), NOW, (b"d1",))

    assert anna.two_factor and anna.secret_ciphertext == b"sealed"
    with pytest.raises(AuthenticationFailed):
        anna.accept_code(SECRET, code(NOW), NOW)  # the confirming code is spent


def test_a_recovery_code_is_spent_when_used() -> None:
    anna = operator()
    anna.start_enrolment(b"sealed")
    anna.confirm_enrolment(SECRET, code(NOW), NOW, (b"d1", b"d2"))

    anna.accept_recovery_code(b"d1")

    with pytest.raises(AuthenticationFailed):
        anna.accept_recovery_code(b"d1")
    assert anna.recovery_digests == frozenset({b"d2"})
