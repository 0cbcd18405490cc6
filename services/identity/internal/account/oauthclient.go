package account

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"slices"
	"time"

	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// ClientType says whether an OAuth client can keep a secret (RFC 6749,
// section 2.1).
type ClientType string

// Client types.
const (
	// ClientConfidential keeps a secret on a server and authenticates with it.
	ClientConfidential ClientType = "CONFIDENTIAL"
	// ClientPublic runs where its users can read its code (a browser or
	// native app): it has no secret and proves itself with PKCE.
	ClientPublic ClientType = "PUBLIC"
)

// GrantType is a way an OAuth client may get tokens, by its OAuth name.
type GrantType string

// Grant types a client may be allowed.
const (
	GrantAuthorizationCode GrantType = "authorization_code"
	GrantRefreshToken      GrantType = "refresh_token"
	GrantClientCredentials GrantType = "client_credentials"
)

// SigningAlg is the JWS algorithm of a client's ID tokens.
type SigningAlg string

// ID token signing algorithms. RS256 is the default: OpenID Connect
// requires every relying party to support it, while EdDSA support varies.
const (
	SigningRS256 SigningAlg = "RS256"
	SigningEdDSA SigningAlg = "EdDSA"
)

// OAuthClient is an application registered in one tenant to sign its users
// in (OAuth 2.0 and OpenID Connect) or, as a service, to get tokens of its
// own.
type OAuthClient struct {
	ID          string
	DisplayName string
	Type        ClientType
	// SecretHash is the SHA-256 of a confidential client's secret; nil for
	// a public client. The secret itself is never stored.
	SecretHash       []byte
	SecretCreateTime time.Time
	// RedirectURIs and PostLogoutRedirectURIs are matched exactly.
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []GrantType
	Scopes                 []string
	// FirstParty clients are the tenant's own: no consent is asked.
	FirstParty bool
	// AccessTokenLifetime is zero for the service's default.
	AccessTokenLifetime time.Duration
	IDTokenAlg          SigningAlg
	Disabled            bool
	CreateTime          time.Time
	UpdateTime          time.Time
	// Version increases with every change; it is the client's etag.
	Version int64
}

// HasGrant reports whether the client may use a grant type.
func (c *OAuthClient) HasGrant(g GrantType) bool { return slices.Contains(c.GrantTypes, g) }

// OAuthClientQuery selects a page of clients, in the order of their
// creation: those after (AfterCreateTime, AfterID), or from the first when
// AfterID is empty.
type OAuthClientQuery struct {
	AfterCreateTime time.Time
	AfterID         string
}

// OAuthClientTx is what a tenant-scoped transaction can do with the
// tenant's OAuth clients (part of Tx).
type OAuthClientTx interface {
	OAuthClient(ctx context.Context, id string, forUpdate bool) (*OAuthClient, error)
	InsertOAuthClient(ctx context.Context, c *OAuthClient) error
	// UpdateOAuthClient stores c if the stored version is still c.Version,
	// then increments c.Version.
	UpdateOAuthClient(ctx context.Context, c *OAuthClient) error
	DeleteOAuthClient(ctx context.Context, id string) error
	ListOAuthClients(ctx context.Context, q OAuthClientQuery, limit int) ([]*OAuthClient, error)
}

// Audit events of OAuth clients. The secret is never in their details.
const (
	EventOAuthClientCreated       = "oauth_client.created"
	EventOAuthClientUpdated       = "oauth_client.updated"
	EventOAuthClientDeleted       = "oauth_client.deleted"
	EventOAuthClientSecretRotated = "oauth_client.secret_rotated"
)

// OAuthClientIDPrefix starts every client id, so that one is recognised
// wherever it is pasted; clientSecretPrefix does the same for secrets
// (secret scanners can look for it).
const (
	OAuthClientIDPrefix = "oc_"
	clientSecretPrefix  = "ocs_"
)

// newOAuthClientID returns "oc_" and 128 random bits in hexadecimal: not
// guessable (a client id is not a secret, but nobody should find another
// tenant's clients by counting), safe in URLs and resource names, and
// without letters whose case a person could get wrong.
func newOAuthClientID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return OAuthClientIDPrefix + hex.EncodeToString(b)
}

