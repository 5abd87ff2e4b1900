"""Backoffice API, API clients: admins register third-party applications, give each the
API families and the network scope it may use, and issue or revoke its keys."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from loyalty.api.access import Action, caller, requires
from loyalty.api.lists import Limit, Offset, Page, Sort, page_of
from loyalty.api.operators import Node
from loyalty.commands.apiclients import (
    issue_client_key,
    list_clients,
    register_client,
    revoke_client_key,
)
from loyalty.domain.apiclient import ApiClient, ApiFamily


class ClientView(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    families: tuple[ApiFamily, ...]
    scope: tuple[str, ...]
    key_ids: tuple[str, ...]


class NewClient(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=64)]
    families: Annotated[tuple[ApiFamily, ...], msgspec.Meta(min_length=1)]
    scope: Annotated[tuple[Node, ...], msgspec.Meta(max_length=100)] = ()


class IssuedKey(msgspec.Struct, frozen=True, kw_only=True):
    """A key, shown this once: only its digest is kept."""

    client: str
    key_id: str
    api_key: str


def view(client: ApiClient) -> ClientView:
    return ClientView(
        name=client.name,
        families=client.families,
        scope=client.scope,
        key_ids=tuple(sorted(client.keys)),
    )


class ClientsController(Controller):
    path = "/api/v1/backoffice/clients"
    tags = ("Backoffice",)

    @get(
        operation_id="listApiClients",
        summary="The API clients, by page",
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_CLIENTS)],
    )
    def list_all(
        self,
        request: Request[object, object, State],
        limit: Limit = 100,
        offset: Offset = 0,
        sort: Sort = None,
    ) -> Page[ClientView]:
        views = [view(c) for c in list_clients(request.app.state.services.ledger)]
        return page_of(views, limit, offset, sort, ("name",))

    @post(
        operation_id="registerApiClient",
        summary="Register an API client and issue its first key",
        status_code=201,
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_CLIENTS)],
    )
    def register(
        self, request: Request[object, object, State], data: JSONBody[NewClient]
    ) -> IssuedKey:
        admin = caller(request)
        client, key = register_client(
            request.app.state.services.ledger, data.name, data.families, data.scope, admin.username
        )
        (key_id,) = client.keys
        return IssuedKey(client=client.name, key_id=key_id, api_key=key)

    @post(
        "/{name:str}/keys",
        operation_id="issueApiKey",
        summary="Issue another key (to rotate keys)",
        status_code=201,
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_CLIENTS)],
    )
    def issue(self, request: Request[object, object, State], name: FromPath[str]) -> IssuedKey:
        admin = caller(request)
        key_id, key = issue_client_key(request.app.state.services.ledger, name, admin.username)
        return IssuedKey(client=name, key_id=key_id, api_key=key)

    @delete(
        "/{name:str}/keys/{key_id:str}",
        operation_id="revokeApiKey",
        summary="Revoke a key; the tokens it got stop working at once",
        status_code=204,
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_CLIENTS)],
    )
    def revoke(
        self, request: Request[object, object, State], name: FromPath[str], key_id: FromPath[str]
    ) -> None:
        admin = caller(request)
        revoke_client_key(request.app.state.services.ledger, name, key_id, admin.username)
