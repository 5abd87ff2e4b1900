"""Overriding the API's messages (Backoffice API): one message per locale and code."""

from __future__ import annotations

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from loyalty.commands.ledger import Ledger
from loyalty.domain import ids
from loyalty.domain.errors import ConcurrentUpdate
from loyalty.domain.translations import Translations

ATTEMPTS = 3


def set_message(ledger: Ledger, locale: str, code: str, text: str | None, by: str) -> None:
    """Overrides a message (``None``: back to the bundled one); effective at once."""
    for _ in range(ATTEMPTS):
        try:
            found: Aggregate = ledger.repository.get(ids.TRANSLATIONS_ID)
        except AggregateNotFoundError:
            found = Translations()
        assert isinstance(found, Translations)
        found.set_message(locale, code, text, by)
        try:
            ledger.save(found)
        except IntegrityError:
            continue
        return
    raise ConcurrentUpdate("the translations kept changing meanwhile; retry")
