"""Customers (card holders): a profile, cards and, per campaign, an account.

Every personal field lives in :class:`Profile`, and nowhere else, so that the privacy
layer can encrypt exactly that part. A card starts anonymous, as a customer without a
profile; registering it adds the profile to that same customer, so the points it earned
stay where they are.

A registered customer has a home store (where they signed up, or where an operator moved
them): store and distributor managers see the customers whose home store is in their scope.

Personal data never reaches the event store in clear: event fields typed
:data:`PersonalProfile` are sealed by the store with the customer's own data key. Erasing a
customer records who erased them and why (nothing personal) and destroys that key: the
profile is gone for good, while cards, accounts and the ledger stay as they were.

Invariants: a customer registers once; later profile changes are completions; an erased
customer changes no more.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, event

from loyalty.domain.card import CardStatus
from loyalty.domain.consent import Channel, Consent, Contact, Purpose
from loyalty.domain.errors import CustomerErased, InvalidProgram


class Profile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The customer's personal data: the one place it is kept."""

    first_name: str = ""
    last_name: str = ""
    email: str | None = None
    phone: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    street: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None
    notes: str | None = None


class Personal:
    """Marks an event field as personal data: the store seals it with the customer's key."""


PersonalProfile = Annotated[Profile, Personal]
ERASED = Profile()
"""What is left of an erased customer's profile: nothing."""


class CustomerFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What cluster criteria may ask of a customer at a movement."""

    registered: bool = False
    birth_date: date | None = None
    gender: str | None = None
    city: str | None = None
    postal_code: str | None = None
    signed_up_on: date | None = None
    card_status: CardStatus = CardStatus.ACTIVE


ANONYMOUS = CustomerFacts()


class Customer(Aggregate):
    class Registered(Aggregate.Created):
        profile: PersonalProfile
        signed_up_on: date
        cards: tuple[str, ...]

    class ProfileCompleted(Aggregate.Event):
        profile: PersonalProfile

    class CardAttached(Aggregate.Event):
        card: str

    class ConsentRecorded(Aggregate.Event):
        consent: Consent

    class ContactRecorded(Aggregate.Event):
        contact: Contact

    class HomeStoreSet(Aggregate.Event):
        store: str
        by: str

    class Erased(Aggregate.Event):
        by: str
        reason: str

    @classmethod
    def register(
        cls, *, customer_id: UUID, profile: Profile, signed_up_on: date, cards: tuple[str, ...]
    ) -> Customer:
        check_named(profile)
        return cls._create(
            cls.Registered,
            id=customer_id,
            profile=profile,
            signed_up_on=signed_up_on,
            cards=cards,
        )

    @event(Registered)
    def __init__(self, profile: Profile, signed_up_on: date, cards: tuple[str, ...]) -> None:
        self.profile = profile
        self.signed_up_on = signed_up_on
        self.cards = list(cards)
        self.consents: list[Consent] = []
        self.contacts: list[Contact] = []
        self.home_store: str | None = None
        self.erased = False

    def complete_profile(self, profile: Profile) -> None:
        self.check_not_erased()
        check_named(profile)
        if profile != self.profile:
            self._complete(profile=profile)

    @event(ProfileCompleted)
    def _complete(self, profile: Profile) -> None:
        self.profile = profile

    def attach_card(self, card: str) -> None:
        if card not in self.cards:
            self._attach(card=card)

    @event(CardAttached)
    def _attach(self, card: str) -> None:
        self.cards.append(card)

    def record_consent(self, consent: Consent) -> None:
        self.check_not_erased()
        if not consent.source_id.strip():
            raise InvalidProgram("a consent names who collected it", field="source_id")
        self._consent(consent=consent)

    @event(ConsentRecorded)
    def _consent(self, consent: Consent) -> None:
        self.consents.append(consent)

    def record_contact(self, contact: Contact) -> None:
        self.check_not_erased()
        self._contact(contact=contact)

    @event(ContactRecorded)
    def _contact(self, contact: Contact) -> None:
        self.contacts.append(contact)

    def consent_at(self, purpose: Purpose, channel: Channel, at: datetime) -> Consent | None:
        """The last consent decision for ``purpose`` over ``channel`` made by ``at``."""
        decided = [
            c for c in self.consents if c.purpose == purpose and c.channel == channel and c.at <= at
        ]
        return max(decided, key=lambda c: c.at) if decided else None

    def set_home_store(self, store: str, by: str) -> None:
        """Makes ``store`` (a store node's code, checked by the caller) the home store."""
        if store != self.home_store:
            self._set_home_store(store=store, by=by)

    @event(HomeStoreSet)
    def _set_home_store(self, store: str, by: str) -> None:
        self.home_store = store

    def erase(self, by: str, reason: str) -> None:
        """Forgets the profile (the store destroys the customer's key with it)."""
        if not reason.strip():
            raise InvalidProgram("say why the customer is erased", field="reason")
        if not self.erased:
            self._erase(by=by, reason=reason)

    @event(Erased)
    def _erase(self, by: str, reason: str) -> None:
        self.profile = ERASED
        self.erased = True

    def check_not_erased(self) -> None:
        if self.erased:
            raise CustomerErased("this customer was erased: nothing of theirs can change")

    def facts(self, card_status: CardStatus) -> CustomerFacts:
        return CustomerFacts(
            registered=True,
            birth_date=self.profile.birth_date,
            gender=self.profile.gender,
            city=self.profile.city,
            postal_code=self.profile.postal_code,
            signed_up_on=self.signed_up_on,
            card_status=card_status,
        )


def check_named(profile: Profile) -> None:
    """A registered customer keeps a first or a last name."""
    if not (profile.first_name.strip() or profile.last_name.strip()):
        raise InvalidProgram("a registered customer needs a first or last name")
