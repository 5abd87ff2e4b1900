"""Auth API: operators sign in, refresh their tokens, sign out, and see who they are."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers import BaseRouteHandler
from litestar.params import JSONBody

from loyalty.api.errors import InvalidField
from loyalty.commands.auth import (
    AccessToken,
    Authenticator,
    Challenge,
    Enrolment,
    RecoveryCodes,
    Session,
    Tokens,
)
from loyalty.domain.apiclient import ApiFamily
from loyalty.domain.errors import (
    AuthenticationFailed,
    FamilyNotAllowed,
    Forbidden,
    TwoFactorRequired,
)
from loyalty.domain.operator import Role


class SignIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(max_length=64)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]


class Refresh(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(max_length=256)]


class SecondFactor(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The answer to a sign-in challenge: a TOTP ``code``, or one ``recovery_code``."""

    challenge: Annotated[str, msgspec.Meta(max_length=256)]
    code: Annotated[str, msgspec.Meta(pattern="^[0-9]{6}$")] | None = None
    recovery_code: Annotated[str, msgspec.Meta(max_length=32)] | None = None


class Code(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(pattern="^[0-9]{6}$")]


class KeyExchange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    api_key: Annotated[str, msgspec.Meta(max_length=256)]


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    username: str
    role: Role | None
    """``None`` for an API client."""
    scope: tuple[str, ...]
    families: tuple[ApiFamily, ...]
    two_factor: bool
    restricted: bool
    """Until a required second factor is enrolled, only enrolment, ``/me`` and sign-out."""


def authenticator_of(state: State) -> Authenticator:
    authenticator: Authenticator = state.services.authenticator
    return authenticator


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("send the access token as 'Authorization: Bearer <token>'")
    return token.strip()


def session_of(
    connection: ASGIConnection[Any, Any, Any, Any],
    family: ApiFamily | None = None,
    restricted_ok: bool = False,
) -> Session:
    """The caller's session, from its access token: every operator and client route
    starts here. The token must be good for the route's API ``family``; a restricted
    session (second factor required, not enrolled) only passes where ``restricted_ok``."""
    session = authenticator_of(connection.app.state).identify(bearer_token(connection))
    if family is not None and family not in session.families:
        raise FamilyNotAllowed(f"this token is not good for the {family} API")
    if session.restricted and not restricted_ok:
        raise TwoFactorRequired("enrol a second factor first (/api/v1/auth/two-factor)")
    return session


async def signed_in(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: any live session, restricted or not (read back with :func:`caller_session`)."""
    connection.state.session = await anyio.to_thread.run_sync(session_of, connection, None, True)


async def operators_only(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: an operator's session, restricted or not; API clients are refused."""
    await signed_in(connection, handler)
    if connection.state.session.role is None:
        raise Forbidden("API clients sign in with their key; they enrol no second factor")


def caller_session(request: Request[object, object, State]) -> Session:
    session: Session = request.state.session
    return session


def client_address(request: Request[object, object, State]) -> str:
    return request.client.host if request.client else "unknown"


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ("Auth",)

    @post(
        "/login",
        operation_id="signIn",
        summary="Sign in with username and password",
        description=(
            "Answers an access token (15 minutes by default) and a refresh token. Failures "
            "answer 401 whether or not the username exists; repeated failures lock the "
            "username out and throttle the client address (429)."
        ),
        status_code=200,
        sync_to_thread=True,
    )
    def sign_in(
        self, request: Request[object, object, State], data: JSONBody[SignIn]
    ) -> Tokens | Challenge:
        authenticator = authenticator_of(request.app.state)
        return authenticator.sign_in(data.username, data.password, client_address(request))

    @post(
        "/login/second-factor",
        operation_id="answerSecondFactor",
        summary="Answer a sign-in challenge with a TOTP code or a recovery code",
        description="A challenge is good once and for five minutes; a wrong code means "
        "signing in again, and counts as a failed sign-in.",
        status_code=200,
        sync_to_thread=True,
    )
    def second_factor(
        self, request: Request[object, object, State], data: JSONBody[SecondFactor]
    ) -> Tokens:
        if (data.code is None) == (data.recovery_code is None):
            raise InvalidField("give either code or recovery_code", field="code")
        return authenticator_of(request.app.state).answer_challenge(
            data.challenge, data.code, data.recovery_code, client_address(request)
        )

    @post(
        "/two-factor",
        operation_id="startTwoFactorEnrolment",
        summary="Start enrolling a TOTP authenticator",
        description="Answers the provisioning URI (for a QR code) and the secret, once.",
        status_code=201,
        sync_to_thread=True,
        guards=[operators_only],
    )
    def start_enrolment(self, request: Request[object, object, State]) -> Enrolment:
        session = caller_session(request)
        return authenticator_of(request.app.state).start_enrolment(session)

    @post(
        "/two-factor/confirm",
        operation_id="confirmTwoFactorEnrolment",
        summary="Confirm the enrolment with a code; get the recovery codes, once",
        status_code=200,
        sync_to_thread=True,
        guards=[operators_only],
    )
    def confirm_enrolment(
        self, request: Request[object, object, State], data: JSONBody[Code]
    ) -> RecoveryCodes:
        session = caller_session(request)
        return authenticator_of(request.app.state).confirm_enrolment(session, data.code)

    @post(
        "/token",
        operation_id="exchangeApiKey",
        summary="Exchange a third-party API key for an access token",
        description="The token is good for the API families the key's client was given.",
        status_code=200,
        sync_to_thread=True,
    )
    def exchange(
        self, request: Request[object, object, State], data: JSONBody[KeyExchange]
    ) -> AccessToken:
        return authenticator_of(request.app.state).exchange(data.api_key)

    @post(
        "/refresh",
        operation_id="refreshTokens",
        summary="Exchange a refresh token for a new pair",
        description="A refresh token works once; presenting it again revokes the session.",
        status_code=200,
        sync_to_thread=True,
    )
    def refresh(self, request: Request[object, object, State], data: JSONBody[Refresh]) -> Tokens:
        return authenticator_of(request.app.state).refresh(data.refresh_token)

    @post(
        "/logout",
        operation_id="signOut",
        summary="Revoke the session of this access token",
        status_code=204,
        sync_to_thread=True,
        guards=[signed_in],
    )
    def sign_out(self, request: Request[object, object, State]) -> None:
        authenticator_of(request.app.state).sign_out(bearer_token(request))

    @get(
        "/me",
        operation_id="whoAmI",
        summary="The caller's identity",
        sync_to_thread=True,
        guards=[signed_in],
    )
    def me(self, request: Request[object, object, State]) -> Identity:
        session = caller_session(request)
        return Identity(
            username=session.username,
            role=session.role,
            scope=session.scope,
            families=tuple(sorted(session.families)),
            two_factor=session.two_factor,
            restricted=session.restricted,
        )
