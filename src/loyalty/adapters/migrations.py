"""Plain numbered SQL migrations, applied in order, recorded, safe to run twice.

Each ``migrations/NNNN_name.sql`` runs once, in its own transaction, as the owner of the
event store's schema, with that schema first on the ``search_path``; the key store's
files (``migrations/keystore/``) likewise in its own schema, as its own role, and the read
side's (``migrations/read/``) in ``<schema>_read``, owned by the event store's role.
``schema_migrations`` records each file's number, name and SHA-256. A file that changed
after it was applied is refused rather than half-reapplied.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from importlib.resources.abc import Traversable

import msgspec
import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from loyalty.domain.errors import LoyaltyError
from loyalty.settings import Settings

LOCK_KEY = 0x10_7A17  # pg_advisory_xact_lock key that serializes concurrent runs


class MigrationChanged(LoyaltyError):
    code = "migration_changed"


class Migration(msgspec.Struct, frozen=True):
    number: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def bundled_migrations(folder: str = "") -> list[Migration]:
    """The numbered files of ``migrations/`` (the event store's) or of a sub-folder
    (``keystore``)."""
    root: Traversable = resources.files("loyalty") / "migrations"
    if folder:
        root = root / folder
    found = []
    for entry in root.iterdir():
        if entry.name.endswith(".sql") and entry.name[:4].isdigit():
            found.append(
                Migration(number=int(entry.name[:4]), name=entry.name, sql=entry.read_text())
            )
    return sorted(found, key=lambda m: m.number)


def apply_migrations(settings: Settings) -> list[str]:
    """Applies what is missing, as the administrator: makes the event store's and the key
    store's roles and schemas if they are missing, then runs each schema's files as the
    schema's owner, and lets the event store's role make the read side's schemas. Returns
    the names of the files applied."""
    applied = []
    with psycopg.connect(settings.admin_conninfo()) as conn:
        stores = (
            (settings.pg_schema, settings.pg_user, ""),
            (settings.keystore_schema, settings.keystore_user, "keystore"),
            (settings.read_schema, settings.pg_user, "read"),
        )
        for schema, owner, folder in stores:
            prepare(conn, schema, owner)
            for migration in bundled_migrations(folder):
                if apply_one(conn, schema, owner, migration):
                    applied.append(f"{folder}/{migration.name}" if folder else migration.name)
        let_read_side_make_schemas(conn, settings)
    return applied


def let_read_side_make_schemas(conn: psycopg.Connection[TupleRow], settings: Settings) -> None:
    """Document read models keep each generation in a schema of its own
    (``<schema>_read_<name>_<generation>``), made and dropped by the event store's role."""
    with conn.transaction():
        conn.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(settings.pg_db), sql.Identifier(settings.pg_user)
            )
        )


def prepare(conn: psycopg.Connection[TupleRow], schema: str, owner: str) -> None:
    """The role ``owner`` (a login without other privileges), and ``schema`` owned by it
    with everything in it (a schema made before roles were separated is handed over);
    nobody else may use the schema."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(owner)))
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                sql.Identifier(schema), sql.Identifier(owner)
            )
        )
        conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL(HAND_OVER).format(schema=sql.Literal(schema), owner=sql.Literal(owner))
        )
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(owner)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_migrations ("
                " number integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(sql.Identifier(schema))
        )


HAND_OVER = """
DO $$
DECLARE
    target text := {schema};
    owner text := {owner};
    item record;
BEGIN
    IF (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = target) <> owner THEN
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', target, owner);
    END IF;
    FOR item IN
        SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = target AND c.relkind IN ('r', 'S', 'v', 'm')
          AND c.relowner::regrole::text <> owner
          AND NOT (c.relkind = 'S' AND EXISTS (
              SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'a'))
    LOOP
        EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', target, item.relname, owner);
    END LOOP;
    FOR item IN
        SELECT p.oid::regprocedure::text AS signature FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = target AND p.proowner::regrole::text <> owner
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO %I', item.signature, owner);
    END LOOP;
    FOR item IN
        SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = target AND t.typtype = 'c' AND t.typowner::regrole::text <> owner
          AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid AND c.relkind <> 'c')
    LOOP
        EXECUTE format('ALTER TYPE %I.%I OWNER TO %I', target, item.typname, owner);
    END LOOP;
END
$$
"""


def apply_one(
    conn: psycopg.Connection[TupleRow], schema: str, owner: str, migration: Migration
) -> bool:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(owner)))
        row = conn.execute(
            sql.SQL("SELECT checksum FROM {}.schema_migrations WHERE number = %s").format(
                sql.Identifier(schema)
            ),
            (migration.number,),
        ).fetchone()
        if row is not None:
            if row[0] != migration.checksum:
                raise MigrationChanged(
                    f"{migration.name} changed after it was applied; add a new migration instead"
                )
            return False
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(migration.sql.encode())
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.schema_migrations (number, name, checksum) VALUES (%s, %s, %s)"
            ).format(sql.Identifier(schema)),
            (migration.number, migration.name, migration.checksum),
        )
    return True
