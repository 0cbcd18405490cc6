-- Deleting a session that had already ended changes nothing a replica can
-- have cached (only open sessions are cached), so it is not announced: the
-- periodic sweep of sessions ended long ago would otherwise send one
-- notification per row.

DROP TRIGGER sessions_announce_delete ON sessions;
CREATE TRIGGER sessions_announce_delete AFTER DELETE ON sessions FOR EACH ROW
    WHEN (OLD.revoke_time IS NULL AND OLD.expire_time > now())
    EXECUTE FUNCTION announce_cache_change();
