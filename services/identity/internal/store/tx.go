package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/mail"
)

// pgTx is an account.Tx on a transaction whose search_path is one tenant's
// schema: every table name below resolves inside that schema.
type pgTx struct {
	tx     pgx.Tx
	tenant string
	// changed lists the users and sessions this transaction changed, for
	// the Invalidator once it commits.
	changed []change
	// mailed says whether the transaction wrote mail to the outbox.
	mailed bool
	// events are the account events recorded, written before the commit
	// (see account_events.go).
	events []pendingEvent
}

// change names a session, a user, or the tenant's login configuration
// (settings, providers: id empty) a transaction changed.
type change struct {
	kind changeKind
	id   string
}

type changeKind int

const (
	sessionChange changeKind = iota
	userChange
	configChange
)

func (c change) apply(inv Invalidator, schema string) {
	switch c.kind {
	case userChange:
		inv.ForgetUser(schema, c.id)
	case configChange:
		inv.ForgetConfig(schema)
	default:
		inv.ForgetSession(schema, c.id)
	}
}

func (t *pgTx) userChanged(id string) {
	t.changed = append(t.changed, change{kind: userChange, id: id})
}
func (t *pgTx) sessionChanged(id string) { t.changed = append(t.changed, change{id: id}) }
func (t *pgTx) configChanged()           { t.changed = append(t.changed, change{kind: configChange}) }

var _ account.Tx = (*pgTx)(nil)

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return account.ErrNotFound
	}
	return err
}

func constraint(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return pgErr.ConstraintName
	}
	return ""
}

func (t *pgTx) Settings(ctx context.Context) (account.Settings, error) {
	var s account.Settings
	var policy, verification, mfa string
	err := t.tx.QueryRow(ctx, `SELECT signup_policy, email_verification, password_min_length, allowed_origins,
		max_logins_per_second, mfa_policy, mfa_remember_days, login_by_email_code, display_name, logo_url, accent_color,
		deletion_grace_days, version FROM settings`).
		Scan(&policy, &verification, &s.PasswordMinLength, &s.AllowedOrigins, &s.MaxLoginsPerSecond, &mfa, &s.MFARememberDays,
			&s.LoginByEmailCode, &s.DisplayName, &s.LogoURL, &s.AccentColor, &s.DeletionGraceDays, &s.Version)
	s.SignupPolicy, s.EmailVerification = account.SignupPolicy(policy), account.Verification(verification)
	s.MFAPolicy = account.MFAPolicy(mfa)
	return s, err
}

func (t *pgTx) SaveSettings(ctx context.Context, s account.Settings) (account.Settings, error) {
	origins := s.AllowedOrigins
	if origins == nil {
		origins = []string{}
	}
	mfa := s.MFAPolicy
	if mfa == "" {
		mfa = account.MFAOptional
	}
	tag, err := t.tx.Exec(ctx, `UPDATE settings SET signup_policy = $1, email_verification = $2, password_min_length = $3,
		allowed_origins = $4, max_logins_per_second = $5, mfa_policy = $7, mfa_remember_days = $8, login_by_email_code = $9,
		display_name = $10, logo_url = $11, accent_color = $12, deletion_grace_days = $13,
		version = version + 1, update_time = now() WHERE version = $6`,
		string(s.SignupPolicy), string(s.EmailVerification), s.PasswordMinLength, origins, s.MaxLoginsPerSecond, s.Version, string(mfa),
		s.MFARememberDays, s.LoginByEmailCode, s.DisplayName, s.LogoURL, s.AccentColor, s.DeletionGraceDays)
	if err != nil {
		return s, err
	}
	if tag.RowsAffected() != 1 {
		return s, account.ErrVersionMismatch
	}
	s.Version++
	t.configChanged()
	return s, nil
}

const userColumns = `id::text, email, email_verified, COALESCE(username, ''), display_name, COALESCE(password_hash, ''),
	roles, state, disabled, create_time, update_time, last_login_time, password_change_time, version,
	EXISTS (SELECT 1 FROM totp_factors f WHERE f.user_id = users.id AND f.confirm_time IS NOT NULL) OR
	EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = users.id)`

