-- Operators' sessions: opaque bearer tokens, kept only as SHA-256 digests. A sign-in
-- starts a family; each refresh rotates the pair (the refresh token used is marked). A
-- refresh token presented twice means it leaked: the whole family is revoked. Sign-out
-- revokes the family too. Access tokens are short-lived; both kinds expire.
CREATE TABLE auth_tokens (
    token_digest bytea PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('access', 'refresh')),
    family uuid NOT NULL,
    operator_id uuid NOT NULL,
    issued_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz
);

CREATE INDEX auth_tokens_family_idx ON auth_tokens (family);

-- Failed sign-ins per client address (an HMAC of it, never the address), for the
-- per-address throttle. Rows older than the throttle window are deleted as they age.
CREATE TABLE sign_in_failures (
    address_digest bytea NOT NULL,
    failed_at timestamptz NOT NULL
);

CREATE INDEX sign_in_failures_address_idx ON sign_in_failures (address_digest, failed_at);
