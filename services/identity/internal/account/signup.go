package account

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"time"

	"tenantry.dev/identity/internal/password"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// SignUpInput is what a person gives to create an account.
type SignUpInput struct {
	Email       string
	Password    string
	Username    string
	DisplayName string
}

// SignUpResult says what happens next.
type SignUpResult struct {
	VerificationRequired bool
	Message              string
}

// signUpMessage says what the person can do next under the tenant's email
// verification setting, and only that: the answer is the same whether the
// address was new, so it must not depend on the account.
func signUpMessage(v Verification) string {
	switch v {
	case VerificationMandatory:
		return "Thanks for signing up. We have sent an email to the address you gave: open its link to verify the address, then log in."
	case VerificationOptional:
		return "Thanks for signing up. You can log in now. We have also sent an email to the address you gave: open its link to verify the address."
	default:
		return "Thanks for signing up. You can log in now."
	}
}

// SignUp creates an account under the tenant's sign-up policy. To avoid
// user enumeration, an email that is already registered, or a username
// another account has, gets the same answer (and the same work: a password
// hash and a mail) as a new account; the address's owner is told by email
// instead, at most once an hour (signUpNotice). Sign-ups are rate limited
// (Limiter.SignUp) on every path alike, before the hash.
func (m *Manager) SignUp(ctx context.Context, t tenancy.Tenant, in SignUpInput, c Client) (SignUpResult, error) {
	// Every field is checked before the answer, so that it names all
	// those to correct; the password's check needs the tenant's policy.
	var bad fieldErrors
	email, err := NormalizeEmail("email", in.Email)
	bad.add(err)
	username, err := NormalizeUsername("username", in.Username)
	bad.add(err)
	bad.add(ValidateDisplayName("display_name", in.DisplayName))
	// Check the policy and the password first, hash outside any
	// transaction (a hash takes tens of milliseconds), then write.
	var settings Settings
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		settings, err = tx.Settings(ctx)
		return err
	})
	if err != nil {
		return SignUpResult{}, internal(err, "sign up")
	}
	if bad.err() == nil {
		// A closed sign-up is the answer to well-formed input; malformed
		// input gets its corrections first, as it always has.
		if err := signupAllowed(settings); err != nil {
			return SignUpResult{}, err
		}
	}
	policy := password.Policy{MinLength: settings.PasswordMinLength}
	bad.add(policy.Check("password", in.Password, localPart(email), username, in.DisplayName))
	if err := bad.err(); err != nil {
		return SignUpResult{}, err
	}
	// Every path is limited alike, before its hash, by the address as
	// submitted (registered or not) and the client's address: the answer
	// to a refused sign-up says nothing about the address, and a flood
	// costs neither hashes nor mail. Held to the floor like every answer.
	if err := m.limits.SignUp(ctx, t.UID, email, c.IP, settings.MaxLoginsPerSecond); err != nil {
		m.evenOut(ctx, time.Now())
		return SignUpResult{}, err
	}
	// Every path hashes, and then writes differently: the floor, counted
	// from the end of the hash (whose own time, queue included, varies
	// alike on every path), keeps the answer's latency from saying whether
	// the email or the username is registered.
	hash, err := m.hasher.Hash(ctx, in.Password)
	if err != nil {
		return SignUpResult{}, internal(err, "sign up")
	}
	defer m.evenOut(ctx, time.Now())
	result := SignUpResult{
		VerificationRequired: settings.EmailVerification == VerificationMandatory,
		Message:              signUpMessage(settings.EmailVerification),
	}
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		settings, err := tx.Settings(ctx)
		if err != nil {
			return err
		}
		if err := signupAllowed(settings); err != nil {
			return err
		}
		existing, err := tx.UserByEmail(ctx, email, false)
		switch {
		case err == nil:
			if err := tx.Audit(ctx, AuditEvent{Event: EventSignUpExisting, UserID: existing.ID, ClientIP: c.IP}); err != nil {
				return err
			}
			return enqueueMail(ctx, tx, t, signUpNotice(accountExistsMail(t, m.links, existing), m.now()))
		case !errors.Is(err, ErrNotFound):
			return err
		}
		// Another account's verified secondary address is as taken as a
		// primary one (emailaddress.go), and answered alike. A verification
		// racing this sign-up is refused by the store (migration 0020):
		// then this transaction fails, and no second owner appears.
		if owner, err := tx.EmailAddressOwner(ctx, email); err == nil {
			if err := tx.Audit(ctx, AuditEvent{Event: EventSignUpExisting, UserID: owner, ClientIP: c.IP}); err != nil {
				return err
			}
			return enqueueMail(ctx, tx, t, signUpNotice(accountExistsMailTo(t, m.links, email), m.now()))
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if username != "" {
			// Usernames log in, so the answer must not say one is taken
			// (that would list the accounts): the address's owner is told
			// by email instead, and the answer is a sign-up's.
			if _, err := tx.UserByUsername(ctx, username); err == nil {
				return m.usernameTaken(ctx, tx, t, email, username, c)
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		now := m.now()
		u := &User{
			ID: newID(), Email: email, Username: username, DisplayName: in.DisplayName,
			PasswordHash: hash, State: Active, CreateTime: now, UpdateTime: now, PasswordChangeTime: now,
			Roles: []string{},
		}
		if err := tx.InsertUser(ctx, u); err != nil {
			if errors.Is(err, ErrUsernameTaken) {
				// A concurrent sign-up took it; this transaction is spoilt,
				// so the mail goes in another one, below.
				return errSignUpUsernameRace
			}
			if errors.Is(err, ErrEmailTaken) {
				// A concurrent sign-up with the same email won: answer the
				// same way as for an existing account, without a second user.
				return nil
			}
			return err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventSignUp, UserID: u.ID, ClientIP: c.IP}); err != nil {
			return err
		}
		if settings.EmailVerification == VerificationOff {
			return enqueueMail(ctx, tx, t, welcomeMail(t, u))
		}
		return m.sendVerification(ctx, tx, t, u)
	})
	if errors.Is(err, errSignUpUsernameRace) {
		err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
			return m.usernameTaken(ctx, tx, t, email, username, c)
		})
	}
	if err != nil {
		return SignUpResult{}, internal(err, "sign up")
	}
	return result, nil
}

