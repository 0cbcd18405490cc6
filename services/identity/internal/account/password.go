package account

import (
	"context"
	"errors"
	"time"

	"tenantry.dev/identity/internal/password"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// RequestPasswordReset mails a single-use reset link to an account's
// address, or, for an address without an account, a mail saying so. Both
// paths do the same work and give the same answer.
func (m *Manager) RequestPasswordReset(ctx context.Context, t tenancy.Tenant, rawEmail string, c Client) error {
	email, err := NormalizeEmail("email", rawEmail)
	if err != nil {
		return err
	}
	defer m.evenOut(ctx, time.Now())
	if err := m.limits.PasswordReset(ctx, t.UID, email, c.IP); err != nil {
		return err
	}
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		u, err := tx.UserByEmail(ctx, email, true)
		if errors.Is(err, ErrNotFound) || (err == nil && (u.State != Active || u.Disabled)) {
			if err := tx.Audit(ctx, AuditEvent{Event: EventResetUnknown, ClientIP: c.IP}); err != nil {
				return err
			}
			return enqueueMail(ctx, tx, t, unknownAccountMail(t, m.links, email))
		}
		if err != nil {
			return err
		}
		now := m.now()
		if err := tx.UseTokensOf(ctx, u.ID, now, PurposeResetPassword); err != nil {
			return err
		}
		secret, hash := newSecret()
		tok := &OneTimeToken{Hash: hash, Purpose: PurposeResetPassword, UserID: u.ID, Email: u.Email, CreateTime: now, ExpireTime: now.Add(m.cfg.ResetTokenTTL)}
		if err := tx.InsertToken(ctx, tok); err != nil {
			return err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventResetRequested, UserID: u.ID, ClientIP: c.IP}); err != nil {
			return err
		}
		return enqueueMail(ctx, tx, t, resetMail(t, m.links, u.Email, secret, hash, m.cfg.ResetTokenTTL))
	})
	return internal(err, "request password reset")
}

// ResetPassword sets a new password with a reset token and ends every
// session of the account: whoever had it must log in with the new one.
func (m *Manager) ResetPassword(ctx context.Context, t tenancy.Tenant, token, newPassword string, c Client) error {
	if token == "" || len(token) > 128 {
		return errInvalidToken("token")
	}
	hash, owner, err := m.newPasswordHash(ctx, t, newPassword, "new_password", func(ctx context.Context, tx Tx) (*User, error) {
		_, u, err := m.peek(ctx, tx, token, PurposeResetPassword)
		return u, err
	}, nil, &fieldErrors{})
	if err != nil {
		return err
	}
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		tok, u, err := m.consume(ctx, tx, token, PurposeResetPassword)
		if err != nil {
			return err
		}
		if u.ID != owner {
			return errInvalidToken("token")
		}
		m.applyPassword(u, hash)
		// Following the link proves the address too.
		u.EmailVerified = u.EmailVerified || tok.Email == u.Email
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if err := tx.UseTokensOf(ctx, u.ID, m.now(), credentialPurposes...); err != nil {
			return err
		}
		if err := tx.DeleteRememberedDevices(ctx, u.ID); err != nil {
			return err
		}
		if err := tx.RevokeUserSessions(ctx, u.ID, "", "password reset", m.now()); err != nil {
			return err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventPasswordReset, UserID: u.ID, ClientIP: c.IP}); err != nil {
			return err
		}
		return enqueueMail(ctx, tx, t, passwordChangedMail(t, u.Email, tok.Hash))
	})
	return internal(err, "reset password")
}

