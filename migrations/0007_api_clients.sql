-- Tokens are issued to operators and to third-party API clients (in exchange for an API
-- key). A client's token records the key it came from, so that revoking the key ends it.
ALTER TABLE auth_tokens RENAME COLUMN operator_id TO subject_id;
ALTER TABLE auth_tokens ADD COLUMN subject_kind text NOT NULL DEFAULT 'operator'
    CHECK (subject_kind IN ('operator', 'client'));
ALTER TABLE auth_tokens ADD COLUMN key_id text;
