-- A session keeps its one current refresh token, by generation and SHA-256
-- hash, instead of a row per token ever issued: every refresh added a row
-- that had to stay while the session lived (a used token presented again
-- is reuse). Older tokens are recognised by their MAC and generation (see
-- the account package), so nothing else needs to be kept.
--
-- Sessions opened before this migration have no current token: their
-- refresh tokens, kept only as hashes, cannot be carried over, so those
-- sessions end when their access tokens expire and their users log in
-- again.
ALTER TABLE sessions
    ADD COLUMN refresh_generation bigint NOT NULL DEFAULT 0 CHECK (refresh_generation >= 0),
    ADD COLUMN refresh_hash bytea;

-- Every refresh rewrites its session's row. Free room on each page lets
-- the new version stay on the page (a HOT update, no index entries) for
-- pages written from now on.
ALTER TABLE sessions SET (fillfactor = 85);

DROP TABLE refresh_tokens;
