package server

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/account"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/restgateway"
)

// passkeyServer implements PasskeyService: thin handlers over the account
// manager's passkey ceremonies (account/passkey.go).
type passkeyServer struct {
	identityv1.UnimplementedPasskeyServiceServer
	s *Server
}

var _ identityv1.PasskeyServiceServer = (*passkeyServer)(nil)

// metadataTenantAuthority is the host of a REST call with the port the
// browser asked for, if any ("acme.localhost:8080"): the origin the browser
// reports holds it, while x-tenant-host has the host alone.
const metadataTenantAuthority = "x-tenant-authority"

// withAuthority adds the request's authority to the metadata md gives the
// gateway's calls (the gateway's keys replace whatever the client sent).
func withAuthority(md func(r *http.Request) map[string]string) func(r *http.Request) map[string]string {
	return func(r *http.Request) map[string]string {
		out := md(r)
		out[metadataTenantAuthority] = restgateway.RequestAuthority(r)
		return out
	}
}

// relyingPartyOf is the relying party of the current call: the tenant host
// it came in on (the REST gateway passes the HTTP request's host as
// x-tenant-host; the tenant interceptor resolved the tenant from it, so it
// is one of the tenant's domains), with the port of its authority when the
// browser named one. A call naming its tenant by slug only has no host to
// bind a passkey to.
func relyingPartyOf(ctx context.Context) (account.RelyingParty, error) {
	named, err := tenancy.NamedIn(ctx)
	if err != nil {
		return account.RelyingParty{}, err
	}
	host := named.Host
	if authority := firstValue(ctx, metadataTenantAuthority); authority != "" && named.Host != "" {
		// Only the port is taken from it: the host stays the one the
		// tenant was resolved from.
		if h, port, err := net.SplitHostPort(authority); err == nil && strings.EqualFold(h, named.Host) {
			host = net.JoinHostPort(named.Host, port)
		}
	}
	return account.RelyingPartyOf(host)
}

