"""Property-based specification of the rule engine (no I/O): determinism, full returns net
zero, caps hold, balances never go negative."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.campaign import CampaignTerms, CampaignView
from loyalty.domain.errors import InsufficientPoints
from loyalty.domain.movement import Line, Location, Movement, MovementType, TransactionKind
from loyalty.domain.promotion import (
    BudgetCap,
    Caps,
    FixedCredits,
    FixedDiscount,
    FixedPoints,
    Multiplier,
    PercentCredits,
    PercentDiscount,
    Period,
    PeriodCap,
    PointsPerAmount,
    PointsPerUnit,
    PromotionTerms,
    PromotionVersion,
    Rounding,
)
from loyalty.rules.allocation import allocate
from loyalty.rules.engine import (
    Context,
    OriginalMovement,
    PromotionInForce,
    PromotionsInForce,
    derive,
)

AT = datetime(2026, 6, 3, 10, tzinfo=UTC)
LOCATION = Location(
    terminal_id=ids.node_id("t1"),
    store_id=ids.node_id("s1"),
    path=("chain", "s1", "t1"),
    timezone="Europe/Rome",
)
CAMPAIGN = CampaignView(
    id=ids.campaign_id("club"),
    code="club",
    terms=CampaignTerms(name="Club", nodes=("chain",), starts_on=date(2026, 1, 1), credits=True),
)

money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)
quantities = st.one_of(
    st.integers(1, 6).map(Decimal), st.decimals(Decimal("0.1"), Decimal("5"), places=3)
)
lines = st.lists(
    st.builds(
        lambda sku, dept, qty, amount: Line(
            sku=sku, department=dept, quantity=qty, unit_price=amount, amount=amount
        ),
        st.sampled_from(["A", "B", "C"]),
        st.sampled_from(["fresh", "grocery"]),
        quantities,
        money,
    ),
    min_size=1,
    max_size=4,
)
benefits = st.one_of(
    st.builds(FixedPoints, points=st.integers(1, 200)),
    st.builds(
        PointsPerAmount,
        points=st.integers(1, 5),
        per=st.sampled_from([Decimal(1), Decimal("2.50")]),
        rounding=st.sampled_from(list(Rounding)),
    ),
    st.builds(PointsPerUnit, points=st.integers(1, 10), departments=st.just(("fresh",))),
    st.builds(Multiplier, factor=st.sampled_from([Decimal(2), Decimal("1.5")])),
    st.builds(FixedCredits, amount=st.sampled_from([Decimal("1.00"), Decimal("0.50")])),
    st.builds(PercentCredits, percent=st.sampled_from([Decimal(1), Decimal("2.5")])),
    st.builds(FixedDiscount, amount=st.sampled_from([Decimal("5.00"), Decimal("0.99")])),
    st.builds(PercentDiscount, percent=st.sampled_from([Decimal(10), Decimal(60)])),
)
caps = st.builds(
    Caps,
    per_movement_points=st.none() | st.integers(1, 300),
    per_customer=st.none()
    | st.builds(
        PeriodCap,
        period=st.sampled_from(list(Period)),
        points=st.none() | st.integers(1, 500),
        uses=st.none() | st.integers(1, 3),
    ),
    budget=st.none()
    | st.builds(
        BudgetCap, points=st.none() | st.integers(1, 800), uses=st.none() | st.integers(1, 5)
    ),
)
promotion_lists = st.lists(
    st.builds(
        lambda benefit, priority, exclusive, cap: PromotionTerms(
            name="p", benefits=(benefit,), priority=priority, exclusive=exclusive, caps=cap
        ),
        benefits,
        st.integers(-5, 5),
        st.booleans(),
        caps,
    ),
    min_size=1,
    max_size=4,
).map(
    lambda terms: [
        PromotionInForce(
            id=ids.promotion_id(f"p{i}"),
            code=f"p{i}",
            version=PromotionVersion(number=1, effective_from=AT - timedelta(days=30), terms=t),
        )
        for i, t in enumerate(terms)
    ]
)


def new_account() -> Account:
    return Account(campaign_id=CAMPAIGN.id, customer_id=ids.customer_id_for_card("C1"))


def purchase(movement_id: str, items: list[Line], at: datetime = AT) -> Movement:
    return Movement(
        movement_id=movement_id,
        type=MovementType.PURCHASE,
        card="C1",
        occurred_at=at,
        amount=sum((i.amount for i in items), Decimal(0)),
        currency="EUR",
        lines=tuple(items),
        location=LOCATION,
    )


def returning(movement_id: str, original: Movement, quantities: list[Decimal]) -> Movement:
    items = tuple(
        msgspec.structs.replace(
            line, quantity=q, amount=(line.amount * q / line.quantity).quantize(Decimal("0.01"))
        )
        for line, q in zip(original.lines, quantities, strict=True)
        if q > 0
    )
    return Movement(
        movement_id=movement_id,
        type=MovementType.RETURN,
        card="C1",
        occurred_at=AT + timedelta(hours=1),
        amount=sum((i.amount for i in items), Decimal(0)),
        currency="EUR",
        lines=items,
        location=LOCATION,
        original_movement_id=original.movement_id,
    )


def context(account: Account, promotions: list[PromotionInForce], **extra: object) -> Context:
    return Context(campaign=CAMPAIGN, account=account, promotions=promotions, **extra)  # type: ignore[arg-type]


@given(lines, promotion_lists)
def test_the_same_inputs_give_the_same_derivation_byte_for_byte(
    items: list[Line], promotions: list[PromotionInForce]
) -> None:
    movement = purchase("r1", items)

    first = derive(movement, context(new_account(), promotions))
    second = derive(movement, context(new_account(), list(reversed(promotions))))

    assert msgspec.json.encode(first) == msgspec.json.encode(second)


@given(lines, promotion_lists)
def test_promotions_sorted_once_in_force_derive_as_the_same_promotions_in_any_order(
    items: list[Line], promotions: list[PromotionInForce]
) -> None:
    movement = purchase("r1", items)

    sorted_once = derive(movement, context(new_account(), PromotionsInForce(promotions)))
    as_given = derive(movement, context(new_account(), list(reversed(promotions))))

    assert msgspec.json.encode(sorted_once) == msgspec.json.encode(as_given)


@settings(max_examples=150)
@given(lines, promotion_lists, st.data())
def test_a_purchase_returned_in_full_nets_zero_points_and_credits(
    items: list[Line], promotions: list[PromotionInForce], data: st.DataObject
) -> None:
    account = new_account()
    bought = purchase("r1", items)
    account.record(bought, derive(bought, context(account, promotions)))
    version = account.version
    recorded = account.pending_events[-1]
    remaining = [line.quantity for line in items]
    step = 0
    while any(remaining):
        take = [
            data.draw(st.sampled_from([Decimal(0), r, (r / 2).quantize(Decimal("0.001"))]))
            if r
            else Decimal(0)
            for r in remaining
        ]
        if not any(take):
            take = remaining
        step += 1
        giving_back = returning(f"x{step}", bought, take)
        original = OriginalMovement(
            source="t1",
            movement=bought,
            derivation=recorded.derivation,
            account_version=version,  # type: ignore[attr-defined]
            returned_before=account.returned.get(("t1", "r1"), ()),
        )
        account.record(
            giving_back, derive(giving_back, context(account, promotions, original=original))
        )
        remaining = [r - t for r, t in zip(remaining, take, strict=True)]

    assert (account.points, account.credits) == (0, Decimal(0))


@settings(max_examples=150)
@given(st.lists(lines, min_size=1, max_size=8), promotion_lists)
def test_caps_are_never_exceeded(
    baskets: list[list[Line]], promotions: list[PromotionInForce]
) -> None:
    account = new_account()
    budgets: dict[object, tuple[int, int]] = {}
    for index, items in enumerate(baskets):
        movement = purchase(f"r{index}", items, AT + timedelta(hours=index))
        derivation = derive(movement, context(account, promotions, budgets=budgets))
        for promotion in promotions:
            given_points = sum(
                int(t.amount)
                for t in derivation.transactions
                if t.promotion == promotion.code and t.kind == "points"
            )
            cap = promotion.version.terms.caps.per_movement_points
            assert cap is None or given_points <= cap
        account.record(movement, derivation)
        for usage in derivation.budgets:
            points, uses = budgets.get(usage.promotion_id, (0, 0))
            budgets[usage.promotion_id] = (points + usage.points, uses + usage.uses)
    for promotion in promotions:
        caps_ = promotion.version.terms.caps
        if caps_.budget:
            points, uses = budgets.get(promotion.id, (0, 0))
            assert caps_.budget.points is None or points <= caps_.budget.points
            assert caps_.budget.uses is None or uses <= caps_.budget.uses
        if caps_.per_customer:
            for (promotion_id, _), (points, uses) in account.usage.items():
                if promotion_id == promotion.id:
                    assert caps_.per_customer.points is None or points <= caps_.per_customer.points
                    assert caps_.per_customer.uses is None or uses <= caps_.per_customer.uses


operations = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), lines),
        st.tuples(st.just("redeem"), st.integers(1, 400)),
        st.tuples(st.just("adjust"), st.integers(-300, 300)),
    ),
    max_size=12,
)


@settings(max_examples=150)
@given(operations, promotion_lists)
def test_the_balance_never_goes_negative(
    steps: list[tuple[str, object]], promotions: list[PromotionInForce]
) -> None:
    account = new_account()
    for index, (kind, value) in enumerate(steps):
        at = AT + timedelta(minutes=index)
        if kind == "buy":
            movement = purchase(f"m{index}", value)  # type: ignore[arg-type]
        else:
            movement = Movement(
                movement_id=f"m{index}",
                type=MovementType.PRIZE_REDEMPTION if kind == "redeem" else MovementType.ADJUSTMENT,
                card="C1",
                occurred_at=at,
                amount=Decimal(value) if kind == "redeem" else Decimal(0),  # type: ignore[arg-type]
                currency="PTS",
                location=LOCATION,
                points=value if kind == "adjust" else 0,  # type: ignore[arg-type]
            )
        before = (account.points, account.version)
        try:
            account.record(movement, derive(movement, context(account, promotions)))
        except InsufficientPoints:
            assert (account.points, account.version) == before
        assert account.points >= 0 and account.credits >= 0


@given(lines, promotion_lists)
def test_discounts_never_exceed_the_movement_amount(
    items: list[Line], promotions: list[PromotionInForce]
) -> None:
    movement = purchase("r1", items)

    derivation = derive(movement, context(new_account(), promotions))

    discounts = [t.amount for t in derivation.transactions if t.kind is TransactionKind.DISCOUNT]
    assert all(d > 0 for d in discounts)
    assert sum(discounts, Decimal(0)) <= movement.amount


@given(
    st.integers(0, 10_000), st.lists(st.decimals(Decimal(0), Decimal(1000), places=2), max_size=8)
)
def test_allocations_are_whole_non_negative_and_sum_to_the_total(
    total: int, weights: list[Decimal]
) -> None:
    parts = allocate(total, weights)

    assert len(parts) == len(weights)
    assert all(p >= 0 for p in parts)
    assert sum(parts) == (total if weights else 0)
