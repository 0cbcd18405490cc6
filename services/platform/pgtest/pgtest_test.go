package pgtest_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/pgtest"
)

// withoutMainEnv makes TestMain skip pgtest.Main, to check what NewDatabase
// does in a test binary that forgot it.
const withoutMainEnv = "PGTEST_TEST_WITHOUT_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(withoutMainEnv) != "" {
		os.Exit(m.Run())
	}
	pgtest.Main(m)
}

func TestNewDatabaseGivesIsolatedDatabases(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	first, second := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	require.NotEqual(t, first, second)

	_, err := connect(t, first).Exec(ctx, "CREATE TABLE only_in_first (id int)")
	require.NoError(t, err)

	var tables int
	require.NoError(t, connect(t, second).QueryRow(ctx,
		"SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables))
	require.Zero(t, tables, "a new database starts empty")
}

func TestNewDatabaseDropsTheDatabaseAfterTheTest(t *testing.T) {
	t.Parallel()
	var dbURL string
	t.Run("a test that leaves a session open", func(t *testing.T) {
		dbURL = pgtest.NewDatabase(t)
		conn, err := pgx.Connect(t.Context(), dbURL)
		require.NoError(t, err)
		// Closed only after the drop: WITH (FORCE) must end the session.
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
	})

	name := databaseOf(t, dbURL)
	var exists bool
	require.NoError(t, connect(t, adminURLOf(t, dbURL)).QueryRow(t.Context(),
		"SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists))
	require.False(t, exists, "database %s should be dropped", name)
}

func TestNewDatabaseIsSafeForParallelTests(t *testing.T) {
	t.Parallel()
	for i := range 8 {
		t.Run(fmt.Sprintf("test %d", i), func(t *testing.T) {
			t.Parallel()
			conn := connect(t, pgtest.NewDatabase(t))
			_, err := conn.Exec(t.Context(), "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
			require.NoError(t, err)
		})
	}
}

func TestNewDatabaseNamesTheDatabaseAfterTheTest(t *testing.T) {
	t.Parallel()
	name := databaseOf(t, pgtest.NewDatabase(t))
	require.True(t, strings.HasPrefix(name, "test_testnewdatabasenamesthedatabase"), name)
	require.LessOrEqual(t, len(name), 63)
}

func TestNewDatabaseWithoutMainFailsWithAHint(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNewDatabaseGivesIsolatedDatabases$")
	cmd.Env = append(withoutEnv(os.Environ(), pgtest.URLEnv), withoutMainEnv+"=1")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the test should fail:\n%s", out)
	require.Contains(t, string(out), "pgtest.Main")
}

func TestNewClusterCanBeRestartedAndIsRemovedAfterTheTest(t *testing.T) {
	t.Parallel()
	var dataDir string
	t.Run("a test that restarts its server", func(t *testing.T) {
		c := pgtest.NewCluster(t)
		dataDir = c.DataDir()
		conn := connect(t, c.URL("postgres"))
		_, err := conn.Exec(t.Context(), "CREATE TABLE kept (id int)")
		require.NoError(t, err)

		require.NoError(t, c.Restart(t.Context()))
		_, err = connect(t, c.URL("postgres")).Exec(t.Context(), "SELECT FROM kept")
		require.NoError(t, err)
	})
	require.NoDirExists(t, dataDir)
}

// connect opens a connection closed at cleanup.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// databaseOf returns the database a URL points at.
func databaseOf(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	return strings.TrimPrefix(u.Path, "/")
}

// adminURLOf points a database URL at the postgres database of its server.
func adminURLOf(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	u.Path = "/postgres"
	return u.String()
}

// withoutEnv drops a variable from an environment list.
func withoutEnv(env []string, name string) []string {
	var kept []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			kept = append(kept, kv)
		}
	}
	return kept
}
