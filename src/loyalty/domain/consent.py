"""Consents and their evidence, the privacy policy they refer to, and the contacts made.

A consent is given or withdrawn for one purpose over one channel, at a time, through a
source (the customer's app, a store's till, an operator, an import) with its identity,
referring to the version of the policy text shown (its SHA-256 is recorded with it) and
carrying evidence (the till and receipt, the request id, a document reference). Contacts
made with a customer (a marketing e-mail, an SMS) are recorded too, so that a sample
check can see a contact made without consent, or after a withdrawal.

The policy texts are versioned, one text per locale per version, in one stream.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, event

from loyalty.domain import ids
from loyalty.domain.errors import InvalidProgram

Ref = Annotated[str, msgspec.Meta(max_length=128)]


class Purpose(StrEnum):
    SERVICE = "service"
    MARKETING = "marketing"
    PROFILING = "profiling"
    THIRD_PARTY = "third_party"


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    LETTER = "letter"
    RECEIPT = "receipt"


class ConsentSource(StrEnum):
    CUSTOMER_APP = "customer_app"
    STORE_TERMINAL = "store_terminal"
    OPERATOR = "operator"
    IMPORT = "import"


class Evidence(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What proves the consent was given: at least one of these, or none (an anomaly)."""

    terminal: Ref | None = None
    receipt: Ref | None = None
    request_id: Ref | None = None
    document: Ref | None = None

    def is_empty(self) -> bool:
        return not (self.terminal or self.receipt or self.request_id or self.document)


class PolicyRef(msgspec.Struct, frozen=True, kw_only=True):
    """The policy text shown: its version, locale and SHA-256."""

    version: int
    locale: str
    sha256: str


class Consent(msgspec.Struct, frozen=True, kw_only=True):
    purpose: Purpose
    channel: Channel
    granted: bool
    at: datetime
    source: ConsentSource
    source_id: str
    """Who collected it: the app's client, the till, the operator, the import's file."""
    policy: PolicyRef | None = None
    evidence: Evidence = Evidence()


class Contact(msgspec.Struct, frozen=True, kw_only=True):
    """A message sent to a customer for a purpose over a channel."""

    purpose: Purpose
    channel: Channel
    at: datetime
    reference: str
    """The campaign, message or batch it belongs to."""


class PolicyText(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    locale: str
    sha256: str
    published_at: datetime
    text: str


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class PrivacyPolicy(Aggregate):
    class Started(Aggregate.Created):
        pass

    class Published(Aggregate.Event):
        text: PolicyText
        by: str

    @staticmethod
    def create_id() -> UUID:
        return ids.PRIVACY_POLICY_ID

    @event(Started)
    def __init__(self) -> None:
        self.texts: dict[tuple[int, str], PolicyText] = {}

    def latest_version(self) -> int:
        return max((version for version, _ in self.texts), default=0)

    def publish(self, locale: str, text: str, at: datetime, by: str) -> PolicyText:
        """A new version of the policy in ``locale`` (other locales keep theirs)."""
        if not text.strip():
            raise InvalidProgram("a policy needs a text", field="text")
        published = PolicyText(
            version=self.latest_version() + 1,
            locale=locale,
            sha256=text_digest(text),
            published_at=at,
            text=text,
        )
        self._publish(text=published, by=by)
        return published

    @event(Published)
    def _publish(self, text: PolicyText, by: str) -> None:
        self.texts[(text.version, text.locale)] = text

    def text(self, version: int, locale: str) -> PolicyText | None:
        return self.texts.get((version, locale))
