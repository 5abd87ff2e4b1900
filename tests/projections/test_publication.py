"""Events out: every committed event on the NATS JetStream stream, in log order, once."""

from __future__ import annotations

import hashlib
import socket
import time

import msgspec
import psycopg
import pytest
from psycopg.sql import SQL, Identifier

from loyalty.adapters.nats import EventStream, Message
from loyalty.bootstrap import Services
from loyalty.projections.balances import Balances
from loyalty.projections.publication import Publication, PublishedEvent, subject_of
from loyalty.projections.runner import read_datastore, running
from loyalty.projections.status import position_of, wait_until
from loyalty.settings import Settings
from tests.builders import Clock, line, program, purchase
from tests.projections.reading import caught_up, head
from tests.streams import published


def stored_events(settings: Settings) -> list[tuple[int, str, bytes]]:
    """(position, topic, state) of every stored event, in log order."""
    with psycopg.connect(settings.conninfo()) as conn:
        return [
            (position, topic, bytes(state))
            for position, topic, state in conn.execute(
                SQL("SELECT notification_id, topic, state FROM {} ORDER BY notification_id").format(
                    Identifier(settings.pg_schema, "ledger_events")
                )
            )
        ]


def test_every_committed_event_is_published_in_log_order_as_stored(
    services: Services, clock: Clock, settings: Settings
) -> None:
    services.applier.apply(program())
    clock.advance(hours=2)
    services.desk.post([purchase("p1", line("TV", "40.00")), purchase("p2", line("WINE", "9.00"))])

    with caught_up(settings, [Publication]):
        messages = published(settings)

    events = stored_events(settings)
    bodies = [msgspec.json.decode(payload, type=PublishedEvent) for _, _, payload in messages]
    assert [(b.position, b.topic, bytes(b.state)) for b in bodies] == events
    assert [headers["Nats-Msg-Id"] for _, headers, _ in messages] == [
        f"{p}-{hashlib.blake2b(state, digest_size=8).hexdigest()}" for p, _, state in events
    ]
    assert [subject for subject, _, _ in messages] == [
        subject_of(settings.events_subject, topic) for _, topic, _ in events
    ]
    assert f"{settings.events_subject}.Account.MovementRecorded" in {s for s, _, _ in messages}


def test_a_batch_published_again_lands_once(settings: Settings) -> None:
    batch = [
        Message(
            subject=f"{settings.events_subject}.Test.Happened", message_id=str(n), payload=b"{}"
        )
        for n in (1, 2, 3)
    ]
    events = EventStream(settings.nats_url, settings.events_stream, settings.events_subject)
    try:
        events.publish(batch)
        events.publish(batch[1:])
        events.publish([*batch, msgspec.structs.replace(batch[0], message_id="4")])
    finally:
        events.close()

    assert [headers["Nats-Msg-Id"] for _, headers, _ in published(settings)] == ["1", "2", "3", "4"]


def test_events_committed_while_following_are_published_too(
    services: Services, clock: Clock, settings: Settings
) -> None:
    services.applier.apply(program())
    clock.advance(hours=2)

    with caught_up(settings, [Publication]):
        services.desk.post([purchase("p1", line("TV", "40.00"))])
        datastore = read_datastore(settings)
        try:
            assert wait_until(datastore, settings, Publication, head(settings), timeout=30)
        finally:
            datastore.close()
        messages = published(settings)

    assert [p for p, _, _ in stored_events(settings)] == [
        msgspec.json.decode(payload, type=PublishedEvent).position for _, _, payload in messages
    ]


def test_an_unreachable_nats_stops_the_publication_only(
    services: Services, clock: Clock, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    services.applier.apply(program())
    clock.advance(hours=2)
    services.desk.post([purchase("p1", line("TV", "40.00"))])
    nowhere = msgspec.structs.replace(settings, nats_url=f"nats://127.0.0.1:{free_port()}")
    datastore = read_datastore(nowhere)
    try:
        with running(nowhere, [Balances, Publication], datastore) as check:
            deadline = time.monotonic() + 60
            while "publication stopped, starting it again" not in caplog.text:
                assert time.monotonic() < deadline, "the publication never failed"
                check()
                time.sleep(0.05)
            check()
            assert wait_until(datastore, nowhere, Balances, head(nowhere), timeout=30)
            assert position_of(nowhere, datastore, Publication) == 0
    finally:
        datastore.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
