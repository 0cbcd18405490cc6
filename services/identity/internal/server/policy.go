package server

import (
	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/platform/authn"
)

// public lists the methods anonymous callers of a tenant may use: they are
// how one gets credentials in the first place, and none of them reveals
// whether an account exists.
var public = []string{
	identityv1.AuthService_GetAuthConfig_FullMethodName,
	identityv1.AuthService_SignUp_FullMethodName,
	identityv1.AuthService_VerifyEmail_FullMethodName,
	identityv1.AuthService_ResendVerificationEmail_FullMethodName,
	identityv1.AuthService_Login_FullMethodName,
	identityv1.AuthService_RefreshSession_FullMethodName,
	identityv1.AuthService_Logout_FullMethodName,
	identityv1.AuthService_RequestPasswordReset_FullMethodName,
	identityv1.AuthService_ResetPassword_FullMethodName,
	identityv1.AuthService_AcceptInvitation_FullMethodName,
	identityv1.AuthService_VerifyMfa_FullMethodName,
	identityv1.AuthService_BeginLoginTotpEnrollment_FullMethodName,
	identityv1.AuthService_ConfirmLoginTotpEnrollment_FullMethodName,
	identityv1.AuthService_RequestLoginCode_FullMethodName,
	identityv1.AuthService_LoginWithCode_FullMethodName,
	identityv1.PasskeyService_BeginPasskeyLogin_FullMethodName,
	identityv1.PasskeyService_FinishPasskeyLogin_FullMethodName,
	identityv1.PasskeyService_BeginPasskeyMfa_FullMethodName,
	identityv1.PasskeyService_FinishPasskeyMfa_FullMethodName,
	identityv1.TokenService_GetJwks_FullMethodName,
	// The link mailed to an added address is its proof, opened perhaps
	// where its account is not logged in, as VerifyEmail's.
	identityv1.AccountService_VerifyEmailAddress_FullMethodName,
}

// Policy says which roles may call the other methods; anything missing is
// refused.
func Policy() authn.Policy {
	users := []string{RoleUser, RoleAdmin}
	admins := []string{RoleAdmin, RoleOperator}
	return authn.Policy{
		identityv1.AuthService_ListSessions_FullMethodName:            users,
		identityv1.AuthService_RevokeSession_FullMethodName:           users,
		identityv1.AuthService_GetCurrentUser_FullMethodName:          users,
		identityv1.AuthService_ChangePassword_FullMethodName:          users,
		identityv1.AuthService_ChangeEmail_FullMethodName:             users,
		identityv1.AuthService_ListLinkedIdentities_FullMethodName:    users,
		identityv1.AuthService_UnlinkIdentity_FullMethodName:          users,
		identityv1.AuthService_GetMfaStatus_FullMethodName:            users,
		identityv1.AuthService_BeginTotpEnrollment_FullMethodName:     users,
		identityv1.AuthService_ConfirmTotpEnrollment_FullMethodName:   users,
		identityv1.AuthService_RemoveTotp_FullMethodName:              users,
		identityv1.AuthService_RegenerateRecoveryCodes_FullMethodName: users,
		identityv1.AuthService_Reauthenticate_FullMethodName:          users,

		identityv1.PasskeyService_BeginPasskeyRegistration_FullMethodName:      users,
		identityv1.PasskeyService_FinishPasskeyRegistration_FullMethodName:     users,
		identityv1.PasskeyService_ListPasskeys_FullMethodName:                  users,
		identityv1.PasskeyService_RenamePasskey_FullMethodName:                 users,
		identityv1.PasskeyService_DeletePasskey_FullMethodName:                 users,
		identityv1.PasskeyService_BeginPasskeyReauthentication_FullMethodName:  users,
		identityv1.PasskeyService_FinishPasskeyReauthentication_FullMethodName: users,

		identityv1.UserService_ListUsers_FullMethodName:                 admins,
		identityv1.AccountService_ExportAccountData_FullMethodName:      users,
		identityv1.AccountService_RequestAccountDeletion_FullMethodName: users,
		identityv1.AccountService_CancelAccountDeletion_FullMethodName:  users,
		identityv1.AccountService_GetAccountDeletion_FullMethodName:     users,
		identityv1.AccountService_PreviewEmail_FullMethodName:           admins,
		identityv1.AccountService_ListEmailKinds_FullMethodName:         admins,
		identityv1.AccountService_ListEmailAddresses_FullMethodName:     users,
		identityv1.AccountService_AddEmailAddress_FullMethodName:        users,
		identityv1.AccountService_SetPrimaryEmailAddress_FullMethodName: users,
		identityv1.AccountService_RemoveEmailAddress_FullMethodName:     users,
		identityv1.UserService_GetUser_FullMethodName:                   admins,
		identityv1.UserService_UpdateUser_FullMethodName:                admins,
		identityv1.UserService_DeleteUser_FullMethodName:                admins,
		identityv1.UserService_InviteUser_FullMethodName:                admins,
		identityv1.UserService_ResetUserMfa_FullMethodName:              admins,
		identityv1.UserService_GetTenantSettings_FullMethodName:         admins,
		identityv1.UserService_UpdateTenantSettings_FullMethodName:      admins,

		identityv1.OAuthClientService_CreateOAuthClient_FullMethodName:       admins,
		identityv1.OAuthClientService_GetOAuthClient_FullMethodName:          admins,
		identityv1.OAuthClientService_ListOAuthClients_FullMethodName:        admins,
		identityv1.OAuthClientService_UpdateOAuthClient_FullMethodName:       admins,
		identityv1.OAuthClientService_DeleteOAuthClient_FullMethodName:       admins,
		identityv1.OAuthClientService_RotateOAuthClientSecret_FullMethodName: admins,

		identityv1.IdentityProviderService_CreateIdentityProvider_FullMethodName: admins,
		identityv1.IdentityProviderService_GetIdentityProvider_FullMethodName:    admins,
		identityv1.IdentityProviderService_ListIdentityProviders_FullMethodName:  admins,
		identityv1.IdentityProviderService_UpdateIdentityProvider_FullMethodName: admins,
		identityv1.IdentityProviderService_DeleteIdentityProvider_FullMethodName: admins,

		identityv1.TokenService_IntrospectToken_FullMethodName: {RoleService, RoleOperator},

		// Product services watch with the service credential; a tenant's
		// admins watch their own tenant only (their token is good in it
		// alone).
		identityv1.AccountEventService_WatchAccountEvents_FullMethodName: {RoleAdmin, RoleOperator, RoleService},
		identityv1.AccountEventService_ListAuditEvents_FullMethodName:    admins,

		identityv1.WebhookService_CreateWebhookEndpoint_FullMethodName:       admins,
		identityv1.WebhookService_ListWebhookEndpoints_FullMethodName:        admins,
		identityv1.WebhookService_UpdateWebhookEndpoint_FullMethodName:       admins,
		identityv1.WebhookService_DeleteWebhookEndpoint_FullMethodName:       admins,
		identityv1.WebhookService_RotateWebhookEndpointSecret_FullMethodName: admins,
		identityv1.WebhookService_ListWebhookDeliveries_FullMethodName:       admins,
	}
}
