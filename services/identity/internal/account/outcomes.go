package account

import (
	"tenantry.dev/platform/fault"
)

// LoginMethod is how a person logged in, for Config.OnLogin.
type LoginMethod string

// Login methods.
const (
	// LoginPassword is Login: an email or username and a password (the
	// API, the login page, the OpenID Provider's login, and the password
	// that links an account to another provider).
	LoginPassword LoginMethod = "password"
	// LoginFederated is FederatedLogin: another identity provider vouched
	// for the person, who logs in or signs up.
	LoginFederated LoginMethod = "federated"
	// LoginMFA is VerifyMFA: the second step of a login whose account has
	// a second factor.
	LoginMFA LoginMethod = "mfa"
	// LoginEmailCode is LoginWithCode: a code mailed to the user.
	LoginEmailCode LoginMethod = "email_code"
	// LoginPasskey is FinishPasskeyLogin: a passkey without a password.
	LoginPasskey LoginMethod = "passkey"
)

// LoginOutcome is how a login ended, for Config.OnLogin. There are few on
// purpose: each is a series of a metric.
type LoginOutcome string

// Login outcomes.
const (
	// LoginSucceeded: a session was opened.
	LoginSucceeded LoginOutcome = "success"
	// LoginChallenged: the password was right and the account has a
	// second factor: a challenge was answered, no session opened yet.
	LoginChallenged LoginOutcome = "challenged"
	// LoginRefused: the person was refused (wrong or missing credentials,
	// unknown or disabled account, unverified email, a provider's identity
	// that may not sign in here).
	LoginRefused LoginOutcome = "failure"
	// LoginRateLimited: a rate limit refused the attempt before any
	// password was checked.
	LoginRateLimited LoginOutcome = "rate_limited"
	// LoginErrored: identity could not decide (the database, an internal
	// error, the caller gone).
	LoginErrored LoginOutcome = "error"
)

// loginOutcome classifies how a login that returned err ended.
func loginOutcome(err error) LoginOutcome {
	if err == nil {
		return LoginSucceeded
	}
	f, ok := fault.As(err)
	switch {
	case !ok:
		return LoginErrored
	case f.Kind == fault.ResourceExhausted:
		return LoginRateLimited
	case f.Kind == fault.Internal || f.Kind == fault.Unavailable:
		return LoginErrored
	default:
		return LoginRefused
	}
}
