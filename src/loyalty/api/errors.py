"""Every error a client can cause becomes one problem-details shape (RFC 9457) with a stable
machine ``code``; this module is the only place where that mapping happens."""

from __future__ import annotations

import logging

import msgspec
from litestar import Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

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
    status: int,
    code: str,
    detail: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Problem]:
    return Response(
        Problem(
            type=f"urn:loyalty:problem:{code}",
            title=code.replace("_", " ").capitalize(),
            status=status,
            code=code,
            detail=detail,
            field=field,
        ),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def loyalty_error(_: Request[object, object, State], error: LoyaltyError) -> Response[Problem]:
    field = error.context.get("field")
    retry_after = error.context.get("retry_after")
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return problem(error.status, error.code, error.message, str(field) if field else None, headers)


def validation_error(
    _: Request[object, object, State], error: ValidationException
) -> Response[Problem]:
    detail = str(error.detail)
    extra = error.extra if isinstance(error.extra, list) else []
    messages = [str(item.get("message", "")) for item in extra if isinstance(item, dict)]
    keys = [
        str(item.get("key", "")) for item in extra if isinstance(item, dict) and item.get("key")
    ]
    if "JSON is malformed" in " ".join(messages) or "malformed" in detail.lower():
        return problem(400, "malformed_json", "the body is not valid JSON")
    text = "; ".join(m for m in messages if m) or detail
    return problem(422, "invalid_field", text, keys[0] if keys else None)


def http_error(_: Request[object, object, State], error: HTTPException) -> Response[Problem]:
    if "malformed" in str(error.detail).lower():
        return problem(400, "malformed_json", "the body is not valid JSON")
    code = {
        401: "unauthenticated",
        404: "not_found",
        405: "method_not_allowed",
        413: "body_too_large",
        415: "unsupported_media_type",
    }.get(error.status_code, "bad_request" if error.status_code < 500 else "internal_error")
    return problem(error.status_code, code, str(error.detail))


def internal_error(_: Request[object, object, State], error: Exception) -> Response[Problem]:
    log.error("unhandled %s", type(error).__name__, exc_info=error)
    return problem(500, "internal_error", "the server failed; the request was not recorded")


HANDLERS: ExceptionHandlersMap = {
    LoyaltyError: loyalty_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: internal_error,
}
