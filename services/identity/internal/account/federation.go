package account

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"tenantry.dev/identity/internal/emails"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// Sign-in with other identity providers ("federation").
//
// A tenant's admins add providers (IdentityProvider); identity is the OAuth
// 2.0 client of each. What a provider says about a person (FederatedClaims)
// reaches these rules only after package federation has checked it (the ID
// token's signature, issuer, audience and nonce; the code's PKCE verifier).
// The rules decide which account it logs in to:
//
//   - an account linked to the provider's subject (its stable id for the
//     person, never an email, which the person can change there);
//   - else, when the provider vouches for the email (email_verified) and an
//     account has it, no link is made by email alone: the owner must prove
//     the account (its password, LinkWithPassword) or connect the provider
//     from the account page. Linking on the email would hand the account
//     to whoever controls that address at the provider, and a provider that
//     lets people claim any address would hand it to anyone;
//   - else, when the provider vouches for an email no account has, and both
//     the provider and the tenant's policy allow sign-up, a new account
//     with that verified email and no password;
//   - otherwise a refusal that says the same whether or not an account has
//     the email the provider gave but did not vouch for, so that an
//     upstream account with a made-up address learns nothing.

// ProviderKind says how identity talks to a provider.
type ProviderKind string

// Provider kinds: any OpenID Connect provider, and presets.
const (
	ProviderOIDC      ProviderKind = "oidc"
	ProviderGoogle    ProviderKind = "google"
	ProviderMicrosoft ProviderKind = "microsoft"
	ProviderGitHub    ProviderKind = "github"
)

// IdentityProvider is another identity provider a tenant's users sign in
// with.
type IdentityProvider struct {
	ID          string
	DisplayName string
	Kind        ProviderKind
	// Issuer is the OpenID Connect issuer (ProviderOIDC; optionally one
	// directory's for ProviderMicrosoft); empty for fixed issuers.
	Issuer   string
	ClientID string
	// SealedSecret is the client secret sealed by the Manager's
	// ProviderSecrets, bound to the tenant and the provider's id.
	SealedSecret []byte
	Scopes       []string
	AllowSignup  bool
	Disabled     bool
	CreateTime   time.Time
	UpdateTime   time.Time
	// Version increases with every change; it is the provider's etag.
	Version int64
}

// LinkedIdentity is a person's account at a provider, linked to an account
// here.
type LinkedIdentity struct {
	ProviderID string
	// Subject is the provider's stable id for the person.
	Subject string
	UserID  string
	// Email is what the provider last said, for people to recognise it.
	Email         string
	CreateTime    time.Time
	LastLoginTime time.Time
}

// FederatedClaims is what a provider said about the person who just
// signed in there, after package federation checked it.
type FederatedClaims struct {
	ProviderID string
	Subject    string
	Email      string
	// EmailVerified is true only when the provider vouched for Email.
	EmailVerified bool
	Name          string
}

// FederationTx is what a tenant-scoped transaction can do with identity
// providers and linked identities (part of Tx).
type FederationTx interface {
	IdentityProvider(ctx context.Context, id string, forUpdate bool) (*IdentityProvider, error)
	IdentityProviders(ctx context.Context) ([]*IdentityProvider, error)
	// InsertIdentityProvider returns ErrAlreadyExists for a taken id.
	InsertIdentityProvider(ctx context.Context, p *IdentityProvider) error
	// UpdateIdentityProvider stores p if the stored version is still
	// p.Version, then increments p.Version.
	UpdateIdentityProvider(ctx context.Context, p *IdentityProvider) error
	DeleteIdentityProvider(ctx context.Context, id string) error

	LinkedIdentity(ctx context.Context, providerID, subject string) (*LinkedIdentity, error)
	LinkedIdentitiesOf(ctx context.Context, userID string) ([]*LinkedIdentity, error)
	// InsertLinkedIdentity returns ErrAlreadyExists when the subject is
	// linked already, or the user has an identity of that provider.
	InsertLinkedIdentity(ctx context.Context, l *LinkedIdentity) error
	// TouchLinkedIdentity records a login with the identity and the email
	// the provider gave this time.
	TouchLinkedIdentity(ctx context.Context, providerID, subject, email string, at time.Time) error
	// DeleteLinkedIdentity returns ErrNotFound if the user has no identity
	// of the provider.
	DeleteLinkedIdentity(ctx context.Context, userID, providerID string) error
	// DeleteLinkedIdentitiesOf removes every identity linked through a
	// provider and returns the users they were linked to.
	DeleteLinkedIdentitiesOf(ctx context.Context, providerID string) ([]string, error)
}

// ErrAlreadyExists: a row with the same key exists.
var ErrAlreadyExists = errors.New("already exists")

