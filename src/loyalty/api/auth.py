"""Auth API: operators sign in, refresh their tokens, sign out, and see who they are."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import JSONBody

from loyalty.commands.auth import Authenticator, Session, Tokens
from loyalty.domain.errors import AuthenticationFailed
from loyalty.domain.operator import Role


class SignIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(max_length=64)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]


class Refresh(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(max_length=256)]


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    username: str
    role: Role
    scope: tuple[str, ...]


def authenticator_of(state: State) -> Authenticator:
    authenticator: Authenticator = state.services.authenticator
    return authenticator


def bearer_token(request: Request[object, object, State]) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("send the access token as 'Authorization: Bearer <token>'")
    return token.strip()


def session_of(request: Request[object, object, State]) -> Session:
    """The caller's session, from its access token (every operator route starts here)."""
    return authenticator_of(request.app.state).identify(bearer_token(request))


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
    def sign_in(self, request: Request[object, object, State], data: JSONBody[SignIn]) -> Tokens:
        authenticator = authenticator_of(request.app.state)
        return authenticator.sign_in(data.username, data.password, client_address(request))

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
    )
    def sign_out(self, request: Request[object, object, State]) -> None:
        authenticator_of(request.app.state).sign_out(bearer_token(request))

    @get("/me", operation_id="whoAmI", summary="The caller's identity", sync_to_thread=True)
    def me(self, request: Request[object, object, State]) -> Identity:
        session = session_of(request)
        return Identity(username=session.username, role=session.role, scope=session.scope)
