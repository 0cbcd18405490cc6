package account

import (
	"context"
	"errors"
	"time"

	"tenantry.dev/identity/internal/mail"
	"tenantry.dev/kit/tenancy"
)

// Errors a Tx returns for conditions the rules react to.
var (
	// ErrNotFound: no row matched.
	ErrNotFound = errors.New("not found")
	// ErrEmailTaken: another account has the email.
	ErrEmailTaken = errors.New("email taken")
	// ErrUsernameTaken: another account has the username.
	ErrUsernameTaken = errors.New("username taken")
	// ErrVersionMismatch: the row changed since it was read.
	ErrVersionMismatch = errors.New("version mismatch")
)

// Store opens transactions scoped to one tenant's schema.
type Store interface {
	// InTenant runs fn in a transaction inside t's schema, migrating the
	// schema first if this is its first use. Nothing fn does can reach
	// another tenant's data.
	InTenant(ctx context.Context, t tenancy.Tenant, fn func(ctx context.Context, tx Tx) error) error
}

// Rotator is what a Store may also do: rotate a refresh token in the
// ordinary case (the token its session's current one, the session open,
// its user enabled)
// without a transaction of its own, batched with other calls' rotations.
// Refresh uses it first when the store has it, and falls back to its
// transaction, which applies every rule, when Rotated.OK is false.
type Rotator interface {
	Rotate(ctx context.Context, t tenancy.Tenant, r Rotation) (Rotated, error)
}

// Rotation asks for session SessionID, if its current refresh token is
// still OldHash of Generation, to move to NewHash of Generation+1 at Now,
// its expiry becoming Expires but never more than MaxAge after the session
// began.
type Rotation struct {
	SessionID        string
	Generation       int64
	OldHash, NewHash []byte
	Now, Expires     time.Time
	MaxAge           time.Duration
	// ClientID is the OAuth client presenting a grant's token; empty for
	// RefreshSession, which rotates only logins' sessions.
	ClientID string
}

// Rotated says whether a Rotation was done and for whom.
type Rotated struct {
	OK        bool
	SessionID string
	UserID    string
	Roles     []string
	// Scopes and AuthTime are the grant's (empty for a login's session).
	Scopes   []string
	AuthTime time.Time
	// AMR is how the session's user authenticated (AMROf).
	AMR []string
}

// UserQuery selects users for listing.
type UserQuery struct {
	AfterEmail    string
	State         UserState
	Disabled      *bool
	Role          string
	EmailVerified *bool
	// Search keeps the users whose email, username or display name
	// contains it, case-insensitively (the admin page's search).
	Search string
}

// Tx is what one tenant-scoped transaction can do.
type Tx interface {
	Settings(ctx context.Context) (Settings, error)
	// SaveSettings stores s if the stored version is still s.Version and
	// returns the stored result with its new version.
	SaveSettings(ctx context.Context, s Settings) (Settings, error)

	UserByID(ctx context.Context, id string, forUpdate bool) (*User, error)
	UserByEmail(ctx context.Context, email string, forUpdate bool) (*User, error)
	UserByUsername(ctx context.Context, username string) (*User, error)
	InsertUser(ctx context.Context, u *User) error
	// UpdateUser stores u if the stored version is still u.Version, then
	// increments u.Version.
	UpdateUser(ctx context.Context, u *User) error
	// RecordLogin stamps a login (and a re-hashed password, when not empty)
	// without changing the user's version: a login is not an edit, and must
	// not make an administrator's copy of the user stale.
	RecordLogin(ctx context.Context, id string, at time.Time, newHash string) error
	DeleteUser(ctx context.Context, id string) error
	ListUsers(ctx context.Context, q UserQuery, limit int) ([]*User, error)

	InsertSession(ctx context.Context, s *Session) error
	Session(ctx context.Context, id string, forUpdate bool) (*Session, error)
	UserSessions(ctx context.Context, userID string, now time.Time) ([]*Session, error)
	// RevokeSession ends one session; RevokeUserSessions ends all of a
	// user's sessions except one (empty: all).
	RevokeSession(ctx context.Context, id, reason string, at time.Time) error
	RevokeUserSessions(ctx context.Context, userID, exceptID, reason string, at time.Time) error
	// RotateSession makes hash, of generation gen, the session's current
	// refresh token, and sets its refresh and expiry times.
	RotateSession(ctx context.Context, id string, gen int64, hash []byte, refreshed, expires time.Time) error
	// RecordReauth records a proof given again in the session.
	RecordReauth(ctx context.Context, id string, at time.Time, amr []string) error
	// DeleteEndedSessions deletes the sessions revoked or expired before
	// before.
	DeleteEndedSessions(ctx context.Context, before time.Time) (int64, error)

	InsertToken(ctx context.Context, t *OneTimeToken) error
	// Token locks a single-use token row.
	Token(ctx context.Context, hash []byte) (*OneTimeToken, error)
	UseToken(ctx context.Context, hash []byte, at time.Time) error
	// UseTokensOf marks a user's unused tokens of the purposes used, so
	// only the newest link works, or none after a change that must end them.
	UseTokensOf(ctx context.Context, userID string, at time.Time, purposes ...Purpose) error
	// DeleteExpiredTokens deletes the single-use tokens that expired before
	// before.
	DeleteExpiredTokens(ctx context.Context, before time.Time) (int64, error)

	Audit(ctx context.Context, e AuditEvent) error
	// Enqueue writes a mail to the outbox in this transaction.
	Enqueue(ctx context.Context, m mail.Message) error

	// ScheduleDeletion sets (at non-nil) or clears when userID's account
	// is deleted; RecordLogin clears it too.
	ScheduleDeletion(ctx context.Context, userID string, at *time.Time) error
	// DeletionTime is when userID's account is to be deleted, or zero.
	DeletionTime(ctx context.Context, userID string) (time.Time, error)
	// UsersDueForDeletion lists up to limit accounts due for deletion at
	// now, locked.
	UsersDueForDeletion(ctx context.Context, now time.Time, limit int) ([]string, error)

	OAuthClientTx
	OIDCTx
	FederationTx
	MFATx
	DeviceTx
	LoginCodeTx
	PasskeyTx
	AccountEventTx
	EmailAddressTx
}
