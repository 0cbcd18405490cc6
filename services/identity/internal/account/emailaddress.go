package account

import (
	"context"
	"errors"
	"time"

	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// Several email addresses per account: users.email is the primary one
// (logging in, resetting the password, every mail); the account may add
// others, each verified by a link mailed to it, and make a verified one
// primary. Logging in takes the primary address only: a secondary one is
// not a login name, so adding one changes nothing about who can log in,
// and a reset link only ever goes to the primary.
//
// An address belongs to one account of the tenant at most, as its primary
// or as a verified secondary (the store enforces it across both tables,
// races included; migration 0020 explains how). A pending address
// reserves nothing, so nobody can hold a stranger's address hostage
// before they sign up.
//
// Adding an address answers the same whether or not another account has
// it, as sign-up does: the address is listed as pending either way, and
// its mailbox gets either the verification link or a mail saying someone
// tried to use it (whose owner alone learns that, in the audit log of
// their own account). Every change needs a recent proof (a sensitive
// action), and is audited as a user.updated account event.

// MaxEmailAddresses bounds the secondary addresses (pending ones
// included) of an account: each add mails a stranger's mailbox, at most.
const MaxEmailAddresses = 10

// PurposeVerifyEmailAddress is the token of a secondary address's
// verification link; it names the address in OneTimeToken.Email.
const PurposeVerifyEmailAddress Purpose = "VERIFY_EMAIL_ADDRESS"

// Audit events of the addresses. The claim attempt is recorded on the
// account that has the address, never on the one that tried.
const (
	EventEmailAddressAdded          = "user.email_address_added"
	EventEmailAddressVerified       = "user.email_address_verified"
	EventEmailAddressRemoved        = "user.email_address_removed"
	EventPrimaryEmailChanged        = "user.primary_email_changed"
	EventEmailAddressClaimAttempted = "user.email_address_claim_attempted"
)

// EmailAddress is one address of an account.
type EmailAddress struct {
	Email      string
	Primary    bool
	CreateTime time.Time
	// VerifyTime is when its link was followed; zero while pending. A
	// primary address's is its account's update time when verified (the
	// account keeps no time of its own for it).
	VerifyTime time.Time
}

// Verified reports whether the address's link was followed.
func (a EmailAddress) Verified() bool { return !a.VerifyTime.IsZero() }

// EmailAddressTx is what a Tx does with the secondary addresses.
type EmailAddressTx interface {
	// EmailAddresses lists userID's secondary addresses, oldest first.
	EmailAddresses(ctx context.Context, userID string) ([]EmailAddress, error)
	// EmailAddress locks one of userID's secondary addresses.
	EmailAddress(ctx context.Context, userID, email string) (EmailAddress, error)
	// EmailAddressOwner is the user who has email as a verified secondary
	// address (ErrNotFound: none).
	EmailAddressOwner(ctx context.Context, email string) (string, error)
	// InsertEmailAddress adds a secondary address (nothing if userID has
	// it already); ErrEmailTaken if it is verified and another account's.
	InsertEmailAddress(ctx context.Context, userID string, a EmailAddress) error
	// VerifyEmailAddress marks one verified at at; ErrEmailTaken if
	// another account has it.
	VerifyEmailAddress(ctx context.Context, userID, email string, at time.Time) error
	// DeleteEmailAddress removes one (ErrNotFound: not userID's).
	DeleteEmailAddress(ctx context.Context, userID, email string) error
}

func errEmailAddressNotFound(email string) error {
	return fault.New(fault.NotFound, "EMAIL_ADDRESS_NOT_FOUND", "%s is not one of your email addresses", email)
}

func errNotSignedIn(what string) error {
	return fault.New(fault.PermissionDenied, "USER_REQUIRED", "only a signed-in user can %s", what)
}

// ListEmailAddresses lists the addresses of c's own account, the primary
// first.
func (m *Manager) ListEmailAddresses(ctx context.Context, t tenancy.Tenant, c Client) ([]EmailAddress, error) {
	if c.UserID == "" {
		return nil, errNotSignedIn("list their email addresses")
	}
	var out []EmailAddress
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = emailAddressesOf(ctx, tx, c.UserID)
		return err
	})
	return out, internal(err, "list email addresses")
}

func emailAddressesOf(ctx context.Context, tx Tx, userID string) ([]EmailAddress, error) {
	u, err := tx.UserByID(ctx, userID, false)
	if err != nil {
		return nil, err
	}
	primary := EmailAddress{Email: u.Email, Primary: true, CreateTime: u.CreateTime}
	if u.EmailVerified {
		primary.VerifyTime = u.UpdateTime
	}
	others, err := tx.EmailAddresses(ctx, userID)
	if err != nil {
		return nil, err
	}
	return append([]EmailAddress{primary}, others...), nil
}

