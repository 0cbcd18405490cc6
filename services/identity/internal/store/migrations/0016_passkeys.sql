-- Passkeys (WebAuthn, issue 12): credentials registered from a signed-in
-- account, used as a second factor or to log in without a password.
--
-- A passkey is go-webauthn's credential record (public key, sign count,
-- flags, attestation) as JSON, with the columns the rules look up by:
-- credential_id (what an assertion names; unique in the tenant) and the
-- relying party id (the tenant host it was made on). Nothing in it is
-- secret: the private key never leaves the authenticator.
CREATE TABLE passkeys (
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id bytea       NOT NULL UNIQUE,
    rp_id         text        NOT NULL,
    display_name  text        NOT NULL,
    credential    jsonb       NOT NULL,
    create_time   timestamptz NOT NULL,
    last_use_time timestamptz
);
CREATE INDEX passkeys_user_idx ON passkeys (user_id);

-- A ceremony begun and not finished: go-webauthn's session data (the
-- challenge, the relying party id and origin, the credentials allowed),
-- kept here rather than with the client, by the SHA-256 of the random
-- token the client holds. kind says which Finish call may use it; user_id
-- is the registering, second-factor or reauthenticating user (NULL for a
-- login without a password, which names no user until the assertion
-- does); mfa_challenge_hash is the hash of the login's MFA challenge a
-- second-factor ceremony answers. Single use (use_time) and short-lived (expire_time); being in
-- the tenant's schema, another tenant's host does not find it.
CREATE TABLE passkey_ceremonies (
    token_hash         bytea       PRIMARY KEY,
    kind               text        NOT NULL CHECK (kind IN ('register', 'login', 'mfa', 'reauth')),
    user_id            uuid        REFERENCES users (id) ON DELETE CASCADE,
    mfa_challenge_hash bytea,
    session            jsonb       NOT NULL,
    create_time        timestamptz NOT NULL,
    expire_time        timestamptz NOT NULL,
    use_time           timestamptz
);
CREATE INDEX passkey_ceremonies_expire_idx ON passkey_ceremonies (expire_time);
