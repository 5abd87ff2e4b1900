-- Idempotency records: one row per recorded movement, written in the same transaction
-- as its events. (source, movement_id) is the POS's key: source is the terminal code,
-- or "~operator" for adjustments. The response is kept byte for byte so that a retry
-- gets the identical answer; the digest tells a retry from a different body.
CREATE TABLE movement_keys (
    source text NOT NULL,
    movement_id text NOT NULL,
    request_digest bytea NOT NULL,
    response bytea NOT NULL,
    account_id uuid NOT NULL,
    account_version bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, movement_id)
);

-- Returns find the movement they give back among the account's own movements.
CREATE INDEX movement_keys_account_idx ON movement_keys (account_id, movement_id);
