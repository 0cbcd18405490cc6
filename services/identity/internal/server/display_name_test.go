package server_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

// refusalOf returns the ErrorInfo reason and the BadRequest fields of a
// status error.
func refusalOf(err error) (reason string, fields []string) {
	for _, d := range status.Convert(err).Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return reason, fields
}

func TestSignUpRefusesHostileNamesAndAddresses(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")

	cases := []struct {
		name, email, displayName, reason, field string
	}{
		{"a display name with a right-to-left override", "ann@example.com", "Ann\u202enimda", "DISPLAY_NAME_INVALID", "display_name"},
		{"a display name with a right-to-left isolate", "ann@example.com", "\u2067Ann", "DISPLAY_NAME_INVALID", "display_name"},
		{"a display name of zero-width spaces only", "ann@example.com", "\u200b\u200b", "DISPLAY_NAME_INVALID", "display_name"},
		{"a display name of a byte order mark only", "ann@example.com", "\ufeff", "DISPLAY_NAME_INVALID", "display_name"},
		{"an address at an IPv4 literal", "ann@[127.0.0.1]", "Ann", "EMAIL_IP_LITERAL", "email"},
		{"an address at an IPv6 literal", "ann@[IPv6:::1]", "Ann", "EMAIL_IP_LITERAL", "email"},
		{"an address at a bare IP address", "ann@10.0.0.1", "Ann", "EMAIL_IP_LITERAL", "email"},
	}
	for _, tc := range cases {
		t.Run("sign-up with "+tc.name+" is refused", func(t *testing.T) {
			_, err := s.auth.SignUp(in("demo"), &identityv1.SignUpRequest{
				Email: tc.email, Password: goodPassword, DisplayName: tc.displayName,
			})
			requireCode(t, err, codes.InvalidArgument)
			reason, fields := refusalOf(err)
			require.Equal(t, tc.reason, reason)
			require.Equal(t, []string{tc.field}, fields)
		})
	}
	t.Run("no mail went out", func(t *testing.T) {
		require.Zero(t, s.mailsTo("ann@"))
	})
}
