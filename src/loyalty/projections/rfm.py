"""RFM scoring: recency, frequency and monetary value per customer, and named segments.

A pure module: no I/O, no clock, no randomness. The caller reads the movements, stores each
run with its ``RfmParameters`` (as-of date included) and compares runs with
``migration_matrix``; everything here is a function of its arguments, so a stored run can be
recomputed bit for bit.

Measures, per customer, as of ``as_of``:

- recency: days from the last purchase to ``as_of`` (fewer is better);
- frequency: the number of purchase movements;
- monetary: purchases minus returns, a ``Decimal`` (never a float).

Scores run from 1 (worst) to ``scale`` (best), by one of two threshold modes:

- ``quantiles``: ``score = 1 + floor((rank_min - 1) * scale / n)``, where ``rank_min`` is the
  "min" rank of the value among the ``n`` customers (ties share the lowest rank, so equal
  values always get equal scores) ranked worst first: ascending for frequency and monetary,
  descending days for recency.
- ``fixed``: ``scale - 1`` ascending cut points per measure, and
  ``score = 1 + the number of cut points reached``: ``value >= cut`` for frequency and
  monetary, ``days <= cut`` for recency.

The FM score joins frequency and monetary: ``fm = (f + m + 1) // 2``, their mean rounded
half up.

Segments are an ordered list of rules, each a range (or any score) per r, f, m and fm. There
is no canonical scheme: one widely copied 11-segment table, applied first-match in its
published order, overlaps so much that "can't lose them" (r 1, fm 4-5) is unreachable behind
"at risk" (r 1-2, fm 2-5). So rules are checked as a partition instead: every (r, f, m)
pattern must match exactly one rule and every rule at least one pattern, and order only
serves display. The default rules, for scale 5, keep each cell of the R x FM grid in a
segment whose published rule contains it::

    r \\ fm |     1     |     2     |     3     |     4     |     5
    -------+-----------+-----------+-----------+-----------+----------
       5   | new       | potential | potential | champions | champions
       4   | promising | potential | potential | champions | champions
       3   | sleep     | sleep     | attention | loyal     | loyal
       2   | hibern.   | hibern.   | at_risk   | at_risk   | at_risk
       1   | lost      | lost      | at_risk   | cant_lose | cant_lose

    potential = potential_loyalist, sleep = about_to_sleep, attention = need_attention,
    hibern. = hibernating, cant_lose = cant_lose_them.

Segment names are codes; the API shows them through the catalog entry ``segment_<code>``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from itertools import pairwise, product
from typing import Final, Literal, TypeAlias

import msgspec
import polars as pl

MIN_SCALE: Final = 2
MAX_SCALE: Final = 10
SCORE: Final = pl.Int8
SCORED_COLUMNS: Final = (
    "customer_id",
    "recency_days",
    "frequency",
    "monetary",
    "r",
    "f",
    "m",
    "fm",
    "segment",
)

_SEGMENT_CODE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")

Pattern: TypeAlias = tuple[int, int, int]


class InvalidRfmParameters(ValueError):
    """RFM parameters that cannot score: ``field`` names the offending part."""

    code = "invalid_rfm_parameters"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ScoreRange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The scores from ``low`` to ``high``, both included."""

    low: int
    high: int


class SegmentRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The customers of ``segment``: those whose scores fall in every range given.

    A range left ``None`` accepts any score. ``frequency_monetary`` bounds the FM score,
    ``(f + m + 1) // 2``.
    """

    segment: str
    recency: ScoreRange | None = None
    frequency: ScoreRange | None = None
    monetary: ScoreRange | None = None
    frequency_monetary: ScoreRange | None = None

    def ranges(self) -> dict[str, ScoreRange | None]:
        return {
            "recency": self.recency,
            "frequency": self.frequency,
            "monetary": self.monetary,
            "frequency_monetary": self.frequency_monetary,
        }

    def matches(self, pattern: Pattern) -> bool:
        r, f, m = pattern
        values = (r, f, m, fm_score(f, m))
        return all(
            bounds is None or bounds.low <= value <= bounds.high
            for bounds, value in zip(self.ranges().values(), values, strict=True)
        )


class Thresholds(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How values become scores: by quantiles (tuples empty) or by fixed cut points.

    In ``fixed`` mode each tuple holds ``scale - 1`` strictly ascending cut points.
    """

    mode: Literal["quantiles", "fixed"] = "quantiles"
    recency_days: tuple[int, ...] = ()
    frequency: tuple[int, ...] = ()
    monetary: tuple[Decimal, ...] = ()


def _rule(segment: str, recency: tuple[int, int], fm: tuple[int, int]) -> SegmentRule:
    return SegmentRule(
        segment=segment,
        recency=ScoreRange(low=recency[0], high=recency[1]),
        frequency_monetary=ScoreRange(low=fm[0], high=fm[1]),
    )


