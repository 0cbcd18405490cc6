package server

import (
	"context"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/federation"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/fieldmask"
)

var _ identityv1.IdentityProviderServiceServer = (*Server)(nil)

const identityProviderCollection = "identityProviders/"

// identityProviderID returns the provider id in a resource name
// "identityProviders/{provider_id}"; its form is the domain's to check (an
// id that cannot exist is simply not found).
func identityProviderID(field, name string) (string, error) {
	id, ok := strings.CutPrefix(name, identityProviderCollection)
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", fault.Invalid(field, "IDENTITY_PROVIDER_NAME_INVALID",
			"%s must be an identity provider's name like identityProviders/google", field)
	}
	return id, nil
}

var providerKindFromProto = map[identityv1.IdentityProvider_Kind]account.ProviderKind{
	identityv1.IdentityProvider_KIND_OIDC:      account.ProviderOIDC,
	identityv1.IdentityProvider_KIND_GOOGLE:    account.ProviderGoogle,
	identityv1.IdentityProvider_KIND_MICROSOFT: account.ProviderMicrosoft,
	identityv1.IdentityProvider_KIND_GITHUB:    account.ProviderGitHub,
}

var providerKindToProto = map[account.ProviderKind]identityv1.IdentityProvider_Kind{}

func init() {
	for k, v := range providerKindFromProto {
		providerKindToProto[v] = k
	}
}

// identityProviderToProto converts p, with the redirect URI to register at
// the provider on t's default host. The secret never leaves.
func (s *Server) identityProviderToProto(t tenancy.Tenant, p *account.IdentityProvider) *identityv1.IdentityProvider {
	return &identityv1.IdentityProvider{
		Name:        identityProviderCollection + p.ID,
		ProviderId:  p.ID,
		DisplayName: p.DisplayName,
		Kind:        providerKindToProto[p.Kind],
		Issuer:      p.Issuer,
		ClientId:    p.ClientID,
		Scopes:      p.Scopes,
		AllowSignup: p.AllowSignup,
		Disabled:    p.Disabled,
		RedirectUri: s.links.URL(t, federation.LoginPath(p.ID)+"/callback", ""),
		CreateTime:  timestamppb.New(p.CreateTime),
		UpdateTime:  timestamppb.New(p.UpdateTime),
		Etag:        etag(p.Version),
	}
}

