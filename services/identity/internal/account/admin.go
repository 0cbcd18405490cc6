package account

import (
	"context"
	"errors"
	"regexp"
	"slices"

	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// RoleAdmin is the role of tenant administrators.
const RoleAdmin = "admin"

var rolePattern = regexp.MustCompile(`^[a-z][a-z0-9_.:-]{0,62}$`)

const maxRoles = 32

// ValidateRoles checks role names and returns them sorted without
// duplicates.
func ValidateRoles(field string, roles []string) ([]string, error) {
	if len(roles) > maxRoles {
		return nil, fault.Invalid(field, "ROLES_TOO_MANY", "%s has %d roles; at most %d are allowed", field, len(roles), maxRoles)
	}
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if !rolePattern.MatchString(r) {
			return nil, fault.Invalid(field, "ROLE_INVALID", "role %q is invalid: use 1-63 of a-z, 0-9, '_', '.', ':', '-', starting with a letter", r)
		}
		out = append(out, r)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// provenAdmin is actingAdmin for the changes that decide who gets in
// (OAuth clients, identity providers): the admin must also have proved
// themselves recently (requireRecentProof), as for adding a factor. A
// credential (the operator) acts without a user and passes both.
func (m *Manager) provenAdmin(ctx context.Context, tx Tx, c Client) error {
	if err := m.actingAdmin(ctx, tx, c); err != nil {
		return err
	}
	return m.requireRecentProof(ctx, tx, c.UserID, c.SessionID, false)
}

// actingAdmin checks again, inside the transaction that writes, that the
// user acting (with a tenant admin's access token) still has an open session
// and the admin role. Authentication checked both before the transaction,
// from the session cache; a logout, disable, deletion or demotion that
// commits in between, or that this replica has not heard of yet, must not
// let an admin's write through. The session and user rows stay locked to
// commit, so such a change either waits for this write or is seen by it.
// Credentials (the operator) act without a user and pass.
func (m *Manager) actingAdmin(ctx context.Context, tx Tx, c Client) error {
	if c.UserID == "" {
		return nil
	}
	s, err := tx.Session(ctx, c.SessionID, true)
	if errors.Is(err, ErrNotFound) {
		return errSessionEnded
	}
	if err != nil {
		return err
	}
	if !s.Open(m.now()) || s.UserID != c.UserID {
		return errSessionEnded
	}
	u, err := tx.UserByID(ctx, c.UserID, true)
	if errors.Is(err, ErrNotFound) {
		return errSessionEnded
	}
	if err != nil {
		return err
	}
	if u.Disabled {
		return errDisabled
	}
	if !u.HasRole(RoleAdmin) {
		return errNoLongerAdmin
	}
	return nil
}

var errNoLongerAdmin = fault.New(fault.PermissionDenied, "ROLE_NOT_ALLOWED", "you are not an administrator of this tenant")

// InviteInput describes an invitation.
type InviteInput struct {
	Email       string
	Roles       []string
	DisplayName string
}

// Invite creates an invited account and mails it an invitation link.
func (m *Manager) Invite(ctx context.Context, t tenancy.Tenant, in InviteInput, c Client) (*User, error) {
	var bad fieldErrors
	email, err := NormalizeEmail("email", in.Email)
	bad.add(err)
	roles, err := ValidateRoles("roles", in.Roles)
	bad.add(err)
	bad.add(ValidateDisplayName("display_name", in.DisplayName))
	if err := bad.err(); err != nil {
		return nil, err
	}
	var user *User
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.actingAdmin(ctx, tx, c); err != nil {
			return err
		}
		now := m.now()
		u, err := tx.UserByEmail(ctx, email, true)
		switch {
		case errors.Is(err, ErrNotFound):
			// Administrators see every account: saying so is no leak.
			if _, err := tx.EmailAddressOwner(ctx, email); err == nil {
				return fault.New(fault.AlreadyExists, "USER_EXISTS", "%s is an email address of an account in this tenant", email)
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
			u = &User{ID: newID(), Email: email, DisplayName: in.DisplayName, Roles: roles, State: Invited, CreateTime: now, UpdateTime: now}
			if err := tx.InsertUser(ctx, u); err != nil {
				if errors.Is(err, ErrEmailTaken) {
					return fault.New(fault.AlreadyExists, "USER_EXISTS", "%s was just invited or signed up; try again", email)
				}
				return err
			}
		case err != nil:
			return err
		case u.State != Invited:
			return fault.New(fault.AlreadyExists, "USER_EXISTS", "%s already has an account in this tenant", email)
		default:
			// Inviting again refreshes the invitation and its roles.
			u.Roles, u.DisplayName, u.UpdateTime = roles, in.DisplayName, now
			if err := tx.UpdateUser(ctx, u); err != nil {
				return err
			}
		}
		if err := tx.UseTokensOf(ctx, u.ID, now, PurposeInvitation); err != nil {
			return err
		}
		secret, hash := newSecret()
		tok := &OneTimeToken{Hash: hash, Purpose: PurposeInvitation, UserID: u.ID, Email: email, CreateTime: now, ExpireTime: now.Add(m.cfg.InviteTokenTTL)}
		if err := tx.InsertToken(ctx, tok); err != nil {
			return err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventUserInvited, UserID: u.ID, Actor: c.Actor, ClientIP: c.IP, Details: map[string]any{"roles": roles}}); err != nil {
			return err
		}
		user = u
		return enqueueMail(ctx, tx, t, invitationMail(t, m.links, email, secret, hash))
	})
	if err != nil {
		return nil, internal(err, "invite user")
	}
	return user, nil
}

