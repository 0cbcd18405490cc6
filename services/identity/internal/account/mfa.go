package account

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// Second factors: an authenticator app (TOTP, RFC 6238, through
// pquerna/otp) and single-use recovery codes. An account with a confirmed
// app logs in in two steps: the password step (Login) answers with an
// MFAChallenge instead of a session, and VerifyMFA trades the challenge and
// a code for the session. See the README's "Second factors" for the rules
// as a client sees them.
//
// What is refused, and how:
//   - Replay: the time step of the last code accepted is stored with the
//     factor, in the transaction that accepts the code, under the factor's
//     row lock; a code of that step or an earlier one is refused, so a code
//     seen over a shoulder or in a log is worth nothing once used, even
//     within its 90 seconds of validity.
//   - Guessing: a 6-digit code with one step of clock skew either side is 3
//     chances in a million a guess, so codes get limits of their own, much
//     tighter than the password's (ratelimit.SecondFactorChecks), checked
//     before any code is, whatever the outcome, as passwords are; a guesser
//     must also know the password to get a challenge at all.
//   - Another tenant: a challenge is a single-use token in the tenant's own
//     schema (like a reset link), so another tenant's host does not find
//     it; a secret is sealed bound to its tenant and user, so a row copied
//     elsewhere does not open.
//   - Enrolment instead of the factor: a challenge stands in for a session
//     when adding an app (BeginTOTPAtLogin, ConfirmTOTPAtLogin) only for an
//     account with no factor at all that the tenant's policy requires one
//     of, checked in the transaction that enrols; otherwise whoever knows
//     the password would enrol an app of their own and log in without the
//     passkey the account has.
//   - Timing: codes are compared in constant time, every step of the window
//     compared whatever matched; recovery codes are looked up by a hash of
//     80 random bits, which leaks nothing worth having.

// TOTP parameters: RFC 6238's defaults, the only ones every authenticator
// app supports.
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	// totpSkew is how many steps either side of now are accepted, for
	// clocks that drift and codes typed as they change.
	totpSkew = 1
	// totpSecretBytes is RFC 4226's recommended 160 bits.
	totpSecretBytes = 20
	// totpQRSize is the QR code's width and height in pixels.
	totpQRSize = 256
)

// MFAPolicy says whose logins need a second factor in a tenant.
type MFAPolicy string

// MFA policies.
const (
	MFAOptional          MFAPolicy = "OPTIONAL"
	MFARequiredForAdmins MFAPolicy = "REQUIRED_FOR_ADMINS"
	MFARequired          MFAPolicy = "REQUIRED"
)

// requires reports whether the policy requires a second factor of u.
func (p MFAPolicy) requires(u *User) bool {
	switch p {
	case MFARequired:
		return true
	case MFARequiredForAdmins:
		return u.HasRole(RoleAdmin)
	}
	return false
}

// MFAChallengeTTL is how long a login's MFA challenge waits for its code.
const MFAChallengeTTL = 5 * time.Minute

// RecoveryCodeCount is how many recovery codes an account gets at a time.
const RecoveryCodeCount = 10

// PurposeMFAChallenge is the single-use token of a login waiting for its
// second factor.
const PurposeMFAChallenge Purpose = "MFA_CHALLENGE"

// Factor is a kind of second factor.
type Factor string

// Second factors.
const (
	FactorTOTP         Factor = "totp"
	FactorRecoveryCode Factor = "recovery_code"
)

// Audit events of second factors. Secrets and codes are never in their
// details.
const (
	EventMFAChallenged             = "mfa.challenged"
	EventMFATOTPEnrollmentStarted  = "mfa.totp_enrollment_started"
	EventMFATOTPEnrolled           = "mfa.totp_enrolled"
	EventMFATOTPRemoved            = "mfa.totp_removed"
	EventMFARecoveryCodesGenerated = "mfa.recovery_codes_regenerated"
	EventMFAUsed                   = "mfa.used"
	EventMFAFailed                 = "mfa.failed"
	EventMFARateLimited            = "mfa.rate_limited"
	EventMFAResetByAdmin           = "mfa.reset_by_admin"
)

// TOTPFactor is an account's authenticator app.
type TOTPFactor struct {
	UserID string
	// SecretSealed is the base32 secret, sealed (Config.TOTPSecrets) bound
	// to the tenant and the user (totpAD).
	SecretSealed []byte
	CreateTime   time.Time
	// ConfirmTime is zero while the enrolment waits for its first code.
	ConfirmTime time.Time
	// LastUsedStep is the time step of the last code accepted; codes of
	// this step or an earlier one are refused.
	LastUsedStep int64
}

// Confirmed reports whether the app is enrolled (asked for at login).
func (f *TOTPFactor) Confirmed() bool { return f != nil && !f.ConfirmTime.IsZero() }

