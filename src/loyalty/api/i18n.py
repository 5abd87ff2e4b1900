"""Localised messages: the catalog (bundled defaults for English and Italian, overridden
by operators through the Backoffice API) and the locale a request asks for with
``Accept-Language``, falling back to ``LOYALTY_DEFAULT_LOCALE``."""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

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
