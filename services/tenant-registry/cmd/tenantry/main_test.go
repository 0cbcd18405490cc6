package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/pgtest"
	"tenantry.dev/platform/readmetour"
	"tenantry.dev/tenant-registry/internal/config"
	"tenantry.dev/tenant-registry/internal/server"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const operatorToken = "operator-token-for-cli-tests-0123456789"

// startRegistry runs a registry in the test on a fresh database, with
// more command-line flags if given, and returns its gRPC address and the
// database's URL.
func startRegistry(t *testing.T, flags ...string) (string, string) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	cfg, err := config.Load(append([]string{
		"-grpc-addr", "127.0.0.1:0", "-http-addr", "",
		"-database-url", url,
		"-operator-token", operatorToken,
		"-component-key", "component-key-for-the-cli-tests-0123456789",
		"-reconcile-interval", "1h", "-shutdown-timeout", "2s",
	}, flags...), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	t.Cleanup(func() { stop(); require.NoError(t, <-done) })
	return app.Addr().String(), url
}

// operatorCLI runs the CLI in this process against the registry at addr
// with the operator's credential, returning its exit code, stdout and
// stderr.
func operatorCLI(addr string) func(args ...string) (int, string, string) {
	env := func(k string) (string, bool) {
		switch k {
		case "TENANTRY_OPERATOR_TOKEN":
			return operatorToken, true
		case "TENANTRY_REGISTRY_ADDR":
			return addr, true
		}
		return "", false
	}
	return func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, env, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
}

// combined is cli with stdout and stderr as one text.
func combined(cli func(args ...string) (int, string, string)) func(args ...string) (int, string) {
	return func(args ...string) (int, string) {
		code, stdout, stderr := cli(args...)
		return code, stdout + stderr
	}
}

// The README's CLI lines run as written, with the binary `make build`
// makes, from the repository's root.
func TestReadmeCLITour(t *testing.T) {
	t.Parallel()
	root, err := readmetour.Root()
	require.NoError(t, err)
	lines, err := readmetour.Lines("cli-tour", func(l string) bool { return strings.HasPrefix(l, "bin/tenantry ") })
	require.NoError(t, err)

	bin := filepath.Join(t.TempDir(), "tenantry")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	addr, _ := startRegistry(t)

	outputs := map[string]string{}
	ran := 0
	for _, line := range lines {
		cmd := exec.Command("bash", "-c", strings.Replace(line, "bin/tenantry", bin, 1))
		cmd.Dir = root
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TENANTRY_OPERATOR_TOKEN=" + operatorToken, "TENANTRY_REGISTRY_ADDR=" + addr}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Run(), "%s\nstdout: %s\nstderr: %s", line, stdout.String(), stderr.String())
		outputs[line] = stdout.String()
		ran++
	}
	require.GreaterOrEqual(t, ran, 10)
	find := func(prefix string) string {
		for line, out := range outputs {
			if strings.HasPrefix(line, prefix) {
				return out
			}
		}
		t.Fatalf("the tour has no line %q", prefix)
		return ""
	}
	require.Contains(t, find("bin/tenantry tenants list"), "initech")
	require.Contains(t, find("bin/tenantry components versions initech"), "notes")
	require.Regexp(t, `would migrate +tenants/initech components/notes 0 → 2`, find("bin/tenantry migrate --dry-run"))
	require.Contains(t, find("bin/tenantry migrate --dry-run"), "1 behind, 0 done")
	require.Contains(t, find("bin/tenantry migrate --concurrency"), "1 behind, 1 done, 0 failed")
	var got struct {
		Tenant struct {
			Slug    string            `json:"slug"`
			Labels  map[string]string `json:"labels"`
			Domains []struct {
				Host string `json:"host"`
			} `json:"domains"`
		} `json:"tenant"`
	}
	require.NoError(t, json.Unmarshal([]byte(find("bin/tenantry --output json tenants get initech")), &got))
	require.Equal(t, "initech", got.Tenant.Slug)
	require.Equal(t, "gold", got.Tenant.Labels["tier"])
	require.Equal(t, "login.initech.example", got.Tenant.Domains[0].Host)
}

// Exit codes and messages: 2 for a command line that makes no sense, 1
// for an API refusal, with the reason a person can act on.
func TestCLIErrors(t *testing.T) {
	t.Parallel()
	addr, _ := startRegistry(t)
	env := func(token string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			switch k {
			case "TENANTRY_OPERATOR_TOKEN":
				return token, token != ""
			case "TENANTRY_REGISTRY_ADDR":
				return addr, true
			}
			return "", false
		}
	}
	for _, tc := range []struct {
		name  string
		args  []string
		token string
		code  int
		want  string
	}{
		{"an unknown command", []string{"tenants", "explode"}, operatorToken, 2, "unknown command"},
		{"a missing argument", []string{"tenants", "get"}, operatorToken, 2, "takes 1 argument"},
		{"no credential", []string{"tenants", "list"}, "", 2, "TENANTRY_OPERATOR_TOKEN"},
		{"a wrong credential", []string{"tenants", "list"}, "not-the-operator-token-at-all", 1, "INVALID_CREDENTIALS"},
		{"an unknown tenant", []string{"tenants", "get", "nobody"}, operatorToken, 1, "TENANT_NOT_FOUND"},
		{"a migrations directory that does not exist", []string{"components", "register", "notes", "/nonexistent"}, operatorToken, 2, "migrations"},
		{"help", []string{"help"}, "", 0, "components register"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, env(tc.token), &stdout, &stderr)
			require.Equal(t, tc.code, code, "stdout: %s\nstderr: %s", stdout.String(), stderr.String())
			require.Contains(t, stdout.String()+stderr.String(), tc.want)
		})
	}
}

// A migration with a failing tenant exits 1 and names the tenant; the
// others are migrated.
func TestCLIMigrateReportsFailures(t *testing.T) {
	t.Parallel()
	addr, url := startRegistry(t)
	cmd := combined(operatorCLI(addr))
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "0001_things.sql"), []byte(`CREATE TABLE things (id int)`), 0o600))
	code, out := cmd("components", "register", "things", dir)
	require.Zero(t, code, out)
	for _, slug := range []string{"fine", "hurt"} {
		code, out := cmd("tenants", "create", slug)
		require.Zero(t, code, out)
	}
	// Someone dropped the hurt tenant's table by hand.
	db, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(context.Background(), `DROP TABLE hurt.things`)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "0002_more.sql"), []byte(`ALTER TABLE things ADD COLUMN n int`), 0o600))
	code, out = cmd("components", "register", "things", dir)
	require.Zero(t, code, out)
	require.Contains(t, out, "added versions [2]")

	code, out = cmd("migrate")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "2 behind, 1 done, 1 failed")
	require.Regexp(t, `failed +tenants/hurt components/things version 2: relation "things" does not exist`, out)
	require.Contains(t, out, "some tenants failed to migrate")
}