// Sealer seals and opens identity providers' client secrets (package
// sealbox in production).
type Sealer interface {
	Seal(plain, ad []byte) []byte
	Open(sealed, ad []byte) ([]byte, error)
}

// Audit events of federation. Secrets are never in their details.
const (
	EventIdentityProviderCreated = "identity_provider.created"
	EventIdentityProviderUpdated = "identity_provider.updated"
	EventIdentityProviderDeleted = "identity_provider.deleted"
	EventFederatedLogin          = "federation.logged_in"
	EventFederatedSignUp         = "federation.signed_up"
	EventFederatedLoginRefused   = "federation.login_refused"
	EventIdentityLinked          = "federation.identity_linked"
	EventIdentityUnlinked        = "federation.identity_unlinked"
	// EventIdentityProviderRepointed records a change of a provider's
	// issuer or client_id, and the links it dropped.
	EventIdentityProviderRepointed = "identity_provider.repointed"
)

// Outbox kinds of federation's mails.
const (
	MailIdentityLinked   = "identity_linked"
	MailIdentityUnlinked = "identity_unlinked"
)

// identityProviderField is the request path of a provider's fields in
// violations.
const identityProviderField = "identity_provider."

// maxIdentityProviders bounds a tenant's providers: the login page shows a
// button for each.
const maxIdentityProviders = 50

var (
	providerIDPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)
	// upstreamScopePattern is RFC 6749's scope-token.
	upstreamScopePattern = regexp.MustCompile(`^[\x21\x23-\x5b\x5d-\x7e]{1,200}$`)
	// microsoftIssuerPattern is one Entra ID directory's v2.0 issuer.
	microsoftIssuerPattern = regexp.MustCompile(`^https://login\.microsoftonline\.com/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/v2\.0$`)
)

// IdentityProviderInput describes a provider to add.
type IdentityProviderInput struct {
	ID           string
	DisplayName  string
	Kind         ProviderKind
	Issuer       string
	ClientID     string
	ClientSecret string
	Scopes       []string
	AllowSignup  bool
	Disabled     bool
}

// checkIdentityProvider checks every field of p, and secret when given
// (at creation, or when it changes), naming each field to correct.
func checkIdentityProvider(p *IdentityProvider, secret *string) error {
	var bad fieldErrors
	// Fields are named by their path in the request.
	invalid := func(field, reason, format string, args ...any) {
		bad.add(fault.Invalid(identityProviderField+field, reason, format, args...))
	}
	if !providerIDPattern.MatchString(p.ID) {
		invalid("provider_id", "PROVIDER_ID_INVALID",
			"provider_id must be 1-40 of a-z, 0-9 and '-', starting with a letter, like \"google\" or \"corp-sso\"")
	}
	if strings.TrimSpace(p.DisplayName) == "" || utf8.RuneCountInString(p.DisplayName) > 100 || strings.ContainsAny(p.DisplayName, "\r\n") {
		invalid("display_name", "DISPLAY_NAME_INVALID", "display_name must be one line of 1-100 characters")
	}
	switch p.Kind {
	case ProviderOIDC:
		bad.add(checkIssuer(identityProviderField+"issuer", p.Issuer))
	case ProviderMicrosoft:
		if p.Issuer != "" && !microsoftIssuerPattern.MatchString(p.Issuer) {
			invalid("issuer", "ISSUER_INVALID",
				"for Microsoft, leave issuer empty (any directory) or give one directory's: https://login.microsoftonline.com/{tenant id}/v2.0")
		}
	case ProviderGoogle, ProviderGitHub:
		if p.Issuer != "" {
			invalid("issuer", "ISSUER_NOT_ALLOWED", "%s has a fixed issuer: leave issuer empty", p.Kind)
		}
	default:
		invalid("kind", "PROVIDER_KIND_INVALID", "kind must be KIND_OIDC, KIND_GOOGLE, KIND_MICROSOFT or KIND_GITHUB")
	}
	if p.ClientID == "" || len(p.ClientID) > 255 || strings.ContainsAny(p.ClientID, " \r\n") {
		invalid("client_id", "CLIENT_ID_INVALID", "client_id must be the 1-255 character client id the provider gave you")
	}
	if secret != nil && (*secret == "" || len(*secret) > 1024) {
		invalid("client_secret", "CLIENT_SECRET_INVALID", "client_secret must be the 1-1024 character client secret the provider gave you")
	}
	if len(p.Scopes) > 20 {
		invalid("scopes", "SCOPES_TOO_MANY", "at most 20 scopes")
	}
	for _, s := range p.Scopes {
		if !upstreamScopePattern.MatchString(s) {
			invalid("scopes", "SCOPE_INVALID", "%q is not a scope: 1-200 printable ASCII characters without spaces, quotes or backslashes", s)
			break
		}
	}
	p.Scopes = uniqueInOrder(p.Scopes)
	return bad.err()
}

