package registrytest

import (
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Process is a service (identity, a product service in any language)
// running as a subprocess of a test, with its output kept for the test's
// log when it fails.
type Process struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	// Logs is everything the process wrote to stdout and stderr.
	Logs *LockedBuffer
}

// Lines by which Tenantry's Go services say where they listen, for
// Process.WaitFor when they are started on port 0.
var (
	ServingGRPC = regexp.MustCompile(`msg="serving gRPC"[^\n]* addr=(\S+)`)
	ServingHTTP = regexp.MustCompile(`msg="serving HTTP"[^\n]* addr=(\S+)`)
)

// StartProcess starts bin with args and env (added to CleanEnv) and stops
// it at the end of the test.
func StartProcess(t *testing.T, name string, env []string, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{t: t, name: name, Logs: &LockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(CleanEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.Logs, p.Logs
	require.NoError(t, p.cmd.Start(), "start %s", name)
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.Logs)
		}
	})
	return p
}

// WaitFor waits until the process has printed a line matching re and
// returns the match's groups.
func (p *Process) WaitFor(re *regexp.Regexp) []string {
	p.t.Helper()
	var groups []string
	Eventually(p.t, p.name+" to print "+re.String(), func() bool {
		select {
		case <-p.exited:
			require.FailNow(p.t, p.name+" exited", "output:\n%s", p.Logs)
		default:
		}
		groups = re.FindStringSubmatch(p.Logs.String())
		return groups != nil
	})
	return groups
}

// Stop ends the process with SIGTERM, as an orchestrator would, and with
// SIGKILL if it has not exited within a few seconds.
func (p *Process) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Kill ends the process with SIGKILL, as a crash would.
func (p *Process) Kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// ExitCode waits for the process to exit and returns its exit code.
func (p *Process) ExitCode() int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(WaitFor):
		require.FailNow(p.t, p.name+" did not exit", "output:\n%s", p.Logs)
	}
	return p.cmd.ProcessState.ExitCode()
}