// newClientSecret returns a client secret and the hash it is stored as.
//
// The secret has 256 random bits (newSecret), so one SHA-256 is enough to
// keep it: nobody can search 2^256 candidates for a hash that leaked,
// which is the attack a slow password hash (argon2id) is there to slow
// down. A slow hash would only cost the token endpoint CPU on every call
// of a confidential client, for no protection. Clients never choose their
// secret, so no low-entropy secret can reach this hash.
func newClientSecret() (string, []byte) {
	s, _ := newSecret()
	s = clientSecretPrefix + s
	return s, hashSecret(s)
}

// OAuthClientInput describes a client to register.
type OAuthClientInput struct {
	DisplayName            string
	Type                   ClientType
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []GrantType
	Scopes                 []string
	FirstParty             bool
	AccessTokenLifetime    time.Duration
	IDTokenAlg             SigningAlg // empty: SigningRS256
	Disabled               bool
}

// CreateOAuthClient registers a client. For a confidential client it
// returns the client secret, which is stored only as a hash: this answer is
// the one place it ever appears. A public client gets none.
func (m *Manager) CreateOAuthClient(ctx context.Context, t tenancy.Tenant, in OAuthClientInput, c Client) (*OAuthClient, string, error) {
	// Microseconds, as PostgreSQL keeps them: the client returned now and
	// the one read later show the same times.
	now := m.now().Truncate(time.Microsecond)
	client := &OAuthClient{
		ID:                     newOAuthClientID(),
		DisplayName:            in.DisplayName,
		Type:                   in.Type,
		RedirectURIs:           in.RedirectURIs,
		PostLogoutRedirectURIs: in.PostLogoutRedirectURIs,
		GrantTypes:             in.GrantTypes,
		Scopes:                 in.Scopes,
		FirstParty:             in.FirstParty,
		AccessTokenLifetime:    in.AccessTokenLifetime,
		IDTokenAlg:             in.IDTokenAlg,
		Disabled:               in.Disabled,
		CreateTime:             now,
		UpdateTime:             now,
	}
	if err := checkOAuthClient(client); err != nil {
		return nil, "", err
	}
	var secret string
	if client.Type == ClientConfidential {
		secret, client.SecretHash = newClientSecret()
		client.SecretCreateTime = now
	}
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.provenAdmin(ctx, tx, c); err != nil {
			return err
		}
		if err := tx.InsertOAuthClient(ctx, client); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventOAuthClientCreated, Actor: c.Actor, ClientIP: c.IP, Details: map[string]any{
			"client_id": client.ID, "type": client.Type, "grant_types": client.GrantTypes,
			"redirect_uris": client.RedirectURIs, "first_party": client.FirstParty,
		}})
	})
	if err != nil {
		return nil, "", internal(err, "create OAuth client")
	}
	return client, secret, nil
}

func errOAuthClientNotFound(id string) error {
	return fault.New(fault.NotFound, "OAUTH_CLIENT_NOT_FOUND", "OAuth client %q does not exist in this tenant", id)
}

// OAuthClient returns one client.
func (m *Manager) OAuthClient(ctx context.Context, t tenancy.Tenant, id string) (*OAuthClient, error) {
	var client *OAuthClient
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		client, err = oauthClient(ctx, tx, id, false)
		return err
	})
	if err != nil {
		return nil, internal(err, "get OAuth client")
	}
	return client, nil
}

// OAuthClients lists clients in the order of their creation, up to limit,
// and says whether more follow.
func (m *Manager) OAuthClients(ctx context.Context, t tenancy.Tenant, q OAuthClientQuery, limit int) ([]*OAuthClient, bool, error) {
	var clients []*OAuthClient
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		clients, err = tx.ListOAuthClients(ctx, q, limit+1)
		return err
	})
	if err != nil {
		return nil, false, internal(err, "list OAuth clients")
	}
	if len(clients) > limit {
		return clients[:limit], true, nil
	}
	return clients, false, nil
}

