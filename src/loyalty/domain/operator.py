"""Operators: the people who run the program, each with a role and a scope of network nodes.

Roles (from the product sheets):

- ``admin``: everything;
- ``manager``: every store of the client (the whole network);
- ``distributor_manager``: one or more sub-networks, each with its subtree;
- ``store_manager``: one or more stores, or store groups (sub-networks).

A scope is a set of node codes; a node covers its subtree. Roles and scopes are data: an
admin changes them, and every change is an event naming who made it, so the security
trail replays like the rest of the ledger.

Invariants:
- a username is unique (the stream id derives from it), lower case, 3 to 64 characters;
- admins and managers are scoped to the network root; the other roles name at least one
  node of the kinds their role allows;
- the password is held only as an argon2id hash (hashing happens outside the domain);
- the TOTP secret is held only encrypted, recovery codes only as keyed digests (both made
  outside the domain); a TOTP time step, like a recovery code, is accepted once.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime
from enum import StrEnum
from uuid import UUID

import pyotp
from eventsourcing.domain import Aggregate, event

from loyalty.domain import ids
from loyalty.domain.errors import AuthenticationFailed, InvalidScope, InvalidUsername
from loyalty.domain.network import Network, NodeKind

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
TOTP_PERIOD = 30
TOTP_DRIFT_STEPS = 1
"""A code of the step before or after the current one is accepted (clocks drift)."""
WRONG_CODE = "wrong or already used code"


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    DISTRIBUTOR_MANAGER = "distributor_manager"
    STORE_MANAGER = "store_manager"
    AUDITOR = "auditor"
    """Reads the audit trail (chain, checkpoints, replays) and nothing else."""


SCOPE_KINDS: dict[Role, frozenset[NodeKind]] = {
    Role.DISTRIBUTOR_MANAGER: frozenset({NodeKind.SUB_NETWORK}),
    Role.STORE_MANAGER: frozenset({NodeKind.STORE, NodeKind.SUB_NETWORK}),
}
"""The node kinds a scoped role may be given; the other roles cover the whole network."""


def normal_username(username: str) -> str:
    """The username as stored: trimmed, lower case; refused unless well formed."""
    normal = username.strip().lower()
    if not USERNAME.fullmatch(normal):
        raise InvalidUsername(
            "a username is 3 to 64 characters: letters, digits, '.', '_' or '-'",
            field="username",
        )
    return normal


def scope_for(role: Role, nodes: tuple[str, ...], network: Network) -> tuple[str, ...]:
    """The scope ``role`` gets from ``nodes``: the root for whole-network roles, else the
    nodes themselves (sorted, without repeats), each of a kind the role allows."""
    if role not in SCOPE_KINDS:
        if nodes and set(nodes) != {network.root}:
            raise InvalidScope(f"a {role} covers the whole network: give no scope", field="scope")
        return (network.root,)
    if not nodes:
        raise InvalidScope(f"a {role} needs at least one node in scope", field="scope")
    allowed = SCOPE_KINDS[role]
    for code in nodes:
        kind = network.node(code).kind
        if kind not in allowed:
            kinds = " or ".join(sorted(allowed))
            raise InvalidScope(
                f"a {role} may be given {kinds} nodes, not the {kind} {code!r}", field="scope"
            )
    return tuple(sorted(set(nodes)))


class Operator(Aggregate):
    class Created(Aggregate.Created):
        username: str
        role: Role
        scope: tuple[str, ...]
        password_hash: str
        by: str

    class PasswordChanged(Aggregate.Event):
        password_hash: str
        by: str

    class RoleChanged(Aggregate.Event):
        role: Role
        scope: tuple[str, ...]
        by: str

    class Deactivated(Aggregate.Event):
        reason: str
        by: str

    class Reactivated(Aggregate.Event):
        by: str

    class TwoFactorEnrolmentStarted(Aggregate.Event):
        secret_ciphertext: bytes

    class TwoFactorEnrolled(Aggregate.Event):
        recovery_digests: tuple[bytes, ...]

    class SecondFactorUsed(Aggregate.Event):
        step: int

    class RecoveryCodeUsed(Aggregate.Event):
        digest: bytes

    @staticmethod
    def create_id(username: str) -> UUID:
        return ids.operator_id(username)

    @event(Created)
    def __init__(
        self, username: str, role: Role, scope: tuple[str, ...], password_hash: str, by: str
    ) -> None:
        self.username = username
        self.role = role
        self.scope = scope
        self.password_hash = password_hash
        self.active = True
        self.pending_secret: bytes | None = None
        self.secret_ciphertext: bytes | None = None
        self.recovery_digests: frozenset[bytes] = frozenset()
        self.last_step = 0

    @property
    def two_factor(self) -> bool:
        """Whether the operator has enrolled a second factor."""
        return self.secret_ciphertext is not None

    def change_password(self, password_hash: str, by: str) -> None:
        self._change_password(password_hash=password_hash, by=by)

    @event(PasswordChanged)
    def _change_password(self, password_hash: str, by: str) -> None:
        self.password_hash = password_hash

    def change_role(self, role: Role, scope: tuple[str, ...], by: str) -> None:
        if (role, scope) != (self.role, self.scope):
            self._change_role(role=role, scope=scope, by=by)

    @event(RoleChanged)
    def _change_role(self, role: Role, scope: tuple[str, ...], by: str) -> None:
        self.role = role
        self.scope = scope

    def deactivate(self, reason: str, by: str) -> None:
        if self.active:
            self._deactivate(reason=reason, by=by)

    @event(Deactivated)
    def _deactivate(self, reason: str, by: str) -> None:
        self.active = False

    def reactivate(self, by: str) -> None:
        if not self.active:
            self._reactivate(by=by)

    @event(Reactivated)
    def _reactivate(self, by: str) -> None:
        self.active = True

    def start_enrolment(self, secret_ciphertext: bytes) -> None:
        """Keeps a new (encrypted) TOTP secret until a code made with it confirms it."""
        self._start_enrolment(secret_ciphertext=secret_ciphertext)

    @event(TwoFactorEnrolmentStarted)
    def _start_enrolment(self, secret_ciphertext: bytes) -> None:
        self.pending_secret = secret_ciphertext

    def confirm_enrolment(
        self, secret: str, code: str, now: datetime, recovery_digests: tuple[bytes, ...]
    ) -> None:
        """Enrols the pending secret when ``code`` was made with it (``secret`` is the
        pending secret, decrypted by the caller)."""
        if self.pending_secret is None:
            raise AuthenticationFailed("start the two-factor enrolment first")
        step = matching_step(secret, code, now, self.last_step)
        self._enrol(recovery_digests=recovery_digests)
        self._use_step(step=step)

    @event(TwoFactorEnrolled)
    def _enrol(self, recovery_digests: tuple[bytes, ...]) -> None:
        self.secret_ciphertext = self.pending_secret
        self.pending_secret = None
        self.recovery_digests = frozenset(recovery_digests)

    def accept_code(self, secret: str, code: str, now: datetime) -> None:
        """Accepts a TOTP code of the enrolled secret once; raises otherwise."""
        self._use_step(step=matching_step(secret, code, now, self.last_step))

    @event(SecondFactorUsed)
    def _use_step(self, step: int) -> None:
        self.last_step = step

    def accept_recovery_code(self, digest: bytes) -> None:
        """Accepts one of the recovery codes (by its keyed digest), once."""
        if digest not in self.recovery_digests:
            raise AuthenticationFailed(WRONG_CODE)
        self._use_recovery(digest=digest)

    @event(RecoveryCodeUsed)
    def _use_recovery(self, digest: bytes) -> None:
        self.recovery_digests = self.recovery_digests - {digest}


def matching_step(secret: str, code: str, now: datetime, after: int) -> int:
    """The TOTP time step (RFC 6238) near ``now`` whose code is ``code``, later than
    ``after`` (a step already used is refused: no replay)."""
    totp = pyotp.TOTP(secret, interval=TOTP_PERIOD)
    current = int(now.timestamp()) // TOTP_PERIOD
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        if step > after and hmac.compare_digest(totp.at(step * TOTP_PERIOD), code.strip()):
            return step
    raise AuthenticationFailed(WRONG_CODE)
