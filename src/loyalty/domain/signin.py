"""Sign-in attempts: the security trail of a username, and its lock-out.

One stream per attempted username, whether or not an operator has it, holding its sign-ins,
failures, lock-outs, sign-outs and revoked sessions: a failure on an
unknown name is recorded and throttled exactly like one on a real account, so neither the
answers nor their timing tell whether the username exists.

Invariants:
- after ``MAX_FAILURES`` failures in a row the username is locked for ``LOCKOUT``; while
  locked, no password is even checked;
- a success ends the run of failures.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from loyalty.domain import ids
from loyalty.domain.errors import TooManyAttempts

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)


class SignIns(Aggregate):
    class Started(Aggregate.Created):
        username: str

    class Succeeded(Aggregate.Event):
        at: datetime
        family: UUID

    class Failed(Aggregate.Event):
        at: datetime

    class LockedOut(Aggregate.Event):
        until: datetime

    class SignedOut(Aggregate.Event):
        at: datetime
        family: UUID

    class SessionRevoked(Aggregate.Event):
        at: datetime
        family: UUID
        reason: str

    @staticmethod
    def create_id(username: str) -> UUID:
        return ids.sign_ins_id(username)

    @event(Started)
    def __init__(self, username: str) -> None:
        self.username = username
        self.failures_in_a_row = 0
        self.locked_until: datetime | None = None

    def check_allowed(self, now: datetime) -> None:
        """Refuses an attempt while the username is locked out."""
        if self.locked_until is not None and now < self.locked_until:
            minutes = max(1, int((self.locked_until - now).total_seconds() // 60) + 1)
            raise TooManyAttempts(
                f"too many failed sign-ins; try again in {minutes} minute(s)",
                retry_after=int((self.locked_until - now).total_seconds()) + 1,
            )

    def succeed(self, now: datetime, family: UUID) -> None:
        self._succeed(at=now, family=family)

    @event(Succeeded)
    def _succeed(self, at: datetime, family: UUID) -> None:
        self.failures_in_a_row = 0

    def fail(self, now: datetime) -> None:
        """Records a failure, and a lock-out when it is one too many."""
        self._fail(at=now)
        if self.failures_in_a_row >= MAX_FAILURES:
            self._lock(until=now + LOCKOUT)

    @event(Failed)
    def _fail(self, at: datetime) -> None:
        self.failures_in_a_row += 1

    @event(LockedOut)
    def _lock(self, until: datetime) -> None:
        self.locked_until = until
        self.failures_in_a_row = 0

    def sign_out(self, now: datetime, family: UUID) -> None:
        self._sign_out(at=now, family=family)

    @event(SignedOut)
    def _sign_out(self, at: datetime, family: UUID) -> None:
        pass

    def revoke(self, now: datetime, family: UUID, reason: str) -> None:
        """A session ended by the system (a refresh token presented twice)."""
        self._revoke(at=now, family=family, reason=reason)

    @event(SessionRevoked)
    def _revoke(self, at: datetime, family: UUID, reason: str) -> None:
        pass
