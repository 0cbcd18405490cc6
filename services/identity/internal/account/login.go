package account

import (
	"context"
	"crypto/hmac"
	"crypto/subtle"
	"errors"
	"time"

	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// Tokens are what a login or a refresh hands out.
type Tokens struct {
	AccessToken   string
	AccessExpires time.Time
	RefreshToken  string
	SessionID     string
}

// LoginInput identifies an account by email or username, with a password.
type LoginInput struct {
	Email    string
	Username string
	Password string
	// DeviceToken is a remembered device's token (device.go), if any.
	DeviceToken string
}

// Login checks a password and opens a session, or, when the account has a
// second factor, answers with an MFA challenge for VerifyMFA instead (see
// mfa.go): the right password alone then opens nothing. Unknown accounts
// cost the same password check as known ones and get the same error, so
// neither the answer nor its latency says whether an account exists; only
// the right password learns that the account has a second factor.
func (m *Manager) Login(ctx context.Context, t tenancy.Tenant, in LoginInput, c Client) (LoginResult, error) {
	tokens, u, challenge, err := m.login(ctx, t, in, c)
	outcome := loginOutcome(err)
	if challenge != nil {
		outcome = LoginChallenged
	}
	m.cfg.OnLogin(LoginPassword, outcome)
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{Tokens: tokens, User: u, Challenge: challenge}, nil
}

// login is Login, without reporting how it ended.
func (m *Manager) login(ctx context.Context, t tenancy.Tenant, in LoginInput, c Client) (Tokens, *User, *MFAChallenge, error) {
	var (
		account string
		err     error
		byEmail = in.Email != ""
	)
	// Both fields are checked before the answer, so that it names each
	// one to correct.
	var bad fieldErrors
	switch {
	case in.Email != "" && in.Username != "":
		err = fault.Invalid("email", "LOGIN_IDENTIFIER_AMBIGUOUS", "give either email or username, not both")
	case byEmail:
		account, err = NormalizeEmail("email", in.Email)
	case in.Username != "":
		account, err = NormalizeUsername("username", in.Username)
	default:
		err = fault.Invalid("email", "LOGIN_IDENTIFIER_REQUIRED", "give your email or username")
	}
	bad.add(err)
	if in.Password == "" || len(in.Password) > 1024 {
		bad.add(fault.Invalid("password", "PASSWORD_REQUIRED", "give your password"))
	}
	if err := bad.err(); err != nil {
		return Tokens{}, nil, nil, err
	}
	// The limits are checked before anything of the tenant is read, with
	// the tenant's ceiling as this replica last read it; only when it has
	// not read it lately are they checked after the first transaction,
	// which reads it (see loginrate.go).
	perSecond, rateKnown := m.loginRates.get(t.UID, m.now())
	if rateKnown {
		if err := m.checkLoginLimits(ctx, t, account, c, perSecond); err != nil {
			return Tokens{}, nil, nil, err
		}
	}

	// The password is checked between two short transactions, never inside
	// one: a hash takes tens of milliseconds, and holding a pooled
	// connection and a row lock for it would let a login flood starve
	// every other call of connections.
	var (
		user     *User
		settings Settings
	)
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		if byEmail {
			user, err = tx.UserByEmail(ctx, account, false)
		} else {
			user, err = tx.UserByUsername(ctx, account)
		}
		if errors.Is(err, ErrNotFound) {
			user, err = nil, nil
		}
		if err != nil {
			return err
		}
		settings, err = tx.Settings(ctx)
		return err
	})
	if err != nil {
		return Tokens{}, nil, nil, internal(err, "login")
	}
	m.loginRates.learn(t.UID, settings, m.now())
	if !rateKnown {
		if err := m.checkLoginLimits(ctx, t, account, c, settings.MaxLoginsPerSecond); err != nil {
			return Tokens{}, nil, nil, err
		}
	}
	if user == nil || user.PasswordHash == "" {
		_ = m.hasher.VerifyNothing(ctx, in.Password) // only its cost matters
		return Tokens{}, nil, nil, m.loginFailed(ctx, t, account, "", c)
	}
	ok, rehash, err := m.hasher.Verify(ctx, user.PasswordHash, in.Password)
	if err != nil {
		return Tokens{}, nil, nil, internal(err, "login")
	}
	if !ok {
		return Tokens{}, nil, nil, m.loginFailed(ctx, t, account, user.ID, c)
	}
	if user.Disabled {
		return Tokens{}, nil, nil, errDisabled
	}
	if settings.EmailVerification == VerificationMandatory && !user.EmailVerified {
		// The right password of an unverified account gets the answer a
		// wrong one gets: "verify first" would tell a stranger who just
		// signed up with an address or a username that it had been free
		// (an account taken by someone else does not know their
		// password). The owner gets a new link instead, as they would
		// from ResendVerificationEmail, whose limits apply.
		m.resendOnLogin(ctx, t, user, c)
		return Tokens{}, nil, nil, m.loginFailed(ctx, t, account, user.ID, c)
	}
	newHash := ""
	if rehash {
		// The hashing parameters changed since this hash was made: upgrade
		// it now that we know the password.
		if h, err := m.hasher.Hash(ctx, in.Password); err == nil {
			newHash = h
		}
	}
	var (
		tokens    Tokens
		challenge *MFAChallenge
	)
	checked := user.PasswordHash
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		u, err := tx.UserByID(ctx, user.ID, true)
		if errors.Is(err, ErrNotFound) || (err == nil && u.PasswordHash != checked) {
			// Deleted, or its password changed while we were checking it.
			return errLoginFailed
		}
		if err != nil {
			return err
		}
		if u.Disabled {
			return errDisabled
		}
		// A passkey is a second factor as an authenticator app is.
		totp, passkeys, err := hasSecondFactor(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		factor := totp != nil || passkeys > 0
		remembered := false
		if factor {
			if remembered, err = m.deviceRemembered(ctx, tx, u.ID, in.DeviceToken, settings); err != nil {
				return err
			}
		}
		if (factor || settings.MFAPolicy.requires(u)) && !remembered {
			// The password was right; the session waits for the second
			// factor, or for the enrolment of one the tenant's policy
			// requires. Nothing is recorded as a login yet, and a hash to
			// upgrade waits for a login of an account without one (an
			// upgrade is no reason to write before the code is known).
			challenge, err = m.issueChallenge(ctx, tx, u, AMRPassword, !factor, settings, c)
			user = u
			return err
		}
		u.LastLoginTime = m.now()
		if err := tx.RecordLogin(ctx, u.ID, u.LastLoginTime, newHash); err != nil {
			return err
		}
		if newHash != "" {
			u.PasswordHash = newHash
		}
		if tokens, err = m.openSession(ctx, tx, t, u, c, AMRPassword); err != nil {
			return err
		}
		user = u
		details := map[string]any{"session": tokens.SessionID}
		if remembered {
			details["remembered_device"] = true
		}
		return tx.Audit(ctx, AuditEvent{Event: EventLogin, UserID: u.ID, ClientIP: c.IP, Details: details})
	})
	if errors.Is(err, errLoginFailed) {
		return Tokens{}, nil, nil, m.loginFailed(ctx, t, account, user.ID, c)
	}
	if err != nil {
		return Tokens{}, nil, nil, internal(err, "login")
	}
	return tokens, user, challenge, nil
}

