"""The customer 360 view: one document per customer with everything the read side knows of
them that is not personal, for the analytics dashboards and the Analytics API
(:mod:`loyalty.projections.customer_documents` says what a document holds). Segments and
clusters are joined when read (they change by runs, not by events).

Batches change the documents their facts name, fact by fact; a rebuild folds the whole log
at once (:mod:`loyalty.projections.customer_shares`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from loyalty.adapters.documents import Body, DocumentChange
from loyalty.projections import feed
from loyalty.projections.bulk import merged, parts_of
from loyalty.projections.customer_documents import (
    ACCOUNTS,
    CARD_CHANGES,
    CARDS,
    CUSTOMERS,
    apply_fact,
    new_customer,
)
from loyalty.projections.customer_shares import Part, fold_part
from loyalty.projections.documents import DocumentModel
from loyalty.projections.feed import CUSTOMER_TOPICS, Fact
from loyalty.settings import Settings


class Customer360(DocumentModel):
    name = "customer360"
    topics = CUSTOMER_TOPICS

    def changes(self, facts: Sequence[Fact]) -> list[DocumentChange]:
        batch = Batch(self, facts)
        for fact in facts:
            batch.apply(fact)
        return batch.changes()

    def bulk_changes(self, settings: Settings, head: int) -> tuple[Iterator[DocumentChange], int]:
        """Every document of the log up to ``head``: worker processes fold the log's parts
        account by account (:class:`Part`), merged here in log order into each customer's
        document."""
        parts = parts_of(settings, self.generation, head, self.topics)
        texts = [part._replace(stream_ids="text") for part in parts]
        whole = merged(texts, fold_part, Part)
        return whole.documents(), whole.events


class Batch:
    """One batch's documents: read once, changed in log order, written once."""

    def __init__(self, model: Customer360, facts: Sequence[Fact]) -> None:
        view = model.view
        opened = {f.originator_id: f.body for f in facts if isinstance(f.body, feed.AccountOpened)}
        issued = {f.originator_id: f.body for f in facts if isinstance(f.body, feed.CardIssued)}
        self.accounts: dict[str, Body] = {
            str(account): {
                "customer_id": str(body.customer_id),
                "campaign_id": str(body.campaign_id),
            }
            for account, body in opened.items()
        }
        self.cards: dict[str, Body] = {
            str(card): {"customer_id": str(body.customer_id), "code": body.code}
            for card, body in issued.items()
        }
        self.new_lookups = set(self.accounts) | {f"card:{c}" for c in self.cards}
        moved = {str(f.originator_id) for f in facts if isinstance(f.body, feed.MovementRecorded)}
        changed = {str(f.originator_id) for f in facts if isinstance(f.body, CARD_CHANGES)}
        self.accounts |= view.get_many(ACCOUNTS, sorted(moved - self.accounts.keys()))
        self.cards |= view.get_many(CARDS, sorted(changed - self.cards.keys()))
        wanted = {self.customer_of(f) for f in facts}
        self.customers = view.get_many(CUSTOMERS, sorted(wanted))
        self.touched: set[str] = set()

    def customer_of(self, fact: Fact) -> str:
        body = fact.body
        stream = str(fact.originator_id)
        if isinstance(body, feed.AccountOpened | feed.MovementRecorded):
            return str(self.accounts[stream]["customer_id"])
        if isinstance(body, feed.CardIssued | CARD_CHANGES):
            return str(self.cards[stream]["customer_id"])
        return stream

    def document(self, customer_id: str) -> Body:
        self.touched.add(customer_id)
        if customer_id not in self.customers:
            self.customers[customer_id] = new_customer(customer_id)
        return self.customers[customer_id]

    def apply(self, fact: Fact) -> None:
        document = self.document(self.customer_of(fact))
        card = self.cards.get(str(fact.originator_id))
        apply_fact(document, fact, card["code"] if card else None)

    def changes(self) -> list[DocumentChange]:
        found = [
            DocumentChange(collection=ACCOUNTS, key=key, body=body)
            for key, body in self.accounts.items()
            if key in self.new_lookups
        ]
        found += [
            DocumentChange(collection=CARDS, key=key, body=body)
            for key, body in self.cards.items()
            if f"card:{key}" in self.new_lookups
        ]
        found += [
            DocumentChange(
                collection=CUSTOMERS,
                key=key,
                body={k: v for k, v in self.customers[key].items() if k != "key"},
            )
            for key in sorted(self.touched)
        ]
        return found
