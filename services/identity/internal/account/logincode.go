package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// Login by a one-time code mailed to the user (django-allauth's "login by
// code"), where the tenant allows it (Settings.LoginByEmailCode). The code
// stands in for the password: an account with a second factor still gives
// it (VerifyMFA), and a tenant's MFA policy applies as after a password.
//
//   - RequestLoginCode answers a random token whatever the address, after
//     the same floor of time (ResponseFloor), so that neither the answer nor
//     its latency says whether an account has it; only an active account's
//     address gets a mail. Its limits are the mails' (login_code.*).
//   - The code (6 digits) works with its own token only, once, for
//     LoginCodeTTL: it is stored as the SHA-256 of token and code, so the
//     table alone cannot be searched for it. Five wrong codes end the
//     token; each attempt also spends the login budget of the address, as
//     a password would.
//   - A token of an address without an active account is stored too (no
//     user, a code hash nothing matches), so that its wrong codes are
//     counted and limited exactly like an account's, and the refusals are
//     held to the same floor of time: a run of wrong codes answers the
//     same whether or not the address has an account.
//   - The login verifies the address the code went to. When it was not
//     verified before, whoever set the account up may not be the owner
//     (pre-hijacking: someone signs up with another's address and a
//     password of their own, and waits): the proof takes the account over
//     (claimAccount).

// LoginCodeTTL is how long a mailed login code works.
const LoginCodeTTL = 15 * time.Minute

// loginCodeAttempts is how many wrong codes end a token.
const loginCodeAttempts = 5

// EventLoginCodeRequested is the audit event of a code mailed.
const EventLoginCodeRequested = "user.login_code_requested"

// MailLoginCode is the outbox kind of a login code's mail.
const MailLoginCode = "login_code"

// LoginCode is a login code waiting for its user, stored by the hash of
// its token.
type LoginCode struct {
	TokenHash []byte
	// UserID is empty for a token of an address without an active
	// account: it logs nobody in.
	UserID     string
	Email      string
	CodeHash   []byte
	Attempts   int
	CreateTime time.Time
	ExpireTime time.Time
	UseTime    time.Time
}

// LoginCodeTx is what a transaction does with login codes.
type LoginCodeTx interface {
	InsertLoginCode(ctx context.Context, c *LoginCode) error
	// LoginCode locks the code of a token hash; ErrNotFound when none.
	LoginCode(ctx context.Context, tokenHash []byte) (*LoginCode, error)
	// UpdateLoginCode stores c's Attempts and UseTime.
	UpdateLoginCode(ctx context.Context, c *LoginCode) error
}

// LoginCodeRequest is RequestLoginCode's answer.
type LoginCodeRequest struct {
	Token   string
	Expires time.Time
}

var (
	errLoginCodeDisabled = fault.New(fault.FailedPrecondition, "LOGIN_BY_CODE_DISABLED",
		"this organisation does not let you log in with a code by email; log in with your password")
	errLoginCodeInvalid = fault.New(fault.Unauthenticated, "LOGIN_CODE_INVALID",
		"the code is not correct, was used already or has expired; ask for a new one")
)

// loginCodeHash is the stored form of a code, bound to its token.
func loginCodeHash(token, code string) []byte {
	h := sha256.Sum256([]byte("login-code/" + token + "/" + code))
	return h[:]
}

// newLoginCode returns 6 random digits.
func newLoginCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic("crypto/rand failed: " + err.Error()) // never on supported platforms
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// RequestLoginCode mails a login code to email when it is an active
// account's, and answers the token LoginWithCode needs, the same way
// whether or not it is.
func (m *Manager) RequestLoginCode(ctx context.Context, t tenancy.Tenant, rawEmail string, c Client) (LoginCodeRequest, error) {
	email, err := NormalizeEmail("email", rawEmail)
	if err != nil {
		return LoginCodeRequest{}, err
	}
	settings, _, err := m.AuthConfig(ctx, t)
	if err != nil {
		return LoginCodeRequest{}, err
	}
	if !settings.LoginByEmailCode {
		return LoginCodeRequest{}, errLoginCodeDisabled
	}
	if err := m.limits.LoginCode(ctx, t.UID, email, c.IP); err != nil {
		return LoginCodeRequest{}, err
	}
	defer m.evenOut(ctx, time.Now())
	token, tokenHash := newSecret()
	now := m.now()
	out := LoginCodeRequest{Token: token, Expires: now.Add(LoginCodeTTL)}
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		u, err := tx.UserByEmail(ctx, email, false)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err != nil || u.Disabled || u.State != Active {
			// The same answer and no mail, but a token LoginWithCode
			// treats as an account's: its code hash is random, so no
			// code matches it, and it has no user to log in.
			_, noCode := newSecret()
			return tx.InsertLoginCode(ctx, &LoginCode{TokenHash: tokenHash, Email: email,
				CodeHash: noCode, CreateTime: now, ExpireTime: out.Expires})
		}
		code := newLoginCode()
		if err := tx.InsertLoginCode(ctx, &LoginCode{TokenHash: tokenHash, UserID: u.ID, Email: u.Email,
			CodeHash: loginCodeHash(token, code), CreateTime: now, ExpireTime: out.Expires}); err != nil {
			return err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventLoginCodeRequested, UserID: u.ID, ClientIP: c.IP}); err != nil {
			return err
		}
		return enqueueMail(ctx, tx, t, loginCodeMail(t, u.Email, code, tokenHash))
	})
	if err != nil {
		return LoginCodeRequest{}, internal(err, "request login code")
	}
	return out, nil
}

