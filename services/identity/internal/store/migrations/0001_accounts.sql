-- identity's tables inside a tenant's schema. Everything here belongs to
-- one tenant: a user, session or token of another tenant lives in another
-- schema and cannot be reached from this one.

CREATE TABLE settings (
    singleton           boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    signup_policy       text        NOT NULL DEFAULT 'OPEN' CHECK (signup_policy IN ('OPEN', 'INVITE_ONLY', 'CLOSED')),
    email_verification  text        NOT NULL DEFAULT 'OPTIONAL' CHECK (email_verification IN ('MANDATORY', 'OPTIONAL', 'OFF')),
    password_min_length int         NOT NULL DEFAULT 8 CHECK (password_min_length BETWEEN 8 AND 128),
    allowed_origins     text[]      NOT NULL DEFAULT '{}',
    version             bigint      NOT NULL DEFAULT 1,
    update_time         timestamptz NOT NULL DEFAULT now()
);
INSERT INTO settings DEFAULT VALUES;

CREATE TABLE users (
    id                   uuid        PRIMARY KEY,
    -- Emails are compared case-insensitively: stored lower-cased.
    email                text        NOT NULL,
    email_verified       boolean     NOT NULL DEFAULT false,
    username             text,
    display_name         text        NOT NULL DEFAULT '',
    -- argon2id in PHC format; NULL until an invited user sets a password.
    password_hash        text,
    roles                text[]      NOT NULL DEFAULT '{}',
    state                text        NOT NULL CHECK (state IN ('INVITED', 'ACTIVE')),
    disabled             boolean     NOT NULL DEFAULT false,
    create_time          timestamptz NOT NULL,
    update_time          timestamptz NOT NULL,
    last_login_time      timestamptz,
    password_change_time timestamptz,
    version              bigint      NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE UNIQUE INDEX users_username_key ON users (username) WHERE username IS NOT NULL;

-- A session is one login, kept alive by a chain of refresh tokens.
CREATE TABLE sessions (
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    create_time   timestamptz NOT NULL,
    refresh_time  timestamptz NOT NULL,
    expire_time   timestamptz NOT NULL,
    revoke_time   timestamptz,
    revoke_reason text,
    user_agent    text        NOT NULL DEFAULT '',
    client_ip     text        NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- Every refresh token ever issued, by SHA-256 hash. A used one presented
-- again means theft: the whole session is revoked.
CREATE TABLE refresh_tokens (
    token_hash  bytea       PRIMARY KEY,
    session_id  uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    create_time timestamptz NOT NULL,
    use_time    timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Single-use tokens (email verification, password reset, invitation),
-- stored hashed, bound to a user and a purpose.
CREATE TABLE one_time_tokens (
    token_hash  bytea       PRIMARY KEY,
    purpose     text        NOT NULL CHECK (purpose IN ('VERIFY_EMAIL', 'RESET_PASSWORD', 'INVITATION')),
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email       text        NOT NULL,
    create_time timestamptz NOT NULL,
    expire_time timestamptz NOT NULL,
    use_time    timestamptz
);
CREATE INDEX one_time_tokens_user_idx ON one_time_tokens (user_id, purpose);

-- Security events of this tenant.
CREATE TABLE audit_log (
    id        bigserial   PRIMARY KEY,
    time      timestamptz NOT NULL DEFAULT now(),
    event     text        NOT NULL,
    user_id   uuid,
    actor     text        NOT NULL DEFAULT '',
    client_ip text        NOT NULL DEFAULT '',
    details   jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_time_idx ON audit_log (time);
