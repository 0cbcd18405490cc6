-- Components: the parts of the product with tables in every tenant schema,
-- each an ordered list of SQL migrations. Their applied versions are
-- recorded per schema in each placement's tenantry_meta.schema_versions.
CREATE TABLE components (
    id           text        PRIMARY KEY,
    display_name text        NOT NULL DEFAULT '',
    create_time  timestamptz NOT NULL,
    update_time  timestamptz NOT NULL
);

CREATE TABLE component_migrations (
    component text    NOT NULL REFERENCES components (id) ON DELETE CASCADE,
    version   integer NOT NULL CHECK (version >= 1),
    name      text    NOT NULL,
    sql       text    NOT NULL,
    -- SHA-256 of sql, hex: registering the same list again compares these.
    checksum  text    NOT NULL,
    PRIMARY KEY (component, version)
);