// OAuthClientUpdate lists what may change; nil leaves a field as it is. A
// client's type never changes: it decides whether the client has a secret.
type OAuthClientUpdate struct {
	DisplayName            *string
	RedirectURIs           *[]string
	PostLogoutRedirectURIs *[]string
	GrantTypes             *[]GrantType
	Scopes                 *[]string
	FirstParty             *bool
	AccessTokenLifetime    *time.Duration
	IDTokenAlg             *SigningAlg // empty: back to SigningRS256
	Disabled               *bool
	// Version, when not zero, must match the stored version (the etag).
	Version int64
}

// fields names the fields an update changes, for the audit log.
func (up OAuthClientUpdate) fields() []string {
	var out []string
	for name, set := range map[string]bool{
		"display_name": up.DisplayName != nil, "redirect_uris": up.RedirectURIs != nil,
		"post_logout_redirect_uris": up.PostLogoutRedirectURIs != nil, "grant_types": up.GrantTypes != nil,
		"allowed_scopes": up.Scopes != nil, "first_party": up.FirstParty != nil,
		"access_token_lifetime": up.AccessTokenLifetime != nil, "id_token_signed_response_alg": up.IDTokenAlg != nil,
		"disabled": up.Disabled != nil,
	} {
		if set {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// UpdateOAuthClient applies an administrator's change. The client as it
// will be is checked as a whole, so a change that breaks a rule between
// fields (dropping the last redirect URI of a client with the
// authorization_code grant, say) is refused naming every field to fix.
func (m *Manager) UpdateOAuthClient(ctx context.Context, t tenancy.Tenant, id string, up OAuthClientUpdate, c Client) (*OAuthClient, error) {
	var client *OAuthClient
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.provenAdmin(ctx, tx, c); err != nil {
			return err
		}
		cl, err := oauthClient(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if up.Version != 0 && up.Version != cl.Version {
			return errOAuthClientChanged(id)
		}
		apply(&cl.DisplayName, up.DisplayName)
		apply(&cl.RedirectURIs, up.RedirectURIs)
		apply(&cl.PostLogoutRedirectURIs, up.PostLogoutRedirectURIs)
		apply(&cl.GrantTypes, up.GrantTypes)
		apply(&cl.Scopes, up.Scopes)
		apply(&cl.FirstParty, up.FirstParty)
		apply(&cl.AccessTokenLifetime, up.AccessTokenLifetime)
		apply(&cl.IDTokenAlg, up.IDTokenAlg)
		apply(&cl.Disabled, up.Disabled)
		if err := checkOAuthClient(cl); err != nil {
			return err
		}
		cl.UpdateTime = m.now().Truncate(time.Microsecond)
		if err := tx.UpdateOAuthClient(ctx, cl); err != nil {
			if errors.Is(err, ErrVersionMismatch) {
				return errOAuthClientChanged(id)
			}
			return err
		}
		client = cl
		return tx.Audit(ctx, AuditEvent{Event: EventOAuthClientUpdated, Actor: c.Actor, ClientIP: c.IP,
			Details: map[string]any{"client_id": id, "fields": up.fields()}})
	})
	if err != nil {
		return nil, internal(err, "update OAuth client")
	}
	return client, nil
}

// oauthClient reads client id in tx (locked for update with forUpdate),
// NOT_FOUND when the tenant has no such client.
func oauthClient(ctx context.Context, tx Tx, id string, forUpdate bool) (*OAuthClient, error) {
	cl, err := tx.OAuthClient(ctx, id, forUpdate)
	if errors.Is(err, ErrNotFound) {
		return nil, errOAuthClientNotFound(id)
	}
	return cl, err
}

func apply[T any](field *T, v *T) {
	if v != nil {
		*field = *v
	}
}

func errOAuthClientChanged(id string) error {
	return fault.New(fault.Aborted, "ETAG_MISMATCH", "OAuth client %q changed since it was read; read it again and retry", id)
}

// DeleteOAuthClient deletes a client: it can no longer authenticate or be
// named in an authorization request.
func (m *Manager) DeleteOAuthClient(ctx context.Context, t tenancy.Tenant, id string, c Client) error {
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.provenAdmin(ctx, tx, c); err != nil {
			return err
		}
		cl, err := oauthClient(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if err := tx.DeleteOAuthClient(ctx, id); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventOAuthClientDeleted, Actor: c.Actor, ClientIP: c.IP,
			Details: map[string]any{"client_id": id, "display_name": cl.DisplayName}})
	})
	return internal(err, "delete OAuth client")
}

