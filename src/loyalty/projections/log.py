"""The ledger's log as the read side's followers see it: where it ends, when an event was
recorded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from loyalty.settings import Settings


def event_time(datastore: PostgresDatastore, settings: Settings, position: int) -> datetime:
    """When the event stored at ``position`` was recorded."""
    with datastore.transaction() as curs:
        curs.execute(
            SQL(
                "SELECT (convert_from(state, 'UTF8')::jsonb->>'timestamp')::timestamptz AS at"
                " FROM {} WHERE notification_id = %s"
            ).format(Identifier(settings.pg_schema, "ledger_events")),
            (position,),
        )
        row = curs.fetchone()
    assert row is not None, f"no event is stored at {position}"
    at: datetime = row["at"]
    return at


def log_head(
    datastore: PostgresDatastore, settings: Settings, topics: Sequence[str] | None = None
) -> int:
    """The notification id of the newest stored event (of ``topics``, if any given)."""
    events = Identifier(settings.pg_schema, "ledger_events")
    with datastore.transaction() as curs:
        if not topics:
            curs.execute(SQL("SELECT max(notification_id) AS head FROM {}").format(events))
        else:
            curs.execute(
                SQL("SELECT max(notification_id) AS head FROM {} WHERE topic = ANY(%s)").format(
                    events
                ),
                (list(topics),),
            )
        row = curs.fetchone()
        return int(row["head"] or 0) if row else 0
