"""Configuration, read once from the environment at start-up.

Every setting has a documented environment variable and a safe default:

=================================  ===========================================  ==================
variable                           meaning                                      default
=================================  ===========================================  ==================
``LOYALTY_PG_HOST``                PostgreSQL host                              ``127.0.0.1``
``LOYALTY_PG_PORT``                PostgreSQL port                              ``5432``
``LOYALTY_PG_DB``                  database name                                ``loyalty``
``LOYALTY_PG_USER``                the event store's role (no superuser; owns   ``loyalty_ledger``
                                   the event store's schema)
``LOYALTY_PG_PASSWORD``            database password                            (empty)
``LOYALTY_PG_SCHEMA``              schema holding the event store and indexes   ``loyalty``
``LOYALTY_PG_POOL_SIZE``           connections kept by the event store pool     ``4``
``LOYALTY_HTTP_HOST``              address the API listens on                   ``127.0.0.1``
``LOYALTY_HTTP_PORT``              port the API listens on                      ``8000``
``LOYALTY_HTTP_WORKERS``           API server processes (each with its own      ``2``
                                   group-commit writer; one per core)
``LOYALTY_MAX_BODY_BYTES``         largest accepted request body                ``1048576``
``LOYALTY_MAX_BATCH``              most movements committed in one transaction  ``256``
``LOYALTY_MAX_FUTURE_SKEW_S``      how far ``occurred_at`` may lie in the       ``300``
                                   future (seconds; tills' clocks drift)
``LOYALTY_AGGREGATE_CACHE``        cards and accounts a writer process keeps    ``200000``
                                   in memory (more: fewer reads of their
                                   history from the log, more memory)
``LOYALTY_SECRET_KEY``             the deployment's secret (32+ bytes, base64)  (key file)
``LOYALTY_SECRET_KEY_FILE``        where the secret is kept when not given      ``var/secret.key``
``LOYALTY_ACCESS_TOKEN_TTL_S``     operators' access tokens live (seconds)      ``900``
``LOYALTY_REFRESH_TOKEN_TTL_S``    refresh tokens live (seconds)                ``43200``
``LOYALTY_DEFAULT_LOCALE``         messages' language when a request asks none ``en``
``LOYALTY_TWO_FACTOR_ROLES``       roles that must sign in with a second factor ``admin``
                                   (comma-separated; empty for none)
``LOYALTY_CHECKPOINT_INTERVAL_S``  how often the server signs the log's head     ``60``
                                   (0: never; ``loyalty audit checkpoint`` does)
``LOYALTY_PG_ADMIN_USER``          the role that creates databases, roles and   ``postgres``
                                   schemas (``loyalty migrate``, set-up)
``LOYALTY_PG_ADMIN_PASSWORD``      its password                                 (empty)
``LOYALTY_KEYSTORE_USER``          the key store's role: owns the schema of     ``loyalty_keys``
                                   customers' data keys (``<schema>_keys``),
                                   which the event store's role cannot read
``LOYALTY_KEYSTORE_PASSWORD``      its password                                 (empty)
``LOYALTY_MASTER_KEY``             the master key wrapping data keys (32 bytes, (key file)
                                   base64)
``LOYALTY_MASTER_KEY_FILE``        where it is kept when not given              ``var/master.key``
``LOYALTY_PREVIOUS_MASTER_KEY``    during a rotation: the master key being      (empty)
                                   replaced (data keys it wrapped still open)
``LOYALTY_WITHDRAWAL_DELAY_H``     how long after a withdrawal a contact may    ``48``
                                   still go out (sample checks flag later ones)
``LOYALTY_RETENTION_PROFILE_DAYS`` a customer inactive this long is erased       ``0`` (never)
``LOYALTY_RETENTION_AUTH_DAYS``    expired tokens and failed sign-ins are       ``30``
                                   deleted after this long
``LOYALTY_RETENTION_INTERVAL_H``   how often the server applies retention      ``24``
                                   (0: never; ``loyalty privacy retention`` does)
``LOYALTY_PROJECTION_BATCH``        most events a projection applies in one     ``5000``
                                   transaction
``LOYALTY_PROJECTION_FLUSH_MS``     longest a projection holds events before    ``50``
                                   applying them (the lag it adds when idle)
``LOYALTY_FILL_PARALLEL_FROM``      shortest log a rebuild folds in worker      ``100000``
                                   processes (one per core) rather than itself
``LOYALTY_DOCUMENT_STORE``          where document read models live:            ``postgres``
                                   ``postgres`` or ``mongodb``
``LOYALTY_MONGO_URL``               the MongoDB server of ``mongodb``           (empty)
``LOYALTY_READ_WAIT_S``             longest an analytics read waits for a       ``5``
                                   position it asks for (read-your-writes)
``LOYALTY_RFM_INTERVAL_H``          how often the server recomputes RFM with    ``24``
                                   the saved parameters (0: on demand only)
``LOYALTY_CLUSTER_INTERVAL_H``      how often the server re-evaluates dynamic   ``24``
                                   clusters' members (0: on demand only)
``LOYALTY_NATS_URL``                the NATS server committed events are         ``nats://127.0.0.1:4222``
                                    published to (JetStream)
``LOYALTY_NATS_STREAM``             their JetStream stream                       ``<SCHEMA>_EVENTS``
``LOYALTY_NATS_SUBJECT``            their subjects' prefix                       ``<schema>.events``
=================================  ===========================================  ==================

A variable that does not hold a value of its setting (a count that is not a whole number of
at least 1, say) is refused at start-up with :class:`~loyalty.domain.errors.InvalidSetting`,
which names it; its value is not repeated (it may be a secret).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated

import msgspec

from loyalty.domain.errors import InvalidSetting

Count = Annotated[int, msgspec.Meta(ge=1)]
"""How many of something there must be at least one of (processes, connections, rows)."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_db: str = "loyalty"
    pg_user: str = "loyalty_ledger"
    pg_password: str = ""
    pg_schema: str = "loyalty"
    pg_pool_size: Count = 4
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    http_workers: Count = 2
    max_body_bytes: Count = 1_048_576
    max_batch: Count = 256
    max_future_skew_s: int = 300
    aggregate_cache: Count = 200_000
    secret_key: str = ""
    secret_key_file: str = "var/secret.key"
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 43_200
    two_factor_roles: str = "admin"
    default_locale: str = "en"
    checkpoint_interval_s: int = 60
    pg_admin_user: str = "postgres"
    pg_admin_password: str = ""
    keystore_user: str = "loyalty_keys"
    keystore_password: str = ""
    master_key: str = ""
    master_key_file: str = "var/master.key"
    previous_master_key: str = ""
    withdrawal_delay_h: int = 48
    retention_profile_days: int = 0
    retention_auth_days: int = 30
    retention_interval_h: int = 24
    projection_batch: Count = 5_000
    projection_flush_ms: int = 50
    fill_parallel_from: int = 100_000
    document_store: str = "postgres"
    mongo_url: str = ""
    read_wait_s: float = 5.0
    rfm_interval_h: int = 24
    cluster_interval_h: int = 24
    nats_url: str = "nats://127.0.0.1:4222"
    nats_stream: str = ""
    nats_subject: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Reads every ``LOYALTY_*`` variable that names a field; the rest keep defaults."""
        environ = os.environ if environ is None else environ
        given = {
            field: environ[f"LOYALTY_{field.upper()}"]
            for field in cls.__struct_fields__
            if f"LOYALTY_{field.upper()}" in environ
        }
        try:
            return msgspec.convert(given, cls, strict=False)
        except msgspec.ValidationError as error:
            reason, _, path = str(error).partition(" - at `$.")
            variable = f"LOYALTY_{path.rstrip('`').upper()}"
            message = f"{variable} is not valid: {reason[:1].lower()}{reason[1:]}"
            raise InvalidSetting(message, variable=variable) from None

    def conninfo(self) -> str:
        """A libpq connection string for this database."""
        return psycopg_conninfo(
            host=self.pg_host,
            port=self.pg_port,
            dbname=self.pg_db,
            user=self.pg_user,
            password=self.pg_password,
        )

    def admin_conninfo(self, dbname: str | None = None) -> str:
        """The administrator's connection (creating databases, roles, schemas)."""
        return psycopg_conninfo(
            host=self.pg_host,
            port=self.pg_port,
            dbname=dbname or self.pg_db,
            user=self.pg_admin_user,
            password=self.pg_admin_password,
        )

    def keystore_conninfo(self) -> str:
        """The key store's connection: its own role, which alone reads the data keys."""
        return psycopg_conninfo(
            host=self.pg_host,
            port=self.pg_port,
            dbname=self.pg_db,
            user=self.keystore_user,
            password=self.keystore_password,
        )

    @property
    def keystore_schema(self) -> str:
        return f"{self.pg_schema}_keys"

    @property
    def events_stream(self) -> str:
        """The JetStream stream of committed events (one per deployment's schema)."""
        return self.nats_stream or f"{self.pg_schema.upper()}_EVENTS"

    @property
    def events_subject(self) -> str:
        return self.nats_subject or f"{self.pg_schema}.events"

    @property
    def read_schema(self) -> str:
        """The read models' schema (owned by the event store's role, rebuilt at will)."""
        return f"{self.pg_schema}_read"


def psycopg_conninfo(**params: object) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(**{k: str(v) for k, v in params.items() if v != ""})