// AddEmailAddress adds an address to c's own account, pending until the
// link mailed to it is followed. Whether another account has the address
// shows neither in the answer, nor in the list, nor in the latency.
func (m *Manager) AddEmailAddress(ctx context.Context, t tenancy.Tenant, c Client, rawEmail string) error {
	if c.UserID == "" {
		return errNotSignedIn("add an email address")
	}
	email, err := NormalizeEmail("email", rawEmail)
	if err != nil {
		return err
	}
	// Removing and adding again would otherwise mail a stranger's address
	// without end: the verification mails' limit (per address and per
	// client) holds here too, alike for a free and a taken address.
	if err := m.limits.Verification(ctx, t.UID, email, c.IP); err != nil {
		return err
	}
	start := time.Now()
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.requireRecentProof(ctx, tx, c.UserID, c.SessionID, false); err != nil {
			return err
		}
		u, err := tx.UserByID(ctx, c.UserID, true)
		if err != nil {
			return err
		}
		if u.Email == email {
			return fault.New(fault.AlreadyExists, "EMAIL_ADDRESS_EXISTS", "%s is already your primary email address", email)
		}
		mine, err := tx.EmailAddresses(ctx, u.ID)
		if err != nil {
			return err
		}
		pending := false
		for _, a := range mine {
			if a.Email == email {
				if a.Verified() {
					return fault.New(fault.AlreadyExists, "EMAIL_ADDRESS_EXISTS", "%s is already one of your email addresses", email)
				}
				pending = true // add again: a new link
			}
		}
		if !pending && len(mine) >= MaxEmailAddresses {
			return fault.New(fault.FailedPrecondition, "EMAIL_ADDRESS_LIMIT",
				"an account has at most %d email addresses besides its primary one; remove one first", MaxEmailAddresses)
		}
		now := m.now()
		if !pending {
			if err := tx.InsertEmailAddress(ctx, u.ID, EmailAddress{Email: email, CreateTime: now}); err != nil {
				return err
			}
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventEmailAddressAdded, UserID: u.ID, Actor: c.Actor, ClientIP: c.IP,
			Details: map[string]any{"email": email}}); err != nil {
			return err
		}
		owner, err := emailOwner(ctx, tx, email)
		if err != nil {
			return err
		}
		if owner != "" && owner != u.ID {
			// Taken: the mailbox's owner is told, and the log of their
			// account says so; the caller's answer is an add's.
			if err := tx.Audit(ctx, AuditEvent{Event: EventEmailAddressClaimAttempted, UserID: owner, ClientIP: c.IP}); err != nil {
				return err
			}
			return enqueueMail(ctx, tx, t, accountExistsMailTo(t, m.links, email))
		}
		secret, hash := newSecret()
		tok := &OneTimeToken{Hash: hash, Purpose: PurposeVerifyEmailAddress, UserID: u.ID, Email: email, CreateTime: now,
			ExpireTime: now.Add(m.cfg.VerifyTokenTTL)}
		if err := tx.InsertToken(ctx, tok); err != nil {
			return err
		}
		return enqueueMail(ctx, tx, t, verificationMail(t, m.links, email, secret, hash))
	})
	if err == nil {
		// Only a successful add is evened out: the refusals above depend
		// on the caller's own account alone.
		m.evenOut(ctx, start)
	}
	return internal(err, "add email address")
}

// emailOwner is the account that has email, as its primary or as a
// verified secondary address; "" when none does.
func emailOwner(ctx context.Context, tx Tx, email string) (string, error) {
	u, err := tx.UserByEmail(ctx, email, false)
	if err == nil {
		return u.ID, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	id, err := tx.EmailAddressOwner(ctx, email)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return id, err
}

// VerifyEmailAddress follows a secondary address's verification link and
// returns the address.
func (m *Manager) VerifyEmailAddress(ctx context.Context, t tenancy.Tenant, token string, c Client) (string, error) {
	if token == "" || len(token) > 128 {
		return "", errInvalidToken("token")
	}
	var email string
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		email, err = m.verifyEmailAddress(ctx, tx, token, c)
		return err
	})
	if err != nil {
		return "", internal(err, "verify email address")
	}
	return email, nil
}