// checkLoginLimits applies the login rate limits, the tenant's ceiling at
// perSecond, and records a refusal.
func (m *Manager) checkLoginLimits(ctx context.Context, t tenancy.Tenant, account string, c Client, perSecond int) error {
	if err := m.limits.Login(ctx, t.UID, account, c.IP, perSecond); err != nil {
		m.auditOutside(ctx, t, AuditEvent{Event: EventLoginRateLimited, ClientIP: c.IP, Details: map[string]any{"account": account}})
		return err
	}
	return nil
}

// loginFailed records a failed login and returns the one error every
// failure gets, whether or not the account exists.
func (m *Manager) loginFailed(ctx context.Context, t tenancy.Tenant, account, userID string, c Client) error {
	m.auditOutside(ctx, t, AuditEvent{Event: EventLoginFailed, UserID: userID, ClientIP: c.IP, Details: map[string]any{"account": account}})
	return errInvalidCredentials
}

// resendOnLogin mails a new verification link to an unverified account
// whose owner just gave the right password; failures only go to the log.
func (m *Manager) resendOnLogin(ctx context.Context, t tenancy.Tenant, u *User, c Client) {
	if err := m.limits.Verification(ctx, t.UID, u.Email, c.IP); err != nil {
		return
	}
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error { return m.sendVerification(ctx, tx, t, u) })
	if err != nil {
		m.cfg.Logger.WarnContext(ctx, "could not mail a verification link at login", "tenant", t.Slug, "err", err)
	}
}

