"""Managing clusters from the Backoffice API: define one, give it new criteria.

Each definition is a version in force from its ``effective_from`` (default now, never in
the past), as for promotions: a movement is always judged by the criteria in force at
its time.
"""

from __future__ import annotations

from datetime import datetime

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from loyalty.commands.apply import ClusterSpec
from loyalty.commands.ledger import Ledger
from loyalty.domain import ids
from loyalty.domain.cluster import Cluster, ClusterTerms
from loyalty.domain.errors import DuplicateCode, UnknownCluster


def load_cluster(ledger: Ledger, code: str) -> Cluster:
    try:
        cluster: Aggregate = ledger.repository.get(ids.cluster_id(code))
    except AggregateNotFoundError:
        raise UnknownCluster(f"no cluster has the code {code!r}", cluster=code) from None
    assert isinstance(cluster, Cluster)
    return cluster


def define_cluster(
    ledger: Ledger, spec: ClusterSpec, effective_from: datetime, now: datetime
) -> Cluster:
    if ledger.load_all([ids.cluster_id(spec.code)]):
        raise DuplicateCode(f"the cluster code {spec.code!r} is taken", field="code")
    cluster = Cluster.define(
        code=spec.code, terms=spec.terms, effective_from=effective_from, now=now
    )
    ledger.save(cluster)
    return cluster


def redefine_cluster(
    ledger: Ledger,
    cluster: Cluster,
    terms: ClusterTerms,
    effective_from: datetime,
    now: datetime,
) -> Cluster:
    """Makes ``terms`` the cluster's next version, in force from ``effective_from``."""
    cluster.redefine(terms, effective_from, now)
    ledger.save(cluster)
    return cluster
