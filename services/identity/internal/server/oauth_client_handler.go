package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/account"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/fieldmask"
)

var _ identityv1.OAuthClientServiceServer = (*Server)(nil)

const oauthClientCollection = "oauthClients/"

var oauthClientIDPattern = regexp.MustCompile(`^` + account.OAuthClientIDPrefix + `[0-9a-f]{32}$`)

// oauthClientID returns the client id in a resource name
// "oauthClients/{client_id}".
func oauthClientID(field, name string) (string, error) {
	id, ok := strings.CutPrefix(name, oauthClientCollection)
	if !ok || !oauthClientIDPattern.MatchString(id) {
		return "", fault.Invalid(field, "OAUTH_CLIENT_NAME_INVALID",
			"%s must be an OAuth client's name like oauthClients/%s0123456789abcdef0123456789abcdef", field, account.OAuthClientIDPrefix)
	}
	return id, nil
}

// CreateOAuthClient implements OAuthClientServiceServer.
func (s *Server) CreateOAuthClient(ctx context.Context, req *identityv1.CreateOAuthClientRequest) (*identityv1.CreateOAuthClientResponse, error) {
	in := req.GetOauthClient()
	lifetime, err := accessTokenLifetime(in)
	if err != nil {
		return nil, err
	}
	c, secret, err := s.accounts.CreateOAuthClient(ctx, tenantFrom(ctx), account.OAuthClientInput{
		DisplayName:            in.GetDisplayName(),
		Type:                   clientTypeFromProto[in.GetType()],
		RedirectURIs:           in.GetRedirectUris(),
		PostLogoutRedirectURIs: in.GetPostLogoutRedirectUris(),
		GrantTypes:             grantTypesFromProto(in.GetGrantTypes()),
		Scopes:                 in.GetAllowedScopes(),
		FirstParty:             in.GetFirstParty(),
		AccessTokenLifetime:    lifetime,
		IDTokenAlg:             signingAlgFromProto(in.GetIdTokenSignedResponseAlg()),
		Disabled:               in.GetDisabled(),
	}, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.CreateOAuthClientResponse{OauthClient: oauthClientToProto(c), ClientSecret: secret}, nil
}

// GetOAuthClient implements OAuthClientServiceServer.
func (s *Server) GetOAuthClient(ctx context.Context, req *identityv1.GetOAuthClientRequest) (*identityv1.GetOAuthClientResponse, error) {
	id, err := oauthClientID("name", req.GetName())
	if err != nil {
		return nil, err
	}
	c, err := s.accounts.OAuthClient(ctx, tenantFrom(ctx), id)
	if err != nil {
		return nil, err
	}
	return &identityv1.GetOAuthClientResponse{OauthClient: oauthClientToProto(c)}, nil
}

// ListOAuthClients implements OAuthClientServiceServer.
func (s *Server) ListOAuthClients(ctx context.Context, req *identityv1.ListOAuthClientsRequest) (*identityv1.ListOAuthClientsResponse, error) {
	limit, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	var q account.OAuthClientQuery
	if req.GetPageToken() != "" {
		if q, err = decodeOAuthClientPageToken(req.GetPageToken()); err != nil {
			return nil, err
		}
	}
	clients, more, err := s.accounts.OAuthClients(ctx, tenantFrom(ctx), q, limit)
	if err != nil {
		return nil, err
	}
	resp := &identityv1.ListOAuthClientsResponse{}
	for _, c := range clients {
		resp.OauthClients = append(resp.OauthClients, oauthClientToProto(c))
	}
	if more {
		last := clients[len(clients)-1]
		resp.NextPageToken = encodeOAuthClientPageToken(account.OAuthClientQuery{AfterCreateTime: last.CreateTime, AfterID: last.ID})
	}
	return resp, nil
}

// oauthClientUpdatable lists the fields UpdateOAuthClient's mask may name,
// in the order "*" applies them.
var oauthClientUpdatable = []string{
	"display_name", "redirect_uris", "post_logout_redirect_uris", "grant_types", "allowed_scopes",
	"first_party", "access_token_lifetime", "id_token_signed_response_alg", "disabled",
}

// UpdateOAuthClient implements OAuthClientServiceServer.
func (s *Server) UpdateOAuthClient(ctx context.Context, req *identityv1.UpdateOAuthClientRequest) (*identityv1.UpdateOAuthClientResponse, error) {
	in := req.GetOauthClient()
	id, err := oauthClientID("oauth_client.name", in.GetName())
	if err != nil {
		return nil, err
	}
	version, err := parseEtag("oauth_client.etag", in.GetEtag())
	if err != nil {
		return nil, err
	}
	paths := fieldmask.Paths(req.GetUpdateMask().GetPaths())
	if len(paths) == 0 {
		return nil, fault.Invalid("update_mask", "UPDATE_MASK_REQUIRED",
			"name the fields to change in update_mask (%s, or * for all of them)", strings.Join(oauthClientUpdatable, ", "))
	}
	if len(paths) == 1 && paths[0] == "*" {
		paths = oauthClientUpdatable
	}
	up := account.OAuthClientUpdate{Version: version}
	for _, p := range paths {
		switch p {
		case "display_name":
			up.DisplayName = ptr(in.GetDisplayName())
		case "redirect_uris":
			up.RedirectURIs = ptr(in.GetRedirectUris())
		case "post_logout_redirect_uris":
			up.PostLogoutRedirectURIs = ptr(in.GetPostLogoutRedirectUris())
		case "grant_types":
			up.GrantTypes = ptr(grantTypesFromProto(in.GetGrantTypes()))
		case "allowed_scopes":
			up.Scopes = ptr(in.GetAllowedScopes())
		case "first_party":
			up.FirstParty = ptr(in.GetFirstParty())
		case "access_token_lifetime":
			lifetime, err := accessTokenLifetime(in)
			if err != nil {
				return nil, err
			}
			up.AccessTokenLifetime = &lifetime
		case "id_token_signed_response_alg":
			up.IDTokenAlg = ptr(signingAlgFromProto(in.GetIdTokenSignedResponseAlg()))
		case "disabled":
			up.Disabled = ptr(in.GetDisabled())
		case "type":
			return nil, fault.Invalid("update_mask", "UPDATE_MASK_INVALID",
				"a client's type cannot change: it decides whether the client has a secret; register a new client of the other type")
		default:
			return nil, fault.Invalid("update_mask", "UPDATE_MASK_INVALID",
				"field %q cannot be updated: update_mask may name %s, or *", p, strings.Join(oauthClientUpdatable, ", "))
		}
	}
	c, err := s.accounts.UpdateOAuthClient(ctx, tenantFrom(ctx), id, up, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.UpdateOAuthClientResponse{OauthClient: oauthClientToProto(c)}, nil
}

// DeleteOAuthClient implements OAuthClientServiceServer.
func (s *Server) DeleteOAuthClient(ctx context.Context, req *identityv1.DeleteOAuthClientRequest) (*identityv1.DeleteOAuthClientResponse, error) {
	id, err := oauthClientID("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.accounts.DeleteOAuthClient(ctx, tenantFrom(ctx), id, clientOf(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.DeleteOAuthClientResponse{}, nil
}

// RotateOAuthClientSecret implements OAuthClientServiceServer.
func (s *Server) RotateOAuthClientSecret(ctx context.Context, req *identityv1.RotateOAuthClientSecretRequest) (*identityv1.RotateOAuthClientSecretResponse, error) {
	id, err := oauthClientID("name", req.GetName())
	if err != nil {
		return nil, err
	}
	c, secret, err := s.accounts.RotateOAuthClientSecret(ctx, tenantFrom(ctx), id, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.RotateOAuthClientSecretResponse{OauthClient: oauthClientToProto(c), ClientSecret: secret}, nil
}

// accessTokenLifetime reads a client's access token lifetime; unset is 0,
// the default. Its range is the domain's to check.
func accessTokenLifetime(c *identityv1.OAuthClient) (time.Duration, error) {
	d := c.GetAccessTokenLifetime()
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, fault.Invalid("oauth_client.access_token_lifetime", "ACCESS_TOKEN_LIFETIME_INVALID",
			"oauth_client.access_token_lifetime is not a valid duration; give whole seconds like \"900s\"")
	}
	return d.AsDuration(), nil
}

var clientTypeFromProto = map[identityv1.OAuthClient_Type]account.ClientType{
	identityv1.OAuthClient_TYPE_CONFIDENTIAL: account.ClientConfidential,
	identityv1.OAuthClient_TYPE_PUBLIC:       account.ClientPublic,
}

var grantTypeFromProto = map[identityv1.OAuthClient_GrantType]account.GrantType{
	identityv1.OAuthClient_GRANT_TYPE_AUTHORIZATION_CODE: account.GrantAuthorizationCode,
	identityv1.OAuthClient_GRANT_TYPE_REFRESH_TOKEN:      account.GrantRefreshToken,
	identityv1.OAuthClient_GRANT_TYPE_CLIENT_CREDENTIALS: account.GrantClientCredentials,
}

var clientTypeToProto = map[account.ClientType]identityv1.OAuthClient_Type{
	account.ClientConfidential: identityv1.OAuthClient_TYPE_CONFIDENTIAL,
	account.ClientPublic:       identityv1.OAuthClient_TYPE_PUBLIC,
}

var grantTypeToProto = map[account.GrantType]identityv1.OAuthClient_GrantType{
	account.GrantAuthorizationCode: identityv1.OAuthClient_GRANT_TYPE_AUTHORIZATION_CODE,
	account.GrantRefreshToken:      identityv1.OAuthClient_GRANT_TYPE_REFRESH_TOKEN,
	account.GrantClientCredentials: identityv1.OAuthClient_GRANT_TYPE_CLIENT_CREDENTIALS,
}

// grantTypesFromProto converts grant types; one that is unspecified or
// unknown becomes "", which the domain refuses with the others' faults.
func grantTypesFromProto(in []identityv1.OAuthClient_GrantType) []account.GrantType {
	out := make([]account.GrantType, len(in))
	for i, g := range in {
		out[i] = grantTypeFromProto[g]
	}
	return out
}

// signingAlgFromProto converts an ID token algorithm: unspecified is ""
// (the default), an unknown value one the domain refuses.
func signingAlgFromProto(a identityv1.OAuthClient_SigningAlgorithm) account.SigningAlg {
	switch a {
	case identityv1.OAuthClient_SIGNING_ALGORITHM_UNSPECIFIED:
		return ""
	case identityv1.OAuthClient_SIGNING_ALGORITHM_RS256:
		return account.SigningRS256
	case identityv1.OAuthClient_SIGNING_ALGORITHM_EDDSA:
		return account.SigningEdDSA
	}
	return account.SigningAlg(a.String())
}

func oauthClientToProto(c *account.OAuthClient) *identityv1.OAuthClient {
	out := &identityv1.OAuthClient{
		Name:                   oauthClientCollection + c.ID,
		ClientId:               c.ID,
		DisplayName:            c.DisplayName,
		RedirectUris:           c.RedirectURIs,
		PostLogoutRedirectUris: c.PostLogoutRedirectURIs,
		AllowedScopes:          c.Scopes,
		FirstParty:             c.FirstParty,
		Disabled:               c.Disabled,
		CreateTime:             ts(c.CreateTime),
		UpdateTime:             ts(c.UpdateTime),
		SecretCreateTime:       ts(c.SecretCreateTime),
		Etag:                   etag(c.Version),
	}
	out.Type = clientTypeToProto[c.Type]
	for _, g := range c.GrantTypes {
		out.GrantTypes = append(out.GrantTypes, grantTypeToProto[g])
	}
	if c.AccessTokenLifetime != 0 {
		out.AccessTokenLifetime = durationpb.New(c.AccessTokenLifetime)
	}
	switch c.IDTokenAlg {
	case account.SigningEdDSA:
		out.IdTokenSignedResponseAlg = identityv1.OAuthClient_SIGNING_ALGORITHM_EDDSA
	default:
		out.IdTokenSignedResponseAlg = identityv1.OAuthClient_SIGNING_ALGORITHM_RS256
	}
	return out
}

// oauthClientPageToken is where the next page of ListOAuthClients starts:
// after the client created at T (Unix microseconds, PostgreSQL's
// precision) with id ID.
type oauthClientPageToken struct {
	T  int64  `json:"t"`
	ID string `json:"i"`
}

func encodeOAuthClientPageToken(q account.OAuthClientQuery) string {
	b, _ := json.Marshal(oauthClientPageToken{T: q.AfterCreateTime.UnixMicro(), ID: q.AfterID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeOAuthClientPageToken(s string) (account.OAuthClientQuery, error) {
	invalid := fault.Invalid("page_token", "INVALID_PAGE_TOKEN", "page_token is not one this service returned; start again without it")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 256 {
		return account.OAuthClientQuery{}, invalid
	}
	var tok oauthClientPageToken
	if err := json.Unmarshal(b, &tok); err != nil || !oauthClientIDPattern.MatchString(tok.ID) {
		return account.OAuthClientQuery{}, invalid
	}
	return account.OAuthClientQuery{AfterCreateTime: time.UnixMicro(tok.T).UTC(), AfterID: tok.ID}, nil
}
