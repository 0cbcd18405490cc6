-- Each tenant is an OpenID Provider (issue 11).
--
-- A grant is a session that an OAuth client holds for a user: the same
-- row, refresh rotation and reuse detection as a login's session, plus the
-- client, the scopes granted and when the user authenticated. A login's own
-- session has no client. sso_session_id names the browser session the user
-- was logged in with when the grant was made, so that ending that session
-- (RP-initiated logout) ends the grants made from it. Deleting a client
-- ends its grants.
ALTER TABLE sessions
    ADD COLUMN client_id      text        REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    ADD COLUMN scopes         text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN auth_time      timestamptz,
    ADD COLUMN sso_session_id uuid;
CREATE INDEX sessions_sso_idx ON sessions (sso_session_id) WHERE sso_session_id IS NOT NULL;

-- Authorization requests between /oauth/authorize and the code exchange:
-- short-lived (expire_time), bound to the browser that started them
-- (binding_hash, the SHA-256 of a cookie), completed once the user has
-- logged in (user_id), and exchanged once (code_hash, code_use_time). A
-- code presented again ends the grant it produced (grant_id).
CREATE TABLE oauth_auth_requests (
    id               uuid        PRIMARY KEY,
    client_id        text        NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    -- The request's parameters as identity keeps them (redirect_uri,
    -- scopes, state, nonce, PKCE challenge, prompt, max_age, ...).
    params           jsonb       NOT NULL,
    binding_hash     bytea       NOT NULL CHECK (octet_length(binding_hash) = 32),
    user_id          uuid        REFERENCES users (id) ON DELETE CASCADE,
    sso_session_id   uuid,
    auth_time        timestamptz,
    amr              text[]      NOT NULL DEFAULT '{}',
    code_hash        bytea       UNIQUE CHECK (octet_length(code_hash) = 32),
    code_use_time    timestamptz,
    grant_id         uuid,
    create_time      timestamptz NOT NULL,
    expire_time      timestamptz NOT NULL,
    CHECK ((user_id IS NULL) = (auth_time IS NULL)),
    CHECK (code_hash IS NULL OR user_id IS NOT NULL)
);
CREATE INDEX oauth_auth_requests_expire_idx ON oauth_auth_requests (expire_time);

-- The scopes a user agreed to give a third-party client; first-party
-- clients need none.
CREATE TABLE oauth_consents (
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id   text        NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    scopes      text[]      NOT NULL,
    update_time timestamptz NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