// AcceptInput completes an invited account.
type AcceptInput struct {
	Token       string
	Password    string
	Username    string
	DisplayName string
}

// AcceptInvitation activates an invited account with its password. The
// invitation link proves the email address.
func (m *Manager) AcceptInvitation(ctx context.Context, t tenancy.Tenant, in AcceptInput, c Client) (*User, error) {
	if in.Token == "" || len(in.Token) > 128 {
		return nil, errInvalidToken("token")
	}
	// The fields are all checked, the password with them (once the
	// token says whose it is), before the answer names those to correct.
	var bad fieldErrors
	username, err := NormalizeUsername("username", in.Username)
	bad.add(err)
	bad.add(ValidateDisplayName("display_name", in.DisplayName))
	// withInput is the account as it will be, which the password is
	// checked against.
	withInput := func(u *User) {
		if username != "" {
			u.Username = username
		}
		if in.DisplayName != "" {
			u.DisplayName = in.DisplayName
		}
	}
	hash, owner, err := m.newPasswordHash(ctx, t, in.Password, "password", func(ctx context.Context, tx Tx) (*User, error) {
		_, u, err := m.peek(ctx, tx, in.Token, PurposeInvitation)
		if err == nil {
			withInput(u)
		}
		return u, err
	}, nil, &bad)
	if err != nil {
		return nil, err
	}
	var user *User
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		_, u, err := m.consume(ctx, tx, in.Token, PurposeInvitation)
		if err != nil {
			return err
		}
		if u.State != Invited || u.ID != owner {
			return errInvalidToken("token")
		}
		withInput(u)
		m.applyPassword(u, hash)
		u.State, u.EmailVerified = Active, true
		if err := tx.UpdateUser(ctx, u); err != nil {
			if errors.Is(err, ErrUsernameTaken) {
				return errUsernameTaken(username)
			}
			return err
		}
		user = u
		return tx.Audit(ctx, AuditEvent{Event: EventInvitationAccepted, UserID: u.ID, ClientIP: c.IP})
	})
	if err != nil {
		return nil, internal(err, "accept invitation")
	}
	return user, nil
}

// User returns one user.
func (m *Manager) User(ctx context.Context, t tenancy.Tenant, id string) (*User, error) {
	var user *User
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		u, err := tx.UserByID(ctx, id, false)
		if errors.Is(err, ErrNotFound) {
			return errUserNotFound(id)
		}
		user = u
		return err
	})
	if err != nil {
		return nil, internal(err, "get user")
	}
	return user, nil
}

func errUserNotFound(id string) error {
	return fault.New(fault.NotFound, "USER_NOT_FOUND", "user %q does not exist in this tenant", id)
}

// Users lists users matching q, up to limit, and whether more follow.
func (m *Manager) Users(ctx context.Context, t tenancy.Tenant, q UserQuery, limit int) ([]*User, bool, error) {
	var users []*User
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		users, err = tx.ListUsers(ctx, q, limit+1)
		return err
	})
	if err != nil {
		return nil, false, internal(err, "list users")
	}
	if len(users) > limit {
		return users[:limit], true, nil
	}
	return users, false, nil
}

