"""Small helpers that build test data: a clock, a chain, movements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from loyalty.commands.apply import (
    CampaignSpec,
    ClusterSpec,
    CustomerSpec,
    NetworkSpec,
    NodeSpec,
    ProgramFile,
    PromotionSpec,
    TerminalKeySpec,
)
from loyalty.commands.prizes import PrizeSpec
from loyalty.commands.schemas import PostMovement
from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.campaign import CampaignTerms, CampaignView
from loyalty.domain.movement import Line, Location, Movement, MovementType
from loyalty.domain.network import NodeKind
from loyalty.domain.prize import PrizeTerms
from loyalty.domain.promotion import Benefit, PointsPerAmount, PromotionTerms, PromotionVersion
from loyalty.rules.engine import PromotionInForce

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


@dataclass
class Clock:
    """A settable clock: the program is applied at ``now``, movements happen after."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def terminal_key(terminal: str) -> str:
    return f"key-{terminal}"


def node(code: str, kind: NodeKind, parent: str, **extra: Any) -> NodeSpec:
    if kind is NodeKind.STORE:
        extra.setdefault("timezone", "Europe/Rome")
    if kind is NodeKind.TERMINAL:
        extra.setdefault("api_keys", (TerminalKeySpec(key=terminal_key(code)),))
    return NodeSpec(code=code, name=code.title(), kind=kind, parent=parent, **extra)


def chain_nodes() -> tuple[NodeSpec, ...]:
    """Two regions, three stores, one terminal each; region ``south`` holds ``s3``."""
    return (
        node("north", NodeKind.SUB_NETWORK, "chain"),
        node("south", NodeKind.SUB_NETWORK, "chain"),
        node("s1", NodeKind.STORE, "north"),
        node("s2", NodeKind.STORE, "north"),
        node("s3", NodeKind.STORE, "south"),
        node("t1", NodeKind.TERMINAL, "s1"),
        node("t2", NodeKind.TERMINAL, "s2"),
        node("t3", NodeKind.TERMINAL, "s3"),
    )


def base_points(**terms: Any) -> PromotionSpec:
    defaults: dict[str, Any] = {"name": "1 point per euro", "benefits": (PointsPerAmount(),)}
    return PromotionSpec(
        code=terms.pop("code", "base"),
        campaign=terms.pop("campaign", "club"),
        terms=PromotionTerms(**{**defaults, **terms}),
    )


VOUCHER_POINTS = 10


def prize(
    code: str = "voucher", points: int = VOUCHER_POINTS, stock: int = 100, **terms: Any
) -> PrizeSpec:
    """A prize of campaign ``club``; the default program lists this one."""
    return PrizeSpec(
        code=code,
        campaign="club",
        terms=PrizeTerms(name=code.title(), points=points, **terms),
        stock=stock,
    )


def program(
    *,
    promotions: tuple[PromotionSpec, ...] = (),
    prizes: tuple[PrizeSpec, ...] = (prize(),),
    clusters: tuple[ClusterSpec, ...] = (),
    customers: tuple[CustomerSpec, ...] = (),
    cards: tuple[str, ...] = ("C1", "C2", "C3"),
    credits: bool = True,
    nodes: tuple[NodeSpec, ...] | None = None,
    campaign_nodes: tuple[str, ...] = ("chain",),
) -> ProgramFile:
    return ProgramFile(
        network=NetworkSpec(code="chain", name="Chain"),
        nodes=chain_nodes() if nodes is None else nodes,
        clusters=clusters,
        campaigns=(
            CampaignSpec(
                code="club",
                terms=CampaignTerms(
                    name="Club", nodes=campaign_nodes, starts_on=date(2026, 1, 1), credits=credits
                ),
            ),
        ),
        promotions=promotions or (base_points(),),
        prizes=prizes,
        customers=customers,
        cards=cards,
    )


