"""Every error a client can cause becomes one problem-details shape (RFC 9457) with a stable
machine ``code``; this module is the only place where that mapping happens."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from loyalty.api.i18n import catalog, locale_for, localised
from loyalty.domain.errors import LoyaltyError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class UnsupportedMediaType(LoyaltyError):
    status = 415
    code = "unsupported_media_type"


class MalformedJson(LoyaltyError):
    code = "malformed_json"


class InvalidField(LoyaltyError):
    status = 422
    code = "invalid_field"


class Problem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    type: str
    title: str
    status: int
    code: str
    detail: str
    field: str | None = None


def problem(
    request: Request[object, object, State],
    status: int,
    code: str,
    detail: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    context: Mapping[str, Any] | None = None,
) -> Response[Problem]:
    """The problem document, its ``detail`` in the language the request asks for."""
    locale, text = localised_detail(request, code, detail, {"field": field, **(context or {})})
    return Response(
        Problem(
            type=f"urn:loyalty:problem:{code}",
            title=code.replace("_", " ").capitalize(),
            status=status,
            code=code,
            detail=text,
            field=field,
        ),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers={**(headers or {}), "Content-Language": locale},
    )


def localised_detail(
    request: Request[object, object, State], code: str, fallback: str, context: Mapping[str, Any]
) -> tuple[str, str]:
    """(locale, message) for ``code``: the catalog's message in the request's language, or
    ``fallback`` (the server's own English wording)."""
    services = getattr(request.app.state, "services", None)
    overrides = services.desk.program.last.translations if services else {}
    default = services.settings.default_locale if services else "en"
    messages = catalog(overrides)
    locale = locale_for(request.headers.get("accept-language", ""), set(messages), default)
    template = messages.get(locale, {}).get(code)
    text = localised(template, fallback, {k: v for k, v in context.items() if v is not None})
    return (locale if text != fallback or locale == "en" else "en"), text


def loyalty_error(
    request: Request[object, object, State], error: LoyaltyError
) -> Response[Problem]:
    field = error.context.get("field")
    retry_after = error.context.get("retry_after")
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return problem(
        request,
        error.status,
        error.code,
        error.message,
        str(field) if field else None,
        headers,
        error.context,
    )


def validation_error(
    request: Request[object, object, State], error: ValidationException
) -> Response[Problem]:
    detail = str(error.detail)
    extra = error.extra if isinstance(error.extra, list) else []
    messages = [str(item.get("message", "")) for item in extra if isinstance(item, dict)]
    keys = [
        str(item.get("key", "")) for item in extra if isinstance(item, dict) and item.get("key")
    ]
    if "JSON is malformed" in " ".join(messages) or "malformed" in detail.lower():
        return problem(request, 400, "malformed_json", "the body is not valid JSON")
    text = "; ".join(m for m in messages if m) or detail
    return problem(request, 422, "invalid_field", text, keys[0] if keys else None)


def http_error(request: Request[object, object, State], error: HTTPException) -> Response[Problem]:
    if "malformed" in str(error.detail).lower():
        return problem(request, 400, "malformed_json", "the body is not valid JSON")
    code = {
        401: "unauthenticated",
        404: "not_found",
        405: "method_not_allowed",
        413: "body_too_large",
        415: "unsupported_media_type",
    }.get(error.status_code, "bad_request" if error.status_code < 500 else "internal_error")
    return problem(request, error.status_code, code, str(error.detail))


def internal_error(request: Request[object, object, State], error: Exception) -> Response[Problem]:
    log.error("unhandled %s", type(error).__name__, exc_info=error)
    return problem(
        request, 500, "internal_error", "the server failed; the request was not recorded"
    )


HANDLERS: ExceptionHandlersMap = {
    LoyaltyError: loyalty_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: internal_error,
}
