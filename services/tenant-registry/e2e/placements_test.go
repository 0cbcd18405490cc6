package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/pgcluster"
)

// make run PLACEMENTS=2: a second private cluster beside the first (withpg
// under withpg), the placement "second" of every service, shown and walked
// through by the banner, stopped with the rest.
func TestRunDevWithASecondPlacement(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs make run's script with a second PostgreSQL")
	}
	t.Parallel()
	root := repoRoot(t)
	binDir := buildBinaries(t, root)
	// The server runs as the postgres OS user under root, which cannot enter
	// os.MkdirTemp's directories.
	devDir, err := pgcluster.MkdirTemp("", "run-dev-placements-test-*")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, os.RemoveAll(devDir)) })
	pgPort, secondPort := freePort(t), freePort(t)
	addr := "localhost:" + strconv.Itoa(freePort(t))
	identityAddr := "localhost:" + strconv.Itoa(freePort(t))

	run := startRunDev(t, root, binDir,
		"TENANTRY_DEV_PG_PORT="+strconv.Itoa(pgPort),
		"TENANTRY_DEV_PLACEMENTS=2",
		"TENANTRY_DEV_SECOND_PG_PORT="+strconv.Itoa(secondPort),
		"TENANTRY_DEV_DIR="+devDir,
		"TENANTRY_REGISTRY_GRPC_ADDR="+addr,
		"TENANTRY_IDENTITY_GRPC_ADDR="+identityAddr,
		"TENANTRY_NOTES_GRPC_ADDR=localhost:"+strconv.Itoa(freePort(t)),
		// No REST: parallel runs would share its fixed default ports.
		"TENANTRY_REGISTRY_HTTP_ADDR=",
		"TENANTRY_IDENTITY_HTTP_ADDR=",
		"TENANTRY_NOTES_HTTP_ADDR=",
	)
	secondURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/tenantry?sslmode=disable", secondPort)
	secondDir := filepath.Join(devDir, "postgres-second")

	t.Run("the banner shows the second placement and its cluster", func(t *testing.T) {
		banner := strings.Join(run.banner, "\n")
		require.Contains(t, banner, "second   "+secondURL)
		require.Contains(t, banner, secondDir)
		require.Contains(t, banner, "placements list")
	})
	t.Run("demo, made first, went to default, the first by name", func(t *testing.T) {
		require.Zero(t, schemasIn(t, secondURL, "demo"))
	})
	t.Run("CreateTenant as printed puts hooli in the second placement", func(t *testing.T) {
		out, errOut, code := run.shell(t, run.command(t, "hooli", "/CreateTenant"))
		require.Zero(t, code, errOut)
		var resp struct {
			Tenant struct{ Slug, Placement, State string }
		}
		require.NoError(t, json.Unmarshal([]byte(out), &resp), out)
		require.Equal(t, "second", resp.Tenant.Placement)
		require.Equal(t, "STATE_ACTIVE", resp.Tenant.State)
		require.Equal(t, 1, schemasIn(t, secondURL, "hooli"), "its schema is in the second cluster")
	})
	t.Run("identity serves hooli from the second placement", func(t *testing.T) {
		out, errOut, code := run.shell(t, run.command(t, "x-tenant: hooli", "/SignUp"))
		require.Zero(t, code, errOut)
		var resp struct{ Message string }
		require.NoError(t, json.Unmarshal([]byte(out), &resp), out)
		require.NotEmpty(t, resp.Message, out)
	})
	t.Run("Ctrl-C stops the services, then both clusters", func(t *testing.T) {
		first, second := postmasterOf(t, filepath.Join(devDir, "postgres")), postmasterOf(t, secondDir)
		run.interrupt(t)
		requireGone(t, second, "postgres")
		requireGone(t, first, "postgres")
		require.NoFileExists(t, filepath.Join(secondDir, "postmaster.pid"))
		require.NoFileExists(t, filepath.Join(devDir, "postgres", "postmaster.pid"))
	})
}

// schemasIn counts the schemas of a name in the database at url.
func schemasIn(t *testing.T, url, schema string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, schema).Scan(&n))
	return n
}

// postmasterOf returns the PID of the running server of a data directory.
func postmasterOf(t *testing.T, dataDir string) int {
	t.Helper()
	pidFile, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	require.NoError(t, err, "a cluster should run in %s", dataDir)
	pid, err := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	require.NoError(t, err)
	require.True(t, running(pid, "postgres"), "postmaster.pid names no running postgres")
	return pid
}
