"""Operators signing in: passwords checked, failures throttled, sessions as rotating tokens.

- A sign-in checks the password (argon2id; a hash made with older parameters is replaced),
  records the attempt on the username's :class:`~loyalty.domain.signin.SignIns` stream
  and starts a token family: a short-lived access token and a refresh token.
- Failures are throttled per username (lock-out after a run of failures, see the domain)
  and per client address (``ADDRESS_LIMIT`` failures in ``ADDRESS_WINDOW``). Every refusal
  says the same thing whether or not the username exists, after the same work (a password
  is checked against a dummy hash when there is no account).
- A refresh token is good once: using it rotates the pair; presenting it again revokes the
  whole family (it leaked). Signing out revokes the family.
- Tokens are random; only their SHA-256 digests are stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cached_property
from uuid import UUID

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from psycopg.sql import SQL, Identifier

from loyalty.commands.ledger import Ledger
from loyalty.domain import ids
from loyalty.domain.errors import AuthenticationFailed, InvalidUsername, TooManyAttempts
from loyalty.domain.operator import Operator, Role, normal_username
from loyalty.domain.signin import SignIns

ADDRESS_LIMIT = 20
ADDRESS_WINDOW = timedelta(minutes=15)
WRONG_CREDENTIALS = "wrong username or password"
ATTEMPTS = 3


class Tokens(msgspec.Struct, frozen=True, kw_only=True):
    """What a sign-in or a refresh answers (OAuth 2 token response field names)."""

    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int
    refresh_expires_in: int


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling, as an access token says."""

    operator_id: UUID
    username: str
    role: Role
    scope: tuple[str, ...]
    family: UUID


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Authenticator:
    def __init__(
        self,
        ledger: Ledger,
        clock: Callable[[], datetime],
        key: bytes,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.key = key
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.hasher = PasswordHasher()
        schema = Identifier(ledger.settings.pg_schema)
        self._insert_token = SQL(
            "INSERT INTO {}.auth_tokens (token_digest, kind, family, operator_id, issued_at,"
            " expires_at) VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(schema)
        self._use_refresh = SQL(
            "UPDATE {}.auth_tokens SET used_at = %s WHERE token_digest = %s AND kind = 'refresh'"
            " AND used_at IS NULL AND revoked_at IS NULL AND expires_at > %s"
            " RETURNING family, operator_id"
        ).format(schema)
        self._token = SQL(
            "SELECT family, operator_id, expires_at, used_at, revoked_at FROM {}.auth_tokens"
            " WHERE token_digest = %s AND kind = %s"
        ).format(schema)
        self._revoke_family = SQL(
            "UPDATE {}.auth_tokens SET revoked_at = %s WHERE family = %s AND revoked_at IS NULL"
        ).format(schema)
        self._address_failures = SQL(
            "SELECT count(*) FROM {}.sign_in_failures WHERE address_digest = %s AND failed_at > %s"
        ).format(schema)
        self._record_address_failure = SQL(
            "WITH aged AS (DELETE FROM {0}.sign_in_failures WHERE failed_at <= %s)"
            " INSERT INTO {0}.sign_in_failures (address_digest, failed_at) VALUES (%s, %s)"
        ).format(schema)

    @cached_property
    def dummy_hash(self) -> str:
        """A hash no password matches, checked when there is no account (same work)."""
        return self.hasher.hash(secrets.token_urlsafe(16))

    def sign_in(self, username: str, password: str, address: str) -> Tokens:
        """Tokens for a right password; :class:`AuthenticationFailed` or
        :class:`TooManyAttempts` otherwise, the same for every username."""
        now = self.clock()
        address_digest = hmac.new(self.key, address.encode(), hashlib.sha256).digest()
        self.check_address(address_digest, now)
        try:
            name = normal_username(username)
        except InvalidUsername:
            self.verify(None, password)
            self.ledger.execute(
                self._record_address_failure, (now - ADDRESS_WINDOW, address_digest, now)
            )
            raise AuthenticationFailed(WRONG_CREDENTIALS) from None
        for _ in range(ATTEMPTS):
            attempts = self.attempts_of(name)
            attempts.check_allowed(now)
            operator = self.operator_of(name)
            if not self.verify(operator, password):
                attempts.fail(now)
                if self.save(attempts):
                    self.ledger.execute(
                        self._record_address_failure, (now - ADDRESS_WINDOW, address_digest, now)
                    )
                    raise AuthenticationFailed(WRONG_CREDENTIALS)
                continue
            assert operator is not None
            family = uuid.uuid4()
            attempts.succeed(now, family)
            if self.hasher.check_needs_rehash(operator.password_hash):
                operator.change_password(self.hasher.hash(password), by="sign-in rehash")
            if self.save(attempts, operator):
                return self.issue(family, operator.id, now)
        raise TooManyAttempts("the account is busy; try again")

    def check_address(self, address_digest: bytes, now: datetime) -> None:
        ((failures,),) = self.ledger.query(
            self._address_failures, (address_digest, now - ADDRESS_WINDOW)
        )
        if failures >= ADDRESS_LIMIT:
            raise TooManyAttempts(
                "too many failed sign-ins from this address; try again later",
                retry_after=int(ADDRESS_WINDOW.total_seconds()),
            )

    def attempts_of(self, name: str) -> SignIns:
        try:
            attempts: Aggregate = self.ledger.repository.get(ids.sign_ins_id(name))
        except AggregateNotFoundError:
            return SignIns(username=name)
        assert isinstance(attempts, SignIns)
        return attempts

    def operator_of(self, name: str) -> Operator | None:
        try:
            operator: Aggregate = self.ledger.repository.get(ids.operator_id(name))
        except AggregateNotFoundError:
            return None
        assert isinstance(operator, Operator)
        return operator if operator.active else None

    def verify(self, operator: Operator | None, password: str) -> bool:
        """Checks the password, against a dummy hash when there is no account (same work)."""
        try:
            self.hasher.verify(operator.password_hash if operator else self.dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return operator is not None

    def save(self, *aggregates: Aggregate) -> bool:
        """Saves; ``False`` when another request wrote to one of the streams meanwhile."""
        try:
            self.ledger.save(*aggregates)
        except IntegrityError:
            return False
        return True

    def issue(self, family: UUID, operator_id: UUID, now: datetime) -> Tokens:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        for token, kind, ttl in (
            (access, "access", self.access_ttl),
            (refresh, "refresh", self.refresh_ttl),
        ):
            self.ledger.execute(
                self._insert_token, (digest(token), kind, family, operator_id, now, now + ttl)
            )
        return Tokens(
            access_token=access,
            refresh_token=refresh,
            expires_in=int(self.access_ttl.total_seconds()),
            refresh_expires_in=int(self.refresh_ttl.total_seconds()),
        )

    def refresh(self, refresh_token: str) -> Tokens:
        """A new pair for a refresh token used once; a second use revokes the family."""
        now = self.clock()
        token = digest(refresh_token)
        rows = self.ledger.execute(self._use_refresh, (now, token, now))
        if rows:
            ((family, operator_id),) = rows
            return self.issue(family, operator_id, now)
        found = self.ledger.query(self._token, (token, "refresh"))
        if found and found[0][3] is not None:
            family, operator_id = found[0][0], found[0][1]
            self.ledger.execute(self._revoke_family, (now, family))
            self.record(operator_id, lambda log: log.revoke(now, family, "refresh token reused"))
        raise AuthenticationFailed("the refresh token is not valid; sign in again")

    def record(self, operator_id: UUID, change: Callable[[SignIns], None]) -> None:
        """Records a session event on the sign-in trail of the operator's username."""
        operator: Aggregate = self.ledger.repository.get(operator_id)
        assert isinstance(operator, Operator)
        for _ in range(ATTEMPTS):
            trail = self.attempts_of(operator.username)
            change(trail)
            if self.save(trail):
                return

    def sign_out(self, access_token: str) -> None:
        now = self.clock()
        session = self.identify(access_token)
        self.ledger.execute(self._revoke_family, (now, session.family))
        self.record(session.operator_id, lambda log: log.sign_out(now, session.family))

    def identify(self, access_token: str) -> Session:
        """The session of a live access token of an active operator."""
        now = self.clock()
        found = self.ledger.query(self._token, (digest(access_token), "access"))
        if not found:
            raise AuthenticationFailed("sign in: the access token is not valid")
        family, operator_id, expires_at, _, revoked_at = found[0]
        if revoked_at is not None or expires_at <= now:
            raise AuthenticationFailed("sign in again: the access token has expired")
        try:
            operator: Aggregate = self.ledger.repository.get(operator_id)
        except AggregateNotFoundError:
            raise AuthenticationFailed("sign in: the access token is not valid") from None
        assert isinstance(operator, Operator)
        if not operator.active:
            raise AuthenticationFailed("this operator is deactivated")
        return Session(
            operator_id=operator.id,
            username=operator.username,
            role=operator.role,
            scope=operator.scope,
            family=family,
        )
