package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoad(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"DATABASE_URL":            "postgres://localhost/tenantry",
		"TENANTRY_OPERATOR_TOKEN": "0123456789abcdef0123",
	}
	t.Run("defaults work with the two required settings", func(t *testing.T) {
		c, err := Load(nil, env(good))
		require.NoError(t, err)
		require.Equal(t, "localhost:50051", c.GRPCAddr)
		require.Equal(t, []string{"localhost"}, c.BaseDomains)
		require.Equal(t, map[string]string{"default": good["DATABASE_URL"]}, c.Placements)
		require.Equal(t, 720*time.Hour, c.PurgeGrace)
	})
	t.Run("placements and base domains are parsed and normalised", func(t *testing.T) {
		e := map[string]string{
			"TENANTRY_PLACEMENTS":   "eu=postgres://eu/db, us=postgresql://us/db",
			"TENANTRY_BASE_DOMAINS": "Example.COM., localhost",
		}
		for k, v := range good {
			e[k] = v
		}
		c, err := Load(nil, env(e))
		require.NoError(t, err)
		require.Equal(t, "postgres://eu/db", c.Placements["eu"])
		require.Equal(t, "postgresql://us/db", c.Placements["us"])
		require.Equal(t, []string{"example.com", "localhost"}, c.BaseDomains)
	})
	t.Run("every problem is reported at once", func(t *testing.T) {
		_, err := Load([]string{"-purge-grace", "soon", "-placements", "default=postgres://x/y,bad", "-log-level", "loud"},
			env(map[string]string{"TENANTRY_OPERATOR_TOKEN": "short", "TENANTRY_TLS_CERT": "cert.pem"}))
		require.Error(t, err)
		for _, want := range []string{
			"DATABASE_URL", "at least 16 characters", "TENANTRY_PURGE_GRACE",
			`"default" is the DATABASE_URL placement`, `"bad" is not name=postgres-url`,
			"TENANTRY_TLS_CERT and TENANTRY_TLS_KEY", "TENANTRY_LOG_LEVEL",
		} {
			require.ErrorContains(t, err, want)
		}
	})
	t.Run("the service token must differ from the operator token", func(t *testing.T) {
		e := map[string]string{"TENANTRY_SERVICE_TOKEN": good["TENANTRY_OPERATOR_TOKEN"]}
		for k, v := range good {
			e[k] = v
		}
		_, err := Load(nil, env(e))
		require.ErrorContains(t, err, "must differ")
	})
}
