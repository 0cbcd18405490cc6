package server_test

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/pgtest"
	"tenantry.dev/tenant-registry/internal/config"
	"tenantry.dev/tenant-registry/internal/server"
)

// A refused gRPC setting is named the way the registry reads it
// (TENANTRY_REGISTRY_GRPC_ADDR), never by a variable nothing reads.
func TestGRPCErrorsNameTheRegistrysVariables(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load([]string{
		"-grpc-addr", "0.0.0.0:0", "-http-addr", "",
		"-database-url", pgtest.NewDatabase(t),
		"-operator-token", operatorToken, "-service-token", serviceToken,
	}, func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = server.New(ctx, cfg, testLogger(t))
	require.Error(t, err, "plaintext gRPC on every interface is refused")
	require.ErrorContains(t, err, "--grpc-addr (TENANTRY_REGISTRY_GRPC_ADDR)")
	require.ErrorContains(t, err, "--tls-cert (TENANTRY_TLS_CERT)")
	require.ErrorContains(t, err, "--allow-insecure (TENANTRY_ALLOW_INSECURE)")
	for _, env := range regexp.MustCompile(`TENANTRY_[A-Z_]+`).FindAllString(err.Error(), -1) {
		require.Contains(t, slices.Collect(maps.Values(cfg.EnvVars)), env, "a variable the registry reads")
	}
}