// MFATx is what a transaction does with second factors.
type MFATx interface {
	// TOTPFactor returns ErrNotFound when the user has none, pending or
	// confirmed.
	TOTPFactor(ctx context.Context, userID string, forUpdate bool) (*TOTPFactor, error)
	// SaveTOTPFactor inserts f, or replaces the user's factor with it.
	SaveTOTPFactor(ctx context.Context, f *TOTPFactor) error
	// UseTOTPStep records the step of a code accepted.
	UseTOTPStep(ctx context.Context, userID string, step int64) error
	// DeleteSecondFactors deletes the user's app and recovery codes.
	DeleteSecondFactors(ctx context.Context, userID string) error
	// ReplaceRecoveryCodes makes hashes the user's only recovery codes.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, at time.Time) error
	// UseRecoveryCode marks the user's unused code of that hash used, and
	// reports whether there was one.
	UseRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) (bool, error)
	// RecoveryCodesLeft counts the user's unused recovery codes.
	RecoveryCodesLeft(ctx context.Context, userID string) (int, error)
}

// MFAChallenge is the answer of a password step that needs a second
// factor: Token goes to VerifyMFA before Expires. It is no access token.
type MFAChallenge struct {
	Token   string
	Expires time.Time
	// Factors are the codes VerifyMFA takes for the account.
	Factors []Factor
	// EnrollmentRequired says the account has no factor and the tenant's
	// policy requires one: the challenge goes to BeginTOTPAtLogin and
	// ConfirmTOTPAtLogin instead, which complete the login (and refuse
	// every other challenge).
	EnrollmentRequired bool
	// RememberDays is for how many days VerifyMFA may remember the device
	// (the tenant's Settings.MFARememberDays); 0: it does not.
	RememberDays int
}

// LoginResult is how a login step ended: a session (Tokens and User), or a
// Challenge when the account has a second factor to give first.
type LoginResult struct {
	Tokens    Tokens
	User      *User
	Challenge *MFAChallenge
	// DeviceToken is the device VerifyMFA remembered, when asked to and the
	// tenant allows it, until DeviceExpires.
	DeviceToken   string
	DeviceExpires time.Time
}

// Challenged reports whether the login waits for a second factor.
func (r LoginResult) Challenged() bool { return r.Challenge != nil }

// FactorProof is a code proving the account's second factor: exactly one of
// a current code of the app or a recovery code.
type FactorProof struct {
	TOTPCode     string
	RecoveryCode string
}

// VerifyMFAInput is the second step of a login.
type VerifyMFAInput struct {
	Challenge string
	FactorProof
	// RememberDevice asks to remember the device (see device.go).
	RememberDevice bool
}

// TOTPEnrollment is a begun enrolment: what the user's app needs.
type TOTPEnrollment struct {
	// Secret is base32 without padding, for typing in.
	Secret string
	// URI is the otpauth://totp/ URI of the secret.
	URI string
	// QRCodePNG is a QR code of URI.
	QRCodePNG []byte
}

// MFAStatus is which second factors an account has.
type MFAStatus struct {
	TOTPEnrolled           bool
	TOTPEnrollTime         time.Time
	RecoveryCodesRemaining int
}

// Faults of second factors.
var (
	errMFAChallengeInvalid = fault.New(fault.Unauthenticated, "MFA_CHALLENGE_INVALID",
		"this login has expired or was completed already; log in again")
	errMFACodeInvalid = fault.New(fault.Unauthenticated, "MFA_CODE_INVALID",
		"the code is not correct, or was used already; wait for the next code of your app, or use a recovery code")
	errTOTPAlreadyEnrolled = fault.New(fault.FailedPrecondition, "TOTP_ALREADY_ENROLLED",
		"this account has an authenticator app already; remove it first")
	errTOTPNotStarted = fault.New(fault.FailedPrecondition, "TOTP_ENROLLMENT_NOT_STARTED",
		"begin the enrolment first (BeginTotpEnrollment)")
	errTOTPNotEnrolled = fault.New(fault.FailedPrecondition, "TOTP_NOT_ENROLLED",
		"this account has no authenticator app")
	errMFALinkNeedsLogin = fault.New(fault.FailedPrecondition, "MFA_LOGIN_REQUIRED_TO_LINK",
		"this account has a second factor: log in, then connect this provider from your account page")
	errMFARequiredByTenant = fault.New(fault.FailedPrecondition, "MFA_REQUIRED_BY_TENANT",
		"this organisation requires a second factor of your account: it cannot be removed (regenerate the recovery codes instead)")
	// errWrongCode is a code that did not prove the factor, inside a
	// transaction: rolled back, audited, then answered errMFACodeInvalid.
	errWrongCode = errors.New("wrong second factor code")
)

// validate checks that exactly one code was given, in a plausible shape.
func (p FactorProof) validate() error {
	switch {
	case p.TOTPCode == "" && p.RecoveryCode == "":
		return fault.Invalid("totp_code", "MFA_CODE_REQUIRED", "give the code your authenticator app shows, or a recovery code")
	case p.TOTPCode != "" && p.RecoveryCode != "":
		return fault.Invalid("totp_code", "MFA_CODE_AMBIGUOUS", "give either a code of your app or a recovery code, not both")
	case p.TOTPCode != "" && !isDigits(strings.TrimSpace(p.TOTPCode), totpDigits.Length()):
		return fault.Invalid("totp_code", "TOTP_CODE_MALFORMED", "give the 6 digits your authenticator app shows")
	case p.RecoveryCode != "" && len(normalizeRecoveryCode(p.RecoveryCode)) != recoveryCodeChars:
		return fault.Invalid("recovery_code", "RECOVERY_CODE_MALFORMED", "give one of your recovery codes as it was shown (16 letters and digits)")
	}
	return nil
}