var errDisabled = fault.New(fault.PermissionDenied, "ACCOUNT_DISABLED", "this account is disabled; contact an administrator")

var errLoginFailed = errors.New("login failed")

// auditOutside records an event in its own transaction, for failures whose
// own transaction is rolled back.
func (m *Manager) auditOutside(ctx context.Context, t tenancy.Tenant, e AuditEvent) {
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error { return tx.Audit(ctx, e) })
	if err != nil {
		m.cfg.Logger.WarnContext(ctx, "audit event lost", "tenant", t.Slug, "event", e.Event, "err", err)
	}
}

// openSession opens a login's session for u, who authenticated by amr.
func (m *Manager) openSession(ctx context.Context, tx Tx, t tenancy.Tenant, u *User, c Client, amr []string) (Tokens, error) {
	now := m.now()
	s := &Session{
		ID: newID(), UserID: u.ID, CreateTime: now, RefreshTime: now,
		ExpireTime: now.Add(m.cfg.SessionTTL), UserAgent: truncate(c.UserAgent, 512), ClientIP: truncate(c.IP, 64),
		AMR: amr,
	}
	refresh, hash, err := mintRefresh(m.cfg.RefreshKey, t.UID, s.ID, 0)
	if err != nil {
		return Tokens{}, err
	}
	s.RefreshHash = hash
	if err := tx.InsertSession(ctx, s); err != nil {
		return Tokens{}, err
	}
	return m.issue(ctx, t, u.ID, s.ID, u.Roles, refresh)
}

// issue hands out an access token, with the session's new refresh token.
func (m *Manager) issue(ctx context.Context, t tenancy.Tenant, userID, sessionID string, roles []string, refresh string) (Tokens, error) {
	access, exp, err := m.tokens.Issue(ctx, userID, t.Slug, t.UID, sessionID, roles)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, AccessExpires: exp, RefreshToken: refresh, SessionID: sessionID}, nil
}

// Refresh rotates a refresh token. A token that was already rotated away
// means it leaked: the whole session is revoked and the caller must log in
// again.
func (m *Manager) Refresh(ctx context.Context, t tenancy.Tenant, refreshToken string, c Client) (Tokens, error) {
	r, err := m.rotate(ctx, t, refreshToken, "", c)
	if err != nil {
		return Tokens{}, err
	}
	tokens, err := m.issue(ctx, t, r.UserID, r.SessionID, r.Roles, r.RefreshToken)
	return tokens, internal(err, "refresh session")
}

// rotated is a session after a rotation: its new refresh token, and what
// the tokens issued with it say.
type rotated struct {
	Rotated
	RefreshToken string
}

