package e2e

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	// bannerTimeout bounds run-dev.sh's start-up: cluster, services, health.
	bannerTimeout = 45 * time.Second
	// commandTimeout bounds one grpcurl command of the banner.
	commandTimeout = 20 * time.Second
	// stopTimeout bounds the clean stop after SIGINT, and the processes' exit.
	stopTimeout = 30 * time.Second
	// pollInterval is how often a condition is checked while waiting for it.
	pollInterval = 50 * time.Millisecond
)

// repoRoot returns the repository's root: the nearest directory above the
// working directory that holds go.work.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no go.work above the working directory")
		dir = parent
	}
}

// buildBinaries builds tenant-registry, identity and the pinned grpcurl into
// a new temporary directory and returns it: the TENANTRY_BIN_DIR of
// run-dev.sh and the directory that puts `grpcurl` on the PATH of the
// banner's commands.
func buildBinaries(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"./services/tenant-registry/cmd/tenant-registry", "./services/tenant-registry/cmd/tenantry",
		"./services/identity/cmd/identity", "./services/notes/cmd/notes",
		"github.com/fullstorydev/grpcurl/cmd/grpcurl")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)
	return dir
}

// handedOut holds the ports freePort returned, never returned twice.
var handedOut sync.Map

// freePort returns a TCP port free right now on 127.0.0.1, below the
// kernel's ephemeral range (32768 and up on Linux): a port found free there
// (as ":0" finds them) is soon handed out again to another test's outgoing
// connection or listener, and the script's PostgreSQL then fails to bind it
// ("Address already in use", seen in a clean-clone make test). Ports below
// the range are only taken by whoever binds them by number.
func freePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		port := 20000 + rand.IntN(12000)
		if _, taken := handedOut.LoadOrStore(port, true); taken {
			continue // free now, but another test of this process will bind it
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("no free port below the ephemeral range after 100 tries")
	return 0
}

// cleanEnv is this process's environment without what would steer run-dev.sh
// or the banner's commands: the database, the tokens and the other TENANTRY_*
// settings (the location of the PostgreSQL binaries excepted).
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "DATABASE_URL" || strings.HasPrefix(name, "TENANTRY_") && name != "TENANTRY_PG_BIN" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// devRun is one run of deploy/scripts/run-dev.sh, in a process group of its
// own so that a test can interrupt it as Ctrl-C interrupts the terminal's.
type devRun struct {
	cmd     *exec.Cmd
	stdout  *lines
	stderr  *lockedBuffer
	done    chan struct{} // closed when the script has exited
	waitErr error         // the script's exit, once done is closed
	pathDir string        // holds grpcurl, for the banner's commands

	banner   []string // the banner, once printed
	commands []string // the banner's shell lines: see shellLine
}

// shellLine matches the banner's lines meant for pasting into a shell:
// exports, grpcurl commands and variables set from a grpcurl command.
var shellLine = regexp.MustCompile(`^(export |grpcurl |[A-Z][A-Z0-9_]*=\$\(grpcurl )`)

// startRunDev runs the script with env (added to a clean environment) and
// waits for its banner.
func startRunDev(t *testing.T, root, binDir string, env ...string) *devRun {
	t.Helper()
	r := &devRun{
		cmd:     exec.Command(filepath.Join(root, "deploy", "scripts", "run-dev.sh")),
		stdout:  newLines(),
		stderr:  &lockedBuffer{},
		done:    make(chan struct{}),
		pathDir: binDir,
	}
	r.cmd.Dir = root
	r.cmd.Env = cleanEnv(append([]string{"TENANTRY_BIN_DIR=" + binDir}, env...)...)
	r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, r.cmd.Start())
	go func() {
		r.waitErr = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		// Only a failed test gets here with the script running: end it all.
		// withpg's watchdog then stops its PostgreSQL.
		if !r.exited() {
			_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.done
		}
		if t.Failed() {
			t.Logf("run-dev.sh stdout:\n%s\nrun-dev.sh stderr:\n%s", r.stdout, r.stderr)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), bannerTimeout)
	defer cancel()
	banner, err := r.stdout.waitFor(ctx, r.done, bannerIn)
	require.NoError(t, err, "waiting for the banner of run-dev.sh (exit: %v)", r.exitErr())
	r.banner = banner
	for _, line := range banner {
		line = strings.TrimSpace(line)
		if shellLine.MatchString(line) {
			r.commands = append(r.commands, line)
		}
	}
	return r
}

// bannerStart and bannerRule delimit the banner.
const (
	bannerStart = "Tenantry is running."
	bannerRule  = "================"
)

// bannerIn returns the banner when all of it is among lines.
func bannerIn(lines []string) ([]string, bool) {
	start := -1
	for i, line := range lines {
		switch {
		case strings.HasPrefix(line, bannerStart):
			start = i
		case start >= 0 && strings.HasPrefix(line, bannerRule):
			return lines[start : i+1], true
		}
	}
	return nil, false
}

// exited tells whether the script has exited.
func (r *devRun) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// exitErr is the script's exit so far, for messages.
func (r *devRun) exitErr() string {
	if !r.exited() {
		return "still running"
	}
	if r.waitErr == nil {
		return "exit status 0"
	}
	return r.waitErr.Error()
}

// exportedValue returns the value the banner's export line gives a variable.
func (r *devRun) exportedValue(t *testing.T, name string) string {
	t.Helper()
	for _, c := range r.commands {
		if v, ok := strings.CutPrefix(c, "export "+name+"="); ok {
			return v
		}
	}
	require.Failf(t, "no export line", "the banner exports no %s:\n%s", name, strings.Join(r.banner, "\n"))
	return ""
}

