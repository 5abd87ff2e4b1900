"""Backoffice API, operators and roles: admins create operators, change roles and scopes,
and deactivate or reactivate accounts. Every change names the admin who made it."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

from loyalty.api.access import Action, caller, requires
from loyalty.api.lists import Limit, Offset, Page, Sort, page_of
from loyalty.commands.operators import (
    add_operator,
    change_role,
    deactivate_operator,
    list_operators,
    load_operator,
    reactivate_operator,
)
from loyalty.domain.errors import Forbidden
from loyalty.domain.operator import Operator, Role

Node = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class OperatorView(msgspec.Struct, frozen=True, kw_only=True):
    username: str
    role: Role
    scope: tuple[str, ...]
    active: bool
    two_factor: bool


class NewOperator(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(max_length=64)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]
    role: Role
    scope: Annotated[tuple[Node, ...], msgspec.Meta(max_length=100)] = ()


class RoleChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    role: Role
    scope: Annotated[tuple[Node, ...], msgspec.Meta(max_length=100)] = ()


class Deactivation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


def view(operator: Operator) -> OperatorView:
    return OperatorView(
        username=operator.username,
        role=operator.role,
        scope=operator.scope,
        active=operator.active,
        two_factor=operator.two_factor,
    )


class OperatorsController(Controller):
    path = "/api/v1/backoffice/operators"
    tags = ("Backoffice",)

    @get(
        operation_id="listOperators",
        summary="The operators, by page (filter: role)",
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_OPERATORS)],
    )
    def list_all(
        self,
        request: Request[object, object, State],
        limit: Limit = 100,
        offset: Offset = 0,
        sort: Sort = None,
        role: FromQuery[Role | None] = None,
    ) -> Page[OperatorView]:
        operators = list_operators(request.app.state.services.ledger)
        views = [view(o) for o in operators if role is None or o.role is role]
        return page_of(views, limit, offset, sort, ("username", "role", "active"))

    @post(
        operation_id="addOperator",
        summary="Create an operator",
        description="The password must meet the policy; the scope must suit the role.",
        status_code=201,
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_OPERATORS)],
    )
    def add(
        self, request: Request[object, object, State], data: JSONBody[NewOperator]
    ) -> OperatorView:
        admin = caller(request)
        operator = add_operator(
            request.app.state.services.ledger,
            data.username,
            data.password,
            data.role,
            data.scope,
            by=admin.username,
        )
        return view(operator)

    @get(
        "/{username:str}",
        operation_id="getOperator",
        summary="One operator",
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_OPERATORS)],
    )
    def get(self, request: Request[object, object, State], username: FromPath[str]) -> OperatorView:
        return view(load_operator(request.app.state.services.ledger, username))

    @put(
        "/{username:str}/role",
        operation_id="changeOperatorRole",
        summary="Change an operator's role and scope",
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_OPERATORS)],
    )
    def change_role(
        self,
        request: Request[object, object, State],
        username: FromPath[str],
        data: JSONBody[RoleChange],
    ) -> OperatorView:
        admin = caller(request)
        ledger = request.app.state.services.ledger
        return view(change_role(ledger, username, data.role, data.scope, by=admin.username))

    @post(
        "/{username:str}/deactivate",
        operation_id="deactivateOperator",
        summary="Stop an operator from signing in; ends their sessions",
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_OPERATORS)],
    )
    def deactivate(
        self,
        request: Request[object, object, State],
        username: FromPath[str],
        data: JSONBody[Deactivation],
    ) -> OperatorView:
        admin = caller(request)
        if load_operator(request.app.state.services.ledger, username).username == admin.username:
            raise Forbidden("an admin cannot deactivate themselves")
        ledger = request.app.state.services.ledger
        deactivate_operator(ledger, username, data.reason, by=admin.username)
        return view(load_operator(ledger, username))

    @post(
        "/{username:str}/reactivate",
        operation_id="reactivateOperator",
        summary="Let a deactivated operator sign in again",
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_OPERATORS)],
    )
    def reactivate(
        self, request: Request[object, object, State], username: FromPath[str]
    ) -> OperatorView:
        admin = caller(request)
        ledger = request.app.state.services.ledger
        reactivate_operator(ledger, username, by=admin.username)
        return view(load_operator(ledger, username))
