package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

// Sign-up's answer says what is true under each email verification setting
// of the tenant, over gRPC, REST and the page without the script: whether
// the address must be verified before logging in, whether an email was
// sent to verify it, and a login then does what the answer said.
func TestSignUpAnswerIsTrueForEachVerificationSetting(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "mandatory", "optional", "off")
	for _, tc := range []struct {
		tenant      string
		setting     identityv1.EmailVerification
		loginAtOnce bool
		sayVerify   bool // the message asks to open the email's link
		pageSays    string
	}{
		{"mandatory", identityv1.EmailVerification_EMAIL_VERIFICATION_MANDATORY, false, true, "open its link to verify your address, then log in"},
		{"optional", identityv1.EmailVerification_EMAIL_VERIFICATION_OPTIONAL, true, true, "You can log in now."},
		{"off", identityv1.EmailVerification_EMAIL_VERIFICATION_OFF, true, false, "You can log in now."},
	} {
		t.Run("when verification is "+tc.tenant, func(t *testing.T) {
			_, err := s.users.UpdateTenantSettings(asOperator(tc.tenant), &identityv1.UpdateTenantSettingsRequest{
				Settings:   &identityv1.TenantSettings{EmailVerification: tc.setting},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"email_verification"}},
			})
			require.NoError(t, err)
			requireTrue := func(t *testing.T, required bool, message string) {
				t.Helper()
				require.Equal(t, !tc.loginAtOnce, required)
				require.Equal(t, tc.loginAtOnce, strings.Contains(message, "You can log in now."), message)
				require.Equal(t, tc.sayVerify, strings.Contains(message, "open its link to verify the address"), message)
				require.NotContains(t, message, "to continue", "the old answer said to follow the email whatever the setting")
			}

			grpcAnswer, err := s.auth.SignUp(in(tc.tenant), &identityv1.SignUpRequest{Email: "grpc@example.com", Password: goodPassword})
			require.NoError(t, err)
			requireTrue(t, grpcAnswer.GetVerificationRequired(), grpcAnswer.GetMessage())
			_, err = s.auth.Login(in(tc.tenant), loginRequest("grpc@example.com", goodPassword))
			require.Equal(t, tc.loginAtOnce, err == nil, "a login right after sign-up: %v", err)

			status, body := s.rest(http.MethodPost, tc.tenant+".localhost", "/v1/auth:signup",
				`{"email":"rest@example.com","password":"`+goodPassword+`"}`)
			require.Equal(t, http.StatusOK, status, "%s", body)
			var restAnswer struct {
				VerificationRequired bool
				Message              string
			}
			require.NoError(t, json.Unmarshal(body, &restAnswer))
			requireTrue(t, restAnswer.VerificationRequired, restAnswer.Message)
			require.Equal(t, grpcAnswer.GetMessage(), restAnswer.Message)

			resp, page := s.postForm(tc.tenant+".localhost", "/signup",
				url.Values{"email": {"page@example.com"}, "password": {goodPassword}})
			require.Equal(t, http.StatusOK, resp.StatusCode, page)
			require.Contains(t, page, tc.pageSays)
		})
	}
}
