package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/pgcluster"
)

// The test binary doubles as the command withpg runs: childEnv selects what
// it does, see childMain.
const (
	childEnv     = "WITHPG_TEST_CHILD"      // "query" or "wait-for-signal"
	childVarEnv  = "WITHPG_TEST_CHILD_VAR"  // variable holding the URL
	childExitEnv = "WITHPG_TEST_CHILD_EXIT" // exit status of "query"
)

// withpgBin is the withpg binary built for the tests.
var withpgBin string

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(childMain(mode))
	}
	dir, err := os.MkdirTemp("", "withpg-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	withpgBin = filepath.Join(dir, "withpg")
	if out, err := exec.Command("go", "build", "-o", withpgBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build withpg: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// childMain is the command under withpg. "query" connects to the URL it was
// given, records its run in a table and reports what it saw; "wait-for-signal"
// reports readiness and exits 42 on SIGTERM.
func childMain(mode string) int {
	switch mode {
	case "query":
		ctx := context.Background()
		url := os.Getenv(os.Getenv(childVarEnv))
		if url == "" {
			fmt.Println("no URL in", os.Getenv(childVarEnv))
			return 99
		}
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			fmt.Println(err)
			return 99
		}
		defer conn.Close(ctx)
		var database, fsync string
		var runs int
		err = conn.QueryRow(ctx, `SELECT current_database(), current_setting('fsync')`).Scan(&database, &fsync)
		if err == nil {
			_, err = conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS runs (at timestamptz); INSERT INTO runs VALUES (now())")
		}
		if err == nil {
			err = conn.QueryRow(ctx, "SELECT count(*) FROM runs").Scan(&runs)
		}
		if err != nil {
			fmt.Println(err)
			return 99
		}
		fmt.Printf("database=%s fsync=%s runs=%d\n", database, fsync, runs)
		code, _ := strconv.Atoi(os.Getenv(childExitEnv))
		return code
	case "wait-for-signal":
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGTERM)
		fmt.Println("ready")
		<-signals
		return 42
	default:
		return 99
	}
}

// listeningLine is withpg's line on stderr; it names the data directory.
var listeningLine = regexp.MustCompile(`(?m)^withpg: PostgreSQL listening on 127\.0\.0\.1:\d+ \(data (\S+)\); `)

func TestWithpgExportsTheURLAndPropagatesTheExitCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		args     []string
		variable string
		exit     int
		want     string
	}{
		{
			name:     "by default the postgres database of a fast cluster is in TENANTRY_TEST_DATABASE_URL",
			variable: "TENANTRY_TEST_DATABASE_URL",
			want:     "database=postgres fsync=off runs=1",
		},
		{
			name:     "-env and -database choose the variable and database, and a failing command's status comes back",
			args:     []string{"-env", "DATABASE_URL", "-database", "my app"},
			variable: "DATABASE_URL",
			exit:     7,
			want:     "database=my app fsync=off runs=1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runWithpg(t, tc.args, "query", childVarEnv+"="+tc.variable, childExitEnv+"="+strconv.Itoa(tc.exit))
			require.Equal(t, tc.exit, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			require.Equal(t, tc.want+"\n", stdout)
			m := listeningLine.FindStringSubmatch(stderr)
			require.NotNil(t, m, stderr)
			require.NoDirExists(t, filepath.Dir(m[1]), "the temporary cluster should be removed")
		})
	}
}

func TestWithpgReusesAPersistentDataDirectory(t *testing.T) {
	t.Parallel()
	dir, err := pgcluster.MkdirTemp("", "withpg-test-data-*")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, os.RemoveAll(dir)) })
	dataDir := filepath.Join(dir, "data")
	args := []string{"-data", dataDir, "-port", strconv.Itoa(freePort(t)), "-database", "app"}

	for run := 1; run <= 2; run++ {
		stdout, stderr, code := runWithpg(t, args, "query", childVarEnv+"=TENANTRY_TEST_DATABASE_URL")
		require.Zero(t, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
		require.Equal(t, fmt.Sprintf("database=app fsync=on runs=%d\n", run), stdout)
		require.NoFileExists(t, filepath.Join(dataDir, "postmaster.pid"), "the server should be stopped")
	}
}

func TestWithpgForwardsSIGTERMToTheCommand(t *testing.T) {
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), withpgBin, "--", os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=wait-for-signal")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // stderr is safe to read only after Wait
		t.Fatalf("the command did not report ready: %q, %v\nstderr:\n%s", line, err, stderr.String())
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))

	err = cmd.Wait()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr, stderr.String())
	require.Equal(t, 42, exitErr.ExitCode(), stderr.String())
	m := listeningLine.FindStringSubmatch(stderr.String())
	require.NotNil(t, m, stderr.String())
	require.NoDirExists(t, filepath.Dir(m[1]), "the temporary cluster should be removed")
}

func TestWithpgRejectsBadUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"without a command", []string{"-port", "0"}, exitUsage, "no command given"},
		{"with a port out of range", []string{"-port", "70000", "--", "true"}, exitUsage, "not a TCP port"},
		{"with an unknown flag", []string{"-nope", "--", "true"}, exitUsage, "flag provided but not defined"},
		{"with a command that does not exist", []string{"--", "withpg-no-such-command"}, exitNotFound, "executable file not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runWithpg(t, tc.args, "")
			require.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			require.Contains(t, stderr, tc.want)
			require.NotContains(t, stderr, "listening", "no cluster should start")
		})
	}
}

// runWithpg runs withpg with args, followed by the test binary as the command
// in the given child mode (none when mode is empty: args then hold the command).
func runWithpg(t *testing.T, args []string, mode string, env ...string) (stdout, stderr string, code int) {
	t.Helper()
	if mode != "" {
		args = append(args, "--", os.Args[0])
		env = append(env, childEnv+"="+mode)
	}
	cmd := exec.CommandContext(t.Context(), withpgBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if exitErr, ok := errors.AsType[*exec.ExitError](err); ok {
		return out.String(), errOut.String(), exitErr.ExitCode()
	}
	require.NoError(t, err)
	return out.String(), errOut.String(), 0
}

// freePort returns a TCP port free right now on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
