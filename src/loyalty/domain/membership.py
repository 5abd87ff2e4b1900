"""A cluster's membership trail: every evaluation of who is in the cluster, as events.

One stream per cluster, apart from the cluster's own: evaluating never moves the program
revision, and a cluster can be given a new version while it is being evaluated. Each
``Evaluated`` event records the version judged, the day, the size, how many joined and
left since the evaluation before, a digest of the sorted member ids (see
:func:`members_digest`) and who ran it: the member list itself lives in the read schema,
and the digest lets an auditor check it against the trail.

Invariants: a static version is evaluated once (its member list is then frozen); a
dynamic one as often as asked. Optimistic concurrency on the stream keeps two evaluators
of the same cluster from both recording.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from loyalty.domain.cluster import MembershipKind
from loyalty.domain.errors import ClusterFrozen

MEMBERSHIP = UUID("3852d505-8963-48ff-8b5e-85bf13d81b5e")
"""The namespace of membership streams' ids (by cluster code)."""


def members_digest(members: Iterable[UUID]) -> str:
    """SHA-256 of the member ids, sorted, as lowercase hyphenated UUIDs one per line."""
    return hashlib.sha256("\n".join(sorted(str(m) for m in members)).encode()).hexdigest()


class ClusterMembership(Aggregate):
    class Started(Aggregate.Created):
        cluster: str

    class Evaluated(Aggregate.Event):
        version: int
        membership: MembershipKind
        evaluated_on: date
        evaluated_at: datetime
        size: int
        joined: int
        departed: int
        members_digest: str
        by: str

    @staticmethod
    def create_id(cluster: str) -> UUID:
        return uuid5(MEMBERSHIP, cluster)

    @classmethod
    def start(cls, cluster: str) -> ClusterMembership:
        return cls(cluster=cluster)

    @event(Started)
    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.frozen: dict[int, date] = {}
        """The static versions evaluated, with the day they were."""

    def check_not_frozen(self, version: int) -> None:
        """Refuses to evaluate again a static version already evaluated."""
        if version in self.frozen:
            day = self.frozen[version].isoformat()
            raise ClusterFrozen(
                f"cluster {self.cluster!r} is static: the members of its version {version} "
                f"were frozen on {day}",
                cluster=self.cluster,
                version=version,
                evaluated_on=day,
            )

    def record(
        self,
        *,
        version: int,
        membership: MembershipKind,
        evaluated_on: date,
        evaluated_at: datetime,
        size: int,
        joined: int,
        departed: int,
        members_digest: str,
        by: str,
    ) -> None:
        """Records an evaluation of ``version`` (refused if it is a static one already
        evaluated)."""
        self.check_not_frozen(version)
        self._evaluated(
            version=version,
            membership=membership,
            evaluated_on=evaluated_on,
            evaluated_at=evaluated_at,
            size=size,
            joined=joined,
            departed=departed,
            members_digest=members_digest,
            by=by,
        )

    @event(Evaluated)
    def _evaluated(
        self,
        version: int,
        membership: MembershipKind,
        evaluated_on: date,
        evaluated_at: datetime,
        size: int,
        joined: int,
        departed: int,
        members_digest: str,
        by: str,
    ) -> None:
        if membership == MembershipKind.STATIC:
            self.frozen[version] = evaluated_on
