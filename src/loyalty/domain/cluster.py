"""Clusters: reusable, named sets of customers defined by criteria that are data.

Criteria form a small expression tree of msgspec Structs, tagged by ``kind``::

    {"kind": "all", "of": [
        {"kind": "age", "min": 18, "max": 35},
        {"kind": "city", "values": ["Milano", "Monza"]},
        {"kind": "spend_in_last_days", "days": 90, "min": "200.00"}]}

Profile criteria: ``age``, ``gender``, ``city``, ``postal_code`` (prefixes), ``signup``
(dates), ``card_status``, ``registered``. Behaviour criteria, as the ledger knows it on the
customer's account: ``total_spend``, ``purchase_count``, ``last_purchase`` (within or not
within N days), ``spend_in_last_days``. Combinators: ``all``, ``any``, ``not``.

Membership: a ``dynamic`` cluster (the default) has its members re-evaluated from its
criteria; a ``static`` one has its member list evaluated once per version, when that
version is defined (or at the first evaluation after), and frozen. The kind is part of each
version's terms, so versions stored before it existed read as ``dynamic``.

Invariants: a cluster's code is unique; every change is a new version that takes effect
from now on, so a movement is judged by the definition in force when it happened.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, event

from loyalty.domain import ids
from loyalty.domain.card import CardStatus
from loyalty.domain.errors import InvalidProgram
from loyalty.domain.versioning import Version, check_effective_from, version_in_force


class AllOf(
    msgspec.Struct,
    tag="all",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    of: tuple[Criterion, ...]


class AnyOf(
    msgspec.Struct,
    tag="any",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    of: tuple[Criterion, ...]


class Not(
    msgspec.Struct,
    tag="not",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    criterion: Criterion


class Age(
    msgspec.Struct,
    tag="age",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    """Age in whole years on the movement's local date; bounds inclusive."""

    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        check_bounds(self.min, self.max)


def check_bounds(low: int | Decimal | None, high: int | Decimal | None) -> None:
    """Refuses a range that can match nobody (``min`` above ``max``)."""
    if low is not None and high is not None and low > high:
        raise ValueError(f"min ({low}) must not exceed max ({high})")


class Gender(
    msgspec.Struct,
    tag="gender",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    values: tuple[str, ...]


class City(
    msgspec.Struct,
    tag="city",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    """Case-insensitive match on the profile's city."""

    values: tuple[str, ...]


class PostalCode(
    msgspec.Struct,
    tag="postal_code",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    prefixes: tuple[str, ...]


class Signup(
    msgspec.Struct,
    tag="signup",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    on_or_after: date | None = None
    on_or_before: date | None = None


class CardStatusIs(
    msgspec.Struct,
    tag="card_status",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    values: tuple[CardStatus, ...]


class Registered(
    msgspec.Struct,
    tag="registered",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    value: bool = True


class TotalSpend(
    msgspec.Struct,
    tag="total_spend",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    min: Decimal | None = None
    max: Decimal | None = None

    def __post_init__(self) -> None:
        check_bounds(self.min, self.max)


class PurchaseCount(
    msgspec.Struct,
    tag="purchase_count",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        check_bounds(self.min, self.max)


class LastPurchase(
    msgspec.Struct,
    tag="last_purchase",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    """Last purchase ``within_days`` of the movement (or not, with ``not_within_days``)."""

    within_days: int | None = None
    not_within_days: int | None = None


class SpendInLastDays(
    msgspec.Struct,
    tag="spend_in_last_days",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    """Spend on the days ``(movement date - days, movement date]``, before this movement."""

    days: int
    min: Decimal | None = None
    max: Decimal | None = None

    def __post_init__(self) -> None:
        check_bounds(self.min, self.max)


Criterion = (
    AllOf
    | AnyOf
    | Not
    | Age
    | Gender
    | City
    | PostalCode
    | Signup
    | CardStatusIs
    | Registered
    | TotalSpend
    | PurchaseCount
    | LastPurchase
    | SpendInLastDays
)


class MembershipKind(StrEnum):
    DYNAMIC = "dynamic"
    """Members re-evaluated from the criteria (daily, or on demand)."""
    STATIC = "static"
    """Members evaluated once per version and frozen."""


class ClusterTerms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    criteria: Criterion
    membership: MembershipKind = MembershipKind.DYNAMIC
    """A new field with a default: terms stored before it decode as ``dynamic``."""


ClusterVersion = Version[ClusterTerms]

MAX_LOOKBACK_DAYS = 366


class Cluster(Aggregate):
    class Defined(Aggregate.Created):
        code: str
        terms: ClusterTerms
        effective_from: datetime

    class Redefined(Aggregate.Event):
        terms: ClusterTerms
        effective_from: datetime

    @staticmethod
    def create_id(code: str) -> UUID:
        return ids.cluster_id(code)

    @classmethod
    def define(
        cls, *, code: str, terms: ClusterTerms, effective_from: datetime, now: datetime
    ) -> Cluster:
        if not code.strip():
            raise InvalidProgram("a cluster needs a code", field="code")
        check_cluster_terms(terms)
        check_effective_from((), effective_from, now)
        return cls(code=code, terms=terms, effective_from=effective_from)

    @event(Defined)
    def __init__(self, code: str, terms: ClusterTerms, effective_from: datetime) -> None:
        self.code = code
        self.versions: list[ClusterVersion] = [
            ClusterVersion(number=1, effective_from=effective_from, terms=terms)
        ]

    @property
    def current(self) -> ClusterVersion:
        return self.versions[-1]

    def redefine(self, terms: ClusterTerms, effective_from: datetime, now: datetime) -> None:
        check_cluster_terms(terms)
        check_effective_from(self.versions, effective_from, now)
        self._redefine(terms=terms, effective_from=effective_from)

    @event(Redefined)
    def _redefine(self, terms: ClusterTerms, effective_from: datetime) -> None:
        self.versions.append(
            ClusterVersion(
                number=len(self.versions) + 1, effective_from=effective_from, terms=terms
            )
        )

    def version_at(self, at: datetime) -> ClusterVersion | None:
        return version_in_force(self.versions, at)


def check_cluster_terms(terms: ClusterTerms) -> None:
    if not terms.name.strip():
        raise InvalidProgram("a cluster needs a name")
    check_criterion(terms.criteria)


def check_criterion(criterion: Criterion) -> None:
    match criterion:
        case AllOf(of=parts) | AnyOf(of=parts):
            if not parts:
                raise InvalidProgram(f"'{type(criterion).__name__}' needs criteria")
            for part in parts:
                check_criterion(part)
        case Not(criterion=inner):
            check_criterion(inner)
        case SpendInLastDays(days=days) if not 0 < days <= MAX_LOOKBACK_DAYS:
            raise InvalidProgram(f"spend_in_last_days looks back 1 to {MAX_LOOKBACK_DAYS} days")
        case LastPurchase(within_days=None, not_within_days=None):
            raise InvalidProgram("last_purchase needs within_days or not_within_days")
