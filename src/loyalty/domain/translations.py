"""Translations: the operators' overrides of the messages the API shows people, per locale
and message code (the bundled catalogs hold the defaults). One stream; a change takes
effect at once, like any program change.

Invariants:
- a locale is a language tag (``it``, ``en``, ``it-CH``); a code is a machine code;
- an override with no text goes back to the bundled default.
"""

from __future__ import annotations

import re
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from loyalty.domain import ids
from loyalty.domain.errors import InvalidProgram

LOCALE = re.compile(r"[a-z]{2,3}(-[A-Z]{2})?")
CODE = re.compile(r"[a-z][a-z0-9_]{1,63}")


def check_key(locale: str, code: str) -> None:
    if not LOCALE.fullmatch(locale):
        raise InvalidProgram(f"{locale!r} is not a language tag like 'it' or 'it-CH'")
    if not CODE.fullmatch(code):
        raise InvalidProgram(f"{code!r} is not a message code", field="code")


class Translations(Aggregate):
    class Started(Aggregate.Created):
        pass

    class MessageSet(Aggregate.Event):
        locale: str
        code: str
        text: str | None
        by: str

    @staticmethod
    def create_id() -> UUID:
        return ids.TRANSLATIONS_ID

    @event(Started)
    def __init__(self) -> None:
        self.overrides: dict[str, dict[str, str]] = {}

    def set_message(self, locale: str, code: str, text: str | None, by: str) -> None:
        """Overrides one message (``None``: back to the bundled default)."""
        check_key(locale, code)
        if self.overrides.get(locale, {}).get(code) != text:
            self._set(locale=locale, code=code, text=text, by=by)

    @event(MessageSet)
    def _set(self, locale: str, code: str, text: str | None, by: str) -> None:
        messages = self.overrides.setdefault(locale, {})
        if text is None:
            messages.pop(code, None)
        else:
            messages[code] = text
