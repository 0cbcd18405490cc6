-- OAuth 2.0 / OpenID Connect clients registered in this tenant: the
-- applications that sign the tenant's users in, and services that get
-- tokens of their own. A client of another tenant lives in another schema.
--
-- The checks repeat the rules identity applies before it writes (the
-- account package), so that a row breaking them cannot exist whatever
-- wrote it.
CREATE TABLE oauth_clients (
    -- "oc_" and 128 random bits in hexadecimal, chosen by identity.
    client_id                     text        PRIMARY KEY CHECK (client_id ~ '^oc_[0-9a-f]{32}$'),
    display_name                  text        NOT NULL CHECK (display_name <> ''),
    client_type                   text        NOT NULL CHECK (client_type IN ('CONFIDENTIAL', 'PUBLIC')),
    -- SHA-256 of a confidential client's secret (256 random bits, so a
    -- fast hash is enough); the secret itself is never stored. NULL for a
    -- public client, which has none.
    secret_hash                   bytea       CHECK (octet_length(secret_hash) = 32),
    secret_create_time            timestamptz,
    -- Compared with an authorization request's as exact strings.
    redirect_uris                 text[]      NOT NULL DEFAULT '{}',
    post_logout_redirect_uris     text[]      NOT NULL DEFAULT '{}',
    grant_types                   text[]      NOT NULL CHECK (cardinality(grant_types) > 0
        AND grant_types <@ ARRAY['authorization_code', 'refresh_token', 'client_credentials']),
    scopes                        text[]      NOT NULL DEFAULT '{}',
    -- The tenant's own application: its users are not asked to consent.
    first_party                   boolean     NOT NULL DEFAULT false,
    -- NULL: the service's default lifetime.
    access_token_lifetime_seconds integer     CHECK (access_token_lifetime_seconds BETWEEN 60 AND 86400),
    id_token_signed_response_alg  text        NOT NULL DEFAULT 'RS256' CHECK (id_token_signed_response_alg IN ('RS256', 'EdDSA')),
    disabled                      boolean     NOT NULL DEFAULT false,
    create_time                   timestamptz NOT NULL,
    update_time                   timestamptz NOT NULL,
    version                       bigint      NOT NULL DEFAULT 1,
    CONSTRAINT oauth_clients_secret_iff_confidential
        CHECK ((client_type = 'CONFIDENTIAL') = (secret_hash IS NOT NULL AND secret_create_time IS NOT NULL)),
    CONSTRAINT oauth_clients_client_credentials_confidential
        CHECK (client_type = 'CONFIDENTIAL' OR NOT 'client_credentials' = ANY (grant_types))
);
-- ListOAuthClients pages in the order of creation.
CREATE INDEX oauth_clients_create_idx ON oauth_clients (create_time, client_id);
