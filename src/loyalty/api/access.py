"""Who may do what, and where: the one place every operator and client route asks.

Two questions:

1. **may** the caller take this action at all? Each route declares its action with the
   guard :func:`requires` (litestar's guards run before the body is even read): no valid
   token answers ``401``, an API family the token was not given ``403
   api_family_not_allowed``, an action the role lacks ``403 forbidden``.
2. **where**: the network nodes a request names must lie in the caller's scope (a scope
   node covers its subtree), checked by :func:`check_in_scope` once the node is known. A
   node outside the scope answers ``404`` exactly like a node that does not exist, so
   that ids cannot be probed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import anyio.to_thread
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers import BaseRouteHandler
from litestar.types import Guard

from loyalty.api.auth import session_of
from loyalty.commands.auth import Session
from loyalty.domain.apiclient import ApiFamily
from loyalty.domain.errors import Forbidden, UnknownNode
from loyalty.domain.network import Network
from loyalty.domain.operator import Role


class Action(StrEnum):
    READ_NETWORK = "read_network"
    CHANGE_NETWORK = "change_network"
    MANAGE_OPERATORS = "manage_operators"
    MANAGE_CLIENTS = "manage_clients"
    SIMULATE_PROMOTIONS = "simulate_promotions"
    READ_PROMOTIONS = "read_promotions"
    CHANGE_PROMOTIONS = "change_promotions"
    CHANGE_CAMPAIGNS = "change_campaigns"
    CHANGE_CLUSTERS = "change_clusters"
    PREVIEW_CLUSTERS = "preview_clusters"
    READ_TRANSLATIONS = "read_translations"
    MANAGE_TRANSLATIONS = "manage_translations"
    READ_CUSTOMERS = "read_customers"
    CHANGE_CUSTOMERS = "change_customers"
    READ_PRODUCTS = "read_products"
    SYNC_PRODUCTS = "sync_products"
    READ_PRIZES = "read_prizes"
    MANAGE_PRIZES = "manage_prizes"
    REDEEM_PRIZES = "redeem_prizes"
    MANAGE_PRIVACY = "manage_privacy"
    AUDIT_LOG = "audit_log"
    READ_ANALYTICS = "read_analytics"
    RUN_ANALYTICS = "run_analytics"
    """Recompute RFM runs and cluster memberships, change their settings."""


FAMILY = {
    Action.READ_NETWORK: ApiFamily.BACKOFFICE,
    Action.CHANGE_NETWORK: ApiFamily.BACKOFFICE,
    Action.MANAGE_OPERATORS: ApiFamily.BACKOFFICE,
    Action.MANAGE_CLIENTS: ApiFamily.BACKOFFICE,
    Action.SIMULATE_PROMOTIONS: ApiFamily.BACKOFFICE,
    Action.READ_PROMOTIONS: ApiFamily.BACKOFFICE,
    Action.CHANGE_PROMOTIONS: ApiFamily.BACKOFFICE,
    Action.CHANGE_CAMPAIGNS: ApiFamily.BACKOFFICE,
    Action.CHANGE_CLUSTERS: ApiFamily.BACKOFFICE,
    Action.PREVIEW_CLUSTERS: ApiFamily.BACKOFFICE,
    Action.READ_TRANSLATIONS: ApiFamily.BACKOFFICE,
    Action.MANAGE_TRANSLATIONS: ApiFamily.BACKOFFICE,
    Action.READ_CUSTOMERS: ApiFamily.CUSTOMER,
    Action.CHANGE_CUSTOMERS: ApiFamily.CUSTOMER,
    Action.READ_PRODUCTS: ApiFamily.PRODUCT,
    Action.SYNC_PRODUCTS: ApiFamily.PRODUCT,
    Action.READ_PRIZES: ApiFamily.PRIZE,
    Action.MANAGE_PRIZES: ApiFamily.PRIZE,
    Action.REDEEM_PRIZES: ApiFamily.PRIZE,
    Action.MANAGE_PRIVACY: ApiFamily.BACKOFFICE,
    Action.AUDIT_LOG: ApiFamily.AUDIT,
    Action.READ_ANALYTICS: ApiFamily.ANALYTICS,
    Action.RUN_ANALYTICS: ApiFamily.ANALYTICS,
}

GRANTS: dict[Role | None, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.MANAGER: frozenset(
        {
            Action.READ_NETWORK,
            Action.CHANGE_NETWORK,
            Action.SIMULATE_PROMOTIONS,
            Action.READ_PROMOTIONS,
            Action.CHANGE_PROMOTIONS,
            Action.CHANGE_CAMPAIGNS,
            Action.CHANGE_CLUSTERS,
            Action.PREVIEW_CLUSTERS,
            Action.READ_TRANSLATIONS,
            Action.READ_CUSTOMERS,
            Action.CHANGE_CUSTOMERS,
            Action.READ_PRODUCTS,
            Action.SYNC_PRODUCTS,
            Action.READ_PRIZES,
            Action.MANAGE_PRIZES,
            Action.REDEEM_PRIZES,
            Action.READ_ANALYTICS,
            Action.RUN_ANALYTICS,
        }
    ),
    Role.DISTRIBUTOR_MANAGER: frozenset(
        {
            Action.READ_NETWORK,
            Action.CHANGE_NETWORK,
            Action.SIMULATE_PROMOTIONS,
            Action.READ_PROMOTIONS,
            Action.CHANGE_PROMOTIONS,
            Action.CHANGE_CAMPAIGNS,
            Action.READ_TRANSLATIONS,
            Action.READ_CUSTOMERS,
            Action.CHANGE_CUSTOMERS,
            Action.READ_PRODUCTS,
            Action.READ_PRIZES,
            Action.REDEEM_PRIZES,
            Action.READ_ANALYTICS,
        }
    ),
    Role.STORE_MANAGER: frozenset(
        {
            Action.READ_NETWORK,
            Action.SIMULATE_PROMOTIONS,
            Action.READ_PROMOTIONS,
            Action.CHANGE_PROMOTIONS,
            Action.CHANGE_CAMPAIGNS,
            Action.READ_TRANSLATIONS,
            Action.READ_CUSTOMERS,
            Action.CHANGE_CUSTOMERS,
            Action.READ_PRODUCTS,
            Action.READ_PRIZES,
            Action.REDEEM_PRIZES,
            Action.READ_ANALYTICS,
        }
    ),
    Role.AUDITOR: frozenset({Action.AUDIT_LOG}),
    None: frozenset(
        {
            Action.READ_NETWORK,
            Action.SIMULATE_PROMOTIONS,
            Action.READ_PROMOTIONS,
            Action.READ_CUSTOMERS,
            Action.CHANGE_CUSTOMERS,
            Action.READ_PRODUCTS,
            Action.SYNC_PRODUCTS,
            Action.READ_PRIZES,
            Action.REDEEM_PRIZES,
            Action.AUDIT_LOG,
            Action.READ_ANALYTICS,
            Action.RUN_ANALYTICS,
        }
    ),
}
"""What each role may do (``None``: an API client, within its families and scope)."""


def allow(connection: ASGIConnection[Any, Any, Any, Any], action: Action) -> Session:
    """The caller's session, if it may take ``action``; raises otherwise."""
    session = session_of(connection, FAMILY[action])
    if action not in GRANTS[session.role]:
        raise Forbidden(f"a {session.role or 'client'} may not {action.replace('_', ' ')}")
    return session


