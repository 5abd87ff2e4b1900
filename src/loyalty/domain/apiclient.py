"""Third-party applications: API clients, each limited to the API families it was given
and to a scope of network nodes, holding API keys that can be revoked.

Invariants:
- a client's name is unique (the stream id derives from it), like a username;
- a key is held only as its SHA-256 digest, under a public key id;
- a revoked key stays revoked; its tokens end with it.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from loyalty.domain import ids
from loyalty.domain.errors import InvalidScope, UnknownApiKey
from loyalty.domain.network import Network, NodeKind


class ApiFamily(StrEnum):
    BACKOFFICE = "backoffice"
    TERMINAL = "terminal"
    CUSTOMER = "customer"
    PRODUCT = "product"
    PRIZE = "prize"
    ANALYTICS = "analytics"
    AUDIT = "audit"


class ApiClient(Aggregate):
    class Registered(Aggregate.Created):
        name: str
        families: tuple[ApiFamily, ...]
        scope: tuple[str, ...]
        by: str

    class KeyIssued(Aggregate.Event):
        key_id: str
        key_digest: bytes
        by: str

    class KeyRevoked(Aggregate.Event):
        key_id: str
        by: str

    @staticmethod
    def create_id(name: str) -> UUID:
        return ids.api_client_id(name)

    @classmethod
    def register(
        cls, name: str, families: tuple[ApiFamily, ...], scope: tuple[str, ...], by: str
    ) -> ApiClient:
        if not families:
            raise InvalidScope("an API client needs at least one API family", field="families")
        return cls(name=name, families=tuple(sorted(set(families))), scope=scope, by=by)

    @event(Registered)
    def __init__(
        self, name: str, families: tuple[ApiFamily, ...], scope: tuple[str, ...], by: str
    ) -> None:
        self.name = name
        self.families = families
        self.scope = scope
        self.keys: dict[str, bytes] = {}

    def issue_key(self, key_id: str, key_digest: bytes, by: str) -> None:
        self._issue(key_id=key_id, key_digest=key_digest, by=by)

    @event(KeyIssued)
    def _issue(self, key_id: str, key_digest: bytes, by: str) -> None:
        self.keys[key_id] = key_digest

    def revoke_key(self, key_id: str, by: str) -> None:
        if key_id not in self.keys:
            raise UnknownApiKey(f"client {self.name!r} has no live key {key_id!r}", key=key_id)
        self._revoke(key_id=key_id, by=by)

    @event(KeyRevoked)
    def _revoke(self, key_id: str, by: str) -> None:
        del self.keys[key_id]


def client_scope(nodes: tuple[str, ...], network: Network) -> tuple[str, ...]:
    """A client's scope: the given nodes (not terminals), or the whole network."""
    if not nodes:
        return (network.root,)
    for code in nodes:
        if network.node(code).kind is NodeKind.TERMINAL:
            raise InvalidScope(f"a scope names network nodes above the tills, not {code!r}")
    return tuple(sorted(set(nodes)))
