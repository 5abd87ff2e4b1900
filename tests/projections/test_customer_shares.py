"""customer360's bulk fold: however the log is cut into parts, merging the parts' folds
(handed over as MessagePack, as worker processes hand them) gives the documents that
folding the whole log at once gives; and it reads each stored movement as the incremental
path does, though it leaves its time, type and day as stored."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.adapters.documents import Body
from loyalty.domain.movement import MovementType
from loyalty.projections import feed
from loyalty.projections.customer_documents import (
    CUSTOMERS,
    apply_fact,
    day_of,
    new_customer,
    recent_entry,
    store_of,
)
from loyalty.projections.customer_shares import POSITION_BYTES, AccountShare, Part, StoredRecorded
from loyalty.projections.feed import Fact
from tests.projections.facts import log, movement, stored


def folded(facts: list[Fact]) -> Part:
    part = Part()
    for position, fact in enumerate(facts, start=1):
        part.add(position, *stored(fact))
    return part


def handed_over(part: Part) -> Part:
    return msgspec.msgpack.decode(msgspec.msgpack.encode(part), type=Part)


@settings(max_examples=150, deadline=None)
@given(facts=log(), cuts=st.lists(st.integers(0, 200), max_size=4))
def test_merged_parts_give_the_documents_of_one_fold(facts: list[Fact], cuts: list[int]) -> None:
    bounds = sorted({0, len(facts), *(c for c in cuts if c < len(facts))})
    parts = []
    for after, through in itertools.pairwise(bounds):
        part = Part()
        for position in range(after + 1, through + 1):
            part.add(position, *stored(facts[position - 1]))
        parts.append(handed_over(part))
    merged = parts[0]
    for later in parts[1:]:
        merged.merge(later)

    assert list(merged.documents()) == list(folded(facts).documents())


def applied_one_by_one(facts: list[Fact]) -> list[Body]:
    """The customers' documents as the incremental path makes them: each fact applied in
    turn to its customer's document (:func:`apply_fact`), in key order."""
    owners: dict[object, str] = {}
    codes: dict[object, str] = {}
    documents: dict[str, Body] = {}
    for fact in facts:
        body, stream = fact.body, fact.originator_id
        if isinstance(body, feed.AccountOpened | feed.CardIssued):
            owners[stream] = str(body.customer_id)
        if isinstance(body, feed.CardIssued):
            codes[stream] = body.code
        customer_id = owners.get(stream, str(stream))
        document = documents.setdefault(customer_id, new_customer(customer_id))
        apply_fact(document, fact, codes.get(stream))
    return [documents[key] for key in sorted(documents)]


@settings(max_examples=150, deadline=None)
@given(facts=log())
def test_a_fold_gives_the_documents_of_the_facts_applied_one_by_one(facts: list[Fact]) -> None:
    documents = [c.body for c in folded(facts).documents() if c.collection == CUSTOMERS]

    assert [as_stored(d) for d in documents] == applied_one_by_one(facts)


def as_stored(body: Body) -> Body:
    """A body as a document view stores it: as JSON (a fold hands its latest movements
    over encoded already)."""
    stored: Body = msgspec.json.decode(msgspec.json.encode(body))
    return stored


@settings(max_examples=200, deadline=None)
@given(
    drawn=movement(customers=1, i=7),
    occurred_at=st.datetimes(
        min_value=datetime(1990, 1, 1),
        max_value=datetime(2090, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(-timedelta(hours=3, minutes=30)), ZoneInfo("Europe/Rome")]
        ),
    ),
    stored_day=st.booleans(),
)
def test_a_stored_movement_reads_as_the_incremental_path_reads_it(
    drawn: tuple[int, feed.MovementRecorded], occurred_at: datetime, stored_day: bool
) -> None:
    _, recorded = drawn
    derivation = recorded.derivation
    if stored_day:
        derivation = msgspec.structs.replace(derivation, local_date=occurred_at.date())
    recorded = msgspec.structs.replace(
        recorded,
        movement=msgspec.structs.replace(recorded.movement, occurred_at=occurred_at),
        derivation=derivation,
    )
    as_read = msgspec.json.decode(msgspec.json.encode(recorded), type=feed.MovementRecorded)
    share = AccountShare()

    share.add(1, msgspec.json.decode(msgspec.json.encode(recorded), type=StoredRecorded))

    entry = msgspec.json.decode(share.recent[0][POSITION_BYTES:])
    assert entry == recent_entry(as_read, store_of(as_read.movement))
    assert (share.earned, share.spent) == as_read.derivation.points_moved()
    if as_read.movement.type is MovementType.PURCHASE:
        assert share.first_purchase_on == share.last_purchase_on == day_of(as_read)