DEFAULT_RULES: Final = (
    _rule("champions", (4, 5), (4, 5)),
    _rule("loyal", (3, 3), (4, 5)),
    _rule("potential_loyalist", (4, 5), (2, 3)),
    _rule("new", (5, 5), (1, 1)),
    _rule("promising", (4, 4), (1, 1)),
    _rule("need_attention", (3, 3), (3, 3)),
    _rule("about_to_sleep", (3, 3), (1, 2)),
    _rule("at_risk", (2, 2), (3, 5)),
    _rule("at_risk", (1, 1), (3, 3)),
    _rule("cant_lose_them", (1, 1), (4, 5)),
    _rule("hibernating", (2, 2), (1, 2)),
    _rule("lost", (1, 1), (1, 2)),
)
"""The default segments, for scale 5: the grid of the module docstring."""


class RfmParameters(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything a run depends on besides its input, so it can be stored and repeated."""

    as_of: date
    scale: int = 5
    thresholds: Thresholds = Thresholds()
    rules: tuple[SegmentRule, ...] = DEFAULT_RULES


def fm_score(f: int, m: int) -> int:
    """The FM score: the mean of ``f`` and ``m`` rounded half up, so (4, 5) gives 5."""
    return (f + m + 1) // 2


def check_parameters(parameters: RfmParameters) -> None:
    """Refuse parameters that cannot score every customer into exactly one segment.

    Raises:
        InvalidRfmParameters: the first problem found, with the field it concerns.
    """
    _segment_by_pattern(parameters)


def _segment_by_pattern(parameters: RfmParameters) -> dict[Pattern, str]:
    scale = parameters.scale
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise InvalidRfmParameters(
            f"scale must be between {MIN_SCALE} and {MAX_SCALE}, not {scale}", "scale"
        )
    _check_thresholds(parameters.thresholds, scale)
    for index, rule in enumerate(parameters.rules):
        _check_rule(rule, scale, f"rules[{index}]")
    return _partition(parameters.rules, scale)


def _check_thresholds(thresholds: Thresholds, scale: int) -> None:
    measures: dict[str, tuple[int, ...] | tuple[Decimal, ...]] = {
        "recency_days": thresholds.recency_days,
        "frequency": thresholds.frequency,
        "monetary": thresholds.monetary,
    }
    for name, cuts in measures.items():
        field = f"thresholds.{name}"
        if thresholds.mode == "quantiles" and cuts:
            raise InvalidRfmParameters(f"{field} takes no cut points with quantiles", field)
        if thresholds.mode == "fixed":
            _check_cut_points(cuts, scale, field)


def _check_cut_points(cuts: tuple[int, ...] | tuple[Decimal, ...], scale: int, field: str) -> None:
    if len(cuts) != scale - 1:
        raise InvalidRfmParameters(
            f"{field} needs {scale - 1} cut points for scale {scale}, not {len(cuts)}", field
        )
    values = [Decimal(cut) for cut in cuts]
    if not all(value.is_finite() and value >= 0 for value in values):
        raise InvalidRfmParameters(f"{field} cut points must be finite and not negative", field)
    if any(low >= high for low, high in pairwise(values)):
        raise InvalidRfmParameters(f"{field} cut points must be strictly ascending", field)


def _check_rule(rule: SegmentRule, scale: int, field: str) -> None:
    if not _SEGMENT_CODE.fullmatch(rule.segment):
        raise InvalidRfmParameters(
            f"segment code {rule.segment!r} must be a lowercase letter followed by at most"
            " 63 lowercase letters, digits or underscores",
            f"{field}.segment",
        )
    for name, bounds in rule.ranges().items():
        if bounds is not None and not 1 <= bounds.low <= bounds.high <= scale:
            raise InvalidRfmParameters(
                f"{field}.{name} must have 1 <= low <= high <= {scale},"
                f" not {bounds.low}-{bounds.high}",
                f"{field}.{name}",
            )


def _partition(rules: Sequence[SegmentRule], scale: int) -> dict[Pattern, str]:
    every = range(1, scale + 1)
    patterns = list(product(every, every, every))
    coverage = [frozenset(filter(rule.matches, patterns)) for rule in rules]
    for index, covered in enumerate(coverage):
        if not covered:
            raise InvalidRfmParameters(
                f"rules[{index}] ({rules[index].segment}) matches no score pattern",
                f"rules[{index}]",
            )
    segments: dict[Pattern, str] = {}
    for pattern in patterns:
        owners = [index for index, covered in enumerate(coverage) if pattern in covered]
        if len(owners) != 1:
            raise InvalidRfmParameters(_coverage_message(pattern, owners, rules), "rules")
        segments[pattern] = rules[owners[0]].segment
    return segments


def _coverage_message(pattern: Pattern, owners: list[int], rules: Sequence[SegmentRule]) -> str:
    r, f, m = pattern
    named = f"score pattern (r={r}, f={f}, m={m}, fm={fm_score(f, m)})"
    if not owners:
        return f"{named} matches no rule; every pattern must match exactly one"
    matched = ", ".join(f"rules[{index}] ({rules[index].segment})" for index in owners)
    return f"{named} matches {len(owners)} rules, {matched}; every pattern must match exactly one"


def scores(purchases: pl.DataFrame, parameters: RfmParameters) -> pl.DataFrame:
    """Score each customer and name their segment.

    Args:
        purchases: one row per customer who has purchased: ``customer_id`` (String),
            ``last_purchase_on`` (Date), ``purchases`` (Int64) and ``spend`` (Decimal).
            Customers whose last purchase is after ``as_of`` (or unknown) are left out, so
            that a run never sees its future even if the caller forgot to filter.
        parameters: checked here first, as ``check_parameters`` does.

    Returns:
        ``SCORED_COLUMNS``, one row per customer, sorted by ``customer_id``. Quantiles are
        taken among the customers kept.

    Raises:
        InvalidRfmParameters: as ``check_parameters``.
        TypeError: ``spend`` is not a Decimal column.
    """
    lookup = _segment_lookup(parameters)
    if not isinstance(purchases.schema["spend"], pl.Decimal):
        raise TypeError(f"spend must be a Decimal column, not {purchases.schema['spend']}")
    return (
        purchases.lazy()
        .filter(pl.col("last_purchase_on") <= parameters.as_of)
        .select(
            "customer_id",
            recency_days=(pl.lit(parameters.as_of) - pl.col("last_purchase_on")).dt.total_days(),
            frequency=pl.col("purchases").cast(pl.Int64),
            monetary="spend",
        )
        .with_columns(_score_columns(parameters))
        .join(lookup.lazy(), on=["r", "f", "m"], how="left")
        .select(SCORED_COLUMNS)
        .sort("customer_id")
        .collect()
    )


def _segment_lookup(parameters: RfmParameters) -> pl.DataFrame:
    rows = [
        (r, f, m, fm_score(f, m), segment)
        for (r, f, m), segment in _segment_by_pattern(parameters).items()
    ]
    schema = {"r": SCORE, "f": SCORE, "m": SCORE, "fm": SCORE, "segment": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row")


def _score_columns(parameters: RfmParameters) -> list[pl.Expr]:
    thresholds = parameters.thresholds
    measures = (
        ("r", "recency_days", thresholds.recency_days, True),
        ("f", "frequency", thresholds.frequency, False),
        ("m", "monetary", thresholds.monetary, False),
    )
    if thresholds.mode == "fixed":
        return [
            _fixed_score(column, cuts, fewer_is_better=fewer).alias(name)
            for name, column, cuts, fewer in measures
        ]
    return [
        _quantile_score(column, parameters.scale, fewer_is_better=fewer).alias(name)
        for name, column, _, fewer in measures
    ]


def _quantile_score(column: str, scale: int, *, fewer_is_better: bool) -> pl.Expr:
    rank = pl.col(column).rank("min", descending=fewer_is_better).cast(pl.Int64)
    return (1 + (rank - 1) * scale // pl.len().cast(pl.Int64)).cast(SCORE)


def _fixed_score(
    column: str, cuts: tuple[int, ...] | tuple[Decimal, ...], *, fewer_is_better: bool
) -> pl.Expr:
    value = pl.col(column)
    reached = [value <= cut if fewer_is_better else value >= cut for cut in cuts]
    return (1 + pl.sum_horizontal(reached)).cast(SCORE)


def segment_sizes(scored: pl.DataFrame, rules: Sequence[SegmentRule]) -> pl.DataFrame:
    """Customers per segment (``segment``, ``customers``), every segment of ``rules`` listed.

    Segments come in the order they first appear in ``rules``, empty ones with 0, so that
    charts keep their shape from run to run. ``scored`` must come from these rules.
    """
    segments = pl.DataFrame(
        {"segment": list(dict.fromkeys(rule.segment for rule in rules))},
        schema={"segment": pl.String},
    )
    counts = scored.group_by("segment").agg(customers=pl.len().cast(pl.Int64))
    return segments.join(counts, on="segment", how="left", maintain_order="left").with_columns(
        pl.col("customers").fill_null(0)
    )


def migration_matrix(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    """How many customers moved from each segment to each other between two runs.

    Columns ``from_segment``, ``to_segment``, ``customers``, sorted by segments with nulls
    first. A customer scored only in ``after`` (new to the scoring) comes from a null
    segment; one scored only in ``before`` goes to a null segment. So the counts add up to
    every customer of either run.
    """
    return (
        _paired_segments(before, after)
        .group_by("from_segment", "to_segment")
        .agg(customers=pl.len().cast(pl.Int64))
        .sort("from_segment", "to_segment")
    )


def segment_changes(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    """The customers whose segment differs between two runs, sorted by ``customer_id``.

    Columns ``customer_id``, ``from_segment``, ``to_segment``; as in ``migration_matrix``,
    a customer missing from one run has a null segment there, so entering or leaving the
    scoring is a change too.
    """
    return (
        _paired_segments(before, after)
        .filter(pl.col("from_segment").ne_missing(pl.col("to_segment")))
        .sort("customer_id")
    )


def _paired_segments(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    return before.select("customer_id", from_segment="segment").join(
        after.select("customer_id", to_segment="segment"),
        on="customer_id",
        how="full",
        coalesce=True,
    )
