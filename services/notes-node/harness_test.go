package notesnode_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"tenantry.dev/kit/registrytest"
	"tenantry.dev/platform/pgtest"
)

// Binaries built once for every test of the package, and why the Node.js
// service cannot run here, if it cannot.
var (
	registryBin string
	identityBin string
	nodeMissing string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			nodeMissing = tool + " is not installed (the notes-node example is a Node.js service): " + err.Error()
		}
	}
	dir, err := os.MkdirTemp("", "notes-node-test-bin-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if nodeMissing == "" {
		build := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
			"tenantry.dev/tenant-registry/cmd/tenant-registry", "tenantry.dev/identity/cmd/identity")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			return 1
		}
		registryBin, identityBin = filepath.Join(dir, "tenant-registry"), filepath.Join(dir, "identity")
	}
	return pgtest.Run(m)
}

// requireNode skips the test when Node.js is missing, and otherwise installs
// the service's dependencies from package-lock.json, once per test binary.
func requireNode(t *testing.T) {
	t.Helper()
	if nodeMissing != "" {
		t.Skip(nodeMissing)
	}
	npmOnce.Do(func() {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--prefer-offline")
		cmd.Env = append(os.Environ(), "NPM_CONFIG_UPDATE_NOTIFIER=false")
		npmOut, npmErr = cmd.CombinedOutput()
	})
	require.NoError(t, npmErr, "npm ci:\n%s", npmOut)
}

var (
	npmOnce sync.Once
	npmOut  []byte
	npmErr  error
)

// process is a service running as a subprocess of the test, with its
// output kept for the test's log when it fails.
type process struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	logs   *registrytest.LockedBuffer
	exited chan struct{}
}

// startProcess starts bin with args and env (added to a clean environment)
// and stops it at the end of the test.
func startProcess(t *testing.T, name string, env []string, bin string, args ...string) *process {
	t.Helper()
	p := &process{t: t, name: name, logs: &registrytest.LockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(registrytest.CleanEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	require.NoError(t, p.cmd.Start(), "start %s", name)
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.logs)
		}
	})
	return p
}

// waitFor waits until the process has printed a line matching re and
// returns the match's groups.
func (p *process) waitFor(re *regexp.Regexp) []string {
	p.t.Helper()
	var groups []string
	registrytest.Eventually(p.t, p.name+" to print "+re.String(), func() bool {
		select {
		case <-p.exited:
			require.FailNow(p.t, p.name+" exited", "output:\n%s", p.logs)
		default:
		}
		groups = re.FindStringSubmatch(p.logs.String())
		return groups != nil
	})
	return groups
}

// stop ends the process with SIGTERM, as an orchestrator would, and with
// SIGKILL if it has not exited within a few seconds.
func (p *process) stop() {
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

// kill ends the process with SIGKILL, as a crash would.
func (p *process) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// exitCode waits for the process to exit and returns its exit code.
func (p *process) exitCode() int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(registrytest.WaitFor):
		require.FailNow(p.t, p.name+" did not exit", "output:\n%s", p.logs)
	}
	return p.cmd.ProcessState.ExitCode()
}

// Lines by which the Go services and the Node.js service say where they
// listen (each is started on port 0).
var (
	servingGRPC = regexp.MustCompile(`msg="serving gRPC"[^\n]* addr=(\S+)`)
	servingHTTP = regexp.MustCompile(`msg="serving HTTP"[^\n]* addr=(\S+)`)
	servingNode = regexp.MustCompile(`"msg":"serving HTTP"[^\n]*"addr":"([^"]+)"`)
)

// callTimeout bounds one call to a service.
const callTimeout = 10 * time.Second

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}
