package server

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/account"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/fieldmask"
)

func invalidEtag(field string) error {
	return fault.Invalid(field, "ETAG_INVALID", "%s is not an etag returned by this service", field)
}

func userID(field, name string) (string, error) {
	id, ok := strings.CutPrefix(name, "users/")
	if !ok || len(id) != 36 || strings.Count(id, "-") != 4 {
		return "", fault.Invalid(field, "USER_NAME_INVALID", "%s must be a user name like users/123e4567-e89b-12d3-a456-426614174000", field)
	}
	return strings.ToLower(id), nil
}

// ListUsers implements UserServiceServer.
func (s *Server) ListUsers(ctx context.Context, req *identityv1.ListUsersRequest) (*identityv1.ListUsersResponse, error) {
	limit, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	q, err := parseUserFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	if q.Search, err = userSearch(req.GetQuery()); err != nil {
		return nil, err
	}
	// A page token holds to the filter and the search it was made for.
	listed := req.GetFilter() + "\x00" + q.Search
	if req.GetPageToken() != "" {
		after, err := decodeUserPageToken(req.GetPageToken(), listed)
		if err != nil {
			return nil, err
		}
		q.AfterEmail = after
	}
	users, more, err := s.accounts.Users(ctx, tenantFrom(ctx), q, limit)
	if err != nil {
		return nil, err
	}
	resp := &identityv1.ListUsersResponse{}
	for _, u := range users {
		resp.Users = append(resp.Users, userToProto(u))
	}
	if more {
		resp.NextPageToken = encodeUserPageToken(users[len(users)-1].Email, listed)
	}
	return resp, nil
}

// maxUserSearch bounds ListUsersRequest.query, in characters.
const maxUserSearch = 200

// userSearch is ListUsers' query, trimmed: valid UTF-8 of at most
// maxUserSearch characters, without control characters.
func userSearch(query string) (string, error) {
	query = strings.TrimSpace(query)
	if !utf8.ValidString(query) || utf8.RuneCountInString(query) > maxUserSearch ||
		strings.ContainsFunc(query, unicode.IsControl) {
		return "", fault.Invalid("query", "QUERY_INVALID", "query must be text of at most %d characters", maxUserSearch)
	}
	return query, nil
}

// GetUser implements UserServiceServer.
func (s *Server) GetUser(ctx context.Context, req *identityv1.GetUserRequest) (*identityv1.GetUserResponse, error) {
	id, err := userID("name", req.GetName())
	if err != nil {
		return nil, err
	}
	u, err := s.accounts.User(ctx, tenantFrom(ctx), id)
	if err != nil {
		return nil, err
	}
	return &identityv1.GetUserResponse{User: userToProto(u)}, nil
}

