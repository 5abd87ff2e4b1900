"""RFM scoring: hand-checked scores, the validation of rules, and properties of any run."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from random import Random

import hypothesis.strategies as st
import msgspec
import polars as pl
import pytest
from hypothesis import given, settings
from polars.testing import assert_frame_equal

from loyalty.domain.errors import InvalidRfmParameters
from loyalty.domain.segmentation import (
    DEFAULT_RULES,
    RfmParameters,
    ScoreRange,
    SegmentRule,
    Thresholds,
    check_parameters,
)
from loyalty.projections.rfm import migration_matrix, scores, segment_changes, segment_sizes

AS_OF = date(2024, 6, 30)
PROPERTIES = settings(max_examples=40, deadline=None)


def customer(customer_id: str, days_ago: int, purchases: int, spend: str) -> dict[str, object]:
    return {
        "customer_id": customer_id,
        "last_purchase_on": AS_OF - timedelta(days=days_ago),
        "purchases": purchases,
        "spend": Decimal(spend),
    }


def frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "customer_id": pl.String,
            "last_purchase_on": pl.Date,
            "purchases": pl.Int64,
            "spend": pl.Decimal(18, 2),
        },
    )


def score_range(low: int, high: int) -> ScoreRange:
    return ScoreRange(low=low, high=high)


def rule(segment: str, recency: tuple[int, int], fm: tuple[int, int]) -> SegmentRule:
    return SegmentRule(
        segment=segment, recency=score_range(*recency), frequency_monetary=score_range(*fm)
    )


def one_segment_per_recency_score(scale: int) -> tuple[SegmentRule, ...]:
    return tuple(
        SegmentRule(segment=f"r{r}", recency=score_range(r, r)) for r in range(1, scale + 1)
    )


def fixed(
    recency_days: tuple[int, ...], frequency: tuple[int, ...], monetary: tuple[str, ...]
) -> Thresholds:
    return Thresholds(
        mode="fixed",
        recency_days=recency_days,
        frequency=frequency,
        monetary=tuple(Decimal(cut) for cut in monetary),
    )


def refusal(parameters: RfmParameters) -> InvalidRfmParameters:
    with pytest.raises(InvalidRfmParameters) as refused:
        check_parameters(parameters)
    return refused.value


def scored_as(scored: pl.DataFrame, columns: list[str]) -> dict[str, tuple[object, ...]]:
    return {row[0]: tuple(row[1:]) for row in scored.select("customer_id", *columns).iter_rows()}


# Ten customers and one from the future. With n = 10 and scale 5, a quantile score is
# 1 + (rank_min - 1) * 5 // 10 = 1 + (rank_min - 1) // 2: ranks 1-2 score 1, 3-4 score 2,
# 5-6 score 3, 7-8 score 4, 9-10 score 5.
TEN = [
    customer("a", 1, 20, "900.00"),
    customer("b", 3, 1, "12.00"),
    customer("c", 10, 1, "15.00"),
    customer("d", 10, 3, "60.00"),
    customer("e", 90, 8, "300.00"),
    customer("f", 60, 2, "60.00"),
    customer("g", 120, 15, "700.00"),
    customer("h", 200, 1, "20.00"),
    customer("i", 400, 25, "1200.00"),
    customer("j", 500, 1, "10.00"),
    customer("z", -1, 4, "50.00"),
]


def test_quantile_scores_rank_customers_with_ties_sharing_the_lowest_rank() -> None:
    scored = scores(frame(TEN), RfmParameters(as_of=AS_OF))

    # z bought after the as-of date: left out, and n = 10.
    # Recency, most days first: j 500 (1), i 400 (2), h 200 (3), g 120 (4), e 90 (5),
    #   f 60 (6), c and d 10 (both 7), b 3 (9), a 1 (10).
    # Frequency, fewest first: b, c, h, j 1 (all 1), f 2 (5), d 3 (6), e 8 (7), g 15 (8),
    #   a 20 (9), i 25 (10).
    # Monetary, least first: j 10 (1), b 12 (2), c 15 (3), h 20 (4), d and f 60 (both 5),
    #   e 300 (7), g 700 (8), a 900 (9), i 1200 (10).
    # fm = (f + m + 1) // 2; the segment is the default grid's cell (r, fm).
    assert scored_as(scored, ["recency_days", "r", "f", "m", "fm", "segment"]) == {
        "a": (1, 5, 5, 5, 5, "champions"),
        "b": (3, 5, 1, 1, 1, "new"),
        "c": (10, 4, 1, 2, 2, "potential_loyalist"),
        "d": (10, 4, 3, 3, 3, "potential_loyalist"),
        "e": (90, 3, 4, 4, 4, "loyal"),
        "f": (60, 3, 3, 3, 3, "need_attention"),
        "g": (120, 2, 4, 4, 4, "at_risk"),
        "h": (200, 2, 1, 2, 2, "hibernating"),
        "i": (400, 1, 5, 5, 5, "cant_lose_them"),
        "j": (500, 1, 1, 1, 1, "lost"),
    }


def test_fixed_scores_count_the_cut_points_reached() -> None:
    thresholds = fixed((30, 90, 180, 365), (2, 4, 8, 16), ("50", "100", "300", "500.00"))
    scored = scores(frame(TEN), RfmParameters(as_of=AS_OF, thresholds=thresholds))

    # r = 1 + cuts with days <= cut: 1, 3, 10 reach all four (5); e's 90 reaches 90 (4);
    #   60 (4); 120 (3); 200 (2); 400 and 500 none (1).
    # f = 1 + cuts with purchases >= cut: 20 (5), 1 (1), 3 (2), e's 8 reaches 8 (4), 2 (2),
    #   15 (4), 25 (5).
    # m = 1 + cuts with spend >= cut: 900 (5), 12, 15, 20, 10 (1), 60 (2), e's 300 reaches
    #   300 (4), 700 (5), 1200 (5).
    # fm rounds half up: g's (4 + 5 + 1) // 2 = 5.
    assert scored_as(scored, ["r", "f", "m", "fm", "segment"]) == {
        "a": (5, 5, 5, 5, "champions"),
        "b": (5, 1, 1, 1, "new"),
        "c": (5, 1, 1, 1, "new"),
        "d": (5, 2, 2, 2, "potential_loyalist"),
        "e": (4, 4, 4, 4, "champions"),
        "f": (4, 2, 2, 2, "potential_loyalist"),
        "g": (3, 4, 5, 5, "loyal"),
        "h": (2, 1, 1, 1, "hibernating"),
        "i": (1, 5, 5, 5, "cant_lose_them"),
        "j": (1, 1, 1, 1, "lost"),
    }


def test_scores_keep_money_decimal_and_sort_by_customer() -> None:
    scored = scores(frame(list(reversed(TEN))), RfmParameters(as_of=AS_OF))

    assert scored.schema["monetary"] == pl.Decimal(18, 2)
    assert scored["monetary"].to_list()[:2] == [Decimal("900.00"), Decimal("12.00")]
    assert scored["customer_id"].to_list() == list("abcdefghij")


def test_spend_as_a_float_is_refused() -> None:
    floats = frame(TEN).with_columns(pl.col("spend").cast(pl.Float64))

    with pytest.raises(TypeError, match="Decimal"):
        scores(floats, RfmParameters(as_of=AS_OF))


def test_no_customers_score_to_an_empty_frame() -> None:
    scored = scores(frame([]), RfmParameters(as_of=AS_OF))

    assert scored.height == 0
    assert scored.columns[-1] == "segment"


def test_default_rules_partition_the_grid() -> None:
    check_parameters(RfmParameters(as_of=AS_OF))


def test_default_rules_need_scale_five() -> None:
    assert refusal(RfmParameters(as_of=AS_OF, scale=3)).field == "rules[0].recency"


def test_parameters_survive_being_stored_as_json() -> None:
    thresholds = fixed((30, 90, 180, 365), (2, 4, 8, 16), ("50", "100", "300", "500.00"))
    stored = RfmParameters(as_of=AS_OF, thresholds=thresholds)

    assert msgspec.json.decode(msgspec.json.encode(stored), type=RfmParameters) == stored


def test_parameters_with_an_unknown_field_do_not_decode() -> None:
    with pytest.raises(msgspec.ValidationError, match="scal"):
        msgspec.json.decode(b'{"as_of": "2024-06-30", "scal": 4}', type=RfmParameters)


# One widely copied table, in its published order: applied first-match, "at risk" takes
# every customer "can't lose them" describes, and "hibernating" every "lost" one.
PUBLISHED = (
    rule("champions", (4, 5), (4, 5)),
    rule("loyal", (2, 5), (3, 5)),
    rule("potential_loyalist", (3, 5), (1, 3)),
    rule("new", (4, 5), (1, 1)),
    rule("promising", (3, 4), (1, 1)),
    rule("need_attention", (2, 3), (2, 3)),
    rule("about_to_sleep", (2, 3), (1, 2)),
    rule("at_risk", (1, 2), (2, 5)),
    rule("cant_lose_them", (1, 1), (4, 5)),
    rule("hibernating", (1, 2), (1, 2)),
    rule("lost", (1, 2), (1, 2)),
)


def test_the_published_first_match_table_is_refused_for_its_overlaps() -> None:
    refused = refusal(RfmParameters(as_of=AS_OF, rules=PUBLISHED))

    assert refused.field == "rules"
    assert "matches 2 rules" in refused.message


def test_rules_that_overlap_are_refused_naming_the_first_shared_pattern() -> None:
    kept = [r for r in DEFAULT_RULES if r.segment != "at_risk"]
    wide_at_risk = (*kept, rule("at_risk", (1, 2), (3, 5)))

    refused = refusal(RfmParameters(as_of=AS_OF, rules=wide_at_risk))

    # The first (r, f, m) with r = 1 and fm >= 4: f = 2, m = 5, fm = (2 + 5 + 1) // 2 = 4.
    assert "(r=1, f=2, m=5, fm=4)" in refused.message
    assert "(cant_lose_them)" in refused.message
    assert "(at_risk)" in refused.message


def test_rules_that_leave_a_gap_are_refused_naming_the_first_uncovered_pattern() -> None:
    without_lost = tuple(r for r in DEFAULT_RULES if r.segment != "lost")

    refused = refusal(RfmParameters(as_of=AS_OF, rules=without_lost))

    assert "(r=1, f=1, m=1, fm=1) matches no rule" in refused.message


def test_a_rule_that_matches_no_pattern_is_refused() -> None:
    # f = 1 and m = 5 make fm = 3, never 1.
    never = SegmentRule(
        segment="ghosts",
        frequency=score_range(1, 1),
        monetary=score_range(5, 5),
        frequency_monetary=score_range(1, 1),
    )

    refused = refusal(RfmParameters(as_of=AS_OF, rules=(*DEFAULT_RULES, never)))

    assert refused.field == f"rules[{len(DEFAULT_RULES)}]"


@pytest.mark.parametrize(("low", "high"), [(0, 2), (4, 6), (3, 2)])
def test_a_range_outside_the_scale_or_reversed_is_refused(low: int, high: int) -> None:
    rules = (SegmentRule(segment="everyone", monetary=score_range(low, high)),)

    assert refusal(RfmParameters(as_of=AS_OF, rules=rules)).field == "rules[0].monetary"


@pytest.mark.parametrize("code", ["Champions", "can't_lose", "", "1st", "a" * 65])
def test_a_segment_code_must_be_lowercase_letters_digits_and_underscores(code: str) -> None:
    rules = (SegmentRule(segment=code),)

    assert refusal(RfmParameters(as_of=AS_OF, rules=rules)).field == "rules[0].segment"


@pytest.mark.parametrize("scale", [1, 11])
def test_a_scale_outside_two_to_ten_is_refused(scale: int) -> None:
    rules = one_segment_per_recency_score(max(scale, 1))

    assert refusal(RfmParameters(as_of=AS_OF, scale=scale, rules=rules)).field == "scale"


@pytest.mark.parametrize(
    ("thresholds", "field"),
    [
        (fixed((30, 90, 90, 365), (2, 4, 8, 16), ("1", "2", "3", "4")), "thresholds.recency_days"),
        (fixed((30, 90, 180, 365), (2, 8, 4, 16), ("1", "2", "3", "4")), "thresholds.frequency"),
        (fixed((30, 90, 180, 365), (2, 4, 8, 16), ("1", "2", "3")), "thresholds.monetary"),
        (fixed((30, 90, 180, 365), (2, 4, 8, 16), ("-1", "2", "3", "4")), "thresholds.monetary"),
        (fixed((30, 90, 180, 365), (2, 4, 8, 16), ("1", "NaN", "3", "4")), "thresholds.monetary"),
        (Thresholds(frequency=(2, 4, 8, 16)), "thresholds.frequency"),
    ],
)
def test_fixed_limits_must_be_scale_minus_one_ascending_cut_points(
    thresholds: Thresholds, field: str
) -> None:
    assert refusal(RfmParameters(as_of=AS_OF, thresholds=thresholds)).field == field


# Properties. Small value ranges make ties frequent.
IDS = [f"c{number:02d}" for number in range(40)]


@st.composite
def customers(draw: st.DrawFn) -> pl.DataFrame:
    chosen = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=len(IDS), unique=True))
    rows = [
        customer(
            customer_id,
            draw(st.integers(0, 400)),
            draw(st.integers(1, 12)),
            str(Decimal(draw(st.integers(-2_000, 200_000))).scaleb(-2)),
        )
        for customer_id in chosen
    ]
    return frame(rows)


@st.composite
def parameters(draw: st.DrawFn) -> RfmParameters:
    scale = draw(st.integers(2, 10))
    rules = DEFAULT_RULES if scale == 5 else one_segment_per_recency_score(scale)
    if not draw(st.booleans()):
        return RfmParameters(as_of=AS_OF, scale=scale, rules=rules)

    def cut_points(largest: int) -> st.SearchStrategy[tuple[int, ...]]:
        points = st.lists(
            st.integers(0, largest), min_size=scale - 1, max_size=scale - 1, unique=True
        )
        return points.map(lambda chosen: tuple(sorted(chosen)))

    thresholds = Thresholds(
        mode="fixed",
        recency_days=draw(cut_points(400)),
        frequency=draw(cut_points(12)),
        monetary=tuple(Decimal(cents).scaleb(-2) for cents in draw(cut_points(200_000))),
    )
    return RfmParameters(as_of=AS_OF, scale=scale, thresholds=thresholds, rules=rules)


@PROPERTIES
@given(customers(), parameters())
def test_every_score_lies_between_one_and_the_scale(
    purchases: pl.DataFrame, chosen: RfmParameters
) -> None:
    scored = scores(purchases, chosen)

    for column in ("r", "f", "m", "fm"):
        assert scored[column].is_between(1, chosen.scale).all()


@PROPERTIES
@given(customers(), parameters())
def test_equal_values_get_equal_scores(purchases: pl.DataFrame, chosen: RfmParameters) -> None:
    scored = scores(purchases, chosen)

    for value, score in (("recency_days", "r"), ("frequency", "f"), ("monetary", "m")):
        distinct = scored.group_by(value).agg(pl.col(score).n_unique())
        assert distinct[score].max() == 1


@PROPERTIES
@given(customers(), parameters())
def test_more_spend_more_purchases_and_more_recent_never_score_lower(
    purchases: pl.DataFrame, chosen: RfmParameters
) -> None:
    scored = scores(purchases, chosen)

    assert scored.sort("monetary")["m"].is_sorted()
    assert scored.sort("frequency")["f"].is_sorted()
    assert scored.sort("recency_days")["r"].is_sorted(descending=True)


@PROPERTIES
@given(customers(), parameters())
def test_every_customer_gets_exactly_one_segment(
    purchases: pl.DataFrame, chosen: RfmParameters
) -> None:
    scored = scores(purchases, chosen)

    assert scored["customer_id"].to_list() == sorted(purchases["customer_id"].to_list())
    assert scored["segment"].null_count() == 0


@PROPERTIES
@given(customers(), parameters(), st.randoms(use_true_random=False))
def test_the_order_of_the_input_rows_does_not_matter(
    purchases: pl.DataFrame, chosen: RfmParameters, random: Random
) -> None:
    order = list(range(purchases.height))
    random.shuffle(order)

    shuffled = purchases.select(pl.all().gather(order))

    assert_frame_equal(scores(shuffled, chosen), scores(purchases, chosen))


@PROPERTIES
@given(customers(), parameters())
def test_segment_sizes_list_every_segment_and_add_up_to_the_customers(
    purchases: pl.DataFrame, chosen: RfmParameters
) -> None:
    sizes = segment_sizes(scores(purchases, chosen), chosen.rules)

    assert sizes["segment"].to_list() == list(dict.fromkeys(r.segment for r in chosen.rules))
    assert sizes["customers"].sum() == purchases.height


@PROPERTIES
@given(customers(), customers(), parameters(), parameters())
def test_the_migration_matrix_counts_every_customer_of_either_run_once(
    earlier: pl.DataFrame, later: pl.DataFrame, first: RfmParameters, second: RfmParameters
) -> None:
    before, after = scores(earlier, first), scores(later, second)

    matrix = migration_matrix(before, after)
    changes = segment_changes(before, after)

    everyone = set(before["customer_id"]) | set(after["customer_id"])
    assert matrix["customers"].sum() == len(everyone)
    moved = matrix.filter(pl.col("from_segment").ne_missing(pl.col("to_segment")))
    assert moved["customers"].sum() == changes.height


def test_the_migration_matrix_counts_arrivals_from_and_departures_to_no_segment() -> None:
    before = scores(frame(TEN[:3]), RfmParameters(as_of=AS_OF))  # a, b, c
    after = scores(frame(TEN[1:4]), RfmParameters(as_of=AS_OF))  # b, c, d

    # With n = 3, a quantile score is 1 + (rank_min - 1) * 5 // 3: ranks 1, 2, 3 score 1, 2, 4.
    # Before: a (r 4, f 4, m 4) champions; b (r 2, f 1, m 1) hibernating; c (r 1, f 1, m 2,
    #   fm 2) lost.
    # After: b (r 4, f 1, m 1) promising; c (r 1, f 1, m 2) lost still; d (10 days like c:
    #   r 1, f 4, m 4) cant_lose_them.
    assert migration_matrix(before, after).rows() == [
        (None, "cant_lose_them", 1),
        ("champions", None, 1),
        ("hibernating", "promising", 1),
        ("lost", "lost", 1),
    ]
    assert segment_changes(before, after).rows() == [
        ("a", "champions", None),
        ("b", "hibernating", "promising"),
        ("d", None, "cant_lose_them"),
    ]


def test_two_hundred_thousand_customers_score() -> None:
    number = pl.int_range(200_000, dtype=pl.Int64)
    purchases = pl.select(
        customer_id=pl.format("c{}", number),
        last_purchase_on=pl.lit(AS_OF) - pl.duration(days=number * 7_919 % 730),
        purchases=number * 104_729 % 53 + 1,
        spend=(number * 1_299_709 % 500_000).cast(pl.Decimal(18, 0)) * Decimal("0.01"),
    )

    scored = scores(purchases, RfmParameters(as_of=AS_OF))

    assert scored.height == 200_000
    assert scored["segment"].null_count() == 0
