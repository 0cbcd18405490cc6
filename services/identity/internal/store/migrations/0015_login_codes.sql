-- Login by a one-time code mailed to the user (issue 12, django-allauth's
-- "login by code"), where the tenant allows it (off by default). A request
-- keeps a row by the SHA-256 of the random token its client holds; the
-- code is stored as the SHA-256 of token and code together, so a copy of
-- the table cannot search the code's million values without the token.
-- attempts counts wrong codes: at 5 the row is dead.
ALTER TABLE settings ADD COLUMN login_by_email_code boolean NOT NULL DEFAULT false;

CREATE TABLE login_codes (
    token_hash  bytea       PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email       text        NOT NULL,
    code_hash   bytea       NOT NULL,
    attempts    integer     NOT NULL DEFAULT 0,
    create_time timestamptz NOT NULL,
    expire_time timestamptz NOT NULL,
    use_time    timestamptz
);
CREATE INDEX login_codes_user_idx ON login_codes (user_id);