// ProofOfCode reads a code typed into one box, as the login page asks for
// it: 6 digits (spaces aside) are the app's code, anything else a recovery
// code.
func ProofOfCode(code string) FactorProof {
	digits := strings.Join(strings.Fields(code), "")
	if isDigits(digits, totpDigits.Length()) {
		return FactorProof{TOTPCode: digits}
	}
	return FactorProof{RecoveryCode: code}
}

func (p FactorProof) method() Factor {
	if p.TOTPCode != "" {
		return FactorTOTP
	}
	return FactorRecoveryCode
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// totpAD is what a user's sealed secret is bound to.
func totpAD(t tenancy.Tenant, userID string) []byte {
	return []byte("totp/" + t.UID + "/" + userID)
}

// matchTOTP returns the step, within totpSkew of now and after lastUsed,
// whose code is code. Every step of the window is computed and compared in
// constant time, whichever matches.
func matchTOTP(secret, code string, now time.Time, lastUsed int64) (int64, bool) {
	code = strings.TrimSpace(code)
	current := now.Unix() / totpPeriod
	matched := int64(-1)
	for step := current - totpSkew; step <= current+totpSkew; step++ {
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && step > lastUsed {
			matched = step
		}
	}
	return matched, matched >= 0
}

// Recovery codes: 16 characters of Crockford-like base32 (no I, L, O, U),
// 80 random bits, shown as four groups of four.
const (
	recoveryCodeChars    = 16
	recoveryCodeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)

var recoveryEncoding = base32.NewEncoding(recoveryCodeAlphabet).WithPadding(base32.NoPadding)

// newRecoveryCodes returns RecoveryCodeCount codes for people and their
// hashes for the store.
func newRecoveryCodes(userID string) (codes []string, hashes [][]byte) {
	for range RecoveryCodeCount {
		b := make([]byte, recoveryCodeChars*5/8)
		_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
		s := recoveryEncoding.EncodeToString(b)
		codes = append(codes, s[0:4]+"-"+s[4:8]+"-"+s[8:12]+"-"+s[12:16])
		hashes = append(hashes, hashRecoveryCode(userID, s))
	}
	return codes, hashes
}

// normalizeRecoveryCode drops what people add or change when typing a
// code: dashes, spaces, lower case.
func normalizeRecoveryCode(s string) string {
	s = strings.ToUpper(s)
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
}

// hashRecoveryCode is the stored form of a normalized code, bound to its
// user. 80 random bits leave nothing to search, so SHA-256 is enough.
func hashRecoveryCode(userID, normalized string) []byte {
	h := sha256.Sum256([]byte("recovery-code/" + userID + "/" + normalized))
	return h[:]
}

// openSecret opens a factor's sealed secret.
func (m *Manager) openSecret(t tenancy.Tenant, f *TOTPFactor) (string, error) {
	if m.cfg.TOTPSecrets == nil {
		return "", errors.New("account: no TOTP secret box configured")
	}
	plain, err := m.cfg.TOTPSecrets.Open(f.SecretSealed, totpAD(t, f.UserID))
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// proveFactor checks p against the user's confirmed factor in tx and, when
// it proves it, uses it up (the code's step, or the recovery code). A code
// that does not is errWrongCode.
func (m *Manager) proveFactor(ctx context.Context, tx Tx, t tenancy.Tenant, f *TOTPFactor, p FactorProof) error {
	now := m.now()
	if p.TOTPCode != "" {
		secret, err := m.openSecret(t, f)
		if err != nil {
			return err
		}
		step, ok := matchTOTP(secret, p.TOTPCode, now, f.LastUsedStep)
		if !ok {
			return errWrongCode
		}
		f.LastUsedStep = step
		return tx.UseTOTPStep(ctx, f.UserID, step)
	}
	used, err := tx.UseRecoveryCode(ctx, f.UserID, hashRecoveryCode(f.UserID, normalizeRecoveryCode(p.RecoveryCode)), now)
	if err != nil {
		return err
	}
	if !used {
		return errWrongCode
	}
	return nil
}

// checkSecondFactorLimits applies the code limits to an attempt on userID's
// factor, with the tenant's login ceiling (read now if this replica has not
// read it lately), and records a refusal.
func (m *Manager) checkSecondFactorLimits(ctx context.Context, t tenancy.Tenant, userID string, c Client, during string) error {
	perSecond, err := m.loginCeiling(ctx, t)
	if err != nil {
		return err
	}
	if err := m.limits.SecondFactor(ctx, t.UID, userID, c.IP, perSecond); err != nil {
		m.auditOutside(ctx, t, AuditEvent{Event: EventMFARateLimited, UserID: userID, ClientIP: c.IP, Details: map[string]any{"during": during}})
		return err
	}
	return nil
}

// loginCeiling is the tenant's login ceiling as this replica last read it,
// read now when it has not lately (see loginrate.go).
func (m *Manager) loginCeiling(ctx context.Context, t tenancy.Tenant) (int, error) {
	if perSecond, ok := m.loginRates.get(t.UID, m.now()); ok {
		return perSecond, nil
	}
	var settings Settings
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		settings, err = tx.Settings(ctx)
		return err
	})
	if err != nil {
		return 0, internal(err, "login ceiling")
	}
	m.loginRates.learn(t.UID, settings, m.now())
	return settings.MaxLoginsPerSecond, nil
}