func (m *Manager) verifyEmailAddress(ctx context.Context, tx Tx, token string, c Client) (string, error) {
	tok, u, err := m.consume(ctx, tx, token, PurposeVerifyEmailAddress)
	if err != nil {
		return "", err
	}
	a, err := tx.EmailAddress(ctx, u.ID, tok.Email)
	// A link for an address removed since (and perhaps added again, with a
	// link of its own) proves nothing.
	if errors.Is(err, ErrNotFound) || (err == nil && a.CreateTime.After(tok.CreateTime)) {
		return "", errInvalidToken("token")
	}
	if err != nil {
		return "", err
	}
	if a.Verified() {
		return a.Email, nil
	}
	taken := fault.New(fault.AlreadyExists, "EMAIL_TAKEN", "another account now uses %s", tok.Email)
	// The holder of the link holds the mailbox: telling them that another
	// account took the address meanwhile reveals nothing to anyone else.
	if owner, err := emailOwner(ctx, tx, tok.Email); err != nil {
		return "", err
	} else if owner != "" && owner != u.ID {
		return "", taken
	}
	if err := tx.VerifyEmailAddress(ctx, u.ID, tok.Email, m.now()); err != nil {
		if errors.Is(err, ErrEmailTaken) {
			return "", taken // a concurrent verification or sign-up won
		}
		return "", err
	}
	return tok.Email, tx.Audit(ctx, AuditEvent{Event: EventEmailAddressVerified, UserID: u.ID, ClientIP: c.IP,
		Details: map[string]any{"email": tok.Email}})
}

// SetPrimaryEmailAddress makes a verified secondary address of c's own
// account its primary one; the old primary stays as a secondary address,
// and is told by mail. Links mailed to the old address (a reset above all)
// stop working.
func (m *Manager) SetPrimaryEmailAddress(ctx context.Context, t tenancy.Tenant, c Client, rawEmail string) error {
	if c.UserID == "" {
		return errNotSignedIn("change their primary email address")
	}
	email, err := NormalizeEmail("email", rawEmail)
	if err != nil {
		return err
	}
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.requireRecentProof(ctx, tx, c.UserID, c.SessionID, false); err != nil {
			return err
		}
		u, err := tx.UserByID(ctx, c.UserID, true)
		if err != nil {
			return err
		}
		if u.Email == email {
			return nil // already
		}
		a, err := tx.EmailAddress(ctx, u.ID, email)
		if errors.Is(err, ErrNotFound) {
			return errEmailAddressNotFound(email)
		}
		if err != nil {
			return err
		}
		if !a.Verified() {
			return fault.New(fault.FailedPrecondition, "EMAIL_ADDRESS_UNVERIFIED",
				"%s is not verified yet: follow the link mailed to it first", email)
		}
		now := m.now()
		old := u.Email
		// The swap: the new primary leaves the secondary addresses, the old
		// one joins them (as verified as it was), then the account takes
		// the new one. Each step keeps the address with this account.
		if err := tx.DeleteEmailAddress(ctx, u.ID, email); err != nil {
			return err
		}
		kept := EmailAddress{Email: old, CreateTime: now}
		if u.EmailVerified {
			kept.VerifyTime = now
		}
		if err := tx.InsertEmailAddress(ctx, u.ID, kept); err != nil {
			return err
		}
		u.Email, u.EmailVerified, u.UpdateTime = email, true, now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if err := tx.UseTokensOf(ctx, u.ID, now, credentialPurposes...); err != nil {
			return err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventPrimaryEmailChanged, UserID: u.ID, Actor: c.Actor, ClientIP: c.IP,
			Details: map[string]any{"from": old, "to": email}}); err != nil {
			return err
		}
		return enqueueMail(ctx, tx, t, emailChangedMail(t, old, email, []byte(u.ID+old+email+now.String())))
	})
	return internal(err, "set primary email address")
}

// RemoveEmailAddress removes a secondary address of c's own account; the
// primary one cannot be removed (make another primary first).
func (m *Manager) RemoveEmailAddress(ctx context.Context, t tenancy.Tenant, c Client, rawEmail string) error {
	if c.UserID == "" {
		return errNotSignedIn("remove an email address")
	}
	email, err := NormalizeEmail("email", rawEmail)
	if err != nil {
		return err
	}
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.requireRecentProof(ctx, tx, c.UserID, c.SessionID, false); err != nil {
			return err
		}
		u, err := tx.UserByID(ctx, c.UserID, true)
		if err != nil {
			return err
		}
		if u.Email == email {
			return fault.New(fault.FailedPrecondition, "EMAIL_ADDRESS_PRIMARY",
				"%s is your primary email address: make another one primary before removing it", email)
		}
		if err := tx.DeleteEmailAddress(ctx, u.ID, email); errors.Is(err, ErrNotFound) {
			return errEmailAddressNotFound(email)
		} else if err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventEmailAddressRemoved, UserID: u.ID, Actor: c.Actor, ClientIP: c.IP,
			Details: map[string]any{"email": email}})
	})
	return internal(err, "remove email address")
}
