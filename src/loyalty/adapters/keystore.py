"""The key store: one data key per customer, wrapped by the master key, in a schema only
the key store's role can read (``<schema>_keys``, see ``migrations/keystore``).

Personal fields are sealed with AES-256-GCM under their customer's data key before they
enter any event (:class:`PersonalCipher`, used by the event store's mapper); destroying
the data key (erasure) leaves only ciphertext nobody can open. The master key comes from
``LOYALTY_MASTER_KEY`` or the key file ``LOYALTY_MASTER_KEY_FILE``; rotating it re-wraps
every data key (:meth:`KeyStore.rotate`), with the previous master key given as
``LOYALTY_PREVIOUS_MASTER_KEY`` until the rotation is done.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import sql

from loyalty.domain.errors import CustomerErased, UnknownMasterKey
from loyalty.settings import Settings

KEY_BYTES = 32
NONCE_BYTES = 12
CACHE_SIZE = 100_000
CACHE_SECONDS = 60.0
"""How long a process may keep a data key in memory: an erasure is complete everywhere
within this time (the aggregates themselves forget the profile at once)."""


class MasterKey:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a master key is {KEY_BYTES} bytes (base64 in the environment)")
        self.id = hashlib.sha256(key).hexdigest()[:16]
        self._aead = AESGCM(key)

    def wrap(self, data_key: bytes, customer_id: UUID) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, customer_id.bytes)

    def unwrap(self, wrapped: bytes, customer_id: UUID) -> bytes:
        return self._aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], customer_id.bytes)


def master_keys(settings: Settings) -> tuple[MasterKey, MasterKey | None]:
    """The current master key (made once, mode 0600, when neither variable nor file gives
    one) and, during a rotation, the previous one."""
    if settings.master_key:
        current = base64.b64decode(settings.master_key)
    else:
        path = Path(settings.master_key_file)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(secrets.token_bytes(KEY_BYTES))
        current = path.read_bytes()
    previous = (
        base64.b64decode(settings.previous_master_key) if settings.previous_master_key else None
    )
    return MasterKey(current), MasterKey(previous) if previous else None


class KeyStore:
    """Data keys by customer, through the key store's own role and connection."""

    def __init__(self, settings: Settings, current: MasterKey, previous: MasterKey | None) -> None:
        self.conninfo = settings.keystore_conninfo()
        self.current = current
        self.previous = previous
        table = sql.Identifier(settings.keystore_schema, "data_keys")
        self._select = sql.SQL(
            "SELECT wrapped, master_key_id, destroyed_at IS NOT NULL FROM {} WHERE customer_id = %s"
        ).format(table)
        self._insert = sql.SQL(
            "INSERT INTO {} (customer_id, wrapped, master_key_id) VALUES (%s, %s, %s)"
            " ON CONFLICT (customer_id) DO NOTHING"
        ).format(table)
        self._destroy = sql.SQL(
            "INSERT INTO {} (customer_id, wrapped, master_key_id, destroyed_at)"
            " VALUES (%s, NULL, NULL, now()) ON CONFLICT (customer_id) DO UPDATE"
            " SET wrapped = NULL, master_key_id = NULL,"
            " destroyed_at = coalesce({}.destroyed_at, now())"
        ).format(table, table)
        self._destroyed = sql.SQL(
            "SELECT customer_id FROM {} WHERE destroyed_at IS NOT NULL"
        ).format(table)
        self._stale = sql.SQL(
            "SELECT customer_id, wrapped, master_key_id FROM {}"
            " WHERE wrapped IS NOT NULL AND master_key_id <> %s"
        ).format(table)
        self._rewrap = sql.SQL(
            "UPDATE {} SET wrapped = %s, master_key_id = %s WHERE customer_id = %s"
            " AND master_key_id = %s"
        ).format(table)
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[tuple[Any, ...]] | None = None
        self._cache: OrderedDict[UUID, tuple[bytes | None, float]] = OrderedDict()

    def connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self.conninfo, autocommit=True)
        return self._connection

    def key_for(self, customer_id: UUID) -> bytes:
        """The customer's data key, made on first use; refused once destroyed."""
        key = self.existing_key(customer_id)
        if key is not None:
            return key
        fresh = AESGCM.generate_key(bit_length=256)
        with self._lock:
            self.connection().execute(
                self._insert,
                (customer_id, self.current.wrap(fresh, customer_id), self.current.id),
            )
            self._cache.pop(customer_id, None)
        key = self.existing_key(customer_id)
        if key is None:
            raise CustomerErased("this customer was erased: their data cannot be written again")
        return key

    def existing_key(self, customer_id: UUID) -> bytes | None:
        """The customer's data key, or ``None`` if they have none or it was destroyed."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(customer_id)
            if cached is not None and now - cached[1] < CACHE_SECONDS:
                self._cache.move_to_end(customer_id)
                return cached[0]
            row = self.connection().execute(self._select, (customer_id,)).fetchone()
            key = self.unwrap(customer_id, *row) if row else None
            if row is not None:
                self._cache[customer_id] = (key, now)
                if len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
            return key

    def destroyed(self) -> set[UUID]:
        """The customers whose data key was destroyed (erased)."""
        with self._lock:
            rows = self.connection().execute(self._destroyed).fetchall()
        return {row[0] for row in rows}

    def unwrap(
        self, customer_id: UUID, wrapped: bytes | None, master_key_id: str | None, destroyed: bool
    ) -> bytes | None:
        if destroyed or wrapped is None:
            return None
        for master in (self.current, self.previous):
            if master is not None and master.id == master_key_id:
                return master.unwrap(bytes(wrapped), customer_id)
        raise UnknownMasterKey(
            f"the data key of customer {customer_id} is wrapped by master key"
            f" {master_key_id}, which is neither LOYALTY_MASTER_KEY (or its file) nor"
            " LOYALTY_PREVIOUS_MASTER_KEY: configure the key this store was written with",
            master_key_id=master_key_id,
        )

    def destroy(self, customer_id: UUID) -> None:
        """Destroys the customer's data key for good (erasure); safe to repeat."""
        with self._lock:
            self.connection().execute(self._destroy, (customer_id,))
            self._cache.pop(customer_id, None)

    def rotate(self) -> int:
        """Re-wraps under the current master key every data key wrapped by the previous
        one; the number re-wrapped. Run it with both keys configured, then drop the
        previous one."""
        done = 0
        with self._lock:
            rows = self.connection().execute(self._stale, (self.current.id,)).fetchall()
            for customer_id, wrapped, master_key_id in rows:
                key = self.unwrap(customer_id, wrapped, master_key_id, False)
                assert key is not None
                self.connection().execute(
                    self._rewrap,
                    (
                        self.current.wrap(key, customer_id),
                        self.current.id,
                        customer_id,
                        master_key_id,
                    ),
                )
                done += 1
            self._cache.clear()
        return done

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


class PersonalCipher:
    """Seals and opens personal fields with their customer's data key (AES-256-GCM; the
    customer id and the field name are the associated data)."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def seal(self, customer_id: UUID, field: str, plaintext: bytes) -> bytes:
        aead = AESGCM(self.keys.key_for(customer_id))
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + aead.encrypt(nonce, plaintext, customer_id.bytes + field.encode())

    def open(self, customer_id: UUID, field: str, sealed: bytes) -> bytes | None:
        """The plaintext, or ``None`` when the data key was destroyed (erased customer)."""
        key = self.keys.existing_key(customer_id)
        if key is None:
            return None
        try:
            return AESGCM(key).decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], customer_id.bytes + field.encode()
            )
        except InvalidTag:
            raise ValueError(f"personal field {field} of {customer_id} does not open") from None