// optionsToProto turns the options go-webauthn made into the JSON object
// the browser takes.
func optionsToProto(o account.PasskeyOptions) (*structpb.Struct, error) {
	var out structpb.Struct
	if err := protojson.Unmarshal(o.Options, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// credentialOf is the JSON of a credential a client sent.
func credentialOf(c *structpb.Struct) ([]byte, error) {
	if c == nil || len(c.GetFields()) == 0 {
		return nil, nil
	}
	raw, err := protojson.Marshal(c)
	if err != nil {
		return nil, fault.Invalid("credential", "PASSKEY_CREDENTIAL_MALFORMED", "give the credential as PublicKeyCredential.toJSON() makes it")
	}
	// protojson writes numbers as doubles; WebAuthn's JSON has none a
	// double cannot hold, and go-webauthn reads the rest as it is.
	return json.RawMessage(raw), nil
}

func (p *passkeyServer) expiresIn(t time.Time) int64 {
	return int64(t.Sub(p.s.now()).Round(time.Second).Seconds())
}

// BeginPasskeyRegistration implements PasskeyServiceServer.
func (p *passkeyServer) BeginPasskeyRegistration(ctx context.Context, _ *identityv1.BeginPasskeyRegistrationRequest) (*identityv1.BeginPasskeyRegistrationResponse, error) {
	u, _, err := p.s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	rp, err := relyingPartyOf(ctx)
	if err != nil {
		return nil, err
	}
	o, err := p.s.accounts.BeginPasskeyRegistration(ctx, tenantFrom(ctx), rp, u.ID, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	options, err := optionsToProto(o)
	if err != nil {
		return nil, err
	}
	return &identityv1.BeginPasskeyRegistrationResponse{Options: options, CeremonyToken: o.Token, ExpiresIn: p.expiresIn(o.Expires)}, nil
}

// FinishPasskeyRegistration implements PasskeyServiceServer.
func (p *passkeyServer) FinishPasskeyRegistration(ctx context.Context, req *identityv1.FinishPasskeyRegistrationRequest) (*identityv1.FinishPasskeyRegistrationResponse, error) {
	u, _, err := p.s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	rp, err := relyingPartyOf(ctx)
	if err != nil {
		return nil, err
	}
	cred, err := credentialOf(req.GetCredential())
	if err != nil {
		return nil, err
	}
	k, err := p.s.accounts.FinishPasskeyRegistration(ctx, tenantFrom(ctx), rp, u.ID, req.GetCeremonyToken(), cred, req.GetDisplayName(), clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.FinishPasskeyRegistrationResponse{Passkey: passkeyToProto(k)}, nil
}

// ListPasskeys implements PasskeyServiceServer.
func (p *passkeyServer) ListPasskeys(ctx context.Context, _ *identityv1.ListPasskeysRequest) (*identityv1.ListPasskeysResponse, error) {
	u, _, err := p.s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	all, err := p.s.accounts.Passkeys(ctx, tenantFrom(ctx), u.ID)
	if err != nil {
		return nil, err
	}
	out := &identityv1.ListPasskeysResponse{}
	for _, k := range all {
		out.Passkeys = append(out.Passkeys, passkeyToProto(k))
	}
	return out, nil
}

// RenamePasskey implements PasskeyServiceServer.
func (p *passkeyServer) RenamePasskey(ctx context.Context, req *identityv1.RenamePasskeyRequest) (*identityv1.RenamePasskeyResponse, error) {
	u, _, err := p.s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	k, err := p.s.accounts.RenamePasskey(ctx, tenantFrom(ctx), u.ID, req.GetId(), req.GetDisplayName(), clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.RenamePasskeyResponse{Passkey: passkeyToProto(k)}, nil
}

// DeletePasskey implements PasskeyServiceServer.
func (p *passkeyServer) DeletePasskey(ctx context.Context, req *identityv1.DeletePasskeyRequest) (*identityv1.DeletePasskeyResponse, error) {
	u, _, err := p.s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.s.accounts.DeletePasskey(ctx, tenantFrom(ctx), u.ID, req.GetId(), clientOf(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.DeletePasskeyResponse{}, nil
}

// BeginPasskeyLogin implements PasskeyServiceServer.
func (p *passkeyServer) BeginPasskeyLogin(ctx context.Context, _ *identityv1.BeginPasskeyLoginRequest) (*identityv1.BeginPasskeyLoginResponse, error) {
	rp, err := relyingPartyOf(ctx)
	if err != nil {
		return nil, err
	}
	o, err := p.s.accounts.BeginPasskeyLogin(ctx, tenantFrom(ctx), rp, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	options, err := optionsToProto(o)
	if err != nil {
		return nil, err
	}
	return &identityv1.BeginPasskeyLoginResponse{Options: options, CeremonyToken: o.Token, ExpiresIn: p.expiresIn(o.Expires)}, nil
}

// FinishPasskeyLogin implements PasskeyServiceServer.
func (p *passkeyServer) FinishPasskeyLogin(ctx context.Context, req *identityv1.FinishPasskeyLoginRequest) (*identityv1.FinishPasskeyLoginResponse, error) {
	rp, err := relyingPartyOf(ctx)
	if err != nil {
		return nil, err
	}
	cred, err := credentialOf(req.GetCredential())
	if err != nil {
		return nil, err
	}
	res, err := p.s.accounts.FinishPasskeyLogin(ctx, tenantFrom(ctx), rp, req.GetCeremonyToken(), cred, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	l := tokensToLogin(res.Tokens, res.User, p.s.now())
	return &identityv1.FinishPasskeyLoginResponse{
		AccessToken: l.AccessToken, RefreshToken: l.RefreshToken, ExpiresIn: l.ExpiresIn, TokenType: l.TokenType, User: l.User,
	}, nil
}

// BeginPasskeyMfa implements PasskeyServiceServer.
func (p *passkeyServer) BeginPasskeyMfa(ctx context.Context, req *identityv1.BeginPasskeyMfaRequest) (*identityv1.BeginPasskeyMfaResponse, error) {
	rp, err := relyingPartyOf(ctx)
	if err != nil {
		return nil, err
	}
	o, err := p.s.accounts.BeginPasskeyMFA(ctx, tenantFrom(ctx), rp, req.GetMfaChallenge(), clientOf(ctx))
	if err != nil {
		return nil, err
	}
	options, err := optionsToProto(o)
	if err != nil {
		return nil, err
	}
	return &identityv1.BeginPasskeyMfaResponse{Options: options, CeremonyToken: o.Token, ExpiresIn: p.expiresIn(o.Expires)}, nil
}

// FinishPasskeyMfa implements PasskeyServiceServer.
func (p *passkeyServer) FinishPasskeyMfa(ctx context.Context, req *identityv1.FinishPasskeyMfaRequest) (*identityv1.FinishPasskeyMfaResponse, error) {
	rp, err := relyingPartyOf(ctx)
	if err != nil {
		return nil, err
	}
	cred, err := credentialOf(req.GetCredential())
	if err != nil {
		return nil, err
	}
	res, err := p.s.accounts.FinishPasskeyMFA(ctx, tenantFrom(ctx), rp, req.GetMfaChallenge(), req.GetCeremonyToken(), cred, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	l := tokensToLogin(res.Tokens, res.User, p.s.now())
	return &identityv1.FinishPasskeyMfaResponse{
		AccessToken: l.AccessToken, RefreshToken: l.RefreshToken, ExpiresIn: l.ExpiresIn, TokenType: l.TokenType, User: l.User,
	}, nil
}

// BeginPasskeyReauthentication implements PasskeyServiceServer.
func (p *passkeyServer) BeginPasskeyReauthentication(ctx context.Context, _ *identityv1.BeginPasskeyReauthenticationRequest) (*identityv1.BeginPasskeyReauthenticationResponse, error) {
	u, _, err := p.s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	rp, err := relyingPartyOf(ctx)
	if err != nil {
		return nil, err
	}
	o, err := p.s.accounts.BeginPasskeyReauthentication(ctx, tenantFrom(ctx), rp, u.ID, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	options, err := optionsToProto(o)
	if err != nil {
		return nil, err
	}
	return &identityv1.BeginPasskeyReauthenticationResponse{Options: options, CeremonyToken: o.Token, ExpiresIn: p.expiresIn(o.Expires)}, nil
}

// FinishPasskeyReauthentication implements PasskeyServiceServer.
func (p *passkeyServer) FinishPasskeyReauthentication(ctx context.Context, req *identityv1.FinishPasskeyReauthenticationRequest) (*identityv1.FinishPasskeyReauthenticationResponse, error) {
	u, session, err := p.s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	rp, err := relyingPartyOf(ctx)
	if err != nil {
		return nil, err
	}
	cred, err := credentialOf(req.GetCredential())
	if err != nil {
		return nil, err
	}
	expires, err := p.s.accounts.FinishPasskeyReauthentication(ctx, tenantFrom(ctx), rp, u.ID, session, req.GetCeremonyToken(), cred, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.FinishPasskeyReauthenticationResponse{ExpireTime: timestamppb.New(expires)}, nil
}

func passkeyToProto(k *account.Passkey) *identityv1.Passkey {
	out := &identityv1.Passkey{Id: k.ID, DisplayName: k.DisplayName, RpId: k.RPID, CreateTime: timestamppb.New(k.CreateTime),
		BackupEligible: k.Credential.Flags.BackupEligible}
	if !k.LastUseTime.IsZero() {
		out.LastUseTime = timestamppb.New(k.LastUseTime)
	}
	return out
}
