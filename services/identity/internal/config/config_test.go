package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func required() map[string]string {
	return map[string]string{
		"DATABASE_URL":                "postgres://localhost/tenantry",
		"TENANTRY_OPERATOR_TOKEN":     "0123456789abcdef0123",
		"TENANTRY_SERVICE_TOKEN":      "fedcba9876543210fedc",
		"TENANTRY_KEY_ENCRYPTION_KEY": "0123456789abcdef0123456789abcdef",
		"TENANTRY_COMPONENT_TOKEN":    "tnc_identity_c29tZS1tYWMtdGhhdC1pcy1ub3QtY2hlY2tlZC1oZXJl",
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	t.Run("defaults work with the required settings", func(t *testing.T) {
		c, err := Load(nil, env(required()))
		require.NoError(t, err)
		require.Equal(t, "localhost:50052", c.GRPCAddr)
		require.Equal(t, "localhost:50051", c.RegistryAddr)
		require.Equal(t, 15*time.Minute, c.AccessTTL)
		require.Equal(t, map[string]string{"default": "postgres://localhost/tenantry"}, c.Placements)
		require.Equal(t, "http://{tenant}.localhost:8080", c.PublicURL)
		require.Equal(t, []string{"localhost"}, c.BaseDomains)
	})
	t.Run("base domains are normalised as the registry's are", func(t *testing.T) {
		e := required()
		e["TENANTRY_BASE_DOMAINS"] = "Example.COM., localhost"
		c, err := Load(nil, env(e))
		require.NoError(t, err)
		require.Equal(t, []string{"example.com", "localhost"}, c.BaseDomains)
	})
	t.Run("no base domains is an empty list, not an unknown one", func(t *testing.T) {
		e := required()
		e["TENANTRY_BASE_DOMAINS"] = ""
		c, err := Load(nil, env(e))
		require.NoError(t, err)
		require.NotNil(t, c.BaseDomains)
		require.Empty(t, c.BaseDomains)
	})
	t.Run("every problem is reported at once", func(t *testing.T) {
		e := map[string]string{
			"TENANTRY_KEY_ENCRYPTION_KEY": "short",
			"TENANTRY_ACCESS_TTL":         "1s",
			"TENANTRY_PLACEMENTS":         "default=postgres://x/y",
			"TENANTRY_PUBLIC_URL":         "http://no-placeholder",
			"TENANTRY_HASH_CONCURRENCY":   "0",
			"TENANTRY_SMTP_STARTTLS":      "maybe",
			"TENANTRY_CORS_ORIGINS":       "*",
			"TENANTRY_BASE_DOMAINS":       "localhost,127.0.0.1",
		}
		_, err := Load(nil, env(e))
		require.Error(t, err)
		for _, want := range []string{
			"DATABASE_URL", "TENANTRY_OPERATOR_TOKEN", "TENANTRY_SERVICE_TOKEN", "TENANTRY_KEY_ENCRYPTION_KEY",
			"TENANTRY_ACCESS_TTL", `"default" is the DATABASE_URL placement`, "TENANTRY_PUBLIC_URL",
			"TENANTRY_HASH_CONCURRENCY", "TENANTRY_SMTP_STARTTLS", "TENANTRY_CORS_ORIGINS",
			`TENANTRY_BASE_DOMAINS: "127.0.0.1"`, "TENANTRY_COMPONENT_TOKEN",
		} {
			require.ErrorContains(t, err, want)
		}
	})
	t.Run("the sign-up limit per client address is 200 an hour unless set, and at least 1", func(t *testing.T) {
		c, err := Load(nil, env(required()))
		require.NoError(t, err)
		require.Equal(t, 200, c.SignUpsPerAddressPerHour)
		c, err = Load([]string{"-signup-limit-per-address", "5"}, env(required()))
		require.NoError(t, err)
		require.Equal(t, 5, c.SignUpsPerAddressPerHour)
		e := required()
		e["TENANTRY_SIGNUP_LIMIT_PER_ADDRESS"] = "0"
		_, err = Load(nil, env(e))
		require.ErrorContains(t, err, "TENANTRY_SIGNUP_LIMIT_PER_ADDRESS")
	})
	t.Run("the component token must be identity's", func(t *testing.T) {
		e := required()
		e["TENANTRY_COMPONENT_TOKEN"] = "tnc_notes_c29tZS1tYWMtdGhhdC1pcy1ub3QtY2hlY2tlZC1oZXJl"
		_, err := Load(nil, env(e))
		require.ErrorContains(t, err, `the token of component "identity"`)
	})
}
