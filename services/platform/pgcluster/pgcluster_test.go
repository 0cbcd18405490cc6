package pgcluster_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/pgcluster"
)

// helperEnv makes the test binary act as a process that starts a cluster and
// then hangs until killed, for TestStopWithProcessOutlivesNoCrash.
const helperEnv = "PGCLUSTER_TEST_HANG_WITH_CLUSTER_IN"

func TestMain(m *testing.M) {
	if dataDir := os.Getenv(helperEnv); dataDir != "" {
		hangWithCluster(dataDir)
		return
	}
	os.Exit(m.Run())
}

// hangWithCluster starts a cluster guarded by StopWithProcess, says so on
// stdout, and waits to be killed.
func hangWithCluster(dataDir string) {
	ctx := context.Background()
	c, err := pgcluster.Init(ctx, pgcluster.Options{DataDir: dataDir, Fast: true, StopWithProcess: true})
	if err == nil {
		err = c.Start(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("started")
	select {}
}

func TestClusterLifecycle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dataDir := filepath.Join(newTempDir(t), "data")
	c, err := pgcluster.Init(ctx, pgcluster.Options{DataDir: dataDir, Fast: true, StopWithProcess: true, Logger: testLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Stop(context.Background())) })
	require.NoError(t, c.Start(ctx))
	port := c.Port()
	require.Equal(t, dataDir, c.DataDir())
	require.Equal(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/app?sslmode=disable", port), c.URL("app"))

	t.Run("the URL reaches a server with the requested settings", func(t *testing.T) {
		conn := connect(t, c.URL("postgres"))
		for setting, want := range map[string]string{
			"port":                    strconv.Itoa(port),
			"listen_addresses":        "127.0.0.1",
			"unix_socket_directories": "",
			"max_connections":         "400",
			"fsync":                   "off",
			"synchronous_commit":      "off",
			"full_page_writes":        "off",
			"server_encoding":         "UTF8",
		} {
			var got string
			require.NoError(t, conn.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&got))
			require.Equal(t, want, got, setting)
		}
	})

	t.Run("CreateDatabase accepts a name that needs quoting", func(t *testing.T) {
		const name = `Odd "db" name; DROP-ß?/#%`
		require.NoError(t, c.CreateDatabase(ctx, name))
		var got string
		require.NoError(t, connect(t, c.URL(name)).QueryRow(ctx, "SELECT current_database()").Scan(&got))
		require.Equal(t, name, got)

		err := c.CreateDatabase(ctx, name)
		require.ErrorIs(t, err, pgcluster.ErrDatabaseExists)
	})

	t.Run("data and port survive a restart", func(t *testing.T) {
		conn := connect(t, c.URL("postgres"))
		_, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before restart')")
		require.NoError(t, err)
		require.NoError(t, conn.Close(ctx))

		require.NoError(t, c.Restart(ctx))
		require.Equal(t, port, c.Port())
		requireKept(t, c.URL("postgres"))
	})

	t.Run("Stop is idempotent and closes the port", func(t *testing.T) {
		require.NoError(t, c.Stop(ctx))
		require.NoError(t, c.Stop(ctx))
		_, err := pgx.Connect(ctx, c.URL("postgres"))
		require.Error(t, err)
		require.NoFileExists(t, filepath.Join(dataDir, "postmaster.pid"))
	})

	t.Run("a taken fixed port fails Start and the error quotes the server log", func(t *testing.T) {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		require.NoError(t, err)
		err = c.Start(ctx)
		require.NoError(t, l.Close())
		require.ErrorContains(t, err, "Address already in use")
		require.ErrorContains(t, err, c.LogPath())
		require.Equal(t, port, c.Port(), "a port that URLs were made for must not change")
	})

	t.Run("Init reuses the data directory and its port", func(t *testing.T) {
		reused, err := pgcluster.Init(ctx, pgcluster.Options{DataDir: dataDir, Port: port, Fast: true, Logger: testLogger(t)})
		require.NoError(t, err)
		require.NoError(t, reused.Start(ctx))
		t.Cleanup(func() { require.NoError(t, reused.Stop(context.Background())) })
		require.Equal(t, c.URL("postgres"), reused.URL("postgres"))
		requireKept(t, reused.URL("postgres"))
	})
}

func TestStartRetriesWhenAPickedPortIsTaken(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, err := pgcluster.Init(ctx, pgcluster.Options{DataDir: filepath.Join(newTempDir(t), "data"), Fast: true, StopWithProcess: true, Logger: testLogger(t)})
	require.NoError(t, err)
	picked := c.Port()
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(picked)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })

	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() { require.NoError(t, c.Stop(context.Background())) })
	require.NotEqual(t, picked, c.Port())
	var one int
	require.NoError(t, connect(t, c.URL("postgres")).QueryRow(ctx, "SELECT 1").Scan(&one))
}

func TestStopWithProcessStopsTheServerWhenTheProcessIsKilled(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(newTempDir(t), "data")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dataDir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "the helper process should report its started cluster")
	require.Equal(t, "started\n", line)
	require.FileExists(t, filepath.Join(dataDir, "postmaster.pid"))

	require.NoError(t, cmd.Process.Kill())
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dataDir, "postmaster.pid"))
		return errors.Is(err, fs.ErrNotExist)
	}, 30*time.Second, 20*time.Millisecond, "the server should stop once its process is gone")
}

func TestInitRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts pgcluster.Options
		want string
	}{
		{"without a data directory", pgcluster.Options{}, "no data directory"},
		{"with a negative port", pgcluster.Options{DataDir: "x", Port: -1}, "not a TCP port"},
		{"with a port above 65535", pgcluster.Options{DataDir: "x", Port: 65536}, "not a TCP port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := pgcluster.Init(t.Context(), tc.opts)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestFindBinDir(t *testing.T) {
	// No t.Parallel: the subtests set the process environment.
	found, err := pgcluster.FindBinDir()
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(found, "initdb"))
	require.FileExists(t, filepath.Join(found, "pg_ctl"))
	require.FileExists(t, filepath.Join(found, "postgres"))

	t.Run("honours TENANTRY_PG_BIN", func(t *testing.T) {
		t.Setenv(pgcluster.BinDirEnv, found)
		got, err := pgcluster.FindBinDir()
		require.NoError(t, err)
		require.Equal(t, found, got)
	})
	t.Run("reports a TENANTRY_PG_BIN without the binaries", func(t *testing.T) {
		empty := t.TempDir()
		t.Setenv(pgcluster.BinDirEnv, empty)
		_, err := pgcluster.FindBinDir()
		require.ErrorContains(t, err, pgcluster.BinDirEnv+"="+empty)
		require.ErrorContains(t, err, "no initdb")
	})
}

func TestMkdirTempIsOpenToTheServerAccount(t *testing.T) {
	t.Parallel()
	dir := newTempDir(t)
	info, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o755), info.Mode().Perm())
}

// newTempDir returns a directory for a data directory, removed at cleanup.
func newTempDir(t *testing.T) string {
	t.Helper()
	dir, err := pgcluster.MkdirTemp("", "pgcluster-test-*")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, os.RemoveAll(dir)) })
	return dir
}

// connect opens a connection closed at cleanup.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// requireKept checks the row written before a restart.
func requireKept(t *testing.T, url string) {
	t.Helper()
	var v string
	require.NoError(t, connect(t, url).QueryRow(t.Context(), "SELECT v FROM kept").Scan(&v))
	require.Equal(t, "before restart", v)
}

// testLogger sends cluster logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}