// checkIssuer checks an OpenID Connect issuer URL (OpenID Connect
// Discovery, section 2): https without query or fragment; http only on
// localhost names, for development and tests.
func checkIssuer(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fault.Invalid(field, "ISSUER_INVALID",
			"issuer must be the provider's issuer URL, like https://login.example.com (no query or fragment)")
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !isLoopbackHost(u.Hostname())) {
		return fault.Invalid(field, "ISSUER_INSECURE", "issuer must use https (http only on localhost names)")
	}
	return nil
}

// secretAD binds a sealed secret to its tenant and provider.
func secretAD(t tenancy.Tenant, providerID string) []byte {
	return []byte("identity provider client secret\x00" + t.UID + "\x00" + providerID)
}

// ProviderSecret opens a provider's client secret.
func (m *Manager) ProviderSecret(t tenancy.Tenant, p *IdentityProvider) (string, error) {
	if m.cfg.ProviderSecrets == nil {
		return "", errors.New("account: no sealer for identity providers' secrets")
	}
	b, err := m.cfg.ProviderSecrets.Open(p.SealedSecret, secretAD(t, p.ID))
	if err != nil {
		return "", internal(err, "open the identity provider's client secret (is TENANTRY_KEY_ENCRYPTION_KEY the one it was stored with?)")
	}
	return string(b), nil
}

func (m *Manager) sealSecret(t tenancy.Tenant, providerID, secret string) ([]byte, error) {
	if m.cfg.ProviderSecrets == nil {
		return nil, fault.New(fault.FailedPrecondition, "IDENTITY_PROVIDERS_UNAVAILABLE",
			"this identity service has no key-encryption key to seal providers' secrets with")
	}
	return m.cfg.ProviderSecrets.Seal([]byte(secret), secretAD(t, providerID)), nil
}

func errIdentityProviderNotFound(id string) error {
	return fault.New(fault.NotFound, "IDENTITY_PROVIDER_NOT_FOUND", "identity provider %q does not exist in this tenant", id)
}

// CreateIdentityProvider adds a provider.
func (m *Manager) CreateIdentityProvider(ctx context.Context, t tenancy.Tenant, in IdentityProviderInput, c Client) (*IdentityProvider, error) {
	now := m.now().Truncate(time.Microsecond)
	p := &IdentityProvider{
		ID: in.ID, DisplayName: in.DisplayName, Kind: in.Kind, Issuer: in.Issuer, ClientID: in.ClientID,
		Scopes: in.Scopes, AllowSignup: in.AllowSignup, Disabled: in.Disabled, CreateTime: now, UpdateTime: now,
	}
	if err := checkIdentityProvider(p, &in.ClientSecret); err != nil {
		return nil, err
	}
	sealed, err := m.sealSecret(t, p.ID, in.ClientSecret)
	if err != nil {
		return nil, err
	}
	p.SealedSecret = sealed
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		// A provider decides who logs in to which account, as an OAuth
		// client decides who gets tokens: the same recent proof.
		if err := m.provenAdmin(ctx, tx, c); err != nil {
			return err
		}
		all, err := tx.IdentityProviders(ctx)
		if err != nil {
			return err
		}
		if len(all) >= maxIdentityProviders {
			return fault.New(fault.FailedPrecondition, "IDENTITY_PROVIDERS_TOO_MANY",
				"a tenant has at most %d identity providers; delete one first", maxIdentityProviders)
		}
		if err := tx.InsertIdentityProvider(ctx, p); errors.Is(err, ErrAlreadyExists) {
			return fault.New(fault.AlreadyExists, "IDENTITY_PROVIDER_EXISTS", "identity provider %q exists already; choose another provider_id", p.ID)
		} else if err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventIdentityProviderCreated, Actor: c.Actor, ClientIP: c.IP, Details: map[string]any{
			"provider_id": p.ID, "kind": p.Kind, "issuer": p.Issuer, "client_id": p.ClientID, "allow_signup": p.AllowSignup,
		}})
	})
	if err != nil {
		return nil, internal(err, "create identity provider")
	}
	return p, nil
}

// IdentityProvider returns one provider.
func (m *Manager) IdentityProvider(ctx context.Context, t tenancy.Tenant, id string) (*IdentityProvider, error) {
	var p *IdentityProvider
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		p, err = tx.IdentityProvider(ctx, id, false)
		if errors.Is(err, ErrNotFound) {
			return errIdentityProviderNotFound(id)
		}
		return err
	})
	if err != nil {
		return nil, internal(err, "get identity provider")
	}
	return p, nil
}

// IdentityProviders lists the tenant's providers by id.
func (m *Manager) IdentityProviders(ctx context.Context, t tenancy.Tenant) ([]*IdentityProvider, error) {
	var all []*IdentityProvider
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		all, err = tx.IdentityProviders(ctx)
		return err
	})
	if err != nil {
		return nil, internal(err, "list identity providers")
	}
	return all, nil
}

