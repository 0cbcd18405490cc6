package account

import (
	"context"
	"errors"
	"time"

	"tenantry.dev/identity/internal/device"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// maxExportedAuditEvents bounds the audit events an export carries: the
// newest, which are what a person asking "what happened to my account"
// looks for; a tenant's retention bounds them anyway.
const maxExportedAuditEvents = 1000

// AccountExport is everything identity keeps about one account, for its
// owner (the GDPR's right of access and portability): no secret, hash or
// key material, only what they describe.
type AccountExport struct {
	ExportTime       time.Time                `json:"export_time"`
	Tenant           string                   `json:"tenant"`
	Profile          ExportedProfile          `json:"profile"`
	Emails           []ExportedEmail          `json:"emails"`
	Sessions         []ExportedSession        `json:"sessions"`
	LinkedIdentities []ExportedLinkedIdentity `json:"linked_identities"`
	Factors          ExportedFactors          `json:"factors"`
	AuditEvents      []ExportedAuditEvent     `json:"audit_events"`
}

// ExportedProfile is the account itself, without its password hash.
type ExportedProfile struct {
	ID                 string     `json:"id"`
	Email              string     `json:"email"`
	EmailVerified      bool       `json:"email_verified"`
	Username           string     `json:"username,omitempty"`
	DisplayName        string     `json:"display_name,omitempty"`
	Roles              []string   `json:"roles"`
	State              string     `json:"state"`
	Disabled           bool       `json:"disabled"`
	HasPassword        bool       `json:"has_password"`
	CreateTime         time.Time  `json:"create_time"`
	UpdateTime         time.Time  `json:"update_time"`
	LastLoginTime      *time.Time `json:"last_login_time,omitempty"`
	PasswordChangeTime *time.Time `json:"password_change_time,omitempty"`
}

// ExportedEmail is one of the account's addresses.
type ExportedEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
	// CreateTime is when it was added (the account's creation, for the
	// primary address); VerifyTime when its link was followed (a
	// secondary address's only).
	CreateTime time.Time  `json:"create_time"`
	VerifyTime *time.Time `json:"verify_time,omitempty"`
}

// ExportedSession is one open session, without its refresh token's hash.
type ExportedSession struct {
	ID          string    `json:"id"`
	CreateTime  time.Time `json:"create_time"`
	RefreshTime time.Time `json:"refresh_time"`
	ExpireTime  time.Time `json:"expire_time"`
	UserAgent   string    `json:"user_agent,omitempty"`
	DeviceName  string    `json:"device_name,omitempty"`
	ClientIP    string    `json:"client_ip,omitempty"`
	ClientID    string    `json:"client_id,omitempty"`
}

// ExportedLinkedIdentity is an account of another provider connected to
// this one.
type ExportedLinkedIdentity struct {
	ProviderID    string     `json:"provider_id"`
	Subject       string     `json:"subject"`
	Email         string     `json:"email,omitempty"`
	CreateTime    time.Time  `json:"create_time"`
	LastLoginTime *time.Time `json:"last_login_time,omitempty"`
}

// ExportedFactors describes the second factors, never their secrets.
type ExportedFactors struct {
	AuthenticatorApp  *ExportedAuthenticatorApp `json:"authenticator_app,omitempty"`
	RecoveryCodesLeft int                       `json:"recovery_codes_left"`
	Passkeys          []ExportedPasskey         `json:"passkeys"`
}

// ExportedAuthenticatorApp is the confirmed authenticator app.
type ExportedAuthenticatorApp struct {
	ConfirmTime time.Time `json:"confirm_time"`
}

// ExportedPasskey is a passkey's name and dates, not its public key.
type ExportedPasskey struct {
	ID          string     `json:"id"`
	DisplayName string     `json:"display_name"`
	CreateTime  time.Time  `json:"create_time"`
	LastUseTime *time.Time `json:"last_use_time,omitempty"`
}

// ExportedAuditEvent is an audit log entry about the account.
type ExportedAuditEvent struct {
	Time     time.Time      `json:"time"`
	Event    string         `json:"event"`
	Actor    string         `json:"actor,omitempty"`
	ClientIP string         `json:"client_ip,omitempty"`
	Details  map[string]any `json:"details,omitempty"`
}

