"""Campaigns: which program governs a movement, by node depth and local validity dates."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec
import pytest

from loyalty.domain import ids
from loyalty.domain.campaign import (
    Campaign,
    CampaignTerms,
    CampaignView,
    campaign_for,
)
from loyalty.domain.errors import InvalidProgram

PATH = ("chain", "north", "s1", "t1")
DAY = date(2026, 6, 3)


def terms(*nodes: str, **changes: Any) -> CampaignTerms:
    changes.setdefault("starts_on", date(2026, 1, 1))
    return CampaignTerms(name="Club", nodes=nodes or ("chain",), **changes)


def view(code: str, *nodes: str, **changes: Any) -> CampaignView:
    return CampaignView(id=ids.campaign_id(code), code=code, terms=terms(*nodes, **changes))


def chosen(*campaigns: CampaignView, day: date = DAY, path: tuple[str, ...] = PATH) -> str | None:
    found = campaign_for(campaigns, path, day)
    return found.code if found else None


def test_the_campaign_on_the_deepest_node_wins() -> None:
    everywhere, north, store = view("all", "chain"), view("north", "north"), view("s1", "s1")

    assert chosen(everywhere, north, store) == "s1"
    assert chosen(everywhere, north) == "north"
    assert chosen(store, everywhere) == "s1"


def test_a_campaign_on_several_nodes_counts_its_deepest_node_on_the_path() -> None:
    wide = view("wide", "chain", "s1")
    regional = view("regional", "north")

    assert chosen(wide, regional) == "wide"


def test_between_campaigns_on_the_same_node_the_lower_code_wins() -> None:
    assert chosen(view("b-club", "north"), view("a-club", "north")) == "a-club"


def test_a_campaign_on_another_branch_does_not_cover_the_terminal() -> None:
    assert chosen(view("south", "south")) is None
    assert chosen(view("south", "south"), view("all", "chain")) == "all"


def test_validity_dates_are_inclusive_local_dates() -> None:
    june = view("june", starts_on=date(2026, 6, 1), ends_on=date(2026, 6, 30))

    assert chosen(june, day=date(2026, 6, 1)) == "june"
    assert chosen(june, day=date(2026, 6, 30)) == "june"
    assert chosen(june, day=date(2026, 5, 31)) is None
    assert chosen(june, day=date(2026, 7, 1)) is None


def test_a_more_specific_campaign_out_of_its_dates_gives_way() -> None:
    summer = view("summer", "s1", starts_on=date(2026, 7, 1))

    assert chosen(summer, view("all", "chain")) == "all"


def test_an_inactive_campaign_governs_nothing() -> None:
    assert chosen(view("off", "s1", active=False), view("all", "chain")) == "all"


def test_a_campaign_without_an_end_runs_on_and_on() -> None:
    assert chosen(view("all"), day=date(2099, 12, 31)) == "all"


def test_a_campaign_id_derives_from_its_code() -> None:
    assert Campaign.launch("club", terms()).id == ids.campaign_id("club")


@pytest.mark.parametrize(
    "bad",
    [
        {"name": " "},
        {"nodes": ()},
        {"starts_on": date(2026, 6, 2), "ends_on": date(2026, 6, 1)},
    ],
)
def test_a_campaign_that_cannot_run_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidProgram):
        Campaign.launch("club", msgspec.structs.replace(terms(), **bad))


def test_a_campaign_may_run_a_single_day() -> None:
    one_day = terms(starts_on=DAY, ends_on=DAY)

    assert Campaign.launch("club", one_day).terms.runs_on(DAY)


def test_revising_with_the_same_terms_records_nothing() -> None:
    campaign = Campaign.launch("club", terms())

    campaign.revise(terms())
    campaign.revise(terms(credits=True))

    assert campaign.version == 2
    assert campaign.terms.credits


def test_an_invalid_revision_is_refused() -> None:
    campaign = Campaign.launch("club", terms())

    with pytest.raises(InvalidProgram):
        campaign.revise(msgspec.structs.replace(terms(), ends_on=date(2025, 12, 31)))
    assert campaign.terms == terms()
