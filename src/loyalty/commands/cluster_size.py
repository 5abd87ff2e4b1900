"""How many customers a cluster takes in on a day: a preview for the Backoffice.

The size is counted from the event store, deciding membership with the rule engine's own
pure function, :func:`loyalty.rules.criteria.matches`, on each customer's facts and
behaviour: personal fields are sealed there, and only the Ledger opens them. The scan
(:func:`candidates`) is O(customers): registered customers are paged by stream id (keyset,
:data:`BATCH` at a time, one index walk over the whole scan) and each page is loaded with
its accounts and then its cards, so memory holds one page. The evaluation of cluster
memberships (:mod:`loyalty.commands.memberships`) judges the same scan.

What is counted:
- registered customers, not erased ones (nothing of their profile can be read any more);
  an anonymous card is no customer profile, so ``registered = false`` counts nobody here;
- a customer's card status is ``active`` if any of their cards is, else their newest
  card's (at a till, the card at hand: always an active one);
- behaviour is that of the customer's account in the campaign asked for, as a till of
  that campaign would judge it; without one, across all their accounts (a purchase is
  recorded on exactly one account, so the sums add up);
- the day (default today, UTC) is the one criteria are judged on (ages, recency, the last
  N days), against the profiles and behaviour recorded now; so it is today or later: a
  day gone by would need the history the read side will keep.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from uuid import UUID

import msgspec
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Identifier

from loyalty.commands.ledger import Ledger
from loyalty.commands.program import Program
from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.card import Card, CardStatus
from loyalty.domain.cluster import Cluster, ClusterVersion, Criterion, check_criterion
from loyalty.domain.customer import Customer, CustomerFacts
from loyalty.domain.errors import PreviewDatePassed, UnknownCampaign, UnknownCluster
from loyalty.rules.criteria import matches

BATCH = 500
"""Customers loaded per round trip."""

PAGE = """
SELECT originator_id FROM {events}
WHERE topic = %s AND originator_id > %s
ORDER BY originator_id
LIMIT %s
"""


class ClusterSize(msgspec.Struct, frozen=True, kw_only=True):
    as_of: date
    """The day the criteria were judged on."""
    campaign: str | None
    """Behaviour on this campaign's accounts; ``None``: across all of a customer's."""
    cluster: str | None
    """The cluster measured; ``None`` for criteria previewed before they are saved."""
    version: int | None
    """The cluster's version in force that day (``None``: none yet, so nobody is in)."""
    customers: int
    """Registered customers judged."""
    members: int
    """Those the criteria take in."""


@dataclass(frozen=True)
class Spending:
    """A customer's behaviour over some of their accounts (the rule engine's
    :class:`loyalty.rules.criteria.Behaviour`)."""

    accounts: Sequence[Account]

    @property
    def total_spend(self) -> Decimal:
        return sum((a.total_spend for a in self.accounts), Decimal(0))

    @property
    def purchase_count(self) -> int:
        return sum(a.purchase_count for a in self.accounts)

    @property
    def last_purchase_on(self) -> date | None:
        days = [a.last_purchase_on for a in self.accounts if a.last_purchase_on is not None]
        return max(days, default=None)

    def spend_between(self, first: date, last: date) -> Decimal:
        return sum((a.spend_between(first, last) for a in self.accounts), Decimal(0))


def preview_criteria(
    ledger: Ledger,
    program: Program,
    criteria: Criterion,
    as_of: date | None,
    campaign: str | None,
    now: datetime,
) -> ClusterSize:
    """How many customers ``criteria`` take in on ``as_of`` (default today)."""
    check_criterion(criteria)
    day = day_of(as_of, now)
    customers, members = count_members(ledger, criteria, day, campaign_ids(program, campaign))
    return ClusterSize(
        as_of=day,
        campaign=campaign,
        cluster=None,
        version=None,
        customers=customers,
        members=members,
    )


