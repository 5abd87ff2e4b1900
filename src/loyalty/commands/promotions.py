"""Managing promotions from the Backoffice API: create, version, activate, deactivate.
Each change is a new version in force from its ``effective_from`` (default now, never
in the past): movements are always judged by the versions in force at their time."""

from __future__ import annotations

from datetime import datetime

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from loyalty.commands.apply import PromotionSpec, check_promotion_fits
from loyalty.commands.ledger import Ledger
from loyalty.domain import ids
from loyalty.domain.campaign import Campaign
from loyalty.domain.cluster import Cluster
from loyalty.domain.errors import DuplicateCode, InvalidProgram, UnknownCampaign, UnknownPromotion
from loyalty.domain.promotion import Promotion, PromotionTerms


def load_promotion(ledger: Ledger, code: str) -> Promotion:
    try:
        promotion: Aggregate = ledger.repository.get(ids.promotion_id(code))
    except AggregateNotFoundError:
        raise UnknownPromotion(f"no promotion has the code {code!r}", promotion=code) from None
    assert isinstance(promotion, Promotion)
    return promotion


def check_references(ledger: Ledger, spec: PromotionSpec) -> Campaign:
    """The promotion's campaign; refuses a missing campaign or cluster, or credits that the
    campaign does not have."""
    found = ledger.load_all([ids.campaign_id(spec.campaign)]).get(ids.campaign_id(spec.campaign))
    if not isinstance(found, Campaign):
        raise UnknownCampaign(f"no campaign has the code {spec.campaign!r}", field="campaign")
    check_promotion_fits(spec, found)
    cluster = spec.terms.cluster
    if cluster and not isinstance(
        ledger.load_all([ids.cluster_id(cluster)]).get(ids.cluster_id(cluster)), Cluster
    ):
        raise InvalidProgram(f"no cluster has the code {cluster!r}", field="terms.cluster")
    return found


def create_promotion(
    ledger: Ledger, spec: PromotionSpec, effective_from: datetime, now: datetime
) -> Promotion:
    campaign = check_references(ledger, spec)
    if ledger.load_all([ids.promotion_id(spec.code)]):
        raise DuplicateCode(f"the promotion code {spec.code!r} is taken", field="code")
    promotion = Promotion.create(
        campaign_id=campaign.id,
        code=spec.code,
        terms=spec.terms,
        effective_from=effective_from,
        now=now,
    )
    ledger.save(promotion)
    return promotion


def revise_promotion(
    ledger: Ledger,
    promotion: Promotion,
    terms: PromotionTerms,
    effective_from: datetime,
    now: datetime,
) -> Promotion:
    """Makes ``terms`` the promotion's next version, in force from ``effective_from``."""
    campaign = ledger.load_all([promotion.campaign_id]).get(promotion.campaign_id)
    assert isinstance(campaign, Campaign)
    check_references(
        ledger, PromotionSpec(code=promotion.code, campaign=campaign.code, terms=terms)
    )
    promotion.revise(terms, effective_from, now)
    ledger.save(promotion)
    return promotion