// LoginWithCode logs in with a token of RequestLoginCode and the code its
// mail carried, answering as Login does.
func (m *Manager) LoginWithCode(ctx context.Context, t tenancy.Tenant, token, code string, c Client) (LoginResult, error) {
	start := time.Now()
	res, err := m.loginWithCode(ctx, t, token, code, c)
	if err != nil {
		// A refusal's path (no limit yet, a wrong code counted, a token of
		// no account) must not show in its latency either.
		m.evenOut(ctx, start)
	}
	outcome := loginOutcome(err)
	if res.Challenged() {
		outcome = LoginChallenged
	}
	m.cfg.OnLogin(LoginEmailCode, outcome)
	return res, err
}

func (m *Manager) loginWithCode(ctx context.Context, t tenancy.Tenant, token, code string, c Client) (LoginResult, error) {
	var bad fieldErrors
	if token == "" || len(token) > 128 {
		bad.add(fault.Invalid("login_code_token", "LOGIN_CODE_TOKEN_REQUIRED", "give the token RequestLoginCode answered"))
	}
	code = strings.Join(strings.Fields(code), "")
	if !isDigits(code, 6) {
		bad.add(fault.Invalid("code", "LOGIN_CODE_MALFORMED", "give the 6 digits of the mail"))
	}
	if err := bad.err(); err != nil {
		return LoginResult{}, err
	}
	tokenHash := hashSecret(token)
	// Whose code it is, first: the attempt spends the login budget of the
	// address it went to (or was asked for, when no account has it), as a
	// password would.
	var (
		email    string
		settings Settings
	)
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		lc, err := tx.LoginCode(ctx, tokenHash)
		if errors.Is(err, ErrNotFound) {
			return errLoginCodeInvalid
		}
		if err != nil {
			return err
		}
		email = lc.Email
		settings, err = tx.Settings(ctx)
		return err
	})
	if err != nil {
		return LoginResult{}, internal(err, "log in with code")
	}
	if !settings.LoginByEmailCode {
		return LoginResult{}, errLoginCodeDisabled
	}
	m.loginRates.learn(t.UID, settings, m.now())
	if err := m.checkLoginLimits(ctx, t, email, c, settings.MaxLoginsPerSecond); err != nil {
		return LoginResult{}, err
	}
	var (
		res   LoginResult
		wrong bool
	)
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		now := m.now()
		lc, err := tx.LoginCode(ctx, tokenHash)
		if errors.Is(err, ErrNotFound) {
			return errLoginCodeInvalid
		}
		if err != nil {
			return err
		}
		if !lc.UseTime.IsZero() || !now.Before(lc.ExpireTime) || lc.Attempts >= loginCodeAttempts {
			return errLoginCodeInvalid
		}
		if subtle.ConstantTimeCompare(loginCodeHash(token, code), lc.CodeHash) != 1 {
			// Counted, and committed: the answer is the refusal.
			wrong = true
			lc.Attempts++
			return tx.UpdateLoginCode(ctx, lc)
		}
		lc.UseTime = now
		if err := tx.UpdateLoginCode(ctx, lc); err != nil {
			return err
		}
		if lc.UserID == "" {
			return errLoginCodeInvalid // unreachable but by a hash collision
		}
		u, err := tx.UserByID(ctx, lc.UserID, true)
		if errors.Is(err, ErrNotFound) || (err == nil && u.Email != lc.Email) {
			return errLoginCodeInvalid
		}
		if err != nil {
			return err
		}
		if u.Disabled {
			return errDisabled
		}
		if !u.EmailVerified {
			// The code went to the address: it is the owner's, and so is
			// the account from now on, whoever set it up.
			if err := m.claimAccount(ctx, tx, t, u, c, "login code"); err != nil {
				return err
			}
			u.EmailVerified = true
			u.UpdateTime = now
			if err := tx.UpdateUser(ctx, u); err != nil {
				return err
			}
			if err := tx.Audit(ctx, AuditEvent{Event: EventEmailVerified, UserID: u.ID, ClientIP: c.IP,
				Details: map[string]any{"email": u.Email, "by": "login code"}}); err != nil {
				return err
			}
		}
		totp, passkeys, err := hasSecondFactor(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		if factor := totp != nil || passkeys > 0; factor || settings.MFAPolicy.requires(u) {
			res.Challenge, err = m.issueChallenge(ctx, tx, u, AMREmailCode, !factor, settings, c)
			return err
		}
		u.LastLoginTime = now
		if err := tx.RecordLogin(ctx, u.ID, now, ""); err != nil {
			return err
		}
		tokens, err := m.openSession(ctx, tx, t, u, c, AMREmailCode)
		if err != nil {
			return err
		}
		res = LoginResult{Tokens: tokens, User: u}
		return tx.Audit(ctx, AuditEvent{Event: EventLogin, UserID: u.ID, ClientIP: c.IP,
			Details: map[string]any{"session": tokens.SessionID, "method": "email code"}})
	})
	if wrong && err == nil {
		m.auditOutside(ctx, t, AuditEvent{Event: EventLoginFailed, ClientIP: c.IP, Details: map[string]any{"account": email, "method": "email code"}})
		return LoginResult{}, errLoginCodeInvalid
	}
	if err != nil {
		return LoginResult{}, internal(err, "log in with code")
	}
	return res, nil
}

