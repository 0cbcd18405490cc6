package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// superuser is the role initdb creates; every connection uses it.
	superuser = "postgres"
	// host is the only address the server listens on.
	host = "127.0.0.1"
	// maxConnections leaves room for many test packages, each with a pool,
	// sharing one cluster.
	maxConnections = 400
	// logFile is the server log, kept inside the data directory so that it
	// goes away with a throwaway cluster and sits beside a persistent one.
	logFile = "postgres.log"
	// defaultWait bounds pg_ctl and the readiness check when ctx has no deadline.
	defaultWait = 60 * time.Second
	// startAttempts is how often Start tries fresh free ports: another process
	// may take the port between picking it and the server binding it.
	startAttempts = 3
	// logTailBytes is how much of the server log a start error quotes.
	logTailBytes = 4 << 10
)

// Options configures a cluster; see Init.
type Options struct {
	// DataDir is the cluster's data directory. Init creates it, with missing
	// parents, unless it already holds a cluster, which Init then reuses.
	DataDir string
	// Port is the TCP port on 127.0.0.1. Zero picks a free port; callers that
	// reuse a data directory and want stable URLs pass the same fixed port.
	Port int
	// Fast turns off fsync, synchronous_commit and full_page_writes (and lets
	// initdb skip syncing). A crash may then lose or corrupt data, which is
	// fine for throwaway test clusters and makes them much faster.
	Fast bool
	// StopWithProcess shuts the server down when the calling process exits
	// without stopping it, even by a crash, a test timeout or a SIGKILL, so
	// no server outlives the tests or tools that started it.
	StopWithProcess bool
	// Logger receives lifecycle events; nil means slog.Default().
	Logger *slog.Logger
}

// Cluster is a PostgreSQL cluster in a local data directory. Its methods are
// safe for concurrent use.
type Cluster struct {
	binDir          string
	dataDir         string
	user            *osUser
	fast            bool
	autoPort        bool
	stopWithProcess bool
	logger          *slog.Logger

	mu        sync.Mutex
	port      int
	portFixed bool // the server has listened on port, so URLs handed out must stay valid
	running   bool
	watchdog  *watchdog
}

// Init prepares a cluster in opts.DataDir without starting it: it runs initdb
// (superuser postgres, trust authentication, UTF8, C locale) unless the
// directory already holds a cluster (a PG_VERSION file), which is reused.
func Init(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.DataDir == "" {
		return nil, errors.New("init PostgreSQL cluster: no data directory given")
	}
	if opts.Port < 0 || opts.Port > math.MaxUint16 {
		return nil, fmt.Errorf("init PostgreSQL cluster: port %d is not a TCP port", opts.Port)
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("init PostgreSQL cluster: resolve data directory: %w", err)
	}
	binDir, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	u, err := serverUser()
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		binDir:          binDir,
		dataDir:         dataDir,
		user:            u,
		fast:            opts.Fast,
		stopWithProcess: opts.StopWithProcess,
		logger:          opts.Logger,
		port:            opts.Port,
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.port == 0 {
		if c.port, err = freePort(); err != nil {
			return nil, err
		}
		c.autoPort = true
	}
	if err := c.prepareDataDir(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		c.logger.Info("reusing PostgreSQL cluster", "data_dir", dataDir)
		return c, nil
	}
	args := []string{"-D", dataDir, "-U", superuser, "--auth=trust", "-E", "UTF8", "--locale=C"}
	if c.fast {
		args = append(args, "--no-sync")
	}
	if out, err := c.command(ctx, "initdb", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb %s as %s: %w\n%s", dataDir, c.user, err, bytesTrim(out))
	}
	c.logger.Info("initialized PostgreSQL cluster", "data_dir", dataDir, "bin_dir", binDir, "os_user", c.user.String())
	return c, nil
}

// prepareDataDir creates the data directory and hands it to the server's
// OS user.
func (c *Cluster) prepareDataDir() error {
	if err := os.MkdirAll(filepath.Dir(c.dataDir), 0o755); err != nil {
		return fmt.Errorf("create parent of data directory: %w", err)
	}
	// initdb accepts an existing empty directory; creating it here lets the
	// directory be given to the server's OS user before initdb runs as that user.
	if err := os.Mkdir(c.dataDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create data directory: %w", err)
	}
	if err := c.user.checkReachable(c.dataDir); err != nil {
		return err
	}
	return c.user.chownTree(c.dataDir)
}

