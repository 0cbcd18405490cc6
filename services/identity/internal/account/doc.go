// Package account holds identity's rules for accounts inside one tenant:
// sign-up under the tenant's policy, email verification, login, sessions
// with rotating refresh tokens, password reset and change, invitations,
// administration, the tenant's OAuth clients (oauthclient.go: their
// rules, hashed secrets and the check of a client's secret), and second
// factors (mfa.go: authenticator apps, recovery codes, the login's MFA
// challenge and the tenant's MFA policy). It knows nothing about gRPC or SQL: a tenant's data is
// reached through Store, whose transactions are scoped to one tenant's
// schema, so nothing here can read or write another tenant's accounts.
package account