// IdentityProviderUpdate lists what may change; nil leaves a field as it
// is. A provider's id and kind never change.
type IdentityProviderUpdate struct {
	DisplayName  *string
	Issuer       *string
	ClientID     *string
	ClientSecret *string
	Scopes       *[]string
	AllowSignup  *bool
	Disabled     *bool
	// Version, when not zero, must match the stored version (the etag).
	Version int64
}

func (up IdentityProviderUpdate) fields() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"display_name", up.DisplayName != nil}, {"issuer", up.Issuer != nil}, {"client_id", up.ClientID != nil},
		{"client_secret", up.ClientSecret != nil}, {"scopes", up.Scopes != nil}, {"allow_signup", up.AllowSignup != nil},
		{"disabled", up.Disabled != nil},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// UpdateIdentityProvider changes a provider.
//
// A new issuer or client_id makes it another provider under the same id:
// the subjects its links are keyed by were given by the old one, and any
// issuer may give any subject, so an admin could otherwise point a
// provider at an issuer of their own and log in to every linked account.
// Such a change therefore drops the provider's links in the same
// transaction (their owners connect the provider again), and must come
// with the new client's secret, so that the stored secret is never sent
// to a token endpoint it was not issued by.
func (m *Manager) UpdateIdentityProvider(ctx context.Context, t tenancy.Tenant, id string, up IdentityProviderUpdate, c Client) (*IdentityProvider, error) {
	var p *IdentityProvider
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.provenAdmin(ctx, tx, c); err != nil {
			return err
		}
		var err error
		p, err = tx.IdentityProvider(ctx, id, true)
		if errors.Is(err, ErrNotFound) {
			return errIdentityProviderNotFound(id)
		}
		if err != nil {
			return err
		}
		if up.Version != 0 && up.Version != p.Version {
			return fault.New(fault.Aborted, "IDENTITY_PROVIDER_CHANGED",
				"identity provider %q changed since you read it; read it again and reapply your change", id)
		}
		oldIssuer, oldClientID := p.Issuer, p.ClientID
		apply(&p.DisplayName, up.DisplayName)
		apply(&p.Issuer, up.Issuer)
		apply(&p.ClientID, up.ClientID)
		apply(&p.Scopes, up.Scopes)
		apply(&p.AllowSignup, up.AllowSignup)
		apply(&p.Disabled, up.Disabled)
		repointed := p.Issuer != oldIssuer || p.ClientID != oldClientID
		if err := checkIdentityProvider(p, up.ClientSecret); err != nil {
			return err
		}
		if repointed && up.ClientSecret == nil {
			return fault.Invalid(identityProviderField+"client_secret", ReasonProviderSecretRequired,
				"a new issuer or client_id needs the client_secret of that client, given in the same update; "+
					"note that it disconnects every account connected to this provider")
		}
		if up.ClientSecret != nil {
			if p.SealedSecret, err = m.sealSecret(t, p.ID, *up.ClientSecret); err != nil {
				return err
			}
		}
		p.UpdateTime = m.now().Truncate(time.Microsecond)
		if err := tx.UpdateIdentityProvider(ctx, p); err != nil {
			return err
		}
		if repointed {
			users, err := tx.DeleteLinkedIdentitiesOf(ctx, p.ID)
			if err != nil {
				return err
			}
			if err := tx.Audit(ctx, AuditEvent{Event: EventIdentityProviderRepointed, Actor: c.Actor, ClientIP: c.IP, Details: map[string]any{
				"provider_id": p.ID, "old_issuer": oldIssuer, "issuer": p.Issuer, "old_client_id": oldClientID, "client_id": p.ClientID,
				"links_removed": len(users),
			}}); err != nil {
				return err
			}
			// Each owner's audit trail and account events (webhooks) show
			// the way in they lost, as an unlink of their own would.
			for _, userID := range users {
				if err := tx.Audit(ctx, AuditEvent{Event: EventIdentityUnlinked, UserID: userID, Actor: c.Actor, ClientIP: c.IP,
					Details: map[string]any{"provider_id": p.ID, "reason": "the provider's issuer or client_id changed"}}); err != nil {
					return err
				}
			}
		}
		return tx.Audit(ctx, AuditEvent{Event: EventIdentityProviderUpdated, Actor: c.Actor, ClientIP: c.IP,
			Details: map[string]any{"provider_id": p.ID, "fields": up.fields()}})
	})
	if err != nil {
		return nil, internal(err, "update identity provider")
	}
	return p, nil
}