def requires(action: Action) -> Guard:
    """The guard of a route taking ``action``: it leaves the session for :func:`caller`."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        connection.state.session = await anyio.to_thread.run_sync(allow, connection, action)

    return guard


def caller(request: Request[object, object, State]) -> Session:
    """The session the route's guard let through."""
    session: Session = request.state.session
    return session


def actor(request: Request[object, object, State]) -> str:
    """Who is calling, as the trail records it: ``operator:<username>``, or an API
    client's own name (``client:<name>``)."""
    session = caller(request)
    return f"operator:{session.username}" if session.role else session.username


def covers(session: Session, network: Network, code: str) -> bool:
    """Whether node ``code`` lies in the session's scope (it must exist)."""
    return session.role is Role.ADMIN or not set(session.scope).isdisjoint(network.path(code))


def check_in_scope(session: Session, network: Network, *codes: str) -> None:
    """Refuses, as not found, any node outside the session's scope."""
    for code in codes:
        if not covers(session, network, code):
            raise UnknownNode(f"no network node has the code {code!r}", node=code)


def covers_everywhere(session: Session, network: Network) -> bool:
    return session.role is Role.ADMIN or network.root in session.scope


def reaches(session: Session, network: Network, code: str) -> bool:
    """Whether node ``code`` and the scope overlap: it lies in the scope, or holds part of
    it (a promotion on a region reaches the region's stores)."""
    if code not in network.nodes:
        return False
    return covers(session, network, code) or any(
        s in network.subtree(code) for s in session.scope if s in network.nodes
    )


def promotion_visible(session: Session, network: Network, nodes: tuple[str, ...]) -> bool:
    """A promotion on ``nodes`` (none: everywhere in its campaign) is seen by whoever it
    reaches."""
    if not nodes or covers_everywhere(session, network):
        return True
    return any(reaches(session, network, code) for code in nodes)


def check_promotion_changeable(session: Session, network: Network, nodes: tuple[str, ...]) -> None:
    """A scoped operator changes only promotions whose nodes all lie in their scope."""
    if covers_everywhere(session, network):
        return
    if not nodes:
        raise Forbidden("only admins and managers change promotions that apply everywhere")
    check_in_scope(session, network, *(network.node(code).code for code in nodes))


def check_campaign_changeable(session: Session, network: Network, nodes: tuple[str, ...]) -> None:
    """A scoped operator changes only campaigns whose nodes all lie in their scope (a node
    outside it, or missing, answers not found). A campaign always names nodes: with none,
    the campaign's own rules refuse it."""
    if not covers_everywhere(session, network):
        check_in_scope(session, network, *(network.node(code).code for code in nodes))
