"""Notification ids commit in order: a reader tailing the log never passes a gap that
fills later (the hazard of appending without the table lock, see DESIGN.md)."""

from __future__ import annotations

import threading

import psycopg
from psycopg import sql

from loyalty.bootstrap import Services, build_services
from loyalty.settings import Settings
from tests.builders import Clock, line, program, purchase

WRITERS = 4
GROUPS_PER_WRITER = 150


def tail(settings: Settings, done: threading.Event, seen: list[int]) -> None:
    """Reads forward from the last id seen, as a projection would, until writing stops."""
    query = sql.SQL(
        "SELECT notification_id FROM {}.ledger_events WHERE notification_id > %s"
        " ORDER BY notification_id LIMIT 1000"
    ).format(sql.Identifier(settings.pg_schema))
    last = 0
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        while True:
            finished = done.is_set()
            rows = conn.execute(query, (last,)).fetchall()
            seen.extend(row[0] for row in rows)
            if rows:
                last = rows[-1][0]
            elif finished:
                return


def test_a_tailing_reader_sees_every_event_of_concurrent_group_appends(
    settings: Settings, services: Services, clock: Clock
) -> None:
    services.applier.apply(program(cards=tuple(f"C{n}" for n in range(WRITERS))))
    clock.advance(hours=2)
    writers = [build_services(settings, clock) for _ in range(WRITERS)]
    done, seen = threading.Event(), []
    reader = threading.Thread(target=tail, args=(settings, done, seen))

    def write(number: int, desk_services: Services) -> None:
        for group in range(GROUPS_PER_WRITER):
            desk_services.desk.post(
                [purchase(f"w{number}-{group}", line("BREAD", "1.00"), card=f"C{number}")]
            )

    threads = [threading.Thread(target=write, args=(n, s)) for n, s in enumerate(writers)]
    reader.start()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        done.set()
        reader.join()
        for writer in writers:
            writer.close()

    with psycopg.connect(settings.conninfo()) as conn:
        stored = [
            row[0]
            for row in conn.execute(
                sql.SQL("SELECT notification_id FROM {}.ledger_events ORDER BY 1").format(
                    sql.Identifier(settings.pg_schema)
                )
            )
        ]
    assert len(stored) >= WRITERS * GROUPS_PER_WRITER
    assert sorted(set(seen)) == seen
    assert set(stored) - set(seen) == set()