// errSignUpUsernameRace: another sign-up took the username between the
// check and the insert.
var errSignUpUsernameRace = errors.New("username taken by a concurrent sign-up")

// usernameTaken records a sign-up refused for its username and mails the
// address given; the caller answers as for any sign-up.
func (m *Manager) usernameTaken(ctx context.Context, tx Tx, t tenancy.Tenant, email, username string, c Client) error {
	if err := tx.Audit(ctx, AuditEvent{Event: EventSignUpUsernameTaken, ClientIP: c.IP,
		Details: map[string]any{"username": username}}); err != nil {
		return err
	}
	return enqueueMail(ctx, tx, t, signUpNotice(usernameTakenMail(t, m.links, email, username), m.now()))
}

// signUpNotice keys a mail about a sign-up that created nothing (the
// address has an account, the username is taken) by its kind, its
// recipient and the hour: the outbox drops a second one with the same key
// (mail.Enqueue), so an address gets at most one of each kind per clock
// hour, however many sign-ups name it. Without it, each sign-up naming
// someone's address mailed them, through the tenant's sender. The rate
// limits bound the sign-ups; this bounds what one mailbox receives.
func signUpNotice(l letter, now time.Time) letter {
	recipient := sha256.Sum256([]byte(strings.ToLower(l.to)))
	l.dedupeKey = dedupe(l.kind, recipient[:]) + now.UTC().Format(":2006-01-02T15")
	return l
}

func signupAllowed(s Settings) error {
	switch s.SignupPolicy {
	case SignupInviteOnly:
		return fault.New(fault.PermissionDenied, "SIGNUP_INVITE_ONLY", "sign-up is by invitation only in this tenant; ask an administrator for an invitation")
	case SignupClosed:
		return fault.New(fault.PermissionDenied, "SIGNUP_CLOSED", "sign-up is closed in this tenant")
	}
	return nil
}

func errUsernameTaken(username string) error {
	return fault.New(fault.AlreadyExists, "USERNAME_TAKEN", "the username %q is taken; choose another", username)
}

// sendVerification issues a verification token for u's email and mails it.
func (m *Manager) sendVerification(ctx context.Context, tx Tx, t tenancy.Tenant, u *User) error {
	now := m.now()
	if err := tx.UseTokensOf(ctx, u.ID, now, PurposeVerifyEmail); err != nil {
		return err
	}
	secret, hash := newSecret()
	tok := &OneTimeToken{Hash: hash, Purpose: PurposeVerifyEmail, UserID: u.ID, Email: u.Email, CreateTime: now, ExpireTime: now.Add(m.cfg.VerifyTokenTTL)}
	if err := tx.InsertToken(ctx, tok); err != nil {
		return err
	}
	return enqueueMail(ctx, tx, t, verificationMail(t, m.links, u.Email, secret, hash))
}