// EventAccountClaimed is the audit event of an account taken over by the
// first proof of its address (claimAccount).
const EventAccountClaimed = "user.account_claimed"

// claimAccount hands u, whose address was not verified before and is
// proven now (by a code mailed to it), to the owner of the address, in the
// caller's transaction, before u is marked verified and stored (the
// caller's UpdateUser stores the password cleared here).
//
// Until the proof anybody could have set the account up with that
// address (pre-hijacking, Sudhodanan & Paverd 2022): a sign-up with
// another's address and a password of one's own, logged in at once while
// verification is optional, second factors enrolled, another provider
// linked, an address added. Nothing of that may outlive the proof: every
// session ends (the login in progress opens its own afterwards), the
// password set before goes (the owner sets one by a reset), and so do the
// second factors and passkeys (a factor the one who set the account up
// enrolled would otherwise stand between the owner and their account, or
// let that person through once they have the password again), the
// remembered devices, the other providers' identities, the secondary
// addresses, every pending link or challenge (an email change begun
// towards another address above all) and a deletion asked for. The owner
// gets a mail saying so, with the way to set a password.
func (m *Manager) claimAccount(ctx context.Context, tx Tx, t tenancy.Tenant, u *User, c Client, by string) error {
	now := m.now()
	if err := tx.RevokeUserSessions(ctx, u.ID, "", "address proven by its owner", now); err != nil {
		return err
	}
	if err := tx.UseTokensOf(ctx, u.ID, now, append(credentialPurposes, PurposeVerifyEmailAddress)...); err != nil {
		return err
	}
	totp, passkeys, err := hasSecondFactor(ctx, tx, u.ID)
	if err != nil {
		return err
	}
	if err := removeEveryFactor(ctx, tx, u.ID); err != nil {
		return err
	}
	identities, err := tx.LinkedIdentitiesOf(ctx, u.ID)
	if err != nil {
		return err
	}
	for _, l := range identities {
		if err := tx.DeleteLinkedIdentity(ctx, u.ID, l.ProviderID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	addresses, err := tx.EmailAddresses(ctx, u.ID)
	if err != nil {
		return err
	}
	for _, a := range addresses {
		if err := tx.DeleteEmailAddress(ctx, u.ID, a.Email); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	if err := tx.ScheduleDeletion(ctx, u.ID, nil); err != nil {
		return err
	}
	hadPassword := u.PasswordHash != ""
	u.PasswordHash = ""
	u.PasswordChangeTime = now
	removed := hadPassword || totp != nil || passkeys > 0 || len(identities) > 0 || len(addresses) > 0
	if err := tx.Audit(ctx, AuditEvent{Event: EventAccountClaimed, UserID: u.ID, ClientIP: c.IP, Details: map[string]any{
		"by": by, "password_removed": hadPassword, "app_removed": totp != nil, "passkeys_removed": passkeys,
		"identities_removed": len(identities), "addresses_removed": len(addresses)}}); err != nil {
		return err
	}
	if !removed {
		return nil // nothing was taken from anybody: nothing to tell
	}
	return enqueueMail(ctx, tx, t, accountClaimedMail(t, m.links, u.Email, []byte(u.ID+"/claimed")))
}