def line(sku: str, amount: str, quantity: str = "1", department: str = "grocery") -> Line:
    qty = Decimal(quantity)
    return Line(
        sku=sku,
        department=department,
        quantity=qty,
        unit_price=(Decimal(amount) / qty).quantize(Decimal("0.01")),
        amount=Decimal(amount),
    )


def purchase(
    movement_id: str,
    *lines: Line,
    card: str = "C1",
    terminal: str = "t1",
    at: datetime | None = None,
    **extra: Any,
) -> PostMovement:
    lines = lines or (line("BREAD", "10.00"),)
    return PostMovement(
        movement_id=movement_id,
        type=extra.pop("type", MovementType.PURCHASE),
        card=card,
        terminal=terminal,
        occurred_at=at or START + timedelta(minutes=90),
        amount=sum((item.amount for item in lines), Decimal(0)),
        currency="EUR",
        lines=lines,
        **extra,
    )


def return_of(movement_id: str, original: str, *lines: Line, **extra: Any) -> PostMovement:
    return purchase(
        movement_id, *lines, type=MovementType.RETURN, original_movement_id=original, **extra
    )


def redemption(
    movement_id: str,
    pieces: int = 1,
    prize: str = "voucher",
    each: int = VOUCHER_POINTS,
    **extra: Any,
) -> PostMovement:
    """A till's redemption of ``pieces`` of a prize costing ``each`` points."""
    taken = Line(
        sku=prize,
        department="",
        quantity=Decimal(pieces),
        unit_price=Decimal(each),
        amount=Decimal(pieces * each),
    )
    return msgspec.structs.replace(
        purchase(movement_id, **extra),
        type=MovementType.PRIZE_REDEMPTION,
        amount=taken.amount,
        currency="PTS",
        lines=(taken,),
    )


def as_json(command: PostMovement) -> dict[str, Any]:
    return msgspec.to_builtins(command)  # type: ignore[no-any-return]


@dataclass
class Posted:
    status: int
    body: dict[str, Any] = field(default_factory=dict)


# Pure builders for the domain and rule-engine tests: no I/O, no application.

AT = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
"""A Wednesday: 12:00 on the wall clock of the default store, in Europe/Rome."""


def store_location(*path: str, timezone: str = "Europe/Rome") -> Location:
    """Where a movement happens: node codes from the root down to the terminal."""
    path = path or ("chain", "north", "s1", "t1")
    return Location(
        terminal_id=ids.node_id(path[-1]),
        store_id=ids.node_id(path[-2]),
        path=path,
        timezone=timezone,
    )


def movement(
    movement_id: str,
    *lines: Line,
    type: MovementType = MovementType.PURCHASE,
    at: datetime = AT,
    **extra: Any,
) -> Movement:
    """A movement as the engine sees it; its amount is the sum of its lines unless given."""
    extra.setdefault("amount", sum((item.amount for item in lines), Decimal(0)))
    extra.setdefault("currency", "EUR")
    extra.setdefault("location", store_location())
    return Movement(
        movement_id=movement_id, type=type, card="C1", occurred_at=at, lines=lines, **extra
    )


def campaign_view(*nodes: str, credits: bool = True, **terms: Any) -> CampaignView:
    terms.setdefault("starts_on", date(2026, 1, 1))
    return CampaignView(
        id=ids.campaign_id("club"),
        code="club",
        terms=CampaignTerms(name="Club", nodes=nodes or ("chain",), credits=credits, **terms),
    )


def in_force(code: str, *benefits: Benefit, version: int = 1, **terms: Any) -> PromotionInForce:
    """Version ``version`` of promotion ``code``, in force since well before :data:`AT`."""
    return PromotionInForce(
        id=ids.promotion_id(code),
        code=code,
        version=PromotionVersion(
            number=version,
            effective_from=AT - timedelta(days=30),
            terms=PromotionTerms(name=code, benefits=benefits, **terms),
        ),
    )


def new_account(card: str = "C1") -> Account:
    return Account(campaign_id=ids.campaign_id("club"), customer_id=ids.customer_id_for_card(card))
