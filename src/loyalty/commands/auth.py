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
- Two factors (TOTP, RFC 6238): an operator who enrolled one answers the password with a
  single-use challenge, to be answered with a code (or a recovery code) within five
  minutes. An operator whose role requires a second factor but who has none gets a
  restricted session that can only enrol one. The TOTP secret is kept encrypted
  (AES-GCM, bound to the operator), recovery codes as digests; each is good once.
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
import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from psycopg.sql import SQL, Identifier

from loyalty.adapters.secrets import SecretBox
from loyalty.commands.apiclients import KEY_PREFIX, key_digest
from loyalty.commands.ledger import Ledger
from loyalty.domain import ids
from loyalty.domain.apiclient import ApiClient, ApiFamily
from loyalty.domain.errors import (
    AlreadyEnrolled,
    AuthenticationFailed,
    InvalidUsername,
    TooManyAttempts,
)
from loyalty.domain.operator import Operator, Role, normal_username
from loyalty.domain.signin import SignIns

ADDRESS_LIMIT = 20
ADDRESS_WINDOW = timedelta(minutes=15)
WRONG_CREDENTIALS = "wrong username or password"
ATTEMPTS = 3
CHALLENGE_TTL = timedelta(minutes=5)
RECOVERY_CODES = 10
ISSUER = "Loyalty ledger"


class Tokens(msgspec.Struct, frozen=True, kw_only=True):
    """What a sign-in or a refresh answers (OAuth 2 token response field names)."""

    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int
    refresh_expires_in: int


class Challenge(msgspec.Struct, frozen=True, kw_only=True):
    """The password was right; answer with a second factor (``/auth/login/second-factor``)."""

    challenge: str
    expires_in: int
    second_factor_required: bool = True


class Enrolment(msgspec.Struct, frozen=True, kw_only=True):
    """A new TOTP secret, shown once: scan the URI, then confirm with a code."""

    provisioning_uri: str
    secret: str


class RecoveryCodes(msgspec.Struct, frozen=True, kw_only=True):
    """Single-use codes for when the authenticator is lost, shown once."""

    recovery_codes: tuple[str, ...]


class AccessToken(msgspec.Struct, frozen=True, kw_only=True):
    """What an API key is exchanged for: an access token (exchange the key again later)."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling, as an access token says: an operator, or an API client (``role``
    is then ``None``), with the API families and the network scope it may use."""

    subject_id: UUID
    username: str
    role: Role | None
    scope: tuple[str, ...]
    families: frozenset[ApiFamily]
    family: UUID
    restricted: bool
    two_factor: bool