// rotate moves a session, named by a refresh token presented by clientID
// (empty for RefreshSession), to its next refresh token. A session held by
// another client (or a grant presented to RefreshSession) is refused as an
// ended one, without counting as reuse: the presenter is not the holder.
func (m *Manager) rotate(ctx context.Context, t tenancy.Tenant, refreshToken, clientID string, c Client) (rotated, error) {
	if refreshToken == "" || len(refreshToken) > 128 {
		return rotated{}, fault.Invalid("refresh_token", "REFRESH_TOKEN_REQUIRED", "give the refresh token from your last login or refresh")
	}
	// Anything identity did not mint for this tenant ends here, without a
	// query: the same answer as for a session that ended.
	old, err := parseRefresh(m.cfg.RefreshKey, t.UID, refreshToken)
	if err != nil {
		return rotated{}, errSessionEnded
	}
	oldHash := hashSecret(refreshToken)
	refresh, newHash, err := mintRefresh(m.cfg.RefreshKey, t.UID, old.SessionID, old.Generation+1)
	if err != nil {
		return rotated{}, internal(err, "refresh session")
	}
	now := m.now()
	rotation := Rotation{
		SessionID: old.SessionID, Generation: old.Generation, OldHash: oldHash, NewHash: newHash,
		Now: now, Expires: now.Add(m.cfg.SessionTTL), MaxAge: m.cfg.SessionMaxAge, ClientID: clientID,
	}
	if r, ok := m.store.(Rotator); ok {
		done, err := r.Rotate(ctx, t, rotation)
		if err != nil {
			return rotated{}, internal(err, "refresh session")
		}
		if done.OK {
			return rotated{Rotated: done, RefreshToken: refresh}, nil
		}
		// Not the ordinary case: the transaction below says why.
	}
	var (
		out    rotated
		reused bool
	)
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		s, err := tx.Session(ctx, old.SessionID, true)
		if errors.Is(err, ErrNotFound) {
			return errSessionEnded
		}
		if err != nil {
			return err
		}
		switch {
		case s.ClientID != clientID:
			return errSessionEnded
		case old.Generation < s.RefreshGeneration:
			reused = true
			if s.RevokeTime.IsZero() {
				if err := tx.RevokeSession(ctx, s.ID, "refresh token reused", now); err != nil {
					return err
				}
			}
			return tx.Audit(ctx, AuditEvent{Event: EventRefreshReuse, UserID: s.UserID, ClientIP: c.IP,
				Details: map[string]any{"session": s.ID, "generation": old.Generation, "current_generation": s.RefreshGeneration}})
		case old.Generation > s.RefreshGeneration || !hmac.Equal(oldHash, s.RefreshHash):
			// Minted here yet not the session's: only a database restored
			// to before this token's rotation, or a leaked MAC key, gets
			// here. Refused, but not taken for reuse.
			return errSessionEnded
		}
		if !s.Open(now) {
			return errSessionEnded
		}
		u, err := tx.UserByID(ctx, s.UserID, false)
		if err != nil {
			return err
		}
		if u.Disabled {
			return errDisabled
		}
		expires := rotation.Expires
		if max := s.CreateTime.Add(m.cfg.SessionMaxAge); expires.After(max) {
			expires = max
		}
		if err := tx.RotateSession(ctx, s.ID, old.Generation+1, newHash, now, expires); err != nil {
			return err
		}
		out = rotated{
			Rotated:      Rotated{OK: true, SessionID: s.ID, UserID: u.ID, Roles: u.Roles, Scopes: s.Scopes, AuthTime: s.AuthTime, AMR: AMROf(s)},
			RefreshToken: refresh,
		}
		return nil
	})
	if reused && err == nil {
		// The revocation is committed; the caller learns the session ended.
		return rotated{}, errSessionEnded
	}
	if err != nil {
		return rotated{}, internal(err, "refresh session")
	}
	return out, nil
}

