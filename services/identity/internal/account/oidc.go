package account

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"

	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// The rules of identity's OpenID Provider (package oidcop speaks the
// protocol; these are the decisions and the storage behind it).
//
// An authorization request lives from /oauth/authorize until its code is
// exchanged, at most AuthRequestTTL. It is bound to the browser that
// started it (the hash of a cookie), so that a request id that leaks (in a
// Referer, a log) cannot be completed in another browser. It is completed
// once the user is logged in (and has consented, for a third-party
// client); its code is then exchanged exactly once. A code presented again
// ends the grant it produced (RFC 6749, section 4.1.2).
//
// A grant is a session row with the client's id: the same refresh rotation
// and reuse detection as a login's session, limited to its client.

// AuthRequestTTL bounds the time from /oauth/authorize to the code
// exchange: the login in between included.
const AuthRequestTTL = 15 * time.Minute

// Audit events of the OpenID Provider.
const (
	EventOAuthGrant       = "oauth.grant"
	EventOAuthConsent     = "oauth.consent"
	EventOAuthCodeReused  = "oauth.code_reused"
	EventOAuthGrantEnded  = "oauth.grant_ended"
	EventOAuthLogout      = "oauth.logout"
	EventOAuthTokenIssued = "oauth.client_token"
)

// AuthParams are the parameters of an authorization request that identity
// keeps until the code exchange.
type AuthParams struct {
	RedirectURI         string   `json:"redirect_uri"`
	Scopes              []string `json:"scopes"`
	State               string   `json:"state,omitempty"`
	Nonce               string   `json:"nonce,omitempty"`
	ResponseType        string   `json:"response_type"`
	ResponseMode        string   `json:"response_mode,omitempty"`
	CodeChallenge       string   `json:"code_challenge,omitempty"`
	CodeChallengeMethod string   `json:"code_challenge_method,omitempty"`
	Prompt              []string `json:"prompt,omitempty"`
	// MaxAge is the request's max_age in seconds; nil when absent.
	MaxAge    *uint  `json:"max_age,omitempty"`
	LoginHint string `json:"login_hint,omitempty"`
}

// HasPrompt reports whether the request asked for prompt p.
func (p AuthParams) HasPrompt(prompt string) bool { return slices.Contains(p.Prompt, prompt) }

// AuthRequest is one authorization request.
type AuthRequest struct {
	ID          string
	ClientID    string
	Params      AuthParams
	BindingHash []byte
	// UserID, SSOSessionID and AuthTime are set once the user has logged
	// in: the request is then done.
	UserID       string
	SSOSessionID string
	AuthTime     time.Time
	AMR          []string
	// CodeUsed says the code was exchanged already; GrantID is the grant
	// that exchange opened.
	CodeUsed   bool
	GrantID    string
	CreateTime time.Time
	ExpireTime time.Time
}

// Done reports whether the user has logged in for the request.
func (r *AuthRequest) Done() bool { return r.UserID != "" }

// OIDCTx is what a tenant-scoped transaction can do for the OpenID
// Provider (part of Tx).
type OIDCTx interface {
	InsertAuthRequest(ctx context.Context, r *AuthRequest) error
	AuthRequest(ctx context.Context, id string, forUpdate bool) (*AuthRequest, error)
	// CompleteAuthRequest records who logged in for a request not yet done.
	CompleteAuthRequest(ctx context.Context, r *AuthRequest) error
	SetAuthCode(ctx context.Context, id string, codeHash []byte) error
	// AuthRequestByCode locks the request whose code hashes to codeHash.
	AuthRequestByCode(ctx context.Context, codeHash []byte) (*AuthRequest, error)
	// UseAuthCode marks a request's code exchanged, for grant grantID.
	UseAuthCode(ctx context.Context, id, grantID string, at time.Time) error
	DeleteExpiredAuthRequests(ctx context.Context, before time.Time) (int64, error)
	Consent(ctx context.Context, userID, clientID string) ([]string, error)
	SaveConsent(ctx context.Context, userID, clientID string, scopes []string, at time.Time) error
	// RevokeSSOSessions ends a browser session and every grant made from it.
	RevokeSSOSessions(ctx context.Context, ssoSessionID, reason string, at time.Time) ([]string, error)
}

// errAuthRequestGone is the answer for a request that does not exist, has
// expired, or belongs to another browser: the same for all three.
var errAuthRequestGone = fault.New(fault.NotFound, "AUTH_REQUEST_NOT_FOUND",
	"this sign-in request has expired or was started in another browser: go back to the application and sign in again")

