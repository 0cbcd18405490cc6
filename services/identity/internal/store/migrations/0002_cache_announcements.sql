-- Identity replicas cache the sessions they found open and those sessions'
-- users (package sessioncache). These triggers announce every change that
-- must end such a cached answer on the channel tenantry_identity_cache,
-- which every replica listens to: a revoked session, a shortened expiry, an
-- edited, disabled or deleted user. NOTIFY is delivered only when the
-- transaction commits, so a rolled-back change announces nothing. A login
-- (last_login_time, a re-hashed password) is not announced: it ends nothing.
-- Payload: "<s|u> <uuid> <schema>".

CREATE FUNCTION announce_cache_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenantry_identity_cache',
        CASE TG_TABLE_NAME WHEN 'users' THEN 'u ' ELSE 's ' END || OLD.id::text || ' ' || TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_announce_update AFTER UPDATE ON users FOR EACH ROW
    WHEN ((OLD.version, OLD.email, OLD.email_verified, OLD.username, OLD.display_name, OLD.roles, OLD.state, OLD.disabled)
        IS DISTINCT FROM (NEW.version, NEW.email, NEW.email_verified, NEW.username, NEW.display_name, NEW.roles, NEW.state, NEW.disabled))
    EXECUTE FUNCTION announce_cache_change();
CREATE TRIGGER users_announce_delete AFTER DELETE ON users FOR EACH ROW
    EXECUTE FUNCTION announce_cache_change();

CREATE TRIGGER sessions_announce_update AFTER UPDATE ON sessions FOR EACH ROW
    WHEN (OLD.revoke_time IS DISTINCT FROM NEW.revoke_time OR NEW.expire_time < OLD.expire_time OR OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION announce_cache_change();
CREATE TRIGGER sessions_announce_delete AFTER DELETE ON sessions FOR EACH ROW
    EXECUTE FUNCTION announce_cache_change();
