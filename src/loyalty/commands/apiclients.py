"""Managing third-party API clients and their keys (Backoffice API).

A key reads ``lk:<client>:<key id>:<secret>``: the client and key id say where to look,
the secret (256 random bits) is checked against the stored SHA-256 digest. It is shown
once, when issued.
"""

from __future__ import annotations

import hashlib
import secrets

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from psycopg.sql import SQL, Identifier

from loyalty.commands.ledger import Ledger
from loyalty.commands.operators import network_of
from loyalty.domain import ids
from loyalty.domain.apiclient import ApiClient, ApiFamily, client_scope
from loyalty.domain.errors import DuplicateCode, UnknownApiClient
from loyalty.domain.operator import normal_username

KEY_PREFIX = "lk"


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_key(name: str) -> tuple[str, str]:
    """A new key for client ``name``: (key id, key)."""
    key_id = secrets.token_hex(4)
    return key_id, f"{KEY_PREFIX}:{name}:{key_id}:{secrets.token_urlsafe(32)}"


def load_client(ledger: Ledger, name: str) -> ApiClient:
    try:
        client: Aggregate = ledger.repository.get(ids.api_client_id(normal_username(name)))
    except AggregateNotFoundError:
        raise UnknownApiClient(f"no API client is called {name!r}", client=name) from None
    assert isinstance(client, ApiClient)
    return client


def list_clients(ledger: Ledger) -> list[ApiClient]:
    schema = Identifier(ledger.settings.pg_schema)
    query = SQL("SELECT originator_id FROM {}.config_streams WHERE kind = 'api_client'")
    found = ledger.load_all(row[0] for row in ledger.query(query.format(schema)))
    return sorted((c for c in found.values() if isinstance(c, ApiClient)), key=lambda c: c.name)


def register_client(
    ledger: Ledger, name: str, families: tuple[ApiFamily, ...], scope: tuple[str, ...], by: str
) -> tuple[ApiClient, str]:
    """Registers a client with its first key; the client and the key (shown once)."""
    name = normal_username(name)
    if ledger.load_all([ids.api_client_id(name)]):
        raise DuplicateCode(f"an API client is already called {name!r}", client=name)
    client = ApiClient.register(name, families, client_scope(scope, network_of(ledger)), by)
    key_id, key = new_key(name)
    client.issue_key(key_id, key_digest(key), by)
    ledger.save(client)
    return client, key


def issue_client_key(ledger: Ledger, name: str, by: str) -> tuple[str, str]:
    """Another key for a client (to rotate keys): (key id, key)."""
    client = load_client(ledger, name)
    key_id, key = new_key(client.name)
    client.issue_key(key_id, key_digest(key), by)
    ledger.save(client)
    return key_id, key


def revoke_client_key(ledger: Ledger, name: str, key_id: str, by: str) -> None:
    client = load_client(ledger, name)
    client.revoke_key(key_id, by)
    ledger.save(client)