// newPasswordHash checks a new password against the tenant's policy and the
// account's own inputs, and hashes it. The account and the policy are read
// in a short transaction; the hash, which takes tens of milliseconds, is
// made outside any, so that it never holds a pooled connection or a row
// lock. It returns the hash and the id of the account read.
//
// bad holds the caller's other fields' errors: check's and the password's
// join them, and when there are any, no hash is made and the answer names
// them all.
func (m *Manager) newPasswordHash(ctx context.Context, t tenancy.Tenant, pw, field string,
	read func(ctx context.Context, tx Tx) (*User, error), check func(ctx context.Context, u *User) error,
	bad *fieldErrors,
) (string, string, error) {
	var (
		u        *User
		settings Settings
	)
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		if u, err = read(ctx, tx); err != nil {
			return err
		}
		settings, err = tx.Settings(ctx)
		return err
	})
	if err != nil {
		return "", "", internal(err, "read account")
	}
	if check != nil {
		bad.add(check(ctx, u))
	}
	policy := password.Policy{MinLength: settings.PasswordMinLength}
	bad.add(policy.Check(field, pw, localPart(u.Email), u.Username, u.DisplayName))
	if err := bad.err(); err != nil {
		return "", "", err
	}
	hash, err := m.hasher.Hash(ctx, pw)
	if err != nil {
		return "", "", internal(err, "hash password")
	}
	return hash, u.ID, nil
}

// applyPassword puts a new password hash into u (not yet stored).
func (m *Manager) applyPassword(u *User, hash string) {
	now := m.now()
	u.PasswordHash = hash
	u.PasswordChangeTime = now
	u.UpdateTime = now
}

// errPasswordNotSet answers a change that needs the current password of an
// account that has none: its owner signs in through another provider, by
// a mailed code or with a passkey, or the first proof of its address took
// away a password someone else had set. A password is theirs to set
// through a reset, which proves the mailbox.
var errPasswordNotSet = fault.New(fault.FailedPrecondition, "PASSWORD_NOT_SET",
	"your account has no password yet: set one through the password reset, which mails you a link")

// ChangePassword sets a new password given the current one. The caller's
// session stays open; every other session of the account ends.
func (m *Manager) ChangePassword(ctx context.Context, t tenancy.Tenant, userID, sessionID, current, newPassword string, c Client) error {
	// The new password is checked even when the current one is missing or
	// wrong, so that the answer names both fields to correct.
	var bad fieldErrors
	var checked string // the hash the current password was checked against
	hash, _, err := m.newPasswordHash(ctx, t, newPassword, "new_password", func(ctx context.Context, tx Tx) (*User, error) {
		// An account with a second factor needs it proved lately too: the
		// current password alone is what a thief of it would have.
		if err := m.requireRecentProof(ctx, tx, userID, sessionID, true); err != nil {
			return nil, err
		}
		return tx.UserByID(ctx, userID, false)
	}, func(ctx context.Context, u *User) error {
		if u.PasswordHash == "" {
			return errPasswordNotSet
		}
		if current == "" {
			return fault.Invalid("current_password", "PASSWORD_REQUIRED", "give your current password")
		}
		// A guess at the current password is a guess at a login: it
		// spends the account's login budget, or a stolen session would
		// try passwords without end.
		if err := m.chargePasswordProof(ctx, t, u, c); err != nil {
			return err
		}
		// The current password first: a wrong one costs no second hash.
		ok, _, err := m.hasher.Verify(ctx, u.PasswordHash, current)
		if err != nil {
			return internal(err, "change password")
		}
		if !ok {
			return fault.Invalid("current_password", "PASSWORD_INCORRECT", "the current password is not correct")
		}
		checked = u.PasswordHash
		return nil
	}, &bad)
	if err != nil {
		return err
	}
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		u, err := tx.UserByID(ctx, userID, true)
		if err != nil {
			return err
		}
		if u.PasswordHash != checked {
			return fault.New(fault.Aborted, "PASSWORD_CHANGED_MEANWHILE", "the password was changed meanwhile; try again")
		}
		m.applyPassword(u, hash)
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if err := tx.UseTokensOf(ctx, u.ID, m.now(), credentialPurposes...); err != nil {
			return err
		}
		if err := tx.DeleteRememberedDevices(ctx, u.ID); err != nil {
			return err
		}
		if err := tx.RevokeUserSessions(ctx, u.ID, sessionID, "password changed", m.now()); err != nil {
			return err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventPasswordChanged, UserID: u.ID, ClientIP: c.IP}); err != nil {
			return err
		}
		return enqueueMail(ctx, tx, t, passwordChangedMail(t, u.Email, []byte(u.ID+u.PasswordChangeTime.String())))
	})
	return internal(err, "change password")
}