// UserUpdate lists what an administrator may change; nil leaves a field.
type UserUpdate struct {
	DisplayName *string
	Roles       *[]string
	Disabled    *bool
	// Version, when not zero, must match the stored version (the etag).
	Version int64
}

// UpdateUser applies an administrator's change. Disabling a user ends
// their sessions.
func (m *Manager) UpdateUser(ctx context.Context, t tenancy.Tenant, id string, up UserUpdate, c Client) (*User, error) {
	if up.DisplayName != nil {
		if err := ValidateDisplayName("user.display_name", *up.DisplayName); err != nil {
			return nil, err
		}
	}
	if up.Roles != nil {
		roles, err := ValidateRoles("user.roles", *up.Roles)
		if err != nil {
			return nil, err
		}
		up.Roles = &roles
	}
	var user *User
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.actingAdmin(ctx, tx, c); err != nil {
			return err
		}
		u, err := tx.UserByID(ctx, id, true)
		if errors.Is(err, ErrNotFound) {
			return errUserNotFound(id)
		}
		if err != nil {
			return err
		}
		if up.Version != 0 && up.Version != u.Version {
			return fault.New(fault.Aborted, "ETAG_MISMATCH", "user %q changed since it was read; read it again and retry", id)
		}
		now := m.now()
		wasDisabled := u.Disabled
		if up.DisplayName != nil {
			u.DisplayName = *up.DisplayName
		}
		if up.Roles != nil && !slices.Equal(*up.Roles, u.Roles) {
			if err := tx.Audit(ctx, AuditEvent{Event: EventRolesChanged, UserID: u.ID, Actor: c.Actor, ClientIP: c.IP,
				Details: map[string]any{"from": u.Roles, "to": *up.Roles}}); err != nil {
				return err
			}
			u.Roles = *up.Roles
		}
		if up.Disabled != nil && *up.Disabled != u.Disabled {
			u.Disabled = *up.Disabled
			if u.Disabled {
				if err := tx.RevokeUserSessions(ctx, u.ID, "", "account disabled", now); err != nil {
					return err
				}
				// Re-enabling must not revive a link mailed before.
				if err := tx.UseTokensOf(ctx, u.ID, now, append(credentialPurposes, PurposeInvitation)...); err != nil {
					return err
				}
			}
		}
		disabling := up.Disabled != nil && *up.Disabled && !wasDisabled
		u.UpdateTime = now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		user = u
		// Product services hear of a disabling as such, besides the
		// user.updated the audit event brings.
		if disabling {
			if err := RecordAccountEvent(ctx, tx, t, u.ID, AccountUserDisabled); err != nil {
				return err
			}
		}
		return tx.Audit(ctx, AuditEvent{Event: EventUserUpdated, UserID: u.ID, Actor: c.Actor, ClientIP: c.IP})
	})
	if err != nil {
		return nil, internal(err, "update user")
	}
	return user, nil
}

// DeleteUser deletes a user, their sessions and tokens.
func (m *Manager) DeleteUser(ctx context.Context, t tenancy.Tenant, id string, c Client) error {
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.actingAdmin(ctx, tx, c); err != nil {
			return err
		}
		if _, err := tx.UserByID(ctx, id, true); errors.Is(err, ErrNotFound) {
			return errUserNotFound(id)
		} else if err != nil {
			return err
		}
		if err := tx.DeleteUser(ctx, id); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventUserDeleted, UserID: id, Actor: c.Actor, ClientIP: c.IP})
	})
	return internal(err, "delete user")
}

// Settings returns the tenant's identity settings.
func (m *Manager) Settings(ctx context.Context, t tenancy.Tenant) (Settings, error) {
	var s Settings
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		s, err = tx.Settings(ctx)
		return err
	})
	if err != nil {
		return Settings{}, internal(err, "get settings")
	}
	m.loginRates.learn(t.UID, s, m.now())
	return s, nil
}