// CreateIdentityProvider implements IdentityProviderServiceServer.
func (s *Server) CreateIdentityProvider(ctx context.Context, req *identityv1.CreateIdentityProviderRequest) (*identityv1.CreateIdentityProviderResponse, error) {
	in := req.GetIdentityProvider()
	t := tenantFrom(ctx)
	kind, ok := providerKindFromProto[in.GetKind()]
	if !ok {
		kind = account.ProviderKind("unspecified") // refused by the domain's check, with the other fields'
	}
	p, err := s.accounts.CreateIdentityProvider(ctx, t, account.IdentityProviderInput{
		ID: in.GetProviderId(), DisplayName: in.GetDisplayName(), Kind: kind, Issuer: in.GetIssuer(),
		ClientID: in.GetClientId(), ClientSecret: in.GetClientSecret(), Scopes: in.GetScopes(),
		AllowSignup: in.GetAllowSignup(), Disabled: in.GetDisabled(),
	}, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.CreateIdentityProviderResponse{IdentityProvider: s.identityProviderToProto(t, p)}, nil
}

// GetIdentityProvider implements IdentityProviderServiceServer.
func (s *Server) GetIdentityProvider(ctx context.Context, req *identityv1.GetIdentityProviderRequest) (*identityv1.GetIdentityProviderResponse, error) {
	id, err := identityProviderID("name", req.GetName())
	if err != nil {
		return nil, err
	}
	t := tenantFrom(ctx)
	p, err := s.accounts.IdentityProvider(ctx, t, id)
	if err != nil {
		return nil, err
	}
	return &identityv1.GetIdentityProviderResponse{IdentityProvider: s.identityProviderToProto(t, p)}, nil
}

// ListIdentityProviders implements IdentityProviderServiceServer.
func (s *Server) ListIdentityProviders(ctx context.Context, _ *identityv1.ListIdentityProvidersRequest) (*identityv1.ListIdentityProvidersResponse, error) {
	t := tenantFrom(ctx)
	all, err := s.accounts.IdentityProviders(ctx, t)
	if err != nil {
		return nil, err
	}
	resp := &identityv1.ListIdentityProvidersResponse{}
	for _, p := range all {
		resp.IdentityProviders = append(resp.IdentityProviders, s.identityProviderToProto(t, p))
	}
	return resp, nil
}

// identityProviderUpdatable lists the fields UpdateIdentityProvider's mask
// may name, in the order "*" applies them.
var identityProviderUpdatable = []string{"display_name", "issuer", "client_id", "client_secret", "scopes", "allow_signup", "disabled"}

// UpdateIdentityProvider implements IdentityProviderServiceServer.
func (s *Server) UpdateIdentityProvider(ctx context.Context, req *identityv1.UpdateIdentityProviderRequest) (*identityv1.UpdateIdentityProviderResponse, error) {
	in := req.GetIdentityProvider()
	id, err := identityProviderID("identity_provider.name", in.GetName())
	if err != nil {
		return nil, err
	}
	version, err := parseEtag("identity_provider.etag", in.GetEtag())
	if err != nil {
		return nil, err
	}
	paths := fieldmask.Paths(req.GetUpdateMask().GetPaths())
	if len(paths) == 0 {
		return nil, fault.Invalid("update_mask", "UPDATE_MASK_REQUIRED",
			"name the fields to change in update_mask (%s, or * for all of them)", strings.Join(identityProviderUpdatable, ", "))
	}
	if len(paths) == 1 && paths[0] == "*" {
		paths = identityProviderUpdatable
	}
	up := account.IdentityProviderUpdate{Version: version}
	for _, p := range paths {
		switch p {
		case "display_name":
			up.DisplayName = ptr(in.GetDisplayName())
		case "issuer":
			up.Issuer = ptr(in.GetIssuer())
		case "client_id":
			up.ClientID = ptr(in.GetClientId())
		case "client_secret":
			up.ClientSecret = ptr(in.GetClientSecret())
		case "scopes":
			up.Scopes = ptr(in.GetScopes())
		case "allow_signup":
			up.AllowSignup = ptr(in.GetAllowSignup())
		case "disabled":
			up.Disabled = ptr(in.GetDisabled())
		case "provider_id", "kind":
			return nil, fault.Invalid("update_mask", "UPDATE_MASK_INVALID",
				"a provider's %s cannot change (it is in the redirect URI registered at the provider); add a new provider instead", p)
		default:
			return nil, fault.Invalid("update_mask", "UPDATE_MASK_INVALID",
				"field %q cannot be updated: update_mask may name %s, or *", p, strings.Join(identityProviderUpdatable, ", "))
		}
	}
	t := tenantFrom(ctx)
	p, err := s.accounts.UpdateIdentityProvider(ctx, t, id, up, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.UpdateIdentityProviderResponse{IdentityProvider: s.identityProviderToProto(t, p)}, nil
}

// DeleteIdentityProvider implements IdentityProviderServiceServer.
func (s *Server) DeleteIdentityProvider(ctx context.Context, req *identityv1.DeleteIdentityProviderRequest) (*identityv1.DeleteIdentityProviderResponse, error) {
	id, err := identityProviderID("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.accounts.DeleteIdentityProvider(ctx, tenantFrom(ctx), id, clientOf(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.DeleteIdentityProviderResponse{}, nil
}

// ListLinkedIdentities implements AuthServiceServer.
func (s *Server) ListLinkedIdentities(ctx context.Context, _ *identityv1.ListLinkedIdentitiesRequest) (*identityv1.ListLinkedIdentitiesResponse, error) {
	u, _, err := s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	t := tenantFrom(ctx)
	links, passwordSet, err := s.accounts.LinkedIdentities(ctx, t, u.ID)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	if providers, err := s.accounts.IdentityProviders(ctx, t); err == nil {
		for _, p := range providers {
			names[p.ID] = p.DisplayName
		}
	}
	resp := &identityv1.ListLinkedIdentitiesResponse{PasswordSet: passwordSet}
	for _, l := range links {
		li := &identityv1.LinkedIdentity{ProviderId: l.ProviderID, ProviderDisplayName: names[l.ProviderID],
			Email: l.Email, CreateTime: timestamppb.New(l.CreateTime)}
		if !l.LastLoginTime.IsZero() {
			li.LastLoginTime = timestamppb.New(l.LastLoginTime)
		}
		resp.LinkedIdentities = append(resp.LinkedIdentities, li)
	}
	return resp, nil
}

// UnlinkIdentity implements AuthServiceServer.
func (s *Server) UnlinkIdentity(ctx context.Context, req *identityv1.UnlinkIdentityRequest) (*identityv1.UnlinkIdentityResponse, error) {
	u, _, err := s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetProviderId() == "" {
		return nil, fault.Invalid("provider_id", "PROVIDER_ID_REQUIRED", "name the provider to disconnect (provider_id)")
	}
	if err := s.accounts.UnlinkIdentity(ctx, tenantFrom(ctx), u.ID, req.GetProviderId(), clientOf(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.UnlinkIdentityResponse{}, nil
}