// codeRefused records a code that did not prove the factor and returns the
// answer.
func (m *Manager) codeRefused(ctx context.Context, t tenancy.Tenant, userID string, p FactorProof, c Client, during string) error {
	m.auditOutside(ctx, t, AuditEvent{Event: EventMFAFailed, UserID: userID, ClientIP: c.IP,
		Details: map[string]any{"factor": string(p.method()), "during": during}})
	return errMFACodeInvalid
}

// issueChallenge stores a new MFA challenge for u in tx, after a first
// step that authenticated by first (AMRPassword, AMREmailCode or
// AMRFederated); enrol says u has no factor yet and must enrol one. The
// challenge keeps first, for the session of the second step to say how
// the login began rather than take it for a password.
func (m *Manager) issueChallenge(ctx context.Context, tx Tx, u *User, first []string, enrol bool, settings Settings, c Client) (*MFAChallenge, error) {
	token, hash := newSecret()
	now := m.now()
	err := tx.InsertToken(ctx, &OneTimeToken{Hash: hash, Purpose: PurposeMFAChallenge, UserID: u.ID, Email: u.Email,
		CreateTime: now, ExpireTime: now.Add(MFAChallengeTTL), AMR: first})
	if err != nil {
		return nil, err
	}
	ch := &MFAChallenge{Token: token, Expires: now.Add(MFAChallengeTTL), EnrollmentRequired: enrol,
		RememberDays: settings.MFARememberDays}
	if !enrol {
		totp, passkeys, err := hasSecondFactor(ctx, tx, u.ID)
		if err != nil {
			return nil, err
		}
		if totp != nil {
			ch.Factors = []Factor{FactorTOTP}
			left, err := tx.RecoveryCodesLeft(ctx, u.ID)
			if err != nil {
				return nil, err
			}
			if left > 0 {
				ch.Factors = append(ch.Factors, FactorRecoveryCode)
			}
		}
		if passkeys > 0 {
			ch.Factors = append(ch.Factors, FactorPasskey)
		}
	}
	if err := tx.Audit(ctx, AuditEvent{Event: EventMFAChallenged, UserID: u.ID, ClientIP: c.IP,
		Details: map[string]any{"enrollment_required": enrol}}); err != nil {
		return nil, err
	}
	return ch, nil
}

// challengeOf finds the user of an unused, unexpired MFA challenge, locked
// with the challenge. Anything else is errMFAChallengeInvalid.
func (m *Manager) challengeOf(ctx context.Context, tx Tx, token string) (*OneTimeToken, *User, error) {
	tok, err := tx.Token(ctx, hashSecret(token))
	if errors.Is(err, ErrNotFound) {
		return nil, nil, errMFAChallengeInvalid
	}
	if err != nil {
		return nil, nil, err
	}
	if tok.Purpose != PurposeMFAChallenge || !tok.UseTime.IsZero() || !m.now().Before(tok.ExpireTime) {
		return nil, nil, errMFAChallengeInvalid
	}
	u, err := tx.UserByID(ctx, tok.UserID, true)
	if errors.Is(err, ErrNotFound) || (err == nil && u.Email != tok.Email) {
		// Deleted, or its address changed since the password was checked.
		return nil, nil, errMFAChallengeInvalid
	}
	if err != nil {
		return nil, nil, err
	}
	return tok, u, nil
}

// MFAChallengePending reports whether challenge is still usable in t, and
// whether its user must enrol a factor first (mustEnrolAtLogin) or
// has only passkeys (no code to type: recovery codes come with an app),
// for a page that carries it (a sign-in with another provider that goes on
// at the login page).
func (m *Manager) MFAChallengePending(ctx context.Context, t tenancy.Tenant, challenge string) (enrollmentRequired, passkeyOnly, ok bool) {
	if challenge == "" || len(challenge) > 128 {
		return false, false, false
	}
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		_, u, err := m.challengeOf(ctx, tx, challenge)
		if err != nil {
			return err
		}
		totp, passkeys, err := hasSecondFactor(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		passkeyOnly = totp == nil && passkeys > 0
		enrollmentRequired, err = mustEnrolAtLogin(ctx, tx, u)
		return err
	})
	return enrollmentRequired, passkeyOnly, err == nil
}