// command returns the banner's grpcurl command that contains every part.
func (r *devRun) command(t *testing.T, parts ...string) string {
	t.Helper()
	for _, c := range r.commands {
		if !strings.HasPrefix(c, "grpcurl ") {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(c, p)
		}
		if all {
			return c
		}
	}
	require.Failf(t, "no such command", "the banner shows no grpcurl command with %q:\n%s", parts, strings.Join(r.banner, "\n"))
	return ""
}

// assignment returns the banner's shell line that sets the variable name.
func (r *devRun) assignment(t *testing.T, name string) string {
	t.Helper()
	for _, c := range r.commands {
		if strings.HasPrefix(c, name+"=") {
			return c
		}
	}
	require.Failf(t, "no such line", "the banner sets no %s:\n%s", name, strings.Join(r.banner, "\n"))
	return ""
}

// servicePID returns the PID the banner gives for a service.
func (r *devRun) servicePID(t *testing.T, name string) int {
	t.Helper()
	re := regexp.MustCompile(`^\s+` + regexp.QuoteMeta(name) + `\s.*\(pid (\d+)\)$`)
	for _, line := range r.banner {
		if m := re.FindStringSubmatch(line); m != nil {
			pid, err := strconv.Atoi(m[1])
			require.NoError(t, err)
			return pid
		}
	}
	require.Failf(t, "no PID", "the banner gives no PID for %s:\n%s", name, strings.Join(r.banner, "\n"))
	return 0
}

// shell runs a command line as a newcomer pastes it into a terminal: after
// the banner's export lines, with grpcurl on the PATH and no token in the
// environment otherwise. It returns stdout, stderr and the exit status.
func (r *devRun) shell(t *testing.T, line string) (stdout, stderr string, code int) {
	t.Helper()
	var script strings.Builder
	for _, c := range r.commands {
		if strings.HasPrefix(c, "export ") {
			script.WriteString(c + "\n")
		}
	}
	script.WriteString(line + "\n")
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Env = cleanEnv("PATH=" + r.pathDir + string(os.PathListSeparator) + os.Getenv("PATH"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if exitErr, ok := errors.AsType[*exec.ExitError](err); ok {
		return out.String(), errOut.String(), exitErr.ExitCode()
	}
	require.NoError(t, err, "run %q", line)
	return out.String(), errOut.String(), 0
}

// requireLogLine requires a line of the script's output, stdout or stderr
// (where the services log), to contain every part within commandTimeout:
// the services log some things, like mails, after the call that causes them
// has returned.
func (r *devRun) requireLogLine(t *testing.T, parts ...string) {
	t.Helper()
	found := func() bool {
		for _, line := range strings.Split(r.stdout.String()+"\n"+r.stderr.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return true
			}
		}
		return false
	}
	require.Eventually(t, found, commandTimeout, pollInterval, "no line of run-dev.sh's output contains all of %q", parts)
}

// interrupt sends SIGINT to the script's process group, as Ctrl-C does, and
// requires a clean stop: exit status 0 within stopTimeout and no process
// left in the group.
func (r *devRun) interrupt(t *testing.T) {
	t.Helper()
	pgid := r.cmd.Process.Pid
	require.NoError(t, syscall.Kill(-pgid, syscall.SIGINT))
	select {
	case <-r.done:
	case <-time.After(stopTimeout):
		require.FailNow(t, "run-dev.sh did not stop", "%s after SIGINT", stopTimeout)
	}
	require.NoError(t, r.waitErr, "run-dev.sh should exit 0 on Ctrl-C")
	require.Eventually(t, func() bool {
		return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
	}, stopTimeout, pollInterval, "processes of run-dev.sh's group are left running")
}

// requireGone requires the process pid, named comm, to be gone within
// stopTimeout. A zombie, or another program that got the PID since, counts
// as gone.
func requireGone(t *testing.T, pid int, comm string) {
	t.Helper()
	require.Eventually(t, func() bool { return !running(pid, comm) }, stopTimeout, pollInterval,
		"%s (pid %d) is still running", comm, pid)
}

// running tells whether process pid runs the program comm, from /proc.
func running(pid int, comm string) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// pid (comm) state ...; comm may hold spaces and parentheses.
	s := string(stat)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open || end+2 >= len(s) {
		return false
	}
	state := s[end+2]
	return s[open+1:end] == comm && state != 'Z' && state != 'X'
}

// lines collects a process's output line by line, so that a test can wait
// for some lines while the process runs.
type lines struct {
	mu      sync.Mutex
	all     bytes.Buffer
	lines   []string
	partial []byte
	changed chan struct{} // closed, and replaced, when a line is complete
}

func newLines() *lines { return &lines{changed: make(chan struct{})} }

// Write implements io.Writer.
func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
		added = true
	}
	if added {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

// String returns everything written.
func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// waitFor waits until match finds what it looks for in the lines so far,
// and returns that, unless ctx ends or done is closed first.
func (l *lines) waitFor(ctx context.Context, done <-chan struct{}, match func([]string) ([]string, bool)) ([]string, error) {
	for {
		l.mu.Lock()
		found, ok := match(l.lines)
		changed := l.changed
		l.mu.Unlock()
		if ok {
			return found, nil
		}
		select {
		case <-changed:
		case <-done:
			// The last lines may have come with the exit.
			l.mu.Lock()
			found, ok = match(l.lines)
			l.mu.Unlock()
			if ok {
				return found, nil
			}
			return nil, errors.New("the process exited")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for a process's writes and a test's reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
