"""The password policy, and argon2id hashes at or above OWASP's parameters."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, extract_parameters
from argon2.low_level import Type

from loyalty.commands.passwords import check_password, hash_password
from loyalty.domain.errors import WeakPassword


@pytest.mark.parametrize(
    "password",
    [
        "short-Pw1",  # under 12 characters
        "x" * 129,  # over 128
        "aaaaabbbbbaaaaabbbbb",  # fewer than 5 different characters
        "anna.rossi-2026!",  # contains the username
        "qwertyuiop12",  # common
        "Password2026!",  # common once the trailing digits and symbols go
        "Juventus1897!!",  # common (Italian) once the trailing run goes
    ],
)
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword) as refused:
        check_password(password, "anna.rossi")

    assert password not in refused.value.message


def test_a_long_uncommon_password_is_accepted() -> None:
    check_password("correct horse battery staple", "anna.rossi")


def test_the_hash_is_argon2id_at_or_above_owasp_minimum_and_verifies() -> None:
    stored = hash_password("correct horse battery staple")

    parameters = extract_parameters(stored)
    assert parameters.type is Type.ID
    assert parameters.memory_cost >= 19 * 1024 and parameters.time_cost >= 2
    assert PasswordHasher().verify(stored, "correct horse battery staple")
    assert hash_password("correct horse battery staple") != stored  # salted