// Logout ends a session, named by its id (from an access token) or by a
// refresh token.
func (m *Manager) Logout(ctx context.Context, t tenancy.Tenant, sessionID, refreshToken string, c Client) error {
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if sessionID == "" {
			if refreshToken == "" {
				return fault.Invalid("refresh_token", "REFRESH_TOKEN_REQUIRED", "send an access token or the session's refresh token")
			}
			// Any token the session had names it: logging out with an
			// older one still ends the session, as reuse would.
			rt, err := parseRefresh(m.cfg.RefreshKey, t.UID, refreshToken)
			if err != nil {
				return errSessionEnded
			}
			sessionID = rt.SessionID
		}
		s, err := tx.Session(ctx, sessionID, true)
		if errors.Is(err, ErrNotFound) {
			return errSessionEnded
		}
		if err != nil {
			return err
		}
		if s.RevokeTime.IsZero() {
			if err := tx.RevokeSession(ctx, s.ID, "logout", m.now()); err != nil {
				return err
			}
		}
		return tx.Audit(ctx, AuditEvent{Event: EventLogout, UserID: s.UserID, ClientIP: c.IP, Details: map[string]any{"session": s.ID}})
	})
	return internal(err, "logout")
}

// CheckSession reports whether a session of a user is still open; access
// tokens of ended sessions are refused by identity itself. Answers come
// from the session cache when it has them: a session is cached only while
// open and its user enabled, and any change to either drops it.
func (m *Manager) CheckSession(ctx context.Context, t tenancy.Tenant, userID, sessionID string) (*User, error) {
	if s, u, ok := m.cfg.Sessions.Lookup(t.Schema, sessionID); ok && s.Open(m.now()) {
		// An expired-looking cached session may have been refreshed since:
		// only an open one is answered from the cache.
		return sessionUser(s, u, userID)
	}
	ticket := m.cfg.Sessions.Ticket()
	var (
		session *Session
		user    *User
	)
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		s, err := tx.Session(ctx, sessionID, false)
		if errors.Is(err, ErrNotFound) {
			return errSessionEnded
		}
		if err != nil {
			return err
		}
		if !s.Open(m.now()) {
			return errSessionEnded
		}
		u, err := tx.UserByID(ctx, s.UserID, false)
		if errors.Is(err, ErrNotFound) {
			return errSessionEnded
		}
		if err != nil {
			return err
		}
		session, user = s, u
		return nil
	})
	if err != nil {
		return nil, internal(err, "check session")
	}
	u, err := sessionUser(session, user, userID)
	if err != nil {
		return nil, err
	}
	m.cfg.Sessions.Remember(ticket, t.Schema, session, user)
	return u, nil
}

// sessionUser applies the rules to an open session and its user: the
// session must be the token's user's, and the user enabled.
func sessionUser(s *Session, u *User, userID string) (*User, error) {
	if subtle.ConstantTimeCompare([]byte(s.UserID), []byte(userID)) != 1 {
		return nil, errSessionEnded
	}
	if u.Disabled {
		return nil, errDisabled
	}
	return u, nil
}

// Sessions lists a user's open sessions, newest first.
func (m *Manager) Sessions(ctx context.Context, t tenancy.Tenant, userID string) ([]*Session, error) {
	var out []*Session
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = tx.UserSessions(ctx, userID, m.now())
		return err
	})
	return out, internal(err, "list sessions")
}

// RevokeSession ends one of a user's own sessions.
func (m *Manager) RevokeSession(ctx context.Context, t tenancy.Tenant, userID, sessionID string, c Client) error {
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		s, err := tx.Session(ctx, sessionID, true)
		if errors.Is(err, ErrNotFound) || (err == nil && s.UserID != userID) {
			// Another user's session is as absent as a missing one.
			return fault.New(fault.NotFound, "SESSION_NOT_FOUND", "you have no session %q", sessionID)
		}
		if err != nil {
			return err
		}
		if s.RevokeTime.IsZero() {
			if err := tx.RevokeSession(ctx, s.ID, "revoked by user", m.now()); err != nil {
				return err
			}
		}
		return tx.Audit(ctx, AuditEvent{Event: EventSessionRevoked, UserID: userID, ClientIP: c.IP, Details: map[string]any{"session": s.ID}})
	})
	return internal(err, "revoke session")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