// chargePasswordProof applies the login limits to a check of u's password
// by a signed-in caller, as Reauthenticate does, before the hash is
// compared: keyed on the account's address, the client's and the tenant's
// ceiling, the budget a login of the account spends, so that the
// password's guesses through a session and through the login page add up.
func (m *Manager) chargePasswordProof(ctx context.Context, t tenancy.Tenant, u *User, c Client) error {
	perSecond, err := m.loginCeiling(ctx, t)
	if err != nil {
		return err
	}
	return m.checkLoginLimits(ctx, t, u.Email, c, perSecond)
}

// ChangeEmail starts an email change: a verification link goes to the new
// address, which replaces the old one only when the link is followed. The
// answer does not say whether the new address belongs to another account.
func (m *Manager) ChangeEmail(ctx context.Context, t tenancy.Tenant, userID, rawEmail, pw string, c Client) error {
	email, err := NormalizeEmail("new_email", rawEmail)
	if err != nil {
		return err
	}
	// The password is checked outside any transaction, as at login (a
	// hash holds no connection), and before the floor starts: its time
	// says nothing about the new address.
	var current *User
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		// As for a new password: a second factor must have been proved lately.
		if err := m.requireRecentProof(ctx, tx, userID, c.SessionID, true); err != nil {
			return err
		}
		var err error
		current, err = tx.UserByID(ctx, userID, false)
		return err
	})
	if err != nil {
		return internal(err, "change email")
	}
	if current.PasswordHash == "" {
		return errPasswordNotSet
	}
	// As for ChangePassword: the password spends the login budget.
	if err := m.chargePasswordProof(ctx, t, current, c); err != nil {
		return err
	}
	ok, _, err := m.hasher.Verify(ctx, current.PasswordHash, pw)
	if err != nil {
		return internal(err, "change email")
	}
	if !ok {
		return fault.Invalid("password", "PASSWORD_INCORRECT", "the password is not correct")
	}
	if email == current.Email {
		return fault.Invalid("new_email", "EMAIL_UNCHANGED", "that is already your email address")
	}
	// Each request mails the new address (or its owner): the verification
	// mails' limit, per address and per client, holds here as for
	// AddEmailAddress, alike for a free and a taken address, so that an
	// account cannot mail a stranger without end.
	if err := m.limits.Verification(ctx, t.UID, email, c.IP); err != nil {
		return err
	}
	// Whether the new address has an account shows in no answer, nor in
	// its latency.
	defer m.evenOut(ctx, time.Now())
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		u, err := tx.UserByID(ctx, userID, true)
		if err != nil {
			return err
		}
		if u.PasswordHash != current.PasswordHash {
			return fault.New(fault.Aborted, "PASSWORD_CHANGED_MEANWHILE", "the password was changed meanwhile; try again")
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventEmailChangeStarted, UserID: u.ID, ClientIP: c.IP}); err != nil {
			return err
		}
		if owner, err := emailOwner(ctx, tx, email); err != nil {
			return err
		} else if owner == u.ID {
			return fault.Invalid("new_email", "EMAIL_ADDRESS_EXISTS",
				"%s is already one of your email addresses: make it primary instead", email)
		} else if owner != "" {
			// Taken (as a primary or a verified secondary address): tell
			// the owner of that address, not the caller.
			return enqueueMail(ctx, tx, t, accountExistsMailTo(t, m.links, email))
		}
		now := m.now()
		if err := tx.UseTokensOf(ctx, u.ID, now, PurposeVerifyEmail); err != nil {
			return err
		}
		secret, hash := newSecret()
		tok := &OneTimeToken{Hash: hash, Purpose: PurposeVerifyEmail, UserID: u.ID, Email: email, CreateTime: now, ExpireTime: now.Add(m.cfg.VerifyTokenTTL)}
		if err := tx.InsertToken(ctx, tok); err != nil {
			return err
		}
		return enqueueMail(ctx, tx, t, verificationMail(t, m.links, email, secret, hash))
	})
	return internal(err, "change email")
}