OPERATOR_FAMILIES = frozenset(ApiFamily) - {ApiFamily.TERMINAL}
"""Operators use every API but the tills' own."""


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_recovery_code() -> str:
    """``ABCDE-FGHJK``: 50 random bits in an easily typed alphabet."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    letters = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{letters[:5]}-{letters[5:]}"


class Authenticator:
    def __init__(
        self,
        ledger: Ledger,
        clock: Callable[[], datetime],
        key: bytes,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
        two_factor_roles: frozenset[Role] = frozenset({Role.ADMIN}),
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.key = key
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.two_factor_roles = two_factor_roles
        self.totp_secrets = SecretBox(key, "totp-secret")
        self.hasher = PasswordHasher()
        schema = Identifier(ledger.settings.pg_schema)
        self._insert_token = SQL(
            "INSERT INTO {}.auth_tokens (token_digest, kind, family, subject_id, issued_at,"
            " expires_at, restricted, subject_kind, key_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        ).format(schema)
        self._use_refresh = SQL(
            "UPDATE {}.auth_tokens SET used_at = %s WHERE token_digest = %s AND kind = 'refresh'"
            " AND used_at IS NULL AND revoked_at IS NULL AND expires_at > %s"
            " AND subject_kind = 'operator' RETURNING family, subject_id, restricted"
        ).format(schema)
        self._token = SQL(
            "SELECT family, subject_id, expires_at, used_at, revoked_at, restricted,"
            " subject_kind, key_id"
            " FROM {}.auth_tokens WHERE token_digest = %s AND kind = %s"
        ).format(schema)
        self._use_challenge = SQL(
            "UPDATE {}.auth_tokens SET used_at = %s WHERE token_digest = %s"
            " AND kind = 'challenge' AND used_at IS NULL AND revoked_at IS NULL"
            " AND expires_at > %s RETURNING family, subject_id"
        ).format(schema)
        self._lift_restriction = SQL(
            "UPDATE {}.auth_tokens SET restricted = false WHERE family = %s"
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

    def sign_in(self, username: str, password: str, address: str) -> Tokens | Challenge:
        """Tokens (or a second-factor challenge) for a right password;
        :class:`AuthenticationFailed` or :class:`TooManyAttempts` otherwise, the same for
        every username."""
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
            if self.hasher.check_needs_rehash(operator.password_hash):
                operator.change_password(self.hasher.hash(password), by="sign-in rehash")
            if operator.two_factor:
                if self.save(operator):
                    return self.challenge(family, operator.id, now)
                continue
            attempts.succeed(now, family)
            if self.save(attempts, operator):
                restricted = operator.role in self.two_factor_roles
                return self.issue(family, operator.id, now, restricted)
        raise TooManyAttempts("the account is busy; try again")

    def challenge(self, family: UUID, operator_id: UUID, now: datetime) -> Challenge:
        token = secrets.token_urlsafe(32)
        self.ledger.execute(
            self._insert_token,
            (
                digest(token),
                "challenge",
                family,
                operator_id,
                now,
                now + CHALLENGE_TTL,
                False,
                "operator",
                None,
            ),
        )
        return Challenge(challenge=token, expires_in=int(CHALLENGE_TTL.total_seconds()))

    def answer_challenge(
        self, challenge: str, code: str | None, recovery_code: str | None, address: str
    ) -> Tokens:
        """Tokens for a challenge answered with a TOTP code or a recovery code. A challenge
        is good once: a wrong code means signing in again, and counts as a failure."""
        now = self.clock()
        address_digest = hmac.new(self.key, address.encode(), hashlib.sha256).digest()
        self.check_address(address_digest, now)
        rows = self.ledger.execute(self._use_challenge, (now, digest(challenge), now))
        if not rows:
            raise AuthenticationFailed("the sign-in challenge is not valid; sign in again")
        ((family, operator_id),) = rows
        operator = self.operator_by_id(operator_id)
        attempts = self.attempts_of(operator.username)
        attempts.check_allowed(now)
        try:
            if recovery_code:
                operator.accept_recovery_code(self.recovery_digest(recovery_code))
            else:
                operator.accept_code(self.secret_of(operator), code or "", now)
        except AuthenticationFailed:
            attempts.fail(now)
            self.save(attempts)
            self.ledger.execute(
                self._record_address_failure, (now - ADDRESS_WINDOW, address_digest, now)
            )
            raise
        attempts.succeed(now, family)
        if not self.save(attempts, operator):
            raise AuthenticationFailed("the code was used meanwhile; sign in again")
        return self.issue(family, operator.id, now)

    def secret_of(self, operator: Operator, pending: bool = False) -> str:
        sealed = operator.pending_secret if pending else operator.secret_ciphertext
        assert sealed is not None
        return self.totp_secrets.open(sealed, operator.id.bytes).decode()

    def start_enrolment(self, session: Session) -> Enrolment:
        """A new TOTP secret for the caller, kept encrypted until confirmed."""
        operator = self.operator_by_id(session.subject_id)
        if operator.two_factor:
            raise AlreadyEnrolled("a second factor is already enrolled")
        secret = pyotp.random_base32()
        operator.start_enrolment(self.totp_secrets.seal(secret.encode(), operator.id.bytes))
        self.ledger.save(operator)
        uri = pyotp.TOTP(secret).provisioning_uri(name=operator.username, issuer_name=ISSUER)
        return Enrolment(provisioning_uri=uri, secret=secret)

    def confirm_enrolment(self, session: Session, code: str) -> RecoveryCodes:
        """Enrols the pending secret on a code made with it; lifts a restricted session."""
        operator = self.operator_by_id(session.subject_id)
        if operator.two_factor:
            raise AlreadyEnrolled("a second factor is already enrolled")
        if operator.pending_secret is None:
            raise AuthenticationFailed("start the two-factor enrolment first")
        codes = tuple(new_recovery_code() for _ in range(RECOVERY_CODES))
        digests = tuple(self.recovery_digest(c) for c in codes)
        secret = self.secret_of(operator, pending=True)
        operator.confirm_enrolment(secret, code, self.clock(), digests)
        self.ledger.save(operator)
        self.ledger.execute(self._lift_restriction, (session.family,))
        return RecoveryCodes(recovery_codes=codes)

    def recovery_digest(self, code: str) -> bytes:
        """Keyed (HMAC), and blind to case, spaces and dashes."""
        normal = "".join(c for c in code.upper() if c.isalnum())
        return hmac.new(self.key, b"recovery:" + normal.encode(), hashlib.sha256).digest()

    def operator_by_id(self, operator_id: UUID) -> Operator:
        operator: Aggregate = self.ledger.repository.get(operator_id)
        assert isinstance(operator, Operator)
        return operator

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

    def issue(
        self, family: UUID, operator_id: UUID, now: datetime, restricted: bool = False
    ) -> Tokens:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        for token, kind, ttl in (
            (access, "access", self.access_ttl),
            (refresh, "refresh", self.refresh_ttl),
        ):
            self.ledger.execute(
                self._insert_token,
                (
                    digest(token),
                    kind,
                    family,
                    operator_id,
                    now,
                    now + ttl,
                    restricted,
                    "operator",
                    None,
                ),
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
            ((family, operator_id, restricted),) = rows
            return self.issue(family, operator_id, now, restricted)
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
        if session.role is not None:
            self.record(session.subject_id, lambda log: log.sign_out(now, session.family))

    def exchange(self, api_key: str) -> AccessToken:
        """An access token for a live API key of a registered client."""
        client = self.client_of_key(api_key)
        now = self.clock()
        token = secrets.token_urlsafe(32)
        key_id = api_key.split(":")[2]
        self.ledger.execute(
            self._insert_token,
            (
                digest(token),
                "access",
                uuid.uuid4(),
                client.id,
                now,
                now + self.access_ttl,
                False,
                "client",
                key_id,
            ),
        )
        return AccessToken(access_token=token, expires_in=int(self.access_ttl.total_seconds()))

    def client_of_key(self, api_key: str) -> ApiClient:
        parts = api_key.split(":")
        refused = AuthenticationFailed("the API key is not valid")
        if len(parts) != 4 or parts[0] != KEY_PREFIX:
            raise refused
        try:
            client: Aggregate = self.ledger.repository.get(ids.api_client_id(parts[1]))
        except AggregateNotFoundError:
            raise refused from None
        assert isinstance(client, ApiClient)
        stored = client.keys.get(parts[2])
        if stored is None or not hmac.compare_digest(stored, key_digest(api_key)):
            raise refused
        return client

    def identify(self, access_token: str) -> Session:
        """The session of a live access token of an active operator or a client's live key."""
        now = self.clock()
        found = self.ledger.query(self._token, (digest(access_token), "access"))
        if not found:
            raise AuthenticationFailed("sign in: the access token is not valid")
        family, subject_id, expires_at, _, revoked_at, restricted, kind, key_id = found[0]
        if revoked_at is not None or expires_at <= now:
            raise AuthenticationFailed("sign in again: the access token has expired")
        try:
            subject: Aggregate = self.ledger.repository.get(subject_id)
        except AggregateNotFoundError:
            raise AuthenticationFailed("sign in: the access token is not valid") from None
        if kind == "client":
            assert isinstance(subject, ApiClient)
            if key_id not in subject.keys:
                raise AuthenticationFailed("the API key of this token was revoked")
            return Session(
                subject_id=subject.id,
                username=f"client:{subject.name}",
                role=None,
                scope=subject.scope,
                families=frozenset(subject.families),
                family=family,
                restricted=False,
                two_factor=False,
            )
        assert isinstance(subject, Operator)
        if not subject.active:
            raise AuthenticationFailed("this operator is deactivated")
        return Session(
            subject_id=subject.id,
            username=subject.username,
            role=subject.role,
            scope=subject.scope,
            families=OPERATOR_FAMILIES,
            family=family,
            restricted=restricted,
            two_factor=subject.two_factor,
        )
