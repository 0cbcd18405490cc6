-- Identity replicas also cache each tenant's login configuration (its
-- settings and sign-in providers: GetAuthConfig and the login page; package
-- sessioncache). A change of either announces the schema on the channel
-- the session cache listens to (see 0002), as "c <schema>", once per
-- statement: the cached configuration goes on every replica.

CREATE FUNCTION announce_config_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenantry_identity_cache', 'c ' || TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

CREATE TRIGGER settings_announce AFTER INSERT OR UPDATE OR DELETE ON settings
    FOR EACH STATEMENT EXECUTE FUNCTION announce_config_change();
CREATE TRIGGER identity_providers_announce AFTER INSERT OR UPDATE OR DELETE ON identity_providers
    FOR EACH STATEMENT EXECUTE FUNCTION announce_config_change();