// ErrAuthCodeInvalid is the answer for a code that is unknown, expired,
// used, or not this client's.
var ErrAuthCodeInvalid = errors.New("the authorization code is invalid, expired or already used")

// CreateAuthRequest stores a new authorization request, bound to the
// browser whose binding cookie hashes to r.BindingHash.
func (m *Manager) CreateAuthRequest(ctx context.Context, t tenancy.Tenant, r *AuthRequest) error {
	now := m.now()
	r.ID, r.CreateTime, r.ExpireTime = uuid.NewString(), now, now.Add(AuthRequestTTL)
	return internal(m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		return tx.InsertAuthRequest(ctx, r)
	}), "create authorization request")
}

// AuthRequest returns a live authorization request. bindingHash, when not
// nil, must be the request's: the browser asking is the one that started
// it.
func (m *Manager) AuthRequest(ctx context.Context, t tenancy.Tenant, id string, bindingHash []byte) (*AuthRequest, error) {
	var r *AuthRequest
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		r, err = tx.AuthRequest(ctx, id, false)
		return err
	})
	if errors.Is(err, ErrNotFound) || err == nil && (!m.now().Before(r.ExpireTime) ||
		bindingHash != nil && !hmac.Equal(bindingHash, r.BindingHash)) {
		return nil, errAuthRequestGone
	}
	return r, internal(err, "read authorization request")
}

// CompleteAuthRequest records that the user of an open browser session
// (ssoSessionID) logged in for request id, from the browser bound to it.
// For a third-party client the user must have consented to the request's
// scopes (Consented, then GiveConsent).
func (m *Manager) CompleteAuthRequest(ctx context.Context, t tenancy.Tenant, id string, bindingHash []byte, ssoSessionID string) (*AuthRequest, error) {
	var r *AuthRequest
	now := m.now()
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		if r, err = tx.AuthRequest(ctx, id, true); err != nil {
			return err
		}
		if !now.Before(r.ExpireTime) || !hmac.Equal(bindingHash, r.BindingHash) || r.CodeUsed {
			return ErrNotFound
		}
		s, u, err := openSession(ctx, tx, ssoSessionID, now)
		if err != nil {
			return err
		}
		if s.ClientID != "" {
			return errSessionEnded // a grant is no browser session
		}
		r.UserID, r.SSOSessionID, r.AuthTime, r.AMR = u.ID, s.ID, s.CreateTime, AMROf(s)
		return tx.CompleteAuthRequest(ctx, r)
	})
	if errors.Is(err, ErrNotFound) {
		return nil, errAuthRequestGone
	}
	return r, internal(err, "complete authorization request")
}

// openSession reads a session that is open at now, and its user, who must
// be enabled: errSessionEnded for a missing or ended session, errDisabled
// for a disabled user.
func openSession(ctx context.Context, tx Tx, id string, now time.Time) (*Session, *User, error) {
	s, err := tx.Session(ctx, id, false)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, errSessionEnded
	}
	if err != nil {
		return nil, nil, err
	}
	if !s.Open(now) {
		return nil, nil, errSessionEnded
	}
	u, err := tx.UserByID(ctx, s.UserID, false)
	if err != nil {
		return nil, nil, err
	}
	if u.Disabled {
		return nil, nil, errDisabled
	}
	return s, u, nil
}

// SaveAuthCode records the hash of the code issued for a done request.
func (m *Manager) SaveAuthCode(ctx context.Context, t tenancy.Tenant, id, code string) error {
	return internal(m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		return tx.SetAuthCode(ctx, id, hashSecret(code))
	}), "save authorization code")
}

// AuthRequestByCode returns the done, unexpired request of an unused code.
// A code used before is refused and the grant its first exchange opened is
// ended: someone replayed it.
func (m *Manager) AuthRequestByCode(ctx context.Context, t tenancy.Tenant, code string) (*AuthRequest, error) {
	if code == "" || len(code) > 1024 {
		return nil, ErrAuthCodeInvalid
	}
	var (
		r      *AuthRequest
		reused bool
	)
	now := m.now()
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		if r, err = tx.AuthRequestByCode(ctx, hashSecret(code)); err != nil {
			return err
		}
		if !r.CodeUsed {
			return nil
		}
		reused = true
		if r.GrantID != "" {
			if err := tx.RevokeSession(ctx, r.GrantID, "authorization code reused", now); err != nil {
				return err
			}
		}
		return tx.Audit(ctx, AuditEvent{Event: EventOAuthCodeReused, UserID: r.UserID,
			Details: map[string]any{"client_id": r.ClientID, "grant": r.GrantID}})
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, ErrAuthCodeInvalid
	case err != nil:
		return nil, internal(err, "exchange authorization code")
	case reused || !now.Before(r.ExpireTime) || !r.Done():
		return nil, ErrAuthCodeInvalid
	}
	return r, nil
}

