-- Reauthentication (issue 12): the last time the session's user proved it
-- was them again (Reauthenticate: their password, or a code of their second
-- factor), and how (RFC 8176 method references). Sensitive actions need a
-- proof within minutes: the login itself, or this one.
ALTER TABLE sessions
    ADD COLUMN reauth_time timestamptz,
    ADD COLUMN reauth_amr  text[] NOT NULL DEFAULT '{}';
