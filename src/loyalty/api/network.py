"""Backoffice API, the network: the tree as the caller may see it, and its changes.

Every route asks :mod:`loyalty.api.access`: reading needs ``read_network``, changing
``change_network``; every node a request names must lie in the caller's scope (else 404,
as for a node that does not exist)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

from loyalty.api.access import Action, caller, check_in_scope, covers, requires
from loyalty.api.lists import Limit, Offset, Page, Sort, page_of
from loyalty.commands.network import change_network
from loyalty.commands.operators import network_of
from loyalty.domain.errors import InvalidNetworkPlacement
from loyalty.domain.network import Network, Node, NodeKind

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
TimeZone = Annotated[str, msgspec.Meta(max_length=64)]


class NodeView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    kind: NodeKind
    parent: str | None
    timezone: str | None
    closed: bool


class NewNode(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: Code
    name: Name
    kind: NodeKind
    parent: Code
    timezone: TimeZone | None = None


class NodeChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name | None = None
    timezone: TimeZone | None = None


class Move(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    parent: Code


def view(node: Node) -> NodeView:
    return NodeView(
        code=node.code,
        name=node.name,
        kind=node.kind,
        parent=node.parent,
        timezone=node.timezone,
        closed=node.closed,
    )


class NetworkController(Controller):
    path = "/api/v1/backoffice/network"
    tags = ("Backoffice",)

    @get(
        operation_id="listNetworkNodes",
        summary="The network nodes in the caller's scope, parents before children, by page",
        description="Filter: kind. Sortable: code, name, kind.",
        sync_to_thread=True,
        guards=[requires(Action.READ_NETWORK)],
    )
    def list_nodes(
        self,
        request: Request[object, object, State],
        limit: Limit = 100,
        offset: Offset = 0,
        sort: Sort = None,
        kind: FromQuery[NodeKind | None] = None,
    ) -> Page[NodeView]:
        session = caller(request)
        network = network_of(request.app.state.services.ledger)
        visible = [
            code
            for code in sorted(network.nodes, key=network.path)
            if covers(session, network, code) and kind in (None, network.node(code).kind)
        ]
        views = [view(network.node(code)) for code in visible]
        return page_of(views, limit, offset, sort, ("code", "name", "kind"))

    @get(
        "/{code:str}",
        operation_id="getNetworkNode",
        summary="One node",
        sync_to_thread=True,
        guards=[requires(Action.READ_NETWORK)],
    )
    def get_node(self, request: Request[object, object, State], code: FromPath[str]) -> NodeView:
        session = caller(request)
        network = network_of(request.app.state.services.ledger)
        check_in_scope(session, network, network.node(code).code)
        return view(network.node(code))

    @post(
        operation_id="addNetworkNode",
        summary="Add a sub-network, store or terminal under a node in scope",
        status_code=201,
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_NETWORK)],
    )
    def add_node(
        self, request: Request[object, object, State], data: JSONBody[NewNode]
    ) -> NodeView:
        session = caller(request)

        def add(network: Network) -> None:
            check_in_scope(session, network, network.node(data.parent).code)
            if data.kind is NodeKind.NETWORK:
                raise InvalidNetworkPlacement("there is one network: add sub-networks to it")
            network.add(
                code=data.code,
                name=data.name,
                kind=data.kind,
                parent=data.parent,
                timezone=data.timezone,
            )

        network = change_network(request.app.state.services.ledger, add)
        return view(network.node(data.code))

    @patch(
        "/{code:str}",
        operation_id="changeNetworkNode",
        summary="Rename a node, or change a store's time zone",
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_NETWORK)],
    )
    def change_node(
        self,
        request: Request[object, object, State],
        code: FromPath[str],
        data: JSONBody[NodeChange],
    ) -> NodeView:
        session = caller(request)

        def change(network: Network) -> None:
            check_in_scope(session, network, network.node(code).code)
            if data.name is not None:
                network.rename(code, data.name)
            if data.timezone is not None:
                network.change_timezone(code, data.timezone)

        return view(change_network(request.app.state.services.ledger, change).node(code))

    @post(
        "/{code:str}/move",
        operation_id="moveNetworkNode",
        summary="Move a node (and its subtree) under another node in scope",
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_NETWORK)],
    )
    def move_node(
        self, request: Request[object, object, State], code: FromPath[str], data: JSONBody[Move]
    ) -> NodeView:
        session = caller(request)

        def move(network: Network) -> None:
            check_in_scope(
                session, network, network.node(code).code, network.node(data.parent).code
            )
            network.move(code, data.parent)

        return view(change_network(request.app.state.services.ledger, move).node(code))

    @post(
        "/{code:str}/close",
        operation_id="closeNetworkNode",
        summary="Close a node: its subtree takes no more movements; its history stays",
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_NETWORK)],
    )
    def close_node(self, request: Request[object, object, State], code: FromPath[str]) -> NodeView:
        session = caller(request)

        def close(network: Network) -> None:
            check_in_scope(session, network, network.node(code).code)
            network.close(code)

        return view(change_network(request.app.state.services.ledger, close).node(code))

    @post(
        "/{code:str}/reopen",
        operation_id="reopenNetworkNode",
        summary="Reopen a closed node",
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_NETWORK)],
    )
    def reopen_node(self, request: Request[object, object, State], code: FromPath[str]) -> NodeView:
        session = caller(request)

        def reopen(network: Network) -> None:
            check_in_scope(session, network, network.node(code).code)
            network.reopen(code)

        return view(change_network(request.app.state.services.ledger, reopen).node(code))