// Start starts the server with pg_ctl and returns once it accepts
// connections. It listens on 127.0.0.1 only, without a Unix socket, with
// max_connections=400, and logs to LogPath. Starting a running cluster does
// nothing. When the port was picked automatically and is taken before the
// server's first start, Start retries on other free ports.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return nil
	}
	// The watchdog goes first so that no moment exists in which a server runs
	// unguarded.
	if c.stopWithProcess && c.watchdog == nil {
		w, err := c.startWatchdog()
		if err != nil {
			return err
		}
		c.watchdog = w
	}
	if err := c.writeHBA(); err != nil {
		return errors.Join(err, c.dismissWatchdog())
	}
	for attempt := 1; ; attempt++ {
		addrInUse, err := c.startServer(ctx)
		if err == nil {
			break
		}
		if !addrInUse || !c.autoPort || c.portFixed || attempt == startAttempts {
			return errors.Join(err, c.dismissWatchdog())
		}
		port, perr := freePort()
		if perr != nil {
			return errors.Join(err, perr, c.dismissWatchdog())
		}
		c.logger.Warn("PostgreSQL port taken, trying another", "port", c.port, "next_port", port)
		c.port = port
	}
	c.running, c.portFixed = true, true
	c.logger.Info("started PostgreSQL", "addr", c.addr(), "data_dir", c.dataDir, "fast", c.fast)
	return nil
}

// startServer runs pg_ctl start and waits for the server to accept
// connections. On failure it leaves no server running and reports whether the
// port was taken. The caller holds mu.
func (c *Cluster) startServer(ctx context.Context) (addrInUse bool, err error) {
	logPath := c.LogPath()
	logStart := fileSize(logPath) // the log is appended to: quote only this start
	out, err := c.command(ctx, "pg_ctl", "start", "-D", c.dataDir, "-l", logPath,
		"-w", "-t", waitSeconds(ctx), "-o", c.serverOptions()).CombinedOutput()
	if err == nil {
		err = c.waitAccepting(ctx)
	}
	if err == nil {
		return false, nil
	}
	// pg_ctl gives up after its timeout or when ctx ends, but the server it
	// launched may still be coming up: make sure it does not stay.
	stopErr := c.stopServer(context.WithoutCancel(ctx), "immediate")
	tail := logTail(logPath, logStart)
	err = fmt.Errorf("start PostgreSQL on %s (data dir %s): %w\n%s\nserver log %s:\n%s",
		c.addr(), c.dataDir, err, bytesTrim(out), logPath, tail)
	return strings.Contains(tail, "Address already in use"), errors.Join(err, stopErr)
}

// serverOptions are the settings passed to postgres on every start, so that
// Options decide them rather than whatever an earlier run wrote into the
// data directory. pg_ctl hands them to a shell, hence the quoted empty value.
func (c *Cluster) serverOptions() string {
	opts := []string{
		"-c listen_addresses=" + host,
		"-c port=" + strconv.Itoa(c.port),
		// No Unix socket: everything connects over TCP, and the default socket
		// directory (/var/run/postgresql) may be missing or not writable.
		"-c unix_socket_directories=''",
		"-c max_connections=" + strconv.Itoa(maxConnections),
		// Logical replication carries a tenant's schema to another
		// placement (the registry's MoveTenant); it costs a little more WAL.
		"-c wal_level=logical",
	}
	if c.fast {
		opts = append(opts, "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off")
	}
	return strings.Join(opts, " ")
}

// waitAccepting polls until a connection over TCP succeeds: pg_ctl -w only
// knows that the server says it is ready. The caller holds mu.
func (c *Cluster) waitAccepting(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for {
		conn, err := pgx.Connect(ctx, c.url("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for PostgreSQL to accept connections: %w", err)
		case <-ticker.C:
		}
	}
}

// Stop shuts the server down with pg_ctl's fast mode (sessions are ended,
// work is kept) and waits until it is gone. Stopping a stopped cluster does
// nothing.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stopServer(ctx, "fast"); err != nil {
		return err // the watchdog stays: it still has a server to stop
	}
	if c.running {
		c.logger.Info("stopped PostgreSQL", "addr", c.addr(), "data_dir", c.dataDir)
	}
	c.running = false
	return c.dismissWatchdog()
}

