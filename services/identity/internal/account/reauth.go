package account

import (
	"context"
	"errors"
	"slices"
	"time"

	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// Reauthentication: the sensitive actions of a logged-in user (changing
// the password or the email, adding a second factor, connecting another
// identity provider, managing OAuth clients and identity providers) need
// a recent proof that the person at the keyboard is the account's owner,
// not only a session someone may have left open or stolen: the login
// itself, or Reauthenticate, within ReauthWindow. An
// account with a second factor must have proved the factor (its login's
// code, or a code given to Reauthenticate); one without, its password.
// Removing the factor and regenerating the recovery codes take a code
// themselves, which is proof enough.

// ReauthWindow is how long a proof lasts for sensitive actions.
const ReauthWindow = 10 * time.Minute

// EventReauthenticated is the audit event of a proof given again.
const EventReauthenticated = "session.reauthenticated"

// ReauthInput is a proof given again: the password, for an account
// without a second factor, or a code of the factor.
type ReauthInput struct {
	Password string
	FactorProof
}

// errReauthRequired is the answer to a sensitive action without a recent
// proof; its metadata says which proof Reauthenticate wants ("code" or
// "password"), for a page to ask for the right one.
func errReauthRequired(factor bool) error {
	if factor {
		return fault.New(fault.PermissionDenied, "REAUTHENTICATION_REQUIRED",
			"confirm it is you first: give Reauthenticate a code of your authenticator app (or a recovery code), then try again").
			WithMetadata("proof", "code")
	}
	return fault.New(fault.PermissionDenied, "REAUTHENTICATION_REQUIRED",
		"confirm it is you first: give Reauthenticate your password, then try again").WithMetadata("proof", "password")
}

// recentProof reports whether session s proved its user within
// ReauthWindow of now: with the factor (an otp method) when the user has
// one.
func recentProof(s *Session, factor bool, now time.Time) bool {
	proved := func(at time.Time, amr []string) bool {
		if at.IsZero() || now.Sub(at) > ReauthWindow {
			return false
		}
		// A code ("otp") or a passkey ("hwk") proves the factor, whatever
		// the login's first step was (a password, a mailed code, another
		// provider): the factor is what an account that has one must show.
		return !factor || slices.Contains(amr, "otp") || slices.Contains(amr, "hwk")
	}
	return proved(s.CreateTime, AMROf(s)) || proved(s.ReauthTime, s.ReauthAMR)
}

// requireRecentProof refuses, in tx, the sensitive action of a user acting
// with session c.SessionID unless the session proved them recently.
// onlyWithFactor leaves accounts without a second factor alone (the action
// takes their password itself). Credentials (the operator) act without a
// session and need none.
func (m *Manager) requireRecentProof(ctx context.Context, tx Tx, userID, sessionID string, onlyWithFactor bool) error {
	if sessionID == "" {
		return nil
	}
	s, err := tx.Session(ctx, sessionID, false)
	if errors.Is(err, ErrNotFound) || (err == nil && (s.UserID != userID || !s.Open(m.now()))) {
		return errSessionEnded
	}
	if err != nil {
		return err
	}
	totp, passkeys, err := hasSecondFactor(ctx, tx, userID)
	if err != nil {
		return err
	}
	factor := totp != nil || passkeys > 0
	if onlyWithFactor && !factor {
		return nil
	}
	if !recentProof(s, factor, m.now()) {
		if totp == nil && passkeys > 0 {
			return errReauthWithPasskey
		}
		return errReauthRequired(factor)
	}
	return nil
}

// Reauthenticate records a proof given again in the user's session: a code
// of their second factor when they have one (a password alone is not
// enough then), else their password. The limits are the logins' for a
// password and the codes' for a code. It returns when the proof stops
// counting.
func (m *Manager) Reauthenticate(ctx context.Context, t tenancy.Tenant, userID, sessionID string, in ReauthInput, c Client) (time.Time, error) {
	var (
		u      *User
		factor bool
	)
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		if u, err = tx.UserByID(ctx, userID, false); err != nil {
			return err
		}
		f, err := tx.TOTPFactor(ctx, userID, false)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		factor = f.Confirmed()
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return time.Time{}, errSessionEnded
	}
	if err != nil {
		return time.Time{}, internal(err, "reauthenticate")
	}
	amr := AMRPassword
	if factor {
		if err := in.validate(); err != nil {
			return time.Time{}, err
		}
		if err := m.checkSecondFactorLimits(ctx, t, userID, c, "reauthentication"); err != nil {
			return time.Time{}, err
		}
		amr = []string{"otp", "mfa"}
	} else {
		if in.Password == "" || len(in.Password) > 1024 {
			return time.Time{}, fault.Invalid("password", "PASSWORD_REQUIRED", "give your password")
		}
		perSecond, err := m.loginCeiling(ctx, t)
		if err != nil {
			return time.Time{}, err
		}
		if err := m.checkLoginLimits(ctx, t, u.Email, c, perSecond); err != nil {
			return time.Time{}, err
		}
		if u.PasswordHash == "" {
			_ = m.hasher.VerifyNothing(ctx, in.Password)
			return time.Time{}, fault.Invalid("password", "PASSWORD_INCORRECT", "the password is not correct")
		}
		ok, _, err := m.hasher.Verify(ctx, u.PasswordHash, in.Password)
		if err != nil {
			return time.Time{}, internal(err, "reauthenticate")
		}
		if !ok {
			m.auditOutside(ctx, t, AuditEvent{Event: EventLoginFailed, UserID: userID, ClientIP: c.IP, Details: map[string]any{"during": "reauthentication"}})
			return time.Time{}, fault.Invalid("password", "PASSWORD_INCORRECT", "the password is not correct")
		}
	}
	now := m.now()
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		s, err := tx.Session(ctx, sessionID, true)
		if errors.Is(err, ErrNotFound) || (err == nil && (s.UserID != userID || !s.Open(now))) {
			return errSessionEnded
		}
		if err != nil {
			return err
		}
		if factor {
			f, err := tx.TOTPFactor(ctx, userID, true)
			if errors.Is(err, ErrNotFound) || (err == nil && !f.Confirmed()) {
				return errTOTPNotEnrolled // removed meanwhile: try again
			}
			if err != nil {
				return err
			}
			if err := m.proveFactor(ctx, tx, t, f, in.FactorProof); err != nil {
				return err
			}
		}
		if err := tx.RecordReauth(ctx, sessionID, now, amr); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventReauthenticated, UserID: userID, ClientIP: c.IP,
			Details: map[string]any{"session": sessionID, "amr": amr}})
	})
	if errors.Is(err, errWrongCode) {
		return time.Time{}, m.codeRefused(ctx, t, userID, in.FactorProof, c, "reauthentication")
	}
	if err != nil {
		return time.Time{}, internal(err, "reauthenticate")
	}
	return now.Add(ReauthWindow), nil
}
