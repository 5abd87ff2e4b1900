"""Managing campaigns from the Backoffice API: launch one, change its terms, end it.

A campaign is not versioned by time as promotions are: a change is one ``Revised`` event
in force at once. So that no change rewrites the past, the days before today keep the
coverage they had (:func:`loyalty.domain.campaign.check_past_kept`); ending a campaign
sets its last day, today or later, and never reaches back.
"""

from __future__ import annotations

from datetime import date

import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from loyalty.commands.apply import CampaignSpec
from loyalty.commands.ledger import Ledger
from loyalty.domain import ids
from loyalty.domain.campaign import Campaign, CampaignTerms, check_past_kept
from loyalty.domain.errors import DuplicateCode, InvalidProgram, UnknownCampaign
from loyalty.domain.network import Network


def load_campaign(ledger: Ledger, code: str) -> Campaign:
    try:
        campaign: Aggregate = ledger.repository.get(ids.campaign_id(code))
    except AggregateNotFoundError:
        raise UnknownCampaign(f"no campaign has the code {code!r}", campaign=code) from None
    assert isinstance(campaign, Campaign)
    return campaign


def check_nodes(network: Network, terms: CampaignTerms) -> None:
    """Refuses nodes that do not exist (as not found)."""
    for code in terms.nodes:
        network.node(code)


def launch_campaign(ledger: Ledger, network: Network, spec: CampaignSpec, today: date) -> Campaign:
    check_nodes(network, spec.terms)
    if ledger.load_all([ids.campaign_id(spec.code)]):
        raise DuplicateCode(f"the campaign code {spec.code!r} is taken", field="code")
    check_past_kept(None, spec.terms, today)
    campaign = Campaign.launch(spec.code, spec.terms)
    ledger.save(campaign)
    return campaign


def revise_campaign(
    ledger: Ledger, network: Network, campaign: Campaign, terms: CampaignTerms, today: date
) -> Campaign:
    """Gives the campaign ``terms`` from now on (nothing is written if they are its own)."""
    check_nodes(network, terms)
    check_past_kept(campaign.terms, terms, today)
    campaign.revise(terms)
    ledger.save(campaign)
    return campaign


def end_campaign(
    ledger: Ledger, network: Network, campaign: Campaign, last_day: date, today: date
) -> Campaign:
    """Makes ``last_day`` (today or later) the last day the campaign runs; an end already
    set earlier stays (the same day again changes nothing)."""
    if campaign.terms.ends_on is not None and campaign.terms.ends_on < last_day:
        raise InvalidProgram(
            f"campaign {campaign.code!r} already ends on {campaign.terms.ends_on.isoformat()}",
            field="ends_on",
        )
    terms = msgspec.structs.replace(campaign.terms, ends_on=last_day)
    return revise_campaign(ledger, network, campaign, terms, today)
