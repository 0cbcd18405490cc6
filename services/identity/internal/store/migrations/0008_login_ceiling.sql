-- The tenant's login ceiling becomes the tenant's own setting: how many
-- login attempts its users together may make a second, across every
-- identity replica (five seconds' worth at once). It was a constant, 50 a
-- second, which would cap a large tenant's legitimate peak below what one
-- identity machine can hash; 50 stays the default, and every tenant keeps
-- it until an admin changes it (UpdateTenantSettings). The bounds repeat
-- the account package's (LowestMaxLoginsPerSecond,
-- HighestMaxLoginsPerSecond). A constant default adds the column without
-- rewriting the table.
ALTER TABLE settings
    ADD COLUMN max_logins_per_second integer NOT NULL DEFAULT 50
        CHECK (max_logins_per_second BETWEEN 1 AND 100000);
