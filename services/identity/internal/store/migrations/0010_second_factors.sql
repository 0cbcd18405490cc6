-- Second factors (issue 12): an authenticator app (TOTP, RFC 6238) and
-- single-use recovery codes per account, and the MFA challenge of a login
-- whose password was right, a single-use token like the others.

-- At most one authenticator app per account. The secret is sealed
-- (AES-256-GCM under a key derived from the key-encryption key, bound to
-- the tenant and the user), never stored in the clear. confirm_time is
-- NULL while the enrolment waits for its first code; only a confirmed app
-- is asked for at login. last_used_step is the time step (Unix seconds /
-- 30) of the last code accepted: a code of that step or an earlier one is
-- refused, so each code works once.
CREATE TABLE totp_factors (
    user_id        uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed  bytea       NOT NULL,
    create_time    timestamptz NOT NULL,
    confirm_time   timestamptz,
    last_used_step bigint      NOT NULL DEFAULT 0
);

-- Recovery codes, by SHA-256 hash only (each has 80 random bits: nothing
-- to search). A used one keeps its row, with use_time, until the codes are
-- regenerated or the factor removed.
CREATE TABLE recovery_codes (
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   bytea       NOT NULL,
    create_time timestamptz NOT NULL,
    use_time    timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

ALTER TABLE one_time_tokens DROP CONSTRAINT one_time_tokens_purpose_check;
ALTER TABLE one_time_tokens ADD CONSTRAINT one_time_tokens_purpose_check
    CHECK (purpose IN ('VERIFY_EMAIL', 'RESET_PASSWORD', 'INVITATION', 'MFA_CHALLENGE'));
