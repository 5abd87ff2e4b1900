"""The network: a tree of networks, sub-networks, stores and terminals (no I/O)."""

from __future__ import annotations

import hashlib

import pytest

from loyalty.domain import ids
from loyalty.domain.errors import (
    CycleInNetwork,
    DuplicateCode,
    InvalidNetworkPlacement,
    InvalidProgram,
    TerminalClosed,
    UnknownNode,
)
from loyalty.domain.network import Network, NodeKind

SUB, STORE, TERMINAL = NodeKind.SUB_NETWORK, NodeKind.STORE, NodeKind.TERMINAL


def chain() -> Network:
    """chain > north > s1 (Rome) > t1, and chain > south > s3 (New York) > t3."""
    network = Network(code="chain", name="Chain")
    network.add(code="north", name="North", kind=SUB, parent="chain")
    network.add(code="south", name="South", kind=SUB, parent="chain")
    network.add(code="s1", name="Store 1", kind=STORE, parent="north", timezone="Europe/Rome")
    network.add(code="t1", name="Till 1", kind=TERMINAL, parent="s1")
    network.add(code="s3", name="Store 3", kind=STORE, parent="south", timezone="America/New_York")
    network.add(code="t3", name="Till 3", kind=TERMINAL, parent="s3")
    return network


def replayed(network: Network) -> Network:
    """The network rebuilt from nothing but its events."""
    copy = None
    for event in network.collect_events():
        copy = event.mutate(copy)
    assert isinstance(copy, Network)
    return copy


def test_a_new_network_is_one_root_node_of_kind_network() -> None:
    network = Network(code="chain", name="Chain")

    assert network.id == ids.NETWORK_ID
    assert network.root == "chain"
    assert network.node("chain").kind is NodeKind.NETWORK
    assert network.node("chain").parent is None


def test_the_path_of_a_node_runs_from_the_root_down_to_it() -> None:
    assert chain().path("t1") == ("chain", "north", "s1", "t1")


def test_the_subtree_of_a_node_holds_it_and_everything_below_it() -> None:
    assert chain().subtree("north") == {"north", "s1", "t1"}


def test_a_code_is_unique_in_the_whole_tree() -> None:
    network = chain()

    with pytest.raises(DuplicateCode):
        network.add(code="t1", name="Another till", kind=TERMINAL, parent="s3")


def test_a_node_needs_a_code_and_a_name() -> None:
    network = chain()

    with pytest.raises(InvalidNetworkPlacement):
        network.add(code=" ", name="Blank", kind=SUB, parent="chain")
    with pytest.raises(InvalidNetworkPlacement):
        network.add(code="west", name="", kind=SUB, parent="chain")


def test_a_node_cannot_be_added_under_an_unknown_parent() -> None:
    with pytest.raises(UnknownNode):
        chain().add(code="s9", name="S9", kind=STORE, parent="nowhere", timezone="UTC")


@pytest.mark.parametrize(
    ("kind", "parent"),
    [
        (TERMINAL, "north"),  # a terminal stands in a store
        (TERMINAL, "chain"),
        (SUB, "s1"),  # a store holds terminals only
        (STORE, "s1"),
        (TERMINAL, "t1"),  # a terminal holds nothing
        (NodeKind.NETWORK, "chain"),  # there is one network, the root
    ],
)
def test_a_node_is_placed_only_where_its_kind_belongs(kind: NodeKind, parent: str) -> None:
    with pytest.raises(InvalidNetworkPlacement):
        chain().add(code="new", name="New", kind=kind, parent=parent, timezone="UTC")


def test_sub_networks_nest_to_any_depth() -> None:
    network = chain()
    network.add(code="north-east", name="North East", kind=SUB, parent="north")
    network.add(code="milan", name="Milan", kind=SUB, parent="north-east")

    assert network.path("milan") == ("chain", "north", "north-east", "milan")


def test_a_store_needs_a_time_zone() -> None:
    with pytest.raises(InvalidNetworkPlacement):
        chain().add(code="s9", name="S9", kind=STORE, parent="north")


def test_a_store_time_zone_must_be_a_known_zone() -> None:
    with pytest.raises(InvalidNetworkPlacement, match="time zone"):
        chain().add(code="s9", name="S9", kind=STORE, parent="north", timezone="Mars/Olympus")


def test_a_terminal_reads_the_clock_in_its_store_time_zone() -> None:
    location = chain().location("t3")

    assert location.timezone == "America/New_York"
    assert (location.store, location.terminal) == ("s3", "t3")
    assert (location.store_id, location.terminal_id) == (ids.node_id("s3"), ids.node_id("t3"))


def test_changing_a_store_time_zone_changes_its_terminals_clock() -> None:
    network = chain()

    network.change_timezone("s1", "Europe/London")

    assert network.location("t1").timezone == "Europe/London"


def test_only_a_store_has_a_time_zone() -> None:
    with pytest.raises(InvalidNetworkPlacement):
        chain().change_timezone("north", "Europe/Rome")


