// Command withpg runs a command with a PostgreSQL server beside it:
//
//	withpg [flags] -- command [args...]
//
// It starts a local cluster (see package pgcluster), puts its URL in an
// environment variable of the command, runs the command with stdin, stdout
// and stderr attached, forwards SIGINT and SIGTERM to it, then stops the
// cluster and exits with the command's exit code.
//
// `make test` runs `go test` under it with a throwaway cluster, which all test
// binaries share through TENANTRY_TEST_DATABASE_URL (see package pgtest).
// `make run` uses a persistent cluster at a fixed port:
//
//	withpg -data .dev/postgres -port 5433 -env DATABASE_URL -database tenantry -- ...
//
// Flags:
//
//	-data DIR       data directory, created on first use and reused after,
//	                with durable settings; without it, a temporary cluster
//	                with fast, crash-unsafe settings, removed afterwards
//	-port N         TCP port on 127.0.0.1; 0 picks a free one (default 0)
//	-env NAME       variable that receives the URL (default TENANTRY_TEST_DATABASE_URL)
//	-database NAME  create this database unless it exists and export its URL
//	                instead of the postgres database's
//
// Exit status: the command's; 128+N when a signal N killed it; 2 for bad
// usage; 125 when withpg itself fails; 126 when the command cannot be run,
// 127 when it is not found (as env(1) does).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"tenantry.dev/platform/pgcluster"
)

// Exit statuses of withpg's own failures, following env(1).
const (
	exitUsage      = 2
	exitFailed     = 125
	exitCannotRun  = 126
	exitNotFound   = 127
	exitSignalBase = 128
)

// stopTimeout bounds stopping the cluster after the command is done.
const stopTimeout = 60 * time.Second

// config is what the flags say.
type config struct {
	dataDir  string
	port     int
	envName  string
	database string
	command  []string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run is main without os.Exit, so that deferred cleanups run.
func run(args []string, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "withpg:", err)
		return exitUsage
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	code, err := runWithCluster(cfg, logger, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "withpg:", err)
	}
	return code
}

// parseFlags reads the flags and the command after them.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{}
	fs := flag.NewFlagSet("withpg", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: withpg [flags] -- command [args...]")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.dataDir, "data", "", "persistent data `dir`ectory, reused across runs (default: a temporary cluster, removed afterwards)")
	fs.IntVar(&cfg.port, "port", 0, "TCP `port` on 127.0.0.1 (0: a free one)")
	fs.StringVar(&cfg.envName, "env", "TENANTRY_TEST_DATABASE_URL", "environment variable `name` that receives the URL")
	fs.StringVar(&cfg.database, "database", "", "create this database `name` if missing and export its URL instead of the postgres database's")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.command = fs.Args()
	switch {
	case len(cfg.command) == 0:
		fs.Usage()
		return cfg, errors.New("no command given")
	case cfg.envName == "":
		return cfg, errors.New("-env must name a variable")
	case cfg.port < 0 || cfg.port > 65535:
		return cfg, fmt.Errorf("-port %d is not a TCP port", cfg.port)
	}
	return cfg, nil
}

// runWithCluster starts the cluster, runs the command and stops the cluster,
// returning the exit status.
func runWithCluster(cfg config, logger *slog.Logger, stderr io.Writer) (code int, err error) {
	// A mistyped command should not cost a cluster start to find out.
	if _, err := exec.LookPath(cfg.command[0]); err != nil {
		return exitNotFound, err
	}
	// Catch the signals from the start, so that an interrupt at any point
	// lets withpg stop the cluster and remove what it created. Until the
	// command runs, a signal aborts the start-up; then it goes to the command.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	startedUp, watcherDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case sig := <-signals:
			cancel(fmt.Errorf("interrupted by %v", sig))
		case <-startedUp:
		}
	}()

	dataDir, temporary := cfg.dataDir, cfg.dataDir == ""
	if temporary {
		dir, mkErr := pgcluster.MkdirTemp("", "withpg-*")
		if mkErr != nil {
			return exitFailed, mkErr
		}
		defer func() {
			if rmErr := os.RemoveAll(dir); rmErr != nil {
				err, code = errors.Join(err, rmErr), failed(code)
			}
		}()
		dataDir = filepath.Join(dir, "data")
	}
	cluster, err := pgcluster.Init(ctx, pgcluster.Options{
		DataDir: dataDir,
		Port:    cfg.port,
		// Durability only matters for data meant to outlive the run.
		Fast: temporary,
		// Even when withpg is killed, the server must not stay behind: a
		// persistent cluster recovers from the immediate shutdown on next start.
		StopWithProcess: true,
		Logger:          logger,
	})
	if err != nil {
		return exitFailed, withCause(ctx, err)
	}
	// Stop even after a failed Start: the server may be half up.
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if stopErr := cluster.Stop(stopCtx); stopErr != nil {
			err, code = errors.Join(err, stopErr), failed(code)
		}
	}()
	if err := cluster.Start(ctx); err != nil {
		return exitFailed, withCause(ctx, err)
	}
	database := "postgres"
	if cfg.database != "" {
		database = cfg.database
		if err := cluster.CreateDatabase(ctx, database); err != nil && !errors.Is(err, pgcluster.ErrDatabaseExists) {
			return exitFailed, withCause(ctx, err)
		}
	}
	close(startedUp)
	<-watcherDone
	if err := context.Cause(ctx); err != nil {
		return exitFailed, err // interrupted as the start-up finished
	}
	url := cluster.URL(database)
	fmt.Fprintf(stderr, "withpg: PostgreSQL listening on 127.0.0.1:%d (data %s); %s=%s\n",
		cluster.Port(), cluster.DataDir(), cfg.envName, url)
	return runCommand(cfg.command, append(os.Environ(), cfg.envName+"="+url), signals)
}

// withCause puts first why ctx ended, if it did, as an interrupted start-up
// otherwise reads as an obscure failure.
func withCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return fmt.Errorf("%w: %w", cause, err)
	}
	return err
}

// failed turns a success into withpg's own failure status, keeping the
// command's status otherwise.
func failed(code int) int {
	if code == 0 {
		return exitFailed
	}
	return code
}

// runCommand runs the command with the terminal attached and returns its
// exit status, forwarding the signals withpg receives to it meanwhile.
func runCommand(argv []string, env []string, signals <-chan os.Signal) (int, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		switch {
		case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
			return exitNotFound, err
		default:
			return exitCannotRun, err
		}
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case sig := <-signals:
				// The command may be gone already; nothing to do then.
				_ = cmd.Process.Signal(sig)
			case <-done:
				return
			}
		}
	}()

	err := cmd.Wait()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if status, ok := exitErr.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			return exitSignalBase + int(status.Signal()), nil
		}
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return exitFailed, fmt.Errorf("wait for %s: %w", argv[0], err)
	}
	return 0, nil
}
