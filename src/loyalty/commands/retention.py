"""Retention periods: how long each class of data is kept, enforced by a scheduled job
(``loyalty privacy retention``, and the server once a day), each run recorded as events.

Data classes:

- ``customer_profiles``: the profile of a customer with no movement (and no sign-up) for
  ``LOYALTY_RETENTION_PROFILE_DAYS`` days is erased, exactly as an erasure on request
  (0: kept until erased on request);
- ``auth_records``: session tokens expired, and failed sign-ins from a client address,
  older than ``LOYALTY_RETENTION_AUTH_DAYS`` days are deleted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Identifier

from loyalty.commands.ledger import Ledger
from loyalty.commands.privacy import erase_customer
from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.customer import Customer


class DataClass(StrEnum):
    CUSTOMER_PROFILES = "customer_profiles"
    AUTH_RECORDS = "auth_records"


class RetentionRun(msgspec.Struct, frozen=True, kw_only=True):
    data_class: DataClass
    cutoff: datetime
    removed: int


class Retention(Aggregate):
    """The retention runs: what each removed, up to when."""

    class Started(Aggregate.Created):
        pass

    class Applied(Aggregate.Event):
        run: RetentionRun
        by: str

    @staticmethod
    def create_id() -> UUID:
        return ids.RETENTION_ID

    @event(Started)
    def __init__(self) -> None:
        self.runs = 0

    @event(Applied)
    def applied(self, run: RetentionRun, by: str) -> None:
        self.runs += 1


INACTIVE = """
WITH customers AS (
    SELECT originator_id AS customer,
           (convert_from(state, 'UTF8')::jsonb ->> 'signed_up_on')::date AS since
    FROM {events} WHERE topic = %(registered)s
), accounts AS (
    SELECT originator_id AS account,
           (convert_from(state, 'UTF8')::jsonb ->> 'customer_id')::uuid AS customer
    FROM {events} WHERE topic = %(opened)s
), last_moves AS (
    SELECT a.customer,
           max((convert_from(e.state, 'UTF8')::jsonb -> 'movement' ->> 'occurred_at')::timestamptz)
               AS at
    FROM {events} e JOIN accounts a ON a.account = e.originator_id
    WHERE e.topic = %(recorded)s
    GROUP BY a.customer
)
SELECT c.customer FROM customers c LEFT JOIN last_moves m USING (customer)
WHERE NOT EXISTS (
    SELECT 1 FROM {events} x WHERE x.originator_id = c.customer AND x.topic = %(erased)s
)
AND greatest(c.since::timestamptz, coalesce(m.at, '-infinity')) < %(cutoff)s
ORDER BY c.customer
"""


def inactive_customers(ledger: Ledger, cutoff: datetime) -> list[UUID]:
    """Customers not erased, signed up and last moving before ``cutoff``."""
    query = SQL(INACTIVE).format(events=Identifier(ledger.settings.pg_schema, "ledger_events"))
    params = {
        "registered": get_topic(Customer.Registered),
        "opened": get_topic(Account.Opened),
        "recorded": get_topic(Account.MovementRecorded),
        "erased": get_topic(Customer.Erased),
        "cutoff": cutoff,
    }
    return [row[0] for row in ledger.query(query, params)]


def apply_retention(
    ledger: Ledger, profile_days: int, auth_days: int, now: datetime, by: str
) -> list[RetentionRun]:
    """Removes what has outlived its period; each data class's run recorded."""
    runs = []
    if profile_days > 0:
        cutoff = now - timedelta(days=profile_days)
        stale = inactive_customers(ledger, cutoff)
        for customer in ledger.load_all(stale).values():
            assert isinstance(customer, Customer)
            erase_customer(ledger, customer, by, f"retention: inactive for {profile_days} days")
        runs.append(
            RetentionRun(data_class=DataClass.CUSTOMER_PROFILES, cutoff=cutoff, removed=len(stale))
        )
    if auth_days > 0:
        cutoff = now - timedelta(days=auth_days)
        schema = Identifier(ledger.settings.pg_schema)
        removed = ledger.execute(
            SQL(
                "WITH tokens AS (DELETE FROM {}.auth_tokens WHERE expires_at < %s RETURNING 1),"
                " failures AS (DELETE FROM {}.sign_in_failures WHERE failed_at < %s RETURNING 1)"
                " SELECT (SELECT count(*) FROM tokens) + (SELECT count(*) FROM failures)"
            ).format(schema, schema),
            (cutoff, cutoff),
        )
        runs.append(
            RetentionRun(
                data_class=DataClass.AUTH_RECORDS, cutoff=cutoff, removed=int(removed[0][0])
            )
        )
    if runs:
        retention = ledger.load_all([ids.RETENTION_ID]).get(ids.RETENTION_ID)
        if not isinstance(retention, Retention):
            retention = Retention()
        for run in runs:
            retention.applied(run=run, by=by)
        ledger.save(retention)
    return runs
