-- Long-running operations (AIP-151): fleet migrations. A running operation
-- is leased by one replica, which renews the lease while it works; an
-- operation whose lease ran out (its replica crashed) is taken over and
-- resumed by any replica.
CREATE TABLE operations (
    id               uuid        PRIMARY KEY,
    kind             text        NOT NULL,
    request          jsonb       NOT NULL,
    state            text        NOT NULL CHECK (state IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    total            integer     NOT NULL DEFAULT 0,
    done             integer     NOT NULL DEFAULT 0,
    failed           integer     NOT NULL DEFAULT 0,
    cancel_requested boolean     NOT NULL DEFAULT false,
    error_code       integer,
    error_message    text,
    error_reason     text,
    -- A dry run's plan: [{tenant, component, from, to}].
    planned          jsonb,
    lease_owner      text,
    lease_expires    timestamptz,
    create_time      timestamptz NOT NULL,
    update_time      timestamptz NOT NULL,
    end_time         timestamptz
);
CREATE INDEX operations_running_idx ON operations (lease_expires) WHERE state = 'RUNNING';
CREATE INDEX operations_create_idx ON operations (create_time DESC, id);

CREATE TABLE operation_failures (
    operation uuid    NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    tenant    text    NOT NULL,
    component text    NOT NULL,
    version   integer NOT NULL,
    message   text    NOT NULL,
    PRIMARY KEY (operation, tenant)
);
