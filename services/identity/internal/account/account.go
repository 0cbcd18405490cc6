package account

import (
	"slices"
	"time"
)

// UserState is the lifecycle state of an account.
type UserState string

// Account states. A disabled account keeps its state and sets Disabled.
const (
	Invited UserState = "INVITED"
	Active  UserState = "ACTIVE"
)

// User is an account inside one tenant.
type User struct {
	ID                 string
	Email              string
	EmailVerified      bool
	Username           string
	DisplayName        string
	PasswordHash       string
	Roles              []string
	State              UserState
	Disabled           bool
	CreateTime         time.Time
	UpdateTime         time.Time
	LastLoginTime      time.Time
	PasswordChangeTime time.Time
	// Version increases with every change; it is the user's etag.
	Version int64
	// MFAEnabled says the user has a confirmed second factor (read with
	// the user; not part of its version).
	MFAEnabled bool
}

// HasRole reports whether the user has a role.
func (u *User) HasRole(role string) bool {
	for _, r := range u.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Session is one login, kept alive by rotating refresh tokens.
type Session struct {
	ID           string
	UserID       string
	CreateTime   time.Time
	RefreshTime  time.Time
	ExpireTime   time.Time
	RevokeTime   time.Time
	RevokeReason string
	UserAgent    string
	ClientIP     string
	// RefreshGeneration counts the session's rotations; RefreshHash is the
	// SHA-256 of its one current refresh token, of that generation.
	RefreshGeneration int64
	RefreshHash       []byte
	// ClientID is set on a grant: a session an OAuth client holds for the
	// user (see oidc.go). A login's own session has none.
	ClientID string
	// Scopes, AuthTime and SSOSessionID are a grant's: what the user
	// granted, when they authenticated, and the browser session they were
	// logged in with.
	Scopes       []string
	AuthTime     time.Time
	SSOSessionID string
	// AMR is how the user authenticated (RFC 8176 method references): a
	// login's, or for a grant the browser session's it was made from.
	// Empty is taken for a password (AMROf).
	AMR []string
	// ReauthTime and ReauthAMR are the last proof given again in the
	// session (Reauthenticate), and how.
	ReauthTime time.Time
	ReauthAMR  []string
}

// Authentication method references of sessions (RFC 8176).
var (
	// AMRPassword: a password alone.
	AMRPassword = []string{"pwd"}
	// AMRPasswordAndOTP: a password and a one-time code (an authenticator
	// app's, or a recovery code). After a mailed code or another provider,
	// their value comes first instead (withSecondFactor).
	AMRPasswordAndOTP = []string{"pwd", "otp", "mfa"}
	// AMREmailCode: a code mailed to the user (no RFC 8176 value says so:
	// "email", never "otp", which sensitive actions take for the factor).
	AMREmailCode = []string{"email"}
	// AMRFederated: another identity provider vouched for the user. RFC
	// 8176 has no value for it; "fed" is Microsoft Entra ID's, the common
	// convention. How that provider authenticated them is its own to say,
	// not ours: claiming "pwd" would say a password was given here.
	AMRFederated = []string{"fed"}
)

// withSecondFactor is the amr of a login whose first step authenticated
// by first (its MFA challenge's OneTimeToken.AMR) and whose second proved
// the account's factor: "otp" for a code of the app or a recovery code,
// "hwk" for a passkey. A challenge that says nothing followed a password:
// challenges issued before they said were all a password's, or were taken
// for one.
func withSecondFactor(first []string, factor string) []string {
	if len(first) == 0 {
		first = AMRPassword
	}
	return slices.Concat(first, []string{factor, "mfa"})
}

// AMROf is how the user of session s authenticated; a session that does
// not say (opened before sessions said, or through another identity
// provider before those said "fed") is taken for a password, as before.
func AMROf(s *Session) []string {
	if len(s.AMR) == 0 {
		return AMRPassword
	}
	return s.AMR
}

// Open reports whether the session can still be used at now.
func (s *Session) Open(now time.Time) bool {
	return s.RevokeTime.IsZero() && now.Before(s.ExpireTime)
}

// SignupPolicy says who may create an account in a tenant.
type SignupPolicy string

// Sign-up policies.
const (
	SignupOpen       SignupPolicy = "OPEN"
	SignupInviteOnly SignupPolicy = "INVITE_ONLY"
	SignupClosed     SignupPolicy = "CLOSED"
)

// Verification says whether a tenant requires verified emails.
type Verification string

// Email verification modes.
const (
	VerificationMandatory Verification = "MANDATORY"
	VerificationOptional  Verification = "OPTIONAL"
	VerificationOff       Verification = "OFF"
)

// Settings are a tenant's identity settings.
type Settings struct {
	SignupPolicy      SignupPolicy
	EmailVerification Verification
	PasswordMinLength int
	AllowedOrigins    []string
	// MaxLoginsPerSecond is the tenant's login ceiling: how many login
	// attempts all its users together may make a second, across every
	// replica, with five seconds' worth at once (ratelimit.LoginPerTenantAt).
	// It caps what a flood of logins (each a password hash) costs; a large
	// tenant sets it above its legitimate peak. From
	// LowestMaxLoginsPerSecond to HighestMaxLoginsPerSecond; new tenants
	// get DefaultMaxLoginsPerSecond.
	MaxLoginsPerSecond int
	// MFAPolicy says whose logins need a second factor; empty is
	// MFAOptional.
	MFAPolicy MFAPolicy
	// MFARememberDays is for how many days a device that gave a second
	// factor may skip it at later logins: 0 (never) to
	// HighestMFARememberDays.
	MFARememberDays int
	// LoginByEmailCode lets users log in with a code mailed to them
	// instead of their password (logincode.go).
	LoginByEmailCode bool
	// DisplayName, LogoURL and AccentColor brand the tenant's pages and
	// mails (see BrandOf): a name ("" is the registry's), an https logo
	// URL and a #rrggbb colour (branding.ValidateLogoURL, ValidateAccent).
	DisplayName string
	LogoURL     string
	AccentColor string
	// DeletionGraceDays is how long an account whose owner asked for its
	// deletion is kept, during which a login cancels it: 0 to
	// HighestDeletionGraceDays (new tenants: 14).
	DeletionGraceDays int
	Version           int64
}

// HighestMFARememberDays bounds Settings.MFARememberDays.
const HighestMFARememberDays = 90

// Bounds and default of Settings.MaxLoginsPerSecond. The default, 50 a
// second (250 at once), is far above most tenants' peaks and below what
// one identity machine hashes, so that one tenant's flood leaves the
// others room. The upper bound is well above any real tenant's peak yet
// keeps the limit meaningful (a typo cannot turn it off).
const (
	DefaultMaxLoginsPerSecond = 50
	LowestMaxLoginsPerSecond  = 1
	HighestMaxLoginsPerSecond = 100_000
)

// Purpose binds a single-use token to what it may be used for.
type Purpose string

// Token purposes: a verification token cannot reset a password.
const (
	PurposeVerifyEmail   Purpose = "VERIFY_EMAIL"
	PurposeResetPassword Purpose = "RESET_PASSWORD"
	PurposeInvitation    Purpose = "INVITATION"
)

// credentialPurposes are the single-use tokens that act on an account's
// credentials or address. Changing the email or the password, or disabling
// the account, ends every outstanding one: a link mailed before the change
// (perhaps to an address the owner no longer holds) must not undo it.
// MFA challenges too: the password (or the address) they followed is no
// longer the account's.
var credentialPurposes = []Purpose{PurposeResetPassword, PurposeVerifyEmail, PurposeMFAChallenge}

// OneTimeToken is a single-use token, stored by hash only.
type OneTimeToken struct {
	Hash       []byte
	Purpose    Purpose
	UserID     string
	Email      string
	CreateTime time.Time
	ExpireTime time.Time
	UseTime    time.Time
	// AMR is, for an MFA challenge, how the login's first step
	// authenticated (AMRPassword, AMREmailCode or AMRFederated), for the
	// session the second factor opens to say so (withSecondFactor). Other
	// purposes have none, and so do challenges issued before they said.
	AMR []string
}

// AuditEvent is a security event recorded in the tenant's audit log.
type AuditEvent struct {
	Event    string
	UserID   string
	Actor    string
	ClientIP string
	Details  map[string]any
}

// Audit event names.
const (
	EventSignUp              = "user.signed_up"
	EventSignUpExisting      = "user.signup_existing_email"
	EventSignUpUsernameTaken = "user.signup_username_taken"
	EventLogin               = "user.logged_in"
	EventLoginFailed         = "user.login_failed"
	EventLoginRateLimited    = "user.login_rate_limited"
	EventLogout              = "session.logged_out"
	EventRefreshReuse        = "session.refresh_token_reused"
	EventSessionRevoked      = "session.revoked"
	EventEmailVerified       = "user.email_verified"
	EventEmailChanged        = "user.email_changed"
	EventEmailChangeStarted  = "user.email_change_requested"
	EventResetRequested      = "user.password_reset_requested"
	EventResetUnknown        = "user.password_reset_unknown_email"
	EventPasswordReset       = "user.password_reset"
	EventPasswordChanged     = "user.password_changed"
	EventUserInvited         = "user.invited"
	EventInvitationAccepted  = "user.invitation_accepted"
	EventUserUpdated         = "user.updated"
	EventRolesChanged        = "user.roles_changed"
	EventUserDeleted         = "user.deleted"
	EventSettingsUpdated     = "tenant.settings_updated"
)

// Client describes who is calling, for sessions, limits and the audit log.
type Client struct {
	IP        string
	UserAgent string
	// Actor names who acted in the audit log: a credential's role (e.g.
	// "operator"), or "users/{id}" for a user acting with their token.
	Actor string
	// UserID and SessionID are the acting user's and their session's, when
	// a user acts with their access token (empty for credentials): the
	// writes of tenant admins check them again inside their transaction.
	UserID, SessionID string
}
