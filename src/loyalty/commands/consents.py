"""Consents: recording them with their policy and evidence, the policy texts, the contacts
made, and the compliance officers' sample checks.

A sample check draws a reproducible random sample of registered customers (the same seed
over the same log draws the same customers), shows each one's consent trail with its
evidence and contacts, and flags what a regulator would ask about:

- ``no_evidence``: a consent with no evidence at all;
- ``no_policy``: a consent given without the version of the policy text shown;
- ``before_policy``: a consent dated before that policy version was published;
- ``contact_without_consent``: a contact for a purpose and channel never consented to
  (or withdrawn long before);
- ``withdrawal_not_honoured``: a contact later than the withdrawal delay after a
  withdrawal (``LOYALTY_WITHDRAWAL_DELAY_H``).

The report is recorded as an event of its own: who ran it, its parameters and the SHA-256
of its result.
"""

from __future__ import annotations

import hashlib
import html
import random
from datetime import datetime, timedelta
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, event
from psycopg.sql import SQL, Identifier

from loyalty.commands.admin import load_card
from loyalty.commands.customers import customer_of
from loyalty.commands.ledger import Ledger
from loyalty.domain import ids
from loyalty.domain.consent import (
    Channel,
    Consent,
    ConsentSource,
    Contact,
    Evidence,
    PolicyRef,
    PolicyText,
    PrivacyPolicy,
    Purpose,
)
from loyalty.domain.customer import Customer
from loyalty.domain.errors import InvalidProgram, NotFoundError
from loyalty.domain.translations import LOCALE

MAX_SAMPLE = 10_000


class UnknownPolicy(NotFoundError):
    code = "unknown_policy"


class ConsentChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A consent given or withdrawn, as an app, a till, an operator or an import sends it."""

    purpose: Purpose
    channel: Channel
    granted: bool
    source: ConsentSource
    source_id: str | None = None
    """Default: the caller."""
    policy_version: int | None = None
    locale: str = "it"
    evidence: Evidence = Evidence()
    at: datetime | None = None
    """Only for imports (a consent collected earlier); otherwise now."""


class ContactMade(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    purpose: Purpose
    channel: Channel
    reference: str
    at: datetime | None = None


class SampleRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    size: int
    seed: int
    purpose: Purpose | None = None
    start: datetime | None = msgspec.field(default=None, name="from")
    end: datetime | None = msgspec.field(default=None, name="to")


class Anomaly(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    at: datetime
    detail: str


class CustomerTrail(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: UUID
    cards: tuple[str, ...]
    erased: bool
    consents: tuple[Consent, ...]
    contacts: tuple[Contact, ...]
    anomalies: tuple[Anomaly, ...]


class SampleReport(msgspec.Struct, frozen=True, kw_only=True):
    request: SampleRequest
    population: int
    customers: tuple[CustomerTrail, ...]
    anomalies: int
    withdrawal_delay_hours: int
    digest: str
    """SHA-256 of everything above (recorded with the check)."""


class ConsentChecks(Aggregate):
    """The sample checks run: who, with what parameters, and what they found."""

    class Started(Aggregate.Created):
        pass

    class SampleChecked(Aggregate.Event):
        by: str
        request: SampleRequest
        population: int
        anomalies: int
        digest: str

    @staticmethod
    def create_id() -> UUID:
        return ids.CONSENT_CHECKS_ID

    @event(Started)
    def __init__(self) -> None:
        self.checks = 0

    @event(SampleChecked)
    def record(
        self, by: str, request: SampleRequest, population: int, anomalies: int, digest: str
    ) -> None:
        self.checks += 1


def policy_of(ledger: Ledger) -> PrivacyPolicy:
    found = ledger.load_all([ids.PRIVACY_POLICY_ID]).get(ids.PRIVACY_POLICY_ID)
    return found if isinstance(found, PrivacyPolicy) else PrivacyPolicy()


def publish_policy(ledger: Ledger, locale: str, text: str, at: datetime, by: str) -> PolicyText:
    if not LOCALE.fullmatch(locale):
        raise InvalidProgram(f"{locale!r} is not a language tag like 'it' or 'it-CH'")
    policy = policy_of(ledger)
    published = policy.publish(locale, text, at, by)
    ledger.save(policy)
    return published


def consent_from(ledger: Ledger, change: ConsentChange, now: datetime, caller: str) -> Consent:
    """The consent to record: its policy reference resolved (and checked), its time now
    unless it is an import of an earlier one."""
    if change.at is not None and change.source is not ConsentSource.IMPORT:
        raise InvalidProgram("only an import gives a consent's time", field="at")
    if change.at is not None and change.at > now:
        raise InvalidProgram("a consent cannot be given in the future", field="at")
    policy = None
    if change.policy_version is not None:
        text = policy_of(ledger).text(change.policy_version, change.locale)
        if text is None:
            raise UnknownPolicy(
                f"no policy version {change.policy_version} in {change.locale!r}",
                field="policy_version",
            )
        policy = PolicyRef(version=text.version, locale=text.locale, sha256=text.sha256)
    return Consent(
        purpose=change.purpose,
        channel=change.channel,
        granted=change.granted,
        at=change.at or now,
        source=change.source,
        source_id=change.source_id or caller,
        policy=policy,
        evidence=change.evidence,
    )


def record_contact(ledger: Ledger, card: str, contact: Contact) -> Customer:
    customer = customer_of(ledger, load_card(ledger, card))
    customer.record_contact(contact)
    ledger.save(customer)
    return customer


def current_consents(customer: Customer) -> list[Consent]:
    """The last decision for each purpose and channel: the consent state now."""
    latest: dict[tuple[Purpose, Channel], Consent] = {}
    for consent in sorted(customer.consents, key=lambda c: c.at):
        latest[(consent.purpose, consent.channel)] = consent
    return [latest[key] for key in sorted(latest)]


def registered_customers(ledger: Ledger) -> list[UUID]:
    """Every registered customer's id, in a stable order."""
    query = SQL(
        "SELECT originator_id FROM {}.ledger_events WHERE topic = %s AND originator_version = 1"
        " ORDER BY originator_id"
    ).format(Identifier(ledger.settings.pg_schema))
    topic = f"{Customer.Registered.__module__}:{Customer.Registered.__qualname__}"
    return [row[0] for row in ledger.query(query, (topic,))]