// Grant is a grant's state after it was opened or refreshed.
type Grant struct {
	ID       string
	UserID   string
	Roles    []string
	Scopes   []string
	AuthTime time.Time
	// AMR is how the user authenticated for the grant (the ID token's amr).
	AMR          []string
	RefreshToken string // empty when the client gets none
}

// ExchangeAuthCode opens the grant of a request whose code the client has
// just presented (AuthRequestByCode) and marks the code used, in one
// transaction: a second exchange finds it used. withRefresh says whether
// the client gets a refresh token.
func (m *Manager) ExchangeAuthCode(ctx context.Context, t tenancy.Tenant, r *AuthRequest, withRefresh bool, c Client) (Grant, error) {
	now := m.now()
	s := &Session{
		ID: newID(), UserID: r.UserID, CreateTime: now, RefreshTime: now, ExpireTime: now.Add(m.cfg.SessionTTL),
		UserAgent: truncate(c.UserAgent, 512), ClientIP: truncate(c.IP, 64),
		ClientID: r.ClientID, Scopes: r.Params.Scopes, AuthTime: r.AuthTime, SSOSessionID: r.SSOSessionID, AMR: r.AMR,
	}
	var g Grant
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		locked, err := tx.AuthRequest(ctx, r.ID, true)
		if err != nil {
			return err
		}
		if locked.CodeUsed {
			return ErrAuthCodeInvalid
		}
		u, err := tx.UserByID(ctx, r.UserID, false)
		if err != nil {
			return err
		}
		if u.Disabled {
			return errDisabled
		}
		refresh, hash, err := mintRefresh(m.cfg.RefreshKey, t.UID, s.ID, 0)
		if err != nil {
			return err
		}
		s.RefreshHash = hash
		if err := tx.InsertSession(ctx, s); err != nil {
			return err
		}
		if err := tx.UseAuthCode(ctx, r.ID, s.ID, now); err != nil {
			return err
		}
		g = Grant{ID: s.ID, UserID: u.ID, Roles: u.Roles, Scopes: s.Scopes, AuthTime: s.AuthTime, AMR: AMROf(s)}
		if withRefresh {
			g.RefreshToken = refresh
		}
		return tx.Audit(ctx, AuditEvent{Event: EventOAuthGrant, UserID: u.ID, ClientIP: c.IP,
			Details: map[string]any{"client_id": r.ClientID, "grant": s.ID, "scopes": s.Scopes}})
	})
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrAuthCodeInvalid) {
		return Grant{}, ErrAuthCodeInvalid
	}
	return g, internal(err, "open grant")
}

// RefreshGrant rotates the refresh token of a grant held by clientID.
func (m *Manager) RefreshGrant(ctx context.Context, t tenancy.Tenant, clientID, refreshToken string, c Client) (Grant, error) {
	r, err := m.rotate(ctx, t, refreshToken, clientID, c)
	if err != nil {
		return Grant{}, err
	}
	return Grant{ID: r.SessionID, UserID: r.UserID, Roles: r.Roles, Scopes: r.Scopes, AuthTime: r.AuthTime, AMR: r.AMR,
		RefreshToken: r.RefreshToken}, nil
}

// GrantOfRefreshToken returns the grant a refresh token names if its MAC
// checks out for the tenant, without looking at the database.
func (m *Manager) GrantOfRefreshToken(t tenancy.Tenant, refreshToken string) (string, bool) {
	rt, err := parseRefresh(m.cfg.RefreshKey, t.UID, refreshToken)
	if err != nil {
		return "", false
	}
	return rt.SessionID, true
}

// GrantInfo returns a grant that is still open, and its user.
func (m *Manager) GrantInfo(ctx context.Context, t tenancy.Tenant, grantID string) (*Session, *User, error) {
	var (
		s *Session
		u *User
	)
	now := m.now()
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		s, u, err = openSession(ctx, tx, grantID, now)
		return err
	})
	if err != nil {
		return nil, nil, internal(err, "read grant")
	}
	return s, u, nil
}

// EndGrant ends a grant (token revocation); ending one that has ended
// already, or that another client holds, does nothing (RFC 7009 answers
// the same either way).
func (m *Manager) EndGrant(ctx context.Context, t tenancy.Tenant, grantID, clientID string) error {
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		s, err := tx.Session(ctx, grantID, true)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if s.ClientID == "" || s.ClientID != clientID || !s.RevokeTime.IsZero() {
			return nil
		}
		if err := tx.RevokeSession(ctx, s.ID, "revoked by the client", m.now()); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventOAuthGrantEnded, UserID: s.UserID,
			Details: map[string]any{"client_id": clientID, "grant": s.ID}})
	})
	return internal(err, "end grant")
}