def test_a_store_cannot_move_to_an_unknown_time_zone() -> None:
    with pytest.raises(InvalidNetworkPlacement, match="time zone"):
        chain().change_timezone("s1", "Europe/Atlantis")


def test_moving_a_node_moves_its_whole_subtree() -> None:
    network = chain()

    network.move("s1", "south")

    assert network.path("t1") == ("chain", "south", "s1", "t1")
    assert network.subtree("south") == {"south", "s1", "t1", "s3", "t3"}
    assert network.subtree("north") == {"north"}


def test_moving_a_node_under_its_own_subtree_is_refused_as_a_cycle() -> None:
    network = chain()
    network.add(code="north-east", name="North East", kind=SUB, parent="north")

    with pytest.raises(CycleInNetwork):
        network.move("north", "north-east")
    assert network.path("north-east") == ("chain", "north", "north-east")


def test_a_node_cannot_be_moved_under_itself() -> None:
    with pytest.raises(CycleInNetwork):
        chain().move("north", "north")


def test_the_root_cannot_be_moved() -> None:
    with pytest.raises(CycleInNetwork):
        chain().move("chain", "north")


def test_a_move_must_respect_placement() -> None:
    with pytest.raises(InvalidNetworkPlacement):
        chain().move("t1", "north")


def test_moving_a_node_to_its_current_parent_records_nothing() -> None:
    network = chain()
    before = network.version

    network.move("s1", "north")

    assert network.version == before


def test_a_closed_terminal_refuses_movements() -> None:
    network = chain()

    network.close("t1")

    with pytest.raises(TerminalClosed):
        network.location("t1")


def test_closing_a_node_closes_its_subtree_for_movements() -> None:
    network = chain()

    network.close("north")

    with pytest.raises(TerminalClosed):
        network.location("t1")
    assert network.location("t3").terminal == "t3"


def test_closing_keeps_the_node_in_the_tree_and_its_history() -> None:
    network = chain()
    network.issue_terminal_key("t1", "k1", "d" * 64)

    network.close("s1")

    assert network.node("s1").closed
    assert network.path("t1") == ("chain", "north", "s1", "t1")
    assert network.node("t1").key_digests == {"k1": "d" * 64}
    assert replayed(network).nodes == network.nodes


def test_a_reopened_store_takes_movements_again() -> None:
    network = chain()
    network.close("s1")

    network.reopen("s1")

    assert network.location("t1").store == "s1"


def test_closing_a_closed_node_records_nothing() -> None:
    network = chain()
    network.close("s1")
    before = network.version

    network.close("s1")

    assert network.version == before


def test_the_root_network_cannot_be_closed() -> None:
    with pytest.raises(InvalidNetworkPlacement):
        chain().close("chain")


def test_only_a_terminal_has_a_location() -> None:
    with pytest.raises(UnknownNode):
        chain().location("s1")


def test_renaming_a_node_keeps_its_code_and_place() -> None:
    network = chain()

    network.rename("s1", "Store One")

    assert network.node("s1").name == "Store One"
    assert network.path("t1") == ("chain", "north", "s1", "t1")


def test_a_node_cannot_be_renamed_to_a_blank_name() -> None:
    network = chain()

    with pytest.raises(InvalidNetworkPlacement):
        network.rename("s1", "  ")
    assert network.node("s1").name == "Store 1"


def test_a_replayed_network_equals_the_one_that_recorded_the_events() -> None:
    network = chain()
    network.move("s1", "south")
    network.rename("s3", "Store Three")
    network.change_timezone("s3", "America/Chicago")

    copy = replayed(network)

    assert copy.nodes == network.nodes
    assert copy.subtree("south") == network.subtree("south")


def test_a_terminal_key_is_kept_only_as_its_digest() -> None:
    network = chain()
    secret = "a-high-entropy-secret"
    digest = hashlib.sha256(secret.encode()).hexdigest()

    network.issue_terminal_key("t1", "k1", digest)

    assert network.terminal_keys() == {digest: "t1"}
    issued = network.collect_events()[-1]
    assert isinstance(issued, Network.TerminalKeyIssued)
    assert secret not in repr(issued.__dict__)


def test_a_terminal_may_hold_several_keys() -> None:
    network = chain()

    network.issue_terminal_key("t1", "k1", "1" * 64)
    network.issue_terminal_key("t1", "k2", "2" * 64)

    assert network.terminal_keys() == {"1" * 64: "t1", "2" * 64: "t1"}


def test_a_revoked_key_no_longer_names_its_terminal() -> None:
    network = chain()
    network.issue_terminal_key("t1", "k1", "1" * 64)

    network.revoke_terminal_key("t1", "k1")

    assert network.terminal_keys() == {}


def test_only_a_terminal_is_given_a_key() -> None:
    with pytest.raises(InvalidNetworkPlacement):
        chain().issue_terminal_key("s1", "k1", "1" * 64)


def test_a_home_store_must_be_a_store() -> None:
    network = chain()

    assert network.store("s1").code == "s1"
    with pytest.raises(InvalidProgram):
        network.store("north")
    with pytest.raises(UnknownNode):
        network.store("nowhere")
