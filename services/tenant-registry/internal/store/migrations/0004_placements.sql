-- Placement policy. Placements themselves are configured (DATABASE_URL is
-- "default", TENANTRY_PLACEMENTS names the others); this table keeps what an
-- operator decided about each. A configured placement without a row is open
-- and shared, so nothing needs a row until its policy is first set.
CREATE TABLE placements (
    name        text        PRIMARY KEY,
    -- A closed placement takes no new tenant.
    closed      boolean     NOT NULL DEFAULT false,
    -- A dedicated placement holds one tenant (database per tenant), placed
    -- there only by naming it.
    dedicated   boolean     NOT NULL DEFAULT false,
    update_time timestamptz NOT NULL,
    -- Bumped by every change: the etag of optimistic concurrency.
    version     bigint      NOT NULL DEFAULT 1
);

-- Whether a dedicated placement already holds a tenant, and how many each
-- placement holds, are answered from here instead of a scan of every tenant.
CREATE INDEX tenants_placement_idx ON tenants (placement);