// DeleteIdentityProvider removes a provider and every link to it.
func (m *Manager) DeleteIdentityProvider(ctx context.Context, t tenancy.Tenant, id string, c Client) error {
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.provenAdmin(ctx, tx, c); err != nil {
			return err
		}
		if err := tx.DeleteIdentityProvider(ctx, id); errors.Is(err, ErrNotFound) {
			return errIdentityProviderNotFound(id)
		} else if err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventIdentityProviderDeleted, Actor: c.Actor, ClientIP: c.IP,
			Details: map[string]any{"provider_id": id}})
	})
	return internal(err, "delete identity provider")
}

// SignInProviders returns the providers the login page offers: those not
// disabled, by id.
func (m *Manager) SignInProviders(ctx context.Context, t tenancy.Tenant) ([]*IdentityProvider, error) {
	_, providers, err := m.AuthConfig(ctx, t)
	return providers, err
}

// AuthConfig is what a login page needs to know of a tenant: its settings
// and the providers it offers (enabled ones, by id). Its providers may be
// shared with the session cache: never change them.
type AuthConfig struct {
	Settings  Settings
	Providers []*IdentityProvider
}

// AuthConfig returns a tenant's login configuration: from the session
// cache when it has it (kept current by the schemas' announcements of
// changed settings and providers), else in one transaction. It is public
// and asked for by every login page and app start: a transaction per call
// made it a tenth of a health check's rate.
func (m *Manager) AuthConfig(ctx context.Context, t tenancy.Tenant) (Settings, []*IdentityProvider, error) {
	if cfg, ok := m.cfg.Sessions.LookupConfig(t.Schema); ok {
		return cfg.Settings, slices.Clone(cfg.Providers), nil
	}
	ticket := m.cfg.Sessions.Ticket()
	var (
		settings  Settings
		providers []*IdentityProvider
	)
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		if settings, err = tx.Settings(ctx); err != nil {
			return err
		}
		providers, err = tx.IdentityProviders(ctx)
		return err
	})
	if err != nil {
		return Settings{}, nil, internal(err, "read the tenant's login settings")
	}
	m.loginRates.learn(t.UID, settings, m.now())
	providers = slices.DeleteFunc(providers, func(p *IdentityProvider) bool { return p.Disabled })
	m.cfg.Sessions.RememberConfig(ticket, t.Schema, AuthConfig{Settings: settings, Providers: providers})
	return settings, slices.Clone(providers), nil
}

// FederatedOutcome is how a sign-in with a provider ended, when it did not
// fail.
type FederatedOutcome struct {
	// Tokens and User are set when the person is logged in.
	Tokens Tokens
	User   *User
	// ProofNeeded is set instead when an account has the email the provider
	// vouched for but is not linked to the provider: its owner must prove
	// the account before it is linked (LinkWithPassword). PasswordSet says
	// whether the account has a password to prove it with.
	ProofNeeded bool
	PasswordSet bool
	// Challenge is set instead of Tokens when the account has a second
	// factor, or the tenant's policy requires one it has not enrolled: a
	// provider's word replaces the password, not the second factor. The
	// login goes on as a password login's would (VerifyMFA, or the
	// enrolment at login).
	Challenge *MFAChallenge
}

// Reasons of federated sign-ins refused; stable, for pages and clients.
const (
	ReasonFederationNotLinked = "FEDERATED_ACCOUNT_NOT_LINKED"
	ReasonProviderUnavailable = "IDENTITY_PROVIDER_UNAVAILABLE"
	// ReasonProviderSecretRequired refuses a new issuer or client_id
	// without the new client's secret.
	ReasonProviderSecretRequired = "CLIENT_SECRET_REQUIRED"
)

// errNotLinked is every refusal that must not say whether an account has
// the email a provider gave: no verified email, sign-up not allowed.
func errNotLinked(p *IdentityProvider) error {
	return fault.New(fault.PermissionDenied, ReasonFederationNotLinked,
		"this %s account is not connected to an account here, and cannot sign up here by itself; log in another way and connect %s from your account page",
		p.DisplayName, p.DisplayName)
}

// enabledProvider reads a provider that may be used to sign in.
func enabledProvider(ctx context.Context, tx Tx, id string) (*IdentityProvider, error) {
	p, err := tx.IdentityProvider(ctx, id, false)
	if errors.Is(err, ErrNotFound) || (err == nil && p.Disabled) {
		return nil, fault.New(fault.NotFound, ReasonProviderUnavailable, "this tenant offers no sign-in with %q", id)
	}
	return p, err
}

// SignInProvider returns a provider that may be used to sign in now.
func (m *Manager) SignInProvider(ctx context.Context, t tenancy.Tenant, id string) (*IdentityProvider, error) {
	var p *IdentityProvider
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		p, err = enabledProvider(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, internal(err, "read identity provider")
	}
	return p, nil
}

