"""Segmentation: how RFM scores name customer segments, and the runs that assigned them.

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

Aggregates:

- :class:`SegmentationPolicy` (one per deployment): the RFM parameters saved by the client,
  which scheduled runs use;
- :class:`RfmRun`: one run's parameters, as-of date, log position and result digest, then
  the segment changes it found (in chunks), so that promotions and outreach can target
  segments from the log alone.

Invariants: parameters are checked (:func:`check_parameters`) before they are saved or run;
a run is computed once (its id derives from its parameters and position).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from itertools import pairwise, product
from typing import Final, Literal, TypeAlias
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, event

from loyalty.domain import ids
from loyalty.domain.errors import InvalidRfmParameters

MIN_SCALE: Final = 2
MAX_SCALE: Final = 10
_SEGMENT_CODE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")

Pattern: TypeAlias = tuple[int, int, int]


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
    segment_by_pattern(parameters)


def segment_by_pattern(parameters: RfmParameters) -> dict[Pattern, str]:
    """The segment of every score pattern; raises :class:`InvalidRfmParameters` first."""
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


class RfmPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The parameters a client saves for every run: all but the as-of date."""

    scale: int = 5
    thresholds: Thresholds = Thresholds()
    rules: tuple[SegmentRule, ...] = DEFAULT_RULES

    def on(self, as_of: date) -> RfmParameters:
        return RfmParameters(
            as_of=as_of, scale=self.scale, thresholds=self.thresholds, rules=self.rules
        )


class SegmentSize(msgspec.Struct, frozen=True, kw_only=True):
    segment: str
    customers: int


class SegmentChange(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """A customer's segment before and after a run (``None``: not scored)."""

    customer_id: UUID
    before: str | None
    after: str | None


class SegmentationPolicy(Aggregate):
    """The RFM parameters in use; every change names who made it."""

    class Started(Aggregate.Created):
        pass

    class ParametersSaved(Aggregate.Event):
        policy: RfmPolicy
        by: str

    @staticmethod
    def create_id() -> UUID:
        return ids.SEGMENTATION_POLICY_ID

    @event(Started)
    def __init__(self) -> None:
        self.policy = RfmPolicy()
        self.by: str | None = None

    def save(self, policy: RfmPolicy, by: str) -> None:
        check_parameters(policy.on(date(2000, 1, 1)))
        if policy != self.policy:
            self._save(policy=policy, by=by)

    @event(ParametersSaved)
    def _save(self, policy: RfmPolicy, by: str) -> None:
        self.policy = policy
        self.by = by


class RfmRun(Aggregate):
    """One RFM run: what it was computed from and what it found, then the segment changes
    it recorded against the run before it, a chunk per event."""

    class Computed(Aggregate.Created):
        parameters: RfmParameters
        position: int
        previous: UUID | None
        customers: int
        sizes: tuple[SegmentSize, ...]
        digest: str
        by: str

    class SegmentsChanged(Aggregate.Event):
        changes: tuple[SegmentChange, ...]

    @classmethod
    def compute(
        cls,
        *,
        run_id: UUID,
        parameters: RfmParameters,
        position: int,
        previous: UUID | None,
        sizes: tuple[SegmentSize, ...],
        digest: str,
        by: str,
    ) -> RfmRun:
        check_parameters(parameters)
        return cls._create(
            cls.Computed,
            id=run_id,
            parameters=parameters,
            position=position,
            previous=previous,
            customers=sum(s.customers for s in sizes),
            sizes=sizes,
            digest=digest,
            by=by,
        )

    @event(Computed)
    def __init__(
        self,
        parameters: RfmParameters,
        position: int,
        previous: UUID | None,
        customers: int,
        sizes: tuple[SegmentSize, ...],
        digest: str,
        by: str,
    ) -> None:
        self.parameters = parameters
        self.position = position
        self.previous = previous
        self.customers = customers
        self.sizes = sizes
        self.digest = digest
        self.by = by
        self.changes = 0

    def record_changes(self, changes: tuple[SegmentChange, ...]) -> None:
        if changes:
            self._record_changes(changes=changes)

    @event(SegmentsChanged)
    def _record_changes(self, changes: tuple[SegmentChange, ...]) -> None:
        self.changes += len(changes)
