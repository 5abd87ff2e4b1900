"""A cluster's membership trail: static versions are evaluated once, dynamic ones as
often as asked; and the membership kind added to stored cluster terms."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any
from uuid import uuid4

import msgspec
import pytest
from eventsourcing.persistence import JSONTranscoder

from loyalty.adapters.eventstore import MsgspecMapper
from loyalty.domain.cluster import City, Cluster, ClusterTerms, MembershipKind
from loyalty.domain.errors import ClusterFrozen
from loyalty.domain.membership import ClusterMembership, members_digest
from tests.builders import START

TODAY = date(2026, 6, 1)


def evaluation(version: int, kind: MembershipKind, **extra: Any) -> dict[str, Any]:
    return {
        "version": version,
        "membership": kind,
        "evaluated_on": TODAY,
        "evaluated_at": START,
        "size": 0,
        "joined": 0,
        "departed": 0,
        "members_digest": members_digest([]),
        "by": "test",
        **extra,
    }


def test_a_static_version_is_evaluated_only_once() -> None:
    trail = ClusterMembership.start("first-buyers")
    trail.record(**evaluation(1, MembershipKind.STATIC))

    with pytest.raises(ClusterFrozen) as refused:
        trail.record(**evaluation(1, MembershipKind.STATIC, evaluated_on=TODAY + timedelta(1)))

    assert refused.value.context == {
        "cluster": "first-buyers",
        "version": 1,
        "evaluated_on": "2026-06-01",
    }


def test_a_new_static_version_is_evaluated_once_more() -> None:
    trail = ClusterMembership.start("first-buyers")
    trail.record(**evaluation(1, MembershipKind.STATIC))

    trail.record(**evaluation(2, MembershipKind.STATIC))

    assert set(trail.frozen) == {1, 2}


def test_a_dynamic_version_is_evaluated_as_often_as_asked() -> None:
    trail = ClusterMembership.start("buyers")

    for day in range(3):
        trail.record(**evaluation(1, MembershipKind.DYNAMIC, evaluated_on=TODAY + timedelta(day)))

    assert len(trail.collect_events()) == 4
    assert trail.frozen == {}


def test_a_trail_rebuilt_from_stored_events_remembers_the_frozen_versions() -> None:
    mapper = MsgspecMapper(transcoder=JSONTranscoder())
    trail = ClusterMembership.start("first-buyers")
    trail.record(**evaluation(1, MembershipKind.STATIC))

    rebuilt = None
    for event in trail.collect_events():
        rebuilt = mapper.to_domain_event(mapper.to_stored_event(event)).mutate(rebuilt)

    assert isinstance(rebuilt, ClusterMembership)
    assert rebuilt.frozen == {1: TODAY}


def test_the_members_digest_does_not_depend_on_their_order() -> None:
    members = [uuid4() for _ in range(5)]

    assert members_digest(members) == members_digest(reversed(members))
    assert members_digest(members) != members_digest(members[1:])


def test_cluster_terms_stored_before_the_membership_kind_read_as_dynamic() -> None:
    mapper = MsgspecMapper(transcoder=JSONTranscoder())
    terms = ClusterTerms(name="Milanesi", criteria=City(values=("Milano",)))
    (defined,) = Cluster.define(
        code="milanesi", terms=terms, effective_from=START, now=START
    ).collect_events()
    stored = mapper.to_stored_event(defined)
    state = msgspec.json.decode(stored.state)
    del state["terms"]["membership"]
    old = dataclasses.replace(stored, state=msgspec.json.encode(state))

    restored = mapper.to_domain_event(old).mutate(None)

    assert isinstance(restored, Cluster)
    assert restored.current.terms == terms
    assert restored.current.terms.membership is MembershipKind.DYNAMIC