// mustEnrolAtLogin reports whether u, the user of a login's challenge, is
// to enrol an authenticator app with it: they have no second factor at all
// (no confirmed app, no passkey) and the tenant's policy requires one of
// them. Only then may a challenge stand in for the session that adding a
// factor otherwise needs: a challenge proves the first step only, and
// enrolling an app with the challenge of an account that has a passkey
// would log in without the passkey. It is decided from the state now, in
// the caller's transaction (u locked), not from what the challenge said
// when it was issued: a factor added since, or a policy relaxed, ends it.
func mustEnrolAtLogin(ctx context.Context, tx Tx, u *User) (bool, error) {
	totp, passkeys, err := hasSecondFactor(ctx, tx, u.ID)
	if err != nil || totp != nil || passkeys > 0 {
		return false, err
	}
	settings, err := tx.Settings(ctx)
	if err != nil {
		return false, err
	}
	return settings.MFAPolicy.requires(u), nil
}

// challengeForEnrolment is challengeOf for BeginTOTPAtLogin and
// ConfirmTOTPAtLogin: a challenge whose user is not to enrol a factor
// (mustEnrolAtLogin) is errMFAChallengeInvalid, the answer of any other
// challenge that cannot serve, which tells its holder nothing the
// challenge's factors did not. A disabled user is errDisabled.
func (m *Manager) challengeForEnrolment(ctx context.Context, tx Tx, token string) (*OneTimeToken, *User, error) {
	tok, u, err := m.challengeOf(ctx, tx, token)
	if err != nil {
		return nil, nil, err
	}
	if u.Disabled {
		return nil, nil, errDisabled
	}
	enrol, err := mustEnrolAtLogin(ctx, tx, u)
	if err != nil {
		return nil, nil, err
	}
	if !enrol {
		return nil, nil, errMFAChallengeInvalid
	}
	return tok, u, nil
}

// VerifyMFA is a login's second step: a code of the account's app, or a
// recovery code, trades the challenge of the password step for the
// session. A wrong code leaves the challenge usable until it expires, under
// the code limits; a right one uses it up.
func (m *Manager) VerifyMFA(ctx context.Context, t tenancy.Tenant, in VerifyMFAInput, c Client) (LoginResult, error) {
	res, err := m.verifyMFA(ctx, t, in, c)
	m.cfg.OnLogin(LoginMFA, loginOutcome(err))
	return res, err
}

func (m *Manager) verifyMFA(ctx context.Context, t tenancy.Tenant, in VerifyMFAInput, c Client) (LoginResult, error) {
	var bad fieldErrors
	if in.Challenge == "" || len(in.Challenge) > 128 {
		bad.add(fault.Invalid("mfa_challenge", "MFA_CHALLENGE_REQUIRED", "give the challenge of your login's first step"))
	}
	bad.add(in.validate())
	if err := bad.err(); err != nil {
		return LoginResult{}, err
	}
	// Whose challenge it is, first: the limits are the account's.
	var userID string
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		_, u, err := m.challengeOf(ctx, tx, in.Challenge)
		if err == nil {
			userID = u.ID
		}
		return err
	})
	if err != nil {
		return LoginResult{}, internal(err, "verify second factor")
	}
	if err := m.checkSecondFactorLimits(ctx, t, userID, c, "login"); err != nil {
		return LoginResult{}, err
	}
	var res LoginResult
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		tok, u, err := m.challengeOf(ctx, tx, in.Challenge)
		if err != nil {
			return err
		}
		if u.Disabled {
			return errDisabled
		}
		f, err := tx.TOTPFactor(ctx, u.ID, true)
		if errors.Is(err, ErrNotFound) || (err == nil && !f.Confirmed()) {
			if n, err := tx.PasskeyCount(ctx, u.ID); err == nil && n > 0 {
				// Its factor is a passkey (FinishPasskeyMfa): no code
				// proves it.
				return errWrongCode
			}
			// Removed since the password step: log in again.
			return errMFAChallengeInvalid
		}
		if err != nil {
			return err
		}
		if err := m.proveFactor(ctx, tx, t, f, in.FactorProof); err != nil {
			return err
		}
		now := m.now()
		if err := tx.UseToken(ctx, tok.Hash, now); err != nil {
			return err
		}
		u.LastLoginTime = now
		if err := tx.RecordLogin(ctx, u.ID, now, ""); err != nil {
			return err
		}
		tokens, err := m.openSession(ctx, tx, t, u, c, withSecondFactor(tok.AMR, "otp"))
		if err != nil {
			return err
		}
		res = LoginResult{Tokens: tokens, User: u}
		if in.RememberDevice {
			if res.DeviceToken, res.DeviceExpires, err = m.rememberDevice(ctx, tx, u, c); err != nil {
				return err
			}
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventMFAUsed, UserID: u.ID, ClientIP: c.IP,
			Details: map[string]any{"factor": string(in.method()), "during": "login"}}); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventLogin, UserID: u.ID, ClientIP: c.IP,
			Details: map[string]any{"session": tokens.SessionID, "mfa": string(in.method())}})
	})
	if errors.Is(err, errWrongCode) {
		return LoginResult{}, m.codeRefused(ctx, t, userID, in.FactorProof, c, "login")
	}
	if err != nil {
		return LoginResult{}, internal(err, "verify second factor")
	}
	return res, nil
}

