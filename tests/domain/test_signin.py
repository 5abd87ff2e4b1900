"""Sign-in attempts: failures in a row lock a username out for a while."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from loyalty.domain.errors import TooManyAttempts
from loyalty.domain.signin import LOCKOUT, MAX_FAILURES, SignIns

NOW = datetime(2026, 6, 1, 9, tzinfo=UTC)


def test_a_run_of_failures_locks_the_username_out_until_the_lockout_ends() -> None:
    trail = SignIns(username="anna")
    for _ in range(MAX_FAILURES):
        trail.check_allowed(NOW)
        trail.fail(NOW)

    with pytest.raises(TooManyAttempts) as refused:
        trail.check_allowed(NOW + LOCKOUT - timedelta(seconds=1))
    trail.check_allowed(NOW + LOCKOUT)

    assert refused.value.context["retry_after"] == 2
    assert isinstance(trail.collect_events()[-1], SignIns.LockedOut)


def test_a_success_ends_the_run_of_failures() -> None:
    trail = SignIns(username="anna")
    for _ in range(MAX_FAILURES - 1):
        trail.fail(NOW)

    trail.succeed(NOW, uuid.uuid4())
    trail.fail(NOW)

    trail.check_allowed(NOW)
    assert trail.failures_in_a_row == 1