// VerifyEmail confirms the address a verification token was sent to. For
// an email change, that address then replaces the account's email.
func (m *Manager) VerifyEmail(ctx context.Context, t tenancy.Tenant, token string, c Client) (string, error) {
	if token == "" || len(token) > 128 {
		return "", errInvalidToken("token")
	}
	var email string
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		// The links of secondary addresses open the same page, which
		// calls this: they are told apart by their token's purpose.
		if tok, err := tx.Token(ctx, hashSecret(token)); err == nil && tok.Purpose == PurposeVerifyEmailAddress {
			email, err = m.verifyEmailAddress(ctx, tx, token, c)
			return err
		}
		tok, u, err := m.consume(ctx, tx, token, PurposeVerifyEmail)
		if err != nil {
			return err
		}
		if u.Email != tok.Email {
			if other, err := tx.UserByEmail(ctx, tok.Email, false); err == nil && other.ID != u.ID {
				return fault.New(fault.AlreadyExists, "EMAIL_TAKEN", "another account now uses %s", tok.Email)
			}
			old := u.Email
			u.Email = tok.Email
			// Added as a secondary address since the change began: it
			// becomes the primary one instead.
			if err := tx.DeleteEmailAddress(ctx, u.ID, tok.Email); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			// Links mailed before the change (a reset sent to the old
			// address above all) must not work once the address is gone.
			if err := tx.UseTokensOf(ctx, u.ID, m.now(), credentialPurposes...); err != nil {
				return err
			}
			if err := tx.Audit(ctx, AuditEvent{Event: EventEmailChanged, UserID: u.ID, ClientIP: c.IP, Details: map[string]any{"from": old}}); err != nil {
				return err
			}
			if err := enqueueMail(ctx, tx, t, emailChangedMail(t, old, tok.Email, tok.Hash)); err != nil {
				return err
			}
		}
		u.EmailVerified = true
		u.UpdateTime = m.now()
		if err := tx.UpdateUser(ctx, u); err != nil {
			if errors.Is(err, ErrEmailTaken) {
				return fault.New(fault.AlreadyExists, "EMAIL_TAKEN", "another account now uses %s", tok.Email)
			}
			return err
		}
		email = u.Email
		return tx.Audit(ctx, AuditEvent{Event: EventEmailVerified, UserID: u.ID, ClientIP: c.IP})
	})
	if err != nil {
		return "", internal(err, "verify email")
	}
	return email, nil
}

// consume checks a single-use token for a purpose, marks it used and
// returns it with its user, locked. Any mismatch is the same error, so a
// token reveals nothing about why it does not work.
func (m *Manager) consume(ctx context.Context, tx Tx, token string, purpose Purpose) (*OneTimeToken, *User, error) {
	tok, u, err := m.peek(ctx, tx, token, purpose)
	if err != nil {
		return nil, nil, err
	}
	if err := tx.UseToken(ctx, tok.Hash, m.now()); err != nil {
		return nil, nil, err
	}
	return tok, u, nil
}

// peek checks a single-use token like consume but leaves it unused, for a
// first, read-only look (e.g. to know whose password is being set).
func (m *Manager) peek(ctx context.Context, tx Tx, token string, purpose Purpose) (*OneTimeToken, *User, error) {
	tok, err := tx.Token(ctx, hashSecret(token))
	if errors.Is(err, ErrNotFound) {
		return nil, nil, errInvalidToken("token")
	}
	if err != nil {
		return nil, nil, err
	}
	if tok.Purpose != purpose || !tok.UseTime.IsZero() || !m.now().Before(tok.ExpireTime) {
		return nil, nil, errInvalidToken("token")
	}
	u, err := tx.UserByID(ctx, tok.UserID, true)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, errInvalidToken("token")
	}
	if err != nil {
		return nil, nil, err
	}
	// A reset or an invitation was mailed to the account's address: it
	// is good only while that is still the account's address. (Changing
	// the address also ends such tokens; this holds even for one a change
	// missed.) A verification token names the address it proves, which
	// may be a new one, or a secondary one.
	if purpose != PurposeVerifyEmail && purpose != PurposeVerifyEmailAddress && tok.Email != u.Email {
		return nil, nil, errInvalidToken("token")
	}
	return tok, u, nil
}

// ResendVerification mails a new verification link if email belongs to an
// unverified account. It answers the same in every case.
func (m *Manager) ResendVerification(ctx context.Context, t tenancy.Tenant, rawEmail string, c Client) error {
	email, err := NormalizeEmail("email", rawEmail)
	if err != nil {
		return err
	}
	defer m.evenOut(ctx, time.Now())
	if err := m.limits.Verification(ctx, t.UID, email, c.IP); err != nil {
		return err
	}
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		u, err := tx.UserByEmail(ctx, email, true)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if u.EmailVerified || u.State != Active {
			return nil
		}
		return m.sendVerification(ctx, tx, t, u)
	})
	return internal(err, "resend verification")
}
