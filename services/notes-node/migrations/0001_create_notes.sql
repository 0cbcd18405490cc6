-- Notes of the Node.js example: each belongs to a user of the tenant (the
-- access token's sub, identity's user id), in the tenant's own schema. The
-- registry runs this with the search path set to that schema: no schema
-- names here. Every component's tables share the tenant's schema, so the
-- table is named for this component: the Go example (component notes)
-- has a table notes, and both may be registered with one registry.
CREATE TABLE node_notes (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner      text        NOT NULL,
    body       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX node_notes_owner_id_idx ON node_notes (owner, id);
