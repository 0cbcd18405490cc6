-- Account events for product services (issue 12): a stream per tenant
-- (AccountEventService.WatchAccountEvents) and outgoing webhooks.
--
-- Everything lives in the tenant's own schema rather than in a table
-- shared by the placement (as the mail outbox is): an event's history and
-- a tenant's endpoints must move with the tenant when the registry moves
-- its schema to another placement, must be deleted with it when it is
-- purged, and must be out of reach of every other tenant's transactions.
-- The price is that the webhook worker visits the tenants one by one; a
-- notification on commit tells it which tenant has news.

-- The tenant's last revision. Each event takes the next one by updating
-- this row, whose lock is held until the event's transaction ends: the
-- revisions of a tenant are therefore given out in commit order, without
-- gaps, so a reader that saw revision n has seen every event up to n. (A
-- sequence would hand out n+1 to a transaction that commits before n's,
-- and a resuming watcher would skip n.) The lock is taken at the end of
-- the change's transaction, by the event's insert, so it is held for its
-- commit only.
CREATE TABLE account_event_revision (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    revision  bigint  NOT NULL DEFAULT 0
);
INSERT INTO account_event_revision DEFAULT VALUES;

-- The events. user_id has no foreign key: a deleted user's events stay.
-- data never holds secrets (hashes, codes, tokens).
CREATE TABLE account_events (
    revision    bigint      PRIMARY KEY,
    type        text        NOT NULL,
    user_id     uuid        NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    data        jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX account_events_time_idx ON account_events (create_time);

-- Where the tenant's events are POSTed. The secret is sealed (sealbox)
-- under the key-encryption key, not hashed: signing needs it.
CREATE TABLE webhook_endpoints (
    id                uuid        PRIMARY KEY,
    url               text        NOT NULL,
    event_types       text[]      NOT NULL DEFAULT '{}',
    enabled           boolean     NOT NULL DEFAULT true,
    secret_sealed     bytea       NOT NULL,
    create_time       timestamptz NOT NULL DEFAULT now(),
    update_time       timestamptz NOT NULL DEFAULT now(),
    last_failure_time timestamptz,
    last_failure      text        NOT NULL DEFAULT ''
);

-- One event's delivery to one endpoint, queued in the event's transaction
-- for every enabled endpoint whose filter takes it. state: pending,
-- delivered, abandoned.
CREATE TABLE webhook_deliveries (
    endpoint_id       uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    revision          bigint      NOT NULL REFERENCES account_events (revision) ON DELETE CASCADE,
    user_id           uuid        NOT NULL,
    state             text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'abandoned')),
    attempts          integer     NOT NULL DEFAULT 0,
    next_attempt_time timestamptz NOT NULL DEFAULT now(),
    last_error        text        NOT NULL DEFAULT '',
    delivered_time    timestamptz,
    PRIMARY KEY (endpoint_id, revision)
);
-- The worker's claim: due pending deliveries, and for each the check that
-- no earlier pending one of the same user and endpoint holds it back.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_time) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_user_idx ON webhook_deliveries (endpoint_id, user_id, revision) WHERE state = 'pending';

-- The audit log read by user and by time (ListAuditEvents).
CREATE INDEX audit_log_user_idx ON audit_log (user_id, id);
