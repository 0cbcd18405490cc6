-- How a session's user authenticated (issue 12), as RFC 8176's
-- authentication method references: {pwd} for a password, {pwd,otp,mfa}
-- with an authenticator app's code or a recovery code. A grant keeps the
-- methods of the browser session it was made from. The OpenID Provider
-- puts them in ID tokens' amr claim. Sessions opened before this
-- migration, and those from another identity provider, have none, and
-- are taken for {pwd} as before.
ALTER TABLE sessions ADD COLUMN amr text[] NOT NULL DEFAULT '{}';
