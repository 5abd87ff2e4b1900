"""Cluster memberships: who is in each cluster, evaluated on a day and kept in the read
schema (``cluster_members``, ``cluster_evaluations``: ids and store codes only), each
evaluation recorded in the ledger too (:class:`loyalty.domain.membership.ClusterMembership`).

This is the write side because judging reads profiles, which only the Ledger opens: the
members are found by the scan that counts a cluster's size
(:func:`loyalty.commands.cluster_size.candidates`), judged by the rule engine's own
criteria, so an evaluation and a size counted the same day agree.

- A **dynamic** cluster is re-evaluated whenever asked (the server asks daily, through
  :func:`evaluate_dynamic_clusters`); its member list is replaced each time.
- A **static** cluster's version is evaluated once, when it is defined in force at once
  (the Backoffice API, :func:`evaluate_if_static`) or at the first evaluation after (a
  program file, a version taking effect later), and frozen: evaluating it again is refused
  (:class:`~loyalty.domain.errors.ClusterFrozen`). Only the list is frozen: the daily run
  keeps its members' home stores current, since they decide who may see them.
- Erased customers are never judged (their profile is gone); readers also leave out those
  erased since the evaluation (:mod:`loyalty.projections.cluster_members`).

The member list is replaced in one read-side transaction, held open while the evaluation's
event is appended: an append refused (another evaluator was first, or the static version
was frozen meanwhile) leaves the list as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from loyalty.commands.cluster_size import candidates, day_of, today, version_on
from loyalty.commands.ledger import Ledger
from loyalty.commands.program import Program, ProgramCache
from loyalty.domain.cluster import Cluster, ClusterVersion, MembershipKind
from loyalty.domain.errors import ClusterNotInForce, ConcurrentUpdate, UnknownCluster
from loyalty.domain.membership import ClusterMembership, members_digest
from loyalty.settings import Settings

Members = dict[UUID, str | None]
"""Customer id -> home store code (``None``: a customer without one)."""

REPLACE = "DELETE FROM {members} WHERE cluster = %s RETURNING customer_id"
INSERT = """
INSERT INTO {members} (cluster, customer_id, home_store)
SELECT %s, m.id, m.store FROM unnest(%s::uuid[], %s::text[]) AS m(id, store)
"""
RECORD = """
INSERT INTO {evaluations} (cluster, version, evaluated_on, evaluated_at, membership, size,
                           joined, departed, members_digest)
VALUES (%(cluster)s, %(version)s, %(evaluated_on)s, %(evaluated_at)s, %(membership)s,
        %(size)s, %(joined)s, %(departed)s, %(members_digest)s)
ON CONFLICT (cluster, version, evaluated_on) DO UPDATE SET
    evaluated_at = EXCLUDED.evaluated_at, size = EXCLUDED.size, joined = EXCLUDED.joined,
    departed = EXCLUDED.departed, members_digest = EXCLUDED.members_digest
"""
REFRESH_HOMES = """
UPDATE {members} m SET home_store = h.store
FROM unnest(%s::uuid[], %s::text[]) AS h(id, store)
WHERE m.cluster = ANY(%s) AND m.customer_id = h.id AND m.home_store IS DISTINCT FROM h.store
"""


class Evaluation(msgspec.Struct, frozen=True, kw_only=True):
    cluster: str
    version: int
    membership: MembershipKind
    evaluated_on: date
    """The day the criteria were judged on."""
    evaluated_at: datetime
    size: int
    joined: int
    """Members now who were not at the evaluation before."""
    departed: int
    """Members at the evaluation before who are not any more."""
    members_digest: str
    """SHA-256 of the sorted member ids (:func:`loyalty.domain.membership.members_digest`)."""
    by: str


def members_table(settings: Settings) -> Identifier:
    return Identifier(settings.read_schema, "cluster_members")


def evaluations_table(settings: Settings) -> Identifier:
    return Identifier(settings.read_schema, "cluster_evaluations")


def evaluate_cluster(
    ledger: Ledger, code: str, day: date, by: str, now: datetime | None = None
) -> Evaluation:
    """Evaluates cluster ``code``'s members on ``day`` (today or later) by the version that
    judges that day, and keeps them; a static version already evaluated is refused."""
    now = now or datetime.now(UTC)
    day = day_of(day, now)
    program = ProgramCache(ledger).current()
    cluster = program.clusters.get(code)
    if cluster is None:
        raise UnknownCluster(f"no cluster has the code {code!r}", cluster=code)
    version = in_force(cluster, day, now)
    trail = trails_of(ledger, [code])[code]
    trail.check_not_frozen(version.number)
    members, _ = judge(ledger, program, day, {code: version})
    return keep(ledger, trail, version, members[code], day, now, by)


def evaluate_dynamic_clusters(
    ledger: Ledger, day: date, by: str, now: datetime | None = None
) -> list[Evaluation]:
    """Re-evaluates, in one scan, every dynamic cluster in force on ``day``, and freezes the
    static versions in force that were never evaluated; the frozen lists get their
    members' current home stores."""
    now = now or datetime.now(UTC)
    day = day_of(day, now)
    program = ProgramCache(ledger).current()
    if not program.clusters:
        return []
    trails = trails_of(ledger, program.clusters)
    due = {
        code: version
        for code, cluster in sorted(program.clusters.items())
        if (version := version_on(cluster, day, now)) is not None
        and version.number not in trails[code].frozen
    }
    members, homes = judge(ledger, program, day, due)
    evaluations = [
        keep(ledger, trails[code], version, members[code], day, now, by)
        for code, version in due.items()
    ]
    refresh_home_stores(ledger, [c for c in program.clusters if c not in due], homes)
    return evaluations