func scanUser(row pgx.Row) (*account.User, error) {
	var (
		u                        account.User
		state                    string
		lastLogin, passwordTimes *time.Time
	)
	err := row.Scan(&u.ID, &u.Email, &u.EmailVerified, &u.Username, &u.DisplayName, &u.PasswordHash,
		&u.Roles, &state, &u.Disabled, &u.CreateTime, &u.UpdateTime, &lastLogin, &passwordTimes, &u.Version, &u.MFAEnabled)
	if err != nil {
		return nil, notFound(err)
	}
	u.State = account.UserState(state)
	if lastLogin != nil {
		u.LastLoginTime = *lastLogin
	}
	if passwordTimes != nil {
		u.PasswordChangeTime = *passwordTimes
	}
	return &u, nil
}

func lock(forUpdate bool) string {
	if forUpdate {
		return " FOR UPDATE"
	}
	return ""
}

func (t *pgTx) UserByID(ctx context.Context, id string, forUpdate bool) (*account.User, error) {
	if !isUUID(id) {
		return nil, account.ErrNotFound
	}
	return scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1::uuid`+lock(forUpdate), id))
}

func (t *pgTx) UserByEmail(ctx context.Context, email string, forUpdate bool) (*account.User, error) {
	return scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`+lock(forUpdate), email))
}

func (t *pgTx) UserByUsername(ctx context.Context, username string) (*account.User, error) {
	return scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username = $1 FOR UPDATE`, username))
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func roles(r []string) []string {
	if r == nil {
		return []string{}
	}
	return r
}

// InsertUser inserts u. An email conflict is reported as ErrEmailTaken
// without aborting the transaction (ON CONFLICT), so the caller can still
// answer as if nothing happened.
func (t *pgTx) InsertUser(ctx context.Context, u *account.User) error {
	tag, err := t.tx.Exec(ctx, `INSERT INTO users (id, email, email_verified, username, display_name, password_hash, roles, state,
		disabled, create_time, update_time, password_change_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (email) DO NOTHING`,
		u.ID, u.Email, u.EmailVerified, nullString(u.Username), u.DisplayName, nullString(u.PasswordHash), roles(u.Roles),
		string(u.State), u.Disabled, u.CreateTime, u.UpdateTime, nullTime(u.PasswordChangeTime))
	switch constraint(err) {
	case "users_username_key":
		return account.ErrUsernameTaken
	case "users_email_key":
		// Raised by the trigger of migration 0020: another account has the
		// address as a verified secondary one. Unlike ON CONFLICT this
		// aborts the transaction.
		return account.ErrEmailTaken
	}
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return account.ErrEmailTaken
	}
	u.Version = 1
	return nil
}

func (t *pgTx) UpdateUser(ctx context.Context, u *account.User) error {
	tag, err := t.tx.Exec(ctx, `UPDATE users SET email = $2, email_verified = $3, username = $4, display_name = $5, password_hash = $6,
		roles = $7, state = $8, disabled = $9, update_time = $10, last_login_time = $11, password_change_time = $12, version = version + 1
		WHERE id = $1::uuid AND version = $13`,
		u.ID, u.Email, u.EmailVerified, nullString(u.Username), u.DisplayName, nullString(u.PasswordHash), roles(u.Roles),
		string(u.State), u.Disabled, u.UpdateTime, nullTime(u.LastLoginTime), nullTime(u.PasswordChangeTime), u.Version)
	switch constraint(err) {
	case "users_username_key":
		return account.ErrUsernameTaken
	case "users_email_key":
		return account.ErrEmailTaken
	}
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return account.ErrVersionMismatch
	}
	u.Version++
	t.userChanged(u.ID)
	return nil
}

func (t *pgTx) RecordLogin(ctx context.Context, id string, at time.Time, newHash string) error {
	// A login cancels the account's deletion, if one was asked for: the
	// grace period is there for the owner to change their mind.
	_, err := t.tx.Exec(ctx, `UPDATE users SET last_login_time = $2, password_hash = COALESCE($3, password_hash), delete_time = NULL WHERE id = $1::uuid`,
		id, at, nullString(newHash))
	// Not announced to other replicas (a login is not an edit); this
	// replica shows the new login time at once, others within the cache's
	// maximum age.
	t.userChanged(id)
	return err
}

func (t *pgTx) DeleteUser(ctx context.Context, id string) error {
	_, err := t.tx.Exec(ctx, `DELETE FROM users WHERE id = $1::uuid`, id)
	t.userChanged(id)
	return err
}

func (t *pgTx) ListUsers(ctx context.Context, q account.UserQuery, limit int) ([]*account.User, error) {
	where := []string{"email > $1"}
	args := []any{q.AfterEmail}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if q.State != "" {
		add("state = $%d", string(q.State))
	}
	if q.Disabled != nil {
		add("disabled = $%d", *q.Disabled)
	}
	if q.Role != "" {
		add("$%d = ANY (roles)", q.Role)
	}
	if q.EmailVerified != nil {
		add("email_verified = $%d", *q.EmailVerified)
	}
	if q.Search != "" {
		// strpos, not LIKE: the text is matched as typed, with no
		// wildcard to escape.
		add("strpos(lower(email || ' ' || COALESCE(username, '') || ' ' || display_name), lower($%d)) > 0", q.Search)
	}
	args = append(args, limit)
	rows, err := t.tx.Query(ctx, fmt.Sprintf(`SELECT %s FROM users WHERE %s ORDER BY email LIMIT $%d`,
		userColumns, strings.Join(where, " AND "), len(args)), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*account.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (t *pgTx) InsertSession(ctx context.Context, s *account.Session) error {
	var clientID, ssoSession *string
	if s.ClientID != "" {
		clientID = &s.ClientID
	}
	if s.SSOSessionID != "" {
		ssoSession = &s.SSOSessionID
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO sessions (id, user_id, create_time, refresh_time, expire_time, user_agent, client_ip,
		refresh_generation, refresh_hash, client_id, scopes, auth_time, sso_session_id, amr)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`, s.ID, s.UserID, s.CreateTime, s.RefreshTime, s.ExpireTime, s.UserAgent, s.ClientIP,
		s.RefreshGeneration, s.RefreshHash, clientID, textArray(s.Scopes), nullTime(s.AuthTime), ssoSession, textArray(s.AMR))
	return err
}

