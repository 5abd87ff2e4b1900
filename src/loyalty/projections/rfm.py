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

Segments come from the rules of :mod:`loyalty.domain.segmentation` (validated there).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

import polars as pl

from loyalty.domain.segmentation import (
    RfmParameters,
    SegmentRule,
    fm_score,
    segment_by_pattern,
)

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
        for (r, f, m), segment in segment_by_pattern(parameters).items()
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
