package server_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

// TestExportAccountData: a user exports their own account (profile,
// addresses, sessions, factors, audit events), nothing of another
// account's and no secret; a credential that is no user's cannot.
func TestExportAccountData(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "export")
	accounts := identityv1.NewAccountServiceClient(s.conn)
	const owner, other = "owner@example.com", "other@example.com"
	login := s.signUpAndLogin("export", owner)
	s.signUpAndLogin("export", other)

	resp, err := accounts.ExportAccountData(in("export", login.GetAccessToken()), &identityv1.ExportAccountDataRequest{})
	require.NoError(t, err)
	data := resp.GetData().AsMap()
	require.Equal(t, "export", data["tenant"])
	profile := data["profile"].(map[string]any)
	require.Equal(t, owner, profile["email"])
	require.Equal(t, true, profile["has_password"])
	emails := data["emails"].([]any)
	require.Len(t, emails, 1)
	require.Equal(t, owner, emails[0].(map[string]any)["email"])
	require.Equal(t, true, emails[0].(map[string]any)["primary"])
	require.Equal(t, false, emails[0].(map[string]any)["verified"])
	require.NotContains(t, emails[0], "verify_time")
	require.NotEmpty(t, data["sessions"].([]any), "the session that exports is open")
	factors := data["factors"].(map[string]any)
	require.NotContains(t, factors, "authenticator_app")
	require.Empty(t, factors["passkeys"].([]any))
	events := data["audit_events"].([]any)
	require.NotEmpty(t, events, "the sign-up and login are in the audit log")

	raw, err := protojson.Marshal(resp)
	require.NoError(t, err)
	require.NotContains(t, string(raw), other, "nothing of another account")
	for _, secret := range []string{"$argon2", "password_hash", "refresh_hash", "secret"} {
		require.NotContains(t, strings.ToLower(string(raw)), secret)
	}

	// The export is the caller's own: a credential without a user has none.
	requireCode(t, func() error {
		_, err := accounts.ExportAccountData(asOperator("export"), &identityv1.ExportAccountDataRequest{})
		return err
	}(), codes.PermissionDenied)
	requireCode(t, func() error {
		_, err := accounts.ExportAccountData(in("export"), &identityv1.ExportAccountDataRequest{})
		return err
	}(), codes.Unauthenticated)
}
