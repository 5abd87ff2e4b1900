"""Deriving a movement's transactions: the promotion rule engine.

:func:`derive` is a pure function of the movement and its :class:`Context` (the campaign,
the promotion and cluster versions in force at ``occurred_at``, the account as of its
previous event, the customer's facts, budgets consumed, and for a return the original
movement). Same inputs, same :class:`~loyalty.domain.movement.Derivation`, byte for byte.

Semantics, in the order applied:

1. Promotions are considered by priority (higher first), then by code.
2. A promotion is eligible when it is active, the movement type and a node of the
   movement's path are in its WHERE, its WHEN holds at the store's local time, the
   movement amount reaches its ``min_spend``, and the customer is in its cluster.
3. Its benefits are computed; a multiplier multiplies the points earned so far in this
   movement by promotions of higher priority (so give multipliers a low priority).
4. Caps: no use left (per customer and period, or budget) means it does not fire; its
   points are cut to what the per-movement, per-customer and budget caps still allow.
   Discounts are computed on the listed amounts (they do not compound), and together
   never exceed the movement amount: a later discount is cut to what is left, so the
   till is never told to take off more than the receipt's total.
5. A promotion fires when something is left; an exclusive one that fires ends the walk.

A redemption cancellation gives back every point and credit its prize redemption moved
(bounded by the balance like a return), once.

A return reverses, line by line and in proportion to the quantity returned, the points
and credits its original purchase earned (see :mod:`loyalty.rules.allocation`); it never
takes the balance below zero: what cannot be taken back is recorded as unrecovered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from math import floor
from operator import attrgetter
from typing import Any, Protocol
from uuid import UUID

import msgspec

from loyalty.domain.campaign import CampaignView
from loyalty.domain.cluster import ClusterVersion
from loyalty.domain.customer import ANONYMOUS, CustomerFacts
from loyalty.domain.errors import (
    AlreadyCancelled,
    InsufficientPoints,
    InvalidMovement,
    ReturnExceedsOriginal,
)
from loyalty.domain.movement import (
    CENT,
    CREDITS,
    POINTS,
    Derivation,
    Line,
    Movement,
    MovementType,
    ReturnOf,
    Transaction,
    TransactionKind,
    UsageDelta,
    VersionRef,
)
from loyalty.domain.promotion import (
    Benefit,
    FixedCredits,
    FixedDiscount,
    FixedPoints,
    Multiplier,
    PercentCredits,
    PercentDiscount,
    PointsPerAmount,
    PointsPerUnit,
    PrizeAward,
    PromotionVersion,
    Rounding,
    When,
)
from loyalty.rules.allocation import allocate, allocate_units, reversed_share, whole_units
from loyalty.rules.criteria import Behaviour, matches
from loyalty.rules.schedule import is_within, local_time, period_key

BUDGET_PERIOD = "budget"
ALWAYS = When()
"""The WHEN that names no dates, weekdays or hours: it holds at any time."""
ROUNDINGS = {
    Rounding.FLOOR: ROUND_FLOOR,
    Rounding.HALF_UP: ROUND_HALF_UP,
    Rounding.CEILING: ROUND_CEILING,
}


class AccountState(Behaviour, Protocol):
    """The account as of its previous event."""

    @property
    def id(self) -> UUID: ...
    @property
    def version(self) -> int: ...
    @property
    def points(self) -> int: ...
    @property
    def credits(self) -> Decimal: ...
    def used(self, promotion_id: UUID, period: str) -> tuple[int, int]: ...


@dataclass(frozen=True, slots=True)
class PromotionInForce:
    """A promotion's version in force, with what every derivation reads of it besides its
    terms worked out when it is made (a program snapshot makes it once, not per movement)."""

    id: UUID
    code: str
    version: PromotionVersion
    ref: VersionRef = field(init=False, repr=False, compare=False)
    rank: tuple[int, str] = field(init=False, repr=False, compare=False)
    """Its place in the walk: by priority (higher first), then by code."""
    timed: bool = field(init=False, repr=False, compare=False)
    """Whether its WHEN names dates, weekdays or hours (else it holds at any time)."""

    def __post_init__(self) -> None:
        terms = self.version.terms
        ref = VersionRef(id=self.id, code=self.code, version=self.version.number)
        object.__setattr__(self, "ref", ref)
        object.__setattr__(self, "rank", (-terms.priority, self.code))
        object.__setattr__(self, "timed", terms.when != ALWAYS)


@dataclass(frozen=True, slots=True)
class ClusterInForce:
    id: UUID
    code: str
    version: ClusterVersion
    ref: VersionRef = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ref = VersionRef(id=self.id, code=self.code, version=self.version.number)
        object.__setattr__(self, "ref", ref)


@dataclass(frozen=True, slots=True)
class OriginalMovement:
    """The movement a return (or cancellation) gives back, as recorded, where it was
    recorded (its idempotency ``source``), and what of it was given back before."""

    source: str
    movement: Movement
    derivation: Derivation
    account_version: int
    returned_before: tuple[Decimal, ...]


@dataclass(frozen=True, slots=True)
class Context:
    campaign: CampaignView
    account: AccountState
    promotions: Sequence[PromotionInForce] = ()
    clusters: Mapping[str, ClusterInForce] = field(default_factory=dict)
    facts: CustomerFacts = ANONYMOUS
    budgets: Mapping[UUID, tuple[int, int]] = field(default_factory=dict)
    original: OriginalMovement | None = None
    memberships: frozenset[str] | None = None
    """The clusters the customer was found in, when their facts can no longer be read (an
    audit replay of an erased customer's movements): taken as given, not evaluated."""


def derive(movement: Movement, context: Context) -> Derivation:
    """The transactions ``movement`` earns or spends in ``context``, with their evidence."""
    timezone = movement.location.timezone if movement.location else "UTC"
    local = local_time(movement.occurred_at, timezone)
    match movement.type:
        case MovementType.RETURN:
            derivation = derive_return(movement, context)
        case MovementType.ADJUSTMENT:
            derivation = derive_adjustment(movement, context)
        case MovementType.REDEMPTION_CANCELLATION:
            derivation = derive_cancellation(movement, context)
        case _:
            derivation = derive_with_promotions(movement, context, local)
    return msgspec.structs.replace(
        derivation,
        local_date=local.date(),
        input_digest=input_digest(movement, context),
        receipt_messages=(
            *derivation.receipt_messages,
            *balance_messages(
                context.account.points,
                derivation.points_delta,
                given_back=movement.type is MovementType.REDEMPTION_CANCELLATION,
            ),
        ),
    )


def derive_with_promotions(movement: Movement, context: Context, local: datetime) -> Derivation:
    walk = PromotionWalk(movement, context, local)
    spent: list[Transaction] = []
    if movement.type is MovementType.PRIZE_REDEMPTION:
        spent.append(points_spent(movement, context.account.points))
    for promotion in in_force(context.promotions).in_walk_order:
        if walk.offer(promotion) and promotion.version.terms.exclusive:
            break
    transactions = (*spent, *walk.transactions)
    return Derivation(
        transactions=transactions,
        fired=tuple(walk.fired),
        clusters=tuple(walk.clusters),
        points_delta=sum(int(t.amount) for t in spent) + walk.points,
        credits_delta=walk.credits,
        usage=tuple(walk.usage),
        budgets=tuple(walk.budgets),
        receipt_messages=tuple(walk.messages),
    )


_digest_encoder = msgspec.json.Encoder(order="deterministic")
"""Encodes the inputs of a derivation for its digest."""

by_rank = attrgetter("rank")
"""Orders the promotions for the walk (step 1 of the module doc)."""
by_code = attrgetter("code")
"""Orders the promotions and clusters of the digest (a stable sort: as their references)."""


class PromotionsInForce(tuple[PromotionInForce, ...]):
    """Promotions in force together, with the two orders every derivation reads them in
    (the walk's, the digest's) sorted once: a program snapshot makes one per span of time
    between two versions taking effect, which tens of thousands of movements then read."""

    in_walk_order: tuple[PromotionInForce, ...]
    with_budget: tuple[PromotionInForce, ...]
    """Those capped by a budget (whose consumption the context reads)."""
    refs_by_code: msgspec.Raw
    """Their references in the digest's order, encoded as the digest encodes them."""

    def __new__(cls, promotions: Iterable[PromotionInForce]) -> PromotionsInForce:
        made = super().__new__(cls, promotions)
        made.in_walk_order = tuple(sorted(made, key=by_rank))
        made.with_budget = tuple([p for p in made if p.version.terms.has_budget])
        refs = tuple([p.ref for p in sorted(made, key=by_code)])
        made.refs_by_code = msgspec.Raw(_digest_encoder.encode(refs))
        return made


def in_force(promotions: Sequence[PromotionInForce]) -> PromotionsInForce:
    """``promotions`` with their two orders: as a program snapshot made them, or sorted now
    (a context built with a plain sequence)."""
    if isinstance(promotions, PromotionsInForce):
        return promotions
    return PromotionsInForce(promotions)


def points_spent(movement: Movement, balance: int) -> Transaction:
    points = int(movement.amount)
    if points > balance:
        raise InsufficientPoints(
            f"the prize costs {points} points but the balance is {balance}",
            points=balance,
            needed=points,
        )
    weights = [line.amount for line in movement.lines]
    return Transaction(
        kind=TransactionKind.POINTS,
        amount=Decimal(-points),
        currency=POINTS,
        allocation=tuple(Decimal(-part) for part in allocate(points, weights)),
    )


@dataclass(slots=True)
class LineWeights:
    """What a benefit over some of the movement's lines splits by: the eligible lines'
    amounts (zero for the others) in whole units, and the sum of those amounts.

    The units are those of every line's amount (see :func:`every_line_weights`): a
    multiple of the eligible lines' own common unit, which splits any total alike."""

    units: list[int]
    spend: Decimal


def every_line_weights(lines: Sequence[Line]) -> LineWeights:
    """Every line's amount in whole units of one common unit, converted once per movement:
    the benefits over some lines take these, zero for the other lines."""
    amounts = [line.amount for line in lines]
    return LineWeights(units=whole_units(amounts), spend=sum(amounts, Decimal(0)))


class PromotionWalk:
    """Offers each promotion in turn and keeps what fired (steps 2 to 5 of the module doc)."""

    def __init__(self, movement: Movement, context: Context, local: datetime) -> None:
        self.movement = movement
        self.context = context
        self.local = local
        self.day = local.date()
        self.path = set(movement.location.path) if movement.location else set()
        self.transactions: list[Transaction] = []
        self.fired: list[VersionRef] = []
        self.clusters: list[VersionRef] = []
        self.usage: list[UsageDelta] = []
        self.budgets: list[UsageDelta] = []
        self.messages: list[str] = []
        self.base_points: list[Transaction] = []
        self.discount_left = movement.amount
        self.points = 0
        """The points of :attr:`transactions`, counted as they are recorded (each is a whole
        number, so adding them as ints gives what adding their amounts would)."""
        self.credits = Decimal(0)
        """The credits of :attr:`transactions`, added up in their order."""
        self.weighed: dict[tuple[tuple[str, ...], tuple[str, ...]], LineWeights] = {}
        self.every_line = every_line_weights(movement.lines)

    def offer(self, promotion: PromotionInForce) -> bool:
        """Applies ``promotion`` if it is eligible and something survives its caps."""
        if not self.is_eligible(promotion):
            return False
        uses_left, points_left = self.caps_left(promotion)
        if not uses_left:
            return False
        flagged: list[tuple[bool, Transaction]] = []
        for benefit in promotion.version.terms.benefits:
            transaction = self.benefit(benefit, promotion)
            if transaction is not None:
                flagged.append((isinstance(benefit, Multiplier), transaction))
        if not flagged:
            return False
        if points_left is not None:
            capped = cap_points([t for _, t in flagged], points_left)
            flagged = [(multiplier, t) for (multiplier, _), t in zip(flagged, capped, strict=True)]
        kept = [(multiplier, t) for multiplier, t in flagged if t.amount]
        if not kept:
            return False
        self.record(promotion, kept)
        return True

    def is_eligible(self, promotion: PromotionInForce) -> bool:
        terms = promotion.version.terms
        if not terms.active or self.movement.type not in terms.where.movement_types:
            return False
        if terms.where.nodes and self.path.isdisjoint(terms.where.nodes):
            return False
        if promotion.timed and not is_within(terms.when, self.local):
            return False
        if terms.min_spend is not None and self.movement.amount < terms.min_spend:
            return False
        if terms.cluster is None:
            return True
        return self.is_member(terms.cluster)

    def is_member(self, cluster_code: str) -> bool:
        cluster = self.context.clusters.get(cluster_code)
        if cluster is None:
            return False
        if self.context.memberships is not None:
            member = cluster_code in self.context.memberships
            if member and cluster.ref not in self.clusters:
                self.clusters.append(cluster.ref)
            return member
        member = matches(
            cluster.version.terms.criteria,
            self.context.facts,
            self.context.account,
            self.day,
        )
        if member and cluster.ref not in self.clusters:
            self.clusters.append(cluster.ref)
        return member

    def caps_left(self, promotion: PromotionInForce) -> tuple[bool, int | None]:
        """Whether a use is left, and how many points at most (None: no limit)."""
        caps = promotion.version.terms.caps
        limits: list[int] = []
        if caps.per_movement_points is not None:
            limits.append(caps.per_movement_points)
        if caps.per_customer is not None:
            cap = caps.per_customer
            used_points, used_uses = self.context.account.used(promotion.id, self.period(promotion))
            if cap.uses is not None and used_uses >= cap.uses:
                return False, 0
            if cap.points is not None:
                limits.append(max(cap.points - used_points, 0))
        if caps.budget is not None:
            used_points, used_uses = self.context.budgets.get(promotion.id, (0, 0))
            if caps.budget.uses is not None and used_uses >= caps.budget.uses:
                return False, 0
            if caps.budget.points is not None:
                limits.append(max(caps.budget.points - used_points, 0))
        return True, min(limits) if limits else None

    def period(self, promotion: PromotionInForce) -> str:
        cap = promotion.version.terms.caps.per_customer
        assert cap is not None
        return period_key(cap.period, self.day)

    def weights(self, skus: tuple[str, ...] = (), departments: tuple[str, ...] = ()) -> LineWeights:
        """The lines as a benefit over ``skus`` and ``departments`` weighs them (none: all
        lines), worked out once per movement however many benefits ask."""
        if not skus and not departments:
            return self.every_line
        key = (skus, departments)
        found = self.weighed.get(key)
        if found is None:
            found = self.some_lines(skus, departments)
            self.weighed[key] = found
        return found

    def some_lines(self, skus: tuple[str, ...], departments: tuple[str, ...]) -> LineWeights:
        """The weights of the lines of ``skus`` or ``departments``: every line's units, zero
        for the other lines (a line's units are zero exactly when its amount is)."""
        every = self.every_line.units
        units = [0] * len(every)
        spend = Decimal(0)
        for index, line in enumerate(self.movement.lines):
            if line.sku in skus or line.department in departments:
                units[index] = every[index]
                spend += line.amount
        return LineWeights(units=units, spend=spend)

    def benefit(self, benefit: Benefit, promotion: PromotionInForce) -> Transaction | None:
        """What ``benefit`` gives, by the method of its kind (looked up by type: a ``match``
        over class patterns tried the kinds one by one on every benefit of every movement).

        ``None`` when it gives nothing: a transaction of zero would not be kept (see
        :meth:`offer`), so none is split over the lines and made."""
        return BENEFITS[type(benefit)](self, benefit, promotion)

    def fixed_points(self, benefit: FixedPoints, promotion: PromotionInForce) -> Transaction:
        points = benefit.points
        return points_tx(points, allocate_units(points, self.every_line.units), promotion)

    def points_per_amount(
        self, benefit: PointsPerAmount, promotion: PromotionInForce
    ) -> Transaction | None:
        weights = self.weights(benefit.skus, benefit.departments)
        spend = weights.spend if self.movement.lines else self.movement.amount
        if not spend:
            return None
        rounding = ROUNDINGS[benefit.rounding]
        earned = int((spend / benefit.per * benefit.points).to_integral_value(rounding))
        if not earned:
            return None
        return points_tx(earned, allocate_units(earned, weights.units), promotion)

    def points_per_unit(
        self, benefit: PointsPerUnit, promotion: PromotionInForce
    ) -> Transaction | None:
        lines, points = self.movement.lines, benefit.points
        parts = eligible_units(lines, benefit.skus, benefit.departments, points)
        earned = sum(parts)
        return points_tx(earned, parts, promotion) if earned else None

    def fixed_credits(
        self, benefit: FixedCredits, promotion: PromotionInForce
    ) -> Transaction | None:
        if not self.context.campaign.terms.credits:
            return None
        units = self.every_line.units
        return money_tx(TransactionKind.CREDITS, benefit.amount, CREDITS, units, promotion)

    def percent_credits(
        self, benefit: PercentCredits, promotion: PromotionInForce
    ) -> Transaction | None:
        if not self.context.campaign.terms.credits:
            return None
        weights = self.weights(benefit.skus, benefit.departments)
        if not weights.spend:
            return None
        amount = percent_of(weights.spend, benefit.percent)
        if not amount:
            return None
        return money_tx(TransactionKind.CREDITS, amount, CREDITS, weights.units, promotion)

    def percent_discount(
        self, benefit: PercentDiscount, promotion: PromotionInForce
    ) -> Transaction | None:
        weights = self.weights(benefit.skus, benefit.departments)
        if not weights.spend:
            return None
        amount = self.discount(percent_of(weights.spend, benefit.percent))
        if not amount:
            return None
        units, currency = weights.units, self.movement.currency
        return money_tx(TransactionKind.DISCOUNT, amount, currency, units, promotion)

    def fixed_discount(
        self, benefit: FixedDiscount, promotion: PromotionInForce
    ) -> Transaction | None:
        amount = self.discount(benefit.amount)
        if not amount:
            return None
        currency, units = self.movement.currency, self.every_line.units
        return money_tx(TransactionKind.DISCOUNT, amount, currency, units, promotion)

    def prize(self, benefit: PrizeAward, promotion: PromotionInForce) -> Transaction:
        return Transaction(
            kind=TransactionKind.PRIZE,
            amount=Decimal(benefit.quantity),
            currency=benefit.prize,
            promotion=promotion.code,
            promotion_version=promotion.version.number,
        )

    def discount(self, wanted: Decimal) -> Decimal:
        """``wanted`` cut to what earlier discounts left of the movement amount."""
        granted = max(min(wanted, self.discount_left), Decimal(0))
        self.discount_left -= granted
        return granted

    def multiplier(self, benefit: Multiplier, promotion: PromotionInForce) -> Transaction | None:
        base = sum(int(t.amount) for t in self.base_points)
        extra = int((base * (benefit.factor - 1)).to_integral_value(ROUND_FLOOR))
        if not extra:
            return None
        per_line = [
            sum((t.allocation[i] for t in self.base_points if t.allocation), Decimal(0))
            for i in range(len(self.movement.lines))
        ]
        return points_tx(extra, allocate(extra, per_line), promotion)

    def record(self, promotion: PromotionInForce, kept: list[tuple[bool, Transaction]]) -> None:
        terms = promotion.version.terms
        points = 0
        for multiplier, transaction in kept:
            self.transactions.append(transaction)
            if transaction.kind is TransactionKind.POINTS:
                points += int(transaction.amount)
                if not multiplier:
                    self.base_points.append(transaction)
            elif transaction.kind is TransactionKind.CREDITS:
                self.credits += transaction.amount
        self.points += points
        self.fired.append(promotion.ref)
        if terms.caps.per_customer is not None:
            self.usage.append(
                UsageDelta(
                    promotion_id=promotion.id, period=self.period(promotion), points=points, uses=1
                )
            )
        if terms.caps.budget is not None:
            self.budgets.append(
                UsageDelta(promotion_id=promotion.id, period=BUDGET_PERIOD, points=points, uses=1)
            )
        if terms.receipt_message:
            self.messages.append(terms.receipt_message)


BenefitRule = Callable[[PromotionWalk, Any, PromotionInForce], Transaction | None]
"""A :class:`PromotionWalk` method giving what one kind of benefit gives."""
BENEFITS: dict[type, BenefitRule] = {
    FixedPoints: PromotionWalk.fixed_points,
    PointsPerAmount: PromotionWalk.points_per_amount,
    PointsPerUnit: PromotionWalk.points_per_unit,
    Multiplier: PromotionWalk.multiplier,
    FixedCredits: PromotionWalk.fixed_credits,
    PercentCredits: PromotionWalk.percent_credits,
    PercentDiscount: PromotionWalk.percent_discount,
    FixedDiscount: PromotionWalk.fixed_discount,
    PrizeAward: PromotionWalk.prize,
}


def points_tx(points: int, allocation: Sequence[int], promotion: PromotionInForce) -> Transaction:
    """The ``points`` ``promotion`` earns, split over the lines as ``allocation`` says."""
    return Transaction(
        kind=TransactionKind.POINTS,
        amount=Decimal(points),
        currency=POINTS,
        allocation=tuple(map(Decimal, allocation)),
        promotion=promotion.code,
        promotion_version=promotion.version.number,
    )


def money_tx(
    kind: TransactionKind,
    amount: Decimal,
    currency: str,
    units: Sequence[int],
    promotion: PromotionInForce,
) -> Transaction:
    """The ``amount`` ``promotion`` gives, split to the cent over the lines by their weights
    in whole ``units`` (see :meth:`PromotionWalk.weights`)."""
    cents = int(amount / CENT)
    return Transaction(
        kind=kind,
        amount=amount,
        currency=currency,
        allocation=tuple([Decimal(part) * CENT for part in allocate_units(cents, units)]),
        promotion=promotion.code,
        promotion_version=promotion.version.number,
    )


def eligible_units(
    lines: Sequence[Line], skus: Sequence[str], departments: Sequence[str], points: int
) -> list[int]:
    """``points`` for every whole unit of each line of ``skus`` or ``departments`` (with
    neither, of every line); 0 for the other lines."""
    if not skus and not departments:
        return [floor(line.quantity) * points for line in lines]
    return [
        floor(line.quantity) * points if line.sku in skus or line.department in departments else 0
        for line in lines
    ]


def percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    return (amount * percent / 100).quantize(CENT, ROUND_HALF_UP)


def cap_points(transactions: list[Transaction], limit: int) -> list[Transaction]:
    """Cuts the points transactions, last first, so that together they stay within ``limit``."""
    total = total_units(transactions, TransactionKind.POINTS)
    if total <= limit:
        return transactions
    excess = total - limit
    capped = list(transactions)
    for index in reversed(range(len(capped))):
        transaction = capped[index]
        if excess <= 0 or transaction.kind is not TransactionKind.POINTS:
            continue
        points = int(transaction.amount)
        cut = min(points, excess)
        excess -= cut
        capped[index] = msgspec.structs.replace(
            transaction,
            amount=Decimal(points - cut),
            allocation=tuple(
                Decimal(p) for p in allocate(points - cut, list(transaction.allocation))
            ),
        )
    return capped


def total_units(transactions: Sequence[Transaction], kind: TransactionKind) -> int:
    return int(sum((t.amount for t in transactions if t.kind is kind), Decimal(0)))


def total_amount(transactions: Sequence[Transaction], kind: TransactionKind) -> Decimal:
    return sum((t.amount for t in transactions if t.kind is kind), Decimal(0))


def derive_adjustment(movement: Movement, context: Context) -> Derivation:
    """An operator's correction: exactly the points and credits given, never below zero."""
    account = context.account
    if account.points + movement.points < 0 or account.credits + movement.credits < 0:
        raise InsufficientPoints(
            f"the balance is {account.points} points and {account.credits} credits",
            points=account.points,
        )
    transactions = []
    if movement.points:
        transactions.append(
            Transaction(
                kind=TransactionKind.POINTS, amount=Decimal(movement.points), currency=POINTS
            )
        )
    if movement.credits:
        transactions.append(
            Transaction(kind=TransactionKind.CREDITS, amount=movement.credits, currency=CREDITS)
        )
    return Derivation(
        transactions=tuple(transactions),
        points_delta=movement.points,
        credits_delta=movement.credits,
    )


def derive_return(movement: Movement, context: Context) -> Derivation:
    original = context.original
    if original is None:
        raise InvalidMovement("a return needs the movement it returns")
    if original.movement.type is not MovementType.PURCHASE:
        raise InvalidMovement("only a purchase can be returned", field="original_movement_id")
    returned_after = returned_quantities(movement.lines, original)
    reversals = [
        reversal(transaction, original, returned_after)
        for transaction in original.derivation.transactions
        if transaction.kind in (TransactionKind.POINTS, TransactionKind.CREDITS)
        and transaction.allocation
    ]
    reversals, unrecovered_points, unrecovered_credits = bounded_by_balance(
        [t for t in reversals if t.amount], context.account
    )
    location = original.movement.location
    assert location is not None
    messages = []
    if unrecovered_points:
        messages.append(f"Points already spent, not taken back: {unrecovered_points}")
    if unrecovered_credits:
        messages.append(f"Credits already spent, not taken back: {unrecovered_credits}")
    return Derivation(
        transactions=tuple(reversals),
        points_delta=total_units(reversals, TransactionKind.POINTS),
        credits_delta=total_amount(reversals, TransactionKind.CREDITS),
        return_of=ReturnOf(
            terminal=location.terminal,
            movement_id=original.movement.movement_id,
            account_version=original.account_version,
            returned=returned_after,
        ),
        unrecovered_points=unrecovered_points,
        receipt_messages=tuple(messages),
    )


def derive_cancellation(movement: Movement, context: Context) -> Derivation:
    """Gives back, in full, the points and credits a prize redemption moved."""
    original = context.original
    if original is None or original.movement.type is not MovementType.PRIZE_REDEMPTION:
        raise InvalidMovement(
            "only a prize redemption can be cancelled", field="original_movement_id"
        )
    if original.returned_before:
        raise AlreadyCancelled(
            f"redemption {original.movement.movement_id!r} is already cancelled",
            movement_id=original.movement.movement_id,
        )
    reversals = [
        msgspec.structs.replace(t, amount=-t.amount, allocation=())
        for t in original.derivation.transactions
        if t.kind in (TransactionKind.POINTS, TransactionKind.CREDITS) and t.amount
    ]
    reversals, unrecovered_points, _ = bounded_by_balance(reversals, context.account)
    return Derivation(
        transactions=tuple(reversals),
        points_delta=total_units(reversals, TransactionKind.POINTS),
        credits_delta=total_amount(reversals, TransactionKind.CREDITS),
        return_of=ReturnOf(
            terminal=original.source,
            movement_id=original.movement.movement_id,
            account_version=original.account_version,
            returned=tuple(line.quantity for line in original.movement.lines) or (Decimal(1),),
        ),
        unrecovered_points=unrecovered_points,
    )


def returned_quantities(lines: Sequence[Line], original: OriginalMovement) -> tuple[Decimal, ...]:
    """Matches returned lines to the original's by sku, in order; the cumulative result."""
    bought = original.movement.lines
    returned = list(original.returned_before) or [Decimal(0)] * len(bought)
    for line in lines:
        wanted = line.quantity
        for index, candidate in enumerate(bought):
            if wanted <= 0:
                break
            if candidate.sku != line.sku:
                continue
            take = min(wanted, candidate.quantity - returned[index])
            if take > 0:
                returned[index] += take
                wanted -= take
        if wanted > 0:
            raise ReturnExceedsOriginal(
                f"returning more of {line.sku!r} than the original movement still holds",
                sku=line.sku,
            )
    return tuple(returned)


def reversal(
    transaction: Transaction, original: OriginalMovement, returned_after: tuple[Decimal, ...]
) -> Transaction:
    unit = Decimal(1) if transaction.kind is TransactionKind.POINTS else CENT
    before = original.returned_before or (Decimal(0),) * len(returned_after)
    parts = [
        reversed_share(int(allocated / unit), line.quantity, returned_before, returned)
        for allocated, line, returned_before, returned in zip(
            transaction.allocation, original.movement.lines, before, returned_after, strict=True
        )
    ]
    return msgspec.structs.replace(transaction, amount=-Decimal(sum(parts)) * unit, allocation=())


def bounded_by_balance(
    reversals: list[Transaction], account: AccountState
) -> tuple[list[Transaction], int, Decimal]:
    """Reversals cut, last first, so that neither balance goes below zero."""
    points_short = -total_units(reversals, TransactionKind.POINTS) - account.points
    credits_short = -total_amount(reversals, TransactionKind.CREDITS) - account.credits
    points_short, credits_short = max(points_short, 0), max(credits_short, Decimal(0))
    bounded = list(reversals)
    shortfall = {
        TransactionKind.POINTS: Decimal(points_short),
        TransactionKind.CREDITS: credits_short,
    }
    for index in reversed(range(len(bounded))):
        transaction = bounded[index]
        short = shortfall[transaction.kind]
        if short <= 0:
            continue
        kept = min(-transaction.amount, short)
        shortfall[transaction.kind] -= kept
        bounded[index] = msgspec.structs.replace(transaction, amount=transaction.amount + kept)
    return [t for t in bounded if t.amount], points_short, credits_short


def balance_messages(points_before: int, points_delta: int, given_back: bool = False) -> list[str]:
    """The receipt's lines on points (in English; the API renders them in the customer's
    language from the message catalog)."""
    messages = []
    if points_delta > 0:
        messages.append(f"Points {'returned' if given_back else 'earned'}: {points_delta}")
    elif points_delta < 0:
        messages.append(f"Points used: {-points_delta}")
    messages.append(f"Points balance: {points_before + points_delta}")
    return messages


class DigestInput(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    movement: Movement
    campaign: UUID
    promotions: msgspec.Raw
    """``tuple[VersionRef, ...]`` in code order, encoded once for every movement of a
    span of time that reads them (see :class:`PromotionsInForce`)."""
    clusters: tuple[VersionRef, ...]
    account: UUID
    account_version: int
    points: int
    credits: Decimal
    facts: CustomerFacts
    budgets: tuple[tuple[UUID, int, int], ...]
    original: tuple[int, tuple[Decimal, ...]] | None


def input_digest(movement: Movement, context: Context) -> str:
    """SHA-256 of everything :func:`derive` read: a replay must find the same value."""
    original = context.original
    facts = DigestInput(
        movement=movement,
        campaign=context.campaign.id,
        promotions=in_force(context.promotions).refs_by_code,
        clusters=tuple([c.ref for c in sorted(context.clusters.values(), key=by_code)]),
        account=context.account.id,
        account_version=context.account.version,
        points=context.account.points,
        credits=context.account.credits,
        facts=context.facts,
        budgets=tuple(sorted([(k, *v) for k, v in context.budgets.items()])),
        original=(original.account_version, original.returned_before) if original else None,
    )
    return hashlib.sha256(_digest_encoder.encode(facts)).hexdigest()
