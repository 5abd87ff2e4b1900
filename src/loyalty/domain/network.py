"""The network: one tree of unlimited depth of networks, sub-networks, stores and terminals.

Invariants:
- one root, a network; codes are unique in the tree;
- placement: a network or sub-network holds sub-networks and stores, a store holds
  terminals, a terminal holds nothing; every store has a time zone;
- moving a node moves its subtree, and a move under its own subtree (a cycle) is refused;
- closing keeps the node and its history; a closed node closes its subtree for movements;
- terminal API keys are kept only as SHA-256 digests of high-entropy secrets.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from eventsourcing.domain import Aggregate, event

from loyalty.domain import ids
from loyalty.domain.errors import (
    CycleInNetwork,
    DuplicateCode,
    InvalidNetworkPlacement,
    InvalidProgram,
    TerminalClosed,
    UnknownNode,
)
from loyalty.domain.movement import Location


class NodeKind(StrEnum):
    NETWORK = "network"
    SUB_NETWORK = "sub_network"
    STORE = "store"
    TERMINAL = "terminal"


CHILD_KINDS: dict[NodeKind, frozenset[NodeKind]] = {
    NodeKind.NETWORK: frozenset({NodeKind.SUB_NETWORK, NodeKind.STORE}),
    NodeKind.SUB_NETWORK: frozenset({NodeKind.SUB_NETWORK, NodeKind.STORE}),
    NodeKind.STORE: frozenset({NodeKind.TERMINAL}),
    NodeKind.TERMINAL: frozenset(),
}


class Node(msgspec.Struct, kw_only=True):
    code: str
    name: str
    kind: NodeKind
    parent: str | None
    timezone: str | None = None
    closed: bool = False
    key_digests: dict[str, str] = msgspec.field(default_factory=dict)


class Network(Aggregate):
    class Established(Aggregate.Created):
        code: str
        name: str

    class NodeAdded(Aggregate.Event):
        code: str
        name: str
        kind: NodeKind
        parent: str
        timezone: str | None

    class NodeRenamed(Aggregate.Event):
        code: str
        name: str

    class NodeMoved(Aggregate.Event):
        code: str
        parent: str

    class NodeClosed(Aggregate.Event):
        code: str

    class NodeReopened(Aggregate.Event):
        code: str

    class TimezoneChanged(Aggregate.Event):
        code: str
        timezone: str

    class TerminalKeyIssued(Aggregate.Event):
        code: str
        key_id: str
        key_digest: str

    class TerminalKeyRevoked(Aggregate.Event):
        code: str
        key_id: str

    @staticmethod
    def create_id() -> UUID:
        return ids.NETWORK_ID

    @event(Established)
    def __init__(self, code: str, name: str) -> None:
        self.root = code
        self.nodes: dict[str, Node] = {
            code: Node(code=code, name=name, kind=NodeKind.NETWORK, parent=None)
        }
        self._children: dict[str, set[str]] = {code: set()}

    def node(self, code: str) -> Node:
        try:
            return self.nodes[code]
        except KeyError:
            raise UnknownNode(f"no network node has the code {code!r}", node=code) from None

    def store(self, code: str) -> Node:
        """The node ``code``, which must be a store."""
        node = self.node(code)
        if node.kind is not NodeKind.STORE:
            raise InvalidProgram(f"{code!r} is a {node.kind}, not a store", node=code)
        return node

    def add(
        self, *, code: str, name: str, kind: NodeKind, parent: str, timezone: str | None = None
    ) -> None:
        if code in self.nodes:
            raise DuplicateCode(f"the code {code!r} is already in the network", node=code)
        if not code.strip() or not name.strip():
            raise InvalidNetworkPlacement("a node needs a code and a name")
        self.check_placement(kind, self.node(parent))
        if kind is NodeKind.STORE and not timezone:
            raise InvalidNetworkPlacement(f"store {code!r} needs a time zone", node=code)
        if timezone is not None:
            check_timezone(code, timezone)
        self._add(code=code, name=name, kind=kind, parent=parent, timezone=timezone)

    @event(NodeAdded)
    def _add(self, code: str, name: str, kind: NodeKind, parent: str, timezone: str | None) -> None:
        self.nodes[code] = Node(code=code, name=name, kind=kind, parent=parent, timezone=timezone)
        self._children[code] = set()
        self._children[parent].add(code)

    def rename(self, code: str, name: str) -> None:
        if not name.strip():
            raise InvalidNetworkPlacement("a node needs a code and a name", node=code)
        if self.node(code).name != name:
            self._rename(code=code, name=name)

    @event(NodeRenamed)
    def _rename(self, code: str, name: str) -> None:
        self.nodes[code].name = name

    def move(self, code: str, parent: str) -> None:
        node, target = self.node(code), self.node(parent)
        if node.parent == parent:
            return
        if code in self.path(parent):
            raise CycleInNetwork(
                f"moving {code!r} under {parent!r} would put it inside its own subtree",
                node=code,
            )
        self.check_placement(node.kind, target)
        self._move(code=code, parent=parent)

    @event(NodeMoved)
    def _move(self, code: str, parent: str) -> None:
        node = self.nodes[code]
        assert node.parent is not None
        self._children[node.parent].discard(code)
        self._children[parent].add(code)
        node.parent = parent

    def close(self, code: str) -> None:
        if code == self.root:
            raise InvalidNetworkPlacement("the root network cannot be closed")
        if not self.node(code).closed:
            self._close(code=code)

    @event(NodeClosed)
    def _close(self, code: str) -> None:
        self.nodes[code].closed = True

    def reopen(self, code: str) -> None:
        if self.node(code).closed:
            self._reopen(code=code)

    @event(NodeReopened)
    def _reopen(self, code: str) -> None:
        self.nodes[code].closed = False

    def change_timezone(self, code: str, timezone: str) -> None:
        node = self.node(code)
        if node.kind is not NodeKind.STORE:
            raise InvalidNetworkPlacement("only stores have a time zone", node=code)
        check_timezone(code, timezone)
        if node.timezone != timezone:
            self._change_timezone(code=code, timezone=timezone)

    @event(TimezoneChanged)
    def _change_timezone(self, code: str, timezone: str) -> None:
        self.nodes[code].timezone = timezone

    def issue_terminal_key(self, code: str, key_id: str, key_digest: str) -> None:
        if self.node(code).kind is not NodeKind.TERMINAL:
            raise InvalidNetworkPlacement(f"{code!r} is not a terminal", node=code)
        self._issue_key(code=code, key_id=key_id, key_digest=key_digest)

    @event(TerminalKeyIssued)
    def _issue_key(self, code: str, key_id: str, key_digest: str) -> None:
        self.nodes[code].key_digests[key_id] = key_digest

    def revoke_terminal_key(self, code: str, key_id: str) -> None:
        if key_id in self.node(code).key_digests:
            self._revoke_key(code=code, key_id=key_id)

    @event(TerminalKeyRevoked)
    def _revoke_key(self, code: str, key_id: str) -> None:
        del self.nodes[code].key_digests[key_id]

    def check_placement(self, kind: NodeKind, parent: Node) -> None:
        if kind not in CHILD_KINDS[parent.kind]:
            raise InvalidNetworkPlacement(
                f"a {kind} cannot be placed under a {parent.kind} ({parent.code!r})",
                node=parent.code,
            )

    def path(self, code: str) -> tuple[str, ...]:
        """Codes from the root down to ``code``."""
        path = []
        current: str | None = code
        while current is not None:
            path.append(current)
            current = self.node(current).parent
        return tuple(reversed(path))

    def subtree(self, code: str) -> set[str]:
        """``code`` and every node below it."""
        found, stack = set(), [code]
        while stack:
            current = stack.pop()
            found.add(current)
            stack.extend(self._children[current])
        return found

    def location(self, terminal: str) -> Location:
        """Where a terminal stands now; raises if it is not an open terminal."""
        node = self.node(terminal)
        if node.kind is not NodeKind.TERMINAL:
            raise UnknownNode(f"{terminal!r} is not a terminal", node=terminal)
        path = self.path(terminal)
        if any(self.nodes[code].closed for code in path):
            raise TerminalClosed(f"terminal {terminal!r} or its store is closed", node=terminal)
        store = self.nodes[path[-2]]
        assert store.timezone is not None
        return Location(
            terminal_id=ids.node_id(terminal),
            store_id=ids.node_id(store.code),
            path=path,
            timezone=store.timezone,
        )

    def terminal_keys(self) -> dict[str, str]:
        """Key digest -> terminal code, for every key of every terminal."""
        return {
            digest: node.code
            for node in self.nodes.values()
            for digest in node.key_digests.values()
        }


def check_timezone(code: str, timezone: str) -> None:
    """Refuses a zone the rule engine could not read the store's clock in."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidNetworkPlacement(
            f"{timezone!r} is not a known time zone (store {code!r})", node=code
        ) from None
