"""Changing the network from the Backoffice API: one change, one save, retried if the
program was being applied meanwhile (the program revision then moves for every reader)."""

from __future__ import annotations

from collections.abc import Callable

from eventsourcing.persistence import IntegrityError

from loyalty.commands.ledger import Ledger
from loyalty.commands.operators import network_of
from loyalty.domain.errors import ConcurrentUpdate
from loyalty.domain.network import Network

ATTEMPTS = 3


def change_network(ledger: Ledger, change: Callable[[Network], None]) -> Network:
    """Applies ``change`` to the current network and saves it; the network after it."""
    for _ in range(ATTEMPTS):
        network = network_of(ledger)
        change(network)
        try:
            ledger.save(network)
        except IntegrityError:
            continue
        return network
    raise ConcurrentUpdate("the network kept changing meanwhile; retry")
