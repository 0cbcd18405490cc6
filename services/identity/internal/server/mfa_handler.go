package server

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/account"
)

// VerifyMfa implements AuthServiceServer.
func (s *Server) VerifyMfa(ctx context.Context, req *identityv1.VerifyMfaRequest) (*identityv1.VerifyMfaResponse, error) {
	res, err := s.accounts.VerifyMFA(ctx, tenantFrom(ctx), account.VerifyMFAInput{
		Challenge:      req.GetMfaChallenge(),
		FactorProof:    account.FactorProof{TOTPCode: req.GetTotpCode(), RecoveryCode: req.GetRecoveryCode()},
		RememberDevice: req.GetRememberDevice(),
	}, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	l := tokensToLogin(res.Tokens, res.User, s.now())
	return &identityv1.VerifyMfaResponse{
		AccessToken: l.AccessToken, RefreshToken: l.RefreshToken, ExpiresIn: l.ExpiresIn, TokenType: l.TokenType, User: l.User,
		DeviceToken: res.DeviceToken,
	}, nil
}

// GetMfaStatus implements AuthServiceServer.
func (s *Server) GetMfaStatus(ctx context.Context, _ *identityv1.GetMfaStatusRequest) (*identityv1.GetMfaStatusResponse, error) {
	u, _, err := s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.accounts.MFAStatus(ctx, tenantFrom(ctx), u.ID)
	if err != nil {
		return nil, err
	}
	resp := &identityv1.GetMfaStatusResponse{TotpEnrolled: st.TOTPEnrolled, RecoveryCodesRemaining: int32(st.RecoveryCodesRemaining)}
	if st.TOTPEnrolled {
		resp.TotpEnrollTime = timestamppb.New(st.TOTPEnrollTime)
	}
	return resp, nil
}

// BeginTotpEnrollment implements AuthServiceServer.
func (s *Server) BeginTotpEnrollment(ctx context.Context, _ *identityv1.BeginTotpEnrollmentRequest) (*identityv1.BeginTotpEnrollmentResponse, error) {
	u, _, err := s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	e, err := s.accounts.BeginTOTP(ctx, tenantFrom(ctx), u.ID, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.BeginTotpEnrollmentResponse{Secret: e.Secret, OtpauthUri: e.URI, QrCodePng: e.QRCodePNG}, nil
}

// ConfirmTotpEnrollment implements AuthServiceServer.
func (s *Server) ConfirmTotpEnrollment(ctx context.Context, req *identityv1.ConfirmTotpEnrollmentRequest) (*identityv1.ConfirmTotpEnrollmentResponse, error) {
	u, _, err := s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	codes, err := s.accounts.ConfirmTOTP(ctx, tenantFrom(ctx), u.ID, req.GetTotpCode(), clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.ConfirmTotpEnrollmentResponse{RecoveryCodes: codes}, nil
}

// RemoveTotp implements AuthServiceServer.
func (s *Server) RemoveTotp(ctx context.Context, req *identityv1.RemoveTotpRequest) (*identityv1.RemoveTotpResponse, error) {
	u, _, err := s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	proof := account.FactorProof{TOTPCode: req.GetTotpCode(), RecoveryCode: req.GetRecoveryCode()}
	if err := s.accounts.RemoveTOTP(ctx, tenantFrom(ctx), u.ID, proof, clientOf(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.RemoveTotpResponse{}, nil
}

// RegenerateRecoveryCodes implements AuthServiceServer.
func (s *Server) RegenerateRecoveryCodes(ctx context.Context, req *identityv1.RegenerateRecoveryCodesRequest) (*identityv1.RegenerateRecoveryCodesResponse, error) {
	u, _, err := s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	proof := account.FactorProof{TOTPCode: req.GetTotpCode(), RecoveryCode: req.GetRecoveryCode()}
	codes, err := s.accounts.RegenerateRecoveryCodes(ctx, tenantFrom(ctx), u.ID, proof, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.RegenerateRecoveryCodesResponse{RecoveryCodes: codes}, nil
}

// BeginLoginTotpEnrollment implements AuthServiceServer.
func (s *Server) BeginLoginTotpEnrollment(ctx context.Context, req *identityv1.BeginLoginTotpEnrollmentRequest) (*identityv1.BeginLoginTotpEnrollmentResponse, error) {
	e, err := s.accounts.BeginTOTPAtLogin(ctx, tenantFrom(ctx), req.GetMfaChallenge(), clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.BeginLoginTotpEnrollmentResponse{Secret: e.Secret, OtpauthUri: e.URI, QrCodePng: e.QRCodePNG}, nil
}

// ConfirmLoginTotpEnrollment implements AuthServiceServer.
func (s *Server) ConfirmLoginTotpEnrollment(ctx context.Context, req *identityv1.ConfirmLoginTotpEnrollmentRequest) (*identityv1.ConfirmLoginTotpEnrollmentResponse, error) {
	codes, res, err := s.accounts.ConfirmTOTPAtLogin(ctx, tenantFrom(ctx), req.GetMfaChallenge(), req.GetTotpCode(), clientOf(ctx))
	if err != nil {
		return nil, err
	}
	l := tokensToLogin(res.Tokens, res.User, s.now())
	return &identityv1.ConfirmLoginTotpEnrollmentResponse{
		RecoveryCodes: codes,
		AccessToken:   l.AccessToken, RefreshToken: l.RefreshToken, ExpiresIn: l.ExpiresIn, TokenType: l.TokenType, User: l.User,
	}, nil
}

// Reauthenticate implements AuthServiceServer.
func (s *Server) Reauthenticate(ctx context.Context, req *identityv1.ReauthenticateRequest) (*identityv1.ReauthenticateResponse, error) {
	u, session, err := s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	expires, err := s.accounts.Reauthenticate(ctx, tenantFrom(ctx), u.ID, session, account.ReauthInput{
		Password:    req.GetPassword(),
		FactorProof: account.FactorProof{TOTPCode: req.GetTotpCode(), RecoveryCode: req.GetRecoveryCode()},
	}, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.ReauthenticateResponse{ExpireTime: timestamppb.New(expires)}, nil
}

// RequestLoginCode implements AuthServiceServer.
func (s *Server) RequestLoginCode(ctx context.Context, req *identityv1.RequestLoginCodeRequest) (*identityv1.RequestLoginCodeResponse, error) {
	r, err := s.accounts.RequestLoginCode(ctx, tenantFrom(ctx), req.GetEmail(), clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.RequestLoginCodeResponse{LoginCodeToken: r.Token,
		ExpiresIn: int64(r.Expires.Sub(s.now()).Round(time.Second).Seconds())}, nil
}

// LoginWithCode implements AuthServiceServer.
func (s *Server) LoginWithCode(ctx context.Context, req *identityv1.LoginWithCodeRequest) (*identityv1.LoginWithCodeResponse, error) {
	res, err := s.accounts.LoginWithCode(ctx, tenantFrom(ctx), req.GetLoginCodeToken(), req.GetCode(), clientOf(ctx))
	if err != nil {
		return nil, err
	}
	if res.Challenged() {
		return &identityv1.LoginWithCodeResponse{MfaChallenge: challengeToProto(res.Challenge, s.now())}, nil
	}
	l := tokensToLogin(res.Tokens, res.User, s.now())
	return &identityv1.LoginWithCodeResponse{
		AccessToken: l.AccessToken, RefreshToken: l.RefreshToken, ExpiresIn: l.ExpiresIn, TokenType: l.TokenType, User: l.User,
	}, nil
}

// factorToProto names second factors in the API.
var factorToProto = map[account.Factor]identityv1.MfaFactor{
	account.FactorTOTP:         identityv1.MfaFactor_MFA_FACTOR_TOTP,
	account.FactorRecoveryCode: identityv1.MfaFactor_MFA_FACTOR_RECOVERY_CODE,
	account.FactorPasskey:      identityv1.MfaFactor_MFA_FACTOR_PASSKEY,
}

// challengeToProto is a login's MFA challenge in the API.
func challengeToProto(c *account.MFAChallenge, now time.Time) *identityv1.MfaChallenge {
	out := &identityv1.MfaChallenge{Token: c.Token, ExpiresIn: int64(c.Expires.Sub(now).Round(time.Second).Seconds()),
		EnrollmentRequired: c.EnrollmentRequired, RememberDeviceDays: int32(c.RememberDays)}
	for _, f := range c.Factors {
		out.Factors = append(out.Factors, factorToProto[f])
	}
	return out
}