// SettingsUpdate lists the settings to change; nil leaves one alone.
type SettingsUpdate struct {
	SignupPolicy      *SignupPolicy
	EmailVerification *Verification
	PasswordMinLength *int
	AllowedOrigins    *[]string
	// MaxLoginsPerSecond is from LowestMaxLoginsPerSecond to
	// HighestMaxLoginsPerSecond.
	MaxLoginsPerSecond *int
	MFAPolicy          *MFAPolicy
	MFARememberDays    *int
	LoginByEmailCode   *bool
	// DisplayName, LogoURL and AccentColor are the tenant's branding
	// (Settings).
	DisplayName *string
	LogoURL     *string
	AccentColor *string
	// DeletionGraceDays is from 0 to HighestDeletionGraceDays.
	DeletionGraceDays *int
	Version           int64
}

// UpdateSettings changes the tenant's identity settings.
func (m *Manager) UpdateSettings(ctx context.Context, t tenancy.Tenant, up SettingsUpdate, c Client) (Settings, error) {
	var bad fieldErrors
	if up.PasswordMinLength != nil && (*up.PasswordMinLength < 8 || *up.PasswordMinLength > 128) {
		bad.add(fault.Invalid("settings.password_min_length", "PASSWORD_MIN_LENGTH_INVALID", "password_min_length must be from 8 to 128"))
	}
	if up.MaxLoginsPerSecond != nil && (*up.MaxLoginsPerSecond < LowestMaxLoginsPerSecond || *up.MaxLoginsPerSecond > HighestMaxLoginsPerSecond) {
		bad.add(fault.Invalid("settings.max_logins_per_second", "MAX_LOGINS_PER_SECOND_INVALID",
			"max_logins_per_second must be from %d to %d", LowestMaxLoginsPerSecond, HighestMaxLoginsPerSecond))
	}
	if up.MFARememberDays != nil && (*up.MFARememberDays < 0 || *up.MFARememberDays > HighestMFARememberDays) {
		bad.add(fault.Invalid("settings.mfa_remember_device_days", "MFA_REMEMBER_DAYS_INVALID",
			"mfa_remember_device_days must be from 0 (never) to %d", HighestMFARememberDays))
	}
	bad.addBranding(up)
	if up.DeletionGraceDays != nil && (*up.DeletionGraceDays < 0 || *up.DeletionGraceDays > HighestDeletionGraceDays) {
		bad.add(fault.Invalid("settings.deletion_grace_days", "DELETION_GRACE_DAYS_INVALID",
			"deletion_grace_days must be from 0 to %d", HighestDeletionGraceDays))
	}
	if err := bad.err(); err != nil {
		return Settings{}, err
	}
	var out Settings
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.actingAdmin(ctx, tx, c); err != nil {
			return err
		}
		s, err := tx.Settings(ctx)
		if err != nil {
			return err
		}
		if up.Version != 0 && up.Version != s.Version {
			return fault.New(fault.Aborted, "ETAG_MISMATCH", "the settings changed since they were read; read them again and retry")
		}
		if up.SignupPolicy != nil {
			s.SignupPolicy = *up.SignupPolicy
		}
		if up.EmailVerification != nil {
			s.EmailVerification = *up.EmailVerification
		}
		if up.PasswordMinLength != nil {
			s.PasswordMinLength = *up.PasswordMinLength
		}
		if up.AllowedOrigins != nil {
			s.AllowedOrigins = *up.AllowedOrigins
		}
		if up.MaxLoginsPerSecond != nil {
			s.MaxLoginsPerSecond = *up.MaxLoginsPerSecond
		}
		if up.MFAPolicy != nil {
			s.MFAPolicy = *up.MFAPolicy
		}
		if up.MFARememberDays != nil {
			s.MFARememberDays = *up.MFARememberDays
		}
		if up.LoginByEmailCode != nil {
			s.LoginByEmailCode = *up.LoginByEmailCode
		}
		up.applyBranding(&s)
		if out, err = tx.SaveSettings(ctx, s); err != nil {
			if errors.Is(err, ErrVersionMismatch) {
				return fault.New(fault.Aborted, "ETAG_MISMATCH", "the settings changed since they were read; read them again and retry")
			}
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventSettingsUpdated, Actor: c.Actor, ClientIP: c.IP})
	})
	if err != nil {
		return Settings{}, internal(err, "update settings")
	}
	// This replica's next login checks the new ceiling; the others read it
	// within loginRateMaxAge (see loginrate.go).
	m.loginRates.learn(t.UID, out, m.now())
	return out, nil
}
