package server

import (
	"context"
	"strings"
	"time"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/federation"
	"tenantry.dev/identity/internal/token"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// Server serves identity's gRPC services. Handlers convert and call
// account.Manager; the tenant comes from the tenant interceptor.
type Server struct {
	identityv1.UnimplementedAuthServiceServer
	identityv1.UnimplementedUserServiceServer
	identityv1.UnimplementedTokenServiceServer
	identityv1.UnimplementedOAuthClientServiceServer
	identityv1.UnimplementedIdentityProviderServiceServer

	accounts *account.Manager
	tokens   tokenVerifier
	resolver *tenancy.Resolver
	// links builds URLs on a tenant's default host.
	links account.Links
	now   func() time.Time
}

// tenantOfToken finds the active tenant an access token is bound to: the
// call's own when it names one, else the one the token names by slug, which
// must still be the tenant of the token's uid. ok is false when there is
// none; an error means the registry could not say (an outage is no answer).
func (s *Server) tenantOfToken(ctx context.Context, claims token.Claims) (t tenancy.Tenant, ok bool, err error) {
	t, scoped := scopedTenant(ctx)
	if !scoped {
		t, err = s.resolver.BySlug(ctx, claims.Tenant)
		if f, isFault := fault.As(err); err != nil && (!isFault || f.Kind == fault.Unavailable || f.Kind == fault.Internal) {
			return tenancy.Tenant{}, false, err
		}
		if err != nil || tenancy.RequireActive(t) != nil {
			return tenancy.Tenant{}, false, nil
		}
	}
	return t, t.UID != "" && t.UID == claims.TenantUID, nil
}

var (
	_ identityv1.AuthServiceServer  = (*Server)(nil)
	_ identityv1.UserServiceServer  = (*Server)(nil)
	_ identityv1.TokenServiceServer = (*Server)(nil)
)

// GetAuthConfig implements AuthServiceServer.
func (s *Server) GetAuthConfig(ctx context.Context, _ *identityv1.GetAuthConfigRequest) (*identityv1.GetAuthConfigResponse, error) {
	t := tenantFrom(ctx)
	settings, providers, err := s.accounts.AuthConfig(ctx, t)
	if err != nil {
		return nil, err
	}
	resp := &identityv1.GetAuthConfigResponse{
		Tenant:            t.Slug,
		TenantDisplayName: t.DisplayName,
		SignupPolicy:      signupToProto[settings.SignupPolicy],
		EmailVerification: verificationToProto[settings.EmailVerification],
		PasswordMinLength: int32(settings.PasswordMinLength),
		LoginByEmailCode:  settings.LoginByEmailCode,
	}
	for _, p := range providers {
		resp.IdentityProviders = append(resp.IdentityProviders, &identityv1.SignInProvider{
			ProviderId: p.ID, DisplayName: p.DisplayName, LoginPath: federation.LoginPath(p.ID)})
	}
	return resp, nil
}

// SignUp implements AuthServiceServer.
func (s *Server) SignUp(ctx context.Context, req *identityv1.SignUpRequest) (*identityv1.SignUpResponse, error) {
	res, err := s.accounts.SignUp(ctx, tenantFrom(ctx), account.SignUpInput{
		Email: req.GetEmail(), Password: req.GetPassword(), Username: req.GetUsername(), DisplayName: req.GetDisplayName(),
	}, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.SignUpResponse{VerificationRequired: res.VerificationRequired, Message: res.Message}, nil
}

// VerifyEmail implements AuthServiceServer.
func (s *Server) VerifyEmail(ctx context.Context, req *identityv1.VerifyEmailRequest) (*identityv1.VerifyEmailResponse, error) {
	email, err := s.accounts.VerifyEmail(ctx, tenantFrom(ctx), req.GetToken(), clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.VerifyEmailResponse{Email: email}, nil
}

// ResendVerificationEmail implements AuthServiceServer.
func (s *Server) ResendVerificationEmail(ctx context.Context, req *identityv1.ResendVerificationEmailRequest) (*identityv1.ResendVerificationEmailResponse, error) {
	if err := s.accounts.ResendVerification(ctx, tenantFrom(ctx), req.GetEmail(), clientOf(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.ResendVerificationEmailResponse{}, nil
}

// Login implements AuthServiceServer.
func (s *Server) Login(ctx context.Context, req *identityv1.LoginRequest) (*identityv1.LoginResponse, error) {
	res, err := s.accounts.Login(ctx, tenantFrom(ctx), account.LoginInput{
		Email: req.GetEmail(), Username: req.GetUsername(), Password: req.GetPassword(), DeviceToken: req.GetDeviceToken(),
	}, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	if res.Challenged() {
		return &identityv1.LoginResponse{MfaChallenge: challengeToProto(res.Challenge, s.now())}, nil
	}
	return tokensToLogin(res.Tokens, res.User, s.now()), nil
}

// RefreshSession implements AuthServiceServer.
func (s *Server) RefreshSession(ctx context.Context, req *identityv1.RefreshSessionRequest) (*identityv1.RefreshSessionResponse, error) {
	tokens, err := s.accounts.Refresh(ctx, tenantFrom(ctx), req.GetRefreshToken(), clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.RefreshSessionResponse{
		AccessToken:  tokens.AccessToken,
		RefreshToken: tokens.RefreshToken,
		ExpiresIn:    int64(tokens.AccessExpires.Sub(s.now()).Round(time.Second).Seconds()),
		TokenType:    "Bearer",
	}, nil
}

// Logout implements AuthServiceServer. It is open to anonymous callers so
// that a client holding only a refresh token can end its session; an access
// token, when sent, names the session instead.
func (s *Server) Logout(ctx context.Context, req *identityv1.LogoutRequest) (*identityv1.LogoutResponse, error) {
	sessionID := ""
	if tok := bearer(ctx); tok != "" && req.GetRefreshToken() == "" {
		claims, err := s.tokens.VerifyForTenant(tok, tenantFrom(ctx).UID)
		if err != nil {
			return nil, err
		}
		sessionID = claims.Session
	}
	if err := s.accounts.Logout(ctx, tenantFrom(ctx), sessionID, req.GetRefreshToken(), clientOf(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.LogoutResponse{}, nil
}

// ListSessions implements AuthServiceServer.
func (s *Server) ListSessions(ctx context.Context, _ *identityv1.ListSessionsRequest) (*identityv1.ListSessionsResponse, error) {
	u, current, err := s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	sessions, err := s.accounts.Sessions(ctx, tenantFrom(ctx), u.ID)
	if err != nil {
		return nil, err
	}
	resp := &identityv1.ListSessionsResponse{}
	for _, ses := range sessions {
		resp.Sessions = append(resp.Sessions, sessionToProto(ses, current))
	}
	return resp, nil
}

// RevokeSession implements AuthServiceServer.
func (s *Server) RevokeSession(ctx context.Context, req *identityv1.RevokeSessionRequest) (*identityv1.RevokeSessionResponse, error) {
	u, _, err := s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetSessionId() == "" {
		return nil, fault.Invalid("session_id", "SESSION_ID_REQUIRED", "give the id of the session to end (from ListSessions)")
	}
	if err := s.accounts.RevokeSession(ctx, tenantFrom(ctx), u.ID, req.GetSessionId(), clientOf(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.RevokeSessionResponse{}, nil
}

// GetCurrentUser implements AuthServiceServer.
func (s *Server) GetCurrentUser(ctx context.Context, _ *identityv1.GetCurrentUserRequest) (*identityv1.GetCurrentUserResponse, error) {
	u, _, err := s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	return &identityv1.GetCurrentUserResponse{User: userToProto(u)}, nil
}

// RequestPasswordReset implements AuthServiceServer.
func (s *Server) RequestPasswordReset(ctx context.Context, req *identityv1.RequestPasswordResetRequest) (*identityv1.RequestPasswordResetResponse, error) {
	if err := s.accounts.RequestPasswordReset(ctx, tenantFrom(ctx), req.GetEmail(), clientOf(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.RequestPasswordResetResponse{}, nil
}

// ResetPassword implements AuthServiceServer.
func (s *Server) ResetPassword(ctx context.Context, req *identityv1.ResetPasswordRequest) (*identityv1.ResetPasswordResponse, error) {
	if err := s.accounts.ResetPassword(ctx, tenantFrom(ctx), req.GetToken(), req.GetNewPassword(), clientOf(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.ResetPasswordResponse{}, nil
}

// ChangePassword implements AuthServiceServer.
func (s *Server) ChangePassword(ctx context.Context, req *identityv1.ChangePasswordRequest) (*identityv1.ChangePasswordResponse, error) {
	u, session, err := s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.accounts.ChangePassword(ctx, tenantFrom(ctx), u.ID, session, req.GetCurrentPassword(), req.GetNewPassword(), clientOf(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.ChangePasswordResponse{}, nil
}

// ChangeEmail implements AuthServiceServer.
func (s *Server) ChangeEmail(ctx context.Context, req *identityv1.ChangeEmailRequest) (*identityv1.ChangeEmailResponse, error) {
	u, _, err := s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.accounts.ChangeEmail(ctx, tenantFrom(ctx), u.ID, req.GetNewEmail(), req.GetPassword(), clientOf(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.ChangeEmailResponse{}, nil
}

// AcceptInvitation implements AuthServiceServer.
func (s *Server) AcceptInvitation(ctx context.Context, req *identityv1.AcceptInvitationRequest) (*identityv1.AcceptInvitationResponse, error) {
	u, err := s.accounts.AcceptInvitation(ctx, tenantFrom(ctx), account.AcceptInput{
		Token: req.GetToken(), Password: req.GetPassword(), Username: req.GetUsername(), DisplayName: req.GetDisplayName(),
	}, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.AcceptInvitationResponse{User: userToProto(u)}, nil
}

// bearer returns the bearer token of the call, if any.
func bearer(ctx context.Context) string {
	scheme, tok, ok := strings.Cut(firstValue(ctx, "authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}