// MFAStatus says which second factors a user has.
func (m *Manager) MFAStatus(ctx context.Context, t tenancy.Tenant, userID string) (MFAStatus, error) {
	var st MFAStatus
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		f, err := tx.TOTPFactor(ctx, userID, false)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil || !f.Confirmed() {
			return err
		}
		st.TOTPEnrolled, st.TOTPEnrollTime = true, f.ConfirmTime
		st.RecoveryCodesRemaining, err = tx.RecoveryCodesLeft(ctx, userID)
		return err
	})
	return st, internal(err, "second factor status")
}

// BeginTOTP makes a new secret for the user's authenticator app, pending
// until ConfirmTOTP; a pending one is replaced. The issuer the app shows is
// the tenant's name.
func (m *Manager) BeginTOTP(ctx context.Context, t tenancy.Tenant, userID string, c Client) (TOTPEnrollment, error) {
	var out TOTPEnrollment
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		u, err := tx.UserByID(ctx, userID, true)
		if err != nil {
			return err
		}
		// Adding a factor needs a recent proof (whoever adds one could
		// lock the owner out); an account that has one already is told so
		// first, since no proof would help.
		if f, err := tx.TOTPFactor(ctx, userID, false); err == nil && f.Confirmed() {
			return errTOTPAlreadyEnrolled
		}
		if err := m.requireRecentProof(ctx, tx, userID, c.SessionID, false); err != nil {
			return err
		}
		out, err = m.beginTOTP(ctx, tx, t, u, c)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return TOTPEnrollment{}, errSessionEnded
	}
	return out, internal(err, "begin TOTP enrolment")
}

// BeginTOTPAtLogin is BeginTOTP for the user of a login's MFA challenge,
// who has no access token yet: only for a user the tenant's policy
// requires a factor of and who has none (mustEnrolAtLogin); any other
// challenge is errMFAChallengeInvalid and begins nothing.
func (m *Manager) BeginTOTPAtLogin(ctx context.Context, t tenancy.Tenant, challenge string, c Client) (TOTPEnrollment, error) {
	if challenge == "" || len(challenge) > 128 {
		return TOTPEnrollment{}, fault.Invalid("mfa_challenge", "MFA_CHALLENGE_REQUIRED", "give the challenge of your login's first step")
	}
	var out TOTPEnrollment
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		_, u, err := m.challengeForEnrolment(ctx, tx, challenge)
		if err != nil {
			return err
		}
		out, err = m.beginTOTP(ctx, tx, t, u, c)
		return err
	})
	return out, internal(err, "begin TOTP enrolment")
}

// beginTOTP is BeginTOTP in tx, for u (locked).
func (m *Manager) beginTOTP(ctx context.Context, tx Tx, t tenancy.Tenant, u *User, c Client) (TOTPEnrollment, error) {
	if m.cfg.TOTPSecrets == nil {
		return TOTPEnrollment{}, errors.New("no TOTP secret box configured")
	}
	f, err := tx.TOTPFactor(ctx, u.ID, true)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return TOTPEnrollment{}, err
	}
	if f.Confirmed() {
		return TOTPEnrollment{}, errTOTPAlreadyEnrolled
	}
	key, err := totp.Generate(totp.GenerateOpts{
		// A colon would end the issuer early in the URI's label.
		Issuer:      strings.ReplaceAll(tenantName(t), ":", " "),
		AccountName: u.Email,
		Period:      totpPeriod,
		SecretSize:  totpSecretBytes,
		Digits:      totpDigits,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return TOTPEnrollment{}, err
	}
	img, err := key.Image(totpQRSize, totpQRSize)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	var qr bytes.Buffer
	if err := png.Encode(&qr, img); err != nil {
		return TOTPEnrollment{}, err
	}
	err = tx.SaveTOTPFactor(ctx, &TOTPFactor{UserID: u.ID, CreateTime: m.now(),
		SecretSealed: m.cfg.TOTPSecrets.Seal([]byte(key.Secret()), totpAD(t, u.ID))})
	if err != nil {
		return TOTPEnrollment{}, err
	}
	if err := tx.Audit(ctx, AuditEvent{Event: EventMFATOTPEnrollmentStarted, UserID: u.ID, ClientIP: c.IP}); err != nil {
		return TOTPEnrollment{}, err
	}
	return TOTPEnrollment{Secret: key.Secret(), URI: key.URL(), QRCodePNG: qr.Bytes()}, nil
}

// ConfirmTOTP enrols the pending authenticator app once code, one of its
// codes, proves it has the secret, and returns the account's new recovery
// codes (the only time they are shown). The user is mailed.
func (m *Manager) ConfirmTOTP(ctx context.Context, t tenancy.Tenant, userID, code string, c Client) ([]string, error) {
	proof := FactorProof{TOTPCode: code}
	if err := proof.validate(); err != nil {
		return nil, err
	}
	if err := m.checkSecondFactorLimits(ctx, t, userID, c, "enrolment"); err != nil {
		return nil, err
	}
	var codes []string
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		u, err := tx.UserByID(ctx, userID, true)
		if err != nil {
			return err
		}
		codes, err = m.confirmTOTP(ctx, tx, t, u, code, c)
		return err
	})
	if errors.Is(err, errWrongCode) {
		return nil, m.codeRefused(ctx, t, userID, proof, c, "enrolment")
	}
	if errors.Is(err, ErrNotFound) {
		return nil, errSessionEnded
	}
	if err != nil {
		return nil, internal(err, "confirm TOTP enrolment")
	}
	return codes, nil
}

