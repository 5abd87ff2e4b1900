-- The key store: one data key per customer, wrapped (AES-256-GCM) by the master key.
-- It lives in its own schema, owned by its own role; the event store's role has no
-- privilege on it. Erasure destroys a key: the row stays, as the record that the key
-- existed and when it was destroyed, with nothing left to open the customer's data.
CREATE TABLE data_keys (
    customer_id uuid PRIMARY KEY,
    wrapped bytea,
    master_key_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz,
    CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL)),
    CHECK ((wrapped IS NULL) = (master_key_id IS NULL))
);
