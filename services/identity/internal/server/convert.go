package server

import (
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/device"
)

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// parseEtag returns the version in an etag, 0 for none.
func parseEtag(field, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if len(s) < 3 || s[0] != '"' || s[len(s)-1] != '"' {
		return 0, invalidEtag(field)
	}
	v, err := strconv.ParseInt(s[1:len(s)-1], 10, 64)
	if err != nil || v <= 0 {
		return 0, invalidEtag(field)
	}
	return v, nil
}

func userToProto(u *account.User) *identityv1.User {
	if u == nil {
		return nil
	}
	state := identityv1.User_STATE_ACTIVE
	switch {
	case u.State == account.Invited:
		state = identityv1.User_STATE_INVITED
	case u.Disabled:
		state = identityv1.User_STATE_DISABLED
	}
	return &identityv1.User{
		Name:          "users/" + u.ID,
		Id:            u.ID,
		Email:         u.Email,
		EmailVerified: u.EmailVerified,
		Username:      u.Username,
		DisplayName:   u.DisplayName,
		Roles:         u.Roles,
		Disabled:      u.Disabled,
		State:         state,
		CreateTime:    ts(u.CreateTime),
		UpdateTime:    ts(u.UpdateTime),
		MfaEnabled:    u.MFAEnabled,
		LastLoginTime: ts(u.LastLoginTime),
		Etag:          etag(u.Version),
	}
}

var signupToProto = map[account.SignupPolicy]identityv1.SignupPolicy{
	account.SignupOpen:       identityv1.SignupPolicy_SIGNUP_POLICY_OPEN,
	account.SignupInviteOnly: identityv1.SignupPolicy_SIGNUP_POLICY_INVITE_ONLY,
	account.SignupClosed:     identityv1.SignupPolicy_SIGNUP_POLICY_CLOSED,
}

var verificationToProto = map[account.Verification]identityv1.EmailVerification{
	account.VerificationMandatory: identityv1.EmailVerification_EMAIL_VERIFICATION_MANDATORY,
	account.VerificationOptional:  identityv1.EmailVerification_EMAIL_VERIFICATION_OPTIONAL,
	account.VerificationOff:       identityv1.EmailVerification_EMAIL_VERIFICATION_OFF,
}

func settingsToProto(s account.Settings) *identityv1.TenantSettings {
	return &identityv1.TenantSettings{
		SignupPolicy:          signupToProto[s.SignupPolicy],
		EmailVerification:     verificationToProto[s.EmailVerification],
		PasswordMinLength:     int32(s.PasswordMinLength),
		AllowedOrigins:        s.AllowedOrigins,
		MaxLoginsPerSecond:    int32(s.MaxLoginsPerSecond),
		MfaPolicy:             mfaPolicyToProto[s.MFAPolicy],
		MfaRememberDeviceDays: int32(s.MFARememberDays),
		LoginByEmailCode:      s.LoginByEmailCode,
		DisplayName:           s.DisplayName,
		LogoUrl:               s.LogoURL,
		AccentColor:           s.AccentColor,
		DeletionGraceDays:     int32(s.DeletionGraceDays),
		Etag:                  etag(s.Version),
	}
}

var mfaPolicyToProto = map[account.MFAPolicy]identityv1.MfaPolicy{
	"":                           identityv1.MfaPolicy_MFA_POLICY_OPTIONAL,
	account.MFAOptional:          identityv1.MfaPolicy_MFA_POLICY_OPTIONAL,
	account.MFARequiredForAdmins: identityv1.MfaPolicy_MFA_POLICY_REQUIRED_FOR_ADMINS,
	account.MFARequired:          identityv1.MfaPolicy_MFA_POLICY_REQUIRED,
}

var mfaPolicyFromProto = map[identityv1.MfaPolicy]account.MFAPolicy{
	identityv1.MfaPolicy_MFA_POLICY_OPTIONAL:            account.MFAOptional,
	identityv1.MfaPolicy_MFA_POLICY_REQUIRED_FOR_ADMINS: account.MFARequiredForAdmins,
	identityv1.MfaPolicy_MFA_POLICY_REQUIRED:            account.MFARequired,
}

func sessionToProto(s *account.Session, current string) *identityv1.Session {
	return &identityv1.Session{
		Id:          s.ID,
		CreateTime:  ts(s.CreateTime),
		RefreshTime: ts(s.RefreshTime),
		ExpireTime:  ts(s.ExpireTime),
		UserAgent:   s.UserAgent,
		DeviceName:  device.Name(s.UserAgent),
		ClientIp:    s.ClientIP,
		Current:     s.ID == current,
	}
}

func tokensToLogin(t account.Tokens, u *account.User, now time.Time) *identityv1.LoginResponse {
	return &identityv1.LoginResponse{
		AccessToken:  t.AccessToken,
		RefreshToken: t.RefreshToken,
		ExpiresIn:    int64(t.AccessExpires.Sub(now).Round(time.Second).Seconds()),
		TokenType:    "Bearer",
		User:         userToProto(u),
	}
}
