package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/google/uuid"

	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// Hasher hashes and checks passwords (argon2id in production).
type Hasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, encoded, password string) (ok, needsRehash bool, err error)
	// VerifyNothing costs what Verify costs, for accounts that do not exist.
	VerifyNothing(ctx context.Context, password string) error
}

// AccessTokens issues signed access tokens.
type AccessTokens interface {
	// Issue signs a token for a session of a user in a tenant, named by
	// its slug and its immutable uid (which the token is bound to), with
	// the tenant's own key.
	Issue(ctx context.Context, userID, tenant, tenantUID, sessionID string, roles []string) (token string, expires time.Time, err error)
}

// Limiter slows down guessing. Each method returns a ResourceExhausted
// fault when the caller must wait.
type Limiter interface {
	// tenant is the tenant's uid: a slug taken again after a purge starts
	// with fresh limits. Login's tenantPerSecond is the tenant's own
	// ceiling (Settings.MaxLoginsPerSecond).
	Login(ctx context.Context, tenant, account, clientIP string, tenantPerSecond int) error
	PasswordReset(ctx context.Context, tenant, account, clientIP string) error
	Verification(ctx context.Context, tenant, account, clientIP string) error
	// SignUp limits sign-ups by the email address submitted (registered
	// or not), by client address and by tenant, whose ceiling runs at
	// tenantPerSecond, the rate of its login ceiling.
	SignUp(ctx context.Context, tenant, account, clientIP string, tenantPerSecond int) error
	// SecondFactor limits attempts at a user's second factor codes (at
	// login, and to enrol, remove or regenerate), by the user's id; the
	// per-address and per-tenant budgets are the logins'.
	SecondFactor(ctx context.Context, tenant, userID, clientIP string, tenantPerSecond int) error
	// LoginCode limits the login codes mailed to an account.
	LoginCode(ctx context.Context, tenant, account, clientIP string) error
	// PasskeyLogin limits the ceremonies of logins by passkey without a
	// password, which name no account: by address and tenant only.
	PasskeyLogin(ctx context.Context, tenant, clientIP string, tenantPerSecond int) error
}

// Links builds the URLs put in emails, e.g. the tenant's verification page.
type Links interface {
	URL(t tenancy.Tenant, path, token string) string
}

// SessionCache remembers sessions found open, and their users, between
// calls (package sessioncache). Lookup answers only what is still known to
// be true; Remember stores what was read after Ticket was taken, unless
// something changed in between.
type SessionCache interface {
	Ticket() uint64
	Lookup(schema, sessionID string) (*Session, *User, bool)
	Remember(ticket uint64, schema string, s *Session, u *User)
	// LookupConfig and RememberConfig do the same for a tenant's login
	// configuration (AuthConfig), kept current by the same announcements.
	LookupConfig(schema string) (AuthConfig, bool)
	RememberConfig(ticket uint64, schema string, cfg AuthConfig)
}

// noCache is the SessionCache of a Manager configured without one.
type noCache struct{}

func (noCache) Ticket() uint64                                { return 0 }
func (noCache) Lookup(string, string) (*Session, *User, bool) { return nil, nil, false }
func (noCache) Remember(uint64, string, *Session, *User)      {}
func (noCache) LookupConfig(string) (AuthConfig, bool)        { return AuthConfig{}, false }
func (noCache) RememberConfig(uint64, string, AuthConfig)     {}

// Config holds the lifetimes the rules use.
type Config struct {
	SessionTTL     time.Duration // a session ends this long after its last refresh
	SessionMaxAge  time.Duration // and never lives longer than this
	VerifyTokenTTL time.Duration
	ResetTokenTTL  time.Duration
	InviteTokenTTL time.Duration
	Logger         *slog.Logger
	Now            func() time.Time
	// Sessions caches CheckSession's answers; nil caches nothing.
	Sessions SessionCache
	// RefreshKey authenticates refresh tokens (see refresh.go); at least
	// MinRefreshKeyBytes, the same on every replica, never stored in the
	// database.
	RefreshKey []byte
	// ResponseFloor is the least time the answers that must not reveal
	// whether an account exists take (sign-up, password reset, resent
	// verification, email change): their paths do different writes, and
	// the difference showed in their latency. DefaultResponseFloor when
	// zero; negative turns it off.
	ResponseFloor time.Duration
	// ProviderSecrets seals identity providers' client secrets; nil
	// refuses to store any (see federation.go).
	ProviderSecrets Sealer
	// TOTPSecrets seals users' authenticator app secrets; nil refuses to
	// enrol any (see mfa.go).
	TOTPSecrets Sealer
	// WaitUntil holds an answer until deadline (or ctx ends); nil is a
	// timer. Tests replace it to see each answer's deadline.
	WaitUntil func(ctx context.Context, deadline time.Time)
	// OnLogin hears how every login ended, for metrics; it must return
	// at once. nil hears nothing.
	OnLogin func(LoginMethod, LoginOutcome)
	// WebhookSecrets seals webhook endpoints' signing secrets; nil
	// refuses to create endpoints (see webhooks.go).
	WebhookSecrets Sealer
	// CheckWebhookURL refuses webhook URLs whose host resolves to an
	// address deliveries must not reach (loopback, private networks); nil
	// accepts any.
	CheckWebhookURL func(ctx context.Context, u *url.URL) error
	// OnWebhookEndpointChanged hears, after the commit, that an endpoint
	// of the tenant was created or updated, so that the webhook worker
	// learns at once that the tenant has one (its safety net visits only
	// tenants known to have webhooks); it must return at once. nil hears
	// nothing.
	OnWebhookEndpointChanged func(tenancy.Tenant)
}