// RotateOAuthClientSecret gives a confidential client a new secret and
// returns it, the one time it appears. The old secret stops working when
// this commits: a secret that leaked is dead at once, and the client's
// operators deploy the new one.
func (m *Manager) RotateOAuthClientSecret(ctx context.Context, t tenancy.Tenant, id string, c Client) (*OAuthClient, string, error) {
	var (
		client *OAuthClient
		secret string
	)
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.provenAdmin(ctx, tx, c); err != nil {
			return err
		}
		cl, err := oauthClient(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if cl.Type != ClientConfidential {
			return fault.New(fault.FailedPrecondition, "OAUTH_CLIENT_PUBLIC",
				"OAuth client %q is a public client, which has no secret (it proves itself with PKCE); register a confidential client for a server that keeps a secret", id)
		}
		now := m.now().Truncate(time.Microsecond)
		secret, cl.SecretHash = newClientSecret()
		cl.SecretCreateTime, cl.UpdateTime = now, now
		if err := tx.UpdateOAuthClient(ctx, cl); err != nil {
			return err
		}
		client = cl
		return tx.Audit(ctx, AuditEvent{Event: EventOAuthClientSecretRotated, Actor: c.Actor, ClientIP: c.IP,
			Details: map[string]any{"client_id": id}})
	})
	if err != nil {
		return nil, "", internal(err, "rotate OAuth client secret")
	}
	return client, secret, nil
}

// errInvalidClient is the one answer to every failed client
// authentication, as OAuth's invalid_client is: it does not say whether the
// client exists, is disabled, is public or had another secret.
var errInvalidClient = fault.New(fault.Unauthenticated, "INVALID_CLIENT",
	"client authentication failed: the client id and secret do not match an enabled confidential client of this tenant")

// VerifyClientSecret authenticates a confidential client by its id and
// secret (HTTP Basic or client_secret_post at the token endpoint) and
// returns it. Unknown, public and disabled clients and wrong secrets all
// get errInvalidClient.
//
// The secret is compared by its SHA-256 in constant time, and an unknown
// client costs the same hash and comparison as a known one. Client ids
// are not secret, so this hides no more than a wrong secret's answer
// would; what it must not reveal is how much of a secret was right.
// Callers must still limit the rate of attempts per client and address.
func (m *Manager) VerifyClientSecret(ctx context.Context, t tenancy.Tenant, clientID, secret string) (*OAuthClient, error) {
	if clientID == "" || secret == "" || len(clientID) > 64 || len(secret) > 256 {
		return nil, errInvalidClient
	}
	var client *OAuthClient
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		client, err = tx.OAuthClient(ctx, clientID, false)
		if errors.Is(err, ErrNotFound) {
			client, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, internal(err, "verify OAuth client secret")
	}
	if err := CheckClientSecret(client, secret); err != nil {
		return nil, err
	}
	return client, nil
}

// CheckClientSecret checks secret against a client already read (nil for
// one that does not exist, which costs the same hash and comparison), as
// VerifyClientSecret does after its read.
func CheckClientSecret(client *OAuthClient, secret string) error {
	if secret == "" || len(secret) > 256 {
		return errInvalidClient
	}
	stored := noSecretHash[:]
	if client != nil && client.Type == ClientConfidential && len(client.SecretHash) == len(noSecretHash) {
		stored = client.SecretHash
	}
	match := subtle.ConstantTimeCompare(hashSecret(secret), stored) == 1
	if !match || client == nil || client.Type != ClientConfidential || client.Disabled {
		return errInvalidClient
	}
	return nil
}

// noSecretHash stands in for the hash of a client that has none, so that
// such a client costs the same comparison. No secret hashes to it (it is
// not a SHA-256 anyone knows a preimage of), and the checks after the
// comparison refuse such a client regardless.
var noSecretHash = [32]byte{}
