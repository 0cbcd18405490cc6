package authn_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/authn"
)

func TestStaticTokensAuthenticate(t *testing.T) {
	t.Parallel()
	static, err := authn.NewStaticTokens(
		authn.Credential{Role: "operator", Token: "op-token-1"},
		authn.Credential{Role: "service", Token: "svc-token-1"},
		authn.Credential{Role: "operator", Token: "op-token-2"},
	)
	require.NoError(t, err)

	cases := []struct {
		name  string
		token string
		role  string
	}{
		{"the first operator token names the operator role", "op-token-1", "operator"},
		{"the service token names the service role", "svc-token-1", "service"},
		{"a second token for a role names that role", "op-token-2", "operator"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := static.Authenticate(context.Background(), tc.token)
			require.NoError(t, err)
			require.Equal(t, authn.Principal{Role: tc.role}, p)
		})
	}

	for _, token := range []string{"", "op-token", "op-token-1 ", "OP-TOKEN-1"} {
		t.Run(fmt.Sprintf("%q is unknown", token), func(t *testing.T) {
			t.Parallel()
			_, err := static.Authenticate(context.Background(), token)
			require.ErrorIs(t, err, authn.ErrUnknownToken)
		})
	}
}

func TestStaticTokensRejectsBadCredentials(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		creds []authn.Credential
		want  string
	}{
		{"a credential without a role", []authn.Credential{{Token: "secret-a"}}, "credential 1 has no role"},
		{"a credential without a token", []authn.Credential{{Role: "operator"}}, `credential 1 (role "operator") has an empty token`},
		{"a token with a space", []authn.Credential{{Role: "operator", Token: "secret a"}}, "whitespace"},
		{"two credentials sharing a token", []authn.Credential{
			{Role: "operator", Token: "secret-a"},
			{Role: "service", Token: "secret-a"},
		}, `credentials 1 (role "operator") and 2 (role "service") share a token`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := authn.NewStaticTokens(tc.creds...)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "secret", "errors must never show a token")
		})
	}

	t.Run("no credentials at all is allowed and knows no token", func(t *testing.T) {
		t.Parallel()
		static, err := authn.NewStaticTokens()
		require.NoError(t, err)
		_, err = static.Authenticate(context.Background(), "anything")
		require.ErrorIs(t, err, authn.ErrUnknownToken)
	})
}

func TestStaticTokensKeepsNoPlaintext(t *testing.T) {
	t.Parallel()
	static, err := authn.NewStaticTokens(authn.Credential{Role: "operator", Token: "very-secret-token"})
	require.NoError(t, err)
	require.NotContains(t, fmt.Sprintf("%+v %#v", static, static), "very-secret-token")
}