const sessionColumns = `id::text, user_id::text, create_time, refresh_time, expire_time, revoke_time, COALESCE(revoke_reason, ''), user_agent, client_ip,
	refresh_generation, refresh_hash, COALESCE(client_id, ''), scopes, auth_time, COALESCE(sso_session_id::text, ''), amr,
	reauth_time, reauth_amr`

func scanSession(row pgx.Row) (*account.Session, error) {
	var s account.Session
	var revoked, authTime, reauth *time.Time
	if err := row.Scan(&s.ID, &s.UserID, &s.CreateTime, &s.RefreshTime, &s.ExpireTime, &revoked, &s.RevokeReason, &s.UserAgent, &s.ClientIP,
		&s.RefreshGeneration, &s.RefreshHash, &s.ClientID, &s.Scopes, &authTime, &s.SSOSessionID, &s.AMR, &reauth, &s.ReauthAMR); err != nil {
		return nil, notFound(err)
	}
	if reauth != nil {
		s.ReauthTime = *reauth
	}
	if revoked != nil {
		s.RevokeTime = *revoked
	}
	if authTime != nil {
		s.AuthTime = *authTime
	}
	return &s, nil
}

func (t *pgTx) Session(ctx context.Context, id string, forUpdate bool) (*account.Session, error) {
	if !isUUID(id) {
		return nil, account.ErrNotFound
	}
	return scanSession(t.tx.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1::uuid`+lock(forUpdate), id))
}

func (t *pgTx) UserSessions(ctx context.Context, userID string, now time.Time) ([]*account.Session, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = $1::uuid AND revoke_time IS NULL AND expire_time > $2 ORDER BY create_time DESC`, userID, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*account.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (t *pgTx) RevokeSession(ctx context.Context, id, reason string, at time.Time) error {
	_, err := t.tx.Exec(ctx, `UPDATE sessions SET revoke_time = $2, revoke_reason = $3 WHERE id = $1::uuid AND revoke_time IS NULL`, id, at, reason)
	t.sessionChanged(id)
	return err
}

func (t *pgTx) RevokeUserSessions(ctx context.Context, userID, exceptID, reason string, at time.Time) error {
	var except *string
	if exceptID != "" {
		except = &exceptID
	}
	_, err := t.tx.Exec(ctx, `UPDATE sessions SET revoke_time = $2, revoke_reason = $3
		WHERE user_id = $1::uuid AND revoke_time IS NULL AND ($4::uuid IS NULL OR id <> $4::uuid)`, userID, at, reason, except)
	// Forgetting the user makes every session of theirs be read again.
	t.userChanged(userID)
	return err
}

func (t *pgTx) RotateSession(ctx context.Context, id string, gen int64, hash []byte, refreshed, expires time.Time) error {
	_, err := t.tx.Exec(ctx, `UPDATE sessions SET refresh_generation = $2, refresh_hash = $3, refresh_time = $4, expire_time = $5
		WHERE id = $1::uuid`, id, gen, hash, refreshed, expires)
	return err
}

func (t *pgTx) RecordReauth(ctx context.Context, id string, at time.Time, amr []string) error {
	_, err := t.tx.Exec(ctx, `UPDATE sessions SET reauth_time = $2, reauth_amr = $3 WHERE id = $1::uuid`, id, at, textArray(amr))
	t.sessionChanged(id)
	return err
}

func (t *pgTx) DeleteEndedSessions(ctx context.Context, before time.Time) (int64, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM sessions WHERE revoke_time < $1 OR expire_time < $1`, before)
	return tag.RowsAffected(), err
}

func (t *pgTx) InsertToken(ctx context.Context, tok *account.OneTimeToken) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO one_time_tokens (token_hash, purpose, user_id, email, create_time, expire_time, amr)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, tok.Hash, string(tok.Purpose), tok.UserID, tok.Email, tok.CreateTime, tok.ExpireTime,
		textArray(tok.AMR))
	return err
}

func (t *pgTx) Token(ctx context.Context, hash []byte) (*account.OneTimeToken, error) {
	var (
		tok     account.OneTimeToken
		purpose string
		used    *time.Time
	)
	err := t.tx.QueryRow(ctx, `SELECT token_hash, purpose, user_id::text, email, create_time, expire_time, use_time, amr
		FROM one_time_tokens WHERE token_hash = $1 FOR UPDATE`, hash).
		Scan(&tok.Hash, &purpose, &tok.UserID, &tok.Email, &tok.CreateTime, &tok.ExpireTime, &used, &tok.AMR)
	if err != nil {
		return nil, notFound(err)
	}
	tok.Purpose = account.Purpose(purpose)
	if used != nil {
		tok.UseTime = *used
	}
	return &tok, nil
}

func (t *pgTx) UseToken(ctx context.Context, hash []byte, at time.Time) error {
	_, err := t.tx.Exec(ctx, `UPDATE one_time_tokens SET use_time = $2 WHERE token_hash = $1`, hash, at)
	return err
}

func (t *pgTx) UseTokensOf(ctx context.Context, userID string, at time.Time, purposes ...account.Purpose) error {
	if len(purposes) == 0 {
		return nil
	}
	names := make([]string, len(purposes))
	for i, p := range purposes {
		names[i] = string(p)
	}
	_, err := t.tx.Exec(ctx, `UPDATE one_time_tokens SET use_time = $3 WHERE user_id = $1::uuid AND purpose = ANY($2::text[]) AND use_time IS NULL`,
		userID, names, at)
	return err
}

func (t *pgTx) DeleteExpiredTokens(ctx context.Context, before time.Time) (int64, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM one_time_tokens WHERE expire_time < $1`, before)
	if err != nil {
		return 0, err
	}
	// Remembered devices and login codes are tokens too.
	devices, err := t.tx.Exec(ctx, `DELETE FROM remembered_devices WHERE expire_time < $1`, before)
	if err != nil {
		return 0, err
	}
	codes, err := t.tx.Exec(ctx, `DELETE FROM login_codes WHERE expire_time < $1`, before)
	return tag.RowsAffected() + devices.RowsAffected() + codes.RowsAffected(), err
}

func (t *pgTx) Audit(ctx context.Context, e account.AuditEvent) error {
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	body, err := json.Marshal(details)
	if err != nil {
		return err
	}
	var userID *string
	if e.UserID != "" {
		userID = &e.UserID
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO audit_log (event, user_id, actor, client_ip, details) VALUES ($1, $2::uuid, $3, $4, $5)`,
		e.Event, userID, e.Actor, e.ClientIP, body)
	if err != nil {
		return err
	}
	// The audit events that are account events are recorded as such in
	// the same transaction (account.AccountEventOf says which).
	if typ, ok := account.AccountEventOf(e.Event); ok && e.UserID != "" {
		return t.RecordAccountEvent(ctx, typ, e.UserID, e.Event)
	}
	return nil
}

func (t *pgTx) Enqueue(ctx context.Context, m mail.Message) error {
	m.Tenant = t.tenant
	t.mailed = true
	return mail.Enqueue(ctx, t.tx, m)
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case (r >= '0' && r <= '9') || (r >= 'a' && r <= 'f') || (r >= 'A' && r <= 'F'):
		default:
			return false
		}
	}
	return true
}
