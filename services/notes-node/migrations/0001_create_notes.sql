-- Notes of the Node.js example: each belongs to a user of the tenant (the
-- access token's sub, identity's user id), in the tenant's own schema. The
-- registry runs this with the search path set to that schema: no schema
-- names here.
CREATE TABLE notes (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner      text        NOT NULL,
    body       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notes_owner_id_idx ON notes (owner, id);
