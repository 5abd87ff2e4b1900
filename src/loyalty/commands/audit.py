"""The tamper-evident log: verifying the hash chain and signing checkpoints of it.

Migration 0008 gives every stored event a ``link``: SHA-256 of the previous event's link
and of the event's own canonical bytes (:func:`event_hash`), in the global order. A
checkpoint is the head of the chain (notification id and link) signed with Ed25519 under
a key derived from the deployment's secret, which the database never sees: whoever
rewrites the chain with SQL cannot sign the result.

:func:`verify_chain` walks the log in order, recomputing every link, and reports the first
event whose stored link differs (an altered row breaks at itself; a deleted or reordered
one at the next), and every checkpoint that is not signed by us or no longer matches.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg.sql import SQL, Identifier

from loyalty.commands.ledger import Ledger

GENESIS = bytes(32)
"""The link before the first event."""
BATCH = 20_000


class Broken(msgspec.Struct, frozen=True, kw_only=True):
    notification_id: int
    reason: str


class ChainReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a walk of the chain found; ``intact`` only when nothing is broken."""

    intact: bool
    events: int
    head: int | None
    checkpoints: int
    last_checkpoint: int | None
    broken: tuple[Broken, ...]
    seconds: float
    events_per_second: float


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    notification_id: int
    link: bytes
    made_at: datetime
    signature: bytes


def event_hash(
    notification_id: int, originator_id: UUID, version: int, topic: str, state: bytes
) -> bytes:
    """The SHA-256 of an event's canonical bytes (the same as the SQL ``event_hash``)."""
    topic_bytes = topic.encode()
    return hashlib.sha256(
        struct.pack(">q", notification_id)
        + originator_id.bytes
        + struct.pack(">q", version)
        + struct.pack(">i", len(topic_bytes))
        + topic_bytes
        + struct.pack(">i", len(state))
        + state
    ).digest()


def next_link(previous: bytes, hashed: bytes) -> bytes:
    return hashlib.sha256(previous + hashed).digest()


def signed_bytes(notification_id: int, link: bytes, made_at: datetime) -> bytes:
    """What a checkpoint's signature covers."""
    micros = round(made_at.timestamp() * 1_000_000)
    return b"loyalty-chain-checkpoint" + struct.pack(">qq", notification_id, micros) + link


class Auditor:
    """Reads the chain of ``ledger``'s event store; signs and checks with ``key``."""

    def __init__(self, ledger: Ledger, key: Ed25519PrivateKey) -> None:
        self.ledger = ledger
        self.key = key
        schema = Identifier(ledger.settings.pg_schema)
        self._head = SQL(
            "SELECT notification_id, link FROM {}.ledger_events"
            " ORDER BY notification_id DESC LIMIT 1"
        ).format(schema)
        self._insert_checkpoint = SQL(
            "INSERT INTO {}.chain_checkpoints (notification_id, link, made_at, signature)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (notification_id) DO NOTHING"
        ).format(schema)
        self._last_checkpoint = SQL(
            "SELECT max(notification_id) FROM {}.chain_checkpoints HAVING count(*) > 0"
        ).format(schema)
        self._checkpoints = SQL(
            "SELECT notification_id, link, made_at, signature FROM {}.chain_checkpoints"
            " ORDER BY notification_id"
        ).format(schema)
        self._events = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state, link"
            " FROM {}.ledger_events WHERE notification_id > %s"
            " ORDER BY notification_id LIMIT %s"
        ).format(schema)

    def checkpoint(self, now: datetime) -> Checkpoint | None:
        """Signs the head of the chain as it stands (``None``: the log is empty)."""
        rows = self.ledger.query(self._head)
        if not rows:
            return None
        ((notification_id, link),) = rows
        link = bytes(link)
        signature = self.key.sign(signed_bytes(notification_id, link, now))
        self.ledger.execute(self._insert_checkpoint, (notification_id, link, now, signature))
        return Checkpoint(
            notification_id=notification_id, link=link, made_at=now, signature=signature
        )

    def sign_head(self, now: datetime) -> Checkpoint | None:
        """A checkpoint of the head, unless the last one already covers it."""
        head = self.head()
        signed = self.ledger.query(self._last_checkpoint)
        if head is None or (signed and signed[0][0] == head):
            return None
        return self.checkpoint(now)

    def head(self) -> int | None:
        rows = self.ledger.query(self._head)
        return int(rows[0][0]) if rows else None

    def checkpoints(self) -> list[Checkpoint]:
        return [
            Checkpoint(
                notification_id=n, link=bytes(link), made_at=made_at, signature=bytes(signature)
            )
            for n, link, made_at, signature in self.ledger.query(self._checkpoints)
        ]

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """Every stored event with its link, in the global order, a batch at a time."""
        after = 0
        while True:
            batch = self.ledger.query(self._events, (after, BATCH))
            yield from batch
            if len(batch) < BATCH:
                return
            after = batch[-1][0]

    def verify(self) -> ChainReport:
        started = time.perf_counter()
        checkpoints = self.checkpoints()
        broken = [
            Broken(notification_id=c.notification_id, reason="checkpoint not signed by our key")
            for c in checkpoints
            if not self.is_signed(c)
        ]
        pinned = {c.notification_id: c.link for c in checkpoints}
        seen: set[int] = set()
        previous, events, head, chained = GENESIS, 0, None, True
        for notification_id, originator_id, version, topic, state, link in self.rows():
            expected = next_link(
                previous, event_hash(notification_id, originator_id, version, topic, bytes(state))
            )
            if chained and bytes(link) != expected:
                chained = False
                broken.append(
                    Broken(
                        notification_id=notification_id,
                        reason="stored link does not follow from the events before it:"
                        " this event was altered, or one before it deleted or reordered",
                    )
                )
            if notification_id in pinned:
                seen.add(notification_id)
                if pinned[notification_id] != expected:
                    broken.append(
                        Broken(
                            notification_id=notification_id,
                            reason="the chain no longer reaches this signed checkpoint",
                        )
                    )
            previous, events, head = expected, events + 1, notification_id
        broken.extend(
            Broken(notification_id=n, reason="a signed checkpoint names an event that is gone")
            for n in sorted(set(pinned) - seen)
        )
        seconds = time.perf_counter() - started
        return ChainReport(
            intact=not broken,
            events=events,
            head=head,
            checkpoints=len(checkpoints),
            last_checkpoint=checkpoints[-1].notification_id if checkpoints else None,
            broken=tuple(sorted(broken, key=lambda b: b.notification_id)),
            seconds=round(seconds, 3),
            events_per_second=round(events / seconds, 1) if seconds else 0.0,
        )

    def is_signed(self, checkpoint: Checkpoint) -> bool:
        message = signed_bytes(checkpoint.notification_id, checkpoint.link, checkpoint.made_at)
        try:
            self.key.public_key().verify(checkpoint.signature, message)
        except InvalidSignature:
            return False
        return True