// FederatedLogin logs in, or signs up, the person a provider vouched for
// (see the rules above).
func (m *Manager) FederatedLogin(ctx context.Context, t tenancy.Tenant, claims FederatedClaims, c Client) (FederatedOutcome, error) {
	out, err := m.federatedLogin(ctx, t, claims, c)
	// An account that must be proved first has not logged in yet: its
	// owner's password (LinkWithPassword, a password login) ends it.
	switch {
	case out.Challenge != nil:
		m.cfg.OnLogin(LoginFederated, LoginChallenged)
	case !out.ProofNeeded:
		m.cfg.OnLogin(LoginFederated, loginOutcome(err))
	}
	return out, err
}

// federatedLogin is FederatedLogin, without reporting how it ended.
func (m *Manager) federatedLogin(ctx context.Context, t tenancy.Tenant, claims FederatedClaims, c Client) (FederatedOutcome, error) {
	var out FederatedOutcome
	var refusal string
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		p, err := enabledProvider(ctx, tx, claims.ProviderID)
		if err != nil {
			return err
		}
		link, err := tx.LinkedIdentity(ctx, p.ID, claims.Subject)
		switch {
		case err == nil:
			u, err := tx.UserByID(ctx, link.UserID, true)
			if err != nil {
				return err
			}
			return m.federatedSession(ctx, tx, t, p, u, claims, c, &out)
		case !errors.Is(err, ErrNotFound):
			return err
		}
		email, emailErr := NormalizeEmail("email", claims.Email)
		if !claims.EmailVerified || emailErr != nil {
			refusal = "no verified email"
			return errNotLinked(p)
		}
		existing, err := tx.UserByEmail(ctx, email, false)
		switch {
		case err == nil:
			out.ProofNeeded, out.PasswordSet = true, existing.PasswordHash != ""
			return tx.Audit(ctx, AuditEvent{Event: EventFederatedLoginRefused, UserID: existing.ID, ClientIP: c.IP,
				Details: map[string]any{"provider_id": p.ID, "reason": "account exists, proof of ownership needed"}})
		case !errors.Is(err, ErrNotFound):
			return err
		}
		// Another account's secondary address (emailaddress.go) makes no
		// new account, and is no proof of that account either: logging in
		// takes its primary address.
		if _, err := tx.EmailAddressOwner(ctx, email); err == nil {
			refusal = "the email is a secondary address of another account"
			return errNotLinked(p)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		settings, err := tx.Settings(ctx)
		if err != nil {
			return err
		}
		if !p.AllowSignup || signupAllowed(settings) != nil {
			refusal = "sign-up not allowed"
			return errNotLinked(p)
		}
		now := m.now()
		u := &User{ID: newID(), Email: email, EmailVerified: true, DisplayName: federatedName(claims.Name),
			State: Active, CreateTime: now, UpdateTime: now, Roles: []string{}}
		if err := tx.InsertUser(ctx, u); err != nil {
			return err // a concurrent sign-up took the email: the person tries again and is asked for proof
		}
		if err := tx.InsertLinkedIdentity(ctx, &LinkedIdentity{ProviderID: p.ID, Subject: claims.Subject, UserID: u.ID,
			Email: claims.Email, CreateTime: now}); err != nil {
			return err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventFederatedSignUp, UserID: u.ID, ClientIP: c.IP,
			Details: map[string]any{"provider_id": p.ID}}); err != nil {
			return err
		}
		if err := enqueueMail(ctx, tx, t, welcomeMail(t, u)); err != nil {
			return err
		}
		return m.federatedSession(ctx, tx, t, p, u, claims, c, &out)
	})
	if refusal != "" {
		m.auditOutside(ctx, t, AuditEvent{Event: EventFederatedLoginRefused, ClientIP: c.IP,
			Details: map[string]any{"provider_id": claims.ProviderID, "reason": refusal}})
	}
	if err != nil {
		return FederatedOutcome{}, internal(err, "sign in with identity provider")
	}
	return out, nil
}

// federatedName is the display name a new account gets from a provider's:
// one line, within ValidateDisplayName's bounds, or none.
func federatedName(name string) string {
	name = strings.Join(strings.Fields(name), " ")
	if ValidateDisplayName("display_name", name) != nil {
		return ""
	}
	return name
}

