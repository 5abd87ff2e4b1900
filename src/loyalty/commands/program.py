"""The program as the write side reads it: network, campaigns, promotions and clusters.

A :class:`Program` is an immutable snapshot; :class:`ProgramCache` reloads it when the
program revision (bumped in the same transaction as any program change) has moved.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property, partial
from types import MappingProxyType
from typing import Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from psycopg.sql import SQL, Identifier

from loyalty.adapters.eventstore import PROGRAM_KINDS
from loyalty.commands.ledger import Ledger, Statement
from loyalty.domain import ids
from loyalty.domain.campaign import Campaign, CampaignView, campaign_for
from loyalty.domain.cluster import Cluster
from loyalty.domain.errors import InvalidProgram, NoCampaign, UnknownNode
from loyalty.domain.movement import Location
from loyalty.domain.network import Network
from loyalty.domain.promotion import Promotion
from loyalty.domain.translations import Translations
from loyalty.domain.versioning import Version
from loyalty.rules.engine import ClusterInForce, PromotionInForce, PromotionsInForce

T = TypeVar("T")
NONE_IN_FORCE = PromotionsInForce(())
"""What a campaign without promotions has in force."""


@dataclass(frozen=True)
class Program:
    revision: int
    network: Network | None = None
    campaigns: dict[UUID, Campaign] = field(default_factory=dict)
    promotions: dict[UUID, list[Promotion]] = field(default_factory=dict)
    clusters: dict[str, Cluster] = field(default_factory=dict)
    terminal_keys: dict[str, str] = field(default_factory=dict)
    views: tuple[CampaignView, ...] = ()
    budgets: dict[UUID, tuple[UUID, ...]] = field(default_factory=dict)
    """The budget streams of each campaign's promotions that have a budget."""
    translations: dict[str, dict[str, str]] = field(default_factory=dict)
    """Operators' overrides of the API's messages, by locale and code."""

    @classmethod
    def of(cls, revision: int, aggregates: Sequence[Aggregate]) -> Program:
        network = next((a for a in aggregates if isinstance(a, Network)), None)
        translations = next((a for a in aggregates if isinstance(a, Translations)), None)
        campaigns = {a.id: a for a in aggregates if isinstance(a, Campaign)}
        promotions: dict[UUID, list[Promotion]] = defaultdict(list)
        for a in aggregates:
            if isinstance(a, Promotion):
                promotions[a.campaign_id].append(a)
        return cls(
            revision=revision,
            network=network,
            campaigns=campaigns,
            promotions=dict(promotions),
            clusters={a.code: a for a in aggregates if isinstance(a, Cluster)},
            terminal_keys=network.terminal_keys() if network else {},
            views=tuple(
                CampaignView(id=c.id, code=c.code, terms=c.terms) for c in campaigns.values()
            ),
            budgets={
                campaign_id: tuple(
                    ids.budget_id(p.id)
                    for p in in_campaign
                    if any(v.terms.has_budget for v in p.versions)
                )
                for campaign_id, in_campaign in promotions.items()
            },
            translations=translations.overrides if translations else {},
        )

    def location(self, terminal: str) -> Location:
        if self.network is None:
            raise UnknownNode(f"no network node has the code {terminal!r}", node=terminal)
        return self.network.location(terminal)

    def campaign_at(self, location: Location, day: date) -> CampaignView:
        campaign = campaign_for(self.views, location.path, day)
        if campaign is None:
            raise NoCampaign(
                f"no campaign runs at terminal {location.terminal!r} on {day.isoformat()}",
                terminal=location.terminal,
            )
        return campaign

    def campaign_by_code(self, code: str) -> CampaignView | None:
        campaign = self.campaigns.get(ids.campaign_id(code))
        return CampaignView(id=campaign.id, code=code, terms=campaign.terms) if campaign else None

    def promotions_in_force(self, campaign_id: UUID, at: datetime) -> PromotionsInForce:
        """The campaign's promotions with a version in force at ``at``, with it."""
        epochs = self.promotion_epochs.get(campaign_id)
        return epochs.at(at) if epochs is not None else NONE_IN_FORCE

    @cached_property
    def promotion_epochs(self) -> dict[UUID, Epochs[PromotionsInForce]]:
        """Each campaign's promotions in force, worked out once per snapshot for every span
        between two versions taking effect, instead of once per movement."""

        def in_force(promotions: list[Promotion], at: datetime) -> PromotionsInForce:
            return PromotionsInForce(
                PromotionInForce(id=promotion.id, code=promotion.code, version=version)
                for promotion in promotions
                if (version := promotion.version_at(at)) is not None
            )

        return {
            campaign_id: Epochs.of([p.versions for p in promotions], partial(in_force, promotions))
            for campaign_id, promotions in self.promotions.items()
        }

    @cached_property
    def promotion_messages(self) -> dict[str, str]:
        """Each promotion's own receipt message (of any version), with the promotion's code."""
        return {
            version.terms.receipt_message: promotion.code
            for in_campaign in self.promotions.values()
            for promotion in in_campaign
            for version in promotion.versions
            if version.terms.receipt_message
        }

    def clusters_in_force(self, at: datetime) -> Mapping[str, ClusterInForce]:
        """The clusters with a version in force at ``at``, by code, with it."""
        return self.cluster_epochs.at(at)

    @cached_property
    def cluster_epochs(self) -> Epochs[Mapping[str, ClusterInForce]]:
        """The clusters in force, worked out once per snapshot for every span between two
        versions taking effect."""

        def in_force(at: datetime) -> Mapping[str, ClusterInForce]:
            return MappingProxyType(
                {
                    code: ClusterInForce(id=cluster.id, code=code, version=version)
                    for code, cluster in self.clusters.items()
                    if (version := cluster.version_at(at)) is not None
                }
            )

        return Epochs.of([c.versions for c in self.clusters.values()], in_force)