def cluster_size(
    ledger: Ledger,
    program: Program,
    code: str,
    as_of: date | None,
    campaign: str | None,
    now: datetime,
) -> ClusterSize:
    """How many customers cluster ``code`` takes in on ``as_of`` (default today), by the
    version in force then: now for today, the start of the day (UTC) for a later one."""
    cluster = program.clusters.get(code)
    if cluster is None:
        raise UnknownCluster(f"no cluster has the code {code!r}", cluster=code)
    day = day_of(as_of, now)
    version = version_on(cluster, day, now)
    criteria = version.terms.criteria if version is not None else None
    customers, members = count_members(ledger, criteria, day, campaign_ids(program, campaign))
    return ClusterSize(
        as_of=day,
        campaign=campaign,
        cluster=code,
        version=version.number if version is not None else None,
        customers=customers,
        members=members,
    )


def today(now: datetime) -> date:
    return now.astimezone(UTC).date()


def version_on(cluster: Cluster, day: date, now: datetime) -> ClusterVersion | None:
    """The version that judges ``day``: the one in force now for today, at the start of
    the day (UTC) for a later one."""
    at = now if day == today(now) else datetime.combine(day, time.min, tzinfo=UTC)
    return cluster.version_at(at)


def day_of(as_of: date | None, now: datetime) -> date:
    if as_of is None:
        return today(now)
    if as_of < today(now):
        raise PreviewDatePassed(
            f"a cluster's size is previewed for today ({today(now).isoformat()}) or a later "
            f"day, not {as_of.isoformat()}",
            as_of=as_of.isoformat(),
            field="as_of",
        )
    return as_of


def campaign_ids(program: Program, campaign: str | None) -> list[UUID]:
    """The campaigns whose accounts make up the behaviour: the one named, or all."""
    if campaign is None:
        return sorted(program.campaigns)
    if ids.campaign_id(campaign) not in program.campaigns:
        raise UnknownCampaign(f"no campaign has the code {campaign!r}", campaign=campaign)
    return [ids.campaign_id(campaign)]


def count_members(
    ledger: Ledger,
    criteria: Criterion | None,
    day: date,
    campaigns: Sequence[UUID],
    batch: int = BATCH,
) -> tuple[int, int]:
    """(customers judged, members) over every registered customer, a page at a time;
    ``criteria`` ``None`` takes nobody in."""
    customers = members = 0
    for candidate in candidates(ledger, campaigns, batch):
        customers += 1
        if criteria is not None and candidate.meets(criteria, day):
            members += 1
    return customers, members


@dataclass(frozen=True)
class Candidate:
    """A registered customer, not erased, as cluster criteria see them."""

    customer: Customer
    facts: CustomerFacts
    spending: Spending

    def meets(self, criteria: Criterion, day: date) -> bool:
        return matches(criteria, self.facts, self.spending, day)


def candidates(
    ledger: Ledger, campaigns: Sequence[UUID], batch: int = BATCH
) -> Iterator[Candidate]:
    """Every registered customer not erased, with their behaviour on the accounts of
    ``campaigns``, loaded a page of ``batch`` customers at a time."""
    for page in registered_customer_pages(ledger, batch):
        accounts = {c: [ids.account_id(k, c) for k in campaigns] for c in page}
        loaded = ledger.load_all([*page, *(a for found in accounts.values() for a in found)])
        people = [
            p for p in (loaded.get(c) for c in page) if isinstance(p, Customer) and not p.erased
        ]
        cards = ledger.load_all(ids.card_id(code) for p in people for code in p.cards)
        for person in people:
            held = [loaded.get(i) for i in accounts[person.id]]
            spending = Spending([a for a in held if isinstance(a, Account)])
            yield Candidate(person, person.facts(card_status(person, cards)), spending)


def registered_customer_pages(ledger: Ledger, batch: int) -> Iterator[list[UUID]]:
    """The ids of registered customers, ``batch`` at a time, in id order."""
    query = SQL(PAGE).format(events=Identifier(ledger.settings.pg_schema, "ledger_events"))
    topic = get_topic(Customer.Registered)
    after = UUID(int=0)
    while True:
        page = [row[0] for row in ledger.query(query, (topic, after, batch))]
        if page:
            yield page
        if len(page) < batch:
            return
        after = page[-1]


def card_status(customer: Customer, cards: Mapping[UUID, object]) -> CardStatus:
    """``active`` if any of the customer's cards is, else their newest card's status."""
    statuses = [
        card.status
        for card in (cards.get(ids.card_id(code)) for code in customer.cards)
        if isinstance(card, Card)
    ]
    if CardStatus.ACTIVE in statuses or not statuses:
        return CardStatus.ACTIVE
    return statuses[-1]