// EndBrowserSession ends a browser session and every grant made from it
// (RP-initiated logout).
func (m *Manager) EndBrowserSession(ctx context.Context, t tenancy.Tenant, ssoSessionID, clientID string, c Client) error {
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		s, err := tx.Session(ctx, ssoSessionID, false)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		ended, err := tx.RevokeSSOSessions(ctx, ssoSessionID, "logout", m.now())
		if err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventOAuthLogout, UserID: s.UserID, ClientIP: c.IP,
			Details: map[string]any{"session": s.ID, "client_id": clientID, "ended": ended}})
	})
	return internal(err, "log out")
}

// Consented reports whether a user has agreed to give a client every one
// of scopes.
func (m *Manager) Consented(ctx context.Context, t tenancy.Tenant, userID, clientID string, scopes []string) (bool, error) {
	var given []string
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		given, err = tx.Consent(ctx, userID, clientID)
		return err
	})
	if err != nil {
		return false, internal(err, "read consent")
	}
	for _, s := range scopes {
		if !slices.Contains(given, s) {
			return false, nil
		}
	}
	return true, nil
}

// GiveConsent records that a user agreed to give a client scopes (added
// to those given before).
func (m *Manager) GiveConsent(ctx context.Context, t tenancy.Tenant, userID, clientID string, scopes []string, c Client) error {
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		given, err := tx.Consent(ctx, userID, clientID)
		if err != nil {
			return err
		}
		all := slices.Clone(given)
		for _, s := range scopes {
			if !slices.Contains(all, s) {
				all = append(all, s)
			}
		}
		if err := tx.SaveConsent(ctx, userID, clientID, all, m.now()); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventOAuthConsent, UserID: userID, ClientIP: c.IP,
			Details: map[string]any{"client_id": clientID, "scopes": scopes}})
	})
	return internal(err, "save consent")
}

// Browser sessions for single sign-on.
//
// The SSO cookie names the browser's login session so that the OpenID
// Provider's pages, reached by a redirect from another site, know who is
// logged in: the session cookie proper (SameSite=Strict, sent only to the
// refresh and logout paths) is never sent there. The cookie holds the
// session id and a MAC over it and the tenant, so it cannot be forged nor
// carried to another tenant; the session it names must still be open, so
// logging out ends it too.
const (
	ssoVersion  = 1
	ssoMACLen   = 16
	ssoMACLabel = "tenantry identity sso cookie v1\x00"
	ssoLen      = 1 + 16 + ssoMACLen
)

func (m *Manager) ssoMAC(tenantID string, body []byte) []byte {
	return tenantMAC(m.cfg.RefreshKey, ssoMACLabel, tenantID, body)[:ssoMACLen]
}

// SSOCookie returns the SSO cookie's value for the session a login's
// refresh token names, or "" when it names none of this tenant's.
func (m *Manager) SSOCookie(t tenancy.Tenant, refreshToken string) string {
	rt, err := parseRefresh(m.cfg.RefreshKey, t.UID, refreshToken)
	if err != nil {
		return ""
	}
	id := uuid.MustParse(rt.SessionID)
	b := make([]byte, 0, ssoLen)
	b = append(b, ssoVersion)
	b = append(b, id[:]...)
	b = append(b, m.ssoMAC(t.UID, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// BrowserSession is who a browser is logged in as.
type BrowserSession struct {
	SessionID string
	User      *User
	AuthTime  time.Time
}

// BrowserSessionOf returns the open login session an SSO cookie names, or
// nil when it names none (forged, another tenant's, ended).
func (m *Manager) BrowserSessionOf(ctx context.Context, t tenancy.Tenant, cookie string) (*BrowserSession, error) {
	b, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil || len(b) != ssoLen || b[0] != ssoVersion ||
		!hmac.Equal(b[1+16:], m.ssoMAC(t.UID, b[:1+16])) {
		return nil, nil
	}
	id, _ := uuid.FromBytes(b[1:17])
	var bs *BrowserSession
	now := m.now()
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		s, u, err := openSession(ctx, tx, id.String(), now)
		if err != nil || s.ClientID != "" {
			return err
		}
		bs = &BrowserSession{SessionID: s.ID, User: u, AuthTime: s.CreateTime}
		return nil
	})
	if errors.Is(err, errSessionEnded) || errors.Is(err, errDisabled) {
		return nil, nil // no one is logged in
	}
	return bs, internal(err, "read browser session")
}