// federatedSession logs u in through provider p, in tx.
func (m *Manager) federatedSession(ctx context.Context, tx Tx, t tenancy.Tenant, p *IdentityProvider, u *User,
	claims FederatedClaims, c Client, out *FederatedOutcome,
) error {
	if u.Disabled {
		return errDisabled
	}
	now := m.now()
	if err := tx.TouchLinkedIdentity(ctx, p.ID, claims.Subject, claims.Email, now); err != nil {
		return err
	}
	totp, passkeys, err := hasSecondFactor(ctx, tx, u.ID)
	if err != nil {
		return err
	}
	settings, err := tx.Settings(ctx)
	if err != nil {
		return err
	}
	if factor := totp != nil || passkeys > 0; factor || settings.MFAPolicy.requires(u) {
		out.Challenge, err = m.issueChallenge(ctx, tx, u, AMRFederated, !factor, settings, c)
		return err
	}
	u.LastLoginTime = now
	if err := tx.RecordLogin(ctx, u.ID, now, ""); err != nil {
		return err
	}
	tokens, err := m.openSession(ctx, tx, t, u, c, AMRFederated)
	if err != nil {
		return err
	}
	out.Tokens, out.User = tokens, u
	return tx.Audit(ctx, AuditEvent{Event: EventFederatedLogin, UserID: u.ID, ClientIP: c.IP,
		Details: map[string]any{"provider_id": p.ID, "session": tokens.SessionID}})
}

// LinkWithPassword links the provider's identity to the account that has
// the email the provider vouched for, once its owner gave the account's
// password, and logs them in. The password is checked by Login, with its
// rate limits and its one answer for every failure. An account with a
// second factor is not linked by its password alone: its owner logs in
// (with the factor) and connects the provider from the account page.
func (m *Manager) LinkWithPassword(ctx context.Context, t tenancy.Tenant, claims FederatedClaims, password string, c Client) (Tokens, *User, error) {
	if !claims.EmailVerified {
		return Tokens{}, nil, errors.New("account: link with password: the provider did not vouch for the email")
	}
	res, err := m.Login(ctx, t, LoginInput{Email: claims.Email, Password: password}, c)
	if err != nil {
		return Tokens{}, nil, err
	}
	if res.Challenged() {
		return Tokens{}, nil, errMFALinkNeedsLogin
	}
	tokens, u := res.Tokens, res.User
	err = m.link(ctx, t, u.ID, tokens.SessionID, claims, "password", false, c)
	if err != nil {
		// The password was right, but the link cannot be made (it was made
		// meanwhile, or the account has another identity of this provider):
		// the session opened to check it ends, so that a failure leaves
		// nothing behind.
		_ = m.Logout(ctx, t, tokens.SessionID, "", c)
		return Tokens{}, nil, err
	}
	return tokens, u, nil
}

// BeginConnectIdentity checks, before the browser is sent to the provider,
// that the user of session sessionID may connect one: the session is open
// and proved its user recently (reauth.go). ConnectIdentity checks it
// again when the provider sends the browser back; this early answer lets
// the account page ask for the proof first (REAUTHENTICATION_REQUIRED).
func (m *Manager) BeginConnectIdentity(ctx context.Context, t tenancy.Tenant, userID, sessionID string) error {
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		return m.requireConnectProof(ctx, tx, userID, sessionID)
	})
	return internal(err, "begin connecting an identity")
}

// requireConnectProof refuses to connect a provider to userID's account
// from session sessionID without a recent proof. A connected provider logs
// in to the account from then on, whatever happens to the session or the
// password: a stolen access token or a session left open must not be
// enough to plant a way in, any more than to add a passkey.
func (m *Manager) requireConnectProof(ctx context.Context, tx Tx, userID, sessionID string) error {
	if sessionID == "" {
		return errSessionEnded // a connection is made from a session, never without
	}
	return m.requireRecentProof(ctx, tx, userID, sessionID, false)
}

// ConnectIdentity links a provider's identity to the account of a logged-in
// user (the account page's "Connect"), if their session proved them
// recently (see requireConnectProof).
func (m *Manager) ConnectIdentity(ctx context.Context, t tenancy.Tenant, userID, sessionID string, claims FederatedClaims, c Client) error {
	return m.link(ctx, t, userID, sessionID, claims, "account page", true, c)
}

// link links claims' identity to userID's account; how names the proof
// for the audit log. checkProof requires the session to have proved its
// user recently (ConnectIdentity); LinkWithPassword's session was opened
// by the password just now, which is the proof. The owner is mailed
// either way, so that a link they did not make does not go unnoticed.
func (m *Manager) link(ctx context.Context, t tenancy.Tenant, userID, sessionID string, claims FederatedClaims, how string, checkProof bool, c Client) error {
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		p, err := enabledProvider(ctx, tx, claims.ProviderID)
		if err != nil {
			return err
		}
		s, u, err := openSession(ctx, tx, sessionID, m.now())
		if err != nil {
			return err
		}
		if s.UserID != userID || s.ClientID != "" {
			return errSessionEnded
		}
		if checkProof {
			if err := m.requireConnectProof(ctx, tx, u.ID, sessionID); err != nil {
				return err
			}
		}
		now := m.now()
		err = tx.InsertLinkedIdentity(ctx, &LinkedIdentity{ProviderID: p.ID, Subject: claims.Subject, UserID: u.ID,
			Email: claims.Email, CreateTime: now})
		if errors.Is(err, ErrAlreadyExists) {
			return fault.New(fault.AlreadyExists, "IDENTITY_ALREADY_LINKED",
				"this %s account is connected to an account here already, or yours is connected to another %s account: disconnect that one first",
				p.DisplayName, p.DisplayName)
		}
		if err != nil {
			return err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventIdentityLinked, UserID: u.ID, ClientIP: c.IP,
			Details: map[string]any{"provider_id": p.ID, "proof": how}}); err != nil {
			return err
		}
		return enqueueMail(ctx, tx, t, identityLinkedMail(t, u.Email, p.DisplayName, claims.Email,
			[]byte(p.ID+"\x00"+claims.Subject+"\x00"+now.String())))
	})
	return internal(err, "link identity")
}

