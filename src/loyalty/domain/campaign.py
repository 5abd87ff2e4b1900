"""Campaigns: loyalty programs, each with its currencies and the network nodes it runs on.

Invariants:
- a campaign's code is unique; it runs on at least one node, each covering its subtree;
- it earns points, and credits only when ``credits`` is on;
- its validity is a range of local dates (inclusive) at the store where a movement happens;
- changed from the Backoffice, it keeps the days that have passed: a late receipt of one of
  them is judged as it would have been then (:func:`check_past_kept`).

When several campaigns cover a terminal on a date, the one whose node is deepest in the
tree (the most specific) wins, then the lower code: see :func:`campaign_for`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, event

from loyalty.domain import ids
from loyalty.domain.errors import InvalidProgram


class CampaignTerms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    nodes: tuple[str, ...]
    starts_on: date
    ends_on: date | None = None
    credits: bool = False
    active: bool = True

    def runs_on(self, day: date) -> bool:
        return (
            self.active and self.starts_on <= day and (self.ends_on is None or day <= self.ends_on)
        )


class Campaign(Aggregate):
    class Launched(Aggregate.Created):
        code: str
        terms: CampaignTerms

    class Revised(Aggregate.Event):
        terms: CampaignTerms

    @staticmethod
    def create_id(code: str) -> UUID:
        return ids.campaign_id(code)

    @classmethod
    def launch(cls, code: str, terms: CampaignTerms) -> Campaign:
        if not code.strip():
            raise InvalidProgram("a campaign needs a code", field="code")
        check_campaign_terms(terms)
        return cls(code=code, terms=terms)

    @event(Launched)
    def __init__(self, code: str, terms: CampaignTerms) -> None:
        self.code = code
        self.terms = terms

    def revise(self, terms: CampaignTerms) -> None:
        check_campaign_terms(terms)
        if terms != self.terms:
            self._revise(terms=terms)

    @event(Revised)
    def _revise(self, terms: CampaignTerms) -> None:
        self.terms = terms


def check_campaign_terms(terms: CampaignTerms) -> None:
    if not terms.name.strip():
        raise InvalidProgram("a campaign needs a name")
    if not terms.nodes:
        raise InvalidProgram("a campaign runs on at least one network node")
    if terms.ends_on and terms.ends_on < terms.starts_on:
        raise InvalidProgram("a campaign cannot end before it starts")


def check_past_kept(before: CampaignTerms | None, after: CampaignTerms, today: date) -> None:
    """Refuses a change that would alter whether the campaign ran on a day before ``today``
    (a late receipt of that day must find the campaign it would have found then): a new
    campaign starts today or later, a start moves only while both dates are still to come,
    an end is set on today or later, and a campaign that has ended stays ended."""
    if before is None or after.starts_on != before.starts_on:
        earliest = min(after.starts_on, before.starts_on) if before else after.starts_on
        if earliest < today:
            raise InvalidProgram(
                f"a campaign's start can be set only on a day still to come, from "
                f"{today.isoformat()} (not {earliest.isoformat()})",
                field="terms.starts_on",
            )
    if before is not None and after.ends_on != before.ends_on:
        for end in (before.ends_on, after.ends_on):
            if end is not None and end < today:
                raise InvalidProgram(
                    f"a campaign's end can be set only on {today.isoformat()} or later, and "
                    f"a campaign that ended ({end.isoformat()}) stays ended",
                    field="terms.ends_on",
                )


class CampaignView(msgspec.Struct, frozen=True, kw_only=True):
    """A campaign as the rule engine needs it."""

    id: UUID
    code: str
    terms: CampaignTerms


def campaign_for(
    campaigns: Iterable[CampaignView], path: tuple[str, ...], day: date
) -> CampaignView | None:
    """The campaign that governs a movement at ``path`` (root..terminal) on local ``day``."""
    depth = {code: level for level, code in enumerate(path)}
    candidates = [
        (max(depth[node] for node in c.terms.nodes if node in depth), c.code, c)
        for c in campaigns
        if c.terms.runs_on(day) and any(node in depth for node in c.terms.nodes)
    ]
    if not candidates:
        return None
    candidates.sort(key=lambda item: (-item[0], item[1]))
    return candidates[0][2]
