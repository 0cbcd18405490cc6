-- Account deletion by its owner (issue 12): a request sets delete_time,
-- the end of the tenant's grace period; a login before then, or a
-- cancellation, clears it; identity's sweeper deletes the accounts whose
-- time has come. deletion_grace_days is the tenant's grace period.
ALTER TABLE settings ADD COLUMN deletion_grace_days integer NOT NULL DEFAULT 14
    CHECK (deletion_grace_days BETWEEN 0 AND 90);
ALTER TABLE users ADD COLUMN delete_time timestamptz;
CREATE INDEX users_delete_time_idx ON users (delete_time) WHERE delete_time IS NOT NULL;
