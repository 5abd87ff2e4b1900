"""Operators' passwords: the policy a new one must meet, and argon2id hashing.

Hashing uses argon2-cffi's default profile (RFC 9106 "low memory": argon2id, 3 passes,
64 MiB, 4 lanes), above OWASP's current minimum for argon2id (19 MiB, 2 passes, 1 lane).
The policy: 12 to 128 characters, at least 5 different characters, not containing the
username, and not one of the bundled common passwords (compared in lower case, also with
a trailing run of digits and symbols removed: ``Password2026!`` is ``password``).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from argon2 import PasswordHasher

from loyalty.domain.errors import WeakPassword

MIN_LENGTH = 12
MAX_LENGTH = 128
MIN_DISTINCT = 5
TRAILING = "0123456789!@#$%^&*()-_=+.,;:?'\"/\\|~`[]{}<> "

_hasher = PasswordHasher()


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("loyalty.commands").joinpath("common_passwords.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def check_password(password: str, username: str) -> None:
    """Refuses a password that does not meet the policy, saying why (never echoing it)."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise WeakPassword(
            f"a password has {MIN_LENGTH} to {MAX_LENGTH} characters", field="password"
        )
    lowered = password.lower()
    if len(set(lowered)) < MIN_DISTINCT:
        raise WeakPassword(
            f"a password needs at least {MIN_DISTINCT} different characters", field="password"
        )
    if username.lower() in lowered:
        raise WeakPassword("a password must not contain the username", field="password")
    if {lowered, lowered.rstrip(TRAILING)} & common_passwords():
        raise WeakPassword("this password is too common; choose another", field="password")


def hash_password(password: str) -> str:
    """The argon2id hash (with its salt and parameters) to store instead of the password."""
    return _hasher.hash(password)
