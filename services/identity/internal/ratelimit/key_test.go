package ratelimit_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/ratelimit"
)

func TestKeys(t *testing.T) {
	t.Parallel()
	hex64 := `[0-9a-f]{64}`
	tests := []struct {
		name  string
		parts []string
		want  string // a regular expression
	}{
		{name: "a tenant slug stays readable", parts: []string{"acme"}, want: `^login\.tenant:acme$`},
		{name: "scope parts are hashed together", parts: []string{"acme", "alice@example.com", "203.0.113.7"}, want: `^login\.tenant:acme:` + hex64 + `$`},
		{name: "a tenant that is not a slug is hashed", parts: []string{"Acme Corp"}, want: `^login\.tenant:` + hex64 + `$`},
		{name: "no parts is the name alone", want: `^login\.tenant$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Regexp(t, tt.want, ratelimit.Key("login.tenant", tt.parts...))
		})
	}

	t.Run("different scopes never share a key", func(t *testing.T) {
		t.Parallel()
		scopes := [][]string{
			{"acme", "ab", "c"},
			{"acme", "a", "bc"},
			{"acme", "abc"},
			{"acme", "abc", ""},
			{"acme", "", "abc"},
			{"acme:abc"},
			{"acme"},
			{"acme2", "abc"},
		}
		seen := map[string][]string{}
		for _, s := range scopes {
			k := ratelimit.Key("test", s...)
			require.NotContains(t, seen, k, "%q and %q", s, seen[k])
			seen[k] = s
		}
	})
}
