package notesnode_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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

// servingNode is how the Node.js service says where it listens (it is
// started on port 0); the Go services' lines are registrytest's.
var servingNode = regexp.MustCompile(`"msg":"serving HTTP"[^\n]*"addr":"([^"]+)"`)

// callTimeout bounds one call to a service.
const callTimeout = 10 * time.Second

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}