// ExportAccount is the export of the account of c, its owner acting with
// a session that proved them recently (a sensitive action: the export
// holds their personal data). Nobody else's account can be exported: the
// account is c's own.
func (m *Manager) ExportAccount(ctx context.Context, t tenancy.Tenant, c Client) (*AccountExport, error) {
	if c.UserID == "" {
		return nil, fault.New(fault.PermissionDenied, "USER_REQUIRED", "only a signed-in user can export their account")
	}
	var out *AccountExport
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.requireRecentProof(ctx, tx, c.UserID, c.SessionID, false); err != nil {
			return err
		}
		u, err := tx.UserByID(ctx, c.UserID, false)
		if err != nil {
			return err
		}
		now := m.now()
		e := &AccountExport{ExportTime: now, Tenant: t.Slug, Profile: ExportedProfile{
			ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Username: u.Username, DisplayName: u.DisplayName,
			Roles: nonNil(u.Roles), State: string(u.State), Disabled: u.Disabled, HasPassword: u.PasswordHash != "",
			CreateTime: u.CreateTime, UpdateTime: u.UpdateTime, LastLoginTime: timeOrNil(u.LastLoginTime),
			PasswordChangeTime: timeOrNil(u.PasswordChangeTime),
		}, Emails: []ExportedEmail{},
			Sessions: []ExportedSession{}, LinkedIdentities: []ExportedLinkedIdentity{}, AuditEvents: []ExportedAuditEvent{},
			Factors: ExportedFactors{Passkeys: []ExportedPasskey{}}}
		addresses, err := emailAddressesOf(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		for _, a := range addresses {
			x := ExportedEmail{Email: a.Email, Primary: a.Primary, Verified: a.Verified(), CreateTime: a.CreateTime}
			if !a.Primary {
				// The account keeps no verification time of its primary
				// address (EmailAddress.VerifyTime stands in for it).
				x.VerifyTime = timeOrNil(a.VerifyTime)
			}
			e.Emails = append(e.Emails, x)
		}
		sessions, err := tx.UserSessions(ctx, u.ID, now)
		if err != nil {
			return err
		}
		for _, s := range sessions {
			e.Sessions = append(e.Sessions, ExportedSession{ID: s.ID, CreateTime: s.CreateTime, RefreshTime: s.RefreshTime,
				ExpireTime: s.ExpireTime, UserAgent: s.UserAgent, DeviceName: device.Name(s.UserAgent), ClientIP: s.ClientIP, ClientID: s.ClientID})
		}
		links, err := tx.LinkedIdentitiesOf(ctx, u.ID)
		if err != nil {
			return err
		}
		for _, l := range links {
			e.LinkedIdentities = append(e.LinkedIdentities, ExportedLinkedIdentity{ProviderID: l.ProviderID, Subject: l.Subject,
				Email: l.Email, CreateTime: l.CreateTime, LastLoginTime: timeOrNil(l.LastLoginTime)})
		}
		totp, err := tx.TOTPFactor(ctx, u.ID, false)
		switch {
		case err == nil && !totp.ConfirmTime.IsZero():
			e.Factors.AuthenticatorApp = &ExportedAuthenticatorApp{ConfirmTime: totp.ConfirmTime}
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		if e.Factors.RecoveryCodesLeft, err = tx.RecoveryCodesLeft(ctx, u.ID); err != nil {
			return err
		}
		passkeys, err := tx.Passkeys(ctx, u.ID)
		if err != nil {
			return err
		}
		for _, p := range passkeys {
			e.Factors.Passkeys = append(e.Factors.Passkeys, ExportedPasskey{ID: p.ID, DisplayName: p.DisplayName,
				CreateTime: p.CreateTime, LastUseTime: timeOrNil(p.LastUseTime)})
		}
		events, err := tx.AuditEvents(ctx, AuditQuery{UserID: u.ID}, maxExportedAuditEvents)
		if err != nil {
			return err
		}
		for _, a := range events {
			e.AuditEvents = append(e.AuditEvents, ExportedAuditEvent{Time: a.Time, Event: a.Event, Actor: a.Actor,
				ClientIP: a.ClientIP, Details: a.Details})
		}
		out = e
		return tx.Audit(ctx, AuditEvent{Event: EventAccountExported, UserID: u.ID, Actor: c.Actor, ClientIP: c.IP})
	})
	if err != nil {
		return nil, internal(err, "export account")
	}
	return out, nil
}

// EventAccountExported is the audit event of an account's export.
const EventAccountExported = "account.exported"

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