def anomalies_of(
    customer: Customer,
    policy: PrivacyPolicy,
    request: SampleRequest,
    delay: timedelta,
) -> list[Anomaly]:
    def within(at: datetime) -> bool:
        return (request.start is None or at >= request.start) and (
            request.end is None or at < request.end
        )

    found = []
    for consent in customer.consents:
        if not within(consent.at) or request.purpose not in (None, consent.purpose):
            continue
        subject = (
            f"{consent.purpose}/{consent.channel} {'granted' if consent.granted else 'withdrawn'}"
        )
        if consent.evidence.is_empty():
            found.append(
                Anomaly(code="no_evidence", at=consent.at, detail=f"{subject}: no evidence")
            )
        if consent.granted and consent.policy is None:
            found.append(
                Anomaly(code="no_policy", at=consent.at, detail=f"{subject}: no policy version")
            )
        if consent.policy is not None:
            text = policy.text(consent.policy.version, consent.policy.locale)
            if text is None or consent.at < text.published_at:
                found.append(
                    Anomaly(
                        code="before_policy",
                        at=consent.at,
                        detail=f"{subject} before policy version {consent.policy.version}"
                        f" ({consent.policy.locale}) was published",
                    )
                )
    for contact in customer.contacts:
        if not within(contact.at) or request.purpose not in (None, contact.purpose):
            continue
        decision = customer.consent_at(contact.purpose, contact.channel, contact.at)
        subject = f"{contact.purpose} contact by {contact.channel} ({contact.reference})"
        if decision is None:
            found.append(
                Anomaly(
                    code="contact_without_consent",
                    at=contact.at,
                    detail=f"{subject}: never consented",
                )
            )
        elif not decision.granted and contact.at > decision.at + delay:
            found.append(
                Anomaly(
                    code="withdrawal_not_honoured",
                    at=contact.at,
                    detail=f"{subject}: withdrawn on {decision.at.isoformat()}",
                )
            )
    return sorted(found, key=lambda a: (a.at, a.code))


