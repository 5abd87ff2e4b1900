"""Program as code: ``loyalty apply FILE`` declares the network, campaigns, promotions,
clusters, customers, cards and terminal keys; applying appends only the difference.

The whole file is applied in one transaction: either every difference is recorded or
none is. Nodes, keys and cards missing from the file are left alone (close, revoke or
block them explicitly), so a partial file never destroys anything.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable, Iterable
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from loyalty.commands.ledger import Ledger
from loyalty.commands.prizes import PrizeSpec
from loyalty.domain import ids
from loyalty.domain.campaign import Campaign, CampaignTerms
from loyalty.domain.card import Card
from loyalty.domain.cluster import Cluster, ClusterTerms
from loyalty.domain.customer import Customer, Profile
from loyalty.domain.errors import InvalidProgram
from loyalty.domain.network import Network, NodeKind
from loyalty.domain.prize import Prize
from loyalty.domain.promotion import (
    FixedCredits,
    PercentCredits,
    Promotion,
    PromotionTerms,
)

AggregateT = TypeVar("AggregateT", bound=Aggregate)


class TerminalKeySpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A terminal's API key: the secret itself (hashed on apply; for demos and tests)
    or, for production files, only its SHA-256 hex digest."""

    key: str | None = None
    sha256: str | None = None

    def digest(self) -> str:
        if self.sha256:
            return self.sha256.lower()
        if self.key:
            return key_digest(self.key)
        raise InvalidProgram("a terminal key needs key or sha256")


class NodeSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: str
    name: str
    kind: NodeKind
    parent: str
    timezone: str | None = None
    closed: bool = False
    api_keys: tuple[TerminalKeySpec, ...] = ()


class NetworkSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: str
    name: str


class CampaignSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: str
    terms: CampaignTerms


class PromotionSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: str
    campaign: str
    terms: PromotionTerms


class ClusterSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: str
    terms: ClusterTerms


class CustomerSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A registered customer, known by the first of their cards."""

    cards: tuple[str, ...]
    profile: Profile
    signed_up_on: date
    home_store: str | None = None


class CardRange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Anonymous cards ``prefix`` + numbers ``first``..``last``, zero-padded to ``width``."""

    prefix: str
    first: int
    last: int
    width: int = 8

    def codes(self) -> list[str]:
        return [f"{self.prefix}{n:0{self.width}d}" for n in range(self.first, self.last + 1)]


class ProgramFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    network: NetworkSpec
    nodes: tuple[NodeSpec, ...] = ()
    clusters: tuple[ClusterSpec, ...] = ()
    campaigns: tuple[CampaignSpec, ...] = ()
    promotions: tuple[PromotionSpec, ...] = ()
    prizes: tuple[PrizeSpec, ...] = ()
    customers: tuple[CustomerSpec, ...] = ()
    cards: tuple[str, ...] = ()
    card_ranges: tuple[CardRange, ...] = ()


class ApplyReport(msgspec.Struct, kw_only=True):
    events: int
    streams: int


def key_digest(key: str) -> str:
    """API keys are random 256-bit secrets, so a plain SHA-256 is the right hash for them."""
    return hashlib.sha256(key.encode()).hexdigest()


def read_program(path: Path) -> ProgramFile:
    """Reads a program from TOML or JSON; raises :class:`InvalidProgram` with the reason."""
    try:
        if path.suffix == ".toml":
            raw = tomllib.loads(path.read_text())
            return msgspec.convert(raw, ProgramFile, strict=False)
        return msgspec.json.decode(path.read_bytes(), type=ProgramFile, strict=False)
    except (msgspec.ValidationError, msgspec.DecodeError, tomllib.TOMLDecodeError) as error:
        raise InvalidProgram(f"{path}: {error}") from None


