-- How the login an MFA challenge waits on began (issue 12), as RFC 8176
-- method references like sessions.amr (migration 0012): {pwd} after a
-- password, {email} after a mailed code, {fed} after another identity
-- provider. The session the second factor opens says it before the
-- factor's own: {fed,otp,mfa}, not {pwd,otp,mfa}. Other tokens have none;
-- so do challenges issued before this migration, or by a replica older
-- than it during a rolling deploy (the default), and those are taken for
-- {pwd} as before.
ALTER TABLE one_time_tokens ADD COLUMN amr text[] NOT NULL DEFAULT '{}';
