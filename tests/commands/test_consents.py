"""Consent sample checks: a reproducible sample of customers, each consent trail with its
evidence, and the anomalies a compliance officer must see."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from loyalty.bootstrap import Services
from loyalty.cli import main
from loyalty.commands.consents import (
    ConsentChecks,
    SampleRequest,
    publish_policy,
    record_contact,
    report_html,
    sample_check,
)
from loyalty.commands.customers import record_consent, register
from loyalty.domain import ids
from loyalty.domain.consent import (
    Channel,
    Consent,
    ConsentSource,
    Contact,
    Evidence,
    PolicyRef,
    Purpose,
)
from loyalty.domain.customer import Profile
from loyalty.settings import Settings
from tests.builders import Clock, program
from tests.test_cli import use_database

DELAY = timedelta(hours=48)
CARDS = tuple(f"K{n}" for n in range(1, 6))


def consent(at: datetime, granted: bool = True, **extra: object) -> Consent:
    fields: dict[str, object] = {
        "purpose": Purpose.MARKETING,
        "channel": Channel.EMAIL,
        "granted": granted,
        "at": at,
        "source": ConsentSource.CUSTOMER_APP,
        "source_id": "client:app",
        "evidence": Evidence(request_id="req-1"),
        **extra,
    }
    return Consent(**fields)  # type: ignore[arg-type]


def contact(at: datetime, channel: Channel = Channel.EMAIL) -> Contact:
    return Contact(purpose=Purpose.MARKETING, channel=channel, at=at, reference="june-newsletter")


@pytest.fixture
def trails(services: Services, clock: Clock) -> Services:
    """Five customers: one in order and one per kind of anomaly."""
    services.applier.apply(program(cards=CARDS))
    policy = publish_policy(services.ledger, "it", "Informativa v1", clock.now, "operator:dpo")
    shown = PolicyRef(version=policy.version, locale="it", sha256=policy.sha256)
    for number, card in enumerate(CARDS, 1):
        register(services.ledger, card, Profile(last_name=f"Rossi {number}"), date(2026, 5, 1))
    now = clock.advance(hours=1)
    ledger = services.ledger
    record_consent(ledger, "K1", consent(now, policy=shown))
    record_contact(ledger, "K1", contact(now + timedelta(days=1)))
    record_consent(ledger, "K2", consent(now, evidence=Evidence()))
    record_consent(ledger, "K3", consent(now - timedelta(days=30), policy=shown))
    record_contact(ledger, "K4", contact(now, channel=Channel.SMS))
    record_consent(ledger, "K5", consent(now, policy=shown))
    record_consent(ledger, "K5", consent(now + timedelta(hours=2), granted=False, policy=shown))
    record_contact(ledger, "K5", contact(now + timedelta(hours=3)))
    record_contact(ledger, "K5", contact(now + timedelta(days=3)))
    return services


def codes_by_card(services: Services, request: SampleRequest) -> dict[str, list[str]]:
    report = sample_check(services.ledger, request, DELAY, "operator:dpo")
    return {t.cards[0]: [a.code for a in t.anomalies] for t in report.customers}


def test_every_kind_of_anomaly_is_flagged_and_nothing_else(trails: Services) -> None:
    found = codes_by_card(trails, SampleRequest(size=5, seed=1))

    assert found == {
        "K1": [],
        "K2": ["no_evidence", "no_policy"],
        "K3": ["before_policy"],
        "K4": ["contact_without_consent"],
        "K5": ["withdrawal_not_honoured"],
    }


def test_the_same_seed_draws_the_same_sample_and_digest(trails: Services) -> None:
    request = SampleRequest(size=2, seed=42)

    first = sample_check(trails.ledger, request, DELAY, "operator:dpo")
    again = sample_check(trails.ledger, request, DELAY, "operator:dpo")
    samples = {
        tuple(
            t.customer_id
            for t in sample_check(
                trails.ledger, SampleRequest(size=2, seed=s), DELAY, "x"
            ).customers
        )
        for s in range(8)
    }

    assert [t.customer_id for t in first.customers] == [t.customer_id for t in again.customers]
    assert first.digest == again.digest and first.population == 5
    assert len(samples) > 1


def test_a_check_is_recorded_with_who_its_parameters_and_digest(trails: Services) -> None:
    report = sample_check(trails.ledger, SampleRequest(size=3, seed=7), DELAY, "operator:dpo")

    checks = trails.ledger.repository.get(ids.CONSENT_CHECKS_ID)
    (recorded,) = [
        e
        for e in trails.ledger.events.get(ids.CONSENT_CHECKS_ID)
        if isinstance(e, ConsentChecks.SampleChecked)
    ]
    assert isinstance(checks, ConsentChecks) and checks.checks == 1
    assert (recorded.by, recorded.request.seed, recorded.digest) == (
        "operator:dpo",
        7,
        report.digest,
    )


def test_a_purpose_and_an_interval_narrow_what_is_checked(trails: Services, clock: Clock) -> None:
    later = SampleRequest(size=5, seed=1, start=clock.now + timedelta(days=2))
    profiling = SampleRequest(size=5, seed=1, purpose=Purpose.PROFILING)

    assert codes_by_card(trails, later)["K5"] == ["withdrawal_not_honoured"]
    assert all(codes == [] for card, codes in codes_by_card(trails, later).items() if card != "K5")
    assert all(codes == [] for codes in codes_by_card(trails, profiling).values())


def test_the_report_reads_as_html_for_people(trails: Services) -> None:
    report = sample_check(trails.ledger, SampleRequest(size=5, seed=1), DELAY, "operator:dpo")

    page = report_html(report)

    assert page.startswith("<!doctype html>")
    assert "withdrawal_not_honoured" in page and report.digest in page
    assert "<b>5 anomalies</b>" in page


def test_privacy_sample_writes_json_and_html(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trails: Services,
    settings: Settings,
) -> None:
    use_database(monkeypatch, settings)
    monkeypatch.setenv("LOYALTY_MASTER_KEY", settings.master_key)
    page = tmp_path / "sample.html"

    assert main(["privacy", "sample", "--size", "5", "--seed", "1", "--html", str(page)]) == 0

    assert '"anomalies": 5' in capsys.readouterr().out
    assert "before_policy" in page.read_text()
