-- Two-factor sign-in. A password that is right for an operator with a second factor
-- yields a short-lived, single-use challenge (kind 'challenge') to answer with a code.
-- An operator whose role requires a second factor but who has none yet gets a restricted
-- session: it may only enrol one (and see itself, and sign out).
ALTER TABLE auth_tokens DROP CONSTRAINT auth_tokens_kind_check;
ALTER TABLE auth_tokens ADD CONSTRAINT auth_tokens_kind_check
    CHECK (kind IN ('access', 'refresh', 'challenge'));
ALTER TABLE auth_tokens ADD COLUMN restricted boolean NOT NULL DEFAULT false;