// UpdateUser implements UserServiceServer.
func (s *Server) UpdateUser(ctx context.Context, req *identityv1.UpdateUserRequest) (*identityv1.UpdateUserResponse, error) {
	in := req.GetUser()
	id, err := userID("user.name", in.GetName())
	if err != nil {
		return nil, err
	}
	version, err := parseEtag("user.etag", in.GetEtag())
	if err != nil {
		return nil, err
	}
	up := account.UserUpdate{Version: version}
	paths := fieldmask.Paths(req.GetUpdateMask().GetPaths())
	if len(paths) == 0 {
		paths = []string{"display_name", "roles", "disabled"}
	}
	for _, p := range paths {
		switch p {
		case "display_name":
			v := in.GetDisplayName()
			up.DisplayName = &v
		case "roles":
			v := in.GetRoles()
			up.Roles = &v
		case "disabled":
			v := in.GetDisabled()
			up.Disabled = &v
		default:
			return nil, fault.Invalid("update_mask", "UPDATE_MASK_INVALID", "field %q cannot be updated: update_mask may name display_name, roles and disabled", p)
		}
	}
	u, err := s.accounts.UpdateUser(ctx, tenantFrom(ctx), id, up, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.UpdateUserResponse{User: userToProto(u)}, nil
}

// DeleteUser implements UserServiceServer.
func (s *Server) DeleteUser(ctx context.Context, req *identityv1.DeleteUserRequest) (*identityv1.DeleteUserResponse, error) {
	id, err := userID("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.accounts.DeleteUser(ctx, tenantFrom(ctx), id, clientOf(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.DeleteUserResponse{}, nil
}

// ResetUserMfa implements UserServiceServer.
func (s *Server) ResetUserMfa(ctx context.Context, req *identityv1.ResetUserMfaRequest) (*identityv1.ResetUserMfaResponse, error) {
	id, err := userID("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.accounts.ResetUserMFA(ctx, tenantFrom(ctx), id, clientOf(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.ResetUserMfaResponse{}, nil
}

// InviteUser implements UserServiceServer.
func (s *Server) InviteUser(ctx context.Context, req *identityv1.InviteUserRequest) (*identityv1.InviteUserResponse, error) {
	u, err := s.accounts.Invite(ctx, tenantFrom(ctx), account.InviteInput{
		Email: req.GetEmail(), Roles: req.GetRoles(), DisplayName: req.GetDisplayName(),
	}, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.InviteUserResponse{User: userToProto(u)}, nil
}

// GetTenantSettings implements UserServiceServer.
func (s *Server) GetTenantSettings(ctx context.Context, _ *identityv1.GetTenantSettingsRequest) (*identityv1.GetTenantSettingsResponse, error) {
	st, err := s.accounts.Settings(ctx, tenantFrom(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.GetTenantSettingsResponse{Settings: settingsToProto(st)}, nil
}

// UpdateTenantSettings implements UserServiceServer.
func (s *Server) UpdateTenantSettings(ctx context.Context, req *identityv1.UpdateTenantSettingsRequest) (*identityv1.UpdateTenantSettingsResponse, error) {
	in := req.GetSettings()
	version, err := parseEtag("settings.etag", in.GetEtag())
	if err != nil {
		return nil, err
	}
	up := account.SettingsUpdate{Version: version}
	paths := fieldmask.Paths(req.GetUpdateMask().GetPaths())
	if len(paths) == 0 {
		return nil, fault.Invalid("update_mask", "UPDATE_MASK_REQUIRED", "name the settings to change in update_mask")
	}
	for _, p := range paths {
		switch p {
		case "signup_policy":
			v, ok := map[identityv1.SignupPolicy]account.SignupPolicy{
				identityv1.SignupPolicy_SIGNUP_POLICY_OPEN:        account.SignupOpen,
				identityv1.SignupPolicy_SIGNUP_POLICY_INVITE_ONLY: account.SignupInviteOnly,
				identityv1.SignupPolicy_SIGNUP_POLICY_CLOSED:      account.SignupClosed,
			}[in.GetSignupPolicy()]
			if !ok {
				return nil, fault.Invalid("settings.signup_policy", "SIGNUP_POLICY_INVALID", "signup_policy must be OPEN, INVITE_ONLY or CLOSED")
			}
			up.SignupPolicy = &v
		case "email_verification":
			v, ok := map[identityv1.EmailVerification]account.Verification{
				identityv1.EmailVerification_EMAIL_VERIFICATION_MANDATORY: account.VerificationMandatory,
				identityv1.EmailVerification_EMAIL_VERIFICATION_OPTIONAL:  account.VerificationOptional,
				identityv1.EmailVerification_EMAIL_VERIFICATION_OFF:       account.VerificationOff,
			}[in.GetEmailVerification()]
			if !ok {
				return nil, fault.Invalid("settings.email_verification", "EMAIL_VERIFICATION_INVALID", "email_verification must be MANDATORY, OPTIONAL or OFF")
			}
			up.EmailVerification = &v
		case "password_min_length":
			v := int(in.GetPasswordMinLength())
			up.PasswordMinLength = &v
		case "allowed_origins":
			v, err := validateOrigins("settings.allowed_origins", in.GetAllowedOrigins())
			if err != nil {
				return nil, err
			}
			up.AllowedOrigins = &v
		case "max_logins_per_second":
			v := int(in.GetMaxLoginsPerSecond())
			up.MaxLoginsPerSecond = &v
		case "mfa_policy":
			v, ok := mfaPolicyFromProto[in.GetMfaPolicy()]
			if !ok {
				return nil, fault.Invalid("settings.mfa_policy", "MFA_POLICY_INVALID", "mfa_policy must be OPTIONAL, REQUIRED_FOR_ADMINS or REQUIRED")
			}
			up.MFAPolicy = &v
		case "mfa_remember_device_days":
			v := int(in.GetMfaRememberDeviceDays())
			up.MFARememberDays = &v
		case "login_by_email_code":
			v := in.GetLoginByEmailCode()
			up.LoginByEmailCode = &v
		case "display_name":
			v := in.GetDisplayName()
			up.DisplayName = &v
		case "logo_url":
			v := in.GetLogoUrl()
			up.LogoURL = &v
		case "accent_color":
			v := in.GetAccentColor()
			up.AccentColor = &v
		case "deletion_grace_days":
			v := int(in.GetDeletionGraceDays())
			up.DeletionGraceDays = &v
		default:
			return nil, fault.Invalid("update_mask", "UPDATE_MASK_INVALID",
				"field %q cannot be updated: use signup_policy, email_verification, password_min_length, allowed_origins, max_logins_per_second, "+
					"mfa_policy, mfa_remember_device_days, login_by_email_code, display_name, logo_url, accent_color, deletion_grace_days", p)
		}
	}
	st, err := s.accounts.UpdateSettings(ctx, tenantFrom(ctx), up, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.UpdateTenantSettingsResponse{Settings: settingsToProto(st)}, nil
}
