"""What a customer's 360 document holds, and what each fact changes in it, fact by fact:
the incremental path (:class:`loyalty.projections.customer360.Batch`) applies these to the
documents a batch changes, and the bulk fold's documents must come out the same.

A ``customers`` document holds: cards and their status, signup day, home store, whether
registered or erased; per campaign account, the balance, points earned and spent; purchases,
returns, net spend, first and last purchase day, visits per store; the last
:data:`RECENT` movements. Two lookup collections map account and card streams to their
customer.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from loyalty.adapters.documents import Body
from loyalty.domain.movement import MovementType
from loyalty.projections import feed
from loyalty.projections.feed import Fact
from loyalty.rules.schedule import local_time

CARD_CHANGES = feed.CardBlocked | feed.CardUnblocked | feed.CardReplaced
CUSTOMER_FACTS = feed.CustomerRegistered | feed.HomeStoreSet | feed.CustomerErased
RECENT = 10
"""Movements kept on a customer's document, newest first."""
CUSTOMERS, ACCOUNTS, CARDS = "customers", "accounts", "cards"


def new_customer(customer_id: str) -> Body:
    return {
        "customer_id": customer_id,
        "cards": [],
        "registered": False,
        "erased": False,
        "signed_up_on": None,
        "home_store": None,
        "accounts": {},
        "purchases": 0,
        "returns": 0,
        "spend": "0",
        "first_purchase_on": None,
        "last_purchase_on": None,
        "stores": [],
        "recent": [],
    }


def new_account(campaign_id: str | None) -> Body:
    return {"campaign_id": campaign_id, "points": 0, "credits": "0", "earned": 0, "spent": 0}


def apply_fact(document: Body, fact: Fact, card_code: str | None) -> None:
    """A fact's effect on its customer's document (``card_code``: the code of the card a
    card fact names)."""
    body = fact.body
    if isinstance(body, feed.CardIssued):
        set_card(document, body.code, "active")
    elif isinstance(body, CARD_CHANGES):
        if card_code is None:
            raise ValueError(f"card {fact.originator_id} changed before it was issued")
        set_card(document, card_code, card_status(body))
    elif isinstance(body, CUSTOMER_FACTS):
        set_field(document, *customer_fact(body))
    elif isinstance(body, feed.AccountOpened):
        document["accounts"].setdefault(str(fact.originator_id), new_account(str(body.campaign_id)))
    elif isinstance(body, feed.MovementRecorded):
        add_movement(document, str(fact.originator_id), body)


def set_card(document: Body, code: str, status: str) -> None:
    cards: list[Body] = document["cards"]
    for card in cards:
        if card["code"] == code:
            card["status"] = status
            return
    cards.append({"code": code, "status": status})


def card_status(body: Any) -> str:
    if isinstance(body, feed.CardBlocked):
        return "blocked"
    if isinstance(body, feed.CardReplaced):
        return "replaced"
    return "active"


def customer_fact(body: Any) -> tuple[str, str | None]:
    """What a registration, a home store set or an erasure sets on the customer's
    document: the field and its value."""
    if isinstance(body, feed.CustomerRegistered):
        return "signed_up_on", body.signed_up_on.isoformat()
    if isinstance(body, feed.HomeStoreSet):
        return "home_store", body.store
    return "erased", None


def set_field(document: Body, field: str, value: str | None) -> None:
    if field == "signed_up_on":
        document["registered"] = True
        document["signed_up_on"] = value
    elif field == "home_store":
        document["home_store"] = value
    else:
        document["erased"] = True


def store_of(movement: feed.Movement) -> str | None:
    return movement.location.path[-2] if movement.location else None


def day_of(recorded: feed.MovementRecorded) -> str:
    """The movement's local day (the store's), as an ISO date: as its derivation recorded
    it (events recorded before it did are worked out again)."""
    if recorded.derivation.local_date is not None:
        return recorded.derivation.local_date.isoformat()
    return local_day(recorded.movement.occurred_at, recorded.movement.location)


def local_day(occurred_at: datetime, location: feed.Location | None) -> str:
    """The local day (the store's; UTC's off the network) of a time, as an ISO date."""
    if location is None:
        return occurred_at.date().isoformat()
    return local_time(occurred_at, location.timezone).date().isoformat()


def recent_entry(recorded: feed.MovementRecorded, store: str | None) -> Body:
    movement = recorded.movement
    return entry_of(
        movement.movement_id,
        movement.type.value,
        movement.card,
        movement.occurred_at.isoformat(),
        store,
        movement.amount,
        recorded.derivation.points_delta,
    )


def entry_of(
    movement_id: str,
    type: str,
    card: str,
    occurred_at: str,
    store: str | None,
    amount: Decimal,
    points: int,
) -> Body:
    """A movement as a document's :data:`RECENT` list holds it (times as ``isoformat``)."""
    return {
        "movement_id": movement_id,
        "type": type,
        "card": card,
        "occurred_at": occurred_at,
        "store": store,
        "amount": str(amount),
        "points": points,
    }


def add_visit(document: Body, store: str) -> None:
    stores: list[Body] = document["stores"]
    for visited in stores:
        if visited["store"] == store:
            visited["visits"] += 1
            return
    stores.append({"store": store, "visits": 1})


def add_movement(document: Body, account_id: str, recorded: feed.MovementRecorded) -> None:
    """A movement's effect on its customer's document."""
    movement = recorded.movement
    account = document["accounts"].setdefault(account_id, new_account(None))
    account["points"] = recorded.points_after
    account["credits"] = str(recorded.credits_after)
    earned, spent = recorded.derivation.points_moved()
    account["earned"] += earned
    account["spent"] += spent
    store = store_of(movement)
    if movement.type in (MovementType.PURCHASE, MovementType.RETURN):
        purchase = movement.type is MovementType.PURCHASE
        sign = 1 if purchase else -1
        document["spend"] = str(Decimal(document["spend"]) + sign * movement.amount)
        document["purchases" if purchase else "returns"] += 1
        if purchase:
            day = day_of(recorded)
            document["first_purchase_on"] = min(filter(None, [document["first_purchase_on"], day]))
            document["last_purchase_on"] = max(filter(None, [document["last_purchase_on"], day]))
            if store is not None:
                add_visit(document, store)
    recent: list[Body] = document["recent"]
    recent.insert(0, recent_entry(recorded, store))
    del recent[RECENT:]