// Restart stops and starts the server, on the same port.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.Stop(ctx); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	return nil
}

// stopServer runs pg_ctl stop in the given shutdown mode when a server runs
// on the data directory.
func (c *Cluster) stopServer(ctx context.Context, mode string) error {
	pidFile := filepath.Join(c.dataDir, "postmaster.pid")
	if _, err := os.Stat(pidFile); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	out, err := c.command(ctx, "pg_ctl", "stop", "-D", c.dataDir, "-m", mode, "-w", "-t", waitSeconds(ctx)).CombinedOutput()
	if err == nil {
		return nil
	}
	// Gone in the meantime, or crashed and left its PID file: stopped either way.
	if _, statErr := os.Stat(pidFile); errors.Is(statErr, fs.ErrNotExist) ||
		strings.Contains(string(out), "No such process") {
		return nil
	}
	return fmt.Errorf("stop PostgreSQL (data dir %s): %w\n%s", c.dataDir, err, bytesTrim(out))
}

// dismissWatchdog ends the watchdog, if any.
func (c *Cluster) dismissWatchdog() error {
	err := c.watchdog.dismiss()
	c.watchdog = nil
	return err
}

// Port returns the TCP port the server listens on, or will listen on.
func (c *Cluster) Port() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.port
}

// DataDir returns the absolute path of the data directory.
func (c *Cluster) DataDir() string { return c.dataDir }

// LogPath returns the server log file, inside the data directory.
func (c *Cluster) LogPath() string { return filepath.Join(c.dataDir, logFile) }

// URL returns the connection URL of database as the postgres superuser, of
// the form postgres://postgres@127.0.0.1:PORT/DATABASE?sslmode=disable.
func (c *Cluster) URL(database string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.url(database)
}

// url is URL for a caller that holds mu.
func (c *Cluster) url(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     c.addr(),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// addr is host:port, for a caller that holds mu.
func (c *Cluster) addr() string { return net.JoinHostPort(host, strconv.Itoa(c.port)) }

// bin returns the path of a server binary.
func (c *Cluster) bin(name string) string { return filepath.Join(c.binDir, name) }

// command prepares a server binary to run as the server's OS user. LC_ALL=C
// keeps messages in English, which startServer searches.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.bin(name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	c.user.configure(cmd)
	return cmd
}

// freePort asks the kernel for a TCP port on host that is free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free TCP port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// withDefaultTimeout bounds ctx by defaultWait unless it has a deadline.
func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultWait)
}

// waitSeconds is the -t value for pg_ctl: what is left of ctx, in whole
// seconds, or defaultWait.
func waitSeconds(ctx context.Context) string {
	wait := defaultWait
	if deadline, ok := ctx.Deadline(); ok {
		wait = time.Until(deadline)
	}
	return strconv.Itoa(max(1, int(math.Ceil(wait.Seconds()))))
}

// fileSize returns the size of a file, or 0 when it cannot be read.
func fileSize(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}

// logTail returns up to logTailBytes of a log written after offset.
func logTail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	defer f.Close()
	if size := fileSize(path); size-offset > logTailBytes {
		offset = size - logTailBytes
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	if len(b) == 0 {
		return "(empty)"
	}
	return bytesTrim(b)
}

// bytesTrim turns command output into a string without surrounding blank lines.
func bytesTrim(b []byte) string { return strings.TrimSpace(string(b)) }

// hbaConf is the cluster's pg_hba.conf, written at every start (so clusters
// made before it get it too): the superuser is trusted from this machine,
// as befits a development or test cluster, while every other role must
// prove its password with SCRAM, so tests of tenant roles (package
// tenantrole) check real logins, not just grants.
const hbaConf = `# Written by tenantry's pgcluster at every start; edits are lost.
local all ` + superuser + ` trust
host  all ` + superuser + ` 127.0.0.1/32 trust
host  all ` + superuser + ` ::1/128 trust
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
host  all all ::1/128 scram-sha-256
`

// writeHBA writes hbaConf into the data directory for the server's OS user.
func (c *Cluster) writeHBA() error {
	path := filepath.Join(c.dataDir, "pg_hba.conf")
	if err := os.WriteFile(path, []byte(hbaConf), 0o600); err != nil {
		return fmt.Errorf("write pg_hba.conf: %w", err)
	}
	return c.user.chownTree(path)
}