// ConfirmTOTPAtLogin is ConfirmTOTP for the user of a login's MFA
// challenge, which it then completes as VerifyMFA does: the answer has the
// recovery codes and the session. As for BeginTOTPAtLogin, only a user who
// must enrol (mustEnrolAtLogin) may; any other challenge is
// errMFAChallengeInvalid.
func (m *Manager) ConfirmTOTPAtLogin(ctx context.Context, t tenancy.Tenant, challenge, code string, c Client) ([]string, LoginResult, error) {
	codes, res, err := m.confirmTOTPAtLogin(ctx, t, challenge, code, c)
	m.cfg.OnLogin(LoginMFA, loginOutcome(err))
	return codes, res, err
}

func (m *Manager) confirmTOTPAtLogin(ctx context.Context, t tenancy.Tenant, challenge, code string, c Client) ([]string, LoginResult, error) {
	proof := FactorProof{TOTPCode: code}
	var bad fieldErrors
	if challenge == "" || len(challenge) > 128 {
		bad.add(fault.Invalid("mfa_challenge", "MFA_CHALLENGE_REQUIRED", "give the challenge of your login's first step"))
	}
	bad.add(proof.validate())
	if err := bad.err(); err != nil {
		return nil, LoginResult{}, err
	}
	// A challenge that cannot enrol is refused before the code limits, so
	// that it spends none of its user's; the transaction that enrols asks
	// again.
	var userID string
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		_, u, err := m.challengeForEnrolment(ctx, tx, challenge)
		if err == nil {
			userID = u.ID
		}
		return err
	})
	if err != nil {
		return nil, LoginResult{}, internal(err, "confirm TOTP enrolment")
	}
	if err := m.checkSecondFactorLimits(ctx, t, userID, c, "enrolment"); err != nil {
		return nil, LoginResult{}, err
	}
	var (
		codes []string
		res   LoginResult
	)
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		tok, u, err := m.challengeForEnrolment(ctx, tx, challenge)
		if err != nil {
			return err
		}
		if codes, err = m.confirmTOTP(ctx, tx, t, u, code, c); err != nil {
			return err
		}
		now := m.now()
		if err := tx.UseToken(ctx, tok.Hash, now); err != nil {
			return err
		}
		u.LastLoginTime = now
		if err := tx.RecordLogin(ctx, u.ID, now, ""); err != nil {
			return err
		}
		tokens, err := m.openSession(ctx, tx, t, u, c, withSecondFactor(tok.AMR, "otp"))
		if err != nil {
			return err
		}
		res = LoginResult{Tokens: tokens, User: u}
		return tx.Audit(ctx, AuditEvent{Event: EventLogin, UserID: u.ID, ClientIP: c.IP,
			Details: map[string]any{"session": tokens.SessionID, "mfa": string(FactorTOTP), "enrolled": true}})
	})
	if errors.Is(err, errWrongCode) {
		return nil, LoginResult{}, m.codeRefused(ctx, t, userID, proof, c, "enrolment")
	}
	if err != nil {
		return nil, LoginResult{}, internal(err, "confirm TOTP enrolment")
	}
	return codes, res, nil
}

// confirmTOTP is ConfirmTOTP in tx, for u (locked); a wrong code is
// errWrongCode.
func (m *Manager) confirmTOTP(ctx context.Context, tx Tx, t tenancy.Tenant, u *User, code string, c Client) ([]string, error) {
	f, err := tx.TOTPFactor(ctx, u.ID, true)
	if errors.Is(err, ErrNotFound) {
		return nil, errTOTPNotStarted
	}
	if err != nil {
		return nil, err
	}
	if f.Confirmed() {
		return nil, errTOTPAlreadyEnrolled
	}
	secret, err := m.openSecret(t, f)
	if err != nil {
		return nil, err
	}
	now := m.now()
	step, ok := matchTOTP(secret, code, now, 0)
	if !ok {
		return nil, errWrongCode
	}
	f.ConfirmTime, f.LastUsedStep = now, step
	if err := tx.SaveTOTPFactor(ctx, f); err != nil {
		return nil, err
	}
	codes, hashes := newRecoveryCodes(u.ID)
	if err := tx.ReplaceRecoveryCodes(ctx, u.ID, hashes, now); err != nil {
		return nil, err
	}
	if err := tx.Audit(ctx, AuditEvent{Event: EventMFATOTPEnrolled, UserID: u.ID, ClientIP: c.IP}); err != nil {
		return nil, err
	}
	if err := enqueueMail(ctx, tx, t, factorAddedMail(t, u.Email, []byte(u.ID+now.String()))); err != nil {
		return nil, err
	}
	return codes, nil
}

