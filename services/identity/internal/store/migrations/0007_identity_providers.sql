-- Other identity providers this tenant's users sign in with ("Sign in with
-- Google"), and which of their accounts there log in to which account here.
-- Identity is the OAuth 2.0 client of each provider.
--
-- The checks repeat the rules identity applies before it writes (the
-- account package), so that a row breaking them cannot exist whatever
-- wrote it.
CREATE TABLE identity_providers (
    -- Chosen by the admin; in the redirect URI registered at the provider.
    provider_id   text        PRIMARY KEY CHECK (provider_id ~ '^[a-z][a-z0-9-]{0,39}$'),
    display_name  text        NOT NULL CHECK (display_name <> ''),
    kind          text        NOT NULL CHECK (kind IN ('oidc', 'google', 'microsoft', 'github')),
    -- The OpenID Connect issuer (kind oidc, optionally microsoft); '' for
    -- the presets' fixed issuers.
    issuer        text        NOT NULL DEFAULT '',
    client_id     text        NOT NULL CHECK (client_id <> ''),
    -- The client secret sealed with AES-256-GCM under a key derived from
    -- the service's key-encryption key, bound to the tenant and provider
    -- (see package sealbox): a copy of the database alone does not reveal
    -- it.
    client_secret bytea       NOT NULL,
    scopes        text[]      NOT NULL DEFAULT '{}',
    allow_signup  boolean     NOT NULL DEFAULT false,
    disabled      boolean     NOT NULL DEFAULT false,
    create_time   timestamptz NOT NULL,
    update_time   timestamptz NOT NULL,
    version       bigint      NOT NULL DEFAULT 1,
    CONSTRAINT identity_providers_issuer CHECK (kind IN ('oidc', 'microsoft') OR issuer = ''),
    CONSTRAINT identity_providers_oidc_issuer CHECK (kind <> 'oidc' OR issuer <> '')
);

-- A user's account at a provider, by the provider's stable id for it (the
-- ID token's sub, GitHub's numeric user id): never by email, which an
-- account at a provider can change.
CREATE TABLE linked_identities (
    provider_id     text        NOT NULL REFERENCES identity_providers (provider_id) ON DELETE CASCADE,
    subject         text        NOT NULL CHECK (subject <> '' AND octet_length(subject) <= 255),
    user_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The email the provider gave, as it gave it, for people to recognise
    -- the link; never used to find the account.
    email           text        NOT NULL DEFAULT '',
    create_time     timestamptz NOT NULL,
    last_login_time timestamptz,
    PRIMARY KEY (provider_id, subject),
    -- One account of a provider per user: "connect Google" twice would
    -- leave the user unsure which one logs in.
    CONSTRAINT linked_identities_one_per_provider UNIQUE (user_id, provider_id)
);
