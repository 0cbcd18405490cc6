-- The tenant's MFA policy (issue 12): whether a second factor is required
-- at login, of nobody (each user chooses), of the users with the admin
-- role, or of everyone. Users it covers who have none enrol one at their
-- next login. Every tenant starts, and existing ones stay, optional.
ALTER TABLE settings
    ADD COLUMN mfa_policy text NOT NULL DEFAULT 'OPTIONAL'
        CHECK (mfa_policy IN ('OPTIONAL', 'REQUIRED_FOR_ADMINS', 'REQUIRED'));