def sample_check(ledger: Ledger, request: SampleRequest, delay: timedelta, by: str) -> SampleReport:
    """Draws the sample, reports each customer's trail and anomalies, and records the check."""
    if not 1 <= request.size <= MAX_SAMPLE:
        raise InvalidProgram(f"a sample holds 1 to {MAX_SAMPLE:,} customers", field="size")
    population = registered_customers(ledger)
    drawn = sorted(
        random.Random(request.seed).sample(population, min(request.size, len(population)))
    )
    policy = policy_of(ledger)
    found = ledger.load_all(drawn)
    trails = []
    for customer_id in drawn:
        customer = found[customer_id]
        assert isinstance(customer, Customer)
        trails.append(
            CustomerTrail(
                customer_id=customer.id,
                cards=tuple(customer.cards),
                erased=customer.erased,
                consents=tuple(customer.consents),
                contacts=tuple(customer.contacts),
                anomalies=tuple(anomalies_of(customer, policy, request, delay)),
            )
        )
    anomalies = sum(len(t.anomalies) for t in trails)
    hours = int(delay.total_seconds() // 3600)
    body = (request, len(population), tuple(trails), anomalies, hours)
    digest = hashlib.sha256(msgspec.json.encode(body)).hexdigest()
    checks = ledger.load_all([ids.CONSENT_CHECKS_ID]).get(ids.CONSENT_CHECKS_ID)
    if not isinstance(checks, ConsentChecks):
        checks = ConsentChecks()
    checks.record(
        by=by, request=request, population=len(population), anomalies=anomalies, digest=digest
    )
    ledger.save(checks)
    return SampleReport(
        request=request,
        population=len(population),
        customers=tuple(trails),
        anomalies=anomalies,
        withdrawal_delay_hours=hours,
        digest=digest,
    )


def report_html(report: SampleReport) -> str:
    """The report for people: one section per customer, anomalies first."""
    request = report.request
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Consent sample check</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:.2em .5em}.bad{color:#a00}</style></head><body>",
        "<h1>Consent sample check</h1>",
        f"<p>Seed {request.seed}, {len(report.customers)} of {report.population} customers"
        f"{', purpose ' + html.escape(request.purpose) if request.purpose else ''}"
        f"; withdrawal delay {report.withdrawal_delay_hours} h; "
        f"<b>{report.anomalies} anomalies</b>. SHA-256 <code>{report.digest}</code></p>",
    ]
    for trail in report.customers:
        parts.append(
            f"<h2>Customer {trail.customer_id} (cards {html.escape(', '.join(trail.cards))})"
            f"{' — erased' if trail.erased else ''}</h2>"
        )
        parts.extend(
            f"<p class='bad'>{html.escape(a.code)} at {a.at.isoformat()}:"
            f" {html.escape(a.detail)}</p>"
            for a in trail.anomalies
        )
        parts.append(
            "<table><tr><th>at</th><th>purpose</th><th>channel</th><th>decision</th>"
            "<th>source</th><th>policy</th><th>evidence</th></tr>"
        )
        for consent in trail.consents:
            policy = (
                f"v{consent.policy.version} {consent.policy.locale} {consent.policy.sha256[:12]}"
                if consent.policy
                else "—"
            )
            evidence = ", ".join(
                f"{name} {value}"
                for name, value in msgspec.structs.asdict(consent.evidence).items()
                if value
            )
            parts.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(cell))}</td>"
                    for cell in (
                        consent.at.isoformat(),
                        consent.purpose,
                        consent.channel,
                        "granted" if consent.granted else "withdrawn",
                        f"{consent.source} {consent.source_id}",
                        policy,
                        evidence or "—",
                    )
                )
                + "</tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def contact_from(made: ContactMade, now: datetime) -> Contact:
    if made.at is not None and made.at > now:
        raise InvalidProgram("a contact cannot be in the future", field="at")
    return Contact(
        purpose=made.purpose, channel=made.channel, at=made.at or now, reference=made.reference
    )
