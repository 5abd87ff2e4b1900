"""Localised messages: the catalog (bundled defaults for English and Italian, overridden
by operators through the Backoffice API) and the locale a request asks for with
``Accept-Language``, falling back to ``LOYALTY_DEFAULT_LOCALE``."""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import State

from loyalty.commands.schemas import MovementReceipt

BUNDLED = ("en", "it")


@cache
def bundled(locale: str) -> dict[str, str]:
    text = resources.files("loyalty.api").joinpath("messages", f"{locale}.toml").read_text()
    messages: dict[str, str] = tomllib.loads(text)["messages"]
    return messages


def catalog(overrides: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """Every locale's messages: the bundled ones, then the operators' overrides."""
    merged = {locale: dict(bundled(locale)) for locale in BUNDLED}
    for locale, messages in overrides.items():
        merged.setdefault(locale, {}).update(messages)
    return merged


def locale_for(accept_language: str, available: set[str], default: str) -> str:
    """The best available locale of an ``Accept-Language`` header (``it-CH`` matches
    ``it-CH``, then ``it``), by preference; ``default`` when none matches."""
    ranked = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and weight > 0:
            ranked.append((-weight, position, tag.strip()))
    for _, _, tag in sorted(ranked):
        language, _, region = tag.partition("-")
        for candidate in (
            f"{language.lower()}-{region.upper()}" if region else "",
            language.lower(),
        ):
            if candidate in available:
                return candidate
    return default


def localised(template: str | None, fallback: str, context: Mapping[str, Any]) -> str:
    """``template`` filled from ``context``; ``fallback`` if there is none or it cannot be
    filled (a field it names is missing)."""
    if not template:
        return fallback
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        return template.format(**{name: context[name] for name in names})
    except (KeyError, IndexError, ValueError):
        return fallback


def request_messages(request: Request[object, object, State]) -> tuple[str, dict[str, str]]:
    """The locale ``request`` asks for, and its messages (with the admins' overrides)."""
    services = request.app.state.services
    return messages_for(
        request.headers.get("accept-language", ""),
        services.desk.program.last.translations,
        services.settings.default_locale,
    )


def messages_for(
    accept_language: str, overrides: Mapping[str, Mapping[str, str]], default: str
) -> tuple[str, dict[str, str]]:
    """The locale a request asks for, and that locale's messages (bundled and overridden)."""
    messages = catalog(overrides)
    locale = locale_for(accept_language, set(messages), default)
    return locale, messages.get(locale, {})


RECEIPT_CODES = (
    "receipt_points_earned",
    "receipt_points_returned",
    "receipt_points_used",
    "receipt_points_balance",
    "receipt_points_unrecovered",
    "receipt_credits_unrecovered",
)
_receipts = msgspec.json.Decoder(MovementReceipt)
_encoder = msgspec.json.Encoder()


@cache
def receipt_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Each receipt line's code with the pattern of the English text the engine writes."""
    english = bundled("en")
    return tuple(
        (
            code,
            re.compile(
                re.escape(english[code])
                .replace(r"\{points\}", r"(?P<points>-?\d+)")
                .replace(r"\{credits\}", r"(?P<credits>-?[\d.]+)")
            ),
        )
        for code in RECEIPT_CODES
    )


def localised_line(text: str, messages: Mapping[str, str], promotions: Mapping[str, str]) -> str:
    """A receipt line in the language of ``messages``: a line of the engine's re-rendered
    from the catalog, a promotion's own message through its entry ``promotion_<code>``
    (hyphens as underscores), anything else as written."""
    for code, pattern in receipt_patterns():
        found = pattern.fullmatch(text)
        if found:
            return localised(messages.get(code), text, found.groupdict())
    promotion = promotions.get(text)
    if promotion is not None:
        return messages.get(f"promotion_{promotion.replace('-', '_')}", text)
    return text


def localised_receipt(
    body: bytes, messages: Mapping[str, str], promotions: Mapping[str, str]
) -> bytes:
    """A receipt's JSON with its messages in the language of ``messages``; ``promotions``
    maps each promotion's own receipt message to the promotion's code."""
    receipt = _receipts.decode(body)
    lines = tuple(localised_line(m, messages, promotions) for m in receipt.receipt_messages)
    if lines == receipt.receipt_messages:
        return body
    return _encoder.encode(msgspec.structs.replace(receipt, receipt_messages=lines))
