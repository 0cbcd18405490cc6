package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/kit/registrytest"
)

// GetAuthConfig is answered from memory, and still follows every change:
// a replica that has the tenant's configuration cached sees a change of
// settings or providers made through another replica.
func TestAuthConfigFollowsChangesOnEveryReplica(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "alpha")
	other := s.startReplica()
	config := func() *identityv1.GetAuthConfigResponse {
		t.Helper()
		c, err := other.auth.GetAuthConfig(in("alpha"), &identityv1.GetAuthConfigRequest{})
		require.NoError(t, err)
		return c
	}
	before := config().GetPasswordMinLength()
	require.Equal(t, before, config().GetPasswordMinLength(), "read twice, the second from memory")

	_, err := s.users.UpdateTenantSettings(asOperator("alpha"), &identityv1.UpdateTenantSettingsRequest{
		Settings:   &identityv1.TenantSettings{PasswordMinLength: before + 3},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"password_min_length"}},
	})
	require.NoError(t, err)
	registrytest.Eventually(t, "the other replica to see the new settings", func() bool {
		return config().GetPasswordMinLength() == before+3
	})

	_, err = identityv1.NewIdentityProviderServiceClient(s.conn).CreateIdentityProvider(asOperator("alpha"),
		&identityv1.CreateIdentityProviderRequest{IdentityProvider: &identityv1.IdentityProvider{
			ProviderId: "corp", DisplayName: "Corp", Kind: identityv1.IdentityProvider_KIND_OIDC,
			Issuer: "https://login.corp.example", ClientId: "c", ClientSecret: "s",
		}})
	require.NoError(t, err)
	registrytest.Eventually(t, "the other replica to offer the new provider", func() bool {
		return len(config().GetIdentityProviders()) == 1
	})
}

// GET /v1/auth/config is served without the gateway's gRPC hop: it must
// answer what GetAuthConfig answers, in the gateway's JSON.
func TestAuthConfigOverRESTIsGetAuthConfig(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "alpha")
	_, err := identityv1.NewIdentityProviderServiceClient(s.conn).CreateIdentityProvider(asOperator("alpha"),
		&identityv1.CreateIdentityProviderRequest{IdentityProvider: &identityv1.IdentityProvider{
			ProviderId: "corp", DisplayName: "Corp", Kind: identityv1.IdentityProvider_KIND_OIDC,
			Issuer: "https://login.corp.example", ClientId: "c", ClientSecret: "s",
		}})
	require.NoError(t, err)
	want, err := s.auth.GetAuthConfig(in("alpha"), &identityv1.GetAuthConfigRequest{})
	require.NoError(t, err)

	code, body := s.rest(http.MethodGet, "alpha.localhost", "/v1/auth/config", "")
	require.Equal(t, http.StatusOK, code, "%s", body)
	got := &identityv1.GetAuthConfigResponse{}
	require.NoError(t, protojson.Unmarshal(body, got))
	require.True(t, proto.Equal(want, got), "REST %v\ngRPC %v", got, want)
	// The gateway's JSON: lowerCamelCase names, enums by name, every field.
	for _, key := range []string{`"passwordMinLength":`, `"signupPolicy":"SIGNUP_POLICY_`, `"loginPath":"/login/idp/corp"`, `"tenantDisplayName":`} {
		require.Contains(t, string(body), key)
	}

	code, body = s.rest(http.MethodGet, "nobody.localhost", "/v1/auth/config", "")
	require.Equal(t, http.StatusNotFound, code, "%s", body)
}
