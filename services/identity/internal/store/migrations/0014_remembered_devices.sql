-- "Remember this device" (issue 12): a device that gave a second factor
-- may skip it at its next logins for as many days as the tenant allows
-- (settings.mfa_remember_days, 0 by default: never). The device keeps a
-- random token; only its SHA-256 is stored. Removing the factor, an
-- admin's reset and any password change or reset delete the user's
-- devices.
ALTER TABLE settings
    ADD COLUMN mfa_remember_days integer NOT NULL DEFAULT 0
        CHECK (mfa_remember_days BETWEEN 0 AND 90);

CREATE TABLE remembered_devices (
    token_hash  bytea       PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    create_time timestamptz NOT NULL,
    expire_time timestamptz NOT NULL,
    user_agent  text        NOT NULL DEFAULT ''
);
CREATE INDEX remembered_devices_user_idx ON remembered_devices (user_id);
