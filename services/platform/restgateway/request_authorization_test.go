package restgateway_test

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/restgateway"
)

func TestRequestAuthorizationIsWhatTheGatewayPassesOn(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		values []string
		want   []string
	}{
		{"no header", nil, nil},
		{"one header", []string{"Bearer abc"}, []string{"Bearer abc"}},
		{"every header, in order", []string{"Bearer a", "Basic b"}, []string{"Bearer a", "Basic b"}},
		{"a value gRPC metadata cannot carry is dropped", []string{"Bearer t\u00f6ken", "Bearer b"}, []string{"Bearer b"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/v1/auth/me", nil)
			for _, v := range c.values {
				r.Header.Add("Authorization", v)
			}
			got := restgateway.RequestAuthorization(r)
			if len(c.want) == 0 {
				require.Empty(t, got)
				return
			}
			require.Equal(t, c.want, got)
			require.Equal(t, c.values, r.Header.Values("Authorization"), "the request's header is left as it was")
		})
	}
}
