-- Notes of the example product: each belongs to a user of the tenant
-- (identity's user id), in the tenant's own schema.
CREATE TABLE notes (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner       uuid        NOT NULL,
    body        text        NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notes_owner_idx ON notes (owner, id);
