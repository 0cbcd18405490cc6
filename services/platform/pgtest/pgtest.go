// Package pgtest gives tests a real PostgreSQL database.
//
// Test packages call [Main] from TestMain and [NewDatabase] in each test that
// needs a database:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		url := pgtest.NewDatabase(t) // a fresh, empty database, dropped after the test
//		...
//	}
//
// The databases live in the cluster whose admin URL is in the
// TENANTRY_TEST_DATABASE_URL environment variable, which the withpg command
// sets so that all test binaries of a run share one server. Without it, the
// first NewDatabase of a test binary starts a throwaway cluster that Main
// stops when the tests are done. Tests that stop or restart the server get a
// cluster of their own from [NewCluster].
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tenantry.dev/platform/pgcluster"
)

// URLEnv is the environment variable holding the admin URL of a running
// cluster to create test databases in. The withpg command sets it.
const URLEnv = "TENANTRY_TEST_DATABASE_URL"

// timeout bounds each administrative step: starting a cluster, creating or
// dropping a database.
const timeout = 60 * time.Second

// mainRunning records that Main runs the tests and so will stop the cluster
// this package starts; without it, starting one would leak a server.
var mainRunning atomic.Bool

// shared is the cluster this test binary starts when URLEnv is not set.
var shared struct {
	once     sync.Once
	dir      string // holds the data directory; removed by Main
	cluster  *pgcluster.Cluster
	adminURL string
	err      error
}

// Main runs the tests of a package, then stops the cluster this package
// started for them, if any, and exits with the tests' exit code. Call it from
// TestMain.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit, for a TestMain that has more to clean up
// after the tests: it returns the exit code to pass to os.Exit.
func Run(m *testing.M) int {
	mainRunning.Store(true)
	code := m.Run()
	if err := stopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// NewDatabase creates an empty database with a unique name for the test and
// returns its URL. The database is dropped, with any sessions still using it,
// when the test and its subtests are done. It is safe to call from parallel
// tests.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin, err := adminURL()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := databaseName(t.Name())
	ident := pgx.Identifier{name}.Sanitize()
	if err := adminExec(admin, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("pgtest: create test database: %v", err)
	}
	t.Cleanup(func() {
		if err := adminExec(admin, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop test database: %v", err)
		}
	})
	u, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// NewCluster starts a private throwaway cluster for a test that stops,
// restarts or otherwise disturbs the server, and stops and removes it when
// the test is done. Its postgres database is ready for use.
func NewCluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	// The cluster logs with the test's output: shown when it fails or runs verbosely.
	c, dir, err := startCluster("pgtest-cluster-*", slog.New(slog.NewTextHandler(t.Output(), nil)))
	// Cleanups run last-registered first: stop the server, then remove its files.
	if dir != "" {
		t.Cleanup(func() {
			if err := os.RemoveAll(dir); err != nil {
				t.Errorf("pgtest: remove cluster: %v", err)
			}
		})
	}
	if c != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if err := c.Stop(ctx); err != nil {
				t.Errorf("pgtest: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return c
}

// adminURL returns the URL to create databases through, starting this test
// binary's cluster on first use when no shared one is given.
func adminURL() (string, error) {
	if u := os.Getenv(URLEnv); u != "" {
		return u, nil
	}
	if !mainRunning.Load() {
		return "", errors.New(URLEnv + " is not set, so a PostgreSQL cluster must be started for this " +
			"test binary, but only pgtest.Main can stop it afterwards: add " +
			"`func TestMain(m *testing.M) { pgtest.Main(m) }` to the package's tests, " +
			"or run them under withpg (make test)")
	}
	shared.once.Do(func() {
		// Quiet unless something goes wrong: this runs in every test binary.
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		shared.cluster, shared.dir, shared.err = startCluster("pgtest-*", logger)
		if shared.cluster != nil {
			shared.adminURL = shared.cluster.URL("postgres")
		}
	})
	return shared.adminURL, shared.err
}

// startCluster initializes and starts a throwaway cluster in a new temporary
// directory. It returns what it created even on failure, for cleaning up.
func startCluster(pattern string, logger *slog.Logger) (*pgcluster.Cluster, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dir, err := pgcluster.MkdirTemp("", pattern)
	if err != nil {
		return nil, "", err
	}
	c, err := pgcluster.Init(ctx, pgcluster.Options{
		DataDir: filepath.Join(dir, "data"),
		Fast:    true,
		// A test binary that panics on -timeout or is killed runs no cleanup.
		StopWithProcess: true,
		Logger:          logger,
	})
	if err != nil {
		return nil, dir, err
	}
	// Stopping a cluster that failed to start is harmless, so hand it back.
	return c, dir, c.Start(ctx)
}

// stopShared stops and removes the cluster adminURL started, if any.
func stopShared() error {
	if shared.dir == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var err error
	if shared.cluster != nil {
		err = shared.cluster.Stop(ctx)
	}
	return errors.Join(err, os.RemoveAll(shared.dir))
}

// adminExec runs one statement on the admin database.
func adminExec(adminURL, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(adminURL), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// withDatabase returns adminURL pointing at another database.
func withDatabase(adminURL, database string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("%s must be a postgres:// URL", URLEnv)
	}
	u.Path, u.RawPath = "/"+database, ""
	return u.String(), nil
}

// redact hides a password in a URL for messages.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// maxNameBytes keeps database names within PostgreSQL's 63-byte identifiers.
const maxNameBytes = 63

// databaseName makes a database name that says which test it belongs to (for
// whoever lists the databases of a shared cluster) and is unique across test
// binaries sharing the cluster.
func databaseName(testName string) string {
	suffix := fmt.Sprintf("_%016x", rand.Uint64())
	var b strings.Builder
	b.WriteString("test_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= maxNameBytes-len(suffix) {
			break
		}
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String() + suffix
}