// LinkedIdentities lists a user's linked identities and says whether the
// account has a password.
func (m *Manager) LinkedIdentities(ctx context.Context, t tenancy.Tenant, userID string) ([]*LinkedIdentity, bool, error) {
	var (
		links       []*LinkedIdentity
		passwordSet bool
	)
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		u, err := tx.UserByID(ctx, userID, false)
		if err != nil {
			return err
		}
		passwordSet = u.PasswordHash != ""
		links, err = tx.LinkedIdentitiesOf(ctx, userID)
		return err
	})
	if err != nil {
		return nil, false, internal(err, "list linked identities")
	}
	return links, passwordSet, nil
}

// UnlinkIdentity disconnects one of a user's identities, unless it is
// their last way to log in.
func (m *Manager) UnlinkIdentity(ctx context.Context, t tenancy.Tenant, userID, providerID string, c Client) error {
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		// The user's row is locked first, so that two unlinks of the
		// account's last two identities cannot both see the other left.
		u, err := tx.UserByID(ctx, userID, true)
		if err != nil {
			return err
		}
		links, err := tx.LinkedIdentitiesOf(ctx, userID)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(links, func(l *LinkedIdentity) bool { return l.ProviderID == providerID }) {
			return fault.New(fault.NotFound, "LINKED_IDENTITY_NOT_FOUND", "your account is not connected to %q", providerID)
		}
		if u.PasswordHash == "" && len(links) == 1 {
			return fault.New(fault.FailedPrecondition, "LAST_LOGIN_METHOD",
				"this is the only way to log in to your account: set a password (with \"Forgot password\") or connect another provider first")
		}
		if err := tx.DeleteLinkedIdentity(ctx, userID, providerID); err != nil {
			return err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventIdentityUnlinked, UserID: userID, ClientIP: c.IP,
			Details: map[string]any{"provider_id": providerID}}); err != nil {
			return err
		}
		// The mail names the provider as the account page does.
		name := providerID
		if p, err := tx.IdentityProvider(ctx, providerID, false); err == nil {
			name = p.DisplayName
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		return enqueueMail(ctx, tx, t, identityUnlinkedMail(t, u.Email, name,
			[]byte(userID+"\x00"+providerID+"\x00"+m.now().String())))
	})
	return internal(err, "unlink identity")
}

// identityLinkedMail tells the owner that provider now logs in to their
// account, naming the provider's account by the email the provider gave
// (quoted: it is the provider's word, not an address checked here), when
// it gave one.
func identityLinkedMail(t tenancy.Tenant, to, provider, providerEmail string, key []byte) letter {
	paragraphs := []emails.Text{say("%s was just connected to your account at %s: logging in with %s now logs in to your account, without your password.",
		provider, emails.TenantName, provider)}
	if e, err := NormalizeEmail("email", providerEmail); err == nil {
		paragraphs = append(paragraphs, say("The %s account connected is %q.", provider, e))
	}
	return letter{kind: MailIdentityLinked, to: to, dedupeKey: dedupe(MailIdentityLinked, key), Letter: emails.Letter{
		Subject:    say("A sign-in provider was connected to your account at %s", emails.TenantName),
		Paragraphs: paragraphs,
		After: []emails.Text{say("If it was not you, disconnect %s from your account page at once, reset your password and contact an administrator.",
			provider)},
	}}
}

func identityUnlinkedMail(t tenancy.Tenant, to, provider string, key []byte) letter {
	return letter{kind: MailIdentityUnlinked, to: to, dedupeKey: dedupe(MailIdentityUnlinked, key), Letter: emails.Letter{
		Subject:    say("A sign-in provider was disconnected from your account at %s", emails.TenantName),
		Paragraphs: []emails.Text{say("%s was just disconnected from your account at %s: it no longer logs you in.", provider, emails.TenantName)},
		After:      []emails.Text{say("If it was not you, reset your password at once and contact an administrator.")},
	}}
}
