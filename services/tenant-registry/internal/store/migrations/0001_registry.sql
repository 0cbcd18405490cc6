-- The registry's own tables. They live in the schema tenantry_registry of the
-- registry database; tenant schemas live in their placements.

CREATE TABLE tenants (
    uid               uuid        PRIMARY KEY,
    slug              text        NOT NULL UNIQUE,
    display_name      text        NOT NULL DEFAULT '',
    state             text        NOT NULL CHECK (state IN ('PROVISIONING', 'ACTIVE', 'SUSPENDED', 'DELETED')),
    schema_name       text        NOT NULL,
    placement         text        NOT NULL,
    labels            jsonb       NOT NULL DEFAULT '{}',
    create_request_id uuid        UNIQUE,
    create_time       timestamptz NOT NULL,
    update_time       timestamptz NOT NULL,
    delete_time       timestamptz,
    purge_time        timestamptz,
    revision          bigint      NOT NULL
);

-- The reconciler looks for unfinished provisioning and expired deletions.
CREATE INDEX tenants_pending_idx ON tenants (state, purge_time) WHERE state IN ('PROVISIONING', 'DELETED');
CREATE INDEX tenants_labels_idx ON tenants USING gin (labels jsonb_path_ops);

CREATE TABLE domains (
    host       text    PRIMARY KEY,
    tenant_uid uuid    NOT NULL REFERENCES tenants (uid) ON DELETE CASCADE,
    is_primary boolean NOT NULL DEFAULT false,
    position   int     NOT NULL
);
CREATE INDEX domains_tenant_idx ON domains (tenant_uid);
CREATE UNIQUE INDEX domains_one_primary_idx ON domains (tenant_uid) WHERE is_primary;

-- The change log: one row per change, in commit order, carrying the tenant
-- as it was after the change. Replicas and watchers follow it.
CREATE TABLE events (
    revision    bigint      PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('UPSERT', 'PURGE')),
    tenant_uid  uuid        NOT NULL,
    tenant      jsonb       NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now()
);

-- A single counter row. Every change takes the next value as its last
-- statement; the row lock, held until commit, makes revision order equal to
-- commit order, so a follower reading "events after N" never skips one.
CREATE TABLE revision (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    value     bigint  NOT NULL
);
INSERT INTO revision (value) VALUES (0);