// DefaultResponseFloor is well above what those calls take on their own
// (a few milliseconds, tens with a password hash) yet unnoticeable to a
// person waiting for a "check your email" page.
const DefaultResponseFloor = 50 * time.Millisecond

// Manager applies identity's rules inside tenants.
type Manager struct {
	store  Store
	hasher Hasher
	tokens AccessTokens
	limits Limiter
	links  Links
	cfg    Config
	// loginRates are the tenants' login ceilings as this replica last
	// read them (see loginrate.go).
	loginRates loginRates
	// passkeyRPs are go-webauthn's configurations, one per relying party
	// (passkey.go).
	passkeyRPs relyingParties
}

// NewManager returns a Manager; zero durations in cfg get defaults.
func NewManager(store Store, hasher Hasher, tokens AccessTokens, limits Limiter, links Links, cfg Config) (*Manager, error) {
	if len(cfg.RefreshKey) < MinRefreshKeyBytes {
		return nil, fmt.Errorf("account: the refresh token key has %d bytes, want at least %d", len(cfg.RefreshKey), MinRefreshKeyBytes)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.SessionTTL, 14*24*time.Hour)
	def(&cfg.SessionMaxAge, 90*24*time.Hour)
	def(&cfg.VerifyTokenTTL, 3*24*time.Hour)
	def(&cfg.ResetTokenTTL, time.Hour)
	def(&cfg.InviteTokenTTL, 7*24*time.Hour)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sessions == nil {
		cfg.Sessions = noCache{}
	}
	if cfg.ResponseFloor == 0 {
		cfg.ResponseFloor = DefaultResponseFloor
	}
	if cfg.WaitUntil == nil {
		cfg.WaitUntil = waitUntil
	}
	if cfg.OnLogin == nil {
		cfg.OnLogin = func(LoginMethod, LoginOutcome) {}
	}
	if cfg.OnWebhookEndpointChanged == nil {
		cfg.OnWebhookEndpointChanged = func(tenancy.Tenant) {}
	}
	return &Manager{store: store, hasher: hasher, tokens: tokens, limits: limits, links: links, cfg: cfg}, nil
}

func (m *Manager) now() time.Time { return m.cfg.Now().UTC() }

// evenOut holds an answer that must not reveal which path it took until
// ResponseFloor has passed since start, measured on the wall clock (the
// attacker's), whatever Config.Now says. Call it after every transaction,
// so no connection is held while waiting.
func (m *Manager) evenOut(ctx context.Context, start time.Time) {
	if m.cfg.ResponseFloor > 0 {
		m.cfg.WaitUntil(ctx, start.Add(m.cfg.ResponseFloor))
	}
}

func waitUntil(ctx context.Context, deadline time.Time) {
	d := time.Until(deadline)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// newSecret returns a random token for a link or a refresh token, and the
// SHA-256 hash under which it is stored. The token has 256 bits of entropy,
// so a fast hash is enough: there is nothing to brute-force.
func newSecret() (string, []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	s := base64.RawURLEncoding.EncodeToString(b)
	return s, hashSecret(s)
}

func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// Common faults. Messages never say whether an account exists.
var (
	errInvalidCredentials = fault.New(fault.Unauthenticated, "INVALID_CREDENTIALS",
		"the email or username and password do not match an account (or its email address is not verified yet: follow the link we sent)")
	errInvalidToken = func(field string) error {
		return fault.Invalid(field, "TOKEN_INVALID", "this link is invalid or has expired; ask for a new one")
	}
	errSessionEnded = fault.New(fault.Unauthenticated, "SESSION_ENDED", "the session has ended; log in again")
)

func internal(err error, what string) error {
	if err == nil {
		return nil
	}
	if _, ok := fault.As(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fault.New(fault.Internal, "INTERNAL", "internal error").WithCause(fmt.Errorf("%s: %w", what, err))
}

func newID() string { return uuid.NewString() }

// SessionTTL is how long a session lasts after its last refresh; clients
// that keep the refresh token in a cookie give the cookie this lifetime.
func (m *Manager) SessionTTL() time.Duration { return m.cfg.SessionTTL }