class ProgramApplier:
    """Turns a :class:`ProgramFile` into the events that make the store match it."""

    def __init__(self, ledger: Ledger, clock: Callable[[], datetime]) -> None:
        self.ledger = ledger
        self.clock = clock

    def apply(self, program: ProgramFile) -> ApplyReport:
        now = self.clock()
        changes = Changes(self.ledger)
        network = self.apply_network(program, changes)
        for cluster in program.clusters:
            self.apply_cluster(cluster, changes, now)
        for campaign in program.campaigns:
            self.apply_campaign(campaign, network, changes)
        for promotion in program.promotions:
            self.apply_promotion(promotion, program, changes, now)
        for prize in program.prizes:
            self.apply_prize(prize, changes)
        anonymous = [*program.cards, *(c for r in program.card_ranges for c in r.codes())]
        changes.preload(
            ids.card_id(code)
            for code in [*anonymous, *(c for s in program.customers for c in s.cards)]
        )
        for customer in program.customers:
            self.apply_customer(customer, network, changes)
        for code in anonymous:
            if changes.get(Card, ids.card_id(code)) is None:
                changes.add(Card.issue(code))
        return changes.save()

    def apply_network(self, program: ProgramFile, changes: Changes) -> Network:
        network = changes.get(Network, ids.NETWORK_ID)
        if network is None:
            network = Network(code=program.network.code, name=program.network.name)
            changes.add(network)
        elif network.root != program.network.code:
            raise InvalidProgram(
                f"the network's root is {network.root!r}, not {program.network.code!r}"
            )
        network.rename(network.root, program.network.name)
        for spec in placement_order(program.nodes, network.root):
            self.apply_node(network, spec)
        return network

    def apply_node(self, network: Network, spec: NodeSpec) -> None:
        if spec.code not in network.nodes:
            network.add(
                code=spec.code,
                name=spec.name,
                kind=spec.kind,
                parent=spec.parent,
                timezone=spec.timezone,
            )
        node = network.node(spec.code)
        if node.kind is not spec.kind:
            raise InvalidProgram(f"node {spec.code!r} is a {node.kind}, not a {spec.kind}")
        network.rename(spec.code, spec.name)
        network.move(spec.code, spec.parent)
        if spec.timezone and spec.timezone != node.timezone:
            network.change_timezone(spec.code, spec.timezone)
        if spec.closed:
            network.close(spec.code)
        else:
            network.reopen(spec.code)
        for key in spec.api_keys:
            digest = key.digest()
            if digest not in node.key_digests.values():
                network.issue_terminal_key(spec.code, digest[:12], digest)

    def apply_cluster(self, spec: ClusterSpec, changes: Changes, now: datetime) -> None:
        cluster = changes.get(Cluster, ids.cluster_id(spec.code))
        if cluster is None:
            changes.add(
                Cluster.define(code=spec.code, terms=spec.terms, effective_from=now, now=now)
            )
        elif cluster.current.terms != spec.terms:
            cluster.redefine(spec.terms, now, now)

    def apply_campaign(self, spec: CampaignSpec, network: Network, changes: Changes) -> None:
        for node in spec.terms.nodes:
            network.node(node)
        campaign = changes.get(Campaign, ids.campaign_id(spec.code))
        if campaign is None:
            changes.add(Campaign.launch(spec.code, spec.terms))
        else:
            campaign.revise(spec.terms)

    def apply_promotion(
        self, spec: PromotionSpec, program: ProgramFile, changes: Changes, now: datetime
    ) -> None:
        campaign = changes.get(Campaign, ids.campaign_id(spec.campaign))
        if campaign is None:
            raise InvalidProgram(f"promotion {spec.code!r}: no campaign {spec.campaign!r}")
        check_promotion_fits(spec, campaign)
        if spec.terms.cluster and changes.get(Cluster, ids.cluster_id(spec.terms.cluster)) is None:
            raise InvalidProgram(f"promotion {spec.code!r}: no cluster {spec.terms.cluster!r}")
        promotion = changes.get(Promotion, ids.promotion_id(spec.code))
        if promotion is None:
            changes.add(
                Promotion.create(
                    campaign_id=campaign.id,
                    code=spec.code,
                    terms=spec.terms,
                    effective_from=now,
                    now=now,
                )
            )
        elif promotion.campaign_id != campaign.id:
            raise InvalidProgram(f"promotion {spec.code!r} belongs to another campaign")
        elif promotion.current.terms != spec.terms:
            promotion.revise(spec.terms, now, now)

    def apply_prize(self, spec: PrizeSpec, changes: Changes) -> None:
        """A new prize starts with the file's stock; a known one gets the file's terms and
        keeps its stock (redemptions and restocking change it, not the file)."""
        campaign = changes.get(Campaign, ids.campaign_id(spec.campaign))
        if campaign is None:
            raise InvalidProgram(f"prize {spec.code!r}: no campaign {spec.campaign!r}")
        prize = changes.get(Prize, ids.prize_id(campaign.id, spec.code))
        if prize is None:
            changes.add(Prize.list(campaign.id, spec.code, spec.terms, spec.stock, "program"))
        else:
            prize.revise(spec.terms, "program")

    def apply_customer(self, spec: CustomerSpec, network: Network, changes: Changes) -> None:
        if not spec.cards:
            raise InvalidProgram("a customer needs at least one card")
        first = changes.get(Card, ids.card_id(spec.cards[0]))
        if first is None:
            first = Card.issue(spec.cards[0])
            changes.add(first)
        customer = changes.get(Customer, first.customer_id)
        if customer is None:
            customer = Customer.register(
                customer_id=first.customer_id,
                profile=spec.profile,
                signed_up_on=spec.signed_up_on,
                cards=(first.code,),
            )
            changes.add(customer)
        customer.complete_profile(spec.profile)
        if spec.home_store is not None:
            customer.set_home_store(network.store(spec.home_store).code, "program")
        for code in spec.cards[1:]:
            card = changes.get(Card, ids.card_id(code))
            if card is None:
                changes.add(Card.issue(code, customer.id))
            elif card.customer_id != customer.id:
                raise InvalidProgram(f"card {code!r} belongs to another customer")
            customer.attach_card(code)


