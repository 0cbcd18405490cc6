-- Several email addresses per account (issue 12): users.email stays the
-- primary address (login, mails); email_addresses holds the others, each
-- pending until its link is followed (verify_time set).
--
-- An address belongs to at most one account of the tenant, whether as a
-- primary or as a verified secondary. Within each table a unique index
-- says so; across the two, the triggers below check the other table. A
-- pending address reserves nothing (anyone could otherwise claim a
-- stranger's address before they sign up): two accounts may both wait for
-- the same one, and the first to verify it wins.
--
-- The race: two transactions writing the same address, one to each table,
-- would each check the other table before the other committed, and both
-- pass. So each trigger first takes a transaction-scoped advisory lock on
-- the schema and the address: the second waits until the first ends, and
-- its check (a new statement, hence a new snapshot under READ COMMITTED,
-- the store's isolation level) then sees the first's row and refuses with
-- a unique violation. A hash collision of two addresses only makes
-- unrelated writes wait for each other.
CREATE TABLE email_addresses (
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Normalised as users.email is (NormalizeEmail: trimmed, lower case).
    email       text        NOT NULL,
    create_time timestamptz NOT NULL,
    -- Set when the verification link was followed; NULL while pending.
    verify_time timestamptz,
    PRIMARY KEY (user_id, email)
);
CREATE UNIQUE INDEX email_addresses_verified_email_key ON email_addresses (email) WHERE verify_time IS NOT NULL;

ALTER TABLE one_time_tokens DROP CONSTRAINT one_time_tokens_purpose_check;
ALTER TABLE one_time_tokens ADD CONSTRAINT one_time_tokens_purpose_check
    CHECK (purpose IN ('VERIFY_EMAIL', 'RESET_PASSWORD', 'INVITATION', 'MFA_CHALLENGE', 'VERIFY_EMAIL_ADDRESS'));

-- The functions name the other table through the trigger's schema, not
-- the search_path, so that they hold for any session that writes the table.

-- A primary address may not be another account's verified secondary.
CREATE FUNCTION users_email_unclaimed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    taken boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(TG_TABLE_SCHEMA || ' ' || NEW.email, 0));
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.email_addresses
                    WHERE email = $1 AND verify_time IS NOT NULL AND user_id <> $2)', TG_TABLE_SCHEMA)
        INTO taken USING NEW.email, NEW.id;
    IF taken THEN
        RAISE unique_violation USING MESSAGE = 'email address taken by another account',
            CONSTRAINT = 'users_email_key';
    END IF;
    RETURN NEW;
END
$$;
-- UpdateUser sets every column: only a changed address needs the check.
CREATE TRIGGER users_email_unclaimed_insert BEFORE INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION users_email_unclaimed();
CREATE TRIGGER users_email_unclaimed_update BEFORE UPDATE OF email ON users
    FOR EACH ROW WHEN (OLD.email IS DISTINCT FROM NEW.email) EXECUTE FUNCTION users_email_unclaimed();

-- A verified secondary address may not be another account's primary.
CREATE FUNCTION email_addresses_unclaimed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    taken boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(TG_TABLE_SCHEMA || ' ' || NEW.email, 0));
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.users WHERE email = $1 AND id <> $2)', TG_TABLE_SCHEMA)
        INTO taken USING NEW.email, NEW.user_id;
    IF taken THEN
        RAISE unique_violation USING MESSAGE = 'email address taken by another account',
            CONSTRAINT = 'email_addresses_verified_email_key';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER email_addresses_unclaimed BEFORE INSERT OR UPDATE ON email_addresses
    FOR EACH ROW WHEN (NEW.verify_time IS NOT NULL) EXECUTE FUNCTION email_addresses_unclaimed();