def evaluate_if_static(ledger: Ledger, cluster: Cluster, now: datetime, by: str) -> None:
    """Freezes the members of a static cluster's latest version when it is in force now
    (one that takes effect later is frozen by the first evaluation after)."""
    latest = cluster.current
    if latest.terms.membership == MembershipKind.STATIC and latest.effective_from <= now:
        evaluate_cluster(ledger, cluster.code, today(now), by, now)


def in_force(cluster: Cluster, day: date, now: datetime) -> ClusterVersion:
    version = version_on(cluster, day, now)
    if version is None:
        raise ClusterNotInForce(
            f"cluster {cluster.code!r} has no version in force on {day.isoformat()}",
            cluster=cluster.code,
            day=day.isoformat(),
        )
    return version


def trails_of(ledger: Ledger, codes: Iterable[str]) -> dict[str, ClusterMembership]:
    """Each cluster's evaluation trail (a new one for a cluster never evaluated)."""
    wanted = {code: ClusterMembership.create_id(code) for code in codes}
    found = ledger.load_all(wanted.values())
    trails = {}
    for code, stream in wanted.items():
        trail = found.get(stream)
        trails[code] = (
            trail if isinstance(trail, ClusterMembership) else ClusterMembership.start(code)
        )
    return trails


def judge(
    ledger: Ledger, program: Program, day: date, versions: Mapping[str, ClusterVersion]
) -> tuple[dict[str, Members], Members]:
    """The members of each cluster version on ``day``, and every judged customer's home
    store: one scan of the registered customers, behaviour across all their accounts."""
    members: dict[str, Members] = {code: {} for code in versions}
    homes: Members = {}
    for candidate in candidates(ledger, sorted(program.campaigns)):
        person = candidate.customer
        homes[person.id] = person.home_store
        for code, version in versions.items():
            if candidate.meets(version.terms.criteria, day):
                members[code][person.id] = person.home_store
    return members, homes


def keep(
    ledger: Ledger,
    trail: ClusterMembership,
    version: ClusterVersion,
    members: Members,
    day: date,
    now: datetime,
    by: str,
) -> Evaluation:
    """Replaces the cluster's members and records the evaluation: rows and event together,
    or neither (but for a failed commit after the append, which the next evaluation of a
    dynamic cluster repairs)."""
    settings = ledger.settings
    with ledger.ledger_recorder.datastore.transaction(commit=True) as curs:
        before = replace_members(curs, settings, trail.cluster, members)
        evaluation = Evaluation(
            cluster=trail.cluster,
            version=version.number,
            membership=version.terms.membership,
            evaluated_on=day,
            evaluated_at=now,
            size=len(members),
            joined=len(members.keys() - before),
            departed=len(before - members.keys()),
            members_digest=members_digest(members),
            by=by,
        )
        curs.execute(
            SQL(RECORD).format(evaluations=evaluations_table(settings)),
            msgspec.structs.asdict(evaluation),
        )
        record(ledger, trail, evaluation)
    return evaluation


def replace_members(
    curs: Cursor[DictRow], settings: Settings, cluster: str, members: Members
) -> set[UUID]:
    """Writes ``members`` as the cluster's; returns the members it had before."""
    table = members_table(settings)
    before = {
        row["customer_id"] for row in curs.execute(SQL(REPLACE).format(members=table), (cluster,))
    }
    curs.execute(
        SQL(INSERT).format(members=table), (cluster, list(members), list(members.values()))
    )
    return before


def record(ledger: Ledger, trail: ClusterMembership, evaluation: Evaluation) -> None:
    trail.record(
        version=evaluation.version,
        membership=evaluation.membership,
        evaluated_on=evaluation.evaluated_on,
        evaluated_at=evaluation.evaluated_at,
        size=evaluation.size,
        joined=evaluation.joined,
        departed=evaluation.departed,
        members_digest=evaluation.members_digest,
        by=evaluation.by,
    )
    try:
        ledger.save(trail)
    except IntegrityError:
        raise ConcurrentUpdate(
            f"cluster {trail.cluster!r} was being evaluated meanwhile; retry"
        ) from None


def refresh_home_stores(ledger: Ledger, clusters: list[str], homes: Members) -> None:
    """Gives the members of ``clusters`` their current home stores (a customer moved to
    another store is seen by that store's managers, and no longer by the old one's)."""
    if not clusters:
        return
    statement = SQL(REFRESH_HOMES).format(members=members_table(ledger.settings))
    ledger.execute(statement, (list(homes), list(homes.values()), clusters))