def check_promotion_fits(spec: PromotionSpec, campaign: Campaign) -> None:
    if campaign.terms.credits:
        return
    if any(isinstance(b, FixedCredits | PercentCredits) for b in spec.terms.benefits):
        raise InvalidProgram(
            f"promotion {spec.code!r} gives credits, but campaign {campaign.code!r} has none"
        )


def placement_order(nodes: tuple[NodeSpec, ...], root: str) -> list[NodeSpec]:
    """Nodes ordered so that every parent comes before its children."""
    by_code = {n.code: n for n in nodes}
    if len(by_code) != len(nodes):
        raise InvalidProgram("a node code appears twice in the file")
    ordered: list[NodeSpec] = []
    placed = {root}
    remaining = list(nodes)
    while remaining:
        ready = [n for n in remaining if n.parent in placed or n.parent not in by_code]
        if not ready:
            raise InvalidProgram("the file's nodes form a cycle")
        ordered.extend(ready)
        placed.update(n.code for n in ready)
        remaining = [n for n in remaining if n.code not in placed]
    return ordered


class Changes:
    """The aggregates a file touches, loaded once and saved together."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.loaded: dict[UUID, Aggregate | None] = {}
        self.new: list[Aggregate] = []

    def get(self, kind: type[AggregateT], aggregate_id: UUID) -> AggregateT | None:
        if aggregate_id not in self.loaded:
            try:
                self.loaded[aggregate_id] = self.ledger.repository.get(aggregate_id)
            except AggregateNotFoundError:
                self.loaded[aggregate_id] = None
        found = self.loaded[aggregate_id]
        if found is not None and not isinstance(found, kind):
            raise InvalidProgram(f"{aggregate_id} is not a {kind.__name__}")
        return found

    def preload(self, aggregate_ids: Iterable[UUID]) -> None:
        """Loads many streams in one round trip (card ranges run to the thousands)."""
        wanted = [i for i in aggregate_ids if i not in self.loaded]
        found = self.ledger.load_all(wanted)
        for aggregate_id in wanted:
            self.loaded[aggregate_id] = found.get(aggregate_id)

    def add(self, aggregate: Aggregate) -> None:
        self.loaded[aggregate.id] = aggregate
        self.new.append(aggregate)

    def save(self) -> ApplyReport:
        aggregates = [a for a in self.loaded.values() if a is not None and a.pending_events]
        events = sum(len(a.pending_events) for a in aggregates)
        if aggregates:
            self.ledger.save(*aggregates)
        return ApplyReport(events=events, streams=len(aggregates))