@dataclass(frozen=True)
class Epochs(Generic[T]):
    """What holds over each span of time between two versions taking effect: ``held[0]``
    before the first, ``held[i]`` from ``starts[i - 1]`` until the next."""

    starts: list[datetime]
    held: list[T]

    @classmethod
    def of(
        cls, versions: Iterable[Sequence[Version[Any]]], at: Callable[[datetime], T]
    ) -> Epochs[T]:
        """The epochs of every version of ``versions``, ``at`` telling what holds at an
        instant (it changes only when a version takes effect)."""
        starts = sorted({version.effective_from for each in versions for version in each})
        before = (
            starts[0] - timedelta(microseconds=1) if starts else datetime.min.replace(tzinfo=UTC)
        )
        return cls(starts=starts, held=[at(before), *(at(start) for start in starts)])

    def at(self, instant: datetime) -> T:
        """What holds at ``instant``, compared in UTC as the starts are: comparing datetimes
        of two time zones works out both offsets every time (0.6 µs each, a movement's
        local time against a few starts), converting once costs half of one."""
        if instant.tzinfo is not UTC:
            instant = instant.astimezone(UTC)
        return self.held[bisect_right(self.starts, instant)]


class ProgramCache:
    """The latest program snapshot, reloaded when its revision moves."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        schema = Identifier(ledger.settings.pg_schema)
        self._revision = SQL("SELECT revision FROM {}.config_revision").format(schema)
        self._streams = SQL(
            "SELECT originator_id FROM {}.config_streams WHERE kind = ANY(%s)"
        ).format(schema)
        self._program = Program(revision=-1)
        self._lock = threading.Lock()

    def current(self) -> Program:
        """The latest snapshot (one query for the revision; a reload when it moved)."""
        (revision,) = self.ledger.query(self._revision)[0]
        return self.at_revision(revision)

    def network(self) -> Network:
        """The network as it stands, from the snapshot (one query for the revision): what
        read paths check scopes against, without loading the aggregate on every request."""
        network = self.current().network
        if network is None:
            raise InvalidProgram("apply a program with a network first")
        return network

    def loaded(self) -> Program:
        """The snapshot last loaded, without asking the database (loaded once if never)."""
        return self._program if self._program.revision >= 0 else self.current()

    @property
    def revision_statement(self) -> Statement:
        """The read whose one row holds the current revision (to pipeline with others)."""
        return self._revision, ()

    def at_revision(self, revision: int) -> Program:
        """The snapshot of ``revision``, reloaded unless it is the one held."""
        if revision != self._program.revision:
            with self._lock:
                if revision != self._program.revision:
                    kinds = list(PROGRAM_KINDS.values())
                    stream_ids = [row[0] for row in self.ledger.query(self._streams, (kinds,))]
                    aggregates = list(self.ledger.load_all(stream_ids).values())
                    self._program = Program.of(revision, aggregates)
        return self._program

    @property
    def last(self) -> Program:
        """The snapshot last loaded, without asking the database."""
        return self._program