// RemoveTOTP removes the user's authenticator app and recovery codes, once
// p proves the factor (its owner is at hand, not only their session). The
// user is mailed.
func (m *Manager) RemoveTOTP(ctx context.Context, t tenancy.Tenant, userID string, p FactorProof, c Client) error {
	err := m.withProvenFactor(ctx, t, userID, p, c, "removal", func(ctx context.Context, tx Tx, u *User) error {
		settings, err := tx.Settings(ctx)
		if err != nil {
			return err
		}
		if settings.MFAPolicy.requires(u) {
			return errMFARequiredByTenant
		}
		if err := tx.DeleteSecondFactors(ctx, userID); err != nil {
			return err
		}
		if err := tx.DeleteRememberedDevices(ctx, userID); err != nil {
			return err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventMFATOTPRemoved, UserID: userID, ClientIP: c.IP,
			Details: map[string]any{"proof": string(p.method())}}); err != nil {
			return err
		}
		return enqueueMail(ctx, tx, t, factorRemovedMail(t, u.Email, []byte(userID+m.now().String())))
	})
	return err
}

// RegenerateRecoveryCodes replaces the user's recovery codes, once p proves
// the factor, and returns the new ones (the only time they are shown).
func (m *Manager) RegenerateRecoveryCodes(ctx context.Context, t tenancy.Tenant, userID string, p FactorProof, c Client) ([]string, error) {
	var codes []string
	err := m.withProvenFactor(ctx, t, userID, p, c, "recovery codes", func(ctx context.Context, tx Tx, _ *User) error {
		var hashes [][]byte
		codes, hashes = newRecoveryCodes(userID)
		if err := tx.ReplaceRecoveryCodes(ctx, userID, hashes, m.now()); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventMFARecoveryCodesGenerated, UserID: userID, ClientIP: c.IP,
			Details: map[string]any{"proof": string(p.method())}})
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// withProvenFactor runs fn in the transaction that proves the user's
// confirmed factor with p, under the code limits.
func (m *Manager) withProvenFactor(ctx context.Context, t tenancy.Tenant, userID string, p FactorProof, c Client, during string,
	fn func(ctx context.Context, tx Tx, u *User) error,
) error {
	if err := p.validate(); err != nil {
		return err
	}
	if err := m.checkSecondFactorLimits(ctx, t, userID, c, during); err != nil {
		return err
	}
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		u, err := tx.UserByID(ctx, userID, true)
		if err != nil {
			return err
		}
		f, err := tx.TOTPFactor(ctx, userID, true)
		if errors.Is(err, ErrNotFound) || (err == nil && !f.Confirmed()) {
			return errTOTPNotEnrolled
		}
		if err != nil {
			return err
		}
		if err := m.proveFactor(ctx, tx, t, f, p); err != nil {
			return err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventMFAUsed, UserID: userID, ClientIP: c.IP,
			Details: map[string]any{"factor": string(p.method()), "during": during}}); err != nil {
			return err
		}
		return fn(ctx, tx, u)
	})
	if errors.Is(err, errWrongCode) {
		return m.codeRefused(ctx, t, userID, p, c, during)
	}
	if errors.Is(err, ErrNotFound) {
		return errSessionEnded
	}
	return internal(err, "second factor "+during)
}

// removeEveryFactor deletes a user's second factors (the authenticator
// app with its recovery codes, the passkeys) and the devices remembered as
// having passed one, for an admin's reset and for an account taken over by
// the first proof of its address.
func removeEveryFactor(ctx context.Context, tx Tx, userID string) error {
	if err := tx.DeleteSecondFactors(ctx, userID); err != nil {
		return err
	}
	if err := tx.DeleteUserPasskeys(ctx, userID); err != nil {
		return err
	}
	return tx.DeleteRememberedDevices(ctx, userID)
}

// ResetUserMFA removes a user's second factors for a tenant admin or the
// operator (c): the user lost them. Their pending login challenges end;
// their sessions stay open. The user is mailed.
func (m *Manager) ResetUserMFA(ctx context.Context, t tenancy.Tenant, userID string, c Client) error {
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.actingAdmin(ctx, tx, c); err != nil {
			return err
		}
		u, err := tx.UserByID(ctx, userID, true)
		if errors.Is(err, ErrNotFound) {
			return errUserNotFound(userID)
		}
		if err != nil {
			return err
		}
		// Every factor goes: the app, its recovery codes and the passkeys.
		totp, passkeys, err := hasSecondFactor(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		if totp == nil && passkeys == 0 {
			return errTOTPNotEnrolled
		}
		if err := removeEveryFactor(ctx, tx, u.ID); err != nil {
			return err
		}
		if err := tx.UseTokensOf(ctx, u.ID, m.now(), PurposeMFAChallenge); err != nil {
			return err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventMFAResetByAdmin, UserID: u.ID, Actor: c.Actor, ClientIP: c.IP}); err != nil {
			return err
		}
		return enqueueMail(ctx, tx, t, factorResetMail(t, u.Email, []byte(u.ID+m.now().String())))
	})
	return internal(err, "reset second factors")
}
