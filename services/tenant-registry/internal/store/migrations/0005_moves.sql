-- Tenant moves between placements (MoveTenant). The operation (kind
-- 'MoveTenant') carries the lease, the cancellation and the outcome; this
-- table carries where the move stands, so that the replica resuming it
-- after a crash continues from the last phase that committed.
CREATE TABLE moves (
    operation        uuid        PRIMARY KEY,
    tenant_uid       uuid        NOT NULL,
    slug             text        NOT NULL,
    schema_name      text        NOT NULL,
    source_placement text        NOT NULL,
    target_placement text        NOT NULL,
    phase            text        NOT NULL CHECK (phase IN ('PREPARING', 'COPYING', 'FENCED', 'SWITCHED', 'DONE', 'ABANDONED')),
    grace            interval    NOT NULL,
    source_bytes     bigint      NOT NULL DEFAULT 0,
    fence_start      timestamptz,
    switch_time      timestamptz,
    drop_time        timestamptz,
    update_time      timestamptz NOT NULL
);
-- One move of a tenant at a time: the phases before the switch, when two
-- copies of it are being kept in step.
CREATE UNIQUE INDEX moves_one_per_tenant ON moves (tenant_uid) WHERE phase IN ('PREPARING', 'COPYING', 'FENCED');
-- Old copies waiting for their grace to end.
CREATE INDEX moves_old_copies ON moves (drop_time) WHERE phase = 'SWITCHED';
